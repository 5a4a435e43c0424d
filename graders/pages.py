"""The seam between grading a class and rendering it: what writes the output folder's pages.

The library (:mod:`~dlgrade.graders.batch`, :mod:`~dlgrade.graders.lms`,
:mod:`~dlgrade.graders.gradebook`) writes the class's *records* itself:
``students/<id>.json``, ``results.json``, ``grades.csv``, ``manifest.json``,
``similarity.json`` and the LMS exports. The *pages* (a report per student, the
class summary, the similarity pairs side by side) are renderings, and the
library never imports a renderer: a front end hands in a :class:`Pages`, and
with none (``pages=None``, the library's default) no page is written.

``dlgrade grade``, ``override``, ``review``, ``export`` and :func:`dlgrade.grade`
hand in :data:`dlgrade.reports.class_pages.HTML_PAGES`. A course that wants
other pages (or none) passes its own object with these three methods.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, runtime_checkable


@runtime_checkable
class Pages(Protocol):
    """Writes the pages of an output folder. Each method may raise: a page is a
    rendering, so the library reports the failure as a warning and keeps the grades."""

    def student_page(self, report, path: Path) -> None:
        """Write one student's page to ``path`` (``report``: the student's
        :class:`~dlgrade.graders.results.StudentReport`, hidden data already removed)."""

    def class_summary(self, reports: list, out_dir: Path, extras) -> None:
        """Write the class summary into ``out_dir`` from the decorated
        :class:`~dlgrade.graders.results.Report` list and the instructor's
        :class:`~dlgrade.graders.gradebook.ClassExtras`."""

    def similarity_pages(self, folder: Path, pairs: list, submissions: dict, names: dict[str, str],
                         page_name: Callable[[int], str]) -> None:
        """Write the side-by-side page of each near-identical pair into ``folder``
        (``pairs``: :class:`~dlgrade.graders.similarity.Pair` records, numbered from 1 by
        ``page_name``; ``submissions``: each student's fingerprinted sources)."""


def check_pages(pages) -> Pages | None:
    """``pages`` when it is None or has the three methods; a TypeError naming what is missing."""
    if pages is None or isinstance(pages, Pages):
        return pages
    methods = ("student_page", "class_summary", "similarity_pages")
    missing = [m for m in methods if not callable(getattr(pages, m, None))]
    raise TypeError(f"pages= needs {', '.join(missing)}() (see dlgrade.graders.pages.Pages)")


__all__ = ["Pages", "check_pages"]
