"""A ready Gradescope autograder: ``setup.sh``, ``run_autograder`` and dlgrade itself, in one zip.

Gradescope extracts the zip into ``/autograder/source``, runs ``setup.sh`` once
(as root, with network) when it builds the image, copies ``run_autograder`` to
``/autograder/run_autograder`` and runs it for every submission, with the
student's files in ``/autograder/submission``; it reads
``/autograder/results/results.json``.

The zip carries a source copy of this dlgrade (``dlgrade/``, installable with
pip) and the course's own exercise folders (``course-exercises/N-name/``), so
building the image needs no access to dlgrade's repository. ``setup.sh``
installs CPU-only PyTorch first (the default wheel pulls CUDA), then dlgrade,
into a virtual environment.

Every path in both scripts can be moved with an environment variable, which is
how the tests run ``run_autograder`` against a fake ``/autograder``:
``DLGRADE_AUTOGRADER_ROOT`` (default ``/autograder``), ``DLGRADE_AUTOGRADER_SOURCE``
(``$ROOT/source``), ``DLGRADE_VENV`` (``$ROOT/dlgrade-venv``) and
``DLGRADE_PYTHON`` (``$DLGRADE_VENV/bin/python``).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shlex
import stat
import sys
import zipfile
from pathlib import Path
from string import Template

from graders.spec import BUILTIN_DIR, exercise_dirs, get_exercise

DEFAULT_TORCH_VERSION = "2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
BUNDLE = "dlgrade"  # the source copy's folder inside the zip
COURSE = "course-exercises"
PACKAGES = ("graders", "reference", "reports", "exercises")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
SKIP_SUFFIXES = (".pyc", ".pyo")
FALLBACK_MESSAGE = ("dlgrade could not grade this submission: {reason}\n"
                    "Check that you uploaded the files the assignment asks for "
                    "(.py, .ipynb, .txt or .tex).")

SETUP_SH = Template("""\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# Written by `dlgrade autograder` for: $exercises
set -euo pipefail
ROOT="$${DLGRADE_AUTOGRADER_ROOT:-/autograder}"
SOURCE="$${DLGRADE_AUTOGRADER_SOURCE:-$$ROOT/source}"
VENV="$${DLGRADE_VENV:-$$ROOT/dlgrade-venv}"

export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip
  # the sandbox; where the container cannot create one, dlgrade says so and
  # runs submissions with resource limits only
  apt-get install -y -qq --no-install-recommends bubblewrap || true
fi

python3 -m venv "$$VENV"
"$$VENV/bin/python" -m pip install -q --upgrade pip
# CPU-only PyTorch first: dlgrade's own requirements would otherwise pull the CUDA build.
"$$VENV/bin/python" -m pip install -q $torch_requirement --index-url $torch_index
# dlgrade itself, from the copy this zip carries
"$$VENV/bin/python" -m pip install -q "$$SOURCE/$bundle"
# fail the build now, not at the first submission, if an exercise does not load
$show_exercises
""")

RUN_AUTOGRADER = Template("""\
#!/usr/bin/env bash
# Gradescope runs this for every submission; it writes results/results.json.
# Written by `dlgrade autograder` for: $exercises
set -uo pipefail
ROOT="$${DLGRADE_AUTOGRADER_ROOT:-/autograder}"
SOURCE="$${DLGRADE_AUTOGRADER_SOURCE:-$$ROOT/source}"
VENV="$${DLGRADE_VENV:-$$ROOT/dlgrade-venv}"
PYTHON="$${DLGRADE_PYTHON:-$$VENV/bin/python}"
RESULTS="$$ROOT/results/results.json"
ERRORS="$$ROOT/results/dlgrade-stderr.txt"

mkdir -p "$$ROOT/results"
rm -f "$$RESULTS"
cd "$$ROOT"
"$$PYTHON" -m graders check "$$ROOT/submission" $check_args \\
    --gradescope "$$RESULTS" 2>"$$ERRORS"
cat "$$ERRORS" >&2
if [ ! -s "$$RESULTS" ]; then
  # dlgrade refused the submission (exit code 2: an unreadable notebook, say):
  # Gradescope still gets a result that says why.
  "$$PYTHON" -m graders.autograder fallback "$$RESULTS" "$$ERRORS"
fi
exit 0
""")

BUNDLE_PYPROJECT = Template("""\
# dlgrade, as bundled into a Gradescope autograder by `dlgrade autograder`.
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "dlgrade"
version = $version
description = "dlgrade, bundled for a Gradescope autograder"
requires-python = ">=3.10"
dependencies = $dependencies

[project.scripts]
dlgrade = "graders.cli:main"

[tool.setuptools]
packages = $packages
include-package-data = false

