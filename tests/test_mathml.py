"""reports/mathml.py: only allow-listed MathML survives, rendered through the template."""
import sympy as sp
from sympy.printing.mathml import mathml

from reports.html import environment
from reports.mathml import ELEMENTS, MathNode, sanitize_mathml, text_of


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
