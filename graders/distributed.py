"""Grading a class on a Dask cluster: the client side of ``dlgrade grade --cluster``.

:class:`DaskExecutor` is the second implementation of the batch's executor
seam (dlgrade.graders.batch.Executor): grade_class does everything else as in
a local run (fingerprints, one atomic commit per student, resume, the
aggregate files), so ``grades.csv`` and ``results.json`` are byte-identical
to a local run of the same class.

* ``--cluster tcp://scheduler:8786`` (or ``tls://``) connects to a running
  scheduler whose workers were started with ``--preload dlgrade.cluster``;
  ``--cluster local:N`` starts a LocalCluster of N worker processes here.
* A task is one student, keyed by the submission's fingerprint, carrying the
  files as read here (bytes: no shared filesystem), submitted in a bounded
  window (WINDOW_PER_THREAD tasks per worker thread, at least MIN_WINDOW), so
  a class of 100,000 never sits in the scheduler's memory at once.
* The exercises (course folders included) are scattered to the workers once
  and checked by digest there; a worker whose dlgrade differs, whose sandbox
  cannot start or whose reference code differs refuses work (its reason is
  shown once) and its students go to the others.
* A worker that dies mid-task: the scheduler runs the task again elsewhere;
  the client commits each student once, when the first reply arrives.
* GPU exercises are submitted with ``resources={"GPU": 1}`` when a worker
  advertises that resource (``dask worker --resources GPU=1``); with none,
  they grade as on a machine without a GPU.
* Every reply is JSON text (dlgrade.graders.cluster_host): the client reads
  results with ``json.loads`` and builds its records itself.
"""
from __future__ import annotations

import json
import logging
import re
import uuid
from collections import deque
from concurrent.futures import CancelledError
from pathlib import Path
from typing import Iterator

from dlgrade.graders import batch
from dlgrade.graders.batch import BatchError, BatchPlan, ExecutorFailed, ExerciseFailed, Student
from dlgrade.graders.errors import GraderError
from dlgrade.graders.results import Report

MIN_WINDOW = 32
WINDOW_PER_THREAD = 8
CONNECT_TIMEOUT_S = 30.0
WORKERS_TIMEOUT_S = 60.0
GPU_RESOURCE = "GPU"
EVERY_EXERCISE = "every exercise"  # where a failure that is no one exercise's is said to be

NEEDS_DASK = 'grading on a cluster needs Dask: pip install "dlgrade[cluster]" ({error})'
BAD_CLUSTER = ("--cluster {spec!r}: expected a scheduler address (tcp://host:8786, tls://host:8786) "
               "or local:N (N worker processes on this machine)")
BAD_SECURITY = ("--cluster-security {spec!r}: expected CA_FILE:CERT_FILE:KEY_FILE (PEM files; "
                "the key may be inside the certificate file: CA_FILE:CERT_FILE)")
NO_SUCH_FILE = "--cluster-security: {path}: no such file"
UNREACHABLE = "cannot reach the Dask scheduler at {address} ({error})"
NO_WORKERS = ("the Dask scheduler at {address} has no workers (waited {seconds:g} s); start some with "
              "`dask worker {address} --preload dlgrade.cluster`")
NONE_CAN_GRADE = "no worker of the Dask cluster at {address} may grade: {reasons}"
SCHEDULER_LOST = "lost the Dask scheduler at {address} ({error})"
KILLED_WORKERS = ("grading {student} killed {count} Dask workers in a row (out of memory?); the scheduler "
                  "gave up on it")
REFUSED = "Dask worker {worker} refused work: {reason}"
NO_GPU_WORKER = (f"no Dask worker advertises a GPU (dask worker --resources {GPU_RESOURCE}=1): "
                 "GPU checks grade as on a machine without a GPU")

log = logging.getLogger("dlgrade.cluster")


def _dask():
    try:
        import distributed
    except ImportError as exc:
        raise BatchError(NEEDS_DASK.format(error=exc)) from None
    return distributed


