"""Grading one exercise of one submission: plan, run once, decide in-process.

1. Every check kind plans the calls it needs (:class:`Call`): which case, which
   output to keep, whether to watch the arguments or run backward.
2. All calls run in one job in a fresh child of a warm worker (sandboxed).
3. Back in the grader, each check evaluates the decoded outputs against the
   reference computed here, and returns a :class:`CheckResult`.
4. Buggy references are compared the same way to name the mistake.

Failures of the student (syntax error, exception, timeout, crash) become a
result with a status; failures of dlgrade raise :class:`GraderError`.
"""
from __future__ import annotations

import importlib
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlgrade.graders import diagnose
from dlgrade.graders.inputs import Case, make_cases
from dlgrade.graders.outputs import Leaf, Opaque, decode
from dlgrade.graders.results import CheckResult, ExerciseResult
from dlgrade.graders.sandbox import JobOutcome, SandboxError
from dlgrade.graders.spec import CheckSpec, Exercise
from dlgrade.graders.threads import one_torch_thread


class GraderError(Exception):
    """dlgrade itself failed while grading (never the student's fault)."""


@dataclass
class Call:
    """One invocation of the student's entry, as a check asks for it."""

    id: str
    case: str
    select: tuple = ()
    backward: bool = False
    watch: bool = False
    device: str = "cpu"
    dtype: str | None = None  # cast every float tensor argument (torch), e.g. "float16"
    perturb: dict[int, dict] = field(default_factory=dict)  # arg index -> {"add"/"add_at": ...}
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # extra files to ship
    compare: bool = False  # a values call: buggy references are matched against it
    accelerator: bool = False  # a GPU check's call: runs in a job of its own (see run_accelerator_job)


@dataclass
class CallResult:
    status: str  # ok | exception | exit | memory | not-run | harness-error
    output: Any = None
    args_after: list = field(default_factory=list)
    backward: dict = field(default_factory=dict)
    error: dict = field(default_factory=dict)
    seconds: float = 0.0
    code: Any = None
    origin: dict | None = None  # calls off the CPU: where a returned tensor off the device was made


class Context:
    """What a check sees: the exercise, the seeded cases, the calls' results,
    and lazily computed reference and buggy-reference outputs."""

    def __init__(self, exercise: Exercise, student: str, cases: dict[str, Case]):
        self.exercise = exercise
        self.student = student
        self.cases = cases
        self.calls: dict[str, CallResult] = {}
        self.planned: dict[str, Call] = {}
        self._ref_cache: dict[str, Any] = {}
        self._mistake_cache: dict[tuple[str, str], Any] = {}
        self.extra: dict[str, Any] = {}

    # -- reference side (trusted, in this process)
    def reference(self, case: str) -> Any:
        if case not in self._ref_cache:
            self._ref_cache[case] = self._call_trusted(self.exercise.reference_fn(), case)
        return self._ref_cache[case]

    def mistake_variants(self, diag_id: str) -> list:
        """The buggy references for one diagnosis id (a spec may give several)."""
        fns = self.exercise.mistake_fns()[diag_id]
        return list(fns) if isinstance(fns, (list, tuple)) else [fns]

    def mistake(self, diag_id: str, case: str, variant: int = 0) -> Any:
        key = (diag_id, case, variant)
        if key not in self._mistake_cache:
            fn = self.mistake_variants(diag_id)[variant]
            try:
                self._mistake_cache[key] = self._call_trusted(fn, case)
            except Exception:  # a buggy reference may legitimately fail on some inputs
                self._mistake_cache[key] = None
        return self._mistake_cache[key]

    def _call_trusted(self, fn, case_name: str, device: str = "cpu", dtype: str | None = None):
        case = self.cases[case_name]
        args, kwargs = case.arrays()
        if self.exercise.framework == "torch":
            args = [to_torch(a, spec, device, dtype) for a, spec in zip(args, case.args)]
            kwargs = {k: to_torch(v, case.kwargs[k], device, dtype) for k, v in kwargs.items()}
        with np.errstate(all="ignore"), one_torch_thread():
            out = fn(*args, **kwargs)
            return to_plain(out)

    def call(self, call_id: str) -> CallResult:
        return self.calls.get(call_id, CallResult(status="not-run"))


