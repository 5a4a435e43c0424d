"""LMS downloads: which layout a download has, and whose files are whose.

A download (a zip archive or a folder, read through :mod:`dlgrade.graders.archives`)
becomes an :class:`Intake`: one :class:`IntakeStudent` per student, keyed by
the LMS's own id, with the files dlgrade grades under flat names, and every
file that was not taken listed with its reason. :func:`materialize` writes it
as the folder-per-student layout ``dlgrade grade`` always reads, so resume,
fingerprints and atomic writes work the same for every source.

Layouts, as each LMS builds its download:

``canvas``
    "Download Submissions": flat files ``<name>_[late_]<user id>_<file id>_<file name>``,
    where ``<name>`` is the sortable name with every non-word character removed,
    lower-cased (Canvas's ``content_zipper``; older Canvas wrote ``smith--john-late_<id>``
    instead); a file re-uploaded under a name the
    student had used gets ``-1``, ``-2``... before its extension. Text entries
    and URLs come as ``<name>_<user id>_text.html`` / ``_link.html``. The student
    id is the Canvas user id.
``moodle``
    "Download all submissions": a folder per student
    ``<Full Name>_<participant id>_assignsubmission_file_/`` (or, with the
    "download as folders" preference off, files prefixed that way). The id is
    the participant id (the ``Participant <id>`` of the grading worksheet).
``gradescope``
    "Export Submissions": ``submission_metadata.yml`` and one
    ``submission_<id>/`` folder per submission; the metadata names the
    submitters (``:name:``, ``:sid:``, ``:email:``). The id is the SID, else
    the e-mail, else the submission folder.
``github-classroom``
    ``gh classroom clone student-repos``: ``<slug>-submissions/<slug>-<login>/``,
    one git working tree per student (the latest commit wins by construction).
    The id is the GitHub login.
``folder``
    One sub-folder or file per student, the id being its name (CONTRACT §2).

When a student has two files of the same name, the later upload wins (Canvas:
the higher file id; Gradescope: the later submission), else the shallower
path; the other is reported. A zip a student uploaded is opened (one level,
the same safety rules). Only submission files (``.py``, ``.ipynb``, ``.txt``,
``.tex``) are taken: everything else is reported as skipped.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml as _yaml

from dlgrade.graders.archives import (DEFAULT_LIMITS, ArchiveEntryError, ArchiveError, Entry, Limits, ReadBudget, Skipped,
                              ZipSource, junk_reason, open_source)
from dlgrade.graders.submission import SUFFIXES
from dlgrade.graders.errors import UserError

LAYOUTS = ("canvas", "moodle", "gradescope", "github-classroom", "folder")
LAYOUT_NAMES = {"canvas": "Canvas submissions download", "moodle": "Moodle assignment download",
                "gradescope": "Gradescope submissions export", "github-classroom": "GitHub Classroom repositories",
                "folder": "folder of submissions"}

# A student id becomes a folder and a file name: letters, digits, spaces and
# ._@+- only (the LMS's ids, logins and e-mail addresses; a class folder's names),
# starting with a letter or digit; anything else is refused rather than made a path.
SAFE_ID = re.compile(r"[^\W_](?:[\w .@+-]{0,126}[\w@+-])?")

CANVAS_FILE = re.compile(r"(?P<name>.+?)_(?:(?P<late>(?i:late))_)?(?P<uid>\d+)_(?P<aid>\d+)_(?P<file>.+)", re.S)
CANVAS_ANON_FILE = re.compile(r"(?:(?P<late>(?i:late))_)?(?P<uid>\d+)_(?P<aid>\d+)_(?P<file>.+)", re.S)
CANVAS_ENTRY = re.compile(r"(?:(?P<name>.+?)_)??(?:(?P<late>(?i:late))_)?(?P<uid>\d+)_(?P<kind>text|link)\.html")
CANVAS_RENAMED = re.compile(r"(?P<stem>.+)-(?P<n>\d+)(?P<ext>(?:\.[A-Za-z][A-Za-z0-9]*)*\.[A-Za-z0-9]+)?")
MOODLE_PREFIX = re.compile(r"(?P<name>.+)_(?P<id>\d+)_assign(?P<area>submission|feedback)_(?P<plugin>[a-z0-9]+)_"
                           r"(?P<rest>.*)", re.S)
GRADESCOPE_METADATA = "submission_metadata.yml"
GITHUB_SUFFIX = "-submissions"
MAX_METADATA_BYTES = 16 * 2**20

NOT_A_SUBMISSION = "not a submission file (dlgrade grades {suffixes})"
NOT_CANVAS = "not named like a Canvas submission (name_userid_fileid_filename)"
NOT_MOODLE = "not in a Moodle submission folder (Full Name_id_assignsubmission_file_)"
NOT_GRADESCOPE = f"not a submission listed in {GRADESCOPE_METADATA}"
SUPERSEDED = "{taken} was taken instead (a later upload, or a shallower path, with the same name)"
TOO_LARGE = "too large ({size} bytes; the limit is {limit})"
UNSAFE_ID = "the id {id!r} cannot name a student folder safely"
HIDDEN = "a hidden file or folder"


class LayoutError(UserError):
    """The download cannot be read as the layout named or detected (a usage error, exit 2)."""


@dataclass
class IntakeStudent:
    """One student of a download: what dlgrade grades of theirs, and what the LMS says."""

    id: str
    name: str = ""
    email: str = ""
    late: bool = False
    submitted_at: str = ""
    files: dict[str, Entry] = field(default_factory=dict)  # flat name -> entry
    origins: dict[str, str] = field(default_factory=dict)  # flat name -> path in the download
    _rank: dict[str, tuple] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        d = {"name": self.name, "email": self.email, "late": self.late, "submitted_at": self.submitted_at,
             "files": dict(sorted(self.origins.items()))}
        return {k: v for k, v in d.items() if v not in ("", False)} | {"files": d["files"]}


@dataclass
class Intake:
    """A download read as one layout: the students and every file that was not taken."""

    layout: str
    source: str
    students: dict[str, IntakeStudent] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    closer: object = field(default=None, repr=False, compare=False)  # the open source, until materialized

    def student(self, sid: str) -> IntakeStudent:
        if sid not in self.students:
            self.students[sid] = IntakeStudent(sid)
        return self.students[sid]

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append(Skipped(path, reason))

    def to_dict(self) -> dict:
        return {"layout": self.layout, "source": self.source,
                "students": {sid: s.to_dict() for sid, s in sorted(self.students.items())},
                "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
                "warnings": list(self.warnings)}

    def summary(self) -> str:
        """``canvas download: 38 students (3 late), 12 files skipped``."""
        n = len(self.students)
        late = sum(s.late for s in self.students.values())
        text = f"{LAYOUT_NAMES[self.layout]}: {n} student{'s' if n != 1 else ''}"
        if late:
            text += f" ({late} late)"
        if self.skipped:
            text += f", {len(self.skipped)} file{'s' if len(self.skipped) != 1 else ''} skipped"
        return text


# --------------------------------------------------------------------------- detection


def _top(paths: list[str]) -> tuple[set[str], set[str]]:
    """(top-level files, top-level folders) of a list of entry paths."""
    files, dirs = set(), set()
    for p in paths:
        head, sep, _ = p.partition("/")
        (dirs if sep else files).add(head)
    return files, dirs


def detect_paths(paths: list[str], label: str = "") -> str:
    """The layout a list of entry paths has (``folder`` when none fits)."""
    files, dirs = _top(paths)
    if GRADESCOPE_METADATA in files:
        return "gradescope"
    names = files | dirs
    if not names:
        return "folder"
    moodle = sum(bool(MOODLE_PREFIX.fullmatch(n)) for n in names)
    if moodle and moodle * 2 >= len(names):
        return "moodle"
    canvas = sum(bool(_canvas_match(n)) for n in files)
    if canvas and canvas * 2 >= len(names):
        return "canvas"
    with_git = {p.split("/", 1)[0] for p in paths if p.count("/") >= 1 and p.split("/")[1] in (".git", ".github")}
    if dirs and (len(with_git & dirs) * 2 >= len(dirs) or (label.endswith(GITHUB_SUFFIX) and with_git)):
        return "github-classroom"
    return "folder"


def _unwrap(paths: list[str], label: str, zip_folder: bool) -> tuple[str, str, str]:
    """(prefix, label, layout): a single folder wrapping the whole download is looked
    into when the layout is recognisable only inside it. A zip of a plain class
    folder (``class/ada/...``) is unwrapped too when it holds sub-folders (the students)."""
    prefix, layout = "", detect_paths(paths, label)
    while layout == "folder":
        files, dirs = _top(paths)
        if files or len(dirs) != 1:
            break
        (head,) = dirs
        inner = [p.split("/", 1)[1] for p in paths]
        inner_layout = detect_paths(inner, head)
        if inner_layout == "folder" and not (zip_folder and any("/" in p for p in inner)):
            break
        prefix, label, paths, layout = prefix + head + "/", head, inner, inner_layout
    return prefix, label, layout


def _prefix_for(paths: list[str], layout: str, label: str) -> tuple[str, str]:
    """Where a named layout starts: under the single folders that wrap it, if any."""
    prefix, top_label = "", label
    while detect_paths(paths, label) != layout:
        files, dirs = _top(paths)
        if files or len(dirs) != 1:
            return "", top_label  # read from the top, as named
        (head,) = dirs
        paths = [p.split("/", 1)[1] for p in paths]
        prefix, label = prefix + head + "/", head
    return prefix, label


def detect(path, limits: Limits = DEFAULT_LIMITS) -> str:
    """The layout of the download at ``path`` (a zip archive or a folder).

    Raises ArchiveError when it cannot be read safely.
    """
    with open_source(Path(path), limits) as src:
        paths = [e.path for e in src.entries] + [f"{d}/" for d in src.pruned]
        return _unwrap(paths, _label(Path(path)), Path(path).is_file())[2]


def _label(path: Path) -> str:
    return path.stem if path.is_file() else path.name


# --------------------------------------------------------------------------- reading


def read(path, layout: str | None = None, limits: Limits = DEFAULT_LIMITS) -> Intake | None:
    """The download at ``path`` as an :class:`Intake`, or None when it is a plain folder
    of submissions (the ``folder`` layout on a folder: batch grading reads it as it is).

    ``layout`` names the layout (one of LAYOUTS); None detects it. Nested zips
    are opened now; the other files are read when the intake is materialized.
    Raises LayoutError or ArchiveError (both usage errors).
    """
    path = Path(path)
    if layout is not None and layout not in LAYOUTS:
        raise LayoutError(f"unknown layout {layout!r} (one of {', '.join(LAYOUTS)})")
    if path.is_dir() and layout == "folder":
        return None
    budget = ReadBudget(limits.max_read_bytes)
    src = open_source(path, limits, budget)
    try:
        # Folders seen but not walked (a repository's .git) still tell the layout.
        paths = [e.path for e in src.entries] + [f"{d}/" for d in src.pruned]
        prefix, label, found = _unwrap(paths, _label(path), path.is_file())
        if layout is None and found == "folder" and path.is_dir():
            src.close()
            return None
        if layout is not None and layout != found:
            prefix, label = _prefix_for(paths, layout, _label(path))
        layout = layout or found
        intake = Intake(layout=layout, source=str(path), skipped=list(src.skipped))
        entries = []
        for e in src.entries:
            if e.path.startswith(prefix):
                entries.append(_Rel(e, e.path[len(prefix):]))
            else:
                intake.skip(e.path, f"outside the {LAYOUT_NAMES[layout]} ({prefix})")
        READERS[layout](intake, entries, label, limits, budget)
        if not intake.students:
            how = "detected" if layout == found else "named with --layout"
            raise LayoutError(f"{path}: no student found in it as a {LAYOUT_NAMES[layout]} ({how})")
    except BaseException:
        src.close()
        raise
    intake.closer = src
    return intake


@dataclass(frozen=True)
class _Rel:
    """An entry and its path relative to the layout's root."""

    entry: Entry
    rel: str

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.rel.split("/"))


