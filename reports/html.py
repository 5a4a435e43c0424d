"""HTML feedback: one self-contained page per student, and a class summary.

Both pages are jinja2 templates (``reports/templates/``, autoescaping on) fed
by result objects; this module only gathers what the templates show from a
:class:`Report` (visible checks, hidden-check counts, diagnoses, trimmed
output, chart geometry from :mod:`dlgrade.reports.charts`). Nothing here decides a
verdict or makes up a number: every figure on a page comes from the result.

A student report renders a :class:`~dlgrade.graders.results.StudentReport` only (the
full record raises TypeError), so a hidden check contributes its name, verdict
and points and nothing else. The class summary is the instructor's page and
reads the full reports. The pages load nothing from the network (inline CSS and SVG, a Content Security
Policy that forbids fetching), work without JavaScript and print cleanly.
"""
from __future__ import annotations

import base64
import hashlib
import os
import statistics
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from dlgrade.graders.compare import fmt_index, fmt_num
from dlgrade.graders.diagnose import Diagnosis, describe
from dlgrade.graders.results import (
    CheckResult, Report, StudentReport, StudentResult, student_result_only, student_view_only,
)
from dlgrade.reports import charts
from dlgrade.reports.mathml import MathNode, sanitize_mathml

TEMPLATES = Path(__file__).parent / "templates"

# The student's captured output is already cut to a head and a tail by the
# engine; the page shows at most this much of it.
OUTPUT_HEAD_LINES = 40
OUTPUT_TAIL_LINES = 20
OUTPUT_LINE_CHARS = 240
TRACEBACK_FRAMES = 8
MISSING_NAMES_SHOWN = 20
EXAMPLE_STUDENTS = 5

ISOLATION_TEXT = {
    "sandbox": "sandbox: your code ran in a bubblewrap sandbox, without network and with "
               "time and memory limits",
    "basic": "basic: your code ran in a separate process with time and memory limits, "
             "without the bubblewrap sandbox",
    "": "none: no code of yours was run",
}
METHOD_TEXT = {
    "simplify": "decided symbolically: SymPy simplified the difference between your "
                "expression and the reference",
    "numeric": "decided numerically: both expressions were evaluated at sample points",
    "undetermined": "not decided automatically: an instructor will look at your answer",
}
STATUS_WORD = {"graded": "GRADED", "error": "ERROR", "timeout": "TIMEOUT", "missing": "MISSING"}
CHECK_WORD = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIPPED"}

STUDENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


# --------------------------------------------------------------------------- filters


def num(x) -> str:
    """A number from a result as the page prints it (fmt_num); other values as text."""
    v = charts.as_float(x)
    return fmt_num(v) if v is not None else ("" if x is None else str(x))


def index_text(idx) -> str:
    if isinstance(idx, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in idx):
        return fmt_index(tuple(idx))
    return "" if idx is None else str(idx)


def shape_text(shape) -> str:
    return index_text(shape) if isinstance(shape, (list, tuple)) else ("" if shape is None else str(shape))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(num=num, idx=index_text, shape=shape_text)
    env.globals.update(CHECK_WORD=CHECK_WORD, STATUS_WORD=STATUS_WORD)
    return env


_ENV: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


# --------------------------------------------------------------------------- check views


@dataclass(frozen=True)
class MismatchRow:
    index: str
    expected: Any
    got: Any
    worst: bool


@dataclass(frozen=True)
class MismatchView:
    mismatched: Any
    total: Any
    max_abs: Any
    max_rel: Any
    rtol: Any
    atol: Any
    rows: tuple[MismatchRow, ...]


@dataclass(frozen=True)
class GradientView:
    chart: charts.BarChart | None
    params: tuple[dict, ...]
    heatmaps: tuple[tuple[dict, charts.Heatmap], ...]


@dataclass(frozen=True)
class CheckView:
    check: CheckResult
    case: str = ""
    mismatch: MismatchView | None = None
    error: dict | None = None
    gradients: GradientView | None = None
    fd: dict | None = None
    gpu: dict | None = None
    facts: tuple[tuple[str, str], ...] = ()