def to_torch(value, arg, device="cpu", dtype=None):
    if not getattr(arg, "torch", False) or not isinstance(value, np.ndarray):
        return value
    import torch

    t = torch.from_numpy(np.ascontiguousarray(value))
    if dtype and t.is_floating_point():
        t = t.to(getattr(torch, dtype))
    t = t.to(device)
    if arg.requires_grad:
        t.requires_grad_(True)
    return t


def to_plain(out):
    """Reference outputs as plain numpy (tensors detached), mirroring :func:`decode`."""
    if isinstance(out, (tuple, list)):
        return tuple(to_plain(o) for o in out)
    if isinstance(out, dict):
        return {k: to_plain(v) for k, v in out.items()}
    if hasattr(out, "detach"):
        return out.detach().cpu().double().numpy() if out.is_floating_point() else out.detach().cpu().numpy()
    if isinstance(out, (np.ndarray, np.generic, float, int)):
        return np.asarray(out)
    return out


def leaf_array(value) -> np.ndarray | None:
    """The array behind a decoded student value, or None if it is not numeric."""
    if isinstance(value, Leaf):
        return value.array
    return None


def select(tree, path: tuple):
    for key in path:
        if isinstance(tree, dict) and key in tree:
            tree = tree[key]
        elif isinstance(tree, (tuple, list)) and isinstance(key, int) and -len(tree) <= key < len(tree):
            tree = tree[key]
        else:
            return None
    return tree


