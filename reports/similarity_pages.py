"""Side-by-side pages of near-identical pairs (``similarity/pair-NNN.html``), for instructors.

One self-contained page per pair (dlgrade.graders.similarity.Pair): both students'
code, line by line, the lines behind the shared fingerprints marked. The code
is shown as text (autoescaped), never run or rendered; the page loads nothing
(a Content-Security-Policy that forbids fetching) and has no script.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from dlgrade.reports.html import STUDENT_CSP, environment, student_report_name

MAX_LINES_SHOWN = 2000  # per file


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    match: bool


@dataclass(frozen=True)
class FileView:
    name: str
    lines: tuple[Line, ...]
    cut: int  # lines not shown


@dataclass(frozen=True)
class Side:
    student: str
    name: str
    href: str
    share: float
    files: tuple[FileView, ...]


def _side(student: str, name: str, share: float, sub, marks: dict[int, tuple[int, ...]]) -> Side:
    files = []
    for n, f in enumerate(sub.files if sub is not None else ()):
        hit = set(marks.get(n, ()))
        text = f.text.splitlines()
        lines = tuple(Line(i, t, i in hit) for i, t in enumerate(text[:MAX_LINES_SHOWN], start=1))
        files.append(FileView(f.name, lines, max(0, len(text) - MAX_LINES_SHOWN)))
    href = "../students/" + student_report_name(student)
    return Side(student, name, href, share, tuple(files))


def write_pages(folder: Path, pairs, subs: dict, names: dict[str, str], page_name) -> list[Path]:
    """Write one page per pair into ``folder`` (emptied first); returns the paths."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    if not pairs:
        return []
    folder.mkdir(parents=True)
    template = environment().get_template("similarity.html.j2")
    written = []
    for n, p in enumerate(pairs, start=1):
        a = _side(p.a, names.get(p.a, ""), p.a_share, subs.get(p.a), p.a_lines)
        b = _side(p.b, names.get(p.b, ""), p.b_share, subs.get(p.b), p.b_lines)
        path = folder / page_name(n)
        path.write_text(template.render(csp=STUDENT_CSP, pair=p, a=a, b=b, n=n, total=len(pairs)),
                        encoding="utf-8")
        written.append(path)
    return written


__all__ = ["write_pages"]