def mismatch_view(d: dict) -> MismatchView | None:
    """The numbers of a values comparison (``dlgrade.graders.compare.Mismatch.as_details``) with
    a row for the worst element followed by the example mismatches."""
    if not isinstance(d, dict) or "mismatched" not in d or "total" not in d:
        return None
    rows = []
    worst = d.get("worst_index")
    if isinstance(worst, list) and "worst_got" in d and d.get("mismatched"):
        rows.append(MismatchRow(index_text(worst) if worst else "scalar", d.get("worst_expected"),
                                d.get("worst_got"), True))
    for ex in d.get("examples") or ():
        if not isinstance(ex, dict):
            continue
        if isinstance(worst, list) and ex.get("index") == worst and rows:
            continue
        rows.append(MismatchRow(index_text(ex.get("index")) if ex.get("index") != [] else "scalar",
                                ex.get("expected"), ex.get("got"), False))
    return MismatchView(d.get("mismatched"), d.get("total"), d.get("max_abs"), d.get("max_rel"),
                        d.get("rtol"), d.get("atol"), tuple(rows))


def _error_view(err) -> dict | None:
    if not isinstance(err, dict) or not (err.get("type") or err.get("message") or err.get("frames")):
        return None
    frames = [f for f in (err.get("frames") or ()) if isinstance(f, dict)]
    return {"type": err.get("type", ""), "message": err.get("message", ""), "line": err.get("line"),
            "frames": frames[-TRACEBACK_FRAMES:], "frames_cut": max(0, len(frames) - TRACEBACK_FRAMES)}


def _gradient_view(d: dict) -> GradientView | None:
    params = d.get("params")
    if not isinstance(params, list):
        return None
    params = [p for p in params if isinstance(p, dict)]
    heat = []
    for p in params:
        h = charts.heatmap(p.get("heatmap")) if p.get("heatmap") is not None else None
        if h is not None:
            heat.append((p, h))
    return GradientView(charts.gradient_chart(params), tuple(params), tuple(heat))


def _facts(d: dict) -> tuple[tuple[str, str], ...]:
    """Short labelled numbers of the structural failures (shape, dtype, non-finite, mutation)."""
    facts = []
    if "shape" in d and "expected_shape" in d:
        facts += [("shape returned", shape_text(d["shape"])), ("shape expected", shape_text(d["expected_shape"]))]
    if "dtype" in d and "expected_dtype" in d:
        facts += [("dtype returned", str(d["dtype"])), ("dtype expected", str(d["expected_dtype"]))]
    if "nonfinite" in d:
        facts.append(("non-finite values", num(d["nonfinite"])))
        if "first_index" in d:
            facts.append(("first at", index_text(d["first_index"])))
    if "changed" in d and "total" in d and "argument" in d:
        arg = d["argument"]
        facts.append(("argument", f"#{arg + 1}" if isinstance(arg, int) else str(arg)))
        facts.append(("elements changed", f"{num(d['changed'])} / {num(d['total'])}"))
    return tuple(facts)


def check_view(c: CheckResult) -> CheckView:
    """What the page shows of one (already public) check."""
    d = c.details if isinstance(c.details, dict) else {}
    gpu = None
    if c.kind == "gpu" or "cpu_vs_gpu" in d:
        gpu = {"device": d.get("device"), "line": d.get("line"),
               "mismatch": mismatch_view(d.get("cpu_vs_gpu") or {})}
    fd = None
    if "directions" in d or "samples" in d:
        fd = {"directions": [x for x in d.get("directions") or () if isinstance(x, dict)],
              "samples": [x for x in d.get("samples") or () if isinstance(x, dict)],
              "tolerance": d.get("tolerance")}
    mm = mismatch_view(d) if c.status == "failed" else None
    return CheckView(
        check=c, case=str(d.get("case", "")) if d.get("case") is not None else "",
        mismatch=mm if mm is not None and mm.mismatched else None,
        error=_error_view(d.get("error")), gradients=_gradient_view(d), fd=fd, gpu=gpu,
        facts=_facts(d),
    )


# --------------------------------------------------------------------------- exercise views


@dataclass(frozen=True)
class OutputView:
    head: tuple[str, ...]
    tail: tuple[str, ...]
    cut_lines: int


