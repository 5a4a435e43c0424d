"""Reading a symbolic answer: the student's text as a neutral tree, never evaluated.

Standard library only, so that a spec's ``[symbolic]`` table (its aliases) is
checked when the spec loads without importing SymPy, and so that dlgrade can ship
it, next to :mod:`graders.symbolic`, into the bounded worker that judges answers.

Python-style input is tokenised by hand, parsed with ``ast.parse(mode="eval")``
and walked with a whitelist of node types, names and functions; LaTeX input
goes through a small recursive-descent parser of our own. Both produce the
same neutral tree of tuples (see :func:`parse`), from which
:mod:`graders.symbolic` builds SymPy objects directly.
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
    """The student's text is not an expression we accept; the message says why, in one line."""


# --------------------------------------------------------------------------- vocabulary

# the names a Python-style answer may call, and the function each one means
PY_FUNCTIONS = {
    "sigmoid": "sigmoid", "σ": "sigmoid", "sigma": "sigmoid", "expit": "sigmoid",
    "logistic": "sigmoid", "exp": "exp", "log": "log", "ln": "log", "log1p": "log1p",
    "expm1": "expm1", "softplus": "softplus", "sqrt": "sqrt", "tanh": "tanh", "sinh": "sinh",
    "cosh": "cosh", "abs": "abs", "Abs": "abs", "fabs": "abs", "sign": "sign", "sgn": "sign",
    "pow": "pow", "max": "max", "Max": "max", "min": "min", "Min": "min",
}
# np.exp(z), torch.sigmoid(z), scipy.special.expit(z): a known module prefix is just a spelling
MODULE_PREFIXES = ("np", "numpy", "math", "sp", "sympy", "torch", "F", "scipy.special", "special",
                   "mp", "mpmath")
CONSTANTS = {"e": "E", "E": "E", "pi": "pi", "π": "pi"}
SHOWN_FUNCTIONS = "sigmoid, σ, exp, log, ln, sqrt, tanh, sinh, cosh, abs"

_UNICODE = {"−": "-", "–": "-", "·": "*", "⋅": "*", "×": "*", "∙": "*", "∗": "*", "÷": "/",
            "²": "^2", "³": "^3", "\u00a0": " ", "\u2009": " ", "\u202f": " "}


