"""Checking a notebook from inside its own kernel: ``%dlgrade check`` and ``dlgrade.check()``.

This runs in the student's kernel, on the trusted side: it never runs the
student's code itself. What the kernel has executed so far (its input history,
in execution order, each cell as typed) becomes a notebook, written to a private
temporary folder under the notebook's own file name, and that file is graded by
:func:`dlgrade.graders.api.check` exactly as ``dlgrade check FILE.ipynb`` grades the
saved notebook: the same conversion (graders/notebook.py), sandbox, checks,
student id (the file's stem, so the same seeds) and score.

One :class:`KernelSession` per kernel keeps the :class:`~dlgrade.graders.runner.Runner`
(its warm workers) for the kernel's life: the first check says it is warming up,
later ones reuse the warm zygotes. It is closed when the extension is unloaded
and when the kernel's process exits (``atexit``).
"""
from __future__ import annotations

import argparse
import atexit
import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

WARMING_UP = ("dlgrade: warming up the grader for this kernel (a few seconds, once; "
              "later checks reuse it)")
NO_KERNEL = ("dlgrade.check() grades the cells a notebook's kernel has run, and this is not a "
             "notebook kernel; from a terminal, run: dlgrade check FILE")
NOTHING_RUN = "nothing to check yet: this kernel has run no cell (run your notebook's cells first)"
# the student id when the kernel cannot tell its notebook's file name (Colab, a bare kernel)
DEFAULT_NAME = "notebook.ipynb"
MAGIC_USAGE = "%dlgrade check [EXERCISE ...] [--student ID] [--exercises-dir DIR] [--require-sandbox]"


class NotebookCheckError(Exception):
    """A check from the kernel could not grade: one line for the student, never a traceback.

    ``kind`` is ``"usage"`` (something the student must fix: an unknown exercise,
    no entry defined yet; the CLI's exit 2) or ``"failure"`` (dlgrade itself could
    not grade, e.g. the sandbox would not start; the CLI's exit 3).
    """

    def __init__(self, message: str, kind: str = "usage"):
        super().__init__(message)
        self.kind = kind

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback (as it does for its own UsageError)
        return [f"Error: {self}"]


def history_cells(ip) -> list[str]:
    """The cells the kernel ran, in execution order, each as it was typed (magics
    and all, the running cell included); a cell run twice appears twice."""
    raw = getattr(getattr(ip, "history_manager", None), "input_hist_raw", None)
    if raw is None:  # no history manager: the namespace's own record of the inputs
        raw = ip.user_ns.get("_ih", [""])
    return [cell for cell in list(raw)[1:] if isinstance(cell, str)]  # [0] is IPython's empty placeholder


