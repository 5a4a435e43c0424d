"""graders/symbolic.py in-process: the parsers, their limits, exact and numeric equality.

Everything here runs in the test process on trusted test strings: the parser
never evaluates its input, which the first test checks statically.
"""
import ast
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import mpmath
import pytest
import sympy as sp

from dlgrade.graders import symbolic as S
from dlgrade.graders import symbolic_text
from dlgrade.graders.symbolic import ParseError, sigmoid

KNOWN = ("(known: sigmoid, σ, sigma, expit, logistic, exp, log, ln, log1p, expm1, softplus, sqrt, tanh, sinh, "
         "cosh, abs, sign, pow, max, min, Heaviside, Piecewise, where)")
IN_A_CONDITION = "a condition, as in Piecewise((a, z > 0), (b, True)), where(z > 0, a, b) or a if z > 0 else b"
z, y = S.symbol("z"), S.symbol("y")
E = sp.E


HINTS = {"p": "sigmoid(z)", "ŷ": "sigmoid(z)"}


def read(text, variables=("z", "y")):
    tree, _ = S.parse(text, variables, HINTS)
    return S.build(tree)


def reject(text, variables=("z", "y")) -> str:
    with pytest.raises(ParseError) as info:
        read(text, variables)
    return str(info.value)


ROOT = Path(__file__).parent.parent
SOURCES = [Path(S.__file__), Path(S.__file__).with_name("symbolic_text.py")]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_the_modules_never_evaluate_text(path):
    """No eval/exec/compile/sympify/parse_expr/lambdify anywhere in the reader's or the judge's source."""
    source = path.read_text(encoding="utf-8")
    banned = {"eval", "exec", "compile", "sympify", "parse_expr", "lambdify", "__import__", "S",
              "getattr", "N", "simplify_logic", "srepr"}
    calls = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name):
                calls.add(f.id)
            elif isinstance(f, ast.Attribute) and not (isinstance(f.value, ast.Name) and f.value.id == "re"):
                calls.add(f.attr)
    assert "sympy.parsing" not in source  # SymPy's own parsers eval their input
    assert not calls & banned, calls & banned


def _import_roots(path):
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):  # from . import symbolic_text: its names
            roots |= {(node.module or "").split(".")[0]} if node.module else {a.name for a in node.names}
    return roots


STDLIB = {"__future__", "ast", "contextlib", "difflib", "html", "itertools", "json", "keyword", "math", "random",
          "re", "signal", "threading", "time", "unicodedata", "fractions"}


def test_the_modules_import_only_the_stdlib_sympy_mpmath_and_each_other():
    """Both are shipped alone into the evaluator's job: nothing of dlgrade's may be imported,
    except the reader by the judge (as its shipped name there); the reader is stdlib only,
    so a spec's aliases are checked without importing SymPy."""
    judge, reader = (_import_roots(p) for p in SOURCES)
    assert not judge & {"graders", "reference", "numpy", "torch"}
    assert judge <= STDLIB | {"mpmath", "sympy", "symbolic_text", "dlgrade_symbolic_text"}
    assert reader <= STDLIB


def _listed(doc: Path, start: str, end: str) -> list[str]:
    """The `names` a document lists between ``start`` and ``end``."""
    text = " ".join(doc.read_text(encoding="utf-8").split())
    i = text.index(start) + len(start)
    return re.findall(r"`([^`]+)`", text[i:text.index(end, i)])


@pytest.mark.parametrize("doc, start, end", [
    ("docs/adding-an-exercise.md", "the functions they may use are ", " (with `Eq`"),
    ("README.md", "`^`; the functions ", " (also as `np.exp`"),
])
def test_the_docs_list_the_functions_the_messages_name(doc, start, end):
    """One list (symbolic_text.FUNCTION_NAMES): what a message's "known:" names is what
    the docs say an answer may use."""
    assert _listed(ROOT / doc, start, end) == list(symbolic_text.FUNCTION_NAMES)


def test_every_listed_function_is_read_and_every_function_is_listed():
    assert all(symbolic_text._py_function(name) for name in symbolic_text.FUNCTION_NAMES)
    meant = {symbolic_text.PY_FUNCTIONS[name] for name in symbolic_text.FUNCTION_NAMES}
    assert set(symbolic_text.PY_FUNCTIONS.values()) - symbolic_text.CONDITION_FUNCTIONS == meant
    assert symbolic_text.SHOWN_FUNCTIONS == ", ".join(symbolic_text.FUNCTION_NAMES)