def output_view(text: str) -> OutputView | None:
    """The captured output, at most OUTPUT_HEAD_LINES + OUTPUT_TAIL_LINES lines of
    OUTPUT_LINE_CHARS characters; None when there was none."""
    if not text or not text.strip():
        return None
    lines = [ln if len(ln) <= OUTPUT_LINE_CHARS else ln[:OUTPUT_LINE_CHARS] + " …"
             for ln in text.rstrip("\n").split("\n")]
    if len(lines) <= OUTPUT_HEAD_LINES + OUTPUT_TAIL_LINES:
        return OutputView(tuple(lines), (), 0)
    return OutputView(tuple(lines[:OUTPUT_HEAD_LINES]), tuple(lines[-OUTPUT_TAIL_LINES:]),
                      len(lines) - OUTPUT_HEAD_LINES - OUTPUT_TAIL_LINES)


@dataclass(frozen=True)
class SymbolicView:
    student_text: str
    student_latex: str
    student_math: MathNode | None
    reference_latex: str
    reference_math: MathNode | None
    method: str
    method_text: str
    point: tuple[tuple[str, Any], ...]
    counter_student: Any
    counter_expected: Any
    has_counterexample: bool
    needs_review: bool


def symbolic_view(sym) -> SymbolicView | None:
    """``extra["symbolic"]`` with both MathML renderings passed through the sanitizer."""
    if not isinstance(sym, dict):
        return None
    ce = sym.get("counterexample") if isinstance(sym.get("counterexample"), dict) else None
    point = ce.get("point") if ce and isinstance(ce.get("point"), dict) else {}
    method = str(sym.get("method") or "")
    return SymbolicView(
        student_text=str(sym.get("student_text") or ""), student_latex=str(sym.get("student_latex") or ""),
        student_math=sanitize_mathml(sym.get("student_mathml")),
        reference_latex=str(sym.get("reference_latex") or ""),
        reference_math=sanitize_mathml(sym.get("reference_mathml")),
        method=method, method_text=METHOD_TEXT.get(method, method),
        point=tuple((str(k), v) for k, v in point.items()),
        counter_student=ce.get("student") if ce else None, counter_expected=ce.get("expected") if ce else None,
        has_counterexample=ce is not None, needs_review=bool(sym.get("needs_review")),
    )


def hidden_summary(checks) -> str:
    """``2 hidden checks: 1 passed, 1 failed`` (empty when there are none)."""
    hidden = [c for c in checks if c.hidden]
    if not hidden:
        return ""
    counts = Counter(c.status for c in hidden)
    parts = [f"{counts[s]} {s}" for s in ("passed", "failed", "skipped") if counts[s]]
    n = len(hidden)
    return f"{n} hidden check{'s' if n != 1 else ''}: " + ", ".join(parts)


@dataclass(frozen=True)
class ExerciseView:
    result: StudentResult
    anchor: str
    checks: tuple[CheckView, ...]
    hidden: tuple[CheckResult, ...]
    hidden_summary: str
    passed: int
    failed: int
    skipped: int
    diagnoses: tuple[Diagnosis, ...]
    symbolic: SymbolicView | None
    output: OutputView | None
    error: dict | None
    isolation_text: str


def anchor_for(exercise: str) -> str:
    return "ex-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in exercise)


def _caret(e: dict) -> int | None:
    """Spaces before the ``^`` under a syntax error's offending column (1-based offset)."""
    offset, text = e.get("offset"), e.get("text") or ""
    if not isinstance(offset, int) or not 0 < offset <= len(text) + 1:
        return None
    prefix = len(f"line {e['line']}: ") if isinstance(e.get("line"), int) else 0
    return prefix + offset - 1