def check_module(kind: str):
    """The module implementing a check kind (imported lazily: torch only when needed)."""
    try:
        return importlib.import_module(f"dlgrade.graders.checks.{kind.replace('-', '_')}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("dlgrade.graders.checks"):
            raise GraderError(f"unknown check kind {kind!r}") from None
        raise


# --------------------------------------------------------------------------- the plan


def build_plan(ctx: Context, submission_name: str, seed: int, ids=None) -> dict:
    """The job for the planned calls (only those in ``ids`` when given)."""
    calls_json = []
    arrays: dict[str, np.ndarray] = {}
    chosen = [c for c in ctx.planned.values() if ids is None or c.id in ids]
    for n, call in enumerate(chosen):
        case = ctx.cases[call.case]
        args_json = []
        for i, arg in enumerate(case.args):
            args_json.append(_arg_json(f"{call.case}_a{i}", arg, call, arrays, perturb=call.perturb.get(i)))
        kwargs_json = {k: _arg_json(f"{call.case}_k_{k}", a, call, arrays) for k, a in case.kwargs.items()}
        for name, arr in call.arrays.items():
            arrays[name] = arr
        cj = {"id": call.id, "n": n, "args": args_json, "kwargs": kwargs_json, "seed": case.seed % 2**31,
              "watch_args": call.watch, "backward": call.backward}
        if call.device != "cpu":
            cj["device"] = call.device
        if call.select:
            cj["select"] = list(call.select)
        calls_json.append(cj)
    plan = {
        "submission": submission_name, "entry": ctx.exercise.entry,
        "framework": ctx.exercise.framework, "seed": seed % 2**31,
        "calls": calls_json, "_arrays": arrays,
    }
    if ctx.exercise.rules.forbid_imports:  # the worker's import guard reports; the grader decides
        plan["forbid_imports"] = list(ctx.exercise.rules.forbid_imports)
    return plan


def _arg_json(stem: str, arg, call: Call, arrays: dict, perturb: dict | None = None) -> dict:
    if not arg.is_array:
        return {"json": _jsonable(arg.value)}
    name = f"{_safe(stem)}.npy"
    arrays[name] = arg.value
    spec: dict[str, Any] = {"npy": name}
    if perturb:
        spec.update(perturb)
    if arg.torch:
        spec["as"] = "torch"
        spec["device"] = call.device
        if arg.requires_grad:
            spec["requires_grad"] = True
        if call.dtype and arg.value.dtype.kind == "f":
            spec["dtype"] = call.dtype
    return spec


def _safe(stem: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in stem)[:60]


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


# --------------------------------------------------------------------------- outcome


SIGNAL_NAMES = {signal.SIGSEGV: "segmentation fault", signal.SIGBUS: "bus error",
                signal.SIGFPE: "floating-point exception", signal.SIGILL: "illegal instruction",
                signal.SIGABRT: "abort", signal.SIGKILL: "killed", signal.SIGTERM: "terminated"}


def signal_text(sig) -> str:
    """``SIGSEGV (segmentation fault)`` for a signal number."""
    try:
        name = signal.Signals(int(sig)).name
    except (TypeError, ValueError):
        return f"signal {sig}"
    desc = SIGNAL_NAMES.get(sig)
    return f"{name} ({desc})" if desc else name


def error_text(err: dict, source=None) -> str:
    """``ValueError: msg (line 5)`` — or ``(cell 2, line 1)`` for a notebook source."""
    msg = f"{err.get('type', 'Error')}: {err.get('message', '')}".strip().rstrip(":")
    if err.get("line"):
        where = (f"cell {err['cell']}, line {err['cell_line']}" if err.get("cell") and err.get("cell_line")
                 else _line_at(err["line"], source, err.get("line_file")))
        msg += f" ({where})"
    return msg


def _line_at(line, source, line_file=None) -> str:
    """``line 3``, or ``cell 2, line 1`` in a notebook."""
    loc = source.location(line, line_file) if source is not None and hasattr(source, "location") else ""
    return loc or f"line {line}"


def _exit_call(code) -> str:
    return "sys.exit()" if code is None else f"sys.exit({code!r})"


def outcome_status(ex: Exercise, outcome: JobOutcome, source=None) -> tuple[str, str, dict] | None:
    """If the job as a whole failed, ``(status, message, error)``; else None.

    ``status`` is ``timeout``/``error``/``missing``; ``message`` one line for the
    student; ``error["kind"]`` names the failure for programs: ``timeout``,
    ``cpu-limit``, ``memory``, ``disk-limit``, ``crash`` (with ``signal``),
    ``worker-died``, ``worker-hung``, ``exit``, ``syntax-error``,
    ``import-error``, ``exception``, ``missing``, ``not-callable``, ``tampering``.
    ``source`` (a SubmissionSource) turns lines into notebook cells.
    """
    from dlgrade.graders.worker import MAX_FILES

    reply = outcome.reply
    journal = outcome.journal
    load = next((r for r in journal if r.get("step") == "load"), None)
    entry = next((r for r in journal if r.get("step") == "entry"), None)
    calls_done = [r.get("id") for r in journal if r.get("step") == "call"]
    planned_ids = list(reply.get("_planned") or [])
    loaded = bool(load and load.get("status") == "ok")
    if loaded and entry and entry.get("status") == "ok":
        nxt = _next_call(planned_ids, calls_done[-1] if calls_done else None)
        if nxt:
            case = (reply.get("_cases") or {}).get(nxt, nxt)
            where = f" while running {ex.entry} on case {case!r}"
        else:
            where = f" after running {ex.entry}" if calls_done else f" while running {ex.entry}"
    elif loaded:
        where = f" while looking for {ex.entry}"
    else:
        where = " while loading"
    lim = ex.limits.capped()
    status = reply.get("status")
    if status == "timeout":
        return "timeout", f"the submission exceeded the {lim.wall_s:g} s time limit{where}", {
            "kind": "timeout", "limit_s": lim.wall_s}
    if status == "worker-hung":
        return "timeout", f"the grading process stopped responding{where} and was killed", {"kind": "worker-hung"}
    if status == "worker-died":
        return "error", (f"the grading process was killed{where} "
                         "(did the submission kill its parent process?)"), {"kind": "worker-died"}
    if status == "disk-limit":
        return "error", (f"the submission wrote more than its scratch directory may hold "
                         f"({lim.disk_mb} MB, {MAX_FILES} files){where}"), {"kind": "disk-limit"}
    if status == "signaled":
        sig = reply.get("signal")
        cpu = reply.get("cpu_s") or 0.0
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= lim.cpu_s):
            return "timeout", f"the submission exceeded the {lim.cpu_s:g} s CPU time limit{where}", {
                "kind": "cpu-limit", "limit_s": lim.cpu_s}
        if sig == signal.SIGKILL and reply.get("oom_kills"):
            return "error", (f"the submission was killed for using too much memory{where} "
                             f"(the limit is {lim.memory_mb} MB)"), {"kind": "memory", "signal": sig}
        return "error", f"the submission crashed with {signal_text(sig)}{where}", {
            "kind": "crash", "signal": sig, "signal_name": signal_text(sig).split(" ")[0]}
    if any(r.get("status") == "harness-error" for r in journal):
        # dlgrade's own failures are reported apart (the worker raises them);
        # this one was written after the student's code had started
        return "error", f"the submission interfered with the grading harness{where}", {"kind": "tampering"}
    code = reply.get("code")
    if load is None:
        return "error", f"the submission ended the process (exit code {code}) while loading", {
            "kind": "exit", "code": code}
    ls = load.get("status")
    if ls != "ok":
        err = load.get("error", {})
        if ls == "syntax-error":
            line, line_file = err.get("line"), err.get("line_file")
            return "error", (f"SyntaxError on {_line_at(line, source, line_file)}: "
                             f"{err.get('message', 'invalid syntax')}"), {
                "kind": "syntax-error", "line": line, "text": err.get("text", ""), "offset": err.get("offset"),
                "line_file": line_file}
        if ls == "exit":
            return "error", f"the submission called {_exit_call(load.get('code'))} while loading", {
                "kind": "exit", "code": load.get("code")}
        if ls == "memory":
            return "error", f"the submission ran out of memory while loading (the limit is {lim.memory_mb} MB)", {
                **err, "kind": "memory"}
        if ls == "import-error":
            return "error", f"an import failed while loading the submission: {error_text(err, source)}", {
                **err, "kind": "import-error"}
        return "error", f"loading the submission raised {error_text(err, source)}", {**err, "kind": "exception"}
    if entry is None:
        return "error", f"the submission ended the process (exit code {code}) before {ex.entry} was found", {
            "kind": "exit", "code": code}
    es = entry.get("status")
    if es == "missing":
        return "missing", f"no {ex.entry!r} found in the submission", {"kind": "missing", "names": entry.get("names", [])}
    if es == "not-callable":
        return "error", f"{ex.entry} is not a function (it is of type {entry.get('type')})", {"kind": "not-callable"}
    if es == "exception":
        err = entry.get("error", {})
        return "error", f"reading {ex.entry} raised {error_text(err, source)}", {**err, "kind": "exception"}
    if len(set(calls_done)) < len(planned_ids):
        return "error", f"the submission ended the process (exit code {code}){where}", {"kind": "exit", "code": code}
    return None