def parse_cluster(spec: str) -> tuple[str, int | str]:
    """``("local", N)`` for ``local:N``, ``("address", ADDRESS)`` for a scheduler address.

    Raises BatchError (a usage error) for anything else."""
    spec = (spec or "").strip()
    m = re.fullmatch(r"local:(\d+)", spec)
    if m:
        if int(m.group(1)) < 1:
            raise BatchError(BAD_CLUSTER.format(spec=spec))
        return "local", int(m.group(1))
    if re.fullmatch(r"(tcp|tls|inproc|ucx|ws|wss)://[^\s/]+", spec):
        return "address", spec
    raise BatchError(BAD_CLUSTER.format(spec=spec))


def security_from(spec: str | None):
    """A ``distributed.Security`` requiring TLS from ``CA_FILE:CERT_FILE[:KEY_FILE]``, or None
    (then Dask's own configuration applies: ``distributed.comm.tls.*``). Raises BatchError."""
    if not spec:
        return None
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise BatchError(BAD_SECURITY.format(spec=spec))
    for p in parts:
        if not Path(p).is_file():
            raise BatchError(NO_SUCH_FILE.format(path=p))
    distributed = _dask()
    kwargs = {"tls_ca_file": parts[0], "tls_client_cert": parts[1]}
    if len(parts) == 3:
        kwargs["tls_client_key"] = parts[2]
    return distributed.Security(require_encryption=True, **kwargs)


def needs_gpu(exercises) -> bool:
    """Whether any of these exercises has GPU checks (or requires a GPU)."""
    from dlgrade.graders.spec import GPU_KINDS

    return any(ex.gpu.get("required") or any(c.kind in GPU_KINDS for c in ex.checks) for ex in exercises)


def _remote_error(kind: str, message: str) -> BaseException:
    """The failure a worker described, as the client's own exception (built here from its
    type's name and message: nothing a worker sent is unpickled)."""
    from dlgrade.graders.devices import GpuUnavailable
    from dlgrade.graders.sandbox import SandboxError
    from dlgrade.graders.spec import SpecError

    known = {"GpuUnavailable": GpuUnavailable, "SpecError": SpecError, "GraderError": GraderError,
             "SandboxError": SandboxError}
    cls = known.get(kind)
    return cls(message) if cls is not None else WorkerError(f"{kind}: {message}")


class WorkerError(GraderError):
    """A failure of dlgrade on a worker, as the worker described it."""