def exercise_view(r: StudentResult) -> ExerciseView:
    """What a student sees of one exercise (hidden checks reduced to name and verdict)."""
    pub = student_result_only(r, "the HTML report")
    visible = tuple(check_view(c) for c in pub.checks if not c.hidden)
    counts = Counter(v.check.status for v in visible)
    err = None
    if r.status != "graded":
        e = r.error if isinstance(r.error, dict) else {}
        names = [str(n) for n in e.get("names") or ()] if isinstance(e.get("names"), list) else []
        err = {**(_error_view(e) or {"type": "", "message": "", "line": e.get("line"), "frames": [],
                                     "frames_cut": 0}),
               "kind": e.get("kind", ""), "text": e.get("text") or "",
               "source_prefix": f"line {e['line']}: " if isinstance(e.get("line"), int) else "",
               "caret": _caret(e),
               "cell": e.get("cell"), "cell_line": e.get("cell_line"), "line": e.get("line"),
               "names": names[:MISSING_NAMES_SHOWN], "names_cut": max(0, len(names) - MISSING_NAMES_SHOWN)}
    return ExerciseView(
        result=pub, anchor=anchor_for(r.exercise), checks=visible,
        hidden=tuple(c for c in pub.checks if c.hidden), hidden_summary=hidden_summary(pub.checks),
        passed=counts["passed"], failed=counts["failed"], skipped=counts["skipped"],
        diagnoses=tuple(describe(d, pub) for d in pub.diagnoses),
        symbolic=symbolic_view(pub.extra.get("symbolic")) if isinstance(pub.extra, dict) else None,
        output=output_view(r.output), error=err,
        isolation_text=ISOLATION_TEXT.get(r.isolation, r.isolation),
    )


# --------------------------------------------------------------------------- student report


def render_student_report(report: StudentReport, template: str = "student.html.j2") -> str:
    """The student's HTML report as a string (a complete, self-contained page);
    ``template`` is the page that shows it (one extending ``student.html.j2``).

    Raises TypeError for anything but a StudentReport.
    """
    report = student_view_only(report, "the HTML report")
    views, seen = [], set()
    for r in report.results:
        v = exercise_view(r)
        anchor, n = v.anchor, 1
        while anchor in seen:  # the same exercise twice: keep ids unique
            n += 1
            anchor = f"{v.anchor}-{n}"
        seen.add(anchor)
        views.append(replace(v, anchor=anchor))
    isolations = sorted({r.isolation for r in report.results if r.isolation})
    return environment().get_template(template).render(
        report=report, exercises=views, csp=STUDENT_CSP,
        isolation=", ".join(isolations), isolation_texts=[ISOLATION_TEXT.get(i, i) for i in isolations],
    )


def write_student_report(report: StudentReport, path) -> Path:
    """Write :func:`render_student_report` to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_student_report(report), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- class summary


def student_report_name(student: str) -> str:
    """The file name of a student's report under ``students/`` (path separators replaced)."""
    safe = "".join("_" if ch in "/\\\x00" or ch == os.sep else ch for ch in student)
    if safe in ("", ".", ".."):
        safe = "_" + safe
    return f"{safe}.html"


def student_report_path(out_dir, student: str) -> Path:
    """Where batch grading writes a student's report: ``out_dir/students/<student>.html``."""
    return Path(out_dir) / "students" / student_report_name(student)


def student_href(student: str, exercise: str | None = None) -> str:
    href = "students/" + quote(student_report_name(student), safe="")
    return href + ("#" + anchor_for(exercise) if exercise else "")


@dataclass(frozen=True)
class CheckRate:
    name: str
    hidden: bool
    passed: int
    counted: int
    skipped: int


@dataclass(frozen=True)
class ExerciseSummary:
    id: str
    title: str
    anchor: str
    max_score: float
    counts: dict
    by_status: dict  # status -> [student ids]
    mean: float | None
    median: float | None
    checks: tuple[CheckRate, ...]


@dataclass(frozen=True)
class DiagnosisCount:
    exercise: str
    diagnosis: Diagnosis
    students: tuple[str, ...]


@dataclass(frozen=True)
class StudentRow:
    student: str
    name: str
    href: str
    score: float
    max_score: float
    cells: tuple  # per exercise: ExerciseResult or None
    diagnoses: tuple[str, ...]


def _exercise_order(reports: list[Report]) -> list[tuple[str, str, float]]:
    seen: dict[str, tuple[str, float]] = {}
    for rep in reports:
        for r in rep.results:
            if r.exercise not in seen:
                seen[r.exercise] = (r.title, r.max_score)
    return [(k, t, m) for k, (t, m) in seen.items()]


