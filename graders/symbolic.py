"""Reading and judging a symbolic answer, without ever evaluating the student's text.

This module is self-contained (standard library, SymPy and mpmath only) because
dlgrade ships it, as a job's file, into a warm worker and calls
:func:`evaluate` there: parsing, simplification and numeric evaluation of a
student's expression run in a separate process with time and memory limits,
so a pathological expression cannot hang the grader. The grader also imports
it for :func:`to_tree` and the parser's limits.

Nothing here calls ``eval``, ``sympify`` or ``parse_expr`` on student text.
Python-style input is tokenised by hand, parsed with ``ast.parse(mode="eval")``
and walked with a whitelist of node types, names and functions; LaTeX input
goes through a small recursive-descent parser of our own. Both produce the
same neutral tree of tuples, from which SymPy objects are built directly.

Equivalence with the reference is decided three ways, each under a time
budget, with every discrete label (y = 0, y = 1) substituted: exactly (a cheap
rational-function test in the exponentials of the continuous variables, and
SymPy's ``simplify`` when the numbers find no difference), by seeded numeric
evaluation at 40 significant digits with mpmath (which never overflows; a
disagreement is rechecked at more digits before it counts), else
"undetermined".
"""
from __future__ import annotations

import ast
import contextlib
import html.entities
import itertools
import json
import math
import random
import re
import signal
import threading
import time
import unicodedata
from fractions import Fraction

import mpmath
import sympy as sp
from sympy.printing.mathml import mathml as _mathml
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

# --------------------------------------------------------------------------- limits

MAX_CHARS = 2000  # a real answer is under 200 characters
MAX_DEPTH = 60  # nesting of brackets and operations
MAX_NODES = 800  # operations, names and numbers
MAX_LITERAL = 10**15  # a number written in the answer
MAX_LITERAL_CHARS = 40
MAX_EXPONENT = 1000  # a constant exponent
MAX_NUMBER_BITS = 20_000  # any exact number the expression folds to
MAX_RESULT_CHARS = 19_000  # what evaluate() returns must cross the worker's 20k limit
EXP_ARG_LIMIT = mpmath.mpf(10) ** 9  # beyond this exp() is an overflow, not a number
DPS = 40
FIXED_POINTS = (0, 0.5, -0.5, 1, -1, 2, -2, 3.7, -3.7, 8, -8, 20, -20, 60, -60, 300, -300)
SAMPLE_RANGE = max(abs(v) for v in FIXED_POINTS)  # random points lie inside [-12, 12]
MAX_CONFIRM_DPS = 20_000  # a disagreement needing more digits than this proves nothing
MATCH_TOL = 1e-25  # two values agree (relative to 1 + |expected|; 40 digits are computed)
DIFFER_TOL = 1e-12  # two values differ; far above MATCH_TOL so no value is close to both


class ParseError(ValueError):
    """The student's text is not an expression we accept; the message says why, in one line."""


class _OutOfTime(BaseException):
    """A phase used up its time budget (BaseException: SymPy's ``except Exception`` can't eat it)."""


# --------------------------------------------------------------------------- σ


