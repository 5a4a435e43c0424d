"""GitHub Actions: annotations on the student's file and a Markdown job summary.

When ``GITHUB_ACTIONS=true``, ``dlgrade check`` prints workflow commands
(``::error file=F,line=L,title=T::message``) that GitHub turns into
annotations on the student's file, and appends a Markdown table to the file
named by ``$GITHUB_STEP_SUMMARY``.

- a failed check, and an exercise that was not graded (error, timeout,
  missing), is an ``error`` annotation; its line is the syntax error's line or
  the student's traceback frame, when the failure has one (never for a
  notebook, whose ``.ipynb`` lines are not code lines: the cell is named in
  the message instead);
- a skipped check (or any status that is neither passed nor failed, such as a
  check that needs review) is a ``warning``;
- a diagnosis that no check reported is a ``notice`` with its hint.

GitHub shows at most 10 annotations of each level per step; past that, the
first 9 are printed and the 10th says how many more there are.
Escaping follows GitHub's workflow-command rules: in the message ``%``, CR and
LF are percent-encoded; in properties (file, title) also ``:`` and ``,``.

Nothing a student wrote or printed may run as a workflow command. The runner
reads every line of a step's stdout and stderr (a line ends at LF, CR or
CRLF) and runs it as a command when, leading whitespace trimmed, it starts
with ``::`` or when it holds ``##[`` anywhere (the legacy form). So on GitHub:

- the terminal summary (which quotes exception messages and printed output)
  is fenced: ``::stop-commands::<fresh random token>`` before it and
  ``::<token>::`` after it, and each of its lines is also made inert
  (:func:`inert`), for runners that do not honour the fence;
- ``--json`` on stdout has every ``#`` written as the JSON escape ``\u0023``
  (the same JSON, but no ``##[`` on any line); a JSON line cannot start with ``::``;
- every other line dlgrade prints there (errors, progress, student ids) is inert;
- dlgrade's own annotations are printed after the fence closes, on the same stream.
"""
from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from typing import Callable, Mapping

from dlgrade.graders.diagnose import describe
from dlgrade.graders.results import CheckResult, StudentReport, StudentResult, student_view_only
from dlgrade.reports.plaintext import (
    STATUS_HEADLINE, check_line, error_line, failure_text, pts,
)

MAX_PER_LEVEL = 10  # annotations of one level GitHub shows per step
SUMMARY_LIMIT = 1_000_000  # bytes; GitHub refuses a step summary over 1 MiB
CELL_LIMIT = 300  # characters of a message in the summary table
MARK = {"passed": "✅", "failed": "❌", "skipped": "⏭️"}
NOT_GRADED_MARK = "💥"


# Leading characters GitHub's runner trims (.NET TrimStart: Unicode white space), and
# invisible ones a terminal would not show: a command hidden behind them is still refused.
_LEAD = re.compile(r"^[\s\u180e\u200b-\u200d\u2060\ufeff]*")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def on_github(env: Mapping[str, str] | None = None) -> bool:
    """True when running as a GitHub Actions step (``GITHUB_ACTIONS=true``)."""
    return (os.environ if env is None else env).get("GITHUB_ACTIONS") == "true"


def inert(text: str) -> str:
    """``text`` with no line the runner would take for a workflow command.

    Lines are split where the runner splits them (LF, CR, CRLF) and joined with
    LF; a line that starts with ``::`` after white space gets its first colon
    written ``\\x3a``, and every ``##[`` becomes ``##\\x5b`` (the escapes
    dlgrade already uses for control characters). Other text is unchanged.
    """
    out = []
    for line in _LINE_BREAK.split(text):
        lead = _LEAD.match(line).end()
        if line.startswith("::", lead):
            line = line[:lead] + "\\x3a" + line[lead + 1:]
        out.append(line.replace("##[", "##\\x5b"))
    return "\n".join(out)


def json_inert(text: str) -> str:
    """JSON text (from ``json.dumps``) with every ``#`` as ``\\u0023``: the same value, and
    no ``##[`` on any line. ``#`` only ever appears inside JSON strings."""
    return text.replace("#", "\\u0023")


