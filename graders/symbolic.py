"""Reading and judging a symbolic answer, without ever evaluating the student's text.

This module is self-contained (standard library, SymPy and mpmath only) because
dlgrade ships it, as a job's file, into a warm worker and calls
:func:`evaluate` there: parsing, simplification and numeric evaluation of a
student's expression run in a separate process with time and memory limits,
so a pathological expression cannot hang the grader. The grader also imports
it for :func:`to_tree` and the parser's limits.

Nothing here calls ``eval``, ``sympify`` or ``parse_expr`` on student text:
:mod:`dlgrade.graders.symbolic_text` (standard library only, shipped with this file)
reads it into a neutral tree of tuples, from which SymPy objects are built
directly.

Equivalence with the reference is decided three ways, each under a time
budget, with every discrete label (y = 0, y = 1) substituted: exactly (a cheap
rational-function test in the exponentials of the continuous variables, and
SymPy's ``simplify`` when the numbers find no difference), by seeded numeric
evaluation at 40 significant digits with mpmath (which never overflows; a
disagreement is rechecked at more digits before it counts), else
"undetermined".
"""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import random
import signal
import threading
import time
from fractions import Fraction

import mpmath
import sympy as sp

if __package__:  # dlgrade.graders.symbolic, in the grader's process
    from . import symbolic_text as text
else:  # the evaluator's job: dlgrade.graders.symbolic_grade ships it next to this file
    import dlgrade_symbolic_text as text  # type: ignore[no-redef]

# what the reader of the text provides (dlgrade.graders.symbolic_text), under the names used here
ParseError, parse, parse_python, parse_latex = text.ParseError, text.parse, text.parse_python, text.parse_latex
clean_text, detect_syntax, _check_size, _too_deep = text.clean_text, text.detect_syntax, text._check_size, \
    text._too_deep
MAX_CHARS, MAX_DEPTH, MAX_NODES, MAX_EXPONENT = text.MAX_CHARS, text.MAX_DEPTH, text.MAX_NODES, text.MAX_EXPONENT
_TREE_GROUP = text._TREE_GROUP

# --------------------------------------------------------------------------- limits

MAX_NUMBER_BITS = 20_000  # any exact number the expression folds to
MAX_RESULT_CHARS = 19_000  # what evaluate() returns must cross the worker's 20k limit
EXP_ARG_LIMIT = mpmath.mpf(10) ** 9  # beyond this exp() is an overflow, not a number
DPS = 40
FIXED_POINTS = (0, 0.5, -0.5, 1, -1, 2, -2, 3.7, -3.7, 8, -8, 20, -20, 60, -60, 300, -300)
SAMPLE_RANGE = max(abs(v) for v in FIXED_POINTS)  # random points lie inside [-12, 12]
MAX_CONFIRM_DPS = 20_000  # a disagreement needing more digits than this proves nothing
MATCH_TOL = 1e-25  # two values agree (relative to 1 + |expected|; 40 digits are computed)
DIFFER_TOL = 1e-12  # two values differ; far above MATCH_TOL so no value is close to both



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


def symbol(name: str) -> sp.Symbol:
    """The SymPy symbol for a variable of an exercise (always real)."""
    return sp.Symbol(name, real=True)


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


def build(tree: tuple):
    """The SymPy expression a neutral tree means (an alias is replaced by what it stands for).

    Raises ParseError for exponents and numbers beyond dlgrade's bounds, and for
    expressions that are undefined outright (a division by zero).
    """
    expr = _build(tree, 0)
    if expr.has(*_UNDEFINED_ATOMS):
        raise ParseError(UNDEFINED)
    return expr


