"""Manual overrides: a person's score for one student's exercise, kept across every regrade.

Overrides live in the output folder, in ``overrides.toml``, one table per
override; ``dlgrade override`` and ``dlgrade review`` write it and a person
may edit it by hand::

    [[override]]
    student = "12345"
    exercise = "stable-softmax"
    points = 7
    note = "Masked classes handled in a helper the checker could not see."
    by = "jdoe"
    at = "2024-05-02T14:03:11Z"
    automatic_score = 5            # what dlgrade gave when the override was made
    fingerprint = "9f2c…"          # the submission it was made on

They are applied when the class's files are written, never to the
per-student records: a regrade (``--force`` included) recomputes the
automatic score and the override is laid on top again. In ``results.json``
an overridden result's ``score`` is the override's points, with
``automatic_score`` and ``override`` beside it.

A malformed file is one line naming the file, the override and the key.
"""
from __future__ import annotations

import getpass
import math
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from dlgrade.graders.results import ExerciseResult, Report
from dlgrade.graders.spec import tomllib
from dlgrade.graders.errors import UserError

OVERRIDES_FILE = "overrides.toml"
DECISIONS = ("", "accepted", "rejected")
KEYS = ("student", "exercise", "points", "note", "by", "at", "automatic_score", "fingerprint", "decision")
HEADER = """\
# dlgrade manual overrides: each [[override]] sets one student's score on one exercise.
# They are applied on top of every regrade (--force included); delete a table to undo one.
# Keys: student, exercise, points (required); note, by, at, automatic_score, fingerprint, decision.
"""


class OverrideError(UserError):
    """The overrides file or an override asked for is not valid (a usage error, exit 2)."""


@dataclass(frozen=True)
class Override:
    """A person's score for (student, exercise), with why, who and when."""

    student: str
    exercise: str
    points: float
    note: str = ""
    by: str = ""
    at: str = ""
    automatic_score: float | None = None
    fingerprint: str = ""
    decision: str = ""  # "accepted" / "rejected" when it was written from the review queue

    @property
    def key(self) -> tuple[str, str]:
        return (self.student, self.exercise)

    def as_result_field(self) -> dict:
        """What an overridden ExerciseResult carries in its ``override`` field."""
        d = {"points": self.points, "note": self.note, "by": self.by, "at": self.at}
        if self.decision:
            d["decision"] = self.decision
        return d


def path_of(out_dir) -> Path:
    return Path(out_dir) / OVERRIDES_FILE


def load(out_dir) -> dict[tuple[str, str], Override]:
    """The overrides of an output folder, by (student, exercise); empty when there is no file.

    Raises OverrideError naming the file, the override and the key at fault.
    """
    path = path_of(out_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise OverrideError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise OverrideError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(doc) - {"override"})
    if unknown:
        raise OverrideError(f"{path}: unknown table {unknown[0]!r} (overrides are [[override]] tables)")
    tables = doc.get("override", [])
    if not isinstance(tables, list):
        raise OverrideError(f"{path}: 'override' must be an array of tables ([[override]])")
    found: dict[tuple[str, str], Override] = {}
    for n, t in enumerate(tables, start=1):
        o = _from_table(t, f"{path}: override #{n}")
        if o.key in found:
            raise OverrideError(f"{path}: override #{n}: a second override for student {o.student!r}, "
                                f"exercise {o.exercise!r}")
        found[o.key] = o
    return found


