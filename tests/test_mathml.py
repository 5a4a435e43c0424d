"""reports/mathml.py: only allow-listed MathML survives, rendered through the template."""
import sympy as sp
from sympy.printing.mathml import mathml

from dlgrade.reports.html import environment
from dlgrade.reports.mathml import ELEMENTS, MathNode, sanitize_mathml, text_of


def render(node) -> str:
    return environment().from_string(
        '{% from "macros.html.j2" import mathml %}{{ mathml(node) }}').render(node=node)


def tags(node) -> set:
    if isinstance(node, str):
        return set()
    out = {node.tag}
    for c in node.children:
        out |= tags(c)
    return out


def test_sympy_presentation_mathml_is_kept_and_wrapped_in_math():
    z, y = sp.symbols("z y")
    markup = mathml(1 / (1 + sp.exp(-z)) - y, printer="presentation")
    node = sanitize_mathml(markup)
    assert node.tag == "math" and ("display", "block") in node.attrs
    assert {"mfrac", "msup", "mi", "mn", "mo", "mrow"} <= tags(node)
    # named entities are decoded: Euler's e and the minus signs are text
    assert "\u2147" in text_of(node) and "z" in text_of(node)
    html = render(node)
    assert html.startswith('<math display="block"><mrow>') and html.endswith("</math>")
    assert "<mfrac><mn>1</mn>" in html


def test_an_existing_math_root_is_kept():
    node = sanitize_mathml('<math display="inline"><mi>x</mi></math>')
    assert node == MathNode("math", (("display", "inline"),), (MathNode("mi", (), ("x",)),))


def test_script_img_handlers_and_links_are_dropped():
    evil = ('<math><mi>x</mi><script>alert(1)</script><mtext><img src=x onerror="alert(2)"></mtext>'
            '<mi onclick="alert(3)" href="javascript:alert(4)" style="color:red" mathvariant="bold">y</mi>'
            '<SCRIPT>alert(5)</SCRIPT><annotation-xml encoding="text/html"><a href="javascript:alert(6)">a</a>'
            '</annotation-xml><maction actiontype="statusline"><mi>q</mi></maction><iframe srcdoc="z"></iframe></math>')
    node = sanitize_mathml(evil)
    assert tags(node) <= ELEMENTS
    html = render(node)
    for bad in ("script", "img", "onclick", "onerror", "href", "javascript", "style", "alert", "iframe",
                "maction", "annotation"):
        assert bad not in html.lower(), bad
    assert '<mi mathvariant="bold">y</mi>' in html


def test_text_that_looks_like_markup_is_escaped():
    node = sanitize_mathml("<mi>&lt;script&gt;alert(1)&lt;/script&gt;</mi><mo>&amp;</mo>")
    html = render(node)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert "<mo>&amp;</mo>" in html


def test_attribute_values_are_escaped():
    html = render(sanitize_mathml('<mo lspace="1em&quot; onclick=&quot;x">+</mo>'))
    assert html == '<math display="block"><mo lspace="1em&#34; onclick=&#34;x">+</mo></math>'


def test_unclosed_and_stray_tags_do_not_break_the_tree():
    node = sanitize_mathml("<mrow><mi>a</mi></mfrac><mi>b")
    assert render(node) == '<math display="block"><mrow><mi>a</mi><mi>b</mi></mrow></math>'


def test_nothing_renderable_gives_none():
    assert sanitize_mathml(None) is None
    assert sanitize_mathml("") is None
    assert sanitize_mathml("just text") is None
    assert sanitize_mathml("<script>alert(1)</script>") is None
    assert sanitize_mathml("<mrow>" * 100 + "x") is None  # deeper than any formula


# --------------------------------------------------------------------------- what the page shows
# The symbolic grader's MathML (graders/symbolic_text.py) must show what the student wrote:
# every answer of the table below is rendered, sanitized and put through the template as a
# report does, then read back by a small reader of presentation MathML (standard
# semantics: operator precedence, fences, fractions, powers, function application, cases)
# and compared, by value at many points, with the expression the grader parsed.

import math
import xml.etree.ElementTree as ET

import mpmath
import pytest

from dlgrade.graders import symbolic as S

APPLY, INVISIBLE_TIMES = "\u2061", "\u2062"
FUNCTIONS = {"σ": S.sigmoid, "log": sp.log, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
             "max": sp.Max, "min": sp.Min, "sgn": sp.sign, "H": sp.Heaviside,
             "log1p": lambda x: sp.log(1 + x), "expm1": lambda x: sp.exp(x) - 1,
             "softplus": lambda x: sp.log(1 + sp.exp(x)), "pow": sp.Pow}