def _build(node: tuple, depth: int):
    if depth > 2 * MAX_DEPTH + 10:
        raise _too_deep()
    kind = node[0]
    d = depth + 1
    if kind == "num":
        return sp.Rational(node[1].numerator, node[1].denominator)
    if kind == "var":
        return symbol(node[1])
    if kind == "alias":
        return _build(node[2], d)
    if kind == "const":
        return sp.E if node[1] == "E" else sp.pi
    if kind == "neg":
        return -_build(node[1], d)
    if kind in ("add", "sub"):  # a - b + c ...: one Add of all the terms (one flatten, not n)
        terms = []
        while node[0] in ("add", "sub"):
            right = _build(node[2], d)
            terms.append(right if node[0] == "add" else -right)
            node = node[1]
        terms.append(_build(node, d))
        out = sp.Add(*reversed(terms))
        _check_number(out)
        return out
    if kind in ("mul", "div", "pow"):
        flat = _TREE_GROUP.get(node[1][0], "") == _TREE_GROUP.get(kind)  # a * b * c: not deeper
        a, b = _build(node[1], depth if flat else d), _build(node[2], d)
        if kind == "pow":
            _check_power(a, b)
        out = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
               "div": lambda: a / b, "pow": lambda: a ** b}[kind]()
        _check_number(out)
        return out
    if kind == "call":
        out = _apply(node[1], [_build(a, d) for a in node[2]])
        _check_number(out)
        return out
    if kind == "piecewise":
        cases = [(_build(value, d), _condition(cond, d)) for value, cond in node[1]]
        try:
            return sp.Piecewise(*cases)
        except (TypeError, ValueError) as exc:  # a condition SymPy cannot order (complex)
            raise ParseError(f"SymPy cannot read this Piecewise ({exc})") from None
    raise ValueError(f"unknown node {kind!r}")  # pragma: no cover - the parsers make no others


_RELATIONS = {"==": sp.Eq, "!=": sp.Ne, "<": sp.Lt, "<=": sp.Le, ">": sp.Gt, ">=": sp.Ge}


def _condition(node: tuple, depth: int):
    if depth > 2 * MAX_DEPTH + 10:
        raise _too_deep()
    kind, d = node[0], depth + 1
    if kind == "bool":
        return sp.true if node[1] else sp.false
    if kind == "rel":
        a, b = _build(node[2], d), _build(node[3], d)
        try:
            return _RELATIONS[node[1]](a, b)
        except TypeError as exc:  # "Invalid comparison of non-real ..."
            raise ParseError(f"this comparison cannot be decided ({exc})") from None
    if kind in ("and", "or"):
        return (sp.And if kind == "and" else sp.Or)(*[_condition(c, d) for c in node[1]])
    if kind == "not":
        return sp.Not(_condition(node[1], d))
    raise ValueError(f"unknown condition {kind!r}")  # pragma: no cover


# functions of one argument that map straight onto a SymPy function
_UNARY = {"exp": sp.exp, "sqrt": sp.sqrt, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
          "abs": sp.Abs, "sign": sp.sign, "sigmoid": sigmoid}
# Heaviside(0) is 1/2, as in SymPy (and as numpy.heaviside(x, 0.5)); Heaviside(x, h0) sets it
HEAVISIDE_AT_ZERO = sp.Rational(1, 2)


def _apply(key: str, args: list):
    x = args[0]
    if key in _UNARY:
        return _UNARY[key](x)
    if key == "log":
        return sp.log(x) / sp.log(args[1]) if len(args) == 2 else sp.log(x)
    if key == "log1p":
        return sp.log(1 + x)
    if key == "expm1":
        return sp.exp(x) - 1
    if key == "softplus":
        return sp.log(1 + sp.exp(x))
    if key == "pow":
        _check_power(x, args[1])
        return sp.Pow(x, args[1])
    if key == "max":
        return sp.Max(*args)
    if key == "min":
        return sp.Min(*args)
    if key == "heaviside":
        return sp.Heaviside(x, args[1] if len(args) == 2 else HEAVISIDE_AT_ZERO)
    raise ValueError(f"unknown function {key!r}")  # pragma: no cover


# --------------------------------------------------------------------------- trusted trees


_TREE_FUNCS = {"exp": sp.exp, "log": sp.log, "sigmoid": sigmoid, "tanh": sp.tanh, "sinh": sp.sinh,
               "cosh": sp.cosh, "Abs": sp.Abs, "sign": sp.sign, "Max": sp.Max, "Min": sp.Min,
               "Heaviside": sp.Heaviside, "And": sp.And, "Or": sp.Or, "Not": sp.Not}
_TREE_RELATIONS = {"Equality": sp.Eq, "Unequality": sp.Ne, "StrictLessThan": sp.Lt, "LessThan": sp.Le,
                   "StrictGreaterThan": sp.Gt, "GreaterThan": sp.Ge}