def _next_call(planned: list, last: str | None):
    if not planned:
        return None
    if last is None:
        return planned[0]
    try:
        i = planned.index(last)
    except ValueError:
        return None
    return planned[i + 1] if i + 1 < len(planned) else None


def collect_calls(ctx: Context, outcome: JobOutcome, source=None) -> None:
    """The journal's call records as ``ctx.calls``; ``source`` (a SubmissionSource) adds
    the notebook cell and line to their errors."""
    for rec in outcome.journal:
        if rec.get("step") != "call":
            continue
        cid = str(rec.get("id"))
        if cid not in ctx.planned:
            continue
        res = CallResult(status=str(rec.get("status", "harness-error")), error=rec.get("error") or {},
                         seconds=float(rec.get("seconds", 0.0) or 0.0), code=rec.get("code"))
        if res.status == "harness-error":
            raise GraderError(f"the worker could not build inputs for call {cid}: {res.error}")
        if res.status == "ok":
            res.output = decode(rec.get("output"), outcome.job_dir)
            res.origin = rec.get("output_origin") if isinstance(rec.get("output_origin"), dict) else None
            res.args_after = [decode(a, outcome.job_dir) for a in rec.get("args_after", [])]
            bw = rec.get("backward")
            if isinstance(bw, dict):
                res.backward = {"status": bw.get("status"), "error": bw.get("error", {}),
                                "grads": [decode(g, outcome.job_dir) for g in bw.get("grads", [])]}
        if source is not None and hasattr(source, "map_error"):
            for err in (res.error, res.backward.get("error")):
                if isinstance(err, dict):
                    source.map_error(err)
        ctx.calls[cid] = res


# --------------------------------------------------------------------------- mistakes