@pytest.mark.parametrize("text, message", [
    ("tahn(z) - y", "'tahn' is not a known function; did you mean 'tanh'? " + KNOWN),
    ("sigmod(z) - y", "'sigmod' is not a known function; did you mean 'sigmoid'? " + KNOWN),
    ("np.sigmod(z) - y", "'np.sigmod' is not a known function; did you mean 'sigmoid'? " + KNOWN),
    ("softpuls(z) - y", "'softpuls' is not a known function; did you mean 'softplus'? " + KNOWN),
    ("heavyside(z)", "'heavyside' is not a known function; did you mean 'Heaviside'? " + KNOWN),
    ("relu(z) - y", "'relu' is not a known function " + KNOWN),
])
def test_a_misspelt_function_is_named_with_the_likely_meant_one(text, message):
    with pytest.raises(symbolic_text.ParseError) as err:
        symbolic_text.parse(text, ("z", "y"))
    assert str(err.value) == message


# --------------------------------------------------------------------------- Python-style


@pytest.mark.parametrize("text, expected", [
    ("sigmoid(z) - y", sigmoid(z) - y),
    ("σ(z) - y", sigmoid(z) - y),
    ("sigma(z) - y", sigmoid(z) - y),
    ("expit(z) - y", sigmoid(z) - y),
    ("1/(1+exp(-z)) - y", 1 / (1 + sp.exp(-z)) - y),
    ("1/(1+e^(-z)) - y", 1 / (1 + sp.exp(-z)) - y),
    ("1/(1+e**-z) - y", 1 / (1 + sp.exp(-z)) - y),
    ("1/(1+E**(-z)) - y", 1 / (1 + sp.exp(-z)) - y),
    ("2z", 2 * z),
    ("2 z", 2 * z),
    ("2sigmoid(z)", 2 * sigmoid(z)),
    ("y(1-z)", y * (1 - z)),
    ("(1-y)(1+y)", (1 - y) * (1 + y)),
    ("σ(z)(1-σ(z))", sigmoid(z) * (1 - sigmoid(z))),
    ("(1-y) sigmoid(z)", (1 - y) * sigmoid(z)),
    ("y sigmoid(z)", y * sigmoid(z)),
    ("2e-z", 2 * E - z),
    ("1e-3*z", sp.Rational(1, 1000) * z),
    ("0.5*(1+tanh(0.5*z))", sp.Rational(1, 2) * (1 + sp.tanh(z / 2))),
    ("z^2", z ** 2),
    ("−z · y × 2 ÷ 4", -z * y / 2),
    ("σ(z)²", sigmoid(z) ** 2),
    ("np.exp(z) + math.exp(y)", sp.exp(z) + sp.exp(y)),
    ("torch.sigmoid(z) + scipy.special.expit(y)", sigmoid(z) + sigmoid(y)),
    ("Sigmoid(z) + EXP(y) + Tanh(z)", sigmoid(z) + sp.exp(y) + sp.tanh(z)),
    ("np.e**z + math.pi", sp.exp(z) + sp.pi),
    ("ln(z) + log(y, 2)", sp.log(z) + sp.log(y) / sp.log(2)),
    ("log1p(z) + expm1(y)", sp.log(1 + z) + sp.exp(y) - 1),
    ("softplus(z)", sp.log(1 + sp.exp(z))),
    ("sqrt(z) + abs(y) + sign(z)", sp.sqrt(z) + sp.Abs(y) + sp.sign(z)),
    ("cosh(z) + sinh(z) + pow(z, 3)", sp.cosh(z) + sp.sinh(z) + z ** 3),
    ("max(z, y) + min(z, 0)", sp.Max(z, y) + sp.Min(z, 0)),
    ("pi", sp.pi),
])
def test_python_style_reads_as_expected(text, expected):
    assert read(text) == expected


