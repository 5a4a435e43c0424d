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
def make_class(tmp_path):
    """make_class({"alice/hw.py": "softmax/correct_shift_max.py", "bob.py": ..., "carol/": None})
    copies fixture files into a fresh submissions folder (one entry per student) and returns it."""
    import shutil

    def _make(layout: dict, root: Path | None = None) -> Path:
        root = root or tmp_path / "submissions"
        root.mkdir(parents=True, exist_ok=True)
        for dest, src in layout.items():
            target = root / dest
            if dest.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(FIXTURES / src, target)
        return root

    return _make


def copy_exercise(exercise_id: str, dest: Path, time_limit: float, cpu_s: float | None = None) -> Path:
    """A copy of a built-in exercise under ``dest`` with a shorter time limit (an
    ``--exercises-dir`` folder overrides the built-in id). Returns ``dest``."""
    import re
    import shutil

    folder = dest / exercise_id
    shutil.copytree(ROOT / "exercises" / exercise_id, folder, ignore=shutil.ignore_patterns("__pycache__"))
    spec = folder / "spec.toml"
    text = spec.read_text()
    line = f"time_limit = {time_limit:g}"
    text = re.sub(r"(?m)^time_limit\s*=.*$", line, text) if re.search(r"(?m)^time_limit\s*=", text) \
        else f"{line}\n{text}"
    if cpu_s is not None:
        text += f"\n[limits]\ncpu_s = {cpu_s:g}\n"
    spec.write_text(text)
    return dest


@pytest.fixture
def short_limit_exercises(tmp_path):
    """An exercises folder holding stable-softmax with a 1 s wall-clock limit."""
    return copy_exercise("stable-softmax", tmp_path / "exercises", time_limit=1, cpu_s=5)