def fenced(text: str, token: str | None = None) -> list[str]:
    """The lines to print for student-derived ``text``: a stop-commands fence around
    it, with a fresh random token, and every line inert inside."""
    token = token or secrets.token_hex(16)
    return [f"::stop-commands::{token}", *inert(text).split("\n"), f"::{token}::"]


class InertStream:
    """A text stream (stderr, say) whose every line is made :func:`inert` as it is written."""

    def __init__(self, stream):
        self.stream = stream
        self._partial = ""

    def write(self, text: str) -> int:
        text = self._partial + text
        *lines, self._partial = _LINE_BREAK.split(text)
        for line in lines:
            self.stream.write(inert(line) + "\n")
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self.stream.write(inert(self._partial))
            self._partial = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self.stream, name)


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (file, title): also ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass(frozen=True)
class Annotation:
    """One ``::error``/``::warning``/``::notice`` workflow command."""

    level: str
    message: str
    file: str = ""
    line: int | None = None
    title: str = ""

    def command(self) -> str:
        props = []
        if self.file:
            props.append(f"file={escape_property(self.file)}")
            if self.line:
                props.append(f"line={int(self.line)}")
        if self.title:
            props.append(f"title={escape_property(self.title)}")
        head = f"::{self.level}" + (" " + ",".join(props) if props else "")
        return f"{head}::{escape_data(self.message)}"


def _relative(path: str, workspace: str | None) -> str:
    """A path as GitHub wants it: relative to the workspace when it lies inside it.

    The path itself is never resolved: it may be a symbolic link a student made,
    whose target must not be named anywhere.
    """
    if not path or not workspace or not os.path.isabs(path):
        return path
    for ws in dict.fromkeys((os.path.abspath(workspace), os.path.realpath(workspace))):
        rel = os.path.relpath(os.path.abspath(path), ws)
        if rel != ".." and not rel.startswith(".." + os.sep):
            return rel
    return path


def _diagnosis_text(diag_id: str, result=None) -> str:
    info = describe(diag_id, result)
    return f"Diagnosis [{diag_id}] {info.title}." + (f" {info.hint}" if info.hint else "")


def _check_annotation(r: StudentResult, c: CheckResult, file: str) -> Annotation:
    pts_text = f"{pts(c.score)}/{pts(c.max_score)}"
    if c.status == "failed":
        message = "\n".join([c.message, *(_diagnosis_text(d, r) for d in c.diagnoses)])
        return Annotation("error", message, file, check_line(r, c), f"{r.exercise}: {c.name} ({pts_text})")
    return Annotation("warning", c.message, file, check_line(r, c), f"{r.exercise}: {c.name} ({c.status})")


def annotations(report: StudentReport, workspace: str | None = None) -> list[Annotation]:
    """Every annotation for ``report``, before GitHub's per-step limits.

    Raises TypeError for anything but a StudentReport.
    """
    report = student_view_only(report, "GitHub annotations")
    found = []
    for r in report.results:
        file = _relative(r.submission, workspace)
        if r.status != "graded":
            err_file = _relative(str(r.error.get("file") or r.submission), workspace)
            found.append(Annotation("error", failure_text(r), err_file, error_line(r),
                                    f"{r.exercise} {STATUS_HEADLINE[r.status]} (0/{pts(r.max_score)})"))
            continue
        for c in r.checks:
            if c.status != "passed":
                found.append(_check_annotation(r, c, file))
        on_checks = {d for c in r.checks for d in c.diagnoses}
        for d in r.diagnoses:
            if d not in on_checks:
                found.append(Annotation("notice", _diagnosis_text(d, r), file, None, f"{r.exercise}: {describe(d, r).title}"))
    return found