@pytest.mark.parametrize("text, message", [
    ("__import__('os').system('touch /tmp/pwned')",
     "names with double underscores ('__import__') are not allowed"),
    ("(lambda: 1)()", "lambda is not allowed"),
    ("z.__class__", "names with double underscores ('__class__') are not allowed"),
    ("().__class__.__bases__", "names with double underscores ('__bases__') are not allowed"),
    ('eval("1")', f"'eval' is not a known function {KNOWN}"),
    ("getattr(z, 'x')", f"'getattr' is not a known function {KNOWN}"),
    ("os.system('ls')", f"'os.system' is not a known function {KNOWN}"),
    ("z.real", "attribute access ('.real') is not allowed"),
    ("np.linalg.norm(z)", f"'np.linalg.norm' is not a known function {KNOWN}"),
    ("np.linalg", "attribute access ('.linalg') is not allowed"),
    ("'sigmoid(z) - y'", "quoted text ('sigmoid(z) - y') is not allowed"),
    ("z[0]", "indexing with [...] is not allowed"),
    ("exp(z, out=y)", "keyword arguments are not allowed"),
    ("z < y", f"comparisons are only allowed in {IN_A_CONDITION}"),
    ("z and y", f"'and'/'or' are only allowed in {IN_A_CONDITION}"),
    ("z if y else 1", "'y' is not a condition: write a comparison such as y == 1 or z > 0"),
    ("[z for z in y]", "comprehensions are not allowed"),
    ("z, y", "commas (tuples) are not allowed"),
    ("z % 2", "the operator '%' is not allowed"),
    ("z // 2", "the operator '//' is not allowed"),
    ("not z", f"'not' is only allowed in {IN_A_CONDITION}"),
    ("True + z", f"True is only allowed as {IN_A_CONDITION}"),
    ("(y := 2)", "':=' are not allowed"),
    ("z $ y", "unexpected character '$' at position 3"),
    ("exp(z", "a bracket is never closed"),
    ("exp(z))", "the brackets do not match"),
    ("2 3", "this is not a valid expression (invalid syntax)"),
    ("", "the expression is empty"),
    ("sigmoid - y", "sigmoid is a function: apply it to an argument, like sigmoid(z)"),
    ("np.exp", "np.exp is a function: apply it to an argument, like np.exp(z)"),
    ("exp(z, y)", "exp takes 1 argument, not 2"),
    ("pow(z)", "pow takes 2 arguments, not 1"),
    ("p - y", "unknown symbol 'p': the answer must be an expression in z and y only "
              "(write sigmoid(z) for p)"),
    ("x + w*y", "unknown symbols 'x' and 'w': the answer must be an expression in z and y only"),
    ("z**(10**100)", "a constant exponent is too large (1e+100; the limit is 1000)"),
    ("2**10**10", "a constant exponent is too large (1e+10; the limit is 1000)"),
    ("(10**1000)**1000", "a number in the expression is too large"),
    ("123456789012345678*z", "the number 123456789012345678 is too large (at most 1e+15)"),
    ("1/(z-z)", "the expression is undefined: it divides by zero or is infinite"),
    ("max(z, log(0))", "the expression is undefined: it divides by zero or is infinite"),
    ("min(z, 0/0)", "the expression is undefined: it divides by zero or is infinite"),
    ("2**exp(10)", "a constant exponent is too large (22026.5; the limit is 1000)"),
    ("z**exp(exp(exp(10)))", "a constant exponent is too large (too large to compute; the limit is 1000)"),
    ("pow(z, 10**6)", "a constant exponent is too large (1e+06; the limit is 1000)"),
    ("(10**999)**999", "a number in the expression is too large"),
    ("z/0", "the expression is undefined: it divides by zero or is infinite"),
])
def test_python_style_rejections_say_why(text, message):
    assert reject(text) == message


def test_limits_on_size_and_depth():
    assert reject("+".join(["z"] * 10_000)) == (
        "the expression is too long (19999 characters; the limit is 2000)")
    assert reject("(" * 70 + "z" + ")" * 70) == "the expression is nested too deeply (more than 60 levels)"
    assert reject("-" * 300 + "z") == "the expression is nested too deeply (more than 60 levels)"
    assert reject("exp(" * 61 + "z" + ")" * 61) == "the expression is nested too deeply (more than 60 levels)"
    assert reject("+".join(["z*y"] * 500)) == "the expression is too large (more than 800 parts)"
    # a long flat sum or product is long, not deep
    assert read("+".join(f"{i}*z" for i in range(1, 90))) == sum(range(1, 90)) * z
    assert read("*".join(["z"] * 150)) == z ** 150
    tree = S.parse_latex("+".join(f"{i}z" for i in range(1, 150)), ("z", "y"))
    assert S.build(tree) == sum(range(1, 150)) * z


# --------------------------------------------------------------------------- LaTeX


