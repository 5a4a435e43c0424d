"""`dlgrade autograder`: the Gradescope zip, and its run_autograder run for real on a fake /autograder."""
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from dlgrade.graders.autograder import COURSE, build_autograder, scripts, write_fallback
from dlgrade.graders.cli import main

from conftest import CI_EXERCISE, FIXTURES, ROOT

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "gradescope_results.schema.json").read_text())


@pytest.fixture(scope="module")
def builtin_zip(tmp_path_factory):
    return build_autograder(tmp_path_factory.mktemp("zip") / "autograder.zip", ["stable-softmax"])


@pytest.fixture(scope="module")
def course_zip(tmp_path_factory, ci_exercises_dir):
    return build_autograder(tmp_path_factory.mktemp("zip") / "course.zip", [CI_EXERCISE], [str(ci_exercises_dir)])


WHEEL = "dlgrade-0.1.0-py3-none-any.whl"


def test_zip_holds_the_scripts_the_wheel_and_the_course_exercises(course_zip, ci_exercises_dir):
    with zipfile.ZipFile(course_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    for script in ("setup.sh", "run_autograder"):
        assert script in names and modes[script] & stat.S_IXUSR
    course = {f"{COURSE}/1-{ci_exercises_dir.name}/{CI_EXERCISE}/{n}" for n in ("spec.toml", "statement.md",
                                                                              "starter.py")}
    assert names == {"setup.sh", "run_autograder", WHEEL, *course}


def test_the_wheel_installs_offline_with_its_data_and_an_honest_record(tmp_path, builtin_zip):
    import base64
    import csv
    import hashlib
    import importlib.metadata

    from dlgrade.graders.spec import tomllib

    with zipfile.ZipFile(builtin_zip) as zf:
        zf.extract(WHEEL, tmp_path)
    with zipfile.ZipFile(tmp_path / WHEEL) as whl:
        names = set(whl.namelist())
        record = list(csv.reader(io.StringIO(whl.read("dlgrade-0.1.0.dist-info/RECORD").decode())))
        for name, digest, size in record:
            if name.endswith("RECORD"):
                assert (digest, size) == ("", "")
                continue
            data = whl.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data)), name
        assert {r[0] for r in record} == names
    assert {"dlgrade/__init__.py", "dlgrade/__main__.py", "dlgrade/graders/sandboxed_worker.py",
            "dlgrade/graders/checks/values.py", "dlgrade/graders/data/doctor_softmax.py", "dlgrade/reports/junit.py",
            "dlgrade/reference/softmax.py", "dlgrade/exercises/stable-softmax/spec.toml",
            "dlgrade/exercises/stable-softmax/statement.md", "dlgrade/exercises/stable-softmax/starter.py"} <= names
    assert all(n.startswith(("dlgrade/", "dlgrade-")) for n in names), names  # one top-level name
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(target), str(tmp_path / WHEEL)], check=True, capture_output=True, timeout=300)
    (dist,) = importlib.metadata.distributions(path=[str(target)])
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (dist.metadata["Name"], dist.version) == ("dlgrade", project["version"])
    assert dist.requires == project["dependencies"]
    assert dist.metadata["Requires-Python"] == project["requires-python"]
    (script,) = [e for e in dist.entry_points if e.group == "console_scripts"]
    assert (script.name, script.value) == ("dlgrade", "dlgrade.graders.cli:main")
    assert (target / "dlgrade" / "reports" / "templates").is_dir()
    assert (target / "dlgrade" / "exercises" / "two-layer-backprop").is_dir()


def test_the_wheel_is_the_same_bytes_every_time():
    from dlgrade.graders.wheelfile import build_wheel

    assert build_wheel() == build_wheel()


