"""The instructor's layer over a batch output folder: names, overrides, review, similarity, exports.

Batch grading keeps each student's automatic results in ``students/<id>.json``
(see :mod:`dlgrade.graders.batch`). Everything a person adds lives beside them, in
files of the output folder, and is laid on top whenever the class's files are
written (after every grading run, and after every ``dlgrade override``,
``review`` or ``export``):

=================  ===============================================================
``overrides.toml`` manual overrides (:mod:`dlgrade.graders.overrides`), hand-editable
``roster.json``    the roster given with ``--roster`` (:mod:`dlgrade.graders.roster`)
``intake.json``    the LMS download as read: layout, files taken, files skipped
``gradebook.json`` the exports to keep written (format, file, points, assignment)
``similarity.json`` near-identical pairs (:mod:`dlgrade.graders.similarity`), and
``similarity/``    their side-by-side pages (instructor-facing only)
=================  ===============================================================

A student's name comes from the roster, else from the download (Moodle's
folder names, Gradescope's metadata).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from dlgrade.graders import overrides as overrides_mod
from dlgrade.graders import review as review_mod
from dlgrade.graders import roster as roster_mod
from dlgrade.graders import similarity as similarity_mod
from dlgrade.graders.layouts import load_intake_json
from dlgrade.graders.results import Report
from dlgrade.graders.errors import UserError

GRADEBOOK_FILE = "gradebook.json"
INTAKE_FILE = "intake.json"
SIMILARITY_FILE = "similarity.json"
SIMILARITY_DIR = "similarity"
SKIPPED_SHOWN = 200  # skipped files listed in the class summary (all are in intake.json)


class GradebookError(UserError):
    """The output folder's instructor files cannot be used (a usage error, exit 2)."""


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ExportSpec:
    """One LMS export to keep written: format, file (relative to the output folder or absolute),
    the points the course chose, the Canvas assignment column."""

    format: str
    file: str = ""
    points_possible: float | None = None
    assignment: str = ""

    def path(self, out_dir) -> Path:
        from dlgrade.graders.lms_exports import DEFAULT_FILES

        p = Path(self.file) if self.file else Path(DEFAULT_FILES[self.format])
        return p if p.is_absolute() else Path(out_dir) / p

    def to_dict(self) -> dict:
        return {"format": self.format, "file": self.file, "points_possible": self.points_possible,
                "assignment": self.assignment}


