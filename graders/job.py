"""The job's wire format, both ways: the plan the grader sends, the reply and journal
the worker writes, and what they mean (the outcome).

* :class:`Call` — one invocation of the student's entry a check asks for;
  :func:`build_plan` turns the planned calls into the job's JSON plan plus the
  ``.npy`` arrays shipped with it (``plan["_arrays"]``).
* :class:`CallResult` — one call's record of the journal, decoded here by
  :func:`collect_calls` (only plain arrays and JSON cross: dlgrade.graders.decoding).
* :func:`outcome_status` — whether the job as a whole failed (timeout, crash,
  syntax error, missing entry...) and the one line the student reads.

The worker's side of the same format is graders/sandboxed_worker.py, which imports
nothing of dlgrade; this module is the grader's side.
"""
from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dlgrade.graders.errors import GraderError
from dlgrade.graders.decoding import decode

if TYPE_CHECKING:  # pragma: no cover
    from dlgrade.graders.context import Context
    from dlgrade.graders.sandbox import JobOutcome
    from dlgrade.graders.spec import Exercise


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
    # the call's own arguments instead of the case's: arg specs of the plan ({"npy": name} naming
    # one of ``arrays``, {"json": v}, {"rng": seed}, {"prev": call id, "item": i}); kwargs stay the case's
    args: list | None = None
    keep: bool = False  # the worker keeps copies of the returned arrays for later calls' "prev" args
    global_seed: int | None = None  # numpy's global seed set just before the call
    report_global: bool = False  # the worker reports whether the call changed numpy's global state


@dataclass
class CallResult:
    status: str  # ok | exception | exit | memory | skipped | not-run | harness-error
    output: Any = None
    args_after: list = field(default_factory=list)
    backward: dict = field(default_factory=dict)
    error: dict = field(default_factory=dict)
    seconds: float = 0.0
    code: Any = None
    origin: dict | None = None  # calls off the CPU: where a returned tensor off the device was made
    global_changed: bool | None = None  # with Call.report_global: numpy's global state changed


# --------------------------------------------------------------------------- the plan


def build_plan(ctx: Context, submission_name: str, seed: int, ids=None) -> dict:
    """The job for the planned calls (only those in ``ids`` when given)."""
    calls_json = []
    arrays: dict[str, np.ndarray] = {}
    chosen = [c for c in ctx.planned.values() if ids is None or c.id in ids]
    for n, call in enumerate(chosen):
        case = ctx.cases[call.case]
        if call.args is not None:
            args_json = [dict(a) for a in call.args]
        else:
            args_json = [_arg_json(f"{call.case}_a{i}", arg, call, arrays, perturb=call.perturb.get(i))
                         for i, arg in enumerate(case.args)]
        kwargs_json = {k: _arg_json(f"{call.case}_k_{k}", a, call, arrays) for k, a in case.kwargs.items()}
        for name, arr in call.arrays.items():
            arrays[name] = arr
        cj = {"id": call.id, "n": n, "args": args_json, "kwargs": kwargs_json, "seed": case.seed % 2**31,
              "watch_args": call.watch, "backward": call.backward}
        if call.device != "cpu":
            cj["device"] = call.device
        if call.select:
            cj["select"] = list(call.select)
        if call.keep:
            cj["keep"] = True
        if call.global_seed is not None:
            cj["global_seed"] = int(call.global_seed) % 2**32
        if call.report_global:
            cj["report_global"] = True
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
    if arg.rng is not None:
        return {"rng": int(arg.rng)}
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
    from dlgrade.graders.sandboxed_worker import MAX_FILES

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
            if isinstance(rec.get("global_changed"), bool):
                res.global_changed = rec["global_changed"]
            bw = rec.get("backward")
            if isinstance(bw, dict):
                res.backward = {"status": bw.get("status"), "error": bw.get("error", {}),
                                "grads": [decode(g, outcome.job_dir) for g in bw.get("grads", [])]}
        if source is not None and hasattr(source, "map_error"):
            for err in (res.error, res.backward.get("error")):
                if isinstance(err, dict):
                    source.map_error(err)
        ctx.calls[cid] = res



def format_output(out: dict) -> str:
    """The student's captured output: head, a marker for what was cut, tail.

    Paths of the private job directory are shown as bare file names; control
    characters (terminal escape sequences) as visible escapes.
    """
    from dlgrade.graders.decoding import clean_text

    if not isinstance(out, dict) or not out:
        return ""
    head, tail = str(out.get("head", "")), str(out.get("tail", ""))
    try:
        dropped = int(out.get("dropped_bytes", 0))
    except (TypeError, ValueError):
        dropped = 0
    text = f"{head}\n… [{dropped:,} bytes of output cut] …\n{tail}" if dropped > 0 else head + tail
    return clean_text(text, limit=None)
