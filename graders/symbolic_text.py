"""Reading a symbolic answer: the student's text as a neutral tree, never evaluated.

Standard library only, so that a spec's ``[symbolic]`` table (its aliases) is
checked when the spec loads without importing SymPy, and so that dlgrade can ship
it, next to :mod:`dlgrade.graders.symbolic`, into the bounded worker that judges answers.

Python-style input is tokenised by hand, parsed with ``ast.parse(mode="eval")``
and walked with a whitelist of node types, names and functions; LaTeX input
goes through a small recursive-descent parser of our own. Both produce the
same neutral tree of tuples (see :func:`parse`), from which
:mod:`dlgrade.graders.symbolic` builds SymPy objects directly.
"""
from __future__ import annotations

import ast
import re
import unicodedata
from fractions import Fraction

# --------------------------------------------------------------------------- limits

MAX_CHARS = 2000  # a real answer is under 200 characters
MAX_DEPTH = 60  # nesting of brackets and operations
MAX_NODES = 800  # operations, names and numbers
MAX_LITERAL = 10**15  # a number written in the answer
MAX_LITERAL_CHARS = 40
MAX_EXPONENT = 1000  # a constant exponent


class ParseError(ValueError):
    """The student's text is not an expression we accept; the message says why, in one line.

    A ValueError, not one of dlgrade.graders.errors: this module also runs inside the
    sandbox, shipped alone with the symbolic evaluator, where dlgrade cannot be imported."""


# --------------------------------------------------------------------------- vocabulary

# the names a Python-style answer may call, and the function each one means
PY_FUNCTIONS = {
    "sigmoid": "sigmoid", "σ": "sigmoid", "sigma": "sigmoid", "expit": "sigmoid",
    "logistic": "sigmoid", "exp": "exp", "log": "log", "ln": "log", "log1p": "log1p",
    "expm1": "expm1", "softplus": "softplus", "sqrt": "sqrt", "tanh": "tanh", "sinh": "sinh",
    "cosh": "cosh", "abs": "abs", "Abs": "abs", "fabs": "abs", "sign": "sign", "sgn": "sign",
    "pow": "pow", "max": "max", "Max": "max", "maximum": "max", "min": "min", "Min": "min",
    "minimum": "min", "heaviside": "heaviside", "Heaviside": "heaviside", "piecewise": "piecewise",
    "Piecewise": "piecewise", "where": "where",
    # conditions (SymPy's names): only inside Piecewise, where and if ... else
    "Eq": "Eq", "Ne": "Ne", "Lt": "Lt", "Le": "Le", "Gt": "Gt", "Ge": "Ge",
    "And": "And", "Or": "Or", "Not": "Not",
}
RELATIONS = {"Eq": "==", "Ne": "!=", "Lt": "<", "Le": "<=", "Gt": ">", "Ge": ">="}
LOGIC_FUNCTIONS = ("And", "Or", "Not")
CONDITION_FUNCTIONS = frozenset(RELATIONS) | frozenset(LOGIC_FUNCTIONS)
TRUE = ("bool", True)
# np.exp(z), torch.sigmoid(z), scipy.special.expit(z): a known module prefix is just a spelling
MODULE_PREFIXES = ("np", "numpy", "math", "sp", "sympy", "torch", "F", "scipy.special", "special",
                   "mp", "mpmath")
CONSTANTS = {"e": "E", "E": "E", "pi": "pi", "π": "pi"}
# The functions an answer (or a spec's alias) may call, as a message lists them: one
# spelling or more of each function of PY_FUNCTIONS but the conditions (Eq, And, ...,
# only inside a case). docs/adding-an-exercise.md and README.md list exactly these
# (tests/test_symbolic_parser.py compares them).
FUNCTION_NAMES = ("sigmoid", "σ", "sigma", "expit", "logistic", "exp", "log", "ln", "log1p", "expm1",
                  "softplus", "sqrt", "tanh", "sinh", "cosh", "abs", "sign", "pow", "max", "min",
                  "Heaviside", "Piecewise", "where")
SHOWN_FUNCTIONS = ", ".join(FUNCTION_NAMES)


def unknown_function(name: str) -> str:
    """``'tahn' is not a known function; did you mean 'tanh'? (known: ...)``."""
    import difflib

    word = name.rsplit(".", 1)[-1]  # np.sigmod: the function's own name
    close = (difflib.get_close_matches(word, FUNCTION_NAMES, n=1)
             or difflib.get_close_matches(word.lower(), [f.lower() for f in FUNCTION_NAMES], n=1))
    if close and close[0] not in FUNCTION_NAMES:  # matched in lower case: the listed spelling
        close = [next(f for f in FUNCTION_NAMES if f.lower() == close[0])]
    guess = f"; did you mean {close[0]!r}?" if close else ""
    return f"'{name}' is not a known function{guess} (known: {SHOWN_FUNCTIONS})"

_UNICODE = {"−": "-", "–": "-", "·": "*", "⋅": "*", "×": "*", "∙": "*", "∗": "*", "÷": "/",
            "²": "^2", "³": "^3", "\u00a0": " ", "\u2009": " ", "\u202f": " "}