def _from_table(t: dict, where: str) -> Override:
    bad = sorted(set(t) - set(KEYS))
    if bad:
        raise OverrideError(f"{where}: unknown key {bad[0]!r} (expected {', '.join(KEYS)})")
    for key in ("student", "exercise", "points"):
        if key not in t:
            raise OverrideError(f"{where}: missing key {key!r}")
    for key in ("student", "exercise", "note", "by", "at", "fingerprint", "decision"):
        if key in t and not isinstance(t[key], (str, datetime)):
            raise OverrideError(f"{where}: {key!r} must be a string")
    for key in ("points", "automatic_score"):
        if key in t and (isinstance(t[key], bool) or not isinstance(t[key], (int, float))
                         or not math.isfinite(t[key])):
            raise OverrideError(f"{where}: {key!r} must be a number")
    if t["points"] < 0:
        raise OverrideError(f"{where}: 'points' must not be negative")
    if not t["student"] or not t["exercise"]:
        raise OverrideError(f"{where}: 'student' and 'exercise' must not be empty")
    decision = str(t.get("decision", ""))
    if decision not in DECISIONS:
        raise OverrideError(f"{where}: 'decision' must be one of {', '.join(repr(d) for d in DECISIONS if d)}")
    at = t.get("at", "")
    return Override(student=t["student"], exercise=t["exercise"], points=float(t["points"]),
                    note=str(t.get("note", "")), by=str(t.get("by", "")),
                    at=at.isoformat() if isinstance(at, datetime) else str(at),
                    automatic_score=float(t["automatic_score"]) if "automatic_score" in t else None,
                    fingerprint=str(t.get("fingerprint", "")), decision=decision)


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 2**53 else repr(float(x))


def dumps(overrides) -> str:
    """The overrides as ``overrides.toml`` text (sorted by student, then exercise)."""
    parts = [HEADER]
    for o in sorted(overrides, key=lambda o: o.key):
        lines = ["", "[[override]]", f"student = {_toml_string(o.student)}",
                 f"exercise = {_toml_string(o.exercise)}", f"points = {_toml_number(o.points)}"]
        for key in ("note", "by", "at"):
            if getattr(o, key):
                lines.append(f"{key} = {_toml_string(getattr(o, key))}")
        if o.automatic_score is not None:
            lines.append(f"automatic_score = {_toml_number(o.automatic_score)}")
        if o.fingerprint:
            lines.append(f"fingerprint = {_toml_string(o.fingerprint)}")
        if o.decision:
            lines.append(f"decision = {_toml_string(o.decision)}")
        parts.append("\n".join(lines) + "\n")
    return "".join(parts)


def save(out_dir, overrides) -> None:
    """Write ``overrides.toml`` atomically."""
    from dlgrade.graders.batch import atomic_write

    atomic_write(path_of(out_dir), dumps(overrides.values() if isinstance(overrides, dict) else overrides)
                 .encode("utf-8"))


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def make(result: ExerciseResult, points: float, note: str = "", decision: str = "",
         fingerprint: str = "") -> Override:
    """An override of ``result`` (its automatic score recorded beside it).

    Raises OverrideError when ``points`` is not between 0 and the exercise's maximum.
    """
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isfinite(points):
        raise OverrideError(f"--points must be a number, not {points!r}")
    if not 0 <= points <= result.max_score:
        raise OverrideError(f"--points {points:g} is outside 0..{result.max_score:g} "
                            f"(the most {result.exercise} is worth)")
    return Override(student=result.student, exercise=result.exercise, points=float(points), note=note,
                    by=whoami(), at=now(), automatic_score=round(result.automatic_score, 6),
                    fingerprint=fingerprint, decision=decision)


def apply(report: Report, overrides: dict[tuple[str, str], Override]) -> Report:
    """``report`` with every override of its student laid on its results."""
    if not overrides:
        return report
    results = []
    changed = False
    for r in report.results:
        o = overrides.get((r.student, r.exercise))
        if o is not None:
            r = replace(r, override=o.as_result_field())
            changed = True
        results.append(r)
    return replace(report, results=tuple(results)) if changed else report


def unmatched(overrides: dict[tuple[str, str], Override], reports) -> list[Override]:
    """Overrides that no (student, exercise) result of ``reports`` takes."""
    have = {(r.student, r.exercise) for rep in reports for r in rep.results}
    return [o for k, o in sorted(overrides.items()) if k not in have]


__all__ = ["Override", "OverrideError", "load", "save", "dumps", "make", "apply", "unmatched", "OVERRIDES_FILE"]