@pytest.mark.parametrize("text, expected", [
    (r"\sigma(z) - y", sigmoid(z) - y),
    (r"\sigma\left(z\right) - y", sigmoid(z) - y),
    (r"\sigma z - y", sigmoid(z) - y),
    (r"\frac{1}{1+e^{-z}} - y", 1 / (1 + sp.exp(-z)) - y),
    (r"\dfrac{1}{1+\exp(-z)}-y", 1 / (1 + sp.exp(-z)) - y),
    (r"\frac{1}{1+\mathrm{e}^{-z}}-y", 1 / (1 + sp.exp(-z)) - y),
    (r"\frac{1}{1+e^-z}", 1 / (1 + sp.exp(-z))),
    (r"\frac12 z", z / 2),
    (r"\frac{e^z}{1+e^z} - y", sp.exp(z) / (1 + sp.exp(z)) - y),
    (r"\operatorname{sigmoid}(z) - y", sigmoid(z) - y),
    (r"\mathrm{sigmoid}\left(z\right) - y", sigmoid(z) - y),
    (r"\sigma(z)(1-\sigma(z))", sigmoid(z) * (1 - sigmoid(z))),
    (r"\sigma(z)\cdot(1-y) - y\times(1-\sigma(z))", sigmoid(z) * (1 - y) - y * (1 - sigmoid(z))),
    (r"y(1-z)", y * (1 - z)),
    (r"2yz", 2 * y * z),
    (r"\sigma^2(z)", sigmoid(z) ** 2),
    (r"\sigma(z)^{2}", sigmoid(z) ** 2),
    (r"\log \sigma(z) + \ln(1 - y)", sp.log(sigmoid(z)) + sp.log(1 - y)),
    (r"\tanh\frac{z}{2}", sp.tanh(z / 2)),
    (r"\frac{1}{2}\left(1+\tanh\left(\frac{z}{2}\right)\right)", (1 + sp.tanh(z / 2)) / 2),
    (r"\sqrt{z} + \sqrt[3]{y}", sp.sqrt(z) + y ** sp.Rational(1, 3)),
    (r"|z| + \left|y\right| + 2|z|", 3 * sp.Abs(z) + sp.Abs(y)),
    (r"\lvert z \rvert", sp.Abs(z)),
    (r"\left[ z + 1 \right] y", (z + 1) * y),
    (r"2^{10} z", 1024 * z),
    (r"2^10 z", 1024 * z),
    (r"\pi\,z\;\!", sp.pi * z),
    (r"\bigl( z \bigr)", z),
    (r"σ(z) - y", sigmoid(z) - y),
    (r"{z}^{2}", z ** 2),
    (r"\exp{(-z)}", sp.exp(-z)),
    (r"\cosh z - \sinh z", sp.cosh(z) - sp.sinh(z)),
    (r"\frac{1}{1+Exp(-z)}", 1 / (1 + sp.exp(-z))),
])
def test_latex_reads_as_expected(text, expected):
    assert S.build(S.parse_latex(S.clean_text(text), ("z", "y"), HINTS)) == expected


# --------------------------------------------------------------------------- cases, aliases


ALIASES = S.text.read_aliases({"p": "sigmoid(z)", "q": "1 - sigmoid(z)"}, ("z", "y"))


def read_with_aliases(text):
    tree, _ = S.parse(text, ("z", "y"), HINTS, ALIASES)
    return S.build(tree)


@pytest.mark.parametrize("text, expected", [
    ("p - y", sigmoid(z) - y),
    ("p(1-p)", sigmoid(z) * (1 - sigmoid(z))),
    ("q*y", (1 - sigmoid(z)) * y),
    (r"p - y", sigmoid(z) - y),
    (r"\frac{p}{q}", sigmoid(z) / (1 - sigmoid(z))),
    (r"\mathrm{p}\,q", sigmoid(z) * (1 - sigmoid(z))),
])
def test_aliases_mean_what_they_stand_for(text, expected):
    assert read_with_aliases(text) == expected


def test_an_alias_stays_in_the_tree_as_written():
    tree, _ = S.parse("p - y", ("z", "y"), aliases=ALIASES)
    assert tree == ("sub", ("alias", "p", ("call", "sigmoid", (("var", "z"),))), ("var", "y"))
    assert S.plain(tree) == "p - y" and S.latex_of(tree) == "p - y"


@pytest.mark.parametrize("aliases, message", [
    ({"z": "y"}, "alias z: 'z' is already a variable"),
    ({"p": "sigmoid(x)"}, "alias p: unknown symbol 'x': the answer must be an expression in z and y only"),
    ({"p": "p + 1"}, "alias p: unknown symbol 'p': the answer must be an expression in z and y only"),
    ({"sigmoid": "z"}, "alias sigmoid: 'sigmoid' already means something in an answer (a function or a constant)"),
    ({"p": 3}, 'alias p: its meaning must be a string, like "sigmoid(z)"'),
])
def test_bad_aliases_are_refused(aliases, message):
    with pytest.raises(ParseError) as info:
        S.text.read_aliases(aliases, ("z", "y"))
    assert str(info.value) == message


H = sp.Heaviside


