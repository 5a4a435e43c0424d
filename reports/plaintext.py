"""Plain-text pieces the CI renderings share (JUnit, GitHub Actions, Gradescope).

Everything here reads :mod:`dlgrade.graders.results` records and formats them; no
verdict is recomputed. The renderers pass :class:`~dlgrade.graders.results.StudentResult`
records, whose hidden checks hold no inputs or numbers to reveal.
"""
from __future__ import annotations

from dlgrade.graders.results import CheckResult, StudentResult

# How a result that was not graded is headlined (the one-line `message` follows).
STATUS_HEADLINE = {
    "error": "could not be graded",
    "timeout": "timed out",
    "missing": "not found in the submission",
}
# The name of the one test that stands for an exercise that was not graded.
NOT_GRADED_CASE = "the submission could be graded"
DETAIL_LINES = 20
DETAIL_WIDTH = 200


def pts(x: float) -> str:
    """Points as a person writes them: ``3``, ``2.5``, ``0.33``."""
    return f"{int(x)}" if x == int(x) else f"{x:.2f}".rstrip("0").rstrip(".")


def is_notebook(result: StudentResult) -> bool:
    return result.submission.endswith(".ipynb")


def check_line(result: StudentResult, check: CheckResult) -> int | None:
    """The line of the student's file a failed check points at, if it has one.

    A check records it as ``details["line"]`` or in the student's exception
    (``details["error"]["line"]``). For a notebook that line is in the converted
    module, not in the ``.ipynb`` file, so none is given.
    """
    if is_notebook(result):
        return None
    line = check.details.get("line")
    err = check.details.get("error")
    if line is None and isinstance(err, dict):
        line = err.get("line")
    return line if isinstance(line, int) and line > 0 else None


def error_line(result: StudentResult) -> int | None:
    """The line of a load error (syntax error, exception at import) in a ``.py`` file."""
    line = result.error.get("line") if isinstance(result.error, dict) else None
    if is_notebook(result) or not isinstance(line, int) or line <= 0:
        return None
    return line


def error_location(result: StudentResult) -> str:
    """``cell 3, line 2`` for a notebook, ``line 7`` for a file, or ``""``."""
    err = result.error if isinstance(result.error, dict) else {}
    if err.get("cell"):
        return f"cell {err['cell']}, line {err.get('cell_line', '?')}"
    line = error_line(result)
    return f"line {line}" if line else ""


def failure_text(result: StudentResult) -> str:
    """What went wrong with an exercise that was not graded, for a person.

    The message, where it happened, the offending source line and the last
    traceback frames in the student's file.
    """
    lines = [result.message]
    err = result.error if isinstance(result.error, dict) else {}
    where = error_location(result)
    if where and err.get("cell"):
        lines.append(f"in {result.submission}, {where}")
    if err.get("text"):
        lines.append(f"    {err['text']}")
    for fr in (err.get("frames") or [])[-3:]:
        lines.append(f"  line {fr.get('line')}, in {fr.get('function')}: {fr.get('code', '')}")
    return "\n".join(lines)


def check_text(check: CheckResult) -> str:
    """A failed or skipped check for a person: its message, points and details."""
    lines = [check.message, f"points: {pts(check.score)} / {pts(check.max_score)}"]
    if check.diagnoses:
        lines.append("diagnoses: " + ", ".join(check.diagnoses))
    detail = details_lines(check.details)
    if detail:
        lines.append("details:")
        lines += [f"  {d}" for d in detail]
    return "\n".join(lines)


def details_lines(details: dict, limit: int = DETAIL_LINES) -> list[str]:
    """The scalar facts of a check's details as ``key: value`` lines (a summary).

    Nested lists of per-case records are left out; a student exception is
    shown as ``type: message (line N)``.
    """
    out = []
    for key, value in details.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out.append(f"{key}: {value}")
        elif key == "error" and isinstance(value, dict) and value.get("type"):
            text = f"{value.get('type')}: {value.get('message', '')}"
            if value.get("line"):
                text += f" (line {value['line']})"
            out.append(f"error: {text}")
        elif value and isinstance(value, list) and all(isinstance(v, (int, float, str)) for v in value):
            out.append(f"{key}: {value}")
    return [ln if len(ln) <= DETAIL_WIDTH else ln[:DETAIL_WIDTH - 1] + "…" for ln in out[:limit]]


def cut_middle(text: str, limit: int) -> str:
    """``text`` cut in the middle to at most ``limit`` characters, keeping head and tail."""
    if len(text) <= limit:
        return text
    marker = f"\n… [{len(text) - limit} characters cut] …\n"
    keep = max(limit - len(marker), 0)
    return text[: keep // 2] + marker + text[len(text) - (keep - keep // 2):]