def test_scripts_are_valid_bash_and_install_cpu_torch_first():
    s = scripts(["stable-softmax", "my ex"], ["1-course"], torch_version="2.13.0", wheel=WHEEL)
    for text in s.values():
        subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    setup = s["setup.sh"]
    assert "DEFAULT_TORCH_INDEX=https://download.pytorch.org/whl/cpu\n" in setup
    assert 'TORCH_INDEX="${DLGRADE_TORCH_INDEX-$DEFAULT_TORCH_INDEX}"' in setup  # unset: default; empty: pip's
    torch_at = setup.index('"$VENV/bin/python" -m pip install -q torch==2.13.0 --index-url "$TORCH_INDEX"')
    assert torch_at < setup.index(f'"$VENV/bin/python" -m pip install -q "$SOURCE"/{WHEEL}')
    assert '-m dlgrade show \'my ex\' --exercises-dir "$SOURCE"/course-exercises/1-course >/dev/null' in setup
    assert 'if ! "$VENV/bin/dlgrade" doctor; then' in setup
    run = s["run_autograder"]
    assert ('"$PYTHON" -m dlgrade check "$ROOT/submission" --exercise stable-softmax --exercise \'my ex\' '
            '--exercises-dir "$SOURCE"/course-exercises/1-course \\\n    --gradescope "$RESULTS"') in run
    assert 'ROOT="${DLGRADE_AUTOGRADER_ROOT:-/autograder}"' in run
    mirror = scripts(["stable-softmax"], [], torch_index="")["setup.sh"]
    assert "DEFAULT_TORCH_INDEX=''\n" in mirror


def fake_autograder(tmp_path: Path, zip_path: Path, submission_files: dict) -> Path:
    """The layout Gradescope builds: source/ (the zip), run_autograder, submission/, results/."""
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    os.chmod(root / "run_autograder", 0o755)
    (root / "submission").mkdir()
    for name, src in submission_files.items():
        shutil.copy(src, root / "submission" / name)
    return root


