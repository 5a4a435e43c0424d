"""A pool of grading threads, each owning its own warm workers.

Batch grading is mostly waiting: on the sandboxed child that runs a student's
code, and on the zygote's reply. So the pool is a handful of threads, each
with its own :class:`~dlgrade.graders.runner.Runner` (one warm zygote per set of
preloaded modules: numpy; numpy+torch; ...). A :class:`~dlgrade.graders.sandbox.Worker`
is not thread-safe, and here none is shared: a thread only ever talks to its
own zygotes, and every task still runs in a fresh forked child of one of them,
with its own limits and scratch directory.
"""
from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Iterable, Iterator, TypeVar

from dlgrade.graders.runner import Runner
from dlgrade.graders.errors import GraderError

T = TypeVar("T")
R = TypeVar("R")

_THREAD_DONE = object()
# how long close() waits for a thread stuck in a job it was told to abandon
JOIN_TIMEOUT_S = 5.0


class PoolStopped(GraderError):
    """The pool was closed while a task still wanted to run a job."""


class _PoolRunner(Runner):
    """A thread's Runner that refuses new jobs once the pool is stopping."""

    def __init__(self, isolation: str, stop: threading.Event):
        super().__init__(isolation=isolation)
        self._stop = stop
        self.busy = False  # inside a task (close() only kills zygotes of busy threads)

    def run(self, *args, **kwargs):
        if self._stop.is_set():
            raise PoolStopped("the batch was stopped before this job ran")
        return super().run(*args, **kwargs)


class GradingPool:
    """``jobs`` threads grading tasks with ``fn(task, runner)``.

    A thread starts a zygote the first time one of its tasks needs that set of
    modules (so a set few students need is not started in every thread). Use
    as a context manager, or call :meth:`close`: it stops handing out tasks,
    makes the threads' runners refuse new jobs (PoolStopped), kills zygotes
    still busy with a task the caller walked away from (after Ctrl-C, say) and
    joins the threads.
    """

    def __init__(self, jobs: int, isolation: str):
        self.jobs = max(1, int(jobs))
        self.isolation = isolation
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._runners: list[_PoolRunner] = []
        self._threads: list[threading.Thread] = []

    def imap_unordered(self, fn: Callable[[T, Runner], R], tasks: Iterable[T]) -> Iterator[tuple[T, R]]:
        """Yield ``(task, fn(task, runner))`` as each task finishes, in no set order.

        An exception raised by ``fn`` is re-raised here, in the caller's thread
        (``fn`` is expected to turn every failure it can foresee into a result).
        """
        todo: queue.Queue = queue.Queue()
        count = 0
        for task in tasks:
            todo.put(task)
            count += 1
        done: queue.Queue = queue.Queue()
        n = min(self.jobs, count)
        for i in range(n):
            t = threading.Thread(target=self._loop, args=(fn, todo, done), daemon=True,
                                 name=f"dlgrade-grader-{i}")
            self._threads.append(t)
            t.start()
        finished = 0
        while finished < n:
            try:  # a timeout keeps the caller's thread responsive to Ctrl-C
                item = done.get(timeout=0.25)
            except queue.Empty:
                continue
            if item is _THREAD_DONE:
                finished += 1
                continue
            task, result, error = item
            if error is not None:
                raise error
            yield task, result

    def _loop(self, fn, todo: queue.Queue, done: queue.Queue) -> None:
        runner = _PoolRunner(self.isolation, self._stop)
        with self._lock:
            self._runners.append(runner)
        try:
            while not self._stop.is_set():
                try:
                    task = todo.get_nowait()
                except queue.Empty:
                    break
                runner.busy = True
                try:
                    done.put((task, fn(task, runner), None))
                except BaseException as exc:  # handed to the caller's thread, re-raised there
                    done.put((task, None, exc))
                finally:
                    runner.busy = False
        finally:
            runner.close()
            done.put(_THREAD_DONE)

    def close(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while any(t.is_alive() for t in self._threads) and time.monotonic() < deadline:
            # A busy thread holds a job the caller walked away from: kill its
            # zygote so the job ends now. One that was still starting is caught
            # on a later pass; its runner refuses the thread's next job.
            with self._lock:
                busy = [r for r in self._runners if r.busy]
            for runner in busy:
                for worker in list(runner.workers.values()):
                    try:
                        if worker.alive():
                            worker.kill()
                    except (AttributeError, OSError):  # the owning thread killed it meanwhile
                        pass
            for t in self._threads:
                t.join(0.05)
        self._threads.clear()

    def __enter__(self) -> "GradingPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
