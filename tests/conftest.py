"""Shared fixtures: warm runners (sandboxed and basic) and a one-call grading helper."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from graders.runner import Runner
from graders.sandbox import sandbox_status

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="session")
def runner():
    """The isolation a user of this machine gets (the sandbox where bwrap works)."""
    r = Runner()
    yield r
    r.close()


@pytest.fixture(scope="session")
def basic_runner():
    r = Runner(isolation="basic")
    yield r
    r.close()


@pytest.fixture(scope="session")
def sandbox_runner():
    ok, why = sandbox_status()
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the sandbox: {why}")
        pytest.skip(why)
    r = Runner(isolation="sandbox")
    yield r
    r.close()


@pytest.fixture
def grade(runner):
    """grade(exercise_id, fixture_path_or_file) -> ExerciseResult."""
    from graders.api import grade_one
    from graders.spec import get_exercise
    from graders.submission import Submission

    def _grade(exercise_id: str, path, student: str | None = None, with_runner=None):
        path = Path(path)
        if not path.is_absolute():
            path = FIXTURES / path
        ex = get_exercise(exercise_id)
        sub = Submission(path, student=student or "student-1")
        return grade_one(ex, sub, with_runner or runner, direct_text=path.suffix in (".txt", ".tex"))

    return _grade


@pytest.fixture(params=["sandbox", "basic"])
def any_runner(request):
    """Each warm runner in turn: the sandbox (where bwrap works) and basic isolation."""
    return request.getfixturevalue(f"{request.param}_runner")