def run_autograder(root: Path, expect: int = 0, **env_changes) -> tuple[dict, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items() if k not in ("DLGRADE_EXERCISES", "GITHUB_ACTIONS")}
    # setup.sh's venv is skipped: this machine's Python with this checkout stands in for it
    env.update(DLGRADE_AUTOGRADER_ROOT=str(root), DLGRADE_PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    env.update(env_changes)
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == expect, proc.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    return data, proc


@pytest.mark.slow
def test_run_autograder_grades_a_real_submission(tmp_path, builtin_zip):
    root = fake_autograder(tmp_path, builtin_zip, {"softmax.py": FIXTURES / "softmax/correct_logsumexp.py"})
    data, proc = run_autograder(root)
    assert data["score"] == 10
    assert [t["status"] for t in data["tests"]] == ["passed"] * 6
    assert data["tests"][0]["name"] == "stable-softmax: values on random logits"
    assert "Total: 10 / 10" in proc.stdout  # the terminal summary goes to Gradescope's stdout log


@pytest.mark.slow
def test_run_autograder_with_a_course_exercise_and_a_hidden_check(tmp_path, course_zip):
    root = fake_autograder(tmp_path, course_zip, {"hw1.py": FIXTURES / "softmax/softmax_naive_overflow.py",
                                                  "notes.txt": FIXTURES / "ci/no_softmax_here.py"})
    data, _ = run_autograder(root)
    assert data["score"] == 7
    hidden = next(t for t in data["tests"] if t["name"] == f"{CI_EXERCISE}: large and very negative logits")
    assert (hidden["visibility"], hidden["status"], hidden["output"]) == (
        "after_published", "failed", "hidden check failed\npoints: 0 / 2")


@pytest.mark.slow
def test_run_autograder_grades_an_unreadable_submission_as_zero(tmp_path, builtin_zip):
    # a malformed notebook, and a symbolic link an uploaded zip can carry: graded errors (CONTRACT §4)
    root = fake_autograder(tmp_path, builtin_zip, {"hw1.ipynb": FIXTURES / "ci/malformed.ipynb"})
    data, proc = run_autograder(root)
    (test,) = data["tests"]
    assert (data["score"], test["name"], test["status"]) == (0, "stable-softmax: the submission could be graded",
                                                             "failed")
    assert test["output"].startswith(f"{root / 'submission' / 'hw1.ipynb'}: malformed notebook (not valid JSON")
    (root / "submission" / "hw1.ipynb").unlink()
    (root / "submission" / "softmax.py").symlink_to(ROOT / "reference" / "softmax.py")
    data, proc = run_autograder(root)
    (test,) = data["tests"]
    assert (data["score"], test["status"]) == (0, "failed")
    assert test["output"] == f"{root / 'submission' / 'softmax.py'} is a symbolic link; submit the file itself"


def test_write_fallback_takes_the_last_error_line(tmp_path):
    errors = tmp_path / "err.txt"
    errors.write_text("Usage: dlgrade check ...\n\nError: hw1.ipynb: malformed notebook\n\n")
    write_fallback(tmp_path / "results" / "results.json", errors)
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["output"].splitlines()[0] == "dlgrade could not grade this submission: hw1.ipynb: malformed notebook"
    write_fallback(tmp_path / "r2.json", tmp_path / "missing.txt")
    assert "no reason was given" in json.loads((tmp_path / "r2.json").read_text())["output"]
    write_fallback(tmp_path / "r3.json", errors, grader=True)
    assert json.loads((tmp_path / "r3.json").read_text())["output"] == (
        "The autograder could not grade this submission because of a problem with the autograder itself, not "
        "with your submission: hw1.ipynb: malformed notebook\nYour instructor has to fix the autograder "
        "(`dlgrade doctor` in its image says why); then ask for a regrade.")


@pytest.mark.slow
def test_run_autograder_says_when_the_autograder_itself_is_broken(tmp_path, builtin_zip):
    from test_cli import BROKEN_BWRAP, BROKEN_LINES

    fake = tmp_path / "bwrap"
    fake.write_text(BROKEN_BWRAP["probe-fails"])
    fake.chmod(0o755)
    root = fake_autograder(tmp_path, builtin_zip, {"softmax.py": FIXTURES / "softmax/correct_logsumexp.py"})
    data, proc = run_autograder(root, expect=3, DLGRADE_BWRAP=str(fake))
    assert data == {"score": 0.0, "tests": [], "output": (
        "The autograder could not grade this submission because of a problem with the autograder itself, not "
        f"with your submission: dlgrade could not grade {root}/submission: {BROKEN_LINES['probe-fails']}\n"
        "Your instructor has to fix the autograder (`dlgrade doctor` in its image says why); then ask for a "
        "regrade.")}
    (root / "dlgrade-no-sandbox").touch()  # what setup.sh leaves where the image cannot run the sandbox
    data, proc = run_autograder(root, DLGRADE_BWRAP=str(fake))
    assert data["score"] == 10
    assert "isolation: basic" in proc.stdout
    data, proc = run_autograder(root, expect=3, DLGRADE_PYTHON=str(tmp_path / "no-such-python"))
    assert data["output"].startswith("The autograder could not grade this submission because of a problem with "
                                     "the autograder itself, not with your submission: dlgrade is not installed ")
    assert proc.stderr == (f"dlgrade is not installed in this autograder ({tmp_path}/no-such-python is missing): "
                           "setup.sh did not finish; rebuild the autograder\n")


def test_cli_builds_the_zip_and_refuses_unknown_exercises(tmp_path):
    out = tmp_path / "ag.zip"
    r = CliRunner().invoke(main, ["autograder", "--exercise", "stable-softmax", "--out", str(out),
                                  "--torch-version", "2.13.0"])
    assert r.exit_code == 0, r.output
    assert r.output == f"wrote {out}: upload it as the autograder of a Gradescope programming assignment\n"
    assert zipfile.is_zipfile(out)
    r = subprocess.run([sys.executable, "-m", "dlgrade", "autograder", "--exercise", "nope", "--out",
                        str(tmp_path / "x.zip")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "Error: unknown exercise 'nope'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.zip").exists()
