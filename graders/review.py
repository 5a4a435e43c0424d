"""The review queue: the results a person should look at, and their decisions.

An item is a (student, exercise) result that dlgrade could not settle on its
own: a symbolic answer it could not decide (0 points until someone looks), a
timeout, an error (the student's code failed to load or crashed, or dlgrade
itself failed), or an override someone made. Accepting or rejecting an item
writes an override (``dlgrade.graders.overrides``), so the decision survives every
regrade:

- accept: the points given (``--points``), or for an undetermined answer the
  points its undecided checks would have given (the answer is accepted as
  correct); an error or a timeout has no such default and needs ``--points``;
- reject: the automatic score is kept, and the item leaves the queue.

An item whose submission changed after its override was made is flagged, so
a person can decide whether the override still holds.
"""
from __future__ import annotations

from dataclasses import dataclass

from dlgrade.graders.overrides import Override, OverrideError, make
from dlgrade.graders.results import ExerciseResult, Report

KINDS = ("undetermined", "timeout", "error", "override")
STATES = ("open", "accepted", "rejected", "overridden")

UNDETERMINED_WHY = "the symbolic answer could not be decided automatically"
TIMEOUT_WHY = "the code ran out of time"
GRADER_WHY = "dlgrade itself failed on this exercise"
ERROR_WHY = "the code could not be graded"
NO_DEFAULT = ("{student} {exercise}: {kind} has no points to accept by default; "
              "give them with --points (0..{max:g})")
ARTICLE = {"timeout": "a timeout", "error": "an error", "override": "an override", "undetermined": "it"}
NOT_IN_QUEUE = "{student} {exercise}: not in the review queue (nothing for a person to decide)"


@dataclass(frozen=True)
class Item:
    """One result waiting for (or settled by) a person."""

    student: str
    exercise: str
    kind: str  # one of KINDS
    why: str  # one line: what needs a person
    automatic_score: float
    max_score: float
    proposed: float | None  # the points "accept" gives without --points
    state: str  # one of STATES
    override: Override | None = None
    changed: bool = False  # the submission changed after the override was made
    name: str = ""

    @property
    def is_open(self) -> bool:
        return self.state == "open" or self.changed

    def to_dict(self) -> dict:
        d = {"student": self.student, "exercise": self.exercise, "kind": self.kind, "why": self.why,
             "automatic_score": round(self.automatic_score, 6), "max_score": round(self.max_score, 6),
             "proposed": None if self.proposed is None else round(self.proposed, 6), "state": self.state,
             "changed": self.changed}
        if self.name:
            d["name"] = self.name
        if self.override is not None:
            d["override"] = {"points": self.override.points, "note": self.override.note,
                             "by": self.override.by, "at": self.override.at}
        return d


def _undecided_checks(r: ExerciseResult) -> list:
    return [c for c in r.checks if isinstance(c.details, dict) and c.details.get("needs_review")]


def kind_of(r: ExerciseResult) -> tuple[str, str, float | None] | None:
    """(kind, why, proposed points) when a result needs a person, else None."""
    if r.status == "timeout":
        return "timeout", f"{TIMEOUT_WHY}: {r.message}" if r.message else TIMEOUT_WHY, None
    if r.status == "error":
        why = GRADER_WHY if (r.error or {}).get("kind") == "grader" else ERROR_WHY
        return "error", f"{why}: {r.message}" if r.message else why, None
    undecided = _undecided_checks(r) if r.status == "graded" else []
    sym = r.extra.get("symbolic") if isinstance(r.extra, dict) else None
    if undecided or (isinstance(sym, dict) and sym.get("needs_review")):
        proposed = min(r.max_score, r.automatic_score + sum(c.max_score - c.score for c in undecided))
        reason = next((c.message for c in undecided if c.message), "")
        return "undetermined", f"{UNDETERMINED_WHY}: {reason}" if reason else UNDETERMINED_WHY, proposed
    return None


def queue(reports: list[Report], overrides: dict[tuple[str, str], Override],
          fingerprints: dict[str, str | None] | None = None) -> list[Item]:
    """Every item of the class: open ones first, then by student and exercise.

    ``reports`` are the automatic results (overrides may be laid on them: the
    automatic score is read either way); ``fingerprints`` the submissions'
    current fingerprints, to flag overrides made on an older submission.
    """
    fingerprints = fingerprints or {}
    items = []
    for rep in reports:
        for r in rep.results:
            found = kind_of(r)
            o = overrides.get((r.student, r.exercise))
            if found is None and o is None:
                continue
            kind, why, proposed = found or ("override", o.note or "a score set by a person", None)
            state = "open"
            if o is not None:
                state = {"accepted": "accepted", "rejected": "rejected"}.get(o.decision, "overridden")
            current = fingerprints.get(r.student)
            changed = bool(o is not None and o.fingerprint and current and o.fingerprint != current)
            items.append(Item(r.student, r.exercise, kind, why, r.automatic_score, r.max_score, proposed, state,
                              o, changed, rep.name))
    items.sort(key=lambda i: (not i.is_open, i.student, i.exercise))
    return items


def find(items: list[Item], student: str, exercise: str) -> Item:
    """The item of (student, exercise). Raises OverrideError when there is none."""
    for i in items:
        if i.student == student and i.exercise == exercise:
            return i
    raise OverrideError(NOT_IN_QUEUE.format(student=student, exercise=exercise))


def decide(item: Item, result: ExerciseResult, accept: bool, points: float | None = None, note: str = "",
           fingerprint: str = "") -> Override:
    """The override that records a person's decision on ``item``.

    Raises OverrideError when accepting needs points that were not given, or
    they are outside the exercise's range.
    """
    if accept:
        if points is None:
            points = item.proposed
        if points is None:
            raise OverrideError(NO_DEFAULT.format(student=item.student, exercise=item.exercise,
                                                  kind=ARTICLE.get(item.kind, item.kind), max=item.max_score))
        note = note or f"accepted in review ({item.kind})"
        return make(result, points, note, decision="accepted", fingerprint=fingerprint)
    if points is not None:
        raise OverrideError("--points goes with --accept (a rejection keeps the automatic score)")
    note = note or f"rejected in review ({item.kind}): automatic score kept"
    return make(result, result.automatic_score, note, decision="rejected", fingerprint=fingerprint)


def counts(items: list[Item]) -> dict[str, int]:
    """How many items are open, accepted, rejected, overridden (and changed since)."""
    out = {s: 0 for s in STATES}
    for i in items:
        out["open" if i.is_open and i.state == "open" else i.state] += 1
    out["changed"] = sum(i.changed for i in items)
    return out


__all__ = ["Item", "queue", "find", "decide", "counts", "kind_of", "KINDS", "STATES"]
