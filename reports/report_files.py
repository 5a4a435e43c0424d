"""Writes the optional report files a `dlgrade check` run asked for."""
from __future__ import annotations

from dlgrade.graders.results import StudentReport, student_view_only


def write_all(report: StudentReport, html_file=None, junit_file=None, gradescope_file=None) -> None:
    """Write each requested file from the student's view (TypeError for the full Report)."""
    report = student_view_only(report, "the report files")
    if html_file:
        from dlgrade.reports.html import write_student_report

        write_student_report(report, html_file)
    if junit_file:
        from dlgrade.reports.junit import write_junit

        write_junit(report, junit_file)
    if gradescope_file:
        from dlgrade.reports.gradescope import write_gradescope

        write_gradescope(report, gradescope_file)
