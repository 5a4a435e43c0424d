"""Writes the optional report files a `dlgrade check` run asked for."""
from __future__ import annotations

from graders.results import Report


def write_all(report: Report, html_file=None, junit_file=None, gradescope_file=None) -> None:
    if html_file:
        from reports.html import write_student_report

        write_student_report(report, html_file)
    if junit_file:
        from reports.junit import write_junit

        write_junit(report, junit_file)
    if gradescope_file:
        from reports.gradescope import write_gradescope

        write_gradescope(report, gradescope_file)