def to_tree(expr) -> dict:
    """A trusted SymPy expression (a reference) as plain JSON data, for shipping to a worker."""
    if expr is sp.true or expr is sp.false:
        return {"b": bool(expr)}
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
    if isinstance(expr, sp.Piecewise):
        return {"pw": [[to_tree(e), to_tree(c)] for e, c in expr.args]}
    name = type(expr).__name__
    if name in _TREE_RELATIONS:
        return {"r": name, "a": [to_tree(a) for a in expr.args]}
    if name in _TREE_FUNCS:
        return {"f": name, "a": [to_tree(a) for a in expr.args]}
    raise ValueError(f"cannot ship {name} in a reference expression")


def from_tree(tree: dict, depth: int = 0):
    """The SymPy expression :func:`to_tree` described."""
    if depth > 200:
        raise ValueError("reference tree too deep")
    if "b" in tree:
        return sp.true if tree["b"] else sp.false
    if "s" in tree:
        return symbol(str(tree["s"]))
    if "q" in tree:
        return sp.Rational(int(tree["q"][0]), int(tree["q"][1]))
    if "c" in tree:
        return {"E": sp.E, "pi": sp.pi}[tree["c"]]
    if "pw" in tree:
        return sp.Piecewise(*[(from_tree(e, depth + 1), from_tree(c, depth + 1)) for e, c in tree["pw"]])
    args = [from_tree(a, depth + 1) for a in tree["a"]]
    if "o" in tree:
        return {"Add": sp.Add, "Mul": sp.Mul, "Pow": sp.Pow}[tree["o"]](*args)
    if "r" in tree:
        return _TREE_RELATIONS[tree["r"]](*args)
    return _TREE_FUNCS[tree["f"]](*args)


# --------------------------------------------------------------------------- rendering

# Everything is shown from a neutral tree (dlgrade.graders.symbolic_text's printers): the
# student's answer from the tree their text was read into, so the page shows what they
# wrote; the reference from the tree of its display form.

plain, latex_of, mathml_of = text.to_plain, text.to_latex, text.to_mathml


def display_form(expr):
    """A readable form of a trusted expression: expanded when that is shorter,
    with negative terms last (σ(z) - y rather than -y + σ(z))."""
    try:
        expanded = sp.expand(expr)
        if sp.count_ops(expanded) < sp.count_ops(expr):
            expr = expanded
    except Exception:  # noqa: BLE001 - display only
        pass
    return expr


_SHOWN_FUNCS = {sigmoid: "sigmoid", sp.exp: "exp", sp.log: "log", sp.tanh: "tanh", sp.sinh: "sinh",
                sp.cosh: "cosh", sp.Abs: "abs", sp.sign: "sign", sp.Max: "max", sp.Min: "min"}
_SHOWN_RELATIONS = {sp.Eq: "==", sp.Ne: "!=", sp.Lt: "<", sp.Le: "<=", sp.Gt: ">", sp.Ge: ">="}


