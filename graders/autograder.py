"""A ready Gradescope autograder: ``setup.sh``, ``run_autograder`` and dlgrade itself, in one zip.

Gradescope extracts the zip into ``/autograder/source``, runs ``setup.sh`` once
(as root, with network) when it builds the image, copies ``run_autograder`` to
``/autograder/run_autograder`` and runs it for every submission, with the
student's files in ``/autograder/submission``; it reads
``/autograder/results/results.json``.

The zip carries this dlgrade as a wheel (``dlgrade-<version>-py3-none-any.whl``,
written by :mod:`dlgrade.graders.wheelfile`) and the course's own exercise folders
(``course-exercises/N-name/``), so building the image needs no access to
dlgrade's repository. ``setup.sh`` creates its own virtual environment,
installs CPU-only PyTorch into it first (the default wheel pulls CUDA) from
``DLGRADE_TORCH_INDEX`` (default: the index given to ``dlgrade autograder
--torch-index``, PyTorch's CPU index unless told otherwise; set but empty:
pip's own configuration, for a course behind a mirror), then the wheel; then
it runs ``dlgrade doctor``. Where the image cannot run the sandbox, it says so
in the build log and leaves a ``dlgrade-no-sandbox`` marker: submissions are
then graded with resource limits only (``DLGRADE_NO_SANDBOX=1``); where
dlgrade cannot grade at all, the build fails.

``run_autograder`` grades with that environment. A submission dlgrade refuses
(exit code 2) gets a results.json that tells the student why; a failure of
dlgrade itself (exit code 3, or no results at all) gets one that says the
autograder, not the submission, is at fault, and run_autograder exits 3.

Every path in both scripts can be moved with an environment variable, which is
how the tests run them against a fake ``/autograder``:
``DLGRADE_AUTOGRADER_ROOT`` (default ``/autograder``), ``DLGRADE_AUTOGRADER_SOURCE``
(``$ROOT/source``), ``DLGRADE_VENV`` (``$ROOT/dlgrade-venv``) and
``DLGRADE_PYTHON`` (``$DLGRADE_VENV/bin/python``).
"""
from __future__ import annotations

import json
import shlex
import stat
import sys
import zipfile
from pathlib import Path
from string import Template

from dlgrade.graders.spec import BUILTIN_DIR, exercise_dirs, get_exercise
from dlgrade.graders.wheelfile import WheelError, build_wheel, files_under
from dlgrade.graders.errors import UserError

DEFAULT_TORCH_VERSION = "2.13.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
COURSE = "course-exercises"
NO_SANDBOX_MARKER = "dlgrade-no-sandbox"
FALLBACK_MESSAGE = ("dlgrade could not grade this submission: {reason}\n"
                    "Check that you uploaded the files the assignment asks for "
                    "(.py, .ipynb, .txt or .tex).")
GRADER_FAILURE_MESSAGE = ("The autograder could not grade this submission because of a problem with the "
                          "autograder itself, not with your submission: {reason}\n"
                          "Your instructor has to fix the autograder (`dlgrade doctor` in its image says why); "
                          "then ask for a regrade.")
NOT_INSTALLED = ("dlgrade is not installed in this autograder ({python} is missing): "
                 "setup.sh did not finish; rebuild the autograder")

