"""Shared fixtures: warm runners (sandboxed and basic) and a one-call grading helper."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from dlgrade.graders.runner import Runner
from dlgrade.graders.sandbox import sandbox_status

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
    from dlgrade.graders.api import grade_one
    from dlgrade.graders.spec import get_exercise
    from dlgrade.graders.submission import Submission

    def _grade(exercise_id: str, path, student: str | None = None, with_runner=None):
        path = Path(path)
        if not path.is_absolute():
            path = FIXTURES / path
        ex = get_exercise(exercise_id)
        sub = Submission(path, student=student or "student-1")
        return grade_one(ex, sub, with_runner or runner, direct_text=path.suffix in (".txt", ".tex"))

    return _grade


# --------------------------------------------------------------------------- CI outputs
# A copy of stable-softmax for the CI-format tests: a 2 s time limit (so a hang
# times out quickly) and one hidden check ("large and very negative logits").
CI_EXERCISE = "ci-softmax"
CI_SCENARIOS = {  # scenario -> submission
    "passing": FIXTURES / "softmax/correct_shift_max.py",
    "failing": FIXTURES / "softmax/softmax_naive_overflow.py",
    "raises": FIXTURES / "softmax/softmax_raises.py",
    "syntax-error": FIXTURES / "softmax/softmax_syntax_error.py",
    "import-error": FIXTURES / "ci/softmax_import_error.py",
    "notebook-error": FIXTURES / "ci/softmax_notebook_error.ipynb",
    "timeout": FIXTURES / "ci/softmax_infinite_loop.py",
    "missing": FIXTURES / "ci/no_softmax_here.py",
}


@pytest.fixture(scope="session")
def ci_exercises_dir(tmp_path_factory):
    """A course exercises folder holding ``ci-softmax`` (see CI_EXERCISE)."""
    src = ROOT / "exercises" / "stable-softmax"
    dest = tmp_path_factory.mktemp("ci-exercises") / CI_EXERCISE
    dest.mkdir()
    for name in ("statement.md", "starter.py"):
        (dest / name).write_bytes((src / name).read_bytes())
    spec = (src / "spec.toml").read_text()
    for old, new in [('id = "stable-softmax"', f'id = "{CI_EXERCISE}"'), ("time_limit = 10", "time_limit = 2"),
                     ('name = "large and very negative logits"\n',
                      'name = "large and very negative logits"\nhidden = true\n')]:
        assert old in spec, old
        spec = spec.replace(old, new)
    (dest / "spec.toml").write_text(spec)
    return dest.parent


@pytest.fixture(scope="session")
def ci_reports(runner, ci_exercises_dir):
    """scenario -> Report of CI_SCENARIOS' submissions graded on ``ci-softmax``."""
    from dlgrade.graders.api import check

    return {name: check(path, [CI_EXERCISE], [str(ci_exercises_dir)], runner=runner)
            for name, path in CI_SCENARIOS.items()}


@pytest.fixture(scope="session")
def load_report():
    """load_report(name) -> Report from tests/fixtures/html/<name>.json (a hand-built
    ``Report.to_dict()`` for exercises and check kinds this branch does not grade)."""
    import json

    from dlgrade.graders.results import ExerciseResult, Report

    def _load(name: str) -> Report:
        d = json.loads((FIXTURES / "html" / f"{name}.json").read_text(encoding="utf-8"))
        return Report(student=d["student"], results=tuple(ExerciseResult.from_dict(r) for r in d["results"]),
                      warnings=tuple(d.get("warnings", ())))

    return _load


@pytest.fixture
def grade_exercise(runner):
    """grade_exercise(exercise, fixture_path) -> ExerciseResult, for an Exercise built in a test
    (a variant of a shipped one with other cases or checks, say)."""
    from dlgrade.graders.api import grade_one
    from dlgrade.graders.submission import Submission

    def _grade(exercise, path, student: str = "student-1"):
        path = Path(path)
        if not path.is_absolute():
            path = FIXTURES / path
        return grade_one(exercise, Submission(path, student=student), runner)

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
    from dlgrade.graders.devices import cuda_device_count

    if cuda_device_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none here); run on a GPU machine: python -m pytest -m gpu")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(params=["sandbox", "basic"])
def any_runner(request):
    """Each warm runner in turn: the sandbox (where bwrap works) and basic isolation."""
    return request.getfixturevalue(f"{request.param}_runner")


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