def _unwanted(intake: Intake, path: str, parts: tuple[str, ...], reported: set[str]) -> bool:
    """Skip what no student wrote (archiver junk, hidden files and folders), reporting a
    folder once. ``path`` is the entry's path in the download, ending with ``parts``."""
    from dlgrade.graders.archives import JUNK_DIRS, JUNK_FILES

    base = path[: len(path) - len("/".join(parts))]
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        junk = (p in JUNK_DIRS and not last) or (last and (p in JUNK_FILES or p.startswith("._")))
        if junk or p.startswith("."):
            key = base + "/".join(parts[: i + 1]) + ("" if last else "/")
            if key not in reported:
                reported.add(key)
                intake.skip(key, junk_reason(p) if junk or p in JUNK_DIRS else HIDDEN)
            return True
    return False


def _add_file(intake: Intake, st: IntakeStudent, name: str, entry: Entry, origin: str, rank: tuple,
              limits: Limits, budget: ReadBudget, nested: bool = False) -> None:
    """Offer one of a student's files under ``name``; of two files with one name the
    better ``rank`` (a later upload, else a shallower path) is kept, the other reported."""
    if name.lower().endswith(".zip") and not nested:
        _add_nested_zip(intake, st, entry, origin, rank, limits, budget)
        return
    if os.path.splitext(name)[1] not in SUFFIXES:
        intake.skip(origin, NOT_A_SUBMISSION.format(suffixes=", ".join(SUFFIXES)))
        return
    if entry.size > limits.max_file_bytes:
        intake.skip(origin, TOO_LARGE.format(size=entry.size, limit=limits.max_file_bytes))
        return
    old = st._rank.get(name)
    if old is not None and old >= rank:
        intake.skip(origin, SUPERSEDED.format(taken=st.origins[name]))
        return
    if old is not None:
        intake.skip(st.origins[name], SUPERSEDED.format(taken=origin))
    st.files[name], st.origins[name], st._rank[name] = entry, origin, rank