RELATIONS = {"=": sp.Eq, "≠": sp.Ne, "<": sp.Lt, "≤": sp.Le, ">": sp.Gt, "≥": sp.Ge}
TIMES = ("⋅", "×", INVISIBLE_TIMES)


class MathMLReader:
    """Presentation MathML -> SymPy, read as a person reads the rendered formula: an
    <mrow> groups nothing visible (its tokens are read inline), brackets do, and so do a
    fraction's parts, a root, a superscript and a table's cells."""

    def read(self, markup: str):
        root = ET.fromstring(markup)
        assert root.tag.rsplit("}", 1)[-1] == "math"
        return self.row(list(root))

    def tag(self, el) -> str:
        return el.tag.rsplit("}", 1)[-1]

    def row(self, elements):
        """A visually grouped sequence of elements, parsed."""
        return Tokens(self.tokens(elements)).expression()

    def tokens(self, elements) -> list:
        out = []
        for el in elements:
            if self.tag(el) == "mrow":
                out += self.tokens(list(el))  # invisible: inline
            else:
                out.append(self.item(el))
        return out

    def item(self, el):
        """One element as a token: ("val", expr), ("op", text), ("fn", f), ("text", s), ("cases", expr)."""
        tag = self.tag(el)
        text = (el.text or "").strip()
        if tag == "mn":
            return ("val", sp.Rational(text))
        if tag == "mi":
            if text == "e" and el.get("mathvariant") == "normal":
                return ("val", sp.E)
            if text == "π":
                return ("val", sp.pi)
            if text in FUNCTIONS:
                return ("fn", FUNCTIONS[text])
            return ("val", S.symbol(text))
        if tag == "mo":
            return ("op", el.text or "")
        if tag == "mtext":
            return ("text", text)
        if tag == "mfrac":
            num, den = list(el)
            return ("val", self.row([num]) / self.row([den]))
        if tag == "msup":
            base, exp = list(el)
            # the superscript sits on the base's last glyph: the base must be one thing
            # (a name, a number, a bracket, a call), or the reading is ambiguous
            return ("val", Tokens(self.tokens([base])).single() ** self.row([exp]))
        if tag == "msub":
            name, base = list(el)
            assert (name.text or "") == "log"
            b = self.row([base])
            return ("fn", lambda x: sp.log(x) / sp.log(b))
        if tag == "msqrt":
            return ("val", sp.sqrt(self.row(list(el))))
        if tag == "mtable":
            return ("cases", self.cases(el))
        raise AssertionError(f"unexpected <{tag}>")

    def cases(self, table):
        pairs = []
        for tr in table:
            value_cell, cond_cell = list(tr)
            value = self.row(list(value_cell))
            items = self.tokens(list(cond_cell))
            if items == [("text", "otherwise")]:
                pairs.append((value, sp.true))
                continue
            assert items[0] == ("text", "if"), items
            pairs.append((value, Tokens(items[1:]).expression()))
        return sp.Piecewise(*pairs)


class Tokens:
    """Precedence climbing over one visual row's tokens."""

    def __init__(self, items):
        self.items, self.i = items, 0

    def expression(self):
        out = self.disjunction()
        assert self.i == len(self.items), f"left over: {self.items[self.i:]}"
        return out

    def single(self):
        out = self.primary()
        assert self.i == len(self.items), f"a power of several things: {self.items}"
        return out

    def peek(self):
        return self.items[self.i] if self.i < len(self.items) else ("end", "")

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, tok):
        got = self.take()
        assert got == tok, f"expected {tok}, found {got}"

    def disjunction(self):
        out = self.conjunction()
        while self.peek() == ("op", "∨"):
            self.take()
            out = sp.Or(out, self.conjunction())
        return out

    def conjunction(self):
        out = self.negation()
        while self.peek() == ("op", "∧"):
            self.take()
            out = sp.And(out, self.negation())
        return out

    def negation(self):
        if self.peek() == ("op", "¬"):
            self.take()
            return sp.Not(self.negation())
        left = self.sum()
        tok = self.peek()
        if tok[0] == "op" and tok[1] in RELATIONS:
            self.take()
            return RELATIONS[tok[1]](left, self.sum())
        return left

    def sum(self):
        out = self.product()
        while self.peek() in (("op", "+"), ("op", "−")):
            op = self.take()[1]
            right = self.product()
            out = out + right if op == "+" else out - right
        return out

    def product(self):
        out = self.factor()
        while self.peek()[0] == "op" and self.peek()[1] in TIMES:
            self.take()
            out = out * self.factor()
        return out

    def factor(self):
        if self.peek() == ("op", "−"):
            self.take()
            return -self.factor()
        return self.primary()

    def primary(self):
        kind, v = self.take()
        if kind == "val":
            return v
        if kind == "fn":
            self.expect(("op", APPLY))
            self.expect(("op", "("))
            args = [self.disjunction()]
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.disjunction())
            self.expect(("op", ")"))
            return v(*args)
        if (kind, v) == ("op", "("):
            inner = self.disjunction()
            self.expect(("op", ")"))
            return inner
        if (kind, v) == ("op", "|"):
            inner = self.sum()
            self.expect(("op", "|"))
            return sp.Abs(inner)
        if (kind, v) == ("op", "{"):
            kind, cases = self.take()
            assert kind == "cases"
            return cases
        raise AssertionError(f"unexpected {kind} {v!r}")