def within_limits(found: list[Annotation], limit: int = MAX_PER_LEVEL) -> list[Annotation]:
    """At most ``limit`` annotations per level: past that, the last one counts the rest."""
    kept: list[Annotation] = []
    for level in ("error", "warning", "notice"):
        of_level = [a for a in found if a.level == level]
        if len(of_level) <= limit:
            kept += of_level
            continue
        rest = of_level[limit - 1:]
        titles = "; ".join(a.title for a in rest)
        kept += of_level[:limit - 1]
        kept.append(Annotation(level, f"{len(rest)} more not shown as annotations (GitHub shows "
                                      f"{limit} per step; see the job summary): {titles}",
                               title=f"dlgrade: {len(rest)} more {level}s"))
    return kept


def workflow_commands(report: StudentReport, workspace: str | None = None) -> list[str]:
    """The workflow-command lines to print, within GitHub's per-step limits."""
    return [a.command() for a in within_limits(annotations(report, workspace))]


# --------------------------------------------------------------------------- summary


def md_escape(text: str, limit: int = CELL_LIMIT) -> str:
    """Student-facing text safe inside a Markdown table cell (no markup, no HTML)."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for ch in "\\`*_[]|~#":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\r", "").replace("\n", "<br>")


def step_summary(report: StudentReport, min_score: float | None = None) -> str:
    """The Markdown appended to ``$GITHUB_STEP_SUMMARY`` for ``report`` (a StudentReport)."""
    report = student_view_only(report, "GitHub's step summary")
    lines = [f"## dlgrade: {md_escape(report.student)} — {pts(report.score)} / {pts(report.max_score)}", ""]
    if min_score is not None:
        verdict = "below" if report.score < min_score else "at or above"
        lines += [f"Score {pts(report.score)} is **{verdict}** the required {pts(min_score)}.", ""]
    for r in report.results:
        title = f" — {md_escape(r.title)}" if r.title else ""
        lines += [f"### {md_escape(r.exercise)}{title}: {pts(r.score)} / {pts(r.max_score)}", ""]
        if r.status != "graded":
            lines += [f"{NOT_GRADED_MARK} **{STATUS_HEADLINE[r.status]}**: {md_escape(r.message)}", ""]
            continue
        lines += ["| | Check | Points | Message |", "|---|---|---|---|"]
        for c in r.checks:
            points = f"{pts(c.score)} / {pts(c.max_score)}" if c.status != "skipped" else "–"
            lines.append(f"| {MARK.get(c.status, '❔')} | {md_escape(c.name)}{' (hidden)' if c.hidden else ''} "
                         f"| {points} | {md_escape(c.message)} |")
        lines.append("")
        for d in r.diagnoses:
            info = describe(d, r)
            lines.append(f"- **{md_escape(d)}** — {md_escape(info.title)}: {md_escape(info.hint, 1000)}")
        if r.diagnoses:
            lines.append("")
    text = "\n".join(lines) + "\n"
    if len(text.encode("utf-8")) > SUMMARY_LIMIT:
        text = text.encode("utf-8")[: SUMMARY_LIMIT - 100].decode("utf-8", "ignore") + "\n\n… (summary cut)\n"
    return text


def publish(report: StudentReport, echo: Callable[[str], None], env: Mapping[str, str] | None = None,
            min_score: float | None = None) -> bool:
    """On GitHub Actions, print the annotations with ``echo`` and append the summary.

    Returns False (doing nothing) when not running on GitHub Actions. A step
    summary file that cannot be written is reported as one warning annotation.
    """
    report = student_view_only(report, "GitHub annotations")
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") != "true":
        return False
    for line in workflow_commands(report, env.get("GITHUB_WORKSPACE")):
        echo(line)
    summary_path = env.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        try:
            with open(summary_path, "a", encoding="utf-8") as f:
                f.write(step_summary(report, min_score))
        except OSError as exc:
            echo(Annotation("warning", f"could not write the job summary: {exc.strerror or exc}",
                            title="dlgrade").command())
    return True


__all__ = ["Annotation", "annotations", "within_limits", "workflow_commands", "step_summary",
           "publish", "escape_data", "escape_property", "on_github", "inert", "json_inert", "fenced",
           "InertStream"]