@pytest.mark.parametrize("text, expected", [
    ("Piecewise((sigmoid(z) - 1, Eq(y, 1)), (sigmoid(z), True))",
     sp.Piecewise((sigmoid(z) - 1, sp.Eq(y, 1)), (sigmoid(z), True))),
    ("sympy.Piecewise((z, Ne(y, 0) & (z > 1) & ~(y < 0)), (0, (z < 0) | True))",  # as SymPy prints them
     sp.Piecewise((z, sp.And(sp.Ne(y, 0), z > 1, sp.Not(y < 0))), (0, sp.Or(z < 0, sp.true)))),
    ("(z > 0) & (y < 1)", None),  # '&' outside a condition: refused
    ("Piecewise((z, Lt(z, 0)), (y, Ge(z, 1)), (0, Le(z, y)))",
     sp.Piecewise((z, z < 0), (y, z >= 1), (0, z <= y))),
    ("Piecewise((z, And(z > 0, Or(y < 1, Not(y > 0)))), (0, True))",
     sp.Piecewise((z, sp.And(z > 0, sp.Or(y < 1, sp.Not(y > 0)))), (0, True))),
    ("z if y == 1 else -z", sp.Piecewise((z, sp.Eq(y, 1)), (-z, True))),
    ("z if 0 < z <= 1 else 0 if z > 1 else -1",
     sp.Piecewise((z, sp.And(z > 0, z <= 1)), (0, z > 1), (-1, True))),
    ("z if not (z > 0 and y != 0) or False else 0",
     sp.Piecewise((z, sp.Or(sp.Not(sp.And(z > 0, sp.Ne(y, 0))), sp.false)), (0, True))),
    ("np.where(z > 0, z, 0) + torch.where(y >= 1, 1, 0)",
     sp.Piecewise((z, z > 0), (0, True)) + sp.Piecewise((1, y >= 1), (0, True))),
    ("Heaviside(z) + heaviside(y, 0) + np.heaviside(z, 1)", H(z) + H(y, 0) + H(z, 1)),
    ("np.maximum(z, 0) + np.minimum(z, y)", sp.Max(z, 0) + sp.Min(z, y)),
    (r"\begin{cases} \sigma(z) - 1 & \text{if } y = 1 \\ \sigma(z) & \text{otherwise} \end{cases}",
     sp.Piecewise((sigmoid(z) - 1, sp.Eq(y, 1)), (sigmoid(z), True))),
    (r"\frac{\partial L}{\partial z} = \begin{cases} \sigma(z) - 1, & y = 1, \\ \sigma(z), & y = 0. \end{cases}",
     sp.Piecewise((sigmoid(z) - 1, sp.Eq(y, 1)), (sigmoid(z), sp.Eq(y, 0)))),
    (r"\begin{cases} z & z > 0 \wedge y \neq 1 \\ 0 & z \leq 0 \lor \neg (y < 1) \\ -1 & \text{else} \end{cases}",
     sp.Piecewise((z, sp.And(z > 0, sp.Ne(y, 1))), (0, sp.Or(z <= 0, sp.Not(y < 1))), (-1, True))),
    (r"\max(z, 0) - \min\left(y, 1\right) + \operatorname{H}(z) + \log_2 z + \log_{3}(y)",
     sp.Max(z, 0) - sp.Min(y, 1) + H(z) + sp.log(z) / sp.log(2) + sp.log(y) / sp.log(3)),
])
def test_cases_and_kinks_read_as_expected(text, expected):
    if expected is None:
        with pytest.raises(ParseError, match="^'&', '\\|' and '~' are only allowed in a condition"):
            read(text)
        return
    assert read(text) == expected


def test_heaviside_at_zero_is_one_half_unless_given():
    with mpmath.workdps(30):
        at = {z: mpmath.mpf(0), y: mpmath.mpf(0)}
        assert S.numeric_value(read("Heaviside(z)"), at) == mpmath.mpf(1) / 2
        assert S.numeric_value(read("Heaviside(z, 0)"), at) == 0
        assert S.numeric_value(read("heaviside(z, 1)"), at) == 1
        assert S.numeric_value(read("Heaviside(z - 1)"), {z: mpmath.mpf(3), y: 0}) == 1


def test_only_the_case_that_applies_is_computed():
    e = read("Piecewise((log(z), z > 0), (0, True))")
    with mpmath.workdps(30):
        assert S._value(e, {z: mpmath.mpf(-2), y: mpmath.mpf(0)}) == ("ok", 0)
    assert S._value(read("Piecewise((z, z > 0))"), {z: mpmath.mpf(-1), y: mpmath.mpf(0)}) == (
        "undefined", "undefined (no case of Piecewise applies)")


def test_cases_are_proved_equal_case_by_case():
    ref = sigmoid(z) - y
    for text in ["Piecewise((sigmoid(z) - y, z > 0), (1/(1+exp(-z)) - y, True))",
                 "sigmoid(z) - y + max(z, 0) - Heaviside(z)*z"]:
        assert S.quick_zero(read(text) - ref, [z]), text
    assert not S.quick_zero(read("Piecewise((sigmoid(z) - y, z > 0), (0, True))") - ref, [z])