def notebook_bytes(cells: list[str]) -> bytes:
    """A notebook (nbformat 4) with one code cell per executed input, in that order."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb).encode("utf-8")


def notebook_file_name(ip, cells: list[str] | None = None, folder: str | None = None) -> str | None:
    """The notebook's file name as the kernel knows it, or None.

    Jupyter Server (JupyterLab, Notebook 7) gives the kernel its session's path
    (``JPY_SESSION_NAME``, which ipykernel also puts in ``__session__``); VS Code
    sets ``__vsc_ipynb_file__``. A kernel run on a file by nbclient, papermill or
    ``jupyter nbconvert --execute`` is told nothing, but runs in the notebook's
    folder: given the ``cells`` it ran, the one notebook there that holds the
    running cell and most of the others is taken (:func:`matching_notebook`).
    """
    ns = getattr(ip, "user_ns", {}) or {}
    for candidate in (ns.get("__vsc_ipynb_file__"), ns.get("__session__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(candidate, str) and candidate.endswith(".ipynb"):
            name = Path(candidate).name
            if name not in (".ipynb", "") and "\x00" not in name:
                return name
    if cells:
        return matching_notebook(cells, folder or os.getcwd())
    return None


MAX_CANDIDATES = 100  # notebooks looked at in the kernel's folder
MAX_CANDIDATE_BYTES = 64 * 2**20


def matching_notebook(cells: list[str], folder: str) -> str | None:
    """The file name of the only ``.ipynb`` in ``folder`` whose code cells hold the
    running cell (the last of ``cells``) and more of the others than any other
    notebook there does; None when there is no such single notebook."""
    import json

    running = cells[-1].strip()
    ran = {c.strip() for c in cells if c.strip()}
    try:
        entries = sorted((e for e in os.scandir(folder) if e.name.endswith(".ipynb") and not e.name.startswith(".")),
                         key=lambda e: e.name)[:MAX_CANDIDATES]
    except OSError:
        return None
    scores: dict[str, int] = {}
    for e in entries:
        try:
            if not e.is_file(follow_symlinks=False) or e.stat(follow_symlinks=False).st_size > MAX_CANDIDATE_BYTES:
                continue
            nb = json.loads(Path(e.path).read_bytes().decode("utf-8"))
            sources = {("".join(c["source"]) if isinstance(c.get("source"), list) else str(c.get("source", ""))).strip()
                       for c in nb.get("cells", []) if isinstance(c, dict) and c.get("cell_type") == "code"}
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            continue
        if running in sources:
            scores[e.name] = len(ran & sources)
    if not scores:
        return None
    best = max(scores.values())
    winners = [n for n, v in scores.items() if v == best]
    return winners[0] if len(winners) == 1 else None


@dataclass(frozen=True)
class CheckRequest:
    """What one check asks for (the magic's arguments, or dlgrade.check()'s)."""

    exercises: tuple[str, ...] = ()
    student: str | None = None
    exercises_dirs: tuple[str, ...] = ()
    require_sandbox: bool = False


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit the kernel's process
        raise NotebookCheckError(f"{message} (usage: {MAGIC_USAGE})")

    def exit(self, status=0, message=None):
        raise NotebookCheckError(message.strip() if message else f"usage: {MAGIC_USAGE}")


def parse_magic(line: str) -> CheckRequest | None:
    """The request a ``%dlgrade`` line makes, or None for ``%dlgrade help`` / ``-h``.

    Raises NotebookCheckError for anything else (an unknown subcommand, a bad option).
    """
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise NotebookCheckError(f"cannot read the arguments ({exc}) (usage: {MAGIC_USAGE})") from None
    if not words or words[0] in ("help", "-h", "--help") or "-h" in words[1:] or "--help" in words[1:]:
        return None
    if words[0] != "check":
        raise NotebookCheckError(f"unknown command {words[0]!r} (usage: {MAGIC_USAGE})")
    p = _Parser(prog="%dlgrade check", add_help=False)
    p.add_argument("exercises", nargs="*")
    p.add_argument("--exercise", "-e", action="append", default=[])
    p.add_argument("--student")
    p.add_argument("--exercises-dir", action="append", default=[])
    p.add_argument("--require-sandbox", action="store_true")
    a = p.parse_args(words[1:])
    return CheckRequest(tuple(a.exercises) + tuple(a.exercise), a.student, tuple(a.exercises_dir),
                        a.require_sandbox)


MAGIC_HELP = f"""Usage: {MAGIC_USAGE}