class sigmoid(sp.Function):
    """The logistic function σ(x) = 1/(1 + e^(-x)), kept whole so answers print as written."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Rational(1, 2)
        return None

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return True if self.args[0].is_real else None

    def _latex(self, printer, exp=None):
        arg = printer._print(self.args[0])
        if exp is None:
            return r"\sigma\left(%s\right)" % arg
        return r"\sigma^{%s}\left(%s\right)" % (exp, arg)

    def _mathml_presentation(self, printer):
        return printer._print(sp.Function("σ")(*self.args))


def symbol(name: str) -> sp.Symbol:
    """The SymPy symbol for a variable of an exercise (always real)."""
    return sp.Symbol(name, real=True)


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


# --------------------------------------------------------------------------- building SymPy


_UNDEFINED_ATOMS = (sp.nan, sp.zoo, sp.oo, -sp.oo)


def _check_number(x) -> None:
    """Refuse an exact number beyond the bounds, and 1/0, log(0)... where they first appear
    (before Max, Min or comparisons meet them)."""
    if x.is_Rational and max(abs(x.p).bit_length(), abs(x.q).bit_length()) > MAX_NUMBER_BITS:
        raise ParseError("a number in the expression is too large")
    if x in _UNDEFINED_ATOMS:
        raise ParseError(UNDEFINED)


UNDEFINED = "the expression is undefined: it divides by zero or is infinite"


def _magnitude(x) -> float:
    """|x| for a constant expression, as a float (inf when too large to compute)."""
    try:
        with mpmath.workdps(15):
            v = numeric_value(x, {})
    except _Overflow:
        return math.inf
    except (_Undefined, _NotReal, ValueError, TypeError, ArithmeticError):
        return 0.0
    try:
        return float(abs(v))
    except (OverflowError, TypeError):
        return math.inf


def _check_power(base, exponent) -> None:
    """A constant exponent (10**100, e^{e^{10}}) must stay small, and so must a power of
    two constants: no exact number of more than MAX_NUMBER_BITS bits is ever built."""
    if not exponent.is_number:
        return
    size = _magnitude(exponent)
    if size > MAX_EXPONENT:
        raise ParseError(f"a constant exponent is too large ({_fmt_exponent(size)}; the limit is "
                         f"{MAX_EXPONENT})")
    if base.is_number:
        b = _magnitude(base)
        if b not in (0.0, 1.0) and (math.isinf(b) or size * abs(math.log10(b)) > MAX_NUMBER_BITS / 3.33):
            raise ParseError("a number in the expression is too large")


def _fmt_exponent(v: float) -> str:
    if math.isinf(v):
        return "too large to compute"
    return f"{v:.3g}" if v >= 1e6 else f"{v:g}"


def build(tree: tuple, evaluate: bool = True):
    """SymPy object for a neutral tree. ``evaluate=False`` keeps the student's form for display.

    Raises ParseError for exponents and numbers beyond dlgrade's bounds, and for
    expressions that are undefined outright (a division by zero).
    """
    expr = _build(tree, evaluate, 0)
    if evaluate and expr.has(*_UNDEFINED_ATOMS):
        raise ParseError(UNDEFINED)
    return expr


def _build(node: tuple, ev: bool, depth: int):
    if depth > 2 * MAX_DEPTH + 10:
        raise _too_deep()
    kind = node[0]
    d = depth + 1
    if kind == "num":
        v = node[1]
        if ev or v.denominator == 1:
            return sp.Rational(v.numerator, v.denominator)
        return sp.Float(float(v), 15)
    if kind == "var":
        return symbol(node[1])
    if kind == "const":
        return sp.E if node[1] == "E" else sp.pi
    if kind == "neg":
        a = _build(node[1], ev, d)
        return -a if ev or a.is_Number else sp.Mul(sp.Integer(-1), a, evaluate=False)
    if kind in ("add", "sub", "mul", "div", "pow"):
        flat = _TREE_GROUP.get(node[1][0], "") == _TREE_GROUP.get(kind)  # a + b + c: not deeper
        a, b = _build(node[1], ev, depth if flat else d), _build(node[2], ev, d)
        if kind == "pow":
            _check_power(a, b)
        if not ev:  # the student's own form; a left operand of the same kind is flattened
            if kind in ("add", "sub"):
                left = list(a.args) if isinstance(a, sp.Add) else [a]
                right = -b if b.is_Number else sp.Mul(sp.Integer(-1), b, evaluate=False)
                return sp.Add(*left, b if kind == "add" else right, evaluate=False)
            if kind in ("mul", "div"):
                left = list(a.args) if isinstance(a, sp.Mul) else [a]
                if kind == "div":
                    b = sp.Pow(b, -1, evaluate=False)
                    if a == 1:
                        return b
                return sp.Mul(*left, b, evaluate=False)
            return sp.Pow(a, b, evaluate=False)
        out = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
               "div": lambda: a / b, "pow": lambda: a ** b}[kind]()
        _check_number(out)
        return out
    if kind == "call":
        args = [_build(a, ev, d) for a in node[2]]
        out = _apply(node[1], args, ev)
        if ev:
            _check_number(out)
        return out
    raise ValueError(f"unknown node {kind!r}")  # pragma: no cover - the parsers make no others


# functions of one argument that map straight onto a SymPy function
_UNARY = {"exp": sp.exp, "sqrt": sp.sqrt, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
          "abs": sp.Abs, "sign": sp.sign}


def _apply(key: str, args: list, ev: bool):
    x = args[0]
    if key in _UNARY:
        return _UNARY[key](x, evaluate=ev)
    if key == "sigmoid":
        return sigmoid(x, evaluate=ev)
    if key == "log":
        if len(args) == 2:
            return sp.log(x, evaluate=ev) / sp.log(args[1], evaluate=ev) if ev else sp.Mul(
                sp.log(x, evaluate=False), sp.Pow(sp.log(args[1], evaluate=False), -1, evaluate=False),
                evaluate=False)
        return sp.log(x, evaluate=ev)
    if key == "log1p":
        return sp.log(sp.Add(1, x, evaluate=ev), evaluate=ev)
    if key == "expm1":
        return sp.Add(sp.exp(x, evaluate=ev), -1, evaluate=ev)
    if key == "softplus":
        return sp.log(sp.Add(1, sp.exp(x, evaluate=ev), evaluate=ev), evaluate=ev)
    if key == "pow":
        _check_power(x, args[1])
        return sp.Pow(x, args[1], evaluate=ev)
    if key == "max":
        return sp.Max(*args, evaluate=ev)
    if key == "min":
        return sp.Min(*args, evaluate=ev)
    raise ValueError(f"unknown function {key!r}")  # pragma: no cover


# --------------------------------------------------------------------------- trusted trees


_TREE_FUNCS = {"exp": sp.exp, "log": sp.log, "sigmoid": sigmoid, "tanh": sp.tanh, "sinh": sp.sinh,
               "cosh": sp.cosh, "Abs": sp.Abs, "sign": sp.sign, "Max": sp.Max, "Min": sp.Min}


def to_tree(expr) -> dict:
    """A trusted SymPy expression (a reference) as plain JSON data, for shipping to a worker."""
    if expr.is_Symbol:
        return {"s": expr.name}
    if expr.is_Rational:
        return {"q": [int(expr.p), int(expr.q)]}
    if expr.is_Float:
        f = Fraction(repr(float(expr)))
        return {"q": [f.numerator, f.denominator]}
    if expr is sp.E:
        return {"c": "E"}
    if expr is sp.pi:
        return {"c": "pi"}
    if isinstance(expr, (sp.Add, sp.Mul, sp.Pow)):
        return {"o": type(expr).__name__, "a": [to_tree(a) for a in expr.args]}
    name = type(expr).__name__
    if name in _TREE_FUNCS:
        return {"f": name, "a": [to_tree(a) for a in expr.args]}
    raise ValueError(f"cannot ship {name} in a reference expression")


def from_tree(tree: dict, depth: int = 0):
    """The SymPy expression :func:`to_tree` described."""
    if depth > 200:
        raise ValueError("reference tree too deep")
    if "s" in tree:
        return symbol(str(tree["s"]))
    if "q" in tree:
        return sp.Rational(int(tree["q"][0]), int(tree["q"][1]))
    if "c" in tree:
        return {"E": sp.E, "pi": sp.pi}[tree["c"]]
    args = [from_tree(a, depth + 1) for a in tree["a"]]
    if "o" in tree:
        return {"Add": sp.Add, "Mul": sp.Mul, "Pow": sp.Pow}[tree["o"]](*args)
    return _TREE_FUNCS[tree["f"]](*args)


# --------------------------------------------------------------------------- rendering


class _PlainPrinter(StrPrinter):
    """SymPy's str form, with e**x written exp(x) and a student's a/(b*c) kept as written."""

    def _print_Mul(self, expr):
        *num, last = expr.args
        if num and isinstance(last, sp.Pow) and last.exp == -1:  # an unevaluated division
            sign = "-" if num[0] == -1 else ""
            num = num[1:] if sign else num
            top = (num[0] if len(num) == 1 else sp.Mul(*num, evaluate=False)) if num else sp.Integer(1)
            # parenthesize() wraps below the level, or at it too unless strict
            return (f"{sign}{self.parenthesize(top, PRECEDENCE['Mul'], strict=True)}/"
                    f"{self.parenthesize(last.base, PRECEDENCE['Mul'])}")
        return super()._print_Mul(expr)

    def _print_Pow(self, expr, rational=False):
        if expr.base is sp.E:
            return f"exp({self._print(expr.exp)})"
        return super()._print_Pow(expr, rational)


def plain(expr) -> str:
    return _PlainPrinter({"order": "none"}).doprint(expr)


def latex(expr) -> str:
    return sp.latex(expr, order="none")


_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = {"lt", "gt", "amp", "quot", "apos"}


def _entity_to_char(m) -> str:
    name = m.group(1)
    if name in _XML_ENTITIES:
        return m.group(0)
    if name.startswith("#"):
        code = int(name[2:], 16) if name[1:2] in "xX" else int(name[1:])
        return chr(code)
    return html.entities.html5.get(name + ";", m.group(0))


def mathml(expr) -> str:
    """Presentation MathML in a <math> element, with characters instead of HTML entities
    (&ExponentialE; and friends), so it is valid XML as well as HTML."""
    inner = _ENTITY.sub(_entity_to_char, _mathml(expr, printer="presentation", order="none"))
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML">{inner}</math>'


def display_form(expr):
    """A readable form of a trusted expression: expanded when that is shorter,
    with negative terms last (σ(z) - y rather than -y + σ(z))."""
    try:
        expanded = sp.expand(expr)
        if sp.count_ops(expanded) < sp.count_ops(expr):
            expr = expanded
    except Exception:  # noqa: BLE001 - display only
        pass
    return _negatives_last(expr)


def _negatives_last(expr):
    if not expr.args:
        return expr
    args = [_negatives_last(a) for a in expr.args]
    if isinstance(expr, sp.Add):
        args.sort(key=lambda a: a.could_extract_minus_sign())
        return sp.Add(*args, evaluate=False)
    return expr.func(*args, evaluate=False) if isinstance(expr, (sp.Mul, sp.Pow)) else expr.func(*args)


# --------------------------------------------------------------------------- time budgets


@contextlib.contextmanager
def budget(seconds: float):
    """Raise _OutOfTime in this block after ``seconds`` (a no-op off the main thread)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _alarm(signum, frame):
        raise _OutOfTime()

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- exact equality


