"""The terminal summary of `dlgrade check`: each check, its points, its message.

Renders a :class:`~dlgrade.graders.results.StudentReport` only (what the student may see).
"""
from __future__ import annotations

import click

from dlgrade.graders.diagnose import describe
from dlgrade.graders.results import StudentReport, StudentResult, student_result_only, student_view_only
from dlgrade.reports.plaintext import pts

MARK = {"passed": ("PASS", "green"), "failed": ("FAIL", "red"), "skipped": ("SKIP", "yellow")}
STATUS_WORD = {"error": "ERROR", "timeout": "TIMEOUT", "missing": "MISSING"}


def render_result(r: StudentResult, color: bool) -> list[str]:
    r = student_result_only(r, "the terminal summary")
    s = (lambda text, **kw: click.style(text, **kw)) if color else (lambda text, **kw: text)
    lines = [s(f"{r.exercise}", bold=True) + f"  {r.title}  " + s(f"{pts(r.score)} / {pts(r.max_score)}", bold=True)]
    for note in (r.extra.get("notebook") or {}).get("notes", ()):
        lines.append("  " + s("note", fg="yellow", bold=True) + f"  {note}")
    if r.status != "graded":
        lines.append("  " + s(STATUS_WORD[r.status], fg="red", bold=True) + f"  {r.message}")
        tb = r.error.get("frames") if isinstance(r.error, dict) else None
        if r.error.get("text"):
            lines.append(f"      {r.error['text']}")
        if tb:
            for fr in tb[-3:]:
                lines.append(f"      line {fr['line']}, in {fr['function']}: {fr['code']}")
    for c in r.checks:
        word, fg = MARK[c.status]
        points = f"{pts(c.score)}/{pts(c.max_score)}" if c.status != "skipped" else "-"
        lines.append(f"  {s(word, fg=fg, bold=True)} {c.name:<34} {points:>7}  {c.message}")
    for d in r.diagnoses:
        info = describe(d, r)
        lines.append("  " + s("diagnosis", fg="magenta", bold=True) + f" [{d}] {info.title}")
        if info.hint:
            lines.append(f"      {info.hint}")
    if r.output.strip():
        out = r.output.strip().splitlines()
        shown = out[:6] + (["      …"] if len(out) > 6 else [])
        lines.append("  output:")
        lines += [f"      {ln[:160]}" for ln in shown]
    return lines


def render_report(report: StudentReport, color: bool = False) -> str:
    """The summary `dlgrade check` prints. Raises TypeError for anything but a StudentReport."""
    report = student_view_only(report, "the terminal summary")
    lines = []
    for w in report.warnings:
        lines.append(click.style(w, fg="yellow") if color else w)
    iso = next((r.isolation for r in report.results if r.isolation), "")
    head = f"dlgrade check: {report.student}" + (f"  (isolation: {iso})" if iso else "")
    lines.append(head)
    lines.append("")
    for r in report.results:
        lines += render_result(r, color)
        lines.append("")
    lines.append(f"Total: {pts(report.score)} / {pts(report.max_score)}")
    return "\n".join(lines)