def page_mathml(markup: str) -> str:
    """The MathML as a report page shows it: sanitized, then rendered by the template."""
    node = sanitize_mathml(markup)
    assert node is not None
    return render(node)


def read_back(markup: str):
    html = page_mathml(markup)
    xml = html.replace('<math display="block">', f'<math xmlns="{S.text.MATHML_NS}">', 1)
    return MathMLReader().read(xml)


POINTS = [{"z": z, "y": y} for z in (-3.7, -2, -1, -0.5, 0, 0.25, 0.5, 1, 2, 3.7, 5.25) for y in (0, 1)]


def values(expr):
    out = []
    with mpmath.workdps(30):
        for p in POINTS:
            env = {S.symbol(k): mpmath.mpf(v) for k, v in p.items()}
            kind, v = S._value(expr, env)
            out.append((kind, float(v) if kind == "ok" else None))
    return out


def same_values(a, b) -> bool:
    for (ka, va), (kb, vb) in zip(values(a), values(b)):
        if ka != kb:
            return False
        if ka == "ok" and not math.isclose(va, vb, rel_tol=1e-12, abs_tol=1e-12):
            return False
    return True


ALIASES = S.text.read_aliases({"p": "sigmoid(z)"}, ("z", "y"))
ANSWERS = [
    "-(y - 1/(1+exp(-z)))",  # the report showed it as -y - 1/(1+e^-z)
    "-(y - sigmoid(z))", "-(-z)", "-(z + y)^2", "(-z)^2", "-z^2", "(z + y)^2", "(z - y)^3", "2^(z + 1)",
    "(z^y)^2", "z^(y^2)", "e^(-(z + 1))", "exp(-(z - y))", "z - (y - z)", "z - (y + z)", "z - (-y)",
    "z + (-y)", "z*(-y)", "(-z)*y", "z/(y + 1)", "(z + 1)/(y + 1)", "z/(2*(y + 1))", "(z/2)/(y + 1)",
    "z/((y + 1)/2)", "1/(1 + exp(-z))*(1 - y)", "(1 - y)/2*z", "2*(1/2)", "2*3*z", "z*2", "0.5*(1 + tanh(0.5*z))",
    "1e-3*z", "(1e-3)^2", "z*1e-3", "sigmoid(z)^2", "sigmoid(z)(1 - sigmoid(z))", "σ(z)*(1-σ(z))^2",
    "sqrt(z^2 + 1)", "sqrt(z)^2 - abs(z)", "abs(z - y)*sign(y - z)", "log(1 + exp(z))", "log(z^2 + 1, 2)",
    "log1p(exp(z)) - softplus(z) + expm1(z)", "max(z, y) - min(z, -y)", "pow(z + 1, 2)",
    "Heaviside(z - 1/2) - Heaviside(z, 0)", "p - y", "p(1 - p)", "-(p - y)*(1 - p)",
    "Piecewise((sigmoid(z) - 1, Eq(y, 1)), (sigmoid(z), True))",
    "Piecewise((z, z > 0), (-z, z <= 0))",
    "-(Piecewise((z, z > 0), (0, True)) - y)",
    "Piecewise((z, z > 0), (0, True))^2",
    "2*(z - 1 if y == 1 and z > 0 or not y < 1 else -(z + 1))",
    "np.where(z >= 0, 1/(1 + exp(-z)), exp(z)/(1 + exp(z))) - y",
    r"\frac{1}{1+e^{-z}} - y", r"-\left(y - \frac{e^z}{1+e^z}\right)", r"\frac{\frac{z}{y+1}}{2}",
    r"\sqrt[3]{z + 1}", r"2^{-z^2}", r"\left|z\right|^{2} - |y - z|",
]


