"""The class's HTML pages, as the front ends hand them to the library (dlgrade.graders.pages).

``dlgrade grade`` and the instructor's commands pass :data:`HTML_PAGES`: a
student's report (:mod:`dlgrade.reports.html`), the class summary
(``index.html``) and the similarity pairs (:mod:`dlgrade.reports.similarity_pages`).
"""
from __future__ import annotations

from pathlib import Path

from dlgrade.reports import html, similarity_pages as pair_pages


class HtmlPages:
    """dlgrade.graders.pages.Pages, written as HTML."""

    def student_page(self, report, path: Path) -> None:
        html.write_student_report(report, path)

    def class_summary(self, reports: list, out_dir: Path, extras) -> None:
        html.write_class_summary(reports, out_dir, extras=extras)

    def similarity_pages(self, folder: Path, pairs: list, submissions: dict, names: dict[str, str],
                         page_name) -> None:
        pair_pages.write_pages(folder, pairs, submissions, names, page_name)


HTML_PAGES = HtmlPages()

__all__ = ["HTML_PAGES", "HtmlPages"]