def test_boundaries_are_sampled_on_both_sides_the_same_for_every_seed():
    e = read("sigmoid(z) - y + 1 if 4.1 < z < 4.2 else sigmoid(z) - y")
    points = S.boundary_points([e, sigmoid(z) - y], [z], {"y": [0, 1]})
    assert points == [4.099, 4.101, 4.199, 4.201, 4.15]
    knee = S.boundary_points([read("max(0, 1 - (z - 5)**2)")], [z], {})  # not linear: bisected
    assert knee == [3.999, 4.001, 5.999, 6.001, 5.0]
    close = S.boundary_points([read("Heaviside(z - 1) - Heaviside(z - 1.0003)")], [z], {})
    assert close == [0.9999, 1.0001, 1.0002, 1.0004, 1.00015]
    assert S.boundary_points([sigmoid(z) - y], [z], {"y": [0, 1]}) == []
    a = S.sample_points(["z"], {"y": [0, 1]}, seed=1, boundaries=points)
    b = S.sample_points(["z"], {"y": [0, 1]}, seed=2, boundaries=points)
    fixed = 2 * (len(S.FIXED_POINTS) + len(points))
    assert a[:fixed] == b[:fixed] and a[fixed:] != b[fixed:]
    assert {p["z"] for p in a[:fixed]} >= set(points)


@pytest.mark.parametrize("text, message", [
    (r"\hat{y} - y", "unknown symbol 'ŷ': the answer must be an expression in z and y only "
                     "(write sigmoid(z) for ŷ)"),
    (r"\vec{z}", r"unknown LaTeX command \vec"),
    (r"z_i", "subscripts (_) are not allowed"),
    (r"\sigma_2(z)", "subscripts (_) are not allowed"),
    (r"\begin{matrix} z \end{matrix}", "the environment matrix is not allowed (only cases)"),
    (r"\begin{cases} z \\ 0 \end{cases}", "expected '&' between a case's value and its condition, found \\\\"),
    (r"\begin{cases} z & z \end{cases}", "expected a condition such as y = 1, found \\end"),
    (r"\begin{cases} z & z > 0 \end{matrix}", "\\begin{cases} is closed by another \\end"),
    (r"\max z", r"\max must be applied to arguments in brackets, like \max(z, 0)"),
    (r"z = 1", "unexpected '='"),
    (r"\sigma - y", r"\sigma must be applied to an argument, like \sigma(z)"),
    (r"\frac{1}{1+e^{-z}", "expected '}', found the end of the expression"),
    (r"e^{z}^{2}", "a double exponent: group it with braces, like e^{a^{b}}"),
    (r"\left( z \right|", r"\left( is closed by \right '|'"),
    (r"\frac{p}{x}", "unknown symbols 'p' and 'x': the answer must be an expression in z and y only "
                     "(write sigmoid(z) for p)"),
    (r"\mathrm{foo}(z)", r"unknown name \mathrm{foo}"),
    (r"z^{10^{100}}", "a constant exponent is too large (1e+100; the limit is 1000)"),
    (r"z + ?", "unexpected character '?' at position 5"),
    (r"\sigma(z))", "unexpected ')'"),
    (r"|z", "expected a closing '|', found the end of the expression"),
    ("\\", "a lone backslash at the end"),
])
def test_latex_rejections_say_why(text, message):  # noqa: D103 (the table says it)
    with pytest.raises(ParseError) as info:
        S.build(S.parse_latex(S.clean_text(text), ("z", "y"), HINTS))
    assert str(info.value) == message


@pytest.mark.parametrize("raw, cleaned", [
    ("  $\\sigma(z) - y$ \n", "\\sigma(z) - y"),
    ("$$\n\\sigma(z) - y\n$$", "\\sigma(z) - y"),
    ("\\[ \\sigma(z) - y \\]", "\\sigma(z) - y"),
    ("dL/dz = sigmoid(z) - y", "sigmoid(z) - y"),
    ("\\frac{\\partial L}{\\partial z} = \\sigma(z) - y", "\\sigma(z) - y"),
    ("∂L/∂z = σ(z) − y.", "σ(z) - y"),
    ("sigmoid(z)\n  - y", "sigmoid(z) - y"),
    ("# my answer\nsigmoid(z) - y;  # dL/dz\n", "sigmoid(z) - y"),
    ("\\sigma(z) - y % as in the notes", "\\sigma(z) - y"),
    ("% the derivative\n$\\sigma(z) - y$.", "\\sigma(z) - y"),
    ("\\begin{equation}\n\\frac{\\partial L}{\\partial z} &= \\sigma(z) - y \\\\\n\\end{equation}",
     "\\sigma(z) - y"),
    ("\frac{1}{1+e^{-z}} - y", "\\frac{1}{1+e^{-z}} - y"),  # "\frac" in a non-raw Python string
    ("\\left(1 + \tanh z\right) \times 2", "\\left(1 + \\tanh z\\right) \\times 2"),
    ("y = 1 - z", "y = 1 - z"),  # not a derivative on the left: left as it is (and refused)
])
def test_clean_text(raw, cleaned):
    assert S.clean_text(raw) == cleaned


