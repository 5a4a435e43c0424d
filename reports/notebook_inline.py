"""A check's result as a notebook cell shows it: the terminal's summary and the HTML report.

:func:`mime_bundle` gives the two representations a Jupyter or Colab frontend
picks from: ``text/plain`` is the summary ``dlgrade check`` prints, ``text/html``
the student's report (what went wrong, with its hint, first) inside a sandboxed
``<iframe srcdoc>``: no scripts run in it, the notebook's styles do not reach it
and it cannot reach the notebook. It needs no server extension, so it works in
JupyterLab, the classic Notebook and Colab alike. Renders a
:class:`~dlgrade.graders.results.StudentReport` only.
"""
from __future__ import annotations

from dlgrade.graders.results import StudentReport, student_view_only
from dlgrade.reports.html import environment, exercise_view, render_student_report
from dlgrade.reports.plaintext import pts
from dlgrade.reports.terminal import render_report

# The frame cannot size itself to its page (that would take a script); it starts at a
# height estimated from what the page shows, and the student can drag it taller.
MIN_HEIGHT_PX = 240
MAX_HEIGHT_PX = 900
HEAD_PX = 150  # the page's title, total and table of contents header
EXERCISE_PX = 150  # an exercise's heading, summary and footer
CHECK_PX = 44
DIAGNOSIS_PX = 150  # shown twice: first, and in its exercise
PROBLEM_PX = 220
OUTPUT_LINE_PX = 18
OUTPUT_LINES_COUNTED = 20


def frame_height(report: StudentReport) -> int:
    """The iframe's starting height in pixels, between MIN_HEIGHT_PX and MAX_HEIGHT_PX."""
    report = student_view_only(report, "the notebook output")
    h = HEAD_PX + 26 * len(report.warnings)
    if len(report.results) > 1:
        h += 34 * (len(report.results) + 1)
    for r in report.results:
        v = exercise_view(r)
        h += EXERCISE_PX + CHECK_PX * (len(v.checks) + len(v.hidden)) + DIAGNOSIS_PX * len(v.diagnoses)
        if v.error is not None:
            h += PROBLEM_PX
        if v.output is not None:
            h += OUTPUT_LINE_PX * min(OUTPUT_LINES_COUNTED, len(v.output.head) + len(v.output.tail))
    return max(MIN_HEIGHT_PX, min(MAX_HEIGHT_PX, h))


def inline_page(report: StudentReport) -> str:
    """The self-contained page the frame shows: what to fix first, then the full report."""
    return render_student_report(report, template="notebook_page.html.j2")


def inline_html(report: StudentReport) -> str:
    """The ``text/html`` output: :func:`inline_page` in a sandboxed iframe's ``srcdoc``."""
    report = student_view_only(report, "the notebook output")
    title = f"dlgrade feedback for {report.student}: {pts(report.score)} / {pts(report.max_score)} points"
    return environment().get_template("notebook_output.html.j2").render(
        page=inline_page(report), height=frame_height(report), title=title)


def mime_bundle(report: StudentReport) -> dict[str, str]:
    """``{"text/plain": the terminal summary, "text/html": the framed report}``.

    Raises TypeError for anything but a StudentReport.
    """
    report = student_view_only(report, "the notebook output")
    return {"text/plain": render_report(report, color=False), "text/html": inline_html(report)}