def _rationalise_exps(e, continuous):
    """Replace exp(c·v + k) (c rational) by t_v^(c·L)·exp(k), so that an expression in z
    and e^{cz} becomes a rational function; None if some exp is not of that form."""
    e = sp.expand_power_exp(e)
    exps = list(e.atoms(sp.exp))
    coeffs: dict = {}
    for x in exps:
        arg = x.args[0]
        entry = {}
        rest = arg
        for v in continuous:
            c = sp.diff(arg, v)
            if not c.is_Rational:
                return None
            entry[v] = c
            rest = rest - c * v
        if rest.free_symbols & set(continuous):
            return None
        coeffs[x] = (entry, rest)
    if not coeffs:
        return e
    t = {v: sp.Dummy(f"t_{v}", positive=True) for v in continuous}
    lcm = {v: sp.ilcm(*[c[0][v].q for c in coeffs.values()]) for v in continuous}
    repl = {}
    for x, (entry, rest) in coeffs.items():
        val = sp.exp(rest)
        for v in continuous:
            val *= t[v] ** (entry[v] * lcm[v])
        repl[x] = val
    out = e.xreplace(repl)
    return out


def quick_zero(d, continuous) -> bool:
    """True when ``d`` is shown to be zero cheaply: after rewriting σ, tanh, sinh and cosh
    with exp, it is a rational function of the variables and their exponentials that
    cancels to 0. False proves nothing."""
    if d == 0:
        return True
    e = d.rewrite(sp.exp)
    if e == 0:
        return True
    try:
        r = _rationalise_exps(e, continuous)
        return r is not None and sp.cancel(sp.together(r)) == 0
    except (ValueError, TypeError, ArithmeticError, sp.PolynomialError, NotImplementedError):
        return False


