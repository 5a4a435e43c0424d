"""Reading and judging a symbolic answer, without ever evaluating the student's text.

This module is self-contained (standard library, SymPy and mpmath only) because
dlgrade ships it, as a job's file, into a warm worker and calls
:func:`evaluate` there: parsing, simplification and numeric evaluation of a
student's expression run in a separate process with time and memory limits,
so a pathological expression cannot hang the grader. The grader also imports
it for :func:`to_tree` and the parser's limits.

Nothing here calls ``eval``, ``sympify`` or ``parse_expr`` on student text:
:mod:`graders.symbolic_text` (standard library only, shipped with this file)
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
import html.entities
import itertools
import json
import math
import random
import re
import signal
import threading
import time
from fractions import Fraction

import mpmath
import sympy as sp
from sympy.printing.mathml import mathml as _mathml
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

if __package__:  # graders.symbolic, in the grader's process
    from . import symbolic_text as text
else:  # the evaluator's job: graders.symbolic_grade ships it next to this file
    import dlgrade_symbolic_text as text  # type: ignore[no-redef]

# what the reader of the text provides (graders.symbolic_text), under the names used here
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

    def _mathml_presentation(self, printer):
        return printer._print(sp.Function("σ")(*self.args))


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