def test_syntax_detection():
    assert S.detect_syntax("sigmoid(z) - y") == "python"
    assert S.detect_syntax("e^{-z}") == "latex"
    assert S.detect_syntax(r"\sigma(z)") == "latex"


def test_display_keeps_the_students_form():
    tree, _ = S.parse("1 - y - 1/(1+exp(z))")
    assert S.plain(tree) == "1 - y - 1/(1 + exp(z))"
    assert S.latex_of(tree) == r"1 - y - \frac{1}{1 + e^{z}}"
    tree, _ = S.parse(r"\sigma(z) - y")
    assert S.latex_of(tree) == r"\sigma\left(z\right) - y"
    mathml = S.mathml_of(tree)
    root = ET.fromstring(mathml)
    assert root.tag == "{http://www.w3.org/1998/Math/MathML}math"
    assert "σ" in mathml and "&" not in mathml


def test_reference_display_form_puts_negative_terms_last():
    ref = -y * (1 - sigmoid(z)) + (1 - y) * sigmoid(z)
    assert S.render_reference(ref)[0] == r"\sigma\left(z\right) - y"


# --------------------------------------------------------------------------- trusted trees


def test_trees_round_trip_and_are_plain_json():
    from dlgrade.reference.sigmoid_bce import MISTAKES, derivative

    exprs = [derivative(), *[f() for v in MISTAKES.values() for f in (v if isinstance(v, tuple) else (v,))]]
    exprs.append(sp.Rational(1, 4) * sp.pi * sp.Max(z, y) + sp.Abs(sp.tanh(z)) + sp.E ** sp.sign(z))
    for e in exprs:
        tree = json.loads(json.dumps(S.to_tree(e)))
        assert S.from_tree(tree) == e
    assert S.from_tree(S.to_tree(sp.Float(0.25) * z)) == z / 4  # floats travel as exact fractions
    with pytest.raises(ValueError, match="cannot ship Integral"):
        S.to_tree(sp.Integral(z, z))


def test_reference_is_derived_not_typed():
    from dlgrade.reference.sigmoid_bce import derivative

    d = derivative()
    assert d != sigmoid(z) - y  # SymPy's raw derivative, not the textbook form
    assert sp.simplify(d - (sigmoid(z) - y)) == 0


# --------------------------------------------------------------------------- equality


@pytest.mark.parametrize("text", [
    "sigmoid(z) - y", "1/(1+exp(-z)) - y", "exp(z)/(exp(z)+1) - y", "(1 + tanh(z/2))/2 - y",
    "(1-y)*sigmoid(z) - y*(1-sigmoid(z))", "1 - y - 1/(1+exp(z))", "sigmoid(z) - y**2",
    "(exp(z) - y - y*exp(z))/(1+exp(z))", "sigmoid(z) - y + sinh(z)**2 - cosh(z)**2 + 1",
])
def test_quick_zero_proves_the_usual_forms(text):
    s = read(text)
    for label in (0, 1):
        d = (s - (sigmoid(z) - y)).subs(y, label)
        assert S.quick_zero(d, [z])


def test_quick_zero_proves_nothing_about_wrong_answers():
    assert not S.quick_zero((read("y - sigmoid(z)") - (sigmoid(z) - y)).subs(y, 0), [z])


def test_numeric_values_flag_undefined_not_real_and_overflow():
    with mpmath.workdps(40):
        env = {z: mpmath.mpf(0), y: mpmath.mpf(1)}
        assert S._value(read("1/z"), env) == ("undefined", "undefined (division by zero)")
        assert S._value(read("log(z)"), env) == ("undefined", "undefined (log of 0)")
        assert S._value(read("log(z - 1)"), env) == ("not-real", "not a real number (log of a negative number)")
        assert S._value(read("sqrt(z - 1)"), env) == (
            "not-real", "not a real number (a root of a negative number)")
        kind, _ = S._value(read("exp(exp(exp(exp(z + 3))))"), env)
        assert kind == "overflow"
        kind, v = S._value(read("exp(z)/(1+exp(z))"), {z: mpmath.mpf(750), y: mpmath.mpf(0)})
        assert kind == "ok" and v == pytest.approx(1.0)