def _add_nested_zip(intake: Intake, st: IntakeStudent, entry: Entry, origin: str, rank: tuple,
                    limits: Limits, budget: ReadBudget) -> None:
    """A zip the student uploaded: its submission files join theirs (one level deep)."""
    if entry.size > limits.max_nested_bytes:
        intake.skip(origin, TOO_LARGE.format(size=entry.size, limit=limits.max_nested_bytes))
        return
    try:
        inner = ZipSource(entry.read(), origin, limits, budget)
    except ArchiveEntryError as exc:
        intake.skip(origin, str(exc).split(": ", 1)[-1])
        return
    except ArchiveError as exc:
        if budget.used > budget.limit:
            raise  # the download as a whole is over its budget
        intake.skip(origin, "a zip the student uploaded, not opened: " + str(exc).split(": refused: ", 1)[-1])
        return
    intake.skipped += [Skipped(f"{origin}/{s.path}", s.reason) for s in inner.skipped]
    reported: set[str] = set()
    for e in inner.entries:
        parts = tuple(e.path.split("/"))
        where = f"{origin}/{e.path}"
        if not _unwanted(intake, where, parts, reported):
            _add_file(intake, st, parts[-1], e, where, rank + (-len(parts),), limits, budget, nested=True)
    # the inner archive is in memory and stays open: its entries are read when materialized


