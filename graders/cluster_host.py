"""dlgrade on a Dask worker: the trusted grader side of ``dlgrade grade --cluster``.

``dask worker tcp://scheduler:8786 --preload dlgrade.cluster`` installs a
WorkerPlugin (dlgrade/cluster.py) that keeps one :class:`ClusterHost` for the
worker's life: the same warm sandboxed pool as a local run (one Runner per
worker thread, each starting its zygotes on first use, from the thread that
uses them, and closed with the worker), the exercises the client shipped
(unpacked once, checked by digest), and the checks that make a worker refuse
work rather than fill a batch with errors:

* a worker whose dlgrade differs from the client's (version or code);
* a worker whose sandbox cannot start (bubblewrap missing, disabled or broken
  there): student code never runs on a cluster machine without it, so it never
  reaches the cluster's network;
* an exercise whose reference code differs on this machine.

Every reply is JSON text (``graded``, ``refused`` or ``failed``): the client
reads it with ``json.loads`` and unpickles nothing a worker made.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from dlgrade.graders import batch
from dlgrade.graders.runner import Runner
from dlgrade.graders.sandbox import SandboxError, failure_line, sandbox_probe
from dlgrade.graders.shipping import ShippingError, unpack_exercise, unpack_student

PLUGIN_NAME = "dlgrade"
VERSION_REFUSED = ("this worker runs dlgrade {worker} and the client dlgrade {client}; install the "
                   "client's dlgrade on every worker (pip install \"dlgrade[cluster]=={client}\") and restart it")
CODE_REFUSED = ("this worker runs dlgrade {version} built from other source files than the client's "
                "(code {worker} here, {client} on the client); install the same dlgrade on every worker "
                "and restart it")
NO_SANDBOX = ("this worker cannot grade in a sandbox ({why}); student code never runs on a cluster "
              "machine without one: fix the sandbox there (dlgrade doctor) and restart the worker")
ISOLATION_REFUSED = "the client asked for isolation {isolation!r}; a cluster worker grades in the sandbox only"

log = logging.getLogger("dlgrade.cluster")


def identity() -> dict:
    """What a worker and the client must share to grade alike: dlgrade's version and code digest."""
    return {"dlgrade": batch.dlgrade_version(), "code": batch.code_digest()}


class ClusterHost:
    """dlgrade's pool on one Dask worker (see the module doc)."""

    def __init__(self, address: str = "", local_directory: str | Path | None = None):
        self.address = address
        self.me = identity()
        state, why = sandbox_probe()
        self.refusal = None if state == "ok" else NO_SANDBOX.format(why=why)
        if self.refusal:
            log.warning("dlgrade: %s refuses work: %s", address or "this worker", self.refusal)
        base = Path(local_directory) if local_directory else Path.cwd()
        self.cache = base / "dlgrade-exercises"
        self._lock = threading.Lock()
        self._exercises: dict[str, object] = {}  # digest -> Exercise
        self._runners: dict[int, Runner] = {}  # worker thread -> its warm pool
        self._closed = False

    # ------------------------------------------------------------------ replies

    def _reply(self, **fields) -> str:
        return json.dumps({**fields, "worker": self.address}, ensure_ascii=False)

    def refused(self, message: str) -> str:
        return self._reply(refused=message)

    def check(self, task: dict) -> str | None:
        """Why this worker refuses ``task``, or None."""
        client = task.get("client") or {}
        if client.get("dlgrade") != self.me["dlgrade"]:
            return VERSION_REFUSED.format(worker=self.me["dlgrade"], client=client.get("dlgrade"))
        if client.get("code") != self.me["code"]:
            return CODE_REFUSED.format(version=self.me["dlgrade"], worker=self.me["code"][:12],
                                       client=str(client.get("code"))[:12])
        if self.refusal:
            return self.refusal
        if task.get("isolation") != "sandbox":
            return ISOLATION_REFUSED.format(isolation=task.get("isolation"))
        return None

    # ------------------------------------------------------------------ grading

    def exercises(self, bundles: list[dict], wanted: list[str]) -> list:
        """The exercises with digests ``wanted``, unpacked from ``bundles`` the first time."""
        with self._lock:
            for b in bundles:
                if b["digest"] in wanted and b["digest"] not in self._exercises:
                    self._exercises[b["digest"]] = unpack_exercise(b, self.cache)
            missing = [d for d in wanted if d not in self._exercises]
            if missing:
                raise ShippingError(f"exercise {missing[0][:12]} was not shipped with the task")
            return [self._exercises[d] for d in wanted]

    def runner(self) -> Runner:
        """This thread's Runner: zygotes are started by, and stay with, the thread that uses them."""
        tid = threading.get_ident()
        with self._lock:
            r = self._runners.get(tid)
            if r is None:
                r = self._runners[tid] = Runner(isolation="sandbox")
            return r

    def grade(self, task: dict, bundles: list[dict]) -> str:
        """Grade one task (a student); always a JSON reply, never an exception."""
        try:
            why = self.check(task)
            if why:
                return self.refused(why)
            try:
                exercises = self.exercises(bundles, list(task["exercises"]))
            except ShippingError as exc:
                return self.refused(str(exc))
            student, submission = unpack_student(task)
            report = batch.grade_student(student, self.runner(), exercises, Path(task["root"]),
                                         tuple(task.get("warnings", ())), bool(task.get("direct_text")),
                                         submission=submission)
            return self._reply(graded=report.to_dict())
        except batch.ExerciseFailed as exc:
            if _sandbox_failed(exc.error):  # this machine's sandbox: the student goes elsewhere
                self.refusal = NO_SANDBOX.format(why=failure_line(exc.error))
                log.warning("dlgrade: %s refuses work from now on: %s", self.address, self.refusal)
                return self.refused(self.refusal)
            return self._reply(failed={"student": exc.student, "exercise": exc.exercise,
                                       "type": type(exc.error).__name__, "message": failure_line(exc.error)})
        except Exception as exc:  # a bug of dlgrade's: said in the reply, never pickled
            return self._reply(failed={"student": str(task.get("student", "")), "exercise": "",
                                       "type": type(exc).__name__, "message": failure_line(exc)})

    def close(self) -> None:
        with self._lock:
            runners, self._runners = list(self._runners.values()), {}
            self._closed = True
        for r in runners:
            try:
                r.close()
            except Exception:  # noqa: BLE001 - closing the worker: every runner gets its turn
                log.exception("dlgrade: closing a grading pool failed")


def _sandbox_failed(exc: BaseException) -> bool:
    """The sandbox itself failed (not a GPU a spec requires, which is the batch's problem)."""
    from dlgrade.graders.devices import GpuUnavailable

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, GpuUnavailable):
            return False
        if isinstance(cause, SandboxError) and cause.sandbox:
            return True
        cause = cause.__cause__
    return False


__all__ = ["ClusterHost", "identity", "PLUGIN_NAME", "VERSION_REFUSED", "CODE_REFUSED", "NO_SANDBOX"]