Grades the cells this kernel has run so far, in the order it ran them, as
`dlgrade check` grades the saved notebook (same sandbox, checks and score).
Without EXERCISE: every exercise whose entry the notebook defines.

  --student ID         the student id (default: the notebook's file name, else "notebook")
  --exercises-dir DIR  a folder of your course's own exercises (repeatable)
  --require-sandbox    refuse to run without bubblewrap

Example:
  %load_ext dlgrade
  %dlgrade check stable-softmax
  dlgrade.check("stable-softmax")      # the same, from Python"""


class NotebookCheck:
    """The result of one check from the kernel: the full :class:`Report` in ``report``,
    shown inline (in Jupyter, Colab) as the terminal's summary and the HTML report."""

    def __init__(self, report, notebook: str):
        self.report = report
        self.notebook = notebook  # the file name it was graded as

    @property
    def score(self) -> float:
        return self.report.score

    @property
    def max_score(self) -> float:
        return self.report.max_score

    def to_dict(self) -> dict:
        """The same record as ``dlgrade check --json`` (per exercise: ``results``)."""
        return self.report.to_dict()

    def _bundle(self) -> dict:
        from dlgrade.graders.results import StudentReport
        from dlgrade.reports.notebook_inline import mime_bundle

        return mime_bundle(StudentReport.of(self.report))

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self._bundle()

    def __repr__(self) -> str:
        return self._bundle()["text/plain"]


class KernelSession:
    """The grader's side of one kernel: its warm Runner, started by the first check."""

    def __init__(self):
        self.runner = None
        self.checks = 0  # checks graded in this kernel
        self.last: NotebookCheck | None = None  # the latest one (what %dlgrade check showed)

    def check(self, ip, request: CheckRequest, say=print) -> NotebookCheck:
        """Grade what ``ip`` has run. Raises NotebookCheckError (one line for the student)."""
        from dlgrade.graders import api
        from dlgrade.graders.devices import GpuUnavailable
        from dlgrade.graders.errors import GraderError
        from dlgrade.graders.sandbox import SandboxError, SandboxRequired, failure_line
        from dlgrade.graders.spec import SpecError, UnknownExercise
        from dlgrade.graders.submission import SubmissionError

        cells = history_cells(ip)
        if not cells:
            raise NotebookCheckError(NOTHING_RUN)
        name = notebook_file_name(ip, cells) or DEFAULT_NAME
        folder = tempfile.mkdtemp(prefix="dlgrade-kernel-")
        try:
            path = Path(folder) / name
            path.write_bytes(notebook_bytes(cells))
            if self.runner is None or (request.require_sandbox and self.runner.isolation != "sandbox"):
                self._start(request.require_sandbox, say)
            report = api.check(path, request.exercises, request.exercises_dirs, student=request.student,
                               runner=self.runner, display_root=folder)
        except (SubmissionError, UnknownExercise, SpecError, api.NothingToGrade, GpuUnavailable) as exc:
            raise NotebookCheckError(str(exc).replace(f"{folder}{os.sep}", ""), "usage") from None
        except SandboxRequired as exc:
            raise NotebookCheckError(failure_line(exc), "failure") from None
        except (GraderError, SandboxError) as exc:
            self.close()  # a worker that failed is not reused: the next check starts afresh
            raise NotebookCheckError(f"dlgrade could not grade {name}: {failure_line(exc)}", "failure") from None
        except KeyboardInterrupt:  # the kernel was interrupted mid-job: no half-used worker is kept
            self.close()
            raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.checks += 1
        self.last = NotebookCheck(report, name)
        return self.last

    def _start(self, require_sandbox: bool, say) -> None:
        from dlgrade.graders.runner import Runner

        self.close()
        runner = Runner(require_sandbox=require_sandbox)  # SandboxRequired without bubblewrap, if asked
        say(WARMING_UP)
        self.runner = runner

    def close(self) -> None:
        """Stop the warm workers (the next check warms up again)."""
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.close()


_SESSION: KernelSession | None = None


def session() -> KernelSession:
    """This kernel's session (one per process), closed when the process exits."""
    global _SESSION
    if _SESSION is None:
        _SESSION = KernelSession()
        atexit.register(_SESSION.close)
    return _SESSION


def close_session() -> None:
    """Close this kernel's warm workers, if any (the extension being unloaded)."""
    if _SESSION is not None:
        _SESSION.close()


def current_shell():
    """The running IPython shell, or None outside one (IPython itself is not imported
    when no shell has: a script that merely imports dlgrade stays light)."""
    import sys

    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def check(*exercises: str, student: str | None = None, exercises_dir=(), require_sandbox: bool = False,
          ip=None) -> NotebookCheck:
    """Grade the cells this kernel has run (``dlgrade.check()`` in a notebook).

    Returns a :class:`NotebookCheck` (shown inline when it is a cell's value).
    Raises NotebookCheckError outside a kernel, for an unknown exercise, when
    nothing to grade is defined, or when dlgrade could not grade.
    """
    ip = ip if ip is not None else current_shell()
    if ip is None or getattr(ip, "history_manager", None) is None:
        raise NotebookCheckError(NO_KERNEL)
    dirs = (exercises_dir,) if isinstance(exercises_dir, (str, os.PathLike)) else tuple(exercises_dir)
    request = CheckRequest(tuple(exercises), student, tuple(str(d) for d in dirs), require_sandbox)
    return session().check(ip, request)


def magic(line: str, ip=None):
    """``%dlgrade check ...``: grade and display the result inline (returns None, so
    nothing is shown twice); ``%dlgrade help`` prints the usage."""
    ip = ip if ip is not None else current_shell()
    request = parse_magic(line)
    if request is None:
        print(MAGIC_HELP)
        return None
    result = session().check(ip, request)
    from IPython.display import display

    display(result)
    return None


def load(ip) -> None:
    """Register ``%dlgrade`` in ``ip`` (what ``%load_ext dlgrade`` calls)."""
    def dlgrade(line):
        return magic(line, ip)

    dlgrade.__doc__ = MAGIC_HELP  # what %dlgrade? shows
    ip.register_magic_function(dlgrade, magic_kind="line", magic_name="dlgrade")


def unload(ip) -> None:
    """Close the warm workers and remove ``%dlgrade`` (``%unload_ext dlgrade``)."""
    close_session()
    ip.magics_manager.magics["line"].pop("dlgrade", None)
