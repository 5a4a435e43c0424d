"""dlgrade: an automated grader for deep-learning exercises.

Everything lives under this one namespace: ``dlgrade.graders`` (checking,
running, diagnosing), ``dlgrade.reference`` (the trusted reference maths),
``dlgrade.exercises`` (the built-in specs) and ``dlgrade.reports``
(rendering). In a checkout those are the folders at the top of the repository,
mapped here by ``pyproject.toml``'s ``package-dir``; an installed dlgrade holds
them inside this package.

From a script: ``dlgrade.check_file(path)`` grades a saved submission as ``dlgrade
check`` does, ``dlgrade.grade(submissions, out)`` a class as ``dlgrade grade`` does.

In a notebook: ``%load_ext dlgrade`` then ``%dlgrade check [EXERCISE ...]``, or
``dlgrade.check()`` from Python, grades the cells the kernel has run
(dlgrade.graders.kernel_check). Importing dlgrade imports nothing heavy.
"""
from __future__ import annotations

import os as _os

_here = _os.path.dirname(_os.path.abspath(__file__))
_root = _os.path.dirname(_here)
if not _os.path.isdir(_os.path.join(_here, "graders")) and _os.path.isfile(_os.path.join(_root, "graders", "__init__.py")):
    # a checkout used without installing it: the subpackages are its top-level folders
    __path__.append(_root)  # type: ignore[name-defined]


def __getattr__(name: str):
    if name == "__version__":
        from dlgrade.graders.batch import dlgrade_version

        return dlgrade_version()
    raise AttributeError(f"module 'dlgrade' has no attribute {name!r}")


def check(*exercises: str, **options):
    """Grade the cells this notebook's kernel has run, as ``dlgrade check`` grades the
    saved notebook; every exercise the notebook defines unless some are named.

    Options: ``student``, ``exercises_dir``, ``require_sandbox``. Returns a
    NotebookCheck (``.score``, ``.max_score``, ``.report``), shown inline as a
    cell's value. Raises NotebookCheckError (one line, no traceback in a notebook).
    """
    from dlgrade.graders.kernel_check import check as _check

    return _check(*exercises, **options)


def load_ipython_extension(ip) -> None:
    """``%load_ext dlgrade``: registers the ``%dlgrade`` magic."""
    from dlgrade.graders.kernel_check import load

    load(ip)


def unload_ipython_extension(ip) -> None:
    """``%unload_ext dlgrade``: closes the kernel's warm grader and removes ``%dlgrade``."""
    from dlgrade.graders.kernel_check import unload

    unload(ip)


def _dirs(exercises_dir) -> tuple[str, ...]:
    if isinstance(exercises_dir, (str, _os.PathLike)):
        return (str(exercises_dir),)
    return tuple(str(d) for d in exercises_dir)


def check_file(path, *exercises: str, student: str | None = None, exercises_dir=(),
               require_sandbox: bool = False):
    """Grade a saved submission (a ``.py`` file, a notebook, an answer file or a folder)
    as ``dlgrade check PATH`` does: every exercise it defines unless some are named.

    Returns a Report (``.score``, ``.max_score``, ``.results``, ``.to_dict()`` is the
    ``--json`` record). Raises a ``dlgrade.graders.errors.UserError`` for a bad path, an
    unknown exercise or a broken spec, a ``GraderError`` when dlgrade cannot grade.
    """
    from dlgrade.graders.api import check as _check

    return _check(path, exercise_ids=tuple(exercises), exercises_dirs=_dirs(exercises_dir),
                  student=student, require_sandbox=require_sandbox)


def grade(submissions, out, *exercises: str, jobs: int | None = None, exercises_dir=(),
          layout: str | None = None, roster=None, force: bool = False, require_sandbox: bool = False):
    """Grade a class (a folder of submissions or an LMS download) into the folder ``out``
    as ``dlgrade grade`` does: reports, ``grades.csv``, ``results.json``, resumable.

    Returns the summary (``.batch.graded``, ``.batch.students``...). Raises as
    :func:`check_file` does.
    """
    from dlgrade.graders import lms
    from dlgrade.reports.class_pages import HTML_PAGES

    return lms.grade(submissions, out, layout=layout, roster_file=roster, jobs=jobs,
                     exercise_ids=tuple(exercises), exercises_dirs=_dirs(exercises_dir), force=force,
                     require_sandbox=require_sandbox, pages=HTML_PAGES)
