"""Grading a symbolic exercise: find the answer's text, judge it in a bounded worker, report.

1. The text: a ``.txt``/``.tex`` file as it is; in a ``.py`` file or notebook
   the module-level string read from the source (:func:`literal_string`, no
   execution), or, when it is computed, the value the student's file gives it
   when run in the sandbox like any student code.
2. The judgement: :mod:`dlgrade.graders.symbolic` (self-contained: SymPy and mpmath
   only) is shipped as a job's file into a warm worker that preloads SymPy, and
   its ``evaluate`` is called with the text and the trusted reference and
   mistakes as plain data. Parsing, simplification and numeric evaluation all
   happen there, under the exercise's time and memory limits; no student code
   runs in that job.
3. The verdict: back here, the JSON it returned becomes the checks
   ``symbolic-parse`` and ``symbolic-equivalence`` (structure before values),
   the diagnoses by the evidence rule, and ``extra["symbolic"]``.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

from dlgrade.graders import diagnose
from dlgrade.graders.checks.common import result
from dlgrade.graders.compare import fmt_num
from dlgrade.graders.spec import SYMBOLIC_PRELOAD
from dlgrade.graders.job import format_output, outcome_status
from dlgrade.graders.errors import GraderError
from dlgrade.graders.inputs import derive_seed
from dlgrade.graders.decoding import Leaf, Opaque, decode
from dlgrade.graders.results import CheckResult, ExerciseResult
from dlgrade.graders.sandbox import SandboxError, worker_error_line
from dlgrade.graders.spec import CheckSpec, Exercise, SpecError
from dlgrade.graders.submission import SubmissionSource, literal_string

# The worker imports these before forking jobs (numpy too: a computed answer's file may
# use it). SymPy also imports sympy.combinatorics, sympy.tensor.tensor, ... lazily on first
# use, ~60 ms in every fresh job; preloading them would save that, but the sandbox looks
# up each preload name with find_spec, which imports sympy in the grader first and so
# serialises it with the worker's start (+0.6 s on a cold `dlgrade check`).
PRELOAD = SYMBOLIC_PRELOAD
EVALUATOR_SOURCE = Path(__file__).with_name("symbolic.py")
EVALUATOR_FILE = "dlgrade_symbolic.py"  # its name in the job directory
# the reader of the text it imports, under the name it looks for in a job (see dlgrade.graders.symbolic)
READER_SOURCE = Path(__file__).with_name("symbolic_text.py")
READER_FILE = "dlgrade_symbolic_text.py"
EVALUATOR_ENTRY = "evaluate"
PARSE_KIND = "symbolic-parse"
EQUIVALENCE_KIND = "symbolic-equivalence"
SHOWN_TEXT_CHARS = 2000

# Student-facing sentences (pinned by tests/test_symbolic.py).
PARSED = "parsed as {parsed}"
PARSED_WITH = "parsed as {parsed}, with {aliases}"  # the statement's own names it used
NOT_READ = "could not read the expression: {reason}"
NOT_CHECKED = "not checked: the expression could not be read"
EQUAL_EXACT = "equal to {name} for every {domain} (shown by simplification)"
EQUAL_NUMERIC = ("equal to {name} at all {n} test points ({ranges}); simplification could not "
                 "confirm it within its time limit")
DIFFERENT = "not equal to {name}: at {point} your expression gives {got}, but {name} is {expected}"
UNDETERMINED = "could not decide whether this equals {name} ({reason}); flagged for review"
NOT_DECIDED = "not decided ({reason}); flagged for review"
NOT_A_STRING = ("{entry} is {what}, not a string: write the expression in quotes, "
                "e.g. {entry} = \"sigmoid(z) - y\"")


class SymbolicSpecError(SpecError):
    """A symbolic exercise's spec asks for something this grader does not do."""