def _nice_names(names) -> str:
    names = [f"'{n}'" for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _and_list(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _unknown_symbols(names, variables, hints=None) -> ParseError:
    word = "symbol" if len(names) == 1 else "symbols"
    hinted = [n for n in names if n in (hints or {})]
    hint = f" (write {hints[hinted[0]]} for {hinted[0]})" if hinted else ""
    return ParseError(f"unknown {word} {_nice_names(names)}: the answer must be an expression in "
                      f"{_and_list(variables)} only{hint}")


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
    t = _ENVIRONMENT.sub(" ", " ".join(lines)).replace("&", " ")
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
    if t.count("=") == 1 and "==" not in t:
        lhs, rhs = t.split("=")
        if "L" in lhs and _DERIVATIVE_LHS.match(lhs):
            t = rhs.strip()
    return t


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
    return ("num", value)


# --------------------------------------------------------------------------- Python-style


_PY_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[^\W\d]\w*)
  | (?P<str>'[^'\n]*'|"[^"\n]*")
  | (?P<op>\*\*|//|<=|>=|==|!=|:=|->|[-+*/^%(),.\[\]{}:=<>!&|~@;])
""", re.VERBOSE)

_NODE_WORDS = {
    ast.Compare: "comparisons", ast.BoolOp: "'and'/'or'", ast.IfExp: "'if ... else'",
    ast.List: "lists", ast.Tuple: "commas (tuples)", ast.Set: "sets", ast.Dict: "dicts",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions", ast.JoinedStr: "f-strings", ast.NamedExpr: "':='",
    ast.Starred: "'*' unpacking", ast.Await: "'await'", ast.Yield: "'yield'",
    ast.YieldFrom: "'yield'", ast.Slice: "slices",
}
_OP_WORDS = {ast.Mod: "'%'", ast.FloorDiv: "'//'", ast.MatMult: "'@'", ast.BitAnd: "'&'",
             ast.BitOr: "'|'", ast.BitXor: "'^'", ast.LShift: "'<<'", ast.RShift: "'>>'",
             ast.Invert: "'~'", ast.Not: "'not'"}


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


def _implicit_products(tokens, variables) -> str:
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
            if plain_name(prev) and tok == ("op", "(") and prev[1] not in variables and prev[1] not in CONSTANTS:
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


def _forbidden(tree) -> str | None:
    """The most telling reason a parsed expression is not allowed, or None."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
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
        elif isinstance(node, ast.Constant) and (isinstance(node.value, bool) or node.value is None
                                                 or node.value is Ellipsis):
            found.append((6, f"{node.value!r} is not allowed"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, complex):
            found.append((6, "imaginary numbers are not allowed"))
        elif isinstance(node, ast.Subscript):
            found.append((4, "indexing with [...] is not allowed"))
        elif isinstance(node, ast.Call) and node.keywords:
            found.append((5, "keyword arguments are not allowed"))
        elif (isinstance(node, ast.Call) and _dotted(node.func) and _function_key(node.func) is None
              and _dotted(node.func) not in CONSTANTS):
            found.append((2, f"'{_dotted(node.func)}' is not a known function (known: {SHOWN_FUNCTIONS})"))
        elif type(node) in _NODE_WORDS:
            found.append((6, f"{_NODE_WORDS[type(node)]} are not allowed"))
        elif isinstance(node, (ast.BinOp, ast.UnaryOp)) and type(node.op) in _OP_WORDS:
            found.append((6, f"the operator {_OP_WORDS[type(node.op)]} is not allowed"))
    # the most telling kind first; among equals, the outermost (ast.walk goes breadth first)
    return min(found, key=lambda f: f[0])[1] if found else None


_PY_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Constant, ast.Load,
               ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Attribute)


def parse_python(text: str, variables: tuple[str, ...], hints=None) -> tuple:
    """Python/SymPy-style text (``^`` is a power) as a neutral tree. Raises ParseError."""
    code = _implicit_products(_py_tokens(text), variables)
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
    unknown: list[str] = []
    out = _py_node(tree.body, code, variables, unknown, 0)
    if unknown:
        raise _unknown_symbols(unknown, variables, hints)
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


def _py_node(node, code: str, variables, unknown: list, depth: int) -> tuple:
    if depth > MAX_DEPTH:
        raise _too_deep()
    d = depth + 1
    if isinstance(node, ast.BinOp):
        op = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}[type(node.op)]
        # a + b + c is left-nested in the AST, but not nested for a reader: same depth
        flat = isinstance(node.left, ast.BinOp) and _GROUP.get(type(node.left.op)) == _GROUP[type(node.op)] != "pow"
        return (op, _py_node(node.left, code, variables, unknown, depth if flat else d),
                _py_node(node.right, code, variables, unknown, d))
    if isinstance(node, ast.UnaryOp):
        inner = _py_node(node.operand, code, variables, unknown, d)
        return ("neg", inner) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Constant):
        return _number(ast.get_source_segment(code, node) or repr(node.value))
    if isinstance(node, ast.Name):
        if node.id in variables:
            return ("var", node.id)
        if node.id in CONSTANTS:
            return ("const", CONSTANTS[node.id])
        if _py_function(node.id):
            raise ParseError(f"{node.id} is a function: apply it to an argument, like {node.id}(z)")
        if node.id not in unknown:
            unknown.append(node.id)
        return ("var", node.id)
    if isinstance(node, ast.Call):
        args = [_py_node(a, code, variables, unknown, d) for a in node.args]
        if isinstance(node.func, ast.Name) and (node.func.id in variables or node.func.id in CONSTANTS):
            if len(args) != 1:
                raise ParseError(f"{node.func.id} is not a function")
            return ("mul", _py_node(node.func, code, variables, unknown, d), args[0])
        key = _function_key(node.func)
        if key is None:
            name = _dotted(node.func) or "this"
            raise ParseError(f"'{name}' is not a known function (known: {SHOWN_FUNCTIONS})")
        return _call(key, args, _dotted(node.func))
    if isinstance(node, ast.Attribute):
        last = _dotted(node).rpartition(".")[2]
        if last in CONSTANTS:
            return ("const", CONSTANTS[last])
        raise ParseError(f"{_dotted(node)} is a function: apply it to an argument, like {_dotted(node)}(z)")
    raise ParseError(f"{type(node).__name__} is not allowed")  # pragma: no cover


