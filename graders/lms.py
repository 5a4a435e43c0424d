"""Grading a class from what the LMS gave: the library behind ``dlgrade grade`` with a download.

:func:`grade` reads the download (:mod:`dlgrade.graders.layouts`; a plain folder of
submissions is graded where it is), writes it as one folder per student under
``OUT/submissions/`` with ``OUT/intake.json`` beside it, keeps the roster and
the exports asked for in the output folder, then grades that folder with
:func:`dlgrade.graders.batch.grade_class` — so resume, fingerprints, atomic writes and
``--force`` behave exactly as for any folder. Overrides, names, the review
queue, similarity and the exports are laid on when the class's files are
written (:mod:`dlgrade.graders.gradebook`).
"""
from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from dlgrade.graders import batch, gradebook, layouts
from dlgrade.graders import overrides as overrides_mod
from dlgrade.graders import roster as roster_mod
from dlgrade.graders.sandbox import choose_isolation

INTAKE_LOCK = ".dlgrade-intake-lock"
SUBMISSIONS_DIR = "submissions"


@dataclass
class LmsSummary:
    """What :func:`grade` did, beyond the batch's own summary."""

    batch: batch.BatchSummary
    intake: layouts.Intake | None
    roster: roster_mod.Roster | None
    not_on_roster: list[str]
    no_submission: list[str]
    exports: list[Path]


def grade(source, out_dir, layout: str | None = None, roster_file=None,
          exports: list[gradebook.ExportSpec] | None = None, **batch_options) -> LmsSummary:
    """Grade the download (or folder) ``source`` into ``out_dir``.

    ``layout`` names the download's layout (None: detected); ``roster_file`` a
    roster CSV (kept as ``roster.json``; None keeps the one from an earlier run);
    ``exports`` the LMS files to keep written (None keeps those of an earlier run).
    ``batch_options`` go to :func:`dlgrade.graders.batch.grade_class`.

    Raises LayoutError, ArchiveError, RosterError, OverrideError, BatchError,
    UnknownExercise, SpecError, SandboxRequired (usage errors, all before anyone
    is graded) and batch.Interrupted.
    """
    source, out = Path(source), Path(out_dir)
    if not source.exists():
        raise batch.BatchError(f"{source}: no such folder")  # batch grading's own wording
    ros = roster_mod.read_roster(roster_file) if roster_file else None
    # a sandbox that cannot start is dlgrade's failure: refuse before anything is written
    # (on a cluster, each worker checks its own sandbox: see dlgrade.graders.cluster_host)
    if batch_options.get("executor") is None:
        choose_isolation(bool(batch_options.get("require_sandbox", False)))
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(out / INTAKE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise batch.BatchError(f"{out}: cannot be written ({exc.strerror or exc})") from None
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise batch.BatchError(f"{out}: another dlgrade grade is writing to this folder") from None
        overrides_mod.load(out)  # a malformed overrides.toml is an error now, not after grading
        intake = layouts.read(source, layout)
        if intake is not None:
            root = layouts.materialize(intake, out / SUBMISSIONS_DIR)
            layouts.write_intake_json(intake, out / gradebook.INTAKE_FILE)
        else:
            root = source
            (out / gradebook.INTAKE_FILE).unlink(missing_ok=True)  # a folder: no download to describe
        if ros is not None:
            roster_mod.save(ros, out)
        if exports is not None:
            gradebook.set_exports(out, exports)
        summary = batch.grade_class(root, out, **batch_options)
    finally:
        os.close(lock_fd)
    ros = roster_mod.load(out)
    graded = set(summary.students)
    return LmsSummary(
        batch=summary, intake=intake, roster=ros,
        not_on_roster=sorted(graded - set(ros.people)) if ros else [],
        no_submission=[sid for sid in ros.people if sid not in graded] if ros else [],
        exports=[s.path(out) for s in gradebook.export_specs(out)])


__all__ = ["grade", "LmsSummary", "SUBMISSIONS_DIR"]