# --------------------------------------------------------------------------- canvas


def _canvas_match(name: str):
    m = CANVAS_FILE.fullmatch(name)
    if m and m.group("name").lower() == "late" and not m.group("late"):
        m = None  # anonymous and late: "late_<user id>_<file id>_<name>"
    return m or CANVAS_ANON_FILE.fullmatch(name) or CANVAS_ENTRY.fullmatch(name)


def canvas_original_name(display_name: str) -> str:
    """The name a student gave a file before Canvas made it unique (``softmax-1.py`` -> ``softmax.py``)."""
    m = CANVAS_RENAMED.fullmatch(display_name)
    return m.group("stem") + (m.group("ext") or "") if m else display_name


def _read_canvas(intake: Intake, entries: list[_Rel], label: str, limits: Limits, budget: ReadBudget) -> None:
    reported: set[str] = set()
    for e in entries:
        parts = e.parts
        if _unwanted(intake, e.entry.path, parts, reported):
            continue
        m = _canvas_match(parts[0]) if len(parts) == 1 else None
        if m is None:
            intake.skip(e.entry.path, NOT_CANVAS)
            continue
        groups = m.groupdict()
        st = intake.student(m.group("uid"))
        name, late = groups.get("name") or "", bool(groups.get("late"))
        if name.lower().endswith("-late"):  # Canvas before 2017: "smith--john-late_<user id>_..."
            name, late = name[: -len("-late")], True
        st.name = st.name or name
        st.late = st.late or late
        if groups.get("kind"):
            what = "a text entry" if groups["kind"] == "text" else "a website URL"
            intake.skip(e.entry.path, f"{what} submitted on Canvas, not a file: not graded")
            continue
        _add_file(intake, st, canvas_original_name(m.group("file")), e.entry, e.entry.path,
                  (int(m.group("aid")),), limits, budget)