def simplify_zero(d) -> bool:
    """True when SymPy's ``simplify`` reduces ``d`` (rewritten with exp) to 0."""
    return sp.simplify(d.rewrite(sp.exp)) == 0


# --------------------------------------------------------------------------- numeric evaluation


class _Undefined(Exception):
    """The expression has no value at this point (division by zero, log of 0)."""


class _NotReal(Exception):
    """The expression is not a real number at this point (log or root of a negative)."""


class _Overflow(Exception):
    """Too large to compute (e^(e^(e^z)) for large z): the point tells us nothing."""


def _mp_exp(x):
    if abs(x) > EXP_ARG_LIMIT:
        raise _Overflow()
    return mpmath.exp(x)


def _mp_log(x):
    if x == 0:
        raise _Undefined("log of 0")
    if x < 0:
        raise _NotReal("log of a negative number")
    return mpmath.log(x)


def _mp_pow(b, x):
    if b == 0:
        if x < 0:
            raise _Undefined("division by zero")
        if x == 0:
            raise _Undefined("0 to the power 0")
        return mpmath.mpf(0)
    integer = x == mpmath.floor(x)
    if b < 0 and not integer:
        raise _NotReal("a root of a negative number")
    if abs(x) * abs(mpmath.log(abs(b))) > EXP_ARG_LIMIT:
        raise _Overflow()
    return b ** x