def grade_symbolic(ex: Exercise, source: SubmissionSource, student: str, runner) -> ExerciseResult:
    """Grade one symbolic exercise of one submission.

    Returns a ``graded`` result (an undecidable answer is graded, 0 points,
    flagged for review), or ``error``/``timeout`` when a computed answer's
    Python file fails to run. Raises GraderError when dlgrade itself fails.
    """
    t0 = time.perf_counter()
    base = dict(student=student, exercise=ex.id, title=ex.title, max_score=ex.max_score,
                submission=source.display_name)
    _prepare(ex, runner)
    answer = _answer_text(ex, source, student, runner, base)
    if isinstance(answer, ExerciseResult):
        return _with_duration(answer, t0)
    text, isolation, output = answer
    seed = derive_seed(ex.id, ex.seed, student, "symbolic") % 2**31
    verdict, isolation2 = _judge(ex, text, seed, runner)
    checks, diagnoses = _checks(ex, verdict)
    extra = {"symbolic": _extra(text, verdict)}
    return ExerciseResult(status="graded", checks=tuple(checks), diagnoses=tuple(diagnoses),
                          extra=extra, isolation=isolation or isolation2, output=output,
                          duration_s=time.perf_counter() - t0, **base)


def _with_duration(r: ExerciseResult, t0: float) -> ExerciseResult:
    return replace(r, duration_s=time.perf_counter() - t0)


# --------------------------------------------------------------------------- the text


def _answer_text(ex: Exercise, source: SubmissionSource, student: str, runner, base: dict):
    """``(text, isolation, output)``, or an ExerciseResult when the answer cannot be had."""
    if source.kind == "text":
        return source.text or "", "", ""
    code = source.files[source.main_name].decode("utf-8", "replace")
    literal = literal_string(code, ex.entry)
    if literal is not None:
        return literal, "", ""
    # Not a plain literal (an f-string, a concatenation, a function call): run the
    # student's file in the sandbox, like any student code, and read the value back.
    plan = {"submission": source.main_name, "entry": ex.entry, "framework": "symbolic",
            "seed": derive_seed(ex.id, ex.seed, student) % 2**31, "want": "value", "calls": []}
    outcome = _run(runner, plan, source.files, ex)
    try:
        outcome.reply["_planned"] = []
        output = format_output(outcome.reply.get("output", {}))
        failed = outcome_status(ex, outcome, source)
        if failed:
            status, message, error = failed
            error = {**error, "file": source.display_name}
            source.map_error(error)
            return ExerciseResult(status=status, message=message, error=error, output=output,
                                  isolation=outcome.isolation, **base)
        entry = next(r for r in outcome.journal if r.get("step") == "entry")
        value = decode(entry.get("value"), outcome.job_dir)
    finally:
        outcome.cleanup()
    if not isinstance(value, str):
        message = NOT_A_STRING.format(entry=ex.entry, what=_what(value))
        return ExerciseResult(status="error", message=message, output=output,
                              error={"kind": "not-a-string", "file": source.display_name},
                              isolation=outcome.isolation, **base)
    return value, outcome.isolation, output


def _what(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, Leaf):
        return "a number" if value.array.ndim == 0 else "an array"
    if isinstance(value, Opaque):
        article = "an" if value.type[:1].lower() in "aeiou" else "a"
        return f"{article} {value.type}"
    if isinstance(value, tuple):
        return "a tuple"
    if isinstance(value, dict):
        return "a dict"
    return "something else"


def _worker(runner):
    try:
        return runner.worker_for(PRELOAD)
    except SandboxError as exc:
        raise GraderError(str(exc)) from exc


def _run(runner, plan: dict, files: dict, ex: Exercise):
    worker = _worker(runner)
    try:
        return worker.run(plan, files, ex.limits)
    except SandboxError as exc:
        raise GraderError(str(exc)) from exc


def _prepare(ex: Exercise, runner) -> None:
    """Derive the trusted expressions (importing SymPy here) while the SymPy worker starts.

    The worker is started from this thread (bubblewrap's --die-with-parent follows
    the thread that started it); the derivation runs in a helper thread.
    """
    box: dict = {}

    def derive():
        try:
            _trusted(ex)
        except BaseException as exc:  # re-raised below, in the caller's thread
            box["error"] = exc

    helper = threading.Thread(target=derive, name="dlgrade-symbolic-references", daemon=True)
    helper.start()
    try:
        _worker(runner)
    finally:
        helper.join()
    if "error" in box:
        raise box["error"]


# --------------------------------------------------------------------------- the judgement