def class_summary_context(reports: list[Report]) -> dict:
    """Everything the class summary shows, computed only from the reports."""
    reports = sorted(reports, key=lambda rep: rep.student)
    order = _exercise_order(reports)
    summaries = []
    for ex_id, title, max_score in order:
        results = [(rep.student, r) for rep in reports for r in rep.results if r.exercise == ex_id]
        by_status: dict[str, list[str]] = {s: [] for s in STATUS_WORD}
        for student, r in results:
            by_status.setdefault(r.status, []).append(student)
        rates: dict[str, list] = {}
        for _, r in results:
            if r.status != "graded":
                continue
            for c in r.checks:
                entry = rates.setdefault(c.name, [c.hidden, 0, 0, 0])
                entry[0] = entry[0] or c.hidden
                if c.status == "skipped":
                    entry[3] += 1
                else:
                    entry[2] += 1
                    entry[1] += int(c.status == "passed")
        scores = [r.score for _, r in results]
        summaries.append(ExerciseSummary(
            id=ex_id, title=title, anchor=anchor_for(ex_id), max_score=max_score,
            counts={s: len(v) for s, v in by_status.items()}, by_status=by_status,
            mean=statistics.fmean(scores) if scores else None,
            median=statistics.median(scores) if scores else None,
            checks=tuple(CheckRate(n, h, p, c, s) for n, (h, p, c, s) in rates.items()),
        ))
    diag: dict[tuple[str, str], list[str]] = {}
    worded: dict[tuple[str, str], object] = {}  # a result of that exercise: it carries the exercise's own words
    for rep in reports:
        for r in rep.results:
            for d in r.diagnoses:
                diag.setdefault((r.exercise, d), []).append(rep.student)
                worded.setdefault((r.exercise, d), r)
    diagnoses = sorted((DiagnosisCount(ex, describe(d, worded[(ex, d)]), tuple(s)) for (ex, d), s in diag.items()),
                       key=lambda x: (-len(x.students), x.exercise, x.diagnosis.id))
    rows = []
    for rep in reports:
        by_ex = {r.exercise: r for r in rep.results}
        ds = []
        for r in rep.results:
            ds += [d for d in r.diagnoses if d not in ds]
        rows.append(StudentRow(rep.student, rep.name, student_href(rep.student), rep.score, rep.max_score,
                               tuple(by_ex.get(ex_id) for ex_id, _, _ in order), tuple(ds)))
    totals = Counter(r.status for rep in reports for r in rep.results)
    return {
        "exercises": summaries, "diagnoses": diagnoses, "rows": rows,
        "histogram": charts.histogram([(rep.score, rep.max_score) for rep in reports]),
        "totals": {s: totals[s] for s in STATUS_WORD}, "n_students": len(reports),
        "example_students": EXAMPLE_STUDENTS, "any_names": any(rep.name for rep in reports),
        "overridden": sum(bool(r.override) for rep in reports for r in rep.results),
    }


def _script_and_csp() -> tuple[Markup, str]:
    # The sort script is our own constant file; the CSP allows exactly it (by hash)
    # and nothing else, so markup that escaped escaping still could not run.
    text = (TEMPLATES / "sort.js.j2").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
           f"form-action 'none'; script-src 'sha256-{digest}'")
    return Markup(text), csp


def render_class_summary(reports: list[Report], title: str = "Class summary", extras=None) -> str:
    """The instructor's class summary page as a string (links assume the batch layout:
    ``students/<student>.html``, ``grades.csv`` and ``results.json`` beside it).
    ``extras`` (a dlgrade.graders.gradebook.ClassExtras) adds the download, roster, overrides,
    review queue and similar pairs."""
    from dlgrade.graders.gradebook import ClassExtras

    script, csp = _script_and_csp()
    return environment().get_template("class.html.j2").render(
        title=title, csp=csp, script=script, student_href=student_href, lms=extras or ClassExtras(),
        **class_summary_context(list(reports)))


def write_class_summary(reports: list[Report], out_dir, title: str = "Class summary", extras=None) -> Path:
    """Write ``out_dir/index.html``; returns its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "index.html"
    path.write_text(render_class_summary(reports, title=title, extras=extras), encoding="utf-8")
    return path