_MP_FUNCS = {
    sp.exp: lambda a: _mp_exp(a[0]),
    sp.log: lambda a: _mp_log(a[0]),
    sigmoid: lambda a: 1 / (1 + _mp_exp(-a[0])) if a[0] > -EXP_ARG_LIMIT else mpmath.mpf(0),
    sp.tanh: lambda a: mpmath.tanh(a[0]) if abs(a[0]) < EXP_ARG_LIMIT else mpmath.sign(a[0]),
    sp.sinh: lambda a: mpmath.sinh(a[0]) if abs(a[0]) < EXP_ARG_LIMIT else _raise(_Overflow()),
    sp.cosh: lambda a: mpmath.cosh(a[0]) if abs(a[0]) < EXP_ARG_LIMIT else _raise(_Overflow()),
    sp.Abs: lambda a: abs(a[0]),
    sp.sign: lambda a: mpmath.sign(a[0]),
    sp.Max: lambda a: max(a),
    sp.Min: lambda a: min(a),
}


def _raise(exc):
    raise exc


_MAGNITUDE = [0]  # the largest term added so far, in bits (how much cancellation can cost)


def numeric_value(expr, env: dict):
    """``expr`` at a point (symbol -> mpf), as an mpf at the current precision.

    Raises _Undefined, _NotReal or _Overflow.
    """
    if expr.is_Symbol:
        return env[expr]
    if expr.is_Rational:
        return mpmath.mpf(expr.p) / expr.q
    if expr.is_Float:
        return mpmath.mpf(expr)
    if expr is sp.E:
        return mpmath.e
    if expr is sp.pi:
        return mpmath.pi
    if isinstance(expr, sp.Add):
        terms = [numeric_value(a, env) for a in expr.args]
        _MAGNITUDE[0] = max(_MAGNITUDE[0], max(mpmath.mag(t) for t in terms))
        return mpmath.fsum(terms)
    if isinstance(expr, sp.Mul):
        out = mpmath.mpf(1)
        for a in expr.args:
            out *= numeric_value(a, env)
        return out
    if isinstance(expr, sp.Pow):
        b = numeric_value(expr.base, env)
        x = numeric_value(expr.exp, env)
        return _mp_pow(b, x)
    fn = _MP_FUNCS.get(expr.func)
    if fn is not None:
        return fn([numeric_value(a, env) for a in expr.args])
    # anything SymPy's own evaluation produced that we do not know: ask evalf
    val = expr.xreplace({s: sp.Float(str(v), DPS) for s, v in env.items()}).evalf(DPS)
    if val.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise _Undefined("an undefined value")
    if not val.is_real:
        raise _NotReal()
    return mpmath.mpf(str(val))


def _value(expr, env):
    """('ok', mpf) or (reason-kind, text) for one point."""
    try:
        v = numeric_value(expr, env)
    except _Overflow:
        return ("overflow", "too large to compute")
    except _Undefined as exc:
        return ("undefined", f"undefined ({exc.args[0] if exc.args else 'division by zero'})")
    except _NotReal as exc:
        return ("not-real", f"not a real number ({exc.args[0]})" if exc.args else "not a real number")
    except ZeroDivisionError:
        return ("undefined", "undefined (division by zero)")
    except (ValueError, TypeError, ArithmeticError):  # mpmath or SymPy gave up: no evidence here
        return ("overflow", "could not be computed")
    if isinstance(v, mpmath.mpc):
        if v.imag != 0:
            return ("not-real", "not a real number")
        v = v.real
    if not mpmath.isfinite(v):
        return ("overflow", "too large to compute")
    return ("ok", v)


