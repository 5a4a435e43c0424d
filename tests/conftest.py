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


@pytest.fixture
def gpu_device(monkeypatch):
    """gpu_device("none" | "cpu" | "meta" | "auto"): the accelerator GPU checks see.

    Sets ``DLGRADE_GPU_DEVICE`` for one test: ``cpu``/``meta`` simulate a GPU
    so the GPU path's logic runs on a machine without one (graders/devices.py).
    """
    def _set(value: str) -> None:
        monkeypatch.setenv("DLGRADE_GPU_DEVICE", value)

    return _set


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need a CUDA device: skip them, saying so, where there is none."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    from graders.devices import cuda_device_count

    if cuda_device_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none here); run on a GPU machine: python -m pytest -m gpu")
    for item in gpu_items:
        item.add_marker(skip)
