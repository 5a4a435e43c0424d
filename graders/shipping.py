"""Submissions and exercises as plain data, for grading on another machine.

``dlgrade grade --cluster`` grades where the files are not: the client reads
each submission here, by descriptor and without following links, exactly as a
local run does (dlgrade.graders.submission), and ships what it read as plain
data (names, bytes and refusals; no objects). A worker rebuilds the
submission from that data with :class:`ShippedSubmission`, which never touches
its own disk, so the results name the files as the client's run would and are
byte-identical to a local run.

An exercise travels as its folder's files (spec, statement, reference files),
once per worker, with the digest the client computed
(dlgrade.graders.batch.exercise_digest); the worker unpacks it into a folder
of its own and checks the digest of what it loaded (its folder and the
reference modules it imports) before grading anything with it.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from dlgrade.graders.errors import GraderError
from dlgrade.graders.spec import Exercise, SpecError, load_exercise
from dlgrade.graders.submission import Refusal, Submission, SubmissionError, SubmittedFile

EXERCISE_DIFFERS = ("exercise {id!r} differs on this worker from the client's (digest {got} here, {want} "
                    "on the client): its reference code is not the same; install the same course "
                    "package and dlgrade on every worker")


class ShippingError(GraderError):
    """Shipped data is malformed (never from a student: the client wrote it)."""


# --------------------------------------------------------------------------- submissions


def _refusal_plain(r: Refusal | None) -> list | None:
    return None if r is None else [r.file, r.kind, r.message]


def _refusal_from(x) -> Refusal | None:
    return None if x is None else Refusal(str(x[0]), str(x[1]), str(x[2]))


def pack_submission(sub: Submission) -> dict:
    """What a worker needs to grade ``sub``, as plain data: its path and display
    root as strings, and every candidate file as read (bytes) or refused."""
    files = sub.files()
    return {
        "path": str(sub.path), "student": sub.student,
        "root": None if sub.display_root is None else str(sub.display_root),
        "is_file": sub.is_file, "is_link": sub.is_link, "refusal": _refusal_plain(sub.refusal),
        "files": [[f.name, f.display, f.data, _refusal_plain(f.refusal)] for f in files],
    }


class ShippedSubmission(Submission):
    """A submission rebuilt from :func:`pack_submission` data: it reads nothing from disk."""

    def __init__(self, plain: dict):  # noqa: D107 - no call to Submission.__init__: it would stat the path
        try:
            self.path = Path(plain["path"])
            self.student = str(plain["student"])
            self.display_root = None if plain["root"] is None else Path(plain["root"])
            self.is_file, self.is_link = bool(plain["is_file"]), bool(plain["is_link"])
            self._refusal = _refusal_from(plain["refusal"])
            self._files = [SubmittedFile(str(name), str(display), data if data is None else bytes(data),
                                         _refusal_from(refusal))
                           for name, display, data, refusal in plain["files"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ShippingError(f"malformed shipped submission ({type(exc).__name__}: {exc})") from None
        self._py_cache = {}
        self._notebooks = {}


def pack_student(student, root: Path) -> dict:
    """A batch student (dlgrade.graders.batch.Student) as a task's plain data: the
    submission as read now, or the SubmissionError that opening it raised."""
    from dlgrade.graders.batch import open_submission

    task = {"student": student.id, "path": str(student.path), "clashes": list(student.clashes),
            "submission": None, "submission_error": None}
    if not student.clashes:
        try:
            task["submission"] = pack_submission(open_submission(student, root))
        except SubmissionError as exc:
            task["submission_error"] = str(exc)
    return task


def unpack_student(task: dict):
    """``(Student, submission)`` for dlgrade.graders.batch.grade_student from pack_student data."""
    from dlgrade.graders.batch import Student

    student = Student(str(task["student"]), Path(task["path"]), tuple(task.get("clashes") or ()))
    if task.get("submission_error") is not None:
        return student, SubmissionError(str(task["submission_error"]))
    if task.get("submission") is None:
        return student, None if student.clashes else SubmissionError(f"{student.path}: nothing was shipped")
    return student, ShippedSubmission(task["submission"])


# --------------------------------------------------------------------------- exercises


def _exercise_files(folder: Path) -> dict[str, bytes]:
    # the files exercise_digest hashes
    found = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and "__pycache__" not in rel.parts and not rel.name.startswith("."):
            found[rel.as_posix()] = p.read_bytes()
    return found


def pack_exercise(ex: Exercise, digest: str) -> dict:
    """An exercise as plain data: its id, the client's digest, its folder's name and files."""
    return {"id": ex.id, "digest": digest, "folder": ex.folder.name, "files": _exercise_files(ex.folder)}


def unpack_exercise(bundle: dict, cache: Path) -> Exercise:
    """The exercise of a pack_exercise bundle, written under ``cache`` (once per digest)
    and loaded from there. Raises ShippingError when what loads here does not have the
    client's digest (other reference code on this machine), SpecError for a bad spec."""
    from dlgrade.graders.batch import atomic_write, exercise_digest

    digest, name = str(bundle["digest"]), str(bundle["folder"])
    if not name or "/" in name or name in (".", ".."):
        raise ShippingError(f"malformed exercise folder name {name!r}")
    folder = Path(cache) / digest / name
    if not (folder / "spec.toml").is_file():
        for rel, data in bundle["files"].items():
            parts = PurePosixPath(rel).parts
            if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
                raise ShippingError(f"malformed exercise file name {rel!r}")
            target = folder.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, bytes(data))
    ex = load_exercise(folder)
    if ex.id != bundle["id"]:
        raise SpecError(f"{folder / 'spec.toml'}: holds exercise {ex.id!r}, shipped as {bundle['id']!r}")
    got = exercise_digest(ex)
    if got != digest:
        raise ShippingError(EXERCISE_DIFFERS.format(id=ex.id, got=got[:12], want=digest[:12]))
    return ex


__all__ = ["pack_submission", "pack_student", "unpack_student", "pack_exercise", "unpack_exercise",
           "ShippedSubmission", "ShippingError", "EXERCISE_DIFFERS"]