def match_mistakes(ctx: Context, calls=None) -> list[str]:
    """Diagnosis ids whose buggy reference the submission reproduces (evidence rule),
    judged on the value calls in ``calls`` (ids; default: all of them)."""
    found = []
    value_calls = [c for c in ctx.planned.values() if c.compare and (calls is None or c.id in calls)]
    for diag_id in ctx.exercise.mistake_fns():
        for variant in range(len(ctx.mistake_variants(diag_id))):
            if diagnose.evidence_matches(_evidence(ctx, value_calls, diag_id, variant)):
                found.append(diag_id)
                break
    return found


def hidden_only(ctx: Context, checks, diags: list[str], shown_calls: set[str]) -> tuple[str, ...]:
    """Of ``diags``, those no visible check reported and whose evidence lies only in
    hidden checks' inputs: the student's view leaves them out."""
    if not any(c.hidden for c in checks):
        return ()
    on_visible = {d for c in checks if not c.hidden for d in c.diagnoses}
    candidates = [d for d in diags if d not in on_visible]
    if not candidates:
        return ()
    shown = set(match_mistakes(ctx, shown_calls))
    return tuple(d for d in candidates if d not in shown)


def _evidence(ctx: Context, value_calls, diag_id: str, variant: int) -> list[tuple[bool, bool]]:
    """(student matches the buggy reference, buggy differs from the truth) per call."""
    pairs = []
    for call in value_calls:
        res = ctx.call(call.id)
        g = leaf_array(select(res.output, call.select)) if res.status == "ok" else None
        if g is None:
            continue
        ref = select(ctx.reference(call.case), call.select)
        bug = select(ctx.mistake(diag_id, call.case, variant), call.select)
        if bug is None or ref is None:
            continue
        try:
            bug_a, ref_a = np.asarray(bug, dtype=float), np.asarray(ref, dtype=float)
        except (TypeError, ValueError):
            continue
        rtol, atol = _tol_for(ctx, g)
        differs = not _close(bug_a, ref_a, rtol * 10, atol * 10)
        matches = _close(g, bug_a, rtol, atol)
        if not matches and _nonfinite_where_finite(g, ref_a):
            continue  # another mistake (overflow, ...) made this output nan: no evidence either way
        pairs.append((matches, differs))
    return pairs


def _nonfinite_where_finite(got: np.ndarray, ref: np.ndarray) -> bool:
    try:
        with np.errstate(invalid="ignore"):
            return got.shape == ref.shape and bool((~np.isfinite(got.astype(float)) & np.isfinite(ref)).any())
    except (TypeError, ValueError):
        return False


def _tol_for(ctx: Context, g: np.ndarray) -> tuple[float, float]:
    from dlgrade.graders.compare import tolerance_for

    return tolerance_for(g.dtype.name)


def _close(a, b, rtol, atol) -> bool:
    from dlgrade.graders.compare import allclose

    return allclose(a, b, rtol, atol)


# --------------------------------------------------------------------------- grading