@pytest.mark.parametrize("text", ANSWERS)
def test_the_rendering_reads_back_as_the_answer(text):
    tree, _ = S.parse(text, ("z", "y"), aliases=ALIASES)
    parsed = S.build(tree)
    shown = read_back(S.mathml_of(tree))
    if "p" in text.replace("exp", "").replace("Piecewise", "").replace("pow", ""):
        shown = shown.xreplace({S.symbol("p"): S.sigmoid(S.symbol("z"))})  # p is shown as written
    assert same_values(shown, parsed), (text, shown, parsed)


@pytest.mark.parametrize("text", ANSWERS)
def test_the_plain_text_shown_reads_back_as_the_answer(text):
    """"parsed as ..." in the check's message is itself an answer dlgrade reads the same way."""
    tree, _ = S.parse(text, ("z", "y"), aliases=ALIASES)
    again, _ = S.parse(S.plain(tree), ("z", "y"), aliases=ALIASES)
    assert same_values(S.build(again), S.build(tree)), S.plain(tree)


def test_the_reader_catches_a_dropped_grouping():
    """What SymPy's printer gave for -(y - 1/(1+exp(-z))): an <mrow> but no brackets. Read
    as the page shows it, it is -y - 1/(1+e^-z), which the reader must see."""
    import html as html_module

    z, y = S.symbol("z"), S.symbol("y")
    bad = mathml(sp.Mul(-1, sp.Add(y, -1 / (1 + sp.exp(-z)), evaluate=False), evaluate=False),
                 printer="presentation")
    bad = html_module.unescape(bad).replace("<mo>-</mo>", "<mo>−</mo>").replace(
        "<mi>ⅇ</mi>", '<mi mathvariant="normal">e</mi>')
    shown = read_back(f'<math xmlns="{S.text.MATHML_NS}">{bad}</math>')
    assert same_values(shown, -y - 1 / (1 + sp.exp(-z)))
    tree, _ = S.parse("-(y - 1/(1+exp(-z)))")
    assert not same_values(shown, S.build(tree))
    assert same_values(read_back(S.mathml_of(tree)), S.build(tree))


def test_references_and_mistakes_read_back_as_derived():
    from dlgrade.reference.sigmoid_bce import MISTAKES, derivative

    exprs = [derivative(), *[f() for v in MISTAKES.values() for f in (v if isinstance(v, tuple) else (v,))]]
    z, y = S.symbol("z"), S.symbol("y")
    exprs += [sp.Piecewise((S.sigmoid(z) - 1, sp.Eq(y, 1)), (S.sigmoid(z), True)), sp.Heaviside(z) * z,
              sp.Max(z, 0) - sp.Rational(3, 4) * y / (1 + z ** 2), sp.sqrt(1 + z ** 2) ** -3]
    for e in exprs:
        latex, markup = S.render_reference(e)
        assert markup is not None, e
        assert same_values(read_back(markup), e), (e, latex)


def test_the_issue_example_is_shown_with_its_parentheses():
    tree, _ = S.parse("-(y - 1/(1+exp(-z)))")
    html = page_mathml(S.mathml_of(tree))
    assert html.startswith('<math display="block"><mrow><mo>−</mo><mrow><mo>(</mo><mrow><mi>y</mi><mo>−</mo>'
                           '<mfrac>')
    assert S.latex_of(tree) == r"- \left(y - \frac{1}{1 + e^{- z}}\right)"
    assert S.plain(tree) == "-(y - 1/(1 + exp(-z)))"


@pytest.mark.parametrize("text", ANSWERS)
def test_the_latex_shown_reads_back_as_the_answer(text):
    """The LaTeX rendering (the report's fallback when MathML is missing) is itself LaTeX that
    dlgrade's own LaTeX reader reads as the same expression."""
    tree, _ = S.parse(text, ("z", "y"), aliases=ALIASES)
    again = S.text.parse_latex(S.latex_of(tree), ("z", "y"), aliases=ALIASES)
    assert same_values(S.build(again), S.build(tree)), S.latex_of(tree)
