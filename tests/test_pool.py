"""graders/pool.py: threads that each own their warm workers."""
from __future__ import annotations

import threading

import pytest

from dlgrade.graders.pool import GradingPool

from conftest import FIXTURES


def test_every_task_is_graded_once_and_each_thread_keeps_its_own_runner():
    seen = []

    def fn(task, runner):
        seen.append((threading.get_ident(), id(runner)))
        return task * 2

    with GradingPool(3, "basic") as pool:
        got = sorted(pool.imap_unordered(fn, range(20)))
    assert got == [(i, 2 * i) for i in range(20)]
    runners_of = {}
    for thread, runner in seen:
        runners_of.setdefault(thread, set()).add(runner)
    assert all(len(r) == 1 for r in runners_of.values())
    assert len({r for rs in runners_of.values() for r in rs}) == len(runners_of) <= 3


def test_an_exception_in_a_task_is_raised_in_the_caller():
    def fn(task, runner):
        if task == 3:
            raise ValueError("task 3 broke")
        return task

    with GradingPool(2, "basic") as pool:
        with pytest.raises(ValueError, match="task 3 broke"):
            list(pool.imap_unordered(fn, range(6)))


def test_close_kills_a_job_the_caller_walked_away_from(basic_runner):
    from dlgrade.graders.api import grade_one
    from dlgrade.graders.spec import get_exercise
    from dlgrade.graders.submission import Submission

    ex = get_exercise("stable-softmax")  # 10 s time limit

    def fn(task, runner):
        return grade_one(ex, Submission(FIXTURES / task, student=task), runner).status

    pool = GradingPool(2, "basic")
    results = pool.imap_unordered(fn, ["batch/infinite_loop.py", "softmax/correct_loops.py"])
    assert next(results) == ("softmax/correct_loops.py", "graded")
    busy = [t for t in pool._threads if t.is_alive()]
    assert busy, "the hanging task should still be running"
    pool.close()  # as after Ctrl-C: the hanging job's zygote is killed, its thread ends
    assert not any(t.is_alive() for t in busy)
    assert not any(w.alive() for r in pool._runners for w in r.workers.values())


def test_a_stopped_pool_refuses_new_jobs():
    from dlgrade.graders.pool import PoolStopped

    pool = GradingPool(1, "basic")
    seen = []

    def fn(task, runner):
        pool._stop.set()  # as if close() was called (Ctrl-C) during the first task
        with pytest.raises(PoolStopped):
            runner.run(None, {}, {})
        seen.append(task)
        return task

    assert list(pool.imap_unordered(fn, [0, 1, 2])) == [(0, 0)]
    assert seen == [0]  # the other tasks were never started
    pool.close()