def load_settings(out_dir) -> dict:
    try:
        d = json.loads((Path(out_dir) / GRADEBOOK_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def save_settings(out_dir, settings: dict) -> None:
    from dlgrade.graders.batch import atomic_write

    atomic_write(Path(out_dir) / GRADEBOOK_FILE,
                 (json.dumps(settings, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8"))


def export_specs(out_dir) -> list[ExportSpec]:
    out = []
    for d in load_settings(out_dir).get("exports") or ():
        if isinstance(d, dict) and d.get("format"):
            pp = d.get("points_possible")
            out.append(ExportSpec(str(d["format"]), str(d.get("file") or ""),
                                  float(pp) if isinstance(pp, (int, float)) else None, str(d.get("assignment") or "")))
    return out


def set_exports(out_dir, specs: list[ExportSpec]) -> None:
    settings = load_settings(out_dir)
    settings["exports"] = [s.to_dict() for s in specs]
    save_settings(out_dir, settings)


# --------------------------------------------------------------------------- names and overrides


def names(out_dir) -> dict[str, str]:
    """Student id -> name: the roster's, else the download's."""
    found = {}
    for sid, meta in (load_intake_json(Path(out_dir) / INTAKE_FILE).get("students") or {}).items():
        if isinstance(meta, dict) and meta.get("name"):
            found[sid] = str(meta["name"])
    ros = roster_mod.load(out_dir)
    if ros is not None:
        found.update({sid: p.name for sid, p in ros.people.items() if p.name})
    return found


_CACHE: dict[str, tuple] = {}


def inputs_mtime(out_dir) -> int:
    """The newest modification time of the files laid on the reports (0 when none):
    a student's page older than this is rendered again."""
    newest = 0
    for name in (overrides_mod.OVERRIDES_FILE, roster_mod.ROSTER_FILE, INTAKE_FILE):
        try:
            newest = max(newest, (Path(out_dir) / name).stat().st_mtime_ns)
        except OSError:
            pass
    return newest


def _layers(out_dir) -> tuple[dict, dict[str, str], list[str]]:
    """(overrides, names, warnings) of an output folder, cached while its files are unchanged."""
    key = str(Path(out_dir).resolve())
    stamp = inputs_mtime(out_dir)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1], hit[2], hit[3]
    warnings = []
    try:
        found = overrides_mod.load(out_dir)
    except overrides_mod.OverrideError as exc:
        found = {}
        warnings.append(f"overrides not applied: {exc}")
    result = (found, names(out_dir), warnings)
    _CACHE[key] = (stamp, *result)
    return result


def decorate(out_dir, reports: list[Report]) -> tuple[list[Report], list[str]]:
    """The reports with their overrides laid on and their names set, and warnings
    (a malformed overrides file; overrides that match no result)."""
    found, who, warnings = _layers(out_dir)
    out = [_decorated(r, found, who) for r in reports]
    lost = overrides_mod.unmatched(found, reports)
    if lost:
        warnings = warnings + [f"{len(lost)} override(s) match no result and are not applied: "
                               + ", ".join(f"{o.student}/{o.exercise}" for o in lost[:5])
                               + (", ..." if len(lost) > 5 else "")]
    return out, list(warnings)


def decorate_one(out_dir, report: Report) -> Report:
    """One report with its overrides and name (for the page written as a student is graded)."""
    found, who, _ = _layers(out_dir)
    return _decorated(report, found, who)


def _decorated(report: Report, found: dict, who: dict[str, str]) -> Report:
    report = overrides_mod.apply(report, found)
    name = who.get(report.student, "")
    return replace(report, name=name) if name and name != report.name else report


# --------------------------------------------------------------------------- the class summary


@dataclass(frozen=True)
class SimilarPair:
    """A pair as the class summary lists it (with its side-by-side page)."""

    a: str
    b: str
    a_name: str
    b_name: str
    similarity: float
    shared: int
    href: str


@dataclass
class ClassExtras:
    """What the class summary shows beyond the grades (all instructor-facing)."""

    layout: str = ""
    layout_name: str = ""
    source: str = ""
    late: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    skipped_total: int = 0
    no_submission: list[tuple[str, str]] = field(default_factory=list)  # (id, name) on the roster, not graded
    not_on_roster: list[str] = field(default_factory=list)
    overrides: list[dict] = field(default_factory=list)
    review: list = field(default_factory=list)  # review.Item, open first
    review_counts: dict = field(default_factory=dict)
    pairs: list[SimilarPair] = field(default_factory=list)
    similarity_note: str = ""
    names: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def has_roster(self) -> bool:
        return bool(self.no_submission or self.not_on_roster or self.names)


def fingerprints_of(out_dir, students) -> dict[str, str | None]:
    """Each student's current submission fingerprint, from their per-student file."""
    out = {}
    for sid in students:
        try:
            d = json.loads((Path(out_dir) / "students" / f"{sid}.json").read_text(encoding="utf-8"))
            out[sid] = (d.get("batch") or {}).get("fingerprint")
        except (OSError, ValueError, AttributeError):
            out[sid] = None
    return out


def class_extras(out_dir, reports: list[Report], students=None, exercises=(), pages=None) -> ClassExtras:
    """Everything the class summary adds to the grades. ``reports`` are decorated;
    ``students`` (batch.Student records) and ``exercises`` let similarity be computed
    now (its pages written with ``pages``, dlgrade.graders.pages), else the last run's
    ``similarity.json`` is shown."""
    out_dir = Path(out_dir)
    extras = ClassExtras()
    intake = load_intake_json(out_dir / INTAKE_FILE)
    if intake:
        from dlgrade.graders.layouts import LAYOUT_NAMES

        extras.layout = str(intake.get("layout") or "")
        extras.layout_name = LAYOUT_NAMES.get(extras.layout, extras.layout)
        extras.source = str(intake.get("source") or "")
        studs = intake.get("students") or {}
        extras.late = sorted(sid for sid, m in studs.items() if isinstance(m, dict) and m.get("late"))
        skipped = [s for s in intake.get("skipped") or () if isinstance(s, dict)]
        extras.skipped, extras.skipped_total = skipped[:SKIPPED_SHOWN], len(skipped)
        extras.warnings += [str(w) for w in intake.get("warnings") or ()]
    extras.names = names(out_dir)
    graded = {r.student for r in reports}
    ros = roster_mod.load(out_dir)
    if ros is not None:
        extras.no_submission = [(sid, p.name) for sid, p in ros.people.items() if sid not in graded]
        extras.not_on_roster = sorted(graded - set(ros.people))
    found, _, _ = _layers(out_dir)
    automatic = {(r.student, r.exercise): r for rep in reports for r in rep.results}
    for key, o in sorted(found.items()):
        r = automatic.get(key)
        extras.overrides.append({"student": o.student, "exercise": o.exercise, "points": o.points,
                                 "max_score": r.max_score if r else None,
                                 "automatic_score": r.automatic_score if r else o.automatic_score,
                                 "note": o.note, "by": o.by, "at": o.at, "decision": o.decision,
                                 "applied": r is not None, "name": extras.names.get(o.student, "")})
    items = review_mod.queue(reports, found, fingerprints_of(out_dir, graded))
    extras.review, extras.review_counts = items, review_mod.counts(items)
    pairs = _similarity(out_dir, reports, students, exercises, pages)
    extras.pairs = [SimilarPair(p["a"], p["b"], extras.names.get(p["a"], ""), extras.names.get(p["b"], ""),
                                p["similarity"], p["shared"], f"{SIMILARITY_DIR}/{page_name(n)}")
                    for n, p in enumerate(pairs, start=1)]
    extras.similarity_note = (f"winnowed fingerprints of {similarity_mod.K}-token windows, {similarity_mod.W} per "
                              f"window; a pair shares at least {similarity_mod.MIN_SHARED} of them, making "
                              f"{similarity_mod.THRESHOLD:.0%} or more of the smaller submission's")
    return extras


def page_name(n: int) -> str:
    return f"pair-{n:03d}.html"


def _similarity(out_dir: Path, reports: list[Report], students, exercises, pages) -> list[dict]:
    """Near-identical pairs, computed now when the submissions are at hand (and kept in
    ``similarity.json`` with their pages), else those of the last run."""
    path = out_dir / SIMILARITY_FILE
    if students is None:
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return [p for p in d.get("pairs") or () if isinstance(p, dict) and "a" in p and "b" in p]
        except (OSError, ValueError, AttributeError):
            return []
    graded = {r.student for r in reports}
    chosen = [s for s in students if s.id in graded and not getattr(s, "clashes", ())]
    base = []
    for ex in exercises:
        starter = getattr(ex, "starter", None)
        if starter is not None and Path(starter).is_file():
            base.append(Path(starter).read_text(encoding="utf-8", errors="replace"))
    method = {"k": similarity_mod.K, "w": similarity_mod.W, "threshold": similarity_mod.THRESHOLD,
              "min_shared": similarity_mod.MIN_SHARED, "common_limit": similarity_mod.common_limit(len(chosen))}
    key = _similarity_key(out_dir, chosen, base, method)
    if key is not None:  # nothing changed since the last run: its pairs and pages stand
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            pages_stand = not d.get("pairs") or pages is None or (out_dir / SIMILARITY_DIR).is_dir()
            if d.get("key") == key and pages_stand:
                return [p for p in d["pairs"] if isinstance(p, dict)]
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            pass
    subs = [similarity_mod.fingerprint(s.id, similarity_mod.student_sources(s.path)) for s in chosen]
    pairs = similarity_mod.compare(subs, base)
    by_id = {s.student: s for s in subs}
    from dlgrade.graders.batch import atomic_write

    doc = {"method": method, "students": len(subs), "key": key, "pairs": [p.to_dict() for p in pairs]}
    atomic_write(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    if pages is not None:
        pages.similarity_pages(out_dir / SIMILARITY_DIR, pairs, by_id, names(out_dir), page_name)
    return doc["pairs"]


def _similarity_key(out_dir: Path, students, base: list[str], method: dict) -> str | None:
    """A hash of what the pairs depend on (every student's submission fingerprint, the
    starters, the method), or None when a fingerprint is unknown."""
    import hashlib

    fps = fingerprints_of(out_dir, [s.id for s in students])
    if any(v is None for v in fps.values()):
        return None
    h = hashlib.sha256(json.dumps({"students": sorted(fps.items()), "method": method}, sort_keys=True).encode())
    for text in base:
        h.update(b"\0" + text.encode("utf-8", "replace"))
    return h.hexdigest()


# --------------------------------------------------------------------------- exports


def write_exports(out_dir, reports: list[Report], exercise_ids: list[str]) -> list[str]:
    """Write every export kept in ``gradebook.json``; returns warnings (one line each)."""
    from dlgrade.graders.batch import atomic_write
    from dlgrade.graders import lms_exports as exports

    specs = export_specs(out_dir)
    if not specs:
        return []
    intake = load_intake_json(Path(out_dir) / INTAKE_FILE)
    rows = exports.grade_rows(reports, exercise_ids, roster_mod.load(out_dir), intake)
    warnings = []
    for spec in specs:
        if spec.format not in exports.EXPORT_FORMATS:
            warnings.append(f"export {spec.format!r} not written: unknown format")
            continue
        try:
            text = exports.render(spec.format, rows, exercise_ids, spec.points_possible, spec.assignment)
            path = spec.path(out_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, text.encode("utf-8"))
        except OSError as exc:
            warnings.append(f"{spec.format} export not written to {spec.path(out_dir)} ({exc.strerror or exc})")
            continue
        if spec.format == "canvas":
            warnings += exports.canvas_warnings(rows, spec.assignment)
    return warnings


def finish(out_dir, reports: list[Report], exercise_ids: list[str], students=None,
           exercises=(), pages=None) -> tuple[ClassExtras, list[str]]:
    """After the class's files are written: the summary's extras (similarity computed
    when ``students`` are given, its pages written with ``pages``) and the exports.
    Returns (extras, warnings)."""
    extras = class_extras(out_dir, reports, students, exercises, pages)
    return extras, extras.warnings + write_exports(out_dir, reports, exercise_ids)


# --------------------------------------------------------------------------- commands on an output folder


def read_manifest(out_dir) -> dict:
    """The output folder's ``manifest.json``. Raises GradebookError when there is none."""
    path = Path(out_dir) / "manifest.json"
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GradebookError(f"{out_dir}: not a dlgrade output folder (no manifest.json; "
                             "grade a class into it first)") from None
    except (OSError, ValueError) as exc:
        raise GradebookError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if not isinstance(d, dict) or not isinstance(d.get("students"), dict):
        raise GradebookError(f"{path}: not a dlgrade manifest")
    return d


class _Locked:
    """The output folder, locked against a grading run (and another command) while in use;
    its pages written again with ``pages`` (dlgrade.graders.pages; None: records only)."""

    def __init__(self, out_dir, pages=None):
        from dlgrade.graders import batch

        self.path = Path(out_dir)
        self.manifest = read_manifest(self.path)
        self.folder = batch.OutputFolder(self.path, pages)  # raises BatchError when a run is writing there

    def __enter__(self) -> "_Locked":
        return self

    def __exit__(self, *exc) -> None:
        self.folder.close()

    def graded(self) -> list[str]:
        return sorted(sid for sid, m in self.manifest["students"].items()
                      if isinstance(m, dict) and m.get("state") == "graded")

    def report(self, student: str) -> Report:
        """A graded student's automatic report. Raises GradebookError for anyone else."""
        from dlgrade.graders import batch

        if student not in self.manifest["students"]:
            raise GradebookError(f"{self.path}: no student {student!r} (the ids are those of grades.csv)")
        d = self.folder.stored(student)
        if d is None:
            raise GradebookError(f"{self.path}: student {student!r} has not been graded yet")
        return batch.report_from_dict(d)

    def result(self, student: str, exercise: str):
        rep = self.report(student)
        for r in rep.results:
            if r.exercise == exercise:
                return r
        have = ", ".join(r.exercise for r in rep.results) or "none"
        raise GradebookError(f"{self.path}: student {student!r} has no result for exercise {exercise!r} "
                             f"(graded: {have})")

    def rewrite(self) -> list[str]:
        """Write the class's files again (no grading); returns warnings."""
        from dlgrade.graders import batch

        _CACHE.pop(str(self.path.resolve()), None)
        m = self.manifest
        students = [batch.Student(sid, self.path / "submissions" / sid) for sid in m["students"]]
        _, warnings = batch.write_aggregates(self.folder, students, set(self.graded()),
                                             [str(e) for e in m.get("exercises") or ()],
                                             complete=bool(m.get("complete")), fresh=False)
        return warnings


def refresh(out_dir, pages=None) -> list[str]:
    """Write the class's files again from the per-student files, without grading anyone.

    Raises GradebookError (no dlgrade output folder) and batch.BatchError (a run is writing to it).
    """
    with _Locked(out_dir, pages) as box:
        return box.rewrite()


def set_override(out_dir, student: str, exercise: str, points: float, note: str = "", pages=None):
    """Override one result and write the class's files again. Returns (override, warnings).

    Raises GradebookError, OverrideError (bad points, a malformed overrides.toml), BatchError.
    """
    with _Locked(out_dir, pages) as box:
        result = box.result(student, exercise)
        found = overrides_mod.load(box.path)
        fp = fingerprints_of(box.path, [student]).get(student) or ""
        o = overrides_mod.make(result, points, note, fingerprint=fp)
        found[o.key] = o
        overrides_mod.save(box.path, found)
        return o, box.rewrite()


def remove_override(out_dir, student: str, exercise: str, pages=None) -> list[str]:
    """Remove one override (the automatic score stands again). Returns warnings.

    Raises GradebookError when there is no such override, OverrideError, BatchError.
    """
    with _Locked(out_dir, pages) as box:
        found = overrides_mod.load(box.path)
        if (student, exercise) not in found:
            raise GradebookError(f"{box.path}: no override for student {student!r}, exercise {exercise!r}")
        del found[(student, exercise)]
        overrides_mod.save(box.path, found)
        return box.rewrite()


def review_items(out_dir) -> list:
    """The review queue of an output folder (dlgrade.graders.review.Item), open items first."""
    read_manifest(out_dir)
    found = overrides_mod.load(out_dir)
    reports, _ = decorate(out_dir, automatic_reports(out_dir))
    return review_mod.queue(reports, found, fingerprints_of(out_dir, [r.student for r in reports]))


def decide(out_dir, student: str, exercise: str, accept: bool, points: float | None = None, note: str = "",
           pages=None):
    """Accept or reject one review item: writes an override, then the class's files.
    Returns (override, warnings). Raises GradebookError, OverrideError, BatchError."""
    with _Locked(out_dir, pages) as box:
        result = box.result(student, exercise)
        found = overrides_mod.load(box.path)
        reports, _ = decorate(box.path, [box.report(student)])
        fp = fingerprints_of(box.path, [student]).get(student) or ""
        item = review_mod.find(review_mod.queue(reports, found, {student: fp}), student, exercise)
        o = review_mod.decide(item, result, accept, points, note, fingerprint=fp)
        found[o.key] = o
        overrides_mod.save(box.path, found)
        return o, box.rewrite()


def export(out_dir, specs: list[ExportSpec] | None = None, pages=None) -> tuple[list[Path], list[str]]:
    """Keep ``specs`` as the folder's exports (None: those it has) and write them.
    Returns (paths written, warnings). Raises GradebookError, BatchError."""
    with _Locked(out_dir, pages) as box:
        if specs is not None:
            set_exports(box.path, specs)
        current = export_specs(box.path)
        if not current:
            raise GradebookError(f"{box.path}: no export to write (name one with --export canvas|moodle|csv)")
        return [s.path(box.path) for s in current], box.rewrite()


def automatic_reports(out_dir) -> list[Report]:
    """Every graded student's automatic report (no override laid on), sorted by id."""
    from dlgrade.graders import batch

    out = []
    for sid, m in sorted((read_manifest(out_dir).get("students") or {}).items()):
        if not (isinstance(m, dict) and m.get("state") == "graded"):
            continue
        try:
            d = json.loads((Path(out_dir) / "students" / f"{sid}.json").read_text(encoding="utf-8"))
            out.append(batch.report_from_dict(d))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


__all__ = ["ExportSpec", "ClassExtras", "GradebookError", "decorate", "decorate_one", "class_extras", "finish",
           "write_exports", "refresh", "set_override", "remove_override", "review_items", "decide", "export",
           "names", "inputs_mtime", "export_specs", "set_exports", "read_manifest", "automatic_reports",
           "fingerprints_of"]
