"""An allow-list sanitizer for the MathML the symbolic grader produces.

The MathML comes from SymPy in the grader's own process, not from the student,
so it is trusted; sanitising it anyway is defence in depth (a printer bug or a
symbol name that slips markup through must not become script in a report).

:func:`sanitize_mathml` parses the markup with the standard library's
``html.parser`` and keeps only MathML presentation elements and a fixed set of
harmless attributes; anything else (``<script>``, ``<img>``, ``<a href>``,
``on*`` handlers, ``annotation-xml``) is dropped with all its content. The
result is a tree of :class:`MathNode`, not a string: the report templates
render it with autoescaping on, so text and attribute values are escaped again
on the way out and the tags can only be names from :data:`ELEMENTS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

MATHML_NS = "http://www.w3.org/1998/Math/MathML"

# MathML Core presentation elements, plus the legacy ones SymPy may print.
ELEMENTS = frozenset({
    "math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub", "msubsup",
    "mfrac", "msqrt", "mroot", "mstyle", "merror", "mpadded", "mphantom", "mfenced",
    "menclose", "munder", "mover", "munderover", "mmultiscripts", "mprescripts", "none",
    "mtable", "mtr", "mtd", "mlabeledtr", "semantics",
})
# Layout-only attributes: none of them can load anything or run script.
ATTRIBUTES = frozenset({
    "display", "displaystyle", "scriptlevel", "mathvariant", "mathsize", "dir",
    "form", "fence", "separator", "lspace", "rspace", "stretchy", "symmetric", "maxsize",
    "minsize", "largeop", "movablelimits", "accent", "accentunder", "linethickness",
    "width", "height", "depth", "voffset", "open", "close", "separators", "notation",
    "columnalign", "rowalign", "columnspacing", "rowspacing", "columnspan", "rowspan",
})
# HTML void elements: dropped without waiting for an end tag that never comes.
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "param", "source", "track", "wbr", "image"})
MAX_NODES = 4000
MAX_DEPTH = 64
MAX_INPUT_CHARS = 200_000


@dataclass(frozen=True)
class MathNode:
    """One allowed MathML element: its tag, kept attributes and children (nodes or text)."""

    tag: str
    attrs: tuple[tuple[str, str], ...] = ()
    children: tuple = ()


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root: list = []
        # each open element: [tag, attrs, children, dropped]
        self.stack: list[list] = []
        self.nodes = 0
        self.too_big = False

    def _children(self) -> list | None:
        if not self.stack:
            return self.root
        top = self.stack[-1]
        return None if top[3] else top[2]

    def handle_starttag(self, tag, attrs):
        self._open(tag, attrs, closes=False)

    def handle_startendtag(self, tag, attrs):
        self._open(tag, attrs, closes=True)

    def _open(self, tag, attrs, closes):
        if tag in _VOID and tag not in ELEMENTS:
            return
        parent = self._children()
        dropped = parent is None or tag not in ELEMENTS
        self.nodes += 1
        if self.nodes > MAX_NODES or len(self.stack) >= MAX_DEPTH:
            self.too_big = True
            dropped = True
        kept = tuple((k, v or "") for k, v in attrs if k in ATTRIBUTES)
        entry = [tag, kept, [], dropped]
        if closes:
            self._close(entry)
        else:
            self.stack.append(entry)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                while len(self.stack) > i:
                    self._close(self.stack.pop())
                return
        # a stray end tag closes nothing

    def _close(self, entry):
        tag, attrs, children, dropped = entry
        if dropped:
            return
        parent = self._children()
        if parent is not None:
            parent.append(MathNode(tag, attrs, tuple(children)))

    def handle_data(self, data):
        parent = self._children()
        if parent is not None and data:
            parent.append(data)

    def finish(self) -> list:
        self.close()
        while self.stack:
            self._close(self.stack.pop())
        return self.root


def sanitize_mathml(markup: str | None) -> MathNode | None:
    """The ``<math>`` tree of ``markup`` with only allow-listed elements and attributes.

    Bare presentation MathML (SymPy prints ``<mrow>...</mrow>`` without a
    ``<math>`` root) is wrapped in ``<math display="block">``. Returns None when
    nothing renderable is left, or when the input is not a string or too large
    to be a formula (the caller then shows the plain-text rendering).
    """
    if not isinstance(markup, str) or not markup.strip() or len(markup) > MAX_INPUT_CHARS:
        return None
    builder = _Builder()
    builder.feed(markup)
    nodes = builder.finish()
    if builder.too_big:
        return None
    elements = [n for n in nodes if isinstance(n, MathNode)]
    if not elements:
        return None
    if len(elements) == 1 and elements[0].tag == "math":
        root = elements[0]
        if not any(k == "display" for k, _ in root.attrs):
            root = MathNode("math", (("display", "block"),) + root.attrs, root.children)
        return root
    kept = tuple(n for n in nodes if isinstance(n, MathNode) or n.strip())
    return MathNode("math", (("display", "block"),), kept)


def text_of(node: MathNode | str) -> str:
    """The text content of a tree (what a screen reader falls back to)."""
    if isinstance(node, str):
        return node
    return "".join(text_of(c) for c in node.children)