def display_tree(expr) -> tuple:
    """The neutral tree of a (trusted, evaluated) SymPy expression, as a person writes it:
    negative terms last and subtracted, negative powers as fractions, e^x, sqrt.
    Raises ValueError for what it does not know how to show."""
    if expr is sp.true or expr is sp.false:
        return ("bool", bool(expr))
    if expr.is_Symbol:
        return ("var", expr.name)
    if expr is sp.E:
        return ("const", "E")
    if expr is sp.pi:
        return ("const", "pi")
    if expr.is_Number:
        if expr.is_negative:
            return ("neg", display_tree(-expr))
        if expr.is_Integer:
            return ("num", Fraction(int(expr)), str(expr))
        if expr.is_Rational:
            return ("div", display_tree(sp.Integer(expr.p)), display_tree(sp.Integer(expr.q)))
        if expr.is_Float:
            return ("num", Fraction(repr(float(expr))), repr(float(expr)))
        raise ValueError(f"cannot show the number {expr}")
    if isinstance(expr, sp.Add):
        terms = sorted(expr.args, key=lambda a: a.could_extract_minus_sign())
        out = display_tree(terms[0])
        for t in terms[1:]:
            out = ("sub", out, display_tree(-t)) if t.could_extract_minus_sign() else ("add", out, display_tree(t))
        return out
    if isinstance(expr, sp.Mul):
        return _display_product(expr)
    if isinstance(expr, sp.Pow):
        base, e = expr.base, expr.exp
        if e.is_Rational and e.is_negative:
            return ("div", ("num", Fraction(1), "1"), display_tree(base ** -e))
        if e == sp.Rational(1, 2):
            return ("call", "sqrt", (display_tree(base),))
        return ("pow", display_tree(base), display_tree(e))
    if isinstance(expr, sp.Piecewise):
        return ("piecewise", tuple((display_tree(e), display_tree(c)) for e, c in expr.args))
    if isinstance(expr, sp.Heaviside):
        x, h0 = expr.args
        args = (display_tree(x),) if h0 == HEAVISIDE_AT_ZERO else (display_tree(x), display_tree(h0))
        return ("call", "heaviside", args)
    if expr.func in _SHOWN_RELATIONS:
        return ("rel", _SHOWN_RELATIONS[expr.func], display_tree(expr.lhs), display_tree(expr.rhs))
    if isinstance(expr, (sp.And, sp.Or)):
        return ("and" if isinstance(expr, sp.And) else "or", tuple(display_tree(a) for a in expr.args))
    if isinstance(expr, sp.Not):
        return ("not", display_tree(expr.args[0]))
    if expr.func in _SHOWN_FUNCS:
        return ("call", _SHOWN_FUNCS[expr.func], tuple(display_tree(a) for a in expr.args))
    raise ValueError(f"cannot show {type(expr).__name__}")


def _display_product(expr) -> tuple:
    coeff, factors = expr.as_coeff_mul()
    negative = coeff.is_negative
    coeff = -coeff if negative else coeff
    top, bottom = [], []
    if coeff != 1:
        if coeff.is_Rational:
            if coeff.p != 1:
                top.append(sp.Integer(coeff.p))
            if coeff.q != 1:
                bottom.append(sp.Integer(coeff.q))
        else:
            top.append(coeff)
    for f in factors:
        if isinstance(f, sp.Pow) and f.exp.is_Rational and f.exp.is_negative:
            bottom.append(f.base ** -f.exp)
        else:
            top.append(f)

    def product(items):
        out = display_tree(items[0])
        for item in items[1:]:
            out = ("mul", out, display_tree(item))
        return out

    out = product(top) if top else ("num", Fraction(1), "1")
    if bottom:
        out = ("div", out, product(bottom))
    return ("neg", out) if negative else out


def render_reference(expr) -> tuple[str | None, str | None]:
    """(LaTeX, MathML) of a trusted expression; SymPy's LaTeX where no tree can show it."""
    shown = display_form(expr)
    try:
        tree = display_tree(shown)
    except ValueError:
        return sp.latex(shown), None
    return latex_of(tree), mathml_of(tree)


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


_KINKED = (sp.Piecewise, sp.Heaviside, sp.Max, sp.Min, sp.Abs, sp.sign)


def _cases_of(d):
    """The expressions of ``d``'s cases when it has cases (Piecewise, Heaviside, Max, Min,
    Abs, sign), folded into one Piecewise; ``d`` alone otherwise. ``d`` is zero if every
    case's expression is (whatever the conditions), so each is tested on its own."""
    if not d.has(*_KINKED):
        return [d]
    folded = sp.piecewise_fold(d.rewrite(sp.Piecewise))
    if not isinstance(folded, sp.Piecewise):
        return [folded]
    try:  # cases that never apply (hidden by earlier ones) are dropped
        folded = sp.piecewise_exclusive(folded)
    except (ValueError, TypeError, NotImplementedError, ArithmeticError):
        pass
    if not isinstance(folded, sp.Piecewise):
        return [folded]
    out = []
    for e, cond in folded.args:  # a case that holds at one point only: its value there
        if isinstance(cond, sp.Eq) and cond.lhs.is_Symbol and cond.rhs.is_number:
            e = e.subs(cond.lhs, cond.rhs)
        elif isinstance(cond, sp.Eq) and cond.rhs.is_Symbol and cond.lhs.is_number:
            e = e.subs(cond.rhs, cond.lhs)
        out.append(e)
    return out