def _call(key: str, args: list, shown: str) -> tuple:
    want = {"pow": 2, "max": None, "min": None, "log": (1, 2)}.get(key, 1)
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
              "softplus": "softplus", "abs": "abs", "sgn": "sign", "sign": "sign"}
_TEX_WORDS = ("sigmoid", "sigma", "softplus", "expit", "tanh", "sinh", "cosh", "sqrt", "exp", "log",
              "abs", "ln")
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
        elif ch in "+-*/^_(){}[]|,":
            toks.append(("op", ch))
            i += 1
        else:
            raise ParseError(f"unexpected character {ch!r} at position {i + 1}")
    return toks


class _TexParser:
    """Recursive descent over LaTeX math: sums, products (explicit and implicit),
    powers, \\frac, \\sqrt, |...|, \\left/\\right and functions with or without brackets."""

    def __init__(self, text: str, variables: tuple[str, ...], hints=None):
        self.hints = hints or {}
        self.toks = [t for t in _tex_tokens(text) if not (t[0] == "cmd" and t[1] in _TEX_SKIP)]
        self.i = 0
        self.variables = variables
        self.unknown: list[str] = []
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
        if self.unknown:
            raise _unknown_symbols(self.unknown, self.variables, self.hints)
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
            return val not in _TEX_MUL and val not in ("div", "right", "rvert", "rbrace") and val not in _TEX_CLOSE
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
        if name in self.variables:
            return ("var", name)
        if name == "e":
            return ("const", "E")
        if name not in self.unknown:
            self.unknown.append(name)
        return ("var", name)

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
        while self.peek()[0] in ("letter", "word", "cmd") and self.peek()[1] != "}":
            tok = self.take()
            word += tok[1]
        self.expect("op", "}", f"'}}' to close \\{name}{{...}}")
        if word in _TEX_FUNCS:
            return self.function(_TEX_FUNCS[word], f"\\{name}{{{word}}}")
        if word == "sqrt":
            return self.sqrt()
        if word == "e":
            return ("const", "E")
        if word in self.variables:
            return ("var", word)
        raise ParseError(f"unknown name \\{name}{{{word}}}")

    def sqrt(self) -> tuple:
        index = None
        if self.peek() == ("op", "["):
            index = self.group("[", "]")
        arg = self.tex_arg()
        if index is None:
            return ("call", "sqrt", (arg,))
        return ("pow", arg, ("div", ("num", Fraction(1)), index))

    def function(self, key: str, shown: str) -> tuple:
        power = None
        if self.peek() == ("op", "^"):  # \sigma^2(z) is σ(z)²
            self.take()
            power = self.exponent()
        if self.peek() == ("op", "_"):
            raise ParseError("subscripts (_) are not allowed")
        tok = self.peek()
        if tok in (("op", "("), ("op", "["), ("op", "{"), ("cmd", "left")):
            arg = self.primary()
        elif self.starts_factor(tok) and tok[0] != "op":
            arg = self.power()
        else:
            raise ParseError(f"{shown} must be applied to an argument, like {shown}(z)")
        node = ("call", key, (arg,))
        return ("pow", node, power) if power is not None else node


def _tok_word(tok) -> str:
    kind, val = tok
    if kind == "end":
        return "the end of the expression"
    if kind == "cmd":
        return f"\\{val}"
    return f"'{val}'"


def parse_latex(text: str, variables: tuple[str, ...], hints=None) -> tuple:
    """LaTeX math as a neutral tree (``e`` is Euler's number). Raises ParseError."""
    try:
        return _TexParser(text, variables, hints).parse()
    except RecursionError:
        raise _too_deep() from None


def parse(text: str, variables=("z", "y"), hints=None) -> tuple[tuple, str]:
    """(neutral tree, ``"python"`` or ``"latex"``) for the student's text. Raises ParseError.

    ``hints`` maps symbols a student may use by mistake to what to write instead
    (``{"p": "sigmoid(z)"}``); they only add to the message naming them.
    """
    variables = tuple(variables)
    cleaned = clean_text(text)
    _check_size(cleaned)
    syntax = detect_syntax(cleaned)
    parser = parse_latex if syntax == "latex" else parse_python
    return parser(cleaned, variables, hints), syntax