_TRUSTED: dict[tuple, tuple[str, str]] = {}


def _trusted(ex: Exercise) -> tuple[str, str]:
    """The reference and the buggy references as JSON trees (cached: it is SymPy work)."""
    from dlgrade.graders import symbolic

    key = (ex.id, str(ex.folder), ex.reference, ex.mistakes)
    if key not in _TRUSTED:
        ref = _tree_of(symbolic, "the reference", ex.reference_fn())
        mistakes = {}
        for diag_id, fns in ex.mistake_fns().items():
            fns = fns if isinstance(fns, (list, tuple)) else (fns,)
            mistakes[diag_id] = [_tree_of(symbolic, f"mistake {diag_id!r}", f) for f in fns]
        _TRUSTED[key] = (json.dumps(ref), json.dumps(mistakes))
    return _TRUSTED[key]


def trusted_trees(ex: Exercise) -> tuple[dict, dict]:
    """The reference's tree and each mistake's list of trees, as the evaluator gets them."""
    ref, mistakes = _trusted(ex)
    return json.loads(ref), json.loads(mistakes)


def _tree_of(symbolic, what: str, fn) -> dict:
    """``fn()``'s SymPy expression as a tree; a SymbolicSpecError (one line, ``what`` first)
    when it raises or returns something the evaluator cannot take."""
    try:
        expr = fn()
    except Exception as exc:  # the course's own code
        raise SymbolicSpecError(f"{what} raised {_one_line(exc)}") from None
    if not isinstance(expr, symbolic.sp.Basic):
        raise SymbolicSpecError(f"{what} returns {_article(type(expr).__name__)}, not a SymPy expression")
    try:
        return symbolic.to_tree(expr)
    except (ValueError, TypeError, AttributeError) as exc:
        raise SymbolicSpecError(f"{what} returns {_short(str(expr), 80)}, which the symbolic evaluator "
                                f"cannot take: {_one_line(exc, named=False)}") from None