def quick_zero(d, continuous) -> bool:
    """True when ``d`` is shown to be zero cheaply: after rewriting σ, tanh, sinh and cosh
    with exp, it is (in each of its cases) a rational function of the variables and their
    exponentials that cancels to 0. False proves nothing."""
    if d == 0:
        return True
    try:
        return all(_quick_zero_smooth(e, continuous) for e in _cases_of(d))
    except (ValueError, TypeError, ArithmeticError, sp.PolynomialError, NotImplementedError):
        return False


def _quick_zero_smooth(d, continuous) -> bool:
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
    """True when SymPy's ``simplify`` reduces ``d`` (rewritten with exp) to 0, case by case."""
    return all(sp.simplify(e.rewrite(sp.exp)) == 0 for e in _cases_of(d))


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
    # Heaviside(x, h0): its value at 0 is h0 (SymPy's default 1/2)
    sp.Heaviside: lambda a: mpmath.mpf(0) if a[0] < 0 else (mpmath.mpf(1) if a[0] > 0 else a[1]),
}
_MP_RELATIONS = {sp.Eq: lambda a, b: a == b, sp.Ne: lambda a, b: a != b, sp.Lt: lambda a, b: a < b,
                 sp.Le: lambda a, b: a <= b, sp.Gt: lambda a, b: a > b, sp.Ge: lambda a, b: a >= b}


def truth(cond, env: dict) -> bool:
    """Whether a condition holds at a point (its sides computed as numeric_value does).

    Raises _Undefined for a condition that is not made of comparisons, And, Or and Not.
    """
    if cond is sp.true or cond is sp.false:
        return bool(cond)
    compare = _MP_RELATIONS.get(cond.func)
    if compare is not None:
        return bool(compare(numeric_value(cond.lhs, env), numeric_value(cond.rhs, env)))
    if isinstance(cond, sp.And):
        return all(truth(c, env) for c in cond.args)
    if isinstance(cond, sp.Or):
        return any(truth(c, env) for c in cond.args)
    if isinstance(cond, sp.Not):
        return not truth(cond.args[0], env)
    raise _Undefined(f"a condition that cannot be decided ({type(cond).__name__})")


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
    if isinstance(expr, sp.Piecewise):  # only the case that applies is computed
        for value, cond in expr.args:
            if truth(cond, env):
                return numeric_value(value, env)
        raise _Undefined("no case of Piecewise applies")
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


def sample_points(continuous, discrete: dict, seed: int, n_random: int = 16, boundaries=()) -> list[dict]:
    """Seeded evaluation points: fixed values first (0, ±1, …, ±300), then the
    ``boundaries`` (points on both sides of each condition, the same for every seed),
    then random ones, each with every combination of the discrete variables' values."""
    fixed = FIXED_POINTS
    rng = random.Random(seed)
    points = []
    combos = list(itertools.product(*[discrete[k] for k in discrete])) or [()]
    if len(continuous) <= 1:
        extra = [v for v in boundaries if v not in fixed]
        values = list(fixed) + extra + [round(rng.uniform(-12, 12), 4) for _ in range(n_random)]
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


# --------------------------------------------------------------------------- every case sampled

BOUNDARY_GRID = sorted(set(FIXED_POINTS) | set(range(-12, 13)))  # where a condition's sign is looked at
BOUNDARY_STEP = 1e-3  # points this far on each side of a boundary (less when boundaries are closer)
MAX_BOUNDARIES = 24


def switches(exprs) -> list:
    """What decides which case of an expression applies, as expressions whose sign changes
    there: each comparison's lhs - rhs, the argument of Heaviside, Abs and sign, the
    differences of the arguments of Max and Min."""
    found = []
    for e in exprs:
        for node in sp.preorder_traversal(e):
            if isinstance(node, sp.core.relational.Relational):
                found.append(node.lhs - node.rhs)
            elif isinstance(node, (sp.Heaviside, sp.Abs, sp.sign)):
                found.append(node.args[0])
            elif isinstance(node, (sp.Max, sp.Min)):
                found += [a - b for a, b in itertools.combinations(node.args, 2)]
    return list(dict.fromkeys(found))