def test_sample_points_are_seeded_and_cover_both_labels():
    a = S.sample_points(["z"], {"y": [0, 1]}, seed=3)
    assert a == S.sample_points(["z"], {"y": [0, 1]}, seed=3)
    assert a != S.sample_points(["z"], {"y": [0, 1]}, seed=4)
    assert a[:2] == [{"z": 0, "y": 0}, {"z": 0, "y": 1}]
    assert {p["z"] for p in a} >= {300, -300, 60, -60}
    assert len(a) == 2 * (len(S.FIXED_POINTS) + 16)


def _payload(text, **kw):
    from dlgrade.reference.sigmoid_bce import MISTAKES, derivative

    mistakes = {k: [S.to_tree(f()) for f in (v if isinstance(v, tuple) else (v,))] for k, v in MISTAKES.items()}
    return {"text": text, "variables": ["z", "y"], "discrete": {"y": [0, 1]},
            "reference": S.to_tree(derivative()), "mistakes": mistakes, "seed": 5, **kw}


def test_evaluate_reports_a_counterexample_and_evidence():
    out = json.loads(S.evaluate(_payload("y - sigmoid(z)")))
    assert out["ok"] and out["method"] == "numeric" and out["equivalent"] is False
    assert out["counterexample"] == {"point": {"z": 0, "y": 0}, "student": -0.5, "expected": 0.5}
    # one character per point: 2·(matches the mistake) + (the mistake differs from the truth)
    codes = out["evidence"]["sign-flipped"][0]  # "2" where the truth and its negation are both ~0
    assert set(codes) == {"2", "3"} and codes.count("3") > 50
    assert set(out["evidence"]["missing-chain-rule"][0]) == {"1"}
    assert "1" in out["evidence"]["sigmoid-derivative-only"][0]


def test_evaluate_proves_a_correct_form_by_simplification():
    out = json.loads(S.evaluate(_payload(r"\frac{1}{1+e^{-z}} - y")))
    assert (out["ok"], out["method"], out["equivalent"], out["simplify"]) == (True, "simplify", True, "zero")
    assert out["student_latex"] == r"\frac{1}{1 + e^{- z}} - y"
    assert out["reference_latex"] == r"\sigma\left(z\right) - y"
    assert out["evidence"] == {}


def test_ill_conditioned_correct_form_is_not_a_counterexample():
    """At 40 digits (z+1)^300 (z-1)^300 - (z^2-1)^300 cancels badly; the recheck at more digits
    must see that it is 0."""
    text = "sigmoid(z) - y + (z+1)**300*(z-1)**300 - (z**2-1)**300"
    out = json.loads(S.evaluate(_payload(text, quick_s=0.05, simplify_s=0.05)))
    assert out["counterexample"] is None
    assert (out["method"], out["equivalent"]) == ("numeric", True)
    assert out["numeric"]["agree"] == out["numeric"]["points"]


def test_evaluate_parse_error_still_renders_the_reference():
    out = json.loads(S.evaluate(_payload("p - y")))
    assert out["ok"] is False and out["method"] is None
    assert out["parse_error"].startswith("unknown symbol 'p'")
    assert out["reference_latex"] == r"\sigma\left(z\right) - y"


def test_result_always_fits_the_workers_string_limit():
    text = "+".join(f"sigmoid({i}*z)" for i in range(1, 80))  # near the largest expression allowed
    out = S.evaluate(_payload(text, numeric_s=0.5, simplify_s=0.1, parse_s=30, render_s=30))  # any load
    assert len(out) <= S.MAX_RESULT_CHARS
    assert json.loads(out)["student_mathml"].startswith("<math")
    big = {"student_mathml": "m" * 15_000, "reference_mathml": "r" * 100, "student_latex": "l" * 8_000,
           "parsed": "p" * 100}
    fitted = json.loads(S._fit(dict(big)))
    assert fitted["student_mathml"] is None and fitted["dropped"] == ["student_mathml"]
    assert fitted["student_latex"] == "l" * 8_000


def test_budget_interrupts_and_restores_the_alarm():
    import signal
    import time

    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(S._OutOfTime):
        with S.budget(0.05):
            time.sleep(1)
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_messages_have_one_line():
    for text in ["__import__('os')", r"\hat{y}", "p - y", "exp(z"]:
        assert "\n" not in reject(text)
    assert re.fullmatch(r"[^\n]+", reject("+".join(["z"] * 10_000)))