def _nice_names(names) -> str:
    names = [f"'{n}'" for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _and_list(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _unknown_symbols(names, variables, hints=None, aliases=None) -> ParseError:
    """Name the unknown symbols and the allowed ones: the variables, and the aliases with
    their meaning (``p may stand for sigmoid(z)``), then the hint for a known slip."""
    word = "symbol" if len(names) == 1 else "symbols"
    notes = []
    if aliases:
        first, *rest = [(n, to_plain(t)) for n, t in aliases.items()]
        notes.append(_and_list([f"{first[0]} may stand for {first[1]}"] + [f"{n} for {m}" for n, m in rest]))
    hinted = [n for n in names if n in (hints or {})]
    if hinted:
        notes.append(f"write {hints[hinted[0]]} for {hinted[0]}")
    tail = f" ({'; '.join(notes)})" if notes else ""
    return ParseError(f"unknown {word} {_nice_names(names)}: the answer must be an expression in "
                      f"{_and_list(variables)} only{tail}")


# --------------------------------------------------------------------------- aliases


_RESERVED = set(CONSTANTS) | set(PY_FUNCTIONS) | {"True", "False", "None"}


def alias_problem(name: str, variables) -> str | None:
    """Why ``name`` cannot be an alias (a spec's ``[symbolic] aliases`` key), or None."""
    import keyword

    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or "__" in name:
        return f"{name!r} is not a name an answer can use"
    if name in variables:
        return f"{name!r} is already a variable"
    if name in _RESERVED or name.lower() in _RESERVED:
        return f"{name!r} already means something in an answer (a function or a constant)"
    return None


def read_aliases(aliases: dict, variables) -> dict[str, tuple]:
    """The trees of a spec's aliases (``{"p": "sigmoid(z)"}``), each an expression in the
    variables only. Raises ParseError naming the alias."""
    trees = {}
    for name, value in (aliases or {}).items():
        problem = alias_problem(name, variables)
        if problem is None and not isinstance(value, str):
            problem = "its meaning must be a string, like \"sigmoid(z)\""
        if problem is None:
            try:
                trees[name] = parse(value, variables)[0]
            except ParseError as exc:
                problem = str(exc)
        if problem:
            raise ParseError(f"alias {name}: {problem}")
    return trees


# --------------------------------------------------------------------------- text


_DERIVATIVE_LHS = re.compile(r"^[\s\\{}()\[\]/dLz∂'′a-zA-Z]*$")
_ENVIRONMENT = re.compile(r"\\(begin|end)\{(equation|align|displaymath|math|gather)\*?\}")
# "\frac" in a Python string that is not raw: \f is a form feed, \r a carriage return...
_LOST_ESCAPES = re.compile(r"[\a\b\f\v\r](?=[A-Za-z])|\t(?=(?:anh|imes|ext|frac|heta)\b)")
_ESCAPE_LETTER = {"\a": "a", "\b": "b", "\f": "f", "\v": "v", "\r": "r", "\t": "t"}
_TEX_COMMENT = re.compile(r"(?<!\\)%.*$")
_DELIMITERS = ((r"$$", r"$$"), (r"$", r"$"), (r"\[", r"\]"), (r"\(", r"\)"))


def clean_text(text: str) -> str:
    """The expression inside the student's text.

    Removed: comments (``# ...``; ``% ...`` in LaTeX), ``$...$``, ``$$...$$``, ``\\[...\\]``,
    equation environments, a leading ``dL/dz =``, trailing ``.``, ``,``, ``;``
    and ``\\\\``. Restored: LaTeX commands whose backslash a non-raw Python
    string turned into a control character (``"\\frac"`` holds a form feed).
    Unicode operators are normalised and lines joined.
    """
    t = _LOST_ESCAPES.sub(lambda m: "\\" + _ESCAPE_LETTER[m.group()], text.lstrip("\ufeff"))
    lines = [_TEX_COMMENT.sub("", ln.split("#")[0]) if "\\" in ln or "{" in ln else ln.split("#")[0]
             for ln in t.splitlines() if not ln.strip().startswith("%")]
    t = _ENVIRONMENT.sub(" ", " ".join(lines))
    if "\\" in t or "{" in t:  # LaTeX: align's & is spacing, a case's & separates its parts
        t = _outside_cases(t, lambda part: part.replace("&", " "))
    for _ in range(2):  # "$...$." and "...$" both end up bare
        t = t.strip().rstrip(".,;").strip()
        while t.endswith("\\\\"):
            t = t[:-2].rstrip()
        for open_, close in _DELIMITERS:
            if len(t) >= len(open_) + len(close) and t.startswith(open_) and t.endswith(close):
                t = t[len(open_):len(t) - len(close)]
                break
    for src, dst in _UNICODE.items():
        t = t.replace(src, dst)
    t = " ".join(t.split())
    lhs, eq, rhs = t.partition("=")
    if eq and not rhs.startswith("=") and "L" in lhs and _DERIVATIVE_LHS.match(lhs):
        t = rhs.strip()  # dL/dz = ..., whatever comparisons follow in the cases
    return t


_CASES = re.compile(r"\\begin\{cases\}.*?(?:\\end\{\w+\*?\}|$)")


def _outside_cases(text: str, change) -> str:
    """``change`` applied to the text outside ``\\begin{cases} ... \\end{cases}``."""
    out, pos = [], 0
    for m in _CASES.finditer(text):
        out += [change(text[pos:m.start()]), m.group()]
        pos = m.end()
    return "".join(out + [change(text[pos:])])


def detect_syntax(text: str) -> str:
    """``"latex"`` when the text uses backslashes or braces, else ``"python"``."""
    return "latex" if ("\\" in text or "{" in text or "}" in text) else "python"


def _check_size(text: str) -> None:
    if not text:
        raise ParseError("the expression is empty")
    if len(text) > MAX_CHARS:
        raise ParseError(f"the expression is too long ({len(text)} characters; the limit is {MAX_CHARS})")
    depth = best = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            best = max(best, depth)
        elif ch in ")]}":
            depth -= 1
    if best > MAX_DEPTH:
        raise ParseError(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")


def _too_deep() -> ParseError:
    return ParseError(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")


def _number(text: str) -> tuple:
    """A literal as an exact fraction, within dlgrade's bounds."""
    if len(text) > MAX_LITERAL_CHARS:
        raise ParseError(f"the number {text[:20]}… is too long")
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ParseError(f"{text!r} is not a number") from None
    if abs(value) > MAX_LITERAL:
        raise ParseError(f"the number {text} is too large (at most {MAX_LITERAL:.0e})")
    return ("num", value, text)  # the text as written, for showing it back


# --------------------------------------------------------------------------- Python-style


_PY_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[^\W\d]\w*)
  | (?P<str>'[^'\n]*'|"[^"\n]*")
  | (?P<op>\*\*|//|<=|>=|==|!=|:=|->|[-+*/^%(),.\[\]{}:=<>!&|~@;])
""", re.VERBOSE)

_NODE_WORDS = {
    ast.List: "lists", ast.Tuple: "commas (tuples)", ast.Set: "sets", ast.Dict: "dicts",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions", ast.JoinedStr: "f-strings", ast.NamedExpr: "':='",
    ast.Starred: "'*' unpacking", ast.Await: "'await'", ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'", ast.Slice: "slices",
}
_OP_WORDS = {ast.Mod: "'%'", ast.FloorDiv: "'//'", ast.MatMult: "'@'", ast.BitAnd: "'&'",
             ast.BitOr: "'|'", ast.BitXor: "'^'", ast.LShift: "'<<'", ast.RShift: "'>>'",
             ast.Invert: "'~'"}
_COMPARISONS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
CONDITION_PLACES = "a condition, as in Piecewise((a, z > 0), (b, True)), where(z > 0, a, b) or a if z > 0 else b"
NOT_A_CONDITION = "{what} is not a condition: write a comparison such as y == 1 or z > 0"
PIECEWISE_CASE = "each case of {name} is a pair (value, condition), like (z, z > 0)"


def _py_tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _PY_TOKEN.match(text, pos)
        if not m:
            raise ParseError(f"unexpected character {text[pos]!r} at position {pos + 1}")
        pos = m.end()
        if m.lastgroup != "ws":
            tokens.append((m.lastgroup, m.group()))
    return tokens


def _implicit_products(tokens, names) -> str:
    """Join the tokens, writing the multiplications a mathematician leaves out:
    ``2z``, ``2 sigmoid(z)``, ``(1-y)(1+y)``, ``y(1-z)`` (y is a variable, not a function)."""
    import keyword

    def plain_name(tok):
        return tok[0] == "name" and not keyword.iskeyword(tok[1])

    out = []
    for i, tok in enumerate(tokens):
        if i:
            prev = tokens[i - 1]
            left = prev[0] == "num" or plain_name(prev) or prev == ("op", ")")
            right = tok[0] in ("num",) or plain_name(tok) or tok == ("op", "(")
            if prev[0] == "num" and tok[0] == "num":
                right = False
            if plain_name(prev) and tok == ("op", "(") and prev[1] not in names and prev[1] not in CONSTANTS:
                right = False  # a call: sigmoid(z), or an unknown function named in the error
            if left and right:
                out.append("*")
        out.append("**" if tok == ("op", "^") else tok[1])
    return " ".join(out)


def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _function_key(func) -> str | None:
    name = _dotted(func)
    if name is None:
        return None
    if "." in name:
        prefix, _, last = name.rpartition(".")
        return _py_function(last) if prefix in MODULE_PREFIXES else None
    return _py_function(name)


def _py_function(name: str) -> str | None:
    """The function a name calls (Sigmoid and EXP too), or None."""
    return PY_FUNCTIONS.get(name) or PY_FUNCTIONS.get(name.lower())


def _condition_places(tree) -> tuple[set, set]:
    """The ids of the nodes that stand where a condition belongs (the test of ``if ... else``,
    the second item of a Piecewise case, where's first argument, and the parts of a
    condition made of conditions), and of the Piecewise cases' tuples."""
    conditions, cases = set(), set()
    for node in ast.walk(tree):  # breadth first: a node is marked before its children are seen
        if isinstance(node, ast.IfExp):
            conditions.add(id(node.test))
        elif isinstance(node, ast.Call):
            key = _function_key(node.func)
            if key == "piecewise":
                for arg in node.args:
                    if isinstance(arg, ast.Tuple):
                        cases.add(id(arg))
                        if len(arg.elts) == 2:
                            conditions.add(id(arg.elts[1]))
            elif key == "where" and node.args:
                conditions.add(id(node.args[0]))
            elif key in LOGIC_FUNCTIONS and id(node) in conditions:
                conditions.update(id(a) for a in node.args)
        if id(node) in conditions:
            if isinstance(node, ast.BoolOp):
                conditions.update(id(v) for v in node.values)
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
                conditions.add(id(node.operand))
            elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
                conditions.update((id(node.left), id(node.right)))  # SymPy's (z > 0) & (y < 1)
    return conditions, cases


def _forbidden(tree) -> str | None:
    """The most telling reason a parsed expression is not allowed, or None."""
    found: list[tuple[int, str]] = []
    conditions, cases = _condition_places(tree)
    for node in ast.walk(tree):
        in_condition = id(node) in conditions
        if isinstance(node, ast.Name) and "__" in node.id:
            found.append((0, f"names with double underscores ('{node.id}') are not allowed"))
        elif isinstance(node, ast.Attribute) and "__" in node.attr:
            found.append((0, f"names with double underscores ('{node.attr}') are not allowed"))
        elif isinstance(node, ast.Lambda):
            found.append((1, "lambda is not allowed"))
        elif isinstance(node, ast.Attribute):
            parent_ok = False
            name = _dotted(node)
            head, _, last = (name or "").rpartition(".")
            if head in MODULE_PREFIXES and (_py_function(last) or last in CONSTANTS):
                parent_ok = True
            if name and any(p == name or p.startswith(name + ".") for p in MODULE_PREFIXES):
                parent_ok = True  # scipy of scipy.special
            if not parent_ok:
                found.append((2, f"attribute access ('.{node.attr}') is not allowed"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
            found.append((3, f"quoted text ({node.value!r:.40}) is not allowed"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            if not in_condition:
                found.append((6, f"{node.value!r} is only allowed as {CONDITION_PLACES}"))
        elif isinstance(node, ast.Constant) and (node.value is None or node.value is Ellipsis):
            found.append((6, f"{node.value!r} is not allowed"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, complex):
            found.append((6, "imaginary numbers are not allowed"))
        elif isinstance(node, ast.Subscript):
            found.append((4, "indexing with [...] is not allowed"))
        elif isinstance(node, ast.Call) and node.keywords:
            found.append((5, "keyword arguments are not allowed"))
        elif (isinstance(node, ast.Call) and _dotted(node.func) and _function_key(node.func) is None
              and _dotted(node.func) not in CONSTANTS):
            found.append((2, unknown_function(_dotted(node.func))))
        elif (isinstance(node, ast.Call) and _function_key(node.func) == "piecewise"
              and not all(isinstance(a, ast.Tuple) and len(a.elts) == 2 for a in node.args)):
            found.append((4, PIECEWISE_CASE.format(name=_dotted(node.func))))
        elif isinstance(node, ast.Call) and _function_key(node.func) in CONDITION_FUNCTIONS and not in_condition:
            found.append((5, f"{_dotted(node.func)}(...) is only allowed as {CONDITION_PLACES}"))
        elif isinstance(node, ast.Compare):
            if not all(type(op) in _COMPARISONS for op in node.ops):
                found.append((6, "'is' and 'in' are not allowed"))
            elif not in_condition:
                found.append((6, f"comparisons are only allowed in {CONDITION_PLACES}"))
        elif isinstance(node, ast.BoolOp) and not in_condition:
            found.append((6, f"'and'/'or' are only allowed in {CONDITION_PLACES}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and not in_condition:
            found.append((6, f"'not' is only allowed in {CONDITION_PLACES}"))
        elif isinstance(node, ast.Tuple) and id(node) in cases:
            pass
        elif in_condition and isinstance(node, (ast.BinOp, ast.UnaryOp)) and isinstance(
                node.op, (ast.BitAnd, ast.BitOr, ast.Invert)):
            pass
        elif type(node) in _NODE_WORDS:
            found.append((6, f"{_NODE_WORDS[type(node)]} are not allowed"))
        elif isinstance(node, (ast.BinOp, ast.UnaryOp)) and isinstance(node.op, (ast.BitAnd, ast.BitOr, ast.Invert)):
            found.append((6, f"'&', '|' and '~' are only allowed in {CONDITION_PLACES}"))
        elif isinstance(node, (ast.BinOp, ast.UnaryOp)) and type(node.op) in _OP_WORDS:
            found.append((6, f"the operator {_OP_WORDS[type(node.op)]} is not allowed"))
    # the most telling kind first; among equals, the outermost (ast.walk goes breadth first)
    return min(found, key=lambda f: f[0])[1] if found else None


_PY_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Constant, ast.Load,
               ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Attribute,
               ast.Compare, ast.BoolOp, ast.IfExp, ast.Tuple, ast.And, ast.Or, ast.Not,
               ast.BitAnd, ast.BitOr, ast.Invert, *_COMPARISONS)


class _Names:
    """What a name may be while reading one answer: a variable, an alias, or unknown."""

    def __init__(self, variables, aliases):
        self.variables = tuple(variables)
        self.aliases = dict(aliases or {})
        self.unknown: list[str] = []

    def __contains__(self, name) -> bool:
        return name in self.variables or name in self.aliases

    def node(self, name: str) -> tuple:
        if name in self.variables:
            return ("var", name)
        if name in self.aliases:
            return ("alias", name, self.aliases[name])
        if name not in self.unknown:
            self.unknown.append(name)
        return ("var", name)


def parse_python(text: str, variables: tuple[str, ...], hints=None, aliases=None) -> tuple:
    """Python/SymPy-style text (``^`` is a power) as a neutral tree. Raises ParseError."""
    names = _Names(variables, aliases)
    code = _implicit_products(_py_tokens(text), names)
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as exc:
        raise ParseError(_syntax_message(exc)) from None
    except (RecursionError, MemoryError):
        raise _too_deep() from None
    problem = _forbidden(tree)
    if problem:
        raise ParseError(problem)
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise ParseError(f"the expression is too large (more than {MAX_NODES} parts)")
    for node in ast.walk(tree):
        if not isinstance(node, _PY_ALLOWED):  # pragma: no cover - _forbidden names them all
            raise ParseError(f"{type(node).__name__} is not allowed")
    out = _PyReader(code, names).value(tree.body, 0)
    if names.unknown:
        raise _unknown_symbols(names.unknown, variables, hints, aliases)
    return out


def _syntax_message(exc: SyntaxError) -> str:
    msg = str(exc.msg or "invalid syntax").split(". Perhaps")[0].split(". Maybe")[0]
    if "never closed" in msg or "unexpected EOF" in msg:
        return "a bracket is never closed"
    if "unmatched" in msg or "does not match" in msg:
        return "the brackets do not match"
    if "too many nested" in msg:
        return f"the expression is nested too deeply (more than {MAX_DEPTH} levels)"
    return f"this is not a valid expression ({msg})"


_GROUP = {ast.Add: "add", ast.Sub: "add", ast.Mult: "mul", ast.Div: "mul", ast.Pow: "pow"}
_TREE_GROUP = {"add": "add", "sub": "add", "mul": "mul", "div": "mul"}
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}


class _PyReader:
    """The checked Python AST as a neutral tree: values, and conditions where they belong."""

    def __init__(self, code: str, names: _Names):
        self.code, self.names = code, names

    def value(self, node, depth: int) -> tuple:
        if depth > MAX_DEPTH:
            raise _too_deep()
        d = depth + 1
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:  # pragma: no cover - _forbidden refuses them here
                raise ParseError(f"the operator {_OP_WORDS.get(type(node.op), '?')} is not allowed")
            op = _BINOPS[type(node.op)]
            # a + b + c is left-nested in the AST, but not nested for a reader: same depth
            flat = (isinstance(node.left, ast.BinOp)
                    and _GROUP.get(type(node.left.op)) == _GROUP[type(node.op)] != "pow")
            return (op, self.value(node.left, depth if flat else d), self.value(node.right, d))
        if isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):  # pragma: no cover - _forbidden
                raise ParseError(f"'not' and '~' are only allowed in {CONDITION_PLACES}")
            inner = self.value(node.operand, d)
            return ("neg", inner) if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.Constant):
            return _number(ast.get_source_segment(self.code, node) or repr(node.value))
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names.node(node.id)
            if node.id in CONSTANTS:
                return ("const", CONSTANTS[node.id])
            if _py_function(node.id):
                raise ParseError(f"{node.id} is a function: apply it to an argument, like {node.id}(z)")
            return self.names.node(node.id)
        if isinstance(node, ast.IfExp):  # a if c else b: Piecewise((a, c), (b, True))
            cases = [(self.value(node.body, d), self.condition(node.test, d))]
            rest = self.value(node.orelse, d)
            if rest[0] == "piecewise" and isinstance(node.orelse, ast.IfExp):
                return ("piecewise", tuple(cases) + rest[1])
            return ("piecewise", tuple(cases) + ((rest, TRUE),))
        if isinstance(node, ast.Call):
            return self.call(node, d)
        if isinstance(node, ast.Attribute):
            last = _dotted(node).rpartition(".")[2]
            if last in CONSTANTS:
                return ("const", CONSTANTS[last])
            raise ParseError(f"{_dotted(node)} is a function: apply it to an argument, like {_dotted(node)}(z)")
        raise ParseError(f"{type(node).__name__} is not allowed")  # pragma: no cover

    def call(self, node, d: int) -> tuple:
        func = node.func
        if isinstance(func, ast.Name) and (func.id in self.names or func.id in CONSTANTS):
            if len(node.args) != 1:
                raise ParseError(f"{func.id} is not a function")
            return ("mul", self.value(func, d), self.value(node.args[0], d))
        key, shown = _function_key(func), _dotted(func) or "this"
        if key is None:
            raise ParseError(unknown_function(shown))
        if key == "piecewise":
            if not node.args:
                raise ParseError(f"{shown} needs at least one case (value, condition)")
            cases = []
            for arg in node.args:
                if not (isinstance(arg, ast.Tuple) and len(arg.elts) == 2):  # pragma: no cover - _forbidden
                    raise ParseError(PIECEWISE_CASE.format(name=shown))
                cases.append((self.value(arg.elts[0], d), self.condition(arg.elts[1], d)))
            return ("piecewise", tuple(cases))
        if key == "where":
            if len(node.args) != 3:
                raise ParseError(f"{shown} takes 3 arguments (condition, value if true, value if false), "
                                 f"not {len(node.args)}")
            cond, a, b = node.args
            return ("piecewise", ((self.value(a, d), self.condition(cond, d)), (self.value(b, d), TRUE)))
        if key in CONDITION_FUNCTIONS:  # pragma: no cover - _forbidden refuses them here
            raise ParseError(f"{shown}(...) is only allowed as {CONDITION_PLACES}")
        return _call(key, [self.value(a, d) for a in node.args], shown)

    def condition(self, node, depth: int) -> tuple:
        if depth > MAX_DEPTH:
            raise _too_deep()
        d = depth + 1
        if isinstance(node, ast.Compare):
            operands = [self.value(x, d) for x in (node.left, *node.comparators)]
            rels = [("rel", _COMPARISONS[type(op)], operands[i], operands[i + 1]) for i, op in enumerate(node.ops)]
            return rels[0] if len(rels) == 1 else ("and", tuple(rels))  # 0 < z < 1
        if isinstance(node, ast.BoolOp):
            return ("and" if isinstance(node.op, ast.And) else "or", tuple(self.condition(v, d) for v in node.values))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
            return ("not", self.condition(node.operand, d))
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            kind = "and" if isinstance(node.op, ast.BitAnd) else "or"
            parts = []
            for side in (node.left, node.right):
                c = self.condition(side, d)
                parts += list(c[1]) if c[0] == kind else [c]  # a & b & c: one And
            return (kind, tuple(parts))
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return ("bool", node.value)
        if isinstance(node, ast.Call):
            key, shown = _function_key(node.func), _dotted(node.func) or "this"
            if key in RELATIONS:
                if len(node.args) != 2:
                    raise ParseError(f"{shown} takes 2 arguments, not {len(node.args)}")
                return ("rel", RELATIONS[key], self.value(node.args[0], d), self.value(node.args[1], d))
            if key == "Not":
                if len(node.args) != 1:
                    raise ParseError(f"{shown} takes 1 argument, not {len(node.args)}")
                return ("not", self.condition(node.args[0], d))
            if key in ("And", "Or"):
                if not node.args:
                    raise ParseError(f"{shown} takes at least 1 argument")
                return (key.lower(), tuple(self.condition(a, d) for a in node.args))
        what = ast.get_source_segment(self.code, node) or type(node).__name__
        raise ParseError(NOT_A_CONDITION.format(what=repr(" ".join(what.split()))))


_ARITY = {"pow": 2, "max": None, "min": None, "log": (1, 2), "heaviside": (1, 2)}


def _call(key: str, args: list, shown: str) -> tuple:
    want = _ARITY.get(key, 1)
    n = len(args)
    ok = (n >= 2) if want is None else (n in want if isinstance(want, tuple) else n == want)
    if not ok:
        need = {None: "at least 2 arguments", 1: "1 argument", 2: "2 arguments",
                (1, 2): "1 or 2 arguments"}[want]
        raise ParseError(f"{shown} takes {need}, not {n}")
    return ("call", key, tuple(args))


# --------------------------------------------------------------------------- LaTeX


_TEX_FUNCS = {"sigma": "sigmoid", "sigmoid": "sigmoid", "exp": "exp", "log": "log", "ln": "log",
              "tanh": "tanh", "sinh": "sinh", "cosh": "cosh", "expit": "sigmoid",
              "softplus": "softplus", "abs": "abs", "sgn": "sign", "sign": "sign", "max": "max", "min": "min"}
_TEX_WORDS = ("sigmoid", "sigma", "softplus", "expit", "tanh", "sinh", "cosh", "sqrt", "exp", "log",
              "abs", "ln", "max", "min")
_TEX_SKIP = {",", ";", ":", "!", " ", "\\", "quad", "qquad", "displaystyle", "textstyle", "big", "Big",
             "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "Biggl", "Biggr",
             "limits", "nolimits"}
_TEX_TEXT = {"mathrm", "operatorname", "text", "mathit", "textrm", "mbox", "rm", "textit", "mathop"}
_TEX_FRAC = {"frac", "dfrac", "tfrac", "cfrac"}
_TEX_MUL = {"cdot", "times", "ast", "cdotp"}
_TEX_OPEN = {"(": "(", "[": "[", "|": "|", "lvert": "|", "vert": "|", "{": "(", "lbrace": "(",
             "langle": None, ".": None}
_TEX_CLOSE = {")": ")", "]": "]", "|": "|", "rvert": "|", "vert": "|", "}": ")", "rbrace": ")",
              ".": None}


def _tex_tokens(text: str) -> list[tuple[str, str]]:
    toks: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace() or ch == "~":
            i += 1
        elif ch == "\\":
            m = re.match(r"\\([A-Za-z]+\*?)", text[i:])
            if m:
                toks.append(("cmd", m.group(1).rstrip("*")))
                i += m.end()
            elif i + 1 < n:
                toks.append(("cmd", text[i + 1]))
                i += 2
            else:
                raise ParseError("a lone backslash at the end")
        elif ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            m = re.match(r"\d*\.?\d*", text[i:])
            toks.append(("num", m.group()))
            i += m.end()
        elif ch.isascii() and ch.isalpha():
            m = re.match(r"[A-Za-z]+", text[i:])
            run = m.group()
            if run.lower() in _TEX_WORDS and (run.islower() or run[1:].islower() or run.isupper()):
                toks.append(("word", run.lower()))
            else:
                toks.extend(("letter", c) for c in run)
            i += m.end()
        elif ch == "σ":
            toks.append(("cmd", "sigma"))
            i += 1
        elif ch == "π":
            toks.append(("cmd", "pi"))
            i += 1
        elif ch in "+-*/^_(){}[]|,&=<>":
            toks.append(("op", ch))
            i += 1
        else:
            raise ParseError(f"unexpected character {ch!r} at position {i + 1}")
    return toks


def _tex_kept(tokens) -> list:
    """The tokens that mean something: spacing and sizing commands dropped, and line
    breaks (``\\\\``) too, except between the rows of a cases environment."""
    kept, depth = [], 0
    for i, t in enumerate(tokens):
        if t == ("cmd", "begin") or t == ("cmd", "end"):
            name = "".join(tok[1] for tok in tokens[i + 2:i + 7])
            if name == "cases":
                depth += 1 if t[1] == "begin" else -1
        if t[0] == "cmd" and t[1] in _TEX_SKIP and not (t[1] == "\\" and depth > 0):
            continue
        kept.append(t)
    return kept


_TEX_RELATIONS = {("op", "="): "==", ("op", "<"): "<", ("op", ">"): ">", ("cmd", "neq"): "!=",
                  ("cmd", "ne"): "!=", ("cmd", "leq"): "<=", ("cmd", "le"): "<=", ("cmd", "leqslant"): "<=",
                  ("cmd", "geq"): ">=", ("cmd", "ge"): ">=", ("cmd", "geqslant"): ">=", ("cmd", "lt"): "<",
                  ("cmd", "gt"): ">"}
_TEX_AND = {("cmd", "wedge"), ("cmd", "land"), ("op", ",")}
_TEX_OR = {("cmd", "vee"), ("cmd", "lor")}
_TEX_NOT = {("cmd", "neg"), ("cmd", "lnot")}
_CASE_WORDS = {"if", "for", "when", "falls", "wenn"}  # \text{if } before a condition
_OTHERWISE = {"otherwise", "else", "sonst", "true"}
# functions a LaTeX answer writes by name (\operatorname{H}(z), \mathrm{sgn}(z)) or command
_TEX_NAMED = {"H": "heaviside", "Heaviside": "heaviside", "sgn": "sign", "log1p": "log1p", "expm1": "expm1",
              "softplus": "softplus", "pow": "pow", "max": "max", "min": "min"}
_TEX_MULTI = {"max", "min", "heaviside", "pow"}  # functions of several arguments: f(a, b)
_TEX_STOP = {"right", "rvert", "rbrace", "end", "\\"}


class _TexParser:
    """Recursive descent over LaTeX math: sums, products (explicit and implicit),
    powers, \\frac, \\sqrt, |...|, \\left/\\right and functions with or without brackets."""

    def __init__(self, text: str, variables: tuple[str, ...], hints=None, aliases=None):
        self.hints = hints or {}
        self.toks = _tex_kept(_tex_tokens(text))
        self.i = 0
        self.variables = variables
        self.aliases = aliases or {}
        self.names = _Names(variables, aliases)
        self.depth = 0
        self.abs_depth = 0

    # -- helpers
    def peek(self, k: int = 0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("end", "")

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, kind: str, value: str, what: str):
        tok = self.take()
        if tok != (kind, value):
            raise ParseError(f"expected {what}, found {_tok_word(tok)}")

    def enter(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _too_deep()

    # -- grammar
    def parse(self) -> tuple:
        if not self.toks:
            raise ParseError("the expression is empty")
        node = self.expr()
        if self.peek()[0] != "end":
            raise ParseError(f"unexpected {_tok_word(self.peek())}")
        if self.names.unknown:
            raise _unknown_symbols(self.names.unknown, self.variables, self.hints, self.aliases)
        return node

    def expr(self) -> tuple:
        self.enter()
        node = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            rhs = self.term()
            node = ("add" if op == "+" else "sub", node, rhs)
        self.depth -= 1
        return node

    def term(self) -> tuple:
        node = self.unary()
        while True:
            tok = self.peek()
            if tok == ("op", "*") or (tok[0] == "cmd" and tok[1] in _TEX_MUL):
                self.take()
                node = ("mul", node, self.unary())
            elif tok == ("op", "/") or tok == ("cmd", "div"):
                self.take()
                node = ("div", node, self.unary())
            elif self.starts_factor(tok):
                node = ("mul", node, self.power())
            else:
                return node

    def starts_factor(self, tok) -> bool:
        kind, val = tok
        if kind in ("num", "letter", "word"):
            return True
        if tok in (("op", "("), ("op", "["), ("op", "{")):
            return True
        if tok == ("op", "|"):
            return self.abs_depth == 0  # 2|z|; inside |...| a bar closes
        if kind == "cmd":
            return (val not in _TEX_MUL and val not in ("div", "right", "rvert", "rbrace") and val not in _TEX_CLOSE
                    and val not in _TEX_STOP and tok not in _TEX_RELATIONS and tok not in _TEX_AND | _TEX_OR
                    and tok not in _TEX_NOT)
        return False

    def unary(self) -> tuple:
        self.enter()
        tok = self.peek()
        if tok == ("op", "-"):
            self.take()
            node = ("neg", self.unary())
        elif tok == ("op", "+"):
            self.take()
            node = self.unary()
        else:
            node = self.power()
        self.depth -= 1
        return node

    def power(self) -> tuple:
        base = self.primary()
        if self.peek() == ("op", "^"):
            self.take()
            base = ("pow", base, self.exponent())
            if self.peek() == ("op", "^"):
                raise ParseError("a double exponent: group it with braces, like e^{a^{b}}")
        if self.peek() == ("op", "_"):
            raise ParseError("subscripts (_) are not allowed")
        return base

    def exponent(self) -> tuple:
        tok = self.peek()
        if tok == ("op", "{"):
            return self.group("{", "}")
        if tok in (("op", "-"), ("op", "+")):  # e^-z is read as e^{-z}
            self.take()
            inner = self.exponent()
            return ("neg", inner) if tok[1] == "-" else inner
        if tok[0] == "num":
            self.take()
            return _number(tok[1])
        return self.primary()

    def group(self, open_: str, close: str) -> tuple:
        self.expect("op", open_, f"'{open_}'")
        self.enter()
        node = self.expr()
        self.depth -= 1
        self.expect("op", close, f"'{close}'")
        return node

    def tex_arg(self) -> tuple:
        """A macro argument: {…}, or a single token (\\frac12 is 1/2)."""
        tok = self.peek()
        if tok == ("op", "{"):
            return self.group("{", "}")
        if tok[0] == "num":
            self.take()
            if len(tok[1]) > 1:  # \frac12: the first digit is the argument, the rest stays
                self.toks.insert(self.i, ("num", tok[1][1:]))
                return _number(tok[1][0])
            return _number(tok[1])
        if tok[0] in ("letter", "cmd"):
            return self.primary()
        raise ParseError(f"expected an argument in braces, found {_tok_word(tok)}")

    def primary(self) -> tuple:
        tok = self.take()
        kind, val = tok
        if kind == "num":
            return _number(val)
        if kind == "letter":
            return self.letter(val)
        if kind == "word":
            if val == "sqrt":
                return self.sqrt()
            return self.function(_TEX_FUNCS[val], val)
        if tok == ("op", "("):
            self.i -= 1
            return self.group("(", ")")
        if tok == ("op", "["):
            self.i -= 1
            return self.group("[", "]")
        if tok == ("op", "{"):
            self.i -= 1
            return self.group("{", "}")
        if tok == ("op", "|"):
            return self.absolute()
        if kind == "cmd":
            return self.command(val)
        raise ParseError(f"unexpected {_tok_word(tok)}")

    def letter(self, name: str) -> tuple:
        if name == "e" and name not in self.names:
            return ("const", "E")
        return self.names.node(name)

    def absolute(self) -> tuple:
        self.enter()
        self.abs_depth += 1
        node = self.expr()
        self.abs_depth -= 1
        self.depth -= 1
        tok = self.take()
        if tok == ("op", "|") or tok == ("cmd", "rvert") or tok == ("cmd", "vert"):
            return ("call", "abs", (node,))
        if tok == ("cmd", "right") and self.peek() in (("op", "|"), ("cmd", "rvert"), ("cmd", "vert")):
            self.take()
            return ("call", "abs", (node,))
        raise ParseError(f"expected a closing '|', found {_tok_word(tok)}")

    def command(self, name: str) -> tuple:
        if name in _TEX_FRAC:
            num = self.tex_arg()
            den = self.tex_arg()
            return ("div", num, den)
        if name == "sqrt":
            return self.sqrt()
        if name == "pi":
            return ("const", "pi")
        if name in _TEX_FUNCS:
            return self.function(_TEX_FUNCS[name], "\\" + name)
        if name == "left":
            return self.left()
        if name in ("lvert", "vert"):
            return self.absolute()
        if name in _TEX_TEXT:
            return self.text_command(name)
        if name == "begin":
            return self.cases()
        if name in ("hat", "tilde", "bar") and self.peek() == ("op", "{") and self.peek(2) == ("op", "}"):
            inner = self.peek(1)[1]
            self.i += 3
            mark = {"hat": "\u0302", "tilde": "\u0303", "bar": "\u0304"}[name]
            return self.letter(unicodedata.normalize("NFC", inner + mark))  # \hat{y} is ŷ: unknown
        raise ParseError(f"unknown LaTeX command \\{name}")

    def left(self) -> tuple:
        tok = self.take()
        key = tok[1] if tok[0] in ("op", "cmd") else None
        if key not in _TEX_OPEN or _TEX_OPEN[key] is None:
            raise ParseError(f"unsupported delimiter after \\left: {_tok_word(tok)}")
        opener = _TEX_OPEN[key]
        self.enter()
        node = self.expr()
        self.depth -= 1
        self.expect("cmd", "right", "\\right")
        tok = self.take()
        key = tok[1] if tok[0] in ("op", "cmd") else None
        closer = _TEX_CLOSE.get(key, "?")
        want = {"(": ")", "[": "]", "|": "|"}[opener]
        if closer != want and not (opener in "([" and closer in ")]"):
            raise ParseError(f"\\left{opener} is closed by \\right {_tok_word(tok)}")
        return ("call", "abs", (node,)) if opener == "|" else node

    def text_command(self, name: str) -> tuple:
        self.expect("op", "{", f"'{{' after \\{name}")
        word = ""
        while self.peek()[0] in ("letter", "word", "cmd", "num") and self.peek()[1] != "}":
            tok = self.take()
            word += tok[1]  # \operatorname{log1p}: letters and digits
        self.expect("op", "}", f"'}}' to close \\{name}{{...}}")
        if word in _TEX_FUNCS or word in _TEX_NAMED:
            return self.function(_TEX_FUNCS.get(word) or _TEX_NAMED[word], f"\\{name}{{{word}}}")
        if word == "sqrt":
            return self.sqrt()
        if word == "e":
            return ("const", "E")
        if word in self.names:
            return self.names.node(word)
        raise ParseError(f"unknown name \\{name}{{{word}}}")

    def sqrt(self) -> tuple:
        index = None
        if self.peek() == ("op", "["):
            index = self.group("[", "]")
        arg = self.tex_arg()
        if index is None:
            return ("call", "sqrt", (arg,))
        return ("pow", arg, ("div", ("num", Fraction(1), "1"), index))

    def function(self, key: str, shown: str) -> tuple:
        power = base = None
        if self.peek() == ("op", "^"):  # \sigma^2(z) is σ(z)²
            self.take()
            power = self.exponent()
        if self.peek() == ("op", "_"):
            if key != "log":
                raise ParseError("subscripts (_) are not allowed")
            self.take()  # \log_2 z, \log_{b}(z)
            base = self.tex_arg()
        tok = self.peek()
        if key in _TEX_MULTI:
            args = self.arguments(shown)
            node = _call(key, args, shown)
        else:
            if tok in (("op", "("), ("op", "["), ("op", "{"), ("cmd", "left")):
                arg = self.primary()
            elif self.starts_factor(tok) and tok[0] != "op":
                arg = self.power()
            else:
                raise ParseError(f"{shown} must be applied to an argument, like {shown}(z)")
            node = ("call", key, (arg,) if base is None else (arg, base))
        return ("pow", node, power) if power is not None else node

    def arguments(self, shown: str) -> list:
        """(a, b, ...) or \\left(a, b\\right) after a function of several arguments."""
        left = self.peek() == ("cmd", "left")
        if left:
            self.take()
        if self.peek() not in (("op", "("), ("op", "[")):
            raise ParseError(f"{shown} must be applied to arguments in brackets, like {shown}(z, 0)")
        self.take()
        self.enter()
        args = [self.expr()]
        while self.peek() == ("op", ","):
            self.take()
            args.append(self.expr())
        self.depth -= 1
        if left:
            self.expect("cmd", "right", "\\right")
        if self.take() not in (("op", ")"), ("op", "]")):
            raise ParseError(f"expected ')' to close the arguments of {shown}")
        return args

    # -- cases
    def environment_name(self) -> str:
        self.expect("op", "{", "'{' after \\begin")
        name = ""
        while self.peek()[0] in ("letter", "word"):
            name += self.take()[1]
        self.expect("op", "}", "'}'")
        return name

    def cases(self) -> tuple:
        """\\begin{cases} value & condition \\\\ ... \\\\ value & \\text{otherwise} \\end{cases}"""
        name = self.environment_name()
        if name != "cases":
            raise ParseError(f"the environment {name} is not allowed (only cases)")
        self.enter()
        rows = []
        while True:
            if self.peek() == ("cmd", "end"):
                break
            value = self.expr()
            if self.peek() == ("op", ",") and self.peek(1) == ("op", "&"):
                self.take()  # "value, & condition"
            self.expect("op", "&", "'&' between a case's value and its condition")
            rows.append((value, self.case_condition()))
            while self.peek() in (("op", ","), ("op", ";")):  # "y = 1," before the line break
                self.take()
            if self.peek() == ("cmd", "\\"):
                self.take()
                continue
            if self.peek() != ("cmd", "end"):
                raise ParseError(f"expected \\\\ or \\end{{cases}}, found {_tok_word(self.peek())}")
        self.take()
        if self.environment_name() != "cases":
            raise ParseError("\\begin{cases} is closed by another \\end")
        if not rows:
            raise ParseError("\\begin{cases} holds no case")
        self.depth -= 1
        return ("piecewise", tuple(rows))

    def text_word(self) -> str | None:
        """The word of a \\text{...} (\\mbox, \\mathrm...) here, without taking it; else None."""
        if not (self.peek()[0] == "cmd" and self.peek()[1] in _TEX_TEXT and self.peek(1) == ("op", "{")):
            return None
        word, k = "", 2
        while self.peek(k)[0] in ("letter", "word"):
            word += self.peek(k)[1]
            k += 1
        return word if self.peek(k) == ("op", "}") else None

    def skip_text(self) -> None:
        while self.peek()[1] != "}":
            self.take()
        self.take()

    def case_condition(self) -> tuple:
        if self.peek() == ("op", ","):
            self.take()
        word = self.text_word()
        if word in _OTHERWISE:
            self.skip_text()
            return TRUE
        if word in _CASE_WORDS:
            self.skip_text()
        return self.condition()

    def condition(self) -> tuple:
        parts = [self.conjunction()]
        while self.peek() in _TEX_OR or self.text_word() == "or":
            self.skip_text() if self.peek()[0] == "cmd" and self.peek()[1] in _TEX_TEXT else self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else ("or", tuple(parts))

    def row_ends(self, k: int = 0) -> bool:
        return self.peek(k) in (("cmd", "\\"), ("cmd", "end"), ("end", ""))

    def conjunction(self) -> tuple:
        parts = [self.negation()]
        while (self.peek() in _TEX_AND and not (self.peek() == ("op", ",") and self.row_ends(1))) \
                or self.text_word() == "and":
            self.skip_text() if self.peek()[0] == "cmd" and self.peek()[1] in _TEX_TEXT else self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else ("and", tuple(parts))

    def negation(self) -> tuple:
        if self.peek() in _TEX_NOT:
            self.take()
            return ("not", self.negation())
        word = self.text_word()
        if word in ("true", "false"):
            self.skip_text()
            return ("bool", word == "true")
        if self.peek() in (("op", "("), ("cmd", "left")):  # (y < 1): a condition in brackets, or
            start = self.i  # a value in brackets, as in (z + 1) > 0: try the first, then the second
            try:
                if self.take() == ("cmd", "left"):
                    self.expect("op", "(", "'('")
                inner = self.condition()
                if self.peek() == ("cmd", "right"):
                    self.take()
                self.expect("op", ")", "')'")
                if self.peek() not in _TEX_RELATIONS:
                    return inner
            except ParseError:
                pass
            self.i = start
        left = self.expr()
        rels = []
        while self.peek() in _TEX_RELATIONS:
            op = _TEX_RELATIONS[self.take()]
            right = self.expr()
            rels.append(("rel", op, left, right))
            left = right
        if not rels:
            raise ParseError(f"expected a condition such as y = 1, found {_tok_word(self.peek())}")
        return rels[0] if len(rels) == 1 else ("and", tuple(rels))


def _tok_word(tok) -> str:
    kind, val = tok
    if kind == "end":
        return "the end of the expression"
    if kind == "cmd":
        return f"\\{val}"
    return f"'{val}'"


def parse_latex(text: str, variables: tuple[str, ...], hints=None, aliases=None) -> tuple:
    """LaTeX math as a neutral tree (``e`` is Euler's number). Raises ParseError."""
    try:
        return _TexParser(text, variables, hints, aliases).parse()
    except RecursionError:
        raise _too_deep() from None


def parse(text: str, variables=("z", "y"), hints=None, aliases=None) -> tuple[tuple, str]:
    """(neutral tree, ``"python"`` or ``"latex"``) for the student's text. Raises ParseError.

    ``hints`` maps symbols a student may use by mistake to what to write instead
    (``{"y_hat": "sigmoid(z)"}``); they only add to the message naming them.
    ``aliases`` maps the statement's own names to their trees (:func:`read_aliases`):
    ``p`` in the answer is read as ``("alias", "p", tree)``.

    The tree's nodes: ``("num", Fraction, text)``, ``("var", name)``, ``("const", "E"|"pi")``,
    ``("alias", name, tree)``, ``("neg", a)``, ``("add"|"sub"|"mul"|"div"|"pow", a, b)``,
    ``("call", function, args)``, ``("piecewise", ((value, condition), ...))``; conditions
    are ``("rel", "=="|"!="|"<"|"<="|">"|">=", a, b)``, ``("and"|"or", conditions)``,
    ``("not", condition)`` and ``("bool", True|False)``.
    """
    variables = tuple(variables)
    cleaned = clean_text(text)
    _check_size(cleaned)
    syntax = detect_syntax(cleaned)
    parser = parse_latex if syntax == "latex" else parse_python
    return parser(cleaned, variables, hints, aliases), syntax


# --------------------------------------------------------------------------- writing it back

# How the tree is shown: as plain text (Python style, which parse() reads back), LaTeX and
# presentation MathML. Each operand is bracketed exactly when leaving the brackets out
# would change what is read: every grouping that changes the meaning is kept (a sum under
# a minus sign, a power of a sum or of a negative number, a sum divided by), and none is
# added that SymPy's evaluation would have reordered or dropped.

P_OR, P_AND, P_NOT, P_REL, P_ADD, P_NEG, P_MUL, P_POW, P_ATOM = 1, 2, 3, 4, 10, 12, 20, 30, 40
_PREC = {"or": P_OR, "and": P_AND, "not": P_NOT, "rel": P_REL, "add": P_ADD, "sub": P_ADD, "neg": P_NEG,
         "mul": P_MUL, "div": P_MUL, "pow": P_POW}
_E_NOTATION = re.compile(r"^(?P<m>[\d.]+)[eE](?P<e>[+-]?\d+)$")

_PLAIN_NAMES = {"heaviside": "Heaviside"}
_REL_PLAIN = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_REL_LATEX = {"==": "=", "!=": r"\neq", "<": "<", "<=": r"\leq", ">": ">", ">=": r"\geq"}
_REL_MATHML = {"==": "=", "!=": "≠", "<": "&lt;", "<=": "≤", ">": "&gt;", ">=": "≥"}
_LATEX_FUNCS = {"sigmoid": r"\sigma", "log": r"\log", "tanh": r"\tanh", "sinh": r"\sinh", "cosh": r"\cosh",
                "max": r"\max", "min": r"\min", "sign": r"\operatorname{sgn}", "log1p": r"\operatorname{log1p}",
                "expm1": r"\operatorname{expm1}", "softplus": r"\operatorname{softplus}",
                "heaviside": r"\operatorname{H}", "pow": r"\operatorname{pow}"}
_MATHML_FUNCS = {"sigmoid": "σ", "log": "log", "tanh": "tanh", "sinh": "sinh", "cosh": "cosh", "max": "max",
                 "min": "min", "sign": "sgn", "log1p": "log1p", "expm1": "expm1", "softplus": "softplus",
                 "heaviside": "H", "pow": "pow"}
MATHML_NS = "http://www.w3.org/1998/Math/MathML"
APPLY, INVISIBLE_TIMES, MINUS = "\u2061", "\u2062", "\u2212"


def precedence(node: tuple) -> int:
    """How tightly a node binds when written out (atoms, calls and cases: tightest)."""
    if node[0] == "num" and _E_NOTATION.match(node[2]):
        return P_MUL  # shown as m × 10^k
    return _PREC.get(node[0], P_ATOM)


def _num_text(node: tuple) -> str:
    return node[2] if len(node) > 2 else str(node[1])


def to_plain(node: tuple) -> str:
    """Python-style text for a tree (``1/(1 + exp(-z)) - y``), which :func:`parse` reads back."""
    return _Plain().show(node)


def to_latex(node: tuple) -> str:
    """LaTeX for a tree (``\\frac{1}{1 + e^{-z}} - y``)."""
    return _Latex().show(node)


def to_mathml(node: tuple) -> str:
    """Presentation MathML for a tree, in a ``<math>`` element; only characters and the
    XML escapes ``&lt; &gt; &amp;``, so it is valid XML as well as HTML."""
    return f'<math xmlns="{MATHML_NS}">{_MathML().show(node)}</math>'


class _Writer:
    """What the three forms share: when an operand needs brackets."""

    def prec(self, node: tuple) -> int:
        return precedence(node)

    def operand(self, node: tuple, least: int, no_neg: bool = False) -> str:
        """``node`` as an operand that must bind at least as tightly as ``least``."""
        text = self.show(node)
        if self.prec(node) < least or (no_neg and self.starts_negative(node)):
            return self.fence(text)
        return text

    def leading_number(self, node: tuple) -> bool:
        """Whether the written form begins with a digit (2 · 3, not 23)."""
        kind = node[0]
        if kind == "num":
            return True
        if kind in ("mul", "add", "sub") or (kind == "pow" and node[1][0] == "num"):
            return self.leading_number(node[1])
        return False

    def trailing_number(self, node: tuple) -> bool:
        """Whether the written form ends with a digit (2 · ½, not the mixed number 2½)."""
        kind = node[0]
        if kind == "num":
            return True
        if kind in ("mul", "add", "sub"):
            return self.trailing_number(node[2])
        if kind == "neg":
            return self.trailing_number(node[1])
        return False

    def needs_dot(self, left: tuple, right: tuple) -> bool:
        return self.leading_number(right) or (right[0] == "div" and self.trailing_number(left))

    def starts_negative(self, node: tuple) -> bool:
        """Whether the written form begins with a minus sign (``a + -b`` needs brackets)."""
        kind = node[0]
        if kind == "neg":
            return True
        if kind in ("add", "sub", "mul"):
            return self.starts_negative(node[1])
        return False

    writers: dict = {}  # node kind -> the method writing it (``_num`` writes "num"), per class

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.writers = {name[1:]: fn for klass in reversed(cls.__mro__) for name, fn in vars(klass).items()
                       if name.startswith("_") and not name.startswith("__") and callable(fn)}

    def show(self, node: tuple) -> str:
        write = self.writers.get(node[0])
        if write is None:  # pragma: no cover - the parsers make no others
            raise ValueError(f"unknown node {node[0]!r}")
        return write(self, node)

    def _alias(self, node):
        return self._var(node)


class _Plain(_Writer):
    def prec(self, node: tuple) -> int:
        return _PREC.get(node[0], P_ATOM)  # 1e-3 is one token here

    def fence(self, text):
        return f"({text})"

    def _num(self, node):
        return _num_text(node)

    def _var(self, node):
        return node[1]

    def _const(self, node):
        return "e" if node[1] == "E" else "pi"

    def _neg(self, node):
        return "-" + self.operand(node[1], P_MUL, no_neg=True)

    def _add(self, node):
        return f"{self.operand(node[1], P_ADD)} + {self.operand(node[2], P_MUL, no_neg=True)}"

    def _sub(self, node):
        return f"{self.operand(node[1], P_ADD)} - {self.operand(node[2], P_MUL, no_neg=True)}"

    def _mul(self, node):
        return f"{self.operand(node[1], P_MUL)}*{self.operand(node[2], P_POW)}"

    def _div(self, node):
        return f"{self.operand(node[1], P_MUL)}/{self.operand(node[2], P_POW)}"

    def _pow(self, node):
        if node[1] == ("const", "E"):
            return f"exp({self.show(node[2])})"
        exponent = self.show(node[2])
        if precedence(node[2]) < P_ATOM:
            exponent = f"({exponent})"
        return f"{self.operand(node[1], P_ATOM)}**{exponent}"

    def _call(self, node):
        name = _PLAIN_NAMES.get(node[1], node[1])
        return f"{name}({', '.join(self.show(a) for a in node[2])})"

    def _piecewise(self, node):
        return "Piecewise(" + ", ".join(f"({self.show(v)}, {self.show(c)})" for v, c in node[1]) + ")"

    def _rel(self, node):
        return f"{self.show(node[2])} {_REL_PLAIN[node[1]]} {self.show(node[3])}"

    def _and(self, node):
        return " and ".join(self.operand(c, P_NOT) for c in node[1])

    def _or(self, node):
        return " or ".join(self.operand(c, P_AND) for c in node[1])

    def _not(self, node):
        return "not " + self.operand(node[1], P_NOT)

    def _bool(self, node):
        return repr(node[1])


class _Latex(_Writer):
    def fence(self, text):
        return rf"\left({text}\right)"

    def _num(self, node):
        m = _E_NOTATION.match(_num_text(node))
        if m:
            return rf"{m['m']} \times 10^{{{int(m['e'])}}}"
        return _num_text(node)

    def _var(self, node):
        return node[1] if len(node[1]) == 1 else r"\mathrm{" + node[1].replace("_", r"\_") + "}"

    def _const(self, node):
        return "e" if node[1] == "E" else r"\pi"

    def _neg(self, node):
        return "- " + self.operand(node[1], P_MUL, no_neg=True)

    def _add(self, node):
        return f"{self.operand(node[1], P_ADD)} + {self.operand(node[2], P_MUL, no_neg=True)}"

    def _sub(self, node):
        return f"{self.operand(node[1], P_ADD)} - {self.operand(node[2], P_MUL, no_neg=True)}"

    def _mul(self, node):
        left = self.operand(node[1], P_MUL)
        right = self.operand(node[2], P_MUL, no_neg=True)
        return f"{left} \\cdot {right}" if self.needs_dot(node[1], node[2]) else f"{left} {right}"

    def _div(self, node):
        return rf"\frac{{{self.show(node[1])}}}{{{self.show(node[2])}}}"

    def _pow(self, node):
        base = node[1]
        shown = "e" if base == ("const", "E") else self.operand(base, P_ATOM)
        if base[0] == "piecewise" or (base[0] == "call" and base[1] not in ("abs", "sqrt", "exp")):
            shown = self.fence(shown)  # \sigma(z)^2 would read as \sigma^2(z) to some
        return f"{shown}^{{{self.show(node[2])}}}"

    def _call(self, node):
        key, args = node[1], node[2]
        if key == "exp":
            return f"e^{{{self.show(args[0])}}}"
        if key == "sqrt":
            return rf"\sqrt{{{self.show(args[0])}}}"
        if key == "abs":
            return rf"\left|{self.show(args[0])}\right|"
        if key == "log" and len(args) == 2:
            return rf"\log_{{{self.show(args[1])}}}{self.fence(self.show(args[0]))}"
        return _LATEX_FUNCS[key] + self.fence(", ".join(self.show(a) for a in args))

    def _piecewise(self, node):
        rows = [f"{self.show(v)} & " + (r"\text{otherwise}" if c == TRUE and i == len(node[1]) - 1
                                        else rf"\text{{if }} {self.show(c)}")
                for i, (v, c) in enumerate(node[1])]
        return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"

    def _rel(self, node):
        return f"{self.show(node[2])} {_REL_LATEX[node[1]]} {self.show(node[3])}"

    def _and(self, node):
        return r" \wedge ".join(self.operand(c, P_NOT) for c in node[1])

    def _or(self, node):
        return r" \vee ".join(self.operand(c, P_AND) for c in node[1])

    def _not(self, node):
        return r"\neg " + self.operand(node[1], P_NOT)

    def _bool(self, node):
        return r"\text{true}" if node[1] else r"\text{false}"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _row(*parts: str) -> str:
    return "<mrow>" + "".join(parts) + "</mrow>"


def _mo(op: str) -> str:
    return f"<mo>{op}</mo>"


class _MathML(_Writer):
    def fence(self, text):
        return _row(_mo("("), text, _mo(")"))

    def _num(self, node):
        m = _E_NOTATION.match(_num_text(node))
        if m:
            e = int(m["e"])
            power = _row(_mo(MINUS), f"<mn>{-e}</mn>") if e < 0 else f"<mn>{e}</mn>"
            return _row(f"<mn>{m['m']}</mn>", _mo("×"), f"<msup><mn>10</mn>{power}</msup>")
        return f"<mn>{_xml(_num_text(node))}</mn>"

    def _var(self, node):
        return f"<mi>{_xml(node[1])}</mi>"

    def _const(self, node):
        return '<mi mathvariant="normal">e</mi>' if node[1] == "E" else "<mi>π</mi>"

    def _neg(self, node):
        return _row(_mo(MINUS), self.operand(node[1], P_MUL, no_neg=True))

    def _add(self, node):
        return _row(self.operand(node[1], P_ADD), _mo("+"), self.operand(node[2], P_MUL, no_neg=True))

    def _sub(self, node):
        return _row(self.operand(node[1], P_ADD), _mo(MINUS), self.operand(node[2], P_MUL, no_neg=True))

    def _mul(self, node):
        times = "⋅" if self.needs_dot(node[1], node[2]) else INVISIBLE_TIMES
        return _row(self.operand(node[1], P_MUL), _mo(times), self.operand(node[2], P_MUL, no_neg=True))

    def _div(self, node):
        return f"<mfrac>{_row(self.show(node[1]))}{_row(self.show(node[2]))}</mfrac>"

    def _pow(self, node):
        base = node[1]
        if base == ("const", "E"):
            shown = self.show(base)
        elif base[0] in ("div", "piecewise") or (base[0] == "call" and base[1] not in ("abs", "sqrt")):
            shown = self.fence(self.show(base))  # (a/b)² and (σ(z))², never a/b² or σ²(z)
        else:
            shown = self.operand(base, P_ATOM)
        return f"<msup>{shown}{_row(self.show(node[2]))}</msup>"

    def _call(self, node):
        key, args = node[1], node[2]
        if key == "exp":
            return f'<msup><mi mathvariant="normal">e</mi>{_row(self.show(args[0]))}</msup>'
        if key == "sqrt":
            return f"<msqrt>{self.show(args[0])}</msqrt>"
        if key == "abs":
            return _row(_mo("|"), self.show(args[0]), _mo("|"))
        if key == "log" and len(args) == 2:
            name = f"<msub><mi>log</mi>{_row(self.show(args[1]))}</msub>"
            return _row(name, _mo(APPLY), self.fence(self.show(args[0])))
        inner = _mo(",").join(self.show(a) for a in args)
        return _row(f"<mi>{_MATHML_FUNCS[key]}</mi>", _mo(APPLY), self.fence(inner))

    def _piecewise(self, node):
        rows = []
        for i, (value, cond) in enumerate(node[1]):
            last_true = cond == TRUE and i == len(node[1]) - 1
            when = "<mtext>otherwise</mtext>" if last_true else "<mtext>if\u00a0</mtext>" + self.show(cond)
            rows.append(f"<mtr><mtd>{self.show(value)}</mtd><mtd>{when}</mtd></mtr>")
        return _row(_mo("{"), '<mtable columnalign="left left">' + "".join(rows) + "</mtable>")

    def _rel(self, node):
        return _row(self.show(node[2]), _mo(_REL_MATHML[node[1]]), self.show(node[3]))

    def _and(self, node):
        return _row(*_join([self.operand(c, P_NOT) for c in node[1]], _mo("∧")))

    def _or(self, node):
        return _row(*_join([self.operand(c, P_AND) for c in node[1]], _mo("∨")))

    def _not(self, node):
        return _row(_mo("¬"), self.operand(node[1], P_NOT))

    def _bool(self, node):
        return "<mtext>true</mtext>" if node[1] else "<mtext>false</mtext>"


def _join(parts: list[str], sep: str) -> list[str]:
    out = []
    for i, p in enumerate(parts):
        if i:
            out.append(sep)
        out.append(p)
    return out