def grade(ex: Exercise, source: "SubmissionSource", student: str, runner) -> ExerciseResult:
    """Grade one exercise. ``source`` holds the files to ship (see dlgrade.graders.submission)."""
    t0 = time.perf_counter()
    if ex.framework == "symbolic":
        from dlgrade.graders.symbolic_grade import grade_symbolic

        return grade_symbolic(ex, source, student, runner)
    if ex.gpu.get("required"):  # no GPU here: a clear error before anything runs, never a zero
        from dlgrade.graders.devices import require_gpu

        require_gpu(ex)
    sites = []
    if ex.rules.forbid_imports:  # a forbidden import the source shows: decided before anything runs
        from dlgrade.graders import rules

        sites = rules.import_sites(source.files, source.main_name, ex.entry, ex.rules)
        broken = rules.violations(sites, files=source.files)
        if broken:
            return rules.rules_result(ex, source, broken, dict(
                student=student, exercise=ex.id, title=ex.title, max_score=ex.max_score,
                submission=source.display_name, duration_s=time.perf_counter() - t0))
    case_names = sorted({n for c in ex.checks for n in c.cases})
    ctx = Context(ex, student, make_cases(ex, student, case_names))
    modules = {c.kind: check_module(c.kind) for c in ex.checks}
    shown_calls: set[str] = set()  # calls a visible check asked for: evidence a student may see
    for check in ex.checks:
        for call in modules[check.kind].plan(check, ctx):
            ctx.planned.setdefault(call.id, call)
            if not check.hidden:
                shown_calls.add(call.id)
    seed = ctx.cases[case_names[0]].seed if case_names else 0
    planned_ids = [cid for cid, c in ctx.planned.items() if not c.accelerator]
    plan = build_plan(ctx, source.main_name, seed, planned_ids)
    try:
        outcome = runner.run(ex, plan, source.files)
    except SandboxError as exc:
        raise GraderError(str(exc)) from exc
    outcome.reply["_planned"] = planned_ids
    outcome.reply["_cases"] = {cid: call.case for cid, call in ctx.planned.items()}
    try:
        base = dict(student=student, exercise=ex.id, title=ex.title, max_score=ex.max_score,
                    output=format_output(outcome.reply.get("output", {})), isolation=outcome.isolation,
                    submission=source.display_name)
        if ex.rules.forbid_imports:  # what the worker saw imported
            from dlgrade.graders import rules

            broken = rules.violations(sites, outcome.journal, source.files)
            if broken:
                return rules.rules_result(ex, source, broken, {**base, "duration_s": time.perf_counter() - t0})
        failed = outcome_status(ex, outcome, source)
        if failed:
            status, message, error = failed
            error = {**error, "file": source.display_name}
            source.map_error(error)
            return ExerciseResult(status=status, message=message, error=error,
                                  duration_s=time.perf_counter() - t0, **base)
        collect_calls(ctx, outcome, source)
        accelerated = [cid for cid, c in ctx.planned.items() if c.accelerator]
        if accelerated:
            run_accelerator_job(ctx, source, seed, accelerated, runner)
        checks = [modules[c.kind].evaluate(c, ctx) for c in ex.checks]
        diags = []
        for c in checks:
            diags += [d for d in c.diagnoses if d not in diags]
        for d in match_mistakes(ctx):
            if d not in diags:
                diags.append(d)
        return ExerciseResult(status="graded", checks=tuple(checks), diagnoses=tuple(diags),
                              hidden_diagnoses=hidden_only(ctx, checks, diags, shown_calls),
                              duration_s=time.perf_counter() - t0, extra=ctx.extra, **base)
    finally:
        outcome.cleanup()


def run_accelerator_job(ctx: Context, source, seed: int, ids: list[str], runner) -> None:
    """Run GPU checks' calls in a job of their own, on a worker that sees the GPU.

    The main job never sees a GPU (see dlgrade.graders.sandbox), so every other check
    scores the same on any machine. If this job fails as a whole (a crash or a
    hang on the GPU), only the calls it had not finished are missing, and
    ``ctx.extra["gpu_job"]`` says why: the GPU checks fail, nothing else changes.
    """
    from dataclasses import replace

    from dlgrade.graders.sandbox import gpu_limits

    ex = ctx.exercise
    cuda = any(ctx.planned[i].device.startswith("cuda") for i in ids)
    plan = build_plan(ctx, source.main_name, seed, ids)
    try:
        outcome = runner.run(ex, plan, source.files, gpu=True) if cuda else runner.run(ex, plan, source.files)
    except SandboxError as exc:
        raise GraderError(str(exc)) from exc
    outcome.reply["_planned"] = list(ids)
    try:
        failed = outcome_status(replace(ex, limits=gpu_limits(ex.limits)) if cuda else ex, outcome)
        if failed:
            status, message, error = failed
            ctx.extra["gpu_job"] = {"status": status, "message": message, "error": error}
        collect_calls(ctx, outcome, source)  # what finished before a failure still counts
    finally:
        outcome.cleanup()



def format_output(out: dict) -> str:
    """The student's captured output: head, a marker for what was cut, tail.

    Paths of the private job directory are shown as bare file names; control
    characters (terminal escape sequences) as visible escapes.
    """
    from dlgrade.graders.outputs import clean_text

    if not isinstance(out, dict) or not out:
        return ""
    head, tail = str(out.get("head", "")), str(out.get("tail", ""))
    try:
        dropped = int(out.get("dropped_bytes", 0))
    except (TypeError, ValueError):
        dropped = 0
    text = f"{head}\n… [{dropped:,} bytes of output cut] …\n{tail}" if dropped > 0 else head + tail
    return clean_text(text, limit=None)