def close(a, b, tol: float) -> bool:
    return abs(a - b) <= tol * (1 + abs(b))


def sample_points(continuous, discrete: dict, seed: int, n_random: int = 16) -> list[dict]:
    """Seeded evaluation points: fixed values first (0, ±1, …, ±300), then random ones,
    each with every combination of the discrete variables' values."""
    fixed = FIXED_POINTS
    rng = random.Random(seed)
    points = []
    combos = list(itertools.product(*[discrete[k] for k in discrete])) or [()]
    if len(continuous) <= 1:
        values = list(fixed) + [round(rng.uniform(-12, 12), 4) for _ in range(n_random)]
        cont_rows = [(v,) for v in values] if continuous else [()]
    else:
        cont_rows = [tuple(0 for _ in continuous)] + [
            tuple(round(rng.choice([rng.uniform(-12, 12), rng.choice(fixed)]), 4) for _ in continuous)
            for _ in range(len(fixed) + n_random - 1)]
    for row in cont_rows:
        for combo in combos:
            p = dict(zip(continuous, row))
            p.update(zip(discrete, combo))
            points.append(p)
    return points


def _json_number(v) -> float | str:
    """A float for JSON, or mpmath's short text for a value beyond float range (1.2e+4777)."""
    f = float(v)
    if math.isnan(f):
        return "nan"
    if math.isinf(f) or (f == 0 and v != 0):  # mantissa and exponent, never a huge int as text
        e10 = int(mpmath.floor(mpmath.log10(abs(v))))
        return f"{float(v / mpmath.mpf(10) ** e10):.7g}e{e10:+d}"
    return f


def _point_json(p: dict) -> dict:
    return {k: (int(v) if float(v).is_integer() else float(v)) for k, v in p.items()}


# --------------------------------------------------------------------------- the entry point


def evaluate(payload: dict) -> str:
    """Judge one answer; returns a JSON string (see ``_judge`` for its keys).

    ``payload``: ``text`` (the student's expression), ``variables`` (names),
    ``discrete`` (name -> allowed values, e.g. ``{"y": [0, 1]}``), ``reference``
    (a :func:`to_tree` tree), ``mistakes`` (id -> list of trees), ``seed``, and
    the time budgets in seconds ``total_s`` and, within it, ``parse_s``,
    ``render_s``, ``quick_s``, ``numeric_s``, ``simplify_s``.

    The JSON object holds ``ok`` (the text was read) or ``parse_error``;
    ``syntax``, ``parsed`` and the LaTeX/MathML renderings; ``method``
    (simplify|numeric|undetermined), ``equivalent`` (true/false/null),
    ``counterexample``, ``reason``; ``numeric`` statistics; ``evidence`` for the
    mistakes (see :func:`_numeric`); ``timings``. It always fits the worker's
    string limit (renderings, then evidence, are dropped if need be).
    """
    result = _judge(payload)
    return _fit(result)


def _fit(result: dict) -> str:
    out = json.dumps(result)
    for key in ("student_mathml", "reference_mathml", "student_latex", "parsed", "evidence"):
        if len(out) <= MAX_RESULT_CHARS:
            break
        if result.get(key):
            result[key] = {} if key == "evidence" else None
            result.setdefault("dropped", []).append(key)
            out = json.dumps(result)
    return out