class DaskExecutor:
    """Grades a batch's students on a Dask cluster (see the module doc).

    ``cluster``: a scheduler address or ``local:N``; ``security``: a
    ``distributed.Security`` (None: Dask's configuration); ``window``: tasks in
    flight at most (default: WINDOW_PER_THREAD per worker thread, at least MIN_WINDOW).
    """

    def __init__(self, cluster: str, security=None, window: int | None = None,
                 workers_timeout_s: float = WORKERS_TIMEOUT_S, connect_timeout_s: float = CONNECT_TIMEOUT_S):
        self.kind, self.target = parse_cluster(cluster)
        self.connect_timeout_s = connect_timeout_s
        self.security = security
        self.window = window
        self.workers_timeout_s = workers_timeout_s
        self.warnings: list[str] = []
        self.refused: dict[str, str] = {}
        self._resources: dict | None = None  # what every task of the batch asks for (a GPU)
        self.client = None
        self._local = None
        self.address = str(self.target)

    # ------------------------------------------------------------------ connecting

    def connect(self):
        """Connect (starting the LocalCluster for ``local:N``) and wait for a worker.

        Raises BatchError without Dask, ExecutorFailed when the scheduler cannot be
        reached or has no worker."""
        if self.client is not None:
            return self.client
        distributed = _dask()
        try:
            if self.kind == "local":
                import dask

                # the workers' statistical profiler samples every thread every 10 ms: pure overhead here
                with dask.config.set({"distributed.worker.profile.enabled": False}):
                    self._local = distributed.LocalCluster(
                        n_workers=int(self.target), threads_per_worker=1, processes=True,
                        preload=["dlgrade.cluster"], dashboard_address=None, silence_logs=logging.ERROR,
                        security=self.security, protocol="tls://" if self.security is not None else None)
                self.address = self._local.scheduler_address
                self.client = distributed.Client(self._local, security=self.security, set_as_default=False)
            else:
                self.client = distributed.Client(self.address, security=self.security, timeout=self.connect_timeout_s,
                                                 set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            self.close()
            raise ExecutorFailed(UNREACHABLE.format(address=self.address, error=_line(exc))) from None
        try:
            self.client.wait_for_workers(1, timeout=self.workers_timeout_s)
        except (TimeoutError, OSError) as exc:
            self.close()
            raise ExecutorFailed(NO_WORKERS.format(address=self.address, seconds=self.workers_timeout_s)) from exc
        return self.client

    def _workers(self) -> dict[str, dict]:
        return dict(self.client.scheduler_info(n_workers=-1).get("workers", {}))

    def choose_isolation(self, require_sandbox: bool) -> tuple[str, list[str]]:
        """Always the sandbox: a cluster worker without one refuses work (see cluster_host)."""
        self.connect()
        return "sandbox", []

    @property
    def slots(self) -> int:
        if self.client is None:
            return 1
        return max(1, sum(int(w.get("nthreads", 1)) for w in self._workers().values()))

    # ------------------------------------------------------------------ grading

    def grade(self, plan: BatchPlan, students: list[Student]) -> Iterator[tuple[Student, Report, str]]:
        from dlgrade.cluster import grade_task
        from dlgrade.graders.cluster_host import identity
        from dlgrade.graders.shipping import pack_exercise, pack_student

        client = self.connect()
        if not students:
            return
        distributed = _dask()
        self.handshake(plan.isolation)
        digests = [batch.exercise_digest(ex) for ex in plan.exercises]
        bundles = client.scatter([pack_exercise(ex, d) for ex, d in zip(plan.exercises, digests)],
                                 broadcast=True, hash=True)
        common = {"client": identity(), "isolation": plan.isolation, "root": str(plan.root),
                  "warnings": list(plan.warnings), "direct_text": plan.direct_text, "exercises": digests}
        self._resources = None
        if needs_gpu(plan.exercises):
            if self._gpu_workers(self._allowed()):
                self._resources = {GPU_RESOURCE: 1}
            else:
                self.warnings.append(NO_GPU_WORKER)
        resources = self._resources
        window = self.window or max(MIN_WINDOW, WINDOW_PER_THREAD * self.slots)
        todo: deque[tuple[Student, int]] = deque((s, 0) for s in students)
        inflight: dict[str, tuple[object, Student, int]] = {}
        done = distributed.as_completed(loop=client.loop)

        def submit(student: Student, attempt: int) -> None:
            task = {**common, **pack_student(student, plan.root)}
            fp = plan.fingerprints.get(student.id) or uuid.uuid4().hex
            restrict = self._allowed() if self.refused else None
            fut = client.submit(grade_task, task, bundles, key=f"dlgrade-{fp}-{attempt}", pure=False,
                                resources=resources, workers=restrict, allow_other_workers=False, retries=0)
            inflight[fut.key] = (fut, student, attempt)
            done.add(fut)

        def top_up() -> None:
            while todo and len(inflight) < window:
                submit(*todo.popleft())

        try:
            top_up()
            for fut in done:
                _, student, attempt = inflight.pop(fut.key)
                reply = self._reply(fut, student)
                fut.release()
                if "graded" in reply:
                    yield student, batch.report_from_dict(reply["graded"]), str(reply.get("worker", ""))
                elif "refused" in reply:
                    self._refuse(str(reply.get("worker", "")), str(reply["refused"]))
                    todo.appendleft((student, attempt + 1))
                else:
                    failed = reply.get("failed") or {}
                    raise ExerciseFailed(str(failed.get("student") or student.id),
                                         str(failed.get("exercise") or EVERY_EXERCISE),
                                         _remote_error(str(failed.get("type", "")), str(failed.get("message", ""))))
                top_up()
        finally:
            left = [f for f, _, _ in inflight.values()]
            if left:  # the run stopped (Ctrl-C, a failure): nothing more is graded for it
                try:
                    client.cancel(left)
                except Exception:  # noqa: BLE001 - the scheduler may be gone already
                    pass

    def handshake(self, isolation: str) -> None:
        """Ask every worker now whether it may grade (its dlgrade, its sandbox): each refusal
        is said once, before any student is sent, and no task goes to a refusing worker.
        A worker that joins later is asked by its first task. Raises ExecutorFailed when
        none may grade."""
        from dlgrade.cluster import describe
        from dlgrade.graders.cluster_host import identity

        try:
            replies = self.client.run(describe, {"client": identity(), "isolation": isolation}, on_error="return")
        except Exception as exc:  # noqa: BLE001 - the tasks' own replies will say it
            log.warning("dlgrade: asking the workers failed (%s)", _line(exc))
            return
        for worker, text in sorted(replies.items()):
            try:
                reply = json.loads(text) if isinstance(text, str) else {}
            except ValueError:
                reply = {}
            if not isinstance(reply, dict) or "ok" not in reply and "refused" not in reply:
                why = _line(text) if isinstance(text, BaseException) else "not JSON"
                reply = {"refused": f"no answer from dlgrade's preload ({why})"}
            if "refused" in reply:
                self._refuse(worker, str(reply["refused"]))

    def _reply(self, fut, student: Student) -> dict:
        distributed = _dask()

        def failed(message: str) -> ExerciseFailed:
            return ExerciseFailed(student.id, EVERY_EXERCISE, WorkerError(message))

        try:
            text = fut.result()
        except distributed.KilledWorker as exc:
            import dask

            count = int(dask.config.get("distributed.scheduler.allowed-failures", 3)) + 1
            raise failed(KILLED_WORKERS.format(student=student.id, count=count)) from exc
        except Exception as exc:
            cancelled = isinstance(exc, (distributed.client.FutureCancelledError, CancelledError))
            if cancelled or self.client.status not in ("running", "connecting"):
                raise ExecutorFailed(SCHEDULER_LOST.format(address=self.address, error=_line(exc))) from None
            raise failed(f"the task failed on the cluster: {_line(exc)}") from exc
        if not isinstance(text, str):
            raise failed(f"a worker replied with a {type(text).__name__}, not dlgrade's JSON")
        try:
            reply = json.loads(text)
        except ValueError as exc:
            raise failed(f"a worker's reply is not JSON ({exc})") from None
        if not isinstance(reply, dict) or not ({"graded", "refused", "failed"} & set(reply)):
            raise failed("a worker's reply is not dlgrade's")
        return reply

    def _refuse(self, worker: str, reason: str) -> None:
        if worker not in self.refused:
            self.refused[worker] = reason
            self.warnings.append(REFUSED.format(worker=worker, reason=reason))
            log.warning(REFUSED.format(worker=worker, reason=reason))
        self._allowed()  # raises when no worker is left

    def _gpu_workers(self, among: list[str]) -> list[str]:
        workers = self._workers()
        return [w for w in among if float((workers.get(w, {}).get("resources") or {}).get(GPU_RESOURCE, 0)) > 0]

    def _allowed(self) -> list[str]:
        """The workers that may grade (GPU ones when the batch's tasks need a GPU); raises
        ExecutorFailed when there are none, rather than leave tasks no worker can take."""
        allowed = [w for w in self._workers() if w not in self.refused]
        if self._resources and allowed and not self._gpu_workers(allowed):
            allowed = []
        if not allowed:
            reasons = "; ".join(f"{w}: {why}" for w, why in sorted(self.refused.items())) or "no workers"
            what = "worker" if not self._resources else f"worker with a {GPU_RESOURCE} resource"
            raise ExecutorFailed(NONE_CAN_GRADE.format(address=self.address, reasons=reasons).replace(
                "no worker ", f"no {what} ", 1))
        return allowed

    def close(self) -> None:
        client, local, self.client, self._local = self.client, self._local, None, None
        for thing in (client, local):
            if thing is not None:
                try:
                    thing.close()
                except Exception:  # noqa: BLE001 - closing: the scheduler may be gone already
                    pass


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


__all__ = ["DaskExecutor", "parse_cluster", "security_from", "needs_gpu", "WorkerError"]