SETUP_SH = Template("""\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# Written by `dlgrade autograder` for: $exercises
set -euo pipefail
ROOT="$${DLGRADE_AUTOGRADER_ROOT:-/autograder}"
SOURCE="$${DLGRADE_AUTOGRADER_SOURCE:-$$ROOT/source}"
VENV="$${DLGRADE_VENV:-$$ROOT/dlgrade-venv}"
# where pip gets CPU-only PyTorch; set but empty: from pip's own configuration (a mirror)
DEFAULT_TORCH_INDEX=$torch_index
TORCH_INDEX="$${DLGRADE_TORCH_INDEX-$$DEFAULT_TORCH_INDEX}"

# what the image lacks: Python's venv module, and bubblewrap for the sandbox
export DEBIAN_FRONTEND=noninteractive
need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv python3-pip)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
if [ $${#need[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$${need[@]}" \\
    || apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip
fi

python3 -m venv "$$VENV"
# CPU-only PyTorch first: dlgrade's own requirements would otherwise pull the CUDA build.
if [ -n "$$TORCH_INDEX" ]; then
  "$$VENV/bin/python" -m pip install -q $torch_requirement --index-url "$$TORCH_INDEX"
else
  "$$VENV/bin/python" -m pip install -q $torch_requirement
fi
# dlgrade itself: the wheel this zip carries
"$$VENV/bin/python" -m pip install -q "$$SOURCE"/$wheel

# fail the build now, not at the first submission, if an exercise does not load
$show_exercises
# can this image grade, and in the sandbox? (dlgrade doctor says what it does and why)
rm -f "$$ROOT/$marker"
if ! "$$VENV/bin/dlgrade" doctor; then
  if DLGRADE_NO_SANDBOX=1 "$$VENV/bin/dlgrade" doctor >/dev/null; then
    touch "$$ROOT/$marker"
    echo "dlgrade: the sandbox cannot run in this image (see above): submissions will be graded" \\
      "with resource limits only (isolation: basic)" >&2
  else
    echo "dlgrade cannot grade in this image (see above)" >&2
    exit 1
  fi
fi
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
if [ -f "$$ROOT/$marker" ]; then
  export DLGRADE_NO_SANDBOX=1  # setup.sh found that this image cannot run the sandbox
fi
if [ ! -x "$$PYTHON" ]; then
  echo $not_installed >&2
  printf '%s\\n' $not_installed_json >"$$RESULTS"
  exit 3
fi
"$$PYTHON" -m dlgrade check "$$ROOT/submission" $check_args \\
    --gradescope "$$RESULTS" 2>"$$ERRORS"
status=$$?
cat "$$ERRORS" >&2
if [ "$$status" -eq 2 ]; then
  # dlgrade refused the submission (an unreadable notebook, say): the student learns why
  "$$PYTHON" -m dlgrade.graders.autograder fallback "$$RESULTS" "$$ERRORS"
elif [ "$$status" -ge 2 ] || [ ! -s "$$RESULTS" ]; then
  # dlgrade itself could not grade (exit code 3, or it died): say the autograder is at fault
  rm -f "$$RESULTS"
  "$$PYTHON" -m dlgrade.graders.autograder fallback --grader "$$RESULTS" "$$ERRORS" \\
    || printf '%s\\n' $crashed_json >"$$RESULTS"
  exit 3
fi
exit 0
""")


class AutograderError(UserError):
    """The autograder zip cannot be built (an output path that cannot be written)."""


def _course_dirs(exercises_dirs) -> list[Path]:
    """The exercise folders to ship: every one in use except dlgrade's built-ins."""
    found = []
    for d in exercise_dirs(tuple(exercises_dirs)):
        d = Path(d).resolve()
        if d != BUILTIN_DIR.resolve() and d not in found:
            found.append(d)
    return found


def _results_json(message: str) -> str:
    return json.dumps({"score": 0.0, "output": message, "tests": []})