def boundary_points(exprs, continuous, discrete: dict) -> list[float]:
    """Values of the one continuous variable on both sides of every boundary between the
    cases of ``exprs`` (and between two boundaries), for every discrete value: exact for
    a boundary linear in the variable, by bisection on a fixed grid otherwise. The same
    for every student: they depend on the expressions only."""
    if len(continuous) != 1:
        return []
    (x,) = continuous
    funcs = switches(exprs)
    if not funcs:
        return []
    roots: set = set()
    combos = [dict(zip(discrete, c)) for c in itertools.product(*discrete.values())] or [{}]
    with mpmath.workdps(30):
        for combo in combos:
            subs = {symbol(k): sp.Rational(str(v)) for k, v in combo.items()}
            for f in funcs:
                g = f.xreplace(subs)
                if x not in g.free_symbols:
                    continue
                roots |= _roots(g, x)
                if len(roots) > MAX_BOUNDARIES:
                    break
    ordered = sorted(r for r in roots if abs(r) <= SAMPLE_RANGE)[:MAX_BOUNDARIES]
    out = []
    for i, r in enumerate(ordered):
        gaps = [abs(r - o) for o in ordered if o != r]
        step = min([BOUNDARY_STEP] + [g / 3 for g in gaps])
        out += [r - step, r + step]
        if i:
            out.append((ordered[i - 1] + r) / 2)  # inside the case between two boundaries
    return list(dict.fromkeys(round(v, 12) for v in out))


def _roots(g, x) -> set:
    """Where ``g`` (an expression in ``x`` alone) changes sign: the exact root when it is
    linear, else the grid points where it is 0 and bisected sign changes between them."""
    try:
        poly = sp.Poly(g, x) if g.is_polynomial(x) else None
    except (sp.PolynomialError, ValueError, TypeError):
        poly = None
    if poly is not None and poly.degree() == 1:
        c1, c0 = poly.all_coeffs()
        if c1.is_Rational and c0.is_Rational:
            return {float(-c0 / c1)}
    values = []
    for v in BOUNDARY_GRID:
        kind, val = _value(g, {x: mpmath.mpf(v)})
        values.append((v, val if kind == "ok" else None))
    found = {float(v) for v, val in values if val is not None and val == 0}
    for (a, fa), (b, fb) in zip(values, values[1:]):
        if fa is None or fb is None or fa * fb >= 0:
            continue
        lo, hi, flo = mpmath.mpf(a), mpmath.mpf(b), fa
        for _ in range(60):
            mid = (lo + hi) / 2
            kind, fm = _value(g, {x: mid})
            if kind != "ok":
                break
            if fm == 0:
                lo = hi = mid
                break
            if (fm < 0) == (flo < 0):
                lo, flo = mid, fm
            else:
                hi = mid
        found.add(float((lo + hi) / 2))
    return found


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
            res["reference_latex"], res["reference_mathml"] = render_reference(reference)
    except (_OutOfTime, RecursionError, MemoryError, Exception):  # noqa: BLE001 - display is optional
        pass
    timings["reference"] = time.perf_counter() - t
    t = time.perf_counter()

    # 2. read the student's text
    try:
        with budget(phase("parse_s", 1.0)):
            aliases = text.read_aliases(payload.get("aliases") or {}, variables)
            tree, syntax = parse(payload.get("text", ""), variables, payload.get("hints"), aliases)
            res["syntax"] = syntax
            student = build(tree)
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
            res["parsed"] = plain(tree)
            res["aliases_used"] = {name: plain(meaning) for name, meaning in _aliases_in(tree).items()}
            res["student_latex"] = latex_of(tree)
            res["student_mathml"] = mathml_of(tree)
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


def _aliases_in(tree) -> dict:
    """The aliases an answer's tree uses, name -> the tree each stands for, in order of use."""
    found: dict = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, tuple) or not node:
            continue
        if node[0] == "alias":
            found.setdefault(node[1], node[2])
            continue
        parts = node[1:] if isinstance(node[0], str) else node  # a node, or a tuple of them
        stack.extend(reversed([part for part in parts if isinstance(part, tuple)]))
    return found


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
    try:
        with budget(min(1.0, seconds / 3)):
            boundaries = boundary_points([student, reference], continuous, discrete)
    except (_OutOfTime, RecursionError, MemoryError, ValueError, TypeError, ArithmeticError):
        boundaries = []  # the cases are then sampled by the fixed and random points only
    points = sample_points([str(c) for c in continuous], discrete, seed, boundaries=boundaries)
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