# --------------------------------------------------------------------------- moodle


def _read_moodle(intake: Intake, entries: list[_Rel], label: str, limits: Limits, budget: ReadBudget) -> None:
    reported: set[str] = set()
    for e in entries:
        parts = e.parts
        m = MOODLE_PREFIX.fullmatch(parts[0])
        if m is None:
            if not _unwanted(intake, e.entry.path, parts, reported):
                intake.skip(e.entry.path, NOT_MOODLE)
            continue
        st = intake.student(m.group("id"))
        if m.group("name") != "Participant":  # blind marking hides the name
            st.name = st.name or m.group("name")
        # "..._file_/hw/softmax.py" (a folder per student) or "..._file_softmax.py" (flat)
        inner = ((m.group("rest"),) if m.group("rest") else ()) + parts[1:]
        if not inner or _unwanted(intake, e.entry.path, inner, reported):
            continue
        if m.group("area") != "submission" or m.group("plugin") != "file":
            what = "online text" if m.group("plugin") == "onlinetext" else f"content of the {m.group('plugin')} plugin"
            intake.skip(e.entry.path, f"{what}, not an uploaded file: not graded")
            continue
        _add_file(intake, st, inner[-1], e.entry, e.entry.path, (-len(inner),), limits, budget)


# --------------------------------------------------------------------------- gradescope