[tool.setuptools.package-data]
$package_data
""")


class AutograderError(Exception):
    """The autograder zip cannot be built (an output path that cannot be written)."""


def _files_under(folder: Path):
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(SKIP_SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name


def _package_dir(name: str) -> Path:
    module = importlib.import_module(name)
    return Path(module.__file__).resolve().parent


def _project_metadata() -> tuple[str, list[str]]:
    """This dlgrade's version and requirements: from its pyproject.toml in a
    checkout, else from the installed distribution."""
    pyproject = _package_dir("graders").parent / "pyproject.toml"
    if pyproject.is_file():
        from graders.spec import tomllib

        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if project.get("name") == "dlgrade":
            return str(project.get("version", "0")), list(project.get("dependencies", []))
    try:
        requires = importlib.metadata.requires("dlgrade") or []
        version = importlib.metadata.version("dlgrade")
    except importlib.metadata.PackageNotFoundError:
        raise AutograderError("cannot tell which dlgrade this is (no pyproject.toml, not installed)") from None
    return version, [r for r in requires if "extra ==" not in r]


def _bundle_files() -> dict[str, Path]:
    """Archive name -> file, for the source copy of dlgrade's packages."""
    files = {}
    for name in PACKAGES:
        root = _package_dir(name)
        for path in _files_under(root):
            files[f"{BUNDLE}/{name}/{path.relative_to(root).as_posix()}"] = path
    return files


def _bundle_pyproject(files: dict[str, Path]) -> str:
    version, deps = _project_metadata()
    pkg_dirs = {str(Path(a).parent): str(Path(a).parent.relative_to(BUNDLE)).replace("/", ".")
                for a in files if a.endswith("/__init__.py")}
    data: dict[str, set[str]] = {}
    for a in files:
        owner = next((p for p in Path(a).parents if str(p) in pkg_dirs), None)
        if owner is None:
            continue
        rel = Path(a).relative_to(owner)
        if rel.parent == Path(".") and rel.suffix == ".py":
            continue  # a module of the package itself
        # data: statements, specs, templates, and the .py files of exercise folders
        data.setdefault(pkg_dirs[str(owner)], set()).add(
            "*" if rel.parent == Path(".") else f"{rel.parent.as_posix()}/*")
    package_data = "\n".join(f"{json.dumps(pkg)} = {json.dumps(sorted(p))}" for pkg, p in sorted(data.items()))
    return BUNDLE_PYPROJECT.substitute(version=json.dumps(version), dependencies=json.dumps(deps),
                                       packages=json.dumps(sorted(pkg_dirs.values())),
                                       package_data=package_data)


def _course_dirs(exercises_dirs) -> list[Path]:
    """The exercise folders to ship: every one in use except dlgrade's built-ins."""
    found = []
    for d in exercise_dirs(tuple(exercises_dirs)):
        d = Path(d).resolve()
        if d != BUILTIN_DIR.resolve() and d not in found:
            found.append(d)
    return found


def scripts(exercise_ids, course_names, torch_version: str = DEFAULT_TORCH_VERSION) -> dict[str, str]:
    """``setup.sh`` and ``run_autograder`` for these exercises and course folders."""
    q = shlex.quote
    exercise_args = " ".join(f"--exercise {q(e)}" for e in exercise_ids)
    dir_args = " ".join(f'--exercises-dir "$SOURCE"/{q(f"{COURSE}/{n}")}' for n in course_names)
    show = "\n".join(f'"$VENV/bin/python" -m graders show {q(e)} {dir_args}'.rstrip() + " >/dev/null"
                     for e in exercise_ids)
    common = dict(exercises=", ".join(exercise_ids), bundle=BUNDLE)
    return {
        "setup.sh": SETUP_SH.substitute(common, torch_requirement=q(f"torch=={torch_version}"),
                                        torch_index=q(TORCH_CPU_INDEX), show_exercises=show),
        "run_autograder": RUN_AUTOGRADER.substitute(
            common, check_args=f"{exercise_args} {dir_args}".strip()),
    }


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
    zf.writestr(info, data)


def build_autograder(out, exercise_ids, exercises_dirs=(), torch_version: str = DEFAULT_TORCH_VERSION) -> Path:
    """Write the autograder zip for ``exercise_ids`` to ``out``; returns its path.

    Raises UnknownExercise / SpecError for an exercise that does not load, and
    AutograderError when no exercise is named or ``out`` cannot be written.
    """
    if not exercise_ids:
        raise AutograderError("name at least one exercise with --exercise")
    for e in exercise_ids:
        get_exercise(e, exercises_dirs)
    course = _course_dirs(exercises_dirs)
    names = [f"{i}-{d.name}" for i, d in enumerate(course, start=1)]
    files = _bundle_files()
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w") as zf:
            for name, text in scripts(exercise_ids, names, torch_version).items():
                _add(zf, name, text.encode("utf-8"), executable=True)
            _add(zf, f"{BUNDLE}/pyproject.toml", _bundle_pyproject(files).encode("utf-8"))
            for arc, path in sorted(files.items()):
                _add(zf, arc, path.read_bytes())
            for name, d in zip(names, course):
                for path in _files_under(d):
                    _add(zf, f"{COURSE}/{name}/{path.relative_to(d).as_posix()}", path.read_bytes())
    except OSError as exc:
        raise AutograderError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    return out


def write_fallback(results: Path, errors: Path) -> None:
    """A results.json worth 0 that says why dlgrade refused the submission."""
    try:
        lines = [ln.strip() for ln in errors.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        lines = []
    reason = next((ln for ln in reversed(lines) if ln), "no reason was given")
    reason = reason.removeprefix("Error: ")
    data = {"score": 0.0, "output": FALLBACK_MESSAGE.format(reason=reason), "tests": []}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "fallback":
        write_fallback(Path(argv[1]), Path(argv[2]))
        return 0
    print("usage: python -m graders.autograder fallback RESULTS_JSON STDERR_FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover - run by run_autograder
    sys.exit(_main(sys.argv[1:]))