def scripts(exercise_ids, course_names, torch_version: str = DEFAULT_TORCH_VERSION,
            wheel: str = "dlgrade-0.1.0-py3-none-any.whl", torch_index: str = TORCH_CPU_INDEX) -> dict[str, str]:
    """``setup.sh`` and ``run_autograder`` for these exercises, course folders and wheel."""
    q = shlex.quote
    exercise_args = " ".join(f"--exercise {q(e)}" for e in exercise_ids)
    dir_args = " ".join(f'--exercises-dir "$SOURCE"/{q(f"{COURSE}/{n}")}' for n in course_names)
    show = "\n".join(f'"$VENV/bin/python" -m dlgrade show {q(e)} {dir_args}'.rstrip() + " >/dev/null"
                     for e in exercise_ids)
    not_installed = NOT_INSTALLED.format(python="$PYTHON")
    common = dict(exercises=", ".join(exercise_ids), marker=NO_SANDBOX_MARKER)
    return {
        "setup.sh": SETUP_SH.substitute(common, torch_requirement=q(f"torch=={torch_version}"),
                                        torch_index=q(torch_index),
                                        wheel=q(wheel), show_exercises=show),
        "run_autograder": RUN_AUTOGRADER.substitute(
            common, check_args=f"{exercise_args} {dir_args}".strip(),
            not_installed=f'"{not_installed}"',
            not_installed_json=q(_results_json(GRADER_FAILURE_MESSAGE.format(
                reason=NOT_INSTALLED.format(python="the autograder's Python")))),
            crashed_json=q(_results_json(GRADER_FAILURE_MESSAGE.format(
                reason="dlgrade stopped without a result")))),
    }


def _add(zf: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
    zf.writestr(info, data)


def build_autograder(out, exercise_ids, exercises_dirs=(), torch_version: str = DEFAULT_TORCH_VERSION,
                     torch_index: str = TORCH_CPU_INDEX) -> Path:
    """Write the autograder zip for ``exercise_ids`` to ``out``; returns its path.

    ``torch_index``: where setup.sh gets PyTorch unless ``DLGRADE_TORCH_INDEX``
    says otherwise ("" for pip's own configuration). Raises UnknownExercise /
    SpecError for an exercise that does not load, and AutograderError when no
    exercise is named, dlgrade's version is unknown or ``out`` cannot be written.
    """
    if not exercise_ids:
        raise AutograderError("name at least one exercise with --exercise")
    from dlgrade.graders.spec_probe import verified

    for e in exercise_ids:  # a spec that does not fit its reference is refused before anything is built
        verified(get_exercise(e, exercises_dirs))
    course = _course_dirs(exercises_dirs)
    names = [f"{i}-{d.name}" for i, d in enumerate(course, start=1)]
    try:
        wheel, wheel_bytes = build_wheel()
    except WheelError as exc:
        raise AutograderError(str(exc)) from None
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w") as zf:
            for name, text in scripts(exercise_ids, names, torch_version, wheel, torch_index).items():
                _add(zf, name, text.encode("utf-8"), executable=True)
            _add(zf, wheel, wheel_bytes)
            for name, d in zip(names, course):
                for path in files_under(d):
                    _add(zf, f"{COURSE}/{name}/{path.relative_to(d).as_posix()}", path.read_bytes())
    except OSError as exc:
        raise AutograderError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    return out


def write_fallback(results: Path, errors: Path, grader: bool = False) -> None:
    """A results.json worth 0 that says why there is no grade: dlgrade refused the
    submission (the student's to fix), or (``grader``) dlgrade itself failed."""
    try:
        lines = [ln.strip() for ln in errors.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        lines = []
    reason = next((ln for ln in reversed(lines) if ln), "no reason was given")
    reason = reason.removeprefix("Error: ")
    message = (GRADER_FAILURE_MESSAGE if grader else FALLBACK_MESSAGE).format(reason=reason)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({"score": 0.0, "output": message, "tests": []}, indent=2) + "\n",
                       encoding="utf-8")


def _main(argv: list[str]) -> int:
    grader = argv[1:2] == ["--grader"]
    rest = [a for i, a in enumerate(argv) if not (i == 1 and grader)]
    if len(rest) == 3 and rest[0] == "fallback":
        write_fallback(Path(rest[1]), Path(rest[2]), grader=grader)
        return 0
    print("usage: python -m dlgrade.graders.autograder fallback [--grader] RESULTS_JSON STDERR_FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":  # pragma: no cover - run by run_autograder
    sys.exit(_main(sys.argv[1:]))