def _one_line(exc: BaseException, named: bool = True) -> str:
    text = " ".join(str(exc).split())
    if not named:
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _article(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def tree_symbols(tree) -> set[str]:
    """The names of the symbols in a :func:`dlgrade.graders.symbolic.to_tree` tree."""
    found, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "s" in node:
                found.add(str(node["s"]))
            stack += list(node.get("a", ())) + [x for pair in node.get("pw", ()) for x in pair]
    return found


def payload_for(ex: Exercise, text: str, seed: int) -> dict:
    """What the evaluator is called with: the text and trusted definitions, as plain data."""
    cfg = ex.symbolic
    ref, mistakes = _trusted(ex)
    wall = ex.limits.wall_s
    simplify_s = float(cfg.get("simplify_s", 3.0))
    return {
        "text": text, "variables": list(cfg.get("variables", ["z", "y"])),
        "discrete": dict(cfg.get("discrete", {})), "hints": dict(cfg.get("hints", {})),
        "aliases": dict(cfg.get("aliases", {})),
        "reference": json.loads(ref),
        "mistakes": json.loads(mistakes), "seed": seed,
        # phases stop themselves before the job's wall-clock limit kills the process
        "total_s": max(1.0, wall - 1.0), "parse_s": 1.0, "render_s": 1.0,
        "quick_s": min(1.0, simplify_s), "simplify_s": simplify_s,
        "numeric_s": float(cfg.get("numeric_s", 3.0)),
    }


def run_evaluator(runner, payload: dict, ex: Exercise) -> tuple[dict, str]:
    """Call the evaluator in a worker; ``(verdict, isolation)``.

    A job that runs out of time or memory gives ``{"bounded": reason}``;
    a failure of the evaluator itself raises GraderError.
    """
    plan = {"submission": EVALUATOR_FILE, "entry": EVALUATOR_ENTRY, "framework": "symbolic",
            "seed": 0, "calls": [{"id": "evaluate", "n": 0, "args": [{"json": payload}],
                                  "kwargs": {}, "seed": 0}]}
    files = {EVALUATOR_FILE: EVALUATOR_SOURCE.read_bytes(), READER_FILE: READER_SOURCE.read_bytes()}
    outcome = _run(runner, plan, files, ex)
    try:
        return _read_verdict(outcome, ex), outcome.isolation
    finally:
        outcome.cleanup()


def _read_verdict(outcome, ex: Exercise) -> dict:
    status = outcome.reply.get("status")
    limits = ex.limits
    if status == "timeout":
        return {"bounded": f"it took longer than {limits.wall_s:g} s"}
    if status == "signaled":
        sig = outcome.reply.get("signal")
        if sig == signal.SIGXCPU:
            return {"bounded": f"it used more than {limits.cpu_s:g} s of CPU time"}
        return {"bounded": f"the evaluation was stopped by signal {sig}"}
    if status == "worker-died":
        return {"bounded": "the evaluation process was killed"}
    load = next((r for r in outcome.journal if r.get("step") == "load"), None)
    call = next((r for r in outcome.journal if r.get("step") == "call"), None)
    if load is None:
        raise GraderError(f"the symbolic evaluator did not load (the job ended with status {status!r})")
    if load.get("status") != "ok":
        why = worker_error_line(load.get("error") or f"status {load.get('status')!r}")
        raise GraderError(f"the symbolic evaluator did not load: {why}")
    if call is None:
        raise GraderError(f"the symbolic evaluator stopped without an answer (the job ended with status {status!r})")
    if call.get("status") == "memory":
        return {"bounded": f"it ran out of memory (the limit is {limits.memory_mb} MB)"}
    if call.get("status") != "ok":
        why = worker_error_line(call.get("error") or f"status {call.get('status')!r}")
        raise GraderError(f"the symbolic evaluator failed: {why}")
    out = decode(call.get("output"), outcome.job_dir)
    try:
        verdict = json.loads(out) if isinstance(out, str) else None
    except ValueError:
        verdict = None
    if not isinstance(verdict, dict):
        raise GraderError("the symbolic evaluator returned something that is not a JSON object")
    return verdict


def _judge(ex: Exercise, text: str, seed: int, runner) -> tuple[dict, str]:
    from dlgrade.graders import symbolic_text

    try:  # the length is checked here too, so a 2 MB file is not shipped to be refused
        symbolic_text._check_size(symbolic_text.clean_text(text))
    except symbolic_text.ParseError as exc:
        return {"ok": False, "parse_error": str(exc)}, ""
    return run_evaluator(runner, payload_for(ex, text, seed), ex)


# --------------------------------------------------------------------------- the verdict


def _checks(ex: Exercise, verdict: dict) -> tuple[list[CheckResult], list[str]]:
    checks, diagnoses = [], []
    for check in ex.checks:
        if check.kind == PARSE_KIND:
            checks.append(_parse_check(check, verdict))
        elif check.kind == EQUIVALENCE_KIND:
            c = _equivalence_check(check, ex, verdict)
            checks.append(c)
            diagnoses += [d for d in c.diagnoses if d not in diagnoses]
        else:
            raise SymbolicSpecError(
                f"{ex.id}: check kind {check.kind!r} is not a symbolic check "
                f"(use {PARSE_KIND!r} or {EQUIVALENCE_KIND!r})")
    return checks, diagnoses


def _parse_check(check: CheckSpec, v: dict) -> CheckResult:
    if "bounded" in v:
        return result(check, False, NOT_DECIDED.format(reason=v["bounded"]),
                      {"needs_review": True, "reason": v["bounded"]})
    if not v.get("ok"):
        reason = v.get("parse_error") or "unknown reason"
        return result(check, False, NOT_READ.format(reason=reason), {"error": reason})
    parsed = _short(v.get("parsed") or "")
    used = v.get("aliases_used") or {}
    message = (PARSED_WITH.format(parsed=parsed, aliases=_and([f"{k} = {m}" for k, m in used.items()]))
               if used else PARSED.format(parsed=parsed))
    details = {"syntax": v.get("syntax"), "parsed": v.get("parsed")}
    if used:
        details["aliases"] = dict(used)
    return result(check, True, message, details)


def _equivalence_check(check: CheckSpec, ex: Exercise, v: dict) -> CheckResult:
    name = ex.symbolic.get("name", "the reference")
    details = {"method": v.get("method"), "needs_review": False, "counterexample": v.get("counterexample"),
               "simplify": v.get("simplify"), "numeric": v.get("numeric"), "reason": v.get("reason")}
    if "bounded" in v:
        details.update(method="undetermined", needs_review=True, reason=v["bounded"])
        return result(check, False, UNDETERMINED.format(name=name, reason=v["bounded"]), details)
    if not v.get("ok"):
        details["method"] = None
        return result(check, False, NOT_CHECKED, details)
    method = v.get("method")
    if method == "simplify" and v.get("equivalent"):
        return result(check, True, EQUAL_EXACT.format(name=name, domain=_domain(ex)), details)
    if method == "numeric" and v.get("equivalent"):
        n = (v.get("numeric") or {}).get("agree", 0)
        return result(check, True, EQUAL_NUMERIC.format(name=name, n=n, ranges=_ranges(ex)), details)
    if method == "numeric" and v.get("equivalent") is False and v.get("counterexample"):
        cx = v["counterexample"]
        diags = _diagnoses(ex, v.get("evidence") or {})
        got, expected = _num(cx["student"]), _num(cx["expected"])
        if got == expected:  # close enough to print alike: show every digit
            got, expected = _num(cx["student"], 15), _num(cx["expected"], 15)
        message = DIFFERENT.format(name=name, point=_point(cx["point"]), got=got, expected=expected)
        return result(check, False, message, details, diagnoses=diags)
    details.update(method="undetermined", needs_review=True)
    reason = v.get("reason") or "neither simplification nor numeric evaluation decided"
    return result(check, False, UNDETERMINED.format(name=name, reason=reason), details)


def _diagnoses(ex: Exercise, evidence: dict) -> list[str]:
    """Mistake ids whose buggy reference the answer reproduces (dlgrade.graders.diagnose's rule).

    Each evidence string has one character per test point: 2·(the answer matches
    the buggy reference) + (the buggy reference differs from the truth).
    """
    found = []
    for diag_id in ex.mistake_fns():
        for codes in evidence.get(diag_id, []):
            pairs = [(c in "23", c in "13") for c in str(codes)]
            if diagnose.evidence_matches(pairs):
                found.append(diag_id)
                break
    return found


def _extra(text: str, v: dict) -> dict:
    method = v.get("method")
    needs_review = "bounded" in v or method == "undetermined"
    return {
        "student_text": text if len(text) <= SHOWN_TEXT_CHARS else text[:SHOWN_TEXT_CHARS] + "…",
        "student_latex": v.get("student_latex"), "student_mathml": v.get("student_mathml"),
        "reference_latex": v.get("reference_latex"), "reference_mathml": v.get("reference_mathml"),
        "method": "undetermined" if needs_review else method,
        "counterexample": v.get("counterexample") if not needs_review else None,
        "needs_review": needs_review,
    }


# --------------------------------------------------------------------------- wording


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _num(x, digits: int = 0) -> str:
    if not isinstance(x, (int, float)):
        return str(x)
    return f"{x:.{digits}g}" if digits else fmt_num(x)


def _point(point: dict) -> str:
    return ", ".join(f"{k} = {_num(v)}" for k, v in point.items())


def _domain(ex: Exercise) -> str:
    cfg = ex.symbolic
    discrete = cfg.get("discrete", {})
    cont = [v for v in cfg.get("variables", ["z", "y"]) if v not in discrete]
    parts = []
    if cont:
        parts.append("real " + _and(cont))
    for k, vals in discrete.items():
        parts.append(f"{k} in {{{', '.join(_num(x) for x in vals)}}}")
    return " and ".join(parts)


def _ranges(ex: Exercise) -> str:
    cfg = ex.symbolic
    discrete = cfg.get("discrete", {})
    cont = [v for v in cfg.get("variables", ["z", "y"]) if v not in discrete]
    from dlgrade.graders.symbolic import SAMPLE_RANGE

    top = _num(SAMPLE_RANGE)
    parts = [f"{v} from -{top} to {top}" for v in cont]
    parts += [f"{k} in {{{', '.join(_num(x) for x in vals)}}}" for k, vals in discrete.items()]
    return ", ".join(parts)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