def _metadata(intake: Intake, entries: list[_Rel]) -> dict:
    meta = next((e for e in entries if e.rel == GRADESCOPE_METADATA), None)
    if meta is None:
        raise LayoutError(f"{intake.source}: no {GRADESCOPE_METADATA} (the file Gradescope's export puts "
                          "beside the submission folders)")
    if meta.entry.size > MAX_METADATA_BYTES:
        raise LayoutError(f"{intake.source}: {GRADESCOPE_METADATA} is too large ({meta.entry.size} bytes; "
                          f"the limit is {MAX_METADATA_BYTES})")
    try:
        text = meta.entry.read(MAX_METADATA_BYTES).decode("utf-8", "replace")
    except (ArchiveEntryError, OSError) as exc:
        raise LayoutError(f"{intake.source}: {GRADESCOPE_METADATA} cannot be read ({exc})") from None
    try:
        doc = _yaml.load(text, Loader=_RubyTolerantLoader)  # a SafeLoader: nothing is constructed or run
    except _yaml.YAMLError as exc:
        raise LayoutError(f"{intake.source}: {GRADESCOPE_METADATA} is not valid YAML "
                          f"({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise LayoutError(f"{intake.source}: {GRADESCOPE_METADATA} does not map submissions to submitters")
    return doc


def _plain(d):
    """Ruby's YAML keys are symbols (``:sid``): the same keys without the colon."""
    if isinstance(d, dict):
        return {str(k).lstrip(":"): _plain(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_plain(v) for v in d]
    return d


def _read_gradescope(intake: Intake, entries: list[_Rel], label: str, limits: Limits, budget: ReadBudget) -> None:
    doc = _metadata(intake, entries)
    owners: dict[str, list[str]] = {}  # submission key -> the ids of its submitters
    kept: dict[str, tuple] = {}  # student id -> (time, key) of their latest submission
    records = []
    for key, record in doc.items():
        record = _plain(record) if isinstance(record, dict) else {}
        records.append((_timestamp(record.get("created_at")), str(key), record))
    for when, key, record in sorted(records, key=lambda r: (r[0], r[1])):  # latest last: it wins
        owners[key] = []
        for person in record.get("submitters") or ():
            if not isinstance(person, dict):
                continue
            sid = _gradescope_id(person, key)
            if sid is None:
                intake.skip(key + "/", UNSAFE_ID.format(id=str(person.get("sid") or person.get("email") or key)))
                continue
            if sid in kept:
                earlier = kept[sid][1]
                owners[earlier].remove(sid)
                intake.skip(earlier + "/", f"an earlier submission of {sid} ({key} is later)")
            kept[sid] = (when, key)
            owners[key].append(sid)
            st = intake.student(sid)
            st.name, st.email = str(person.get("name") or ""), str(person.get("email") or "")
            st.submitted_at = _iso(record.get("created_at"))
    reported: set[str] = set()
    for e in entries:
        parts = e.parts
        if e.rel == GRADESCOPE_METADATA or _unwanted(intake, e.entry.path, parts, reported):
            continue
        key = parts[0] if len(parts) > 1 else os.path.splitext(parts[0])[0]
        if not owners.get(key):
            if key not in owners:
                intake.skip(e.entry.path, NOT_GRADESCOPE)
            continue
        for sid in owners[key]:
            _add_file(intake, intake.students[sid], parts[-1], e.entry, e.entry.path, (-len(parts),),
                      limits, budget)


def _gradescope_id(person: dict, key: str) -> str | None:
    for value in (person.get("sid"), person.get("email")):
        text = str(value).strip() if value is not None else ""
        if text and SAFE_ID.fullmatch(text):
            return text
    return key if SAFE_ID.fullmatch(key) else None


def _timestamp(value) -> float:
    """Seconds since the epoch of a Gradescope time (YAML gives a datetime or a string); 0 when unknown."""
    from datetime import datetime, timezone

    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    text = re.sub(r"(\.\d{6})\d+", r"\1", str(value or "").strip())
    for fmt in ("%Y-%m-%d %H:%M:%S.%f %z", "%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(text, fmt).timestamp()
        except ValueError:
            continue
    return 0.0


def _iso(value) -> str:
    from datetime import datetime

    return value.isoformat() if isinstance(value, datetime) else str(value or "")


class _RubyTolerantLoader(_yaml.SafeLoader):
    """PyYAML's SafeLoader, reading Ruby's tagged values (``!ruby/object:BigDecimal``)
    as the plain scalars, lists and maps they are written as, instead of failing."""


def _untagged(loader, suffix, node):
    if isinstance(node, _yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, _yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_RubyTolerantLoader.add_multi_constructor("!", _untagged)


# --------------------------------------------------------------------------- github classroom


def _read_github(intake: Intake, entries: list[_Rel], label: str, limits: Limits, budget: ReadBudget) -> None:
    repos = sorted({e.parts[0] for e in entries if len(e.parts) > 1})
    slug = label[: -len(GITHUB_SUFFIX)] if label.endswith(GITHUB_SUFFIX) else _common_slug(repos)
    reported: set[str] = set()
    for e in entries:
        parts = e.parts
        if _unwanted(intake, e.entry.path, parts, reported):
            continue
        if len(parts) == 1:
            intake.skip(e.entry.path, "not inside a student's repository")
            continue
        repo = parts[0]
        login = repo[len(slug) + 1:] if slug and repo.startswith(slug + "-") and len(repo) > len(slug) + 1 else repo
        if not SAFE_ID.fullmatch(login):
            intake.skip(e.entry.path, UNSAFE_ID.format(id=login))
            continue
        _add_file(intake, intake.student(login), parts[-1], e.entry, e.entry.path, (-len(parts),), limits, budget)
    odd = sorted(r for r in repos if slug and not r.startswith(slug + "-"))
    if odd:
        intake.warnings.append(f"repositories not named {slug}-<login>, graded under their own name: "
                               + ", ".join(odd[:10]) + (" ..." if len(odd) > 10 else ""))


def _common_slug(repos: list[str]) -> str:
    """The assignment slug GitHub Classroom put before every login (``hw1`` of ``hw1-ada``)."""
    if len(repos) < 2:
        return ""
    prefix = os.path.commonprefix(repos)
    cut = prefix.rfind("-")
    return prefix[:cut] if cut > 0 else ""


# --------------------------------------------------------------------------- folder (inside an archive)


def _read_folder(intake: Intake, entries: list[_Rel], label: str, limits: Limits, budget: ReadBudget) -> None:
    reported: set[str] = set()
    for e in entries:
        parts = e.parts
        if _unwanted(intake, e.entry.path, parts, reported):
            continue
        sid = parts[0] if len(parts) > 1 else os.path.splitext(parts[0])[0]
        if len(parts) == 1 and os.path.splitext(parts[0])[1] not in SUFFIXES:
            intake.skip(e.entry.path, NOT_A_SUBMISSION.format(suffixes=", ".join(SUFFIXES)))
            continue
        if not SAFE_ID.fullmatch(sid):
            intake.skip(e.entry.path, UNSAFE_ID.format(id=sid))
            continue
        _add_file(intake, intake.student(sid), parts[-1], e.entry, e.entry.path, (-len(parts),), limits, budget)


READERS = {"canvas": _read_canvas, "moodle": _read_moodle, "gradescope": _read_gradescope,
           "github-classroom": _read_github, "folder": _read_folder}


# --------------------------------------------------------------------------- materializing


def materialize(intake: Intake, dest) -> Path:
    """Write the intake as one folder per student under ``dest`` (replacing what was
    there in one rename) and return ``dest``. A file that cannot be read is reported
    in ``intake.skipped``. Raises ArchiveError (the download as a whole is unsafe)."""
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.new-{os.getpid()}")
    old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
    for stale in dest.parent.glob(f".{dest.name}.*-*"):
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        for sid, st in sorted(intake.students.items()):
            folder = tmp / sid
            folder.mkdir()
            for name, entry in sorted(st.files.items()):
                try:
                    data = entry.read()
                except (ArchiveEntryError, OSError) as exc:
                    intake.skip(st.origins[name], f"cannot be read ({getattr(exc, 'strerror', None) or exc})")
                    continue
                (folder / name).write_bytes(data)
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
    finally:
        if intake.closer is not None:
            intake.closer.close()
            intake.closer = None
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return dest


def write_intake_json(intake: Intake, path) -> None:
    """``intake.json``: the layout, every student with the files taken, every file skipped."""
    from dlgrade.graders.batch import atomic_write

    data = (json.dumps(intake.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    try:
        if Path(path).read_bytes() == data:
            return  # unchanged: the students' pages need not be rendered again
    except OSError:
        pass
    atomic_write(Path(path), data)


def load_intake_json(path) -> dict:
    """The ``intake.json`` of an output folder, or an empty record."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


__all__ = ["LAYOUTS", "Intake", "IntakeStudent", "LayoutError", "detect", "detect_paths", "read", "materialize",
           "canvas_original_name", "write_intake_json", "load_intake_json", "SAFE_ID"]
