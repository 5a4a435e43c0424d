"""dlgrade's exceptions: one root, and a branch for each kind of failure.

* :class:`UserError` — the person running dlgrade must fix something: a path
  that does not exist, an unknown exercise id, a broken exercise spec, a bad
  option, an unreadable roster or download. One line, exit code 2.
* :class:`GraderError` — dlgrade itself could not grade: the sandbox would not
  start, a worker misbehaved, a bug in dlgrade. One line, exit code 3.
* :class:`SubmissionProblem` — a student's files cannot be used as they are (a
  malformed notebook, an answer that cannot be read, a refused link). This is
  never an exit code: the grader turns it into a graded ``error`` result.

The classes the rest of dlgrade raises derive from one of these and live next
to the code that raises them (``SpecError`` in ``spec.py``, ``SandboxError`` in
``sandbox.py``, ...); the CLI (:mod:`dlgrade.graders.cli`) maps the two branches
to their exit codes in one place, :func:`exit_code`. Catch the narrowest class
you mean; catching :class:`DlgradeError` means "any failure dlgrade foresaw".

Private control-flow exceptions (``symbolic._OutOfTime`` is a BaseException so
that student-facing ``except Exception`` cannot swallow it) and the standalone
sandbox worker's own classes (``sandboxed_worker.py`` imports nothing of dlgrade) stay
outside this tree on purpose.
"""
from __future__ import annotations

USAGE_EXIT = 2
GRADER_EXIT = 3


class DlgradeError(Exception):
    """The root of every failure dlgrade foresees."""


class UserError(DlgradeError):
    """Something the user must fix (a path, an id, a spec, an option): exit code 2."""

    exit_code = USAGE_EXIT


class GraderError(DlgradeError):
    """dlgrade itself failed (never the student's fault): exit code 3."""

    exit_code = GRADER_EXIT


class SubmissionProblem(DlgradeError):
    """A student's files cannot be used as they are: graded as an ``error`` result."""


def exit_code(exc: BaseException) -> int | None:
    """The exit code for a foreseen failure (2 or 3), or None for anything else.

    A class on both branches (a GPU the spec requires on a machine without one
    is a sandbox failure the user fixes by choosing another machine) counts as
    the user's.
    """
    if isinstance(exc, UserError):
        return USAGE_EXIT
    if isinstance(exc, GraderError):
        return GRADER_EXIT
    return None