def _judge(payload: dict) -> dict:
    t_start = time.perf_counter()
    timings: dict = {}
    variables = tuple(payload.get("variables", ("z", "y")))
    discrete = {k: list(v) for k, v in (payload.get("discrete") or {}).items()}
    continuous = [symbol(v) for v in variables if v not in discrete]
    res: dict = {"ok": False, "syntax": None, "parse_error": None, "parsed": None,
                 "student_latex": None, "student_mathml": None, "reference_latex": None,
                 "reference_mathml": None, "method": None, "equivalent": None,
                 "counterexample": None, "numeric": None, "simplify": None, "evidence": {},
                 "reason": None, "timings": timings}
    reference = from_tree(payload["reference"])
    mistakes = {k: [from_tree(t) for t in v] for k, v in (payload.get("mistakes") or {}).items()}
    total = float(payload.get("total_s", 9.0))

    def phase(name: str, default: float) -> float:  # a phase's budget, within the total
        return max(0.0, min(float(payload.get(name, default)), total - (time.perf_counter() - t_start)))

    timings["setup"] = time.perf_counter() - t_start

    # 1. the reference, as the student will see it
    t = time.perf_counter()
    try:
        with budget(phase("render_s", 1.0)):
            ref_shown = display_form(reference)
            res["reference_latex"] = latex(ref_shown)
            res["reference_mathml"] = mathml(ref_shown)
    except (_OutOfTime, RecursionError, MemoryError, Exception):  # noqa: BLE001 - display is optional
        pass
    timings["reference"] = time.perf_counter() - t
    t = time.perf_counter()

    # 2. read the student's text
    try:
        with budget(phase("parse_s", 1.0)):
            tree, syntax = parse(payload.get("text", ""), variables, payload.get("hints"))
            res["syntax"] = syntax
            student = build(tree, evaluate=True)
            shown = build(tree, evaluate=False)
    except ParseError as exc:
        res["parse_error"] = str(exc)
        return res
    except _OutOfTime:
        res["parse_error"] = "reading the expression took too long"
        return res
    except (RecursionError, MemoryError):
        res["parse_error"] = "the expression is too large or nested too deeply"
        return res
    except (ValueError, TypeError, ArithmeticError) as exc:  # SymPy refused to build it
        res["parse_error"] = f"SymPy cannot work with this expression ({type(exc).__name__})"
        return res
    timings["parse"] = time.perf_counter() - t
    res["ok"] = True
    try:
        with budget(phase("render_s", 1.0)):
            res["parsed"] = plain(shown)
            res["student_latex"] = latex(shown)
            res["student_mathml"] = mathml(shown)
    except (_OutOfTime, RecursionError, MemoryError, Exception):  # noqa: BLE001 - display is optional
        pass
    if res["parsed"] is None:
        res["parsed"] = clean_text(payload.get("text", ""))[:200]
    timings["render"] = time.perf_counter() - t

    # 3. exact, the cheap way: each discrete value substituted, a rational-function test
    t = time.perf_counter()
    combos = [dict(zip(discrete, c)) for c in itertools.product(*discrete.values())] or [{}]
    diffs = [(student, {symbol(k): sp.Rational(str(v)) for k, v in c.items()}) for c in combos]
    proved = _exact(reference, diffs, lambda d: quick_zero(d, continuous), phase("quick_s", 1.0), res)
    timings["exact"] = time.perf_counter() - t
    if proved:
        res["method"], res["equivalent"] = "simplify", True
        timings["total"] = time.perf_counter() - t_start
        return res

    # 4. numeric: seeded points at 40 digits; the known mistakes compared on the same points
    t = time.perf_counter()
    numeric = _numeric(student, reference, mistakes, continuous, discrete,
                       int(payload.get("seed", 0)), phase("numeric_s", 3.0))
    timings["numeric"] = time.perf_counter() - t
    stats, counterexample = numeric["stats"], numeric["counterexample"]
    res["numeric"], res["evidence"] = stats, numeric["evidence"]
    if counterexample is not None:
        res["method"], res["equivalent"], res["counterexample"] = "numeric", False, counterexample
        timings["total"] = time.perf_counter() - t_start
        return res

    # 5. no counterexample: let SymPy's simplify try to prove it before trusting the numbers
    t = time.perf_counter()
    proved = _exact(reference, diffs, simplify_zero, phase("simplify_s", 3.0), res)
    timings["simplify"] = time.perf_counter() - t
    if proved:
        res["method"], res["equivalent"] = "simplify", True
    elif stats["finished"] and stats["agree"] >= max(10, (stats["points"] + 1) // 2):
        res["method"], res["equivalent"] = "numeric", True
    else:
        res["method"] = "undetermined"
        if not stats["finished"]:
            res["reason"] = numeric["reason"] or "numeric evaluation did not finish in time"
        else:
            res["reason"] = (f"only {stats['agree']} of {stats['points']} test points could be "
                             "evaluated")
    timings["total"] = time.perf_counter() - t_start
    return res


def _exact(reference, cases, test, seconds: float, res: dict) -> bool:
    """Whether ``test`` shows student - reference is zero for every substitution of the
    discrete values in ``cases`` within ``seconds``; notes how it went in ``res``."""
    try:
        with budget(seconds):
            proved = all(test((student - reference).xreplace(subs)) for student, subs in cases)
        res["simplify"] = "zero" if proved else "inconclusive"
        return proved
    except _OutOfTime:
        res["simplify"] = "timeout"
    except (RecursionError, MemoryError):
        res["simplify"] = "too-large"
    except Exception:  # noqa: BLE001 - SymPy gave up; the other methods still decide
        res["simplify"] = "inconclusive"
    return False


def _confirm(student, reference, env: dict):
    """Recheck a disagreement at a precision that covers the largest intermediate value,
    so that cancellation in a correct but ill-conditioned form
    ((z+1)^300 (z-1)^300 - (z^2-1)^300) is never taken for a counterexample.

    Returns ``("agree"|"differ"|"unstable", student value, reference value)``.
    """
    _MAGNITUDE[0] = 0
    _value(student, env)
    _value(reference, env)
    digits = int(_MAGNITUDE[0] * 0.30103) + DPS + 20
    if digits > MAX_CONFIRM_DPS:
        return "unstable", None, None
    values = []
    for dps in (max(digits, 100), max(digits, 100) + 60):
        with mpmath.workdps(dps):
            env_hi = {k: +v for k, v in env.items()}
            ref_kind, ref_v = _value(reference, env_hi)
            s_kind, s_v = _value(student, env_hi)
            if ref_kind != "ok" or s_kind == "overflow":
                return "unstable", s_v, ref_v
            if s_kind == "ok" and close(s_v, ref_v, MATCH_TOL):
                return "agree", s_v, ref_v
            values.append((s_kind, s_v, ref_v))
    (k1, v1, _), (k2, v2, r2) = values
    if k2 != "ok":  # undefined or not real at every precision: a true difference
        return ("differ", v2, r2) if k1 == k2 else ("unstable", v2, r2)
    if k1 == "ok" and close(v1, v2, 1e-6):
        return "differ", v2, r2
    return "unstable", v2, r2


def _numeric(student, reference, mistakes, continuous, discrete, seed: int, seconds: float) -> dict:
    """Evaluate everything at the seeded points.

    Returns ``stats`` (points, agree, skipped, finished), the first
    ``counterexample`` (or None), ``evidence`` (mistake id -> one string per
    variant, one character per point where all three have a value: ``"0"``-``"3"``
    = 2·(student matches the mistake) + (the mistake differs from the reference))
    and a ``reason`` when it stopped early.
    """
    points = sample_points([str(c) for c in continuous], discrete, seed)
    stats = {"points": len(points), "agree": 0, "skipped": 0, "finished": False}
    evidence = {k: ["" for _ in v] for k, v in mistakes.items()}
    counterexample, reason = None, None
    try:
        with budget(seconds), mpmath.workdps(DPS):
            for p in points:
                env = {symbol(k): mpmath.mpf(v) for k, v in p.items()}
                ref_kind, ref_v = _value(reference, env)
                kind, val = _value(student, env) if ref_kind == "ok" else ("overflow", None)
                if kind == "overflow":
                    stats["skipped"] += 1
                    continue
                if kind == "ok" and close(val, ref_v, MATCH_TOL):
                    stats["agree"] += 1
                elif counterexample is None:
                    verdict, val_hi, ref_hi = _confirm(student, reference, env)
                    if verdict == "agree":
                        stats["agree"] += 1
                    elif verdict == "unstable":
                        stats["skipped"] += 1
                    else:
                        counterexample = {"point": _point_json(p),
                                          "student": _json_number(val_hi) if kind == "ok" else val,
                                          "expected": _json_number(ref_hi)}
                if kind != "ok":
                    continue
                for k, variants in mistakes.items():
                    for i, m in enumerate(variants):
                        m_kind, m_v = _value(m, env)
                        if m_kind == "ok":
                            code = 2 * close(val, m_v, MATCH_TOL) + (not close(m_v, ref_v, DIFFER_TOL))
                            evidence[k][i] += str(code)
            stats["finished"] = True
    except _OutOfTime:
        reason = "numeric evaluation did not finish in time"
    except (RecursionError, MemoryError):
        reason = "numeric evaluation ran out of memory"
    return {"stats": stats, "counterexample": counterexample, "evidence": evidence, "reason": reason}
