"""LMS downloads built the way each LMS builds them, from one demo class; and the LMSs' readers.

The demo class (``DEMO``): an on-time correct submission, a resubmission (the
latest is the right one), a late one, a notebook with a PDF beside it, a
copy of another student's code with the names and comments changed, a
text-entry-only submission, and a student on the roster who submitted
nothing; names with accents, apostrophes and spaces.

Builders follow each LMS's own code (see graders/layouts.py for the sources):
Canvas's ``content_zipper`` (``[sortable name, LATE, user id].join('_')`` with
non-word characters removed and lower-cased, then ``_<attachment id>_<display
name>``, a re-upload of a name renamed ``-1`` by ``make_unique_filename``),
Moodle's ``download_submissions`` (``str_replace('_', ' ', fullname)``,
``clean_filename``, ``_assignsubmission_file_`` then the file path), Gradescope's
"Export Submissions" (``assignment_<id>_export/`` with a Ruby-YAML
``submission_metadata.yml``), ``gh classroom clone student-repos``
(``<slug>-submissions/<slug>-<login>/``, real git repositories).

The readers mimic how each LMS reads a grade file back: Canvas's
``GradebookImporter`` and Moodle's ``assignfeedback_offline_grade_importer``.
"""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ADA_SOFTMAX = '''\
import numpy as np


def softmax(z, axis=-1):
    """Numerically stable softmax along ``axis``."""
    # Subtract the maximum of each slice: exp() of the largest entry is then exp(0) = 1.
    largest = np.max(z, axis=axis, keepdims=True)
    shifted = z - largest
    # Masked classes (-inf) give exp(-inf) = 0, which is what we want.
    exponentials = np.exp(shifted)
    totals = np.sum(exponentials, axis=axis, keepdims=True)
    result = exponentials / totals
    if result.dtype != z.dtype and np.issubdtype(z.dtype, np.floating):
        result = result.astype(z.dtype)
    return result
'''

# Eli's copy of Ada's: other names, other comments, other spacing. Same code.
ELI_SOFTMAX = '''\
import numpy as np

def softmax(x, axis = -1):
    """my softmax"""
    m = np.max(x, axis=axis, keepdims=True)   # the max
    d = x - m
    ex = np.exp(d)
    s = np.sum(ex, axis=axis, keepdims=True)
    out = ex / s
    if out.dtype != x.dtype and np.issubdtype(x.dtype, np.floating):
        out = out.astype(x.dtype)
    return out
'''

WRONG_AXIS_SOFTMAX = '''\
import numpy as np


def softmax(z, axis=-1):
    shifted = z - np.max(z, axis=0, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=0, keepdims=True)
'''

LOOPS_SOFTMAX = '''\
import numpy as np


def softmax(z, axis=-1):
    z = np.moveaxis(np.asarray(z), axis, -1)
    out = np.empty_like(z)
    for idx in np.ndindex(z.shape[:-1]):
        row = z[idx]
        m = row.max()
        e = np.exp(row - m)
        out[idx] = e / e.sum()
    return np.moveaxis(out, -1, axis)
'''

LOGSUMEXP_SOFTMAX = '''\
import numpy as np


def logsumexp(z, axis):
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))


def softmax(z, axis=-1):
    return np.exp(z - logsumexp(z, axis))
'''

NAIVE_SOFTMAX = '''\
import numpy as np


def softmax(z, axis=-1):
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)
'''


def notebook(*cells: str) -> str:
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                                  "source": c.splitlines(keepends=True)} for c in cells],
                       "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
                       "nbformat": 4, "nbformat_minor": 5}, indent=1)


@dataclass
class DemoStudent:
    first: str
    last: str
    canvas_id: int
    moodle_id: int
    login: str  # GitHub
    sid: str  # Gradescope
    email: str
    section: str
    attempts: list[dict[str, str]] = field(default_factory=list)  # each: file name -> content
    late: bool = False
    text_entry: str = ""  # an online text submission instead of files

    @property
    def full_name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def sortable_name(self) -> str:
        return f"{self.last}, {self.first}"

    @property
    def latest(self) -> dict[str, str]:
        return self.attempts[-1] if self.attempts else {}


DEMO = [
    DemoStudent("Ada", "Lovelace", 1001, 2001, "ada-lovelace", "S1001", "ada@uni.example", "A",
                [{"softmax.py": ADA_SOFTMAX, "sigmoid_bce_grad.txt": "sigmoid(z) - y\n"}]),
    DemoStudent("José", "Müller", 1002, 2002, "jose-muller", "S1002", "jose@uni.example", "A",
                [{"softmax.py": WRONG_AXIS_SOFTMAX, "sigmoid_bce_grad.txt": "p*(1-p)\n"},
                 {"softmax.py": LOOPS_SOFTMAX, "sigmoid_bce_grad.txt": "\\sigma(z) - y\n"}]),
    DemoStudent("Zoë", "O'Brien-Smith", 1003, 2003, "zoe-obrien", "S1003", "zoe@uni.example", "B",
                [{"softmax.py": NAIVE_SOFTMAX}], late=True),
    DemoStudent("Ben", "Ng", 1004, 2004, "ben-ng", "S1004", "ben@uni.example", "B"),  # nothing submitted
    DemoStudent("Wei", "Chen", 1005, 2005, "chenwei", "S1005", "wei@uni.example", "A",
                [{"homework 1.ipynb": notebook("%matplotlib inline\nimport numpy as np", LOGSUMEXP_SOFTMAX),
                  "notes.pdf": "%PDF-1.4 not code"}]),
    DemoStudent("Eli", "Ha", 1006, 2006, "eli-ha", "S1006", "eli@uni.example", "B",
                [{"softmax.py": ELI_SOFTMAX, "sigmoid_bce_grad.txt": "1/(1+exp(-z)) - y\n"}]),
    DemoStudent("Dana", "Scully", 1007, 2007, "dana-scully", "S1007", "dana@uni.example", "A",
                text_entry="<p>softmax = exp / sum exp</p>"),
]
SUBMITTERS = [s for s in DEMO if s.attempts or s.text_entry]
NON_SUBMITTERS = [s for s in DEMO if not (s.attempts or s.text_entry)]


class _Utf8NoFlag(zipfile.ZipInfo):
    """A name written as UTF-8 bytes without the language-encoding flag (0x800)."""

    __slots__ = ()

    def _encodeFilenameFlags(self):
        return self.filename.encode("utf-8"), self.flag_bits & ~0x800


def _zip(path: Path, files: list[tuple[str, bytes]], utf8_flag: bool = True) -> Path:
    """A zip of ``files`` (name, bytes). ``utf8_flag=False`` writes UTF-8 names without the
    language-encoding flag, as rubyzip does by default."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            info = (zipfile.ZipInfo if utf8_flag or name.isascii() else _Utf8NoFlag)(name, date_time=(2024, 3, 1, 12, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o100644 << 16
            info.create_system = 3
            z.writestr(info, data)
    return path


# --------------------------------------------------------------------------- Canvas


def canvas_user_name(sortable_name: str) -> str:
    """``content_zipper``: sortable name, ``_<digits>_`` unwrapped; then every non-word
    character removed and the whole lower-cased (``get_filename``)."""
    name = re.sub(r"_(\d+)_", r"\1", sortable_name)
    return name


def canvas_filename(s: DemoStudent, attachment_id: int, display_name: str) -> str:
    parts = [canvas_user_name(s.sortable_name)] + (["LATE"] if s.late else []) + [str(s.canvas_id)]
    prefix = re.sub(r"[^\w]", "", "_".join(parts)).lower()  # [^[[:word:]]] in Ruby
    return f"{prefix}_{attachment_id}_{display_name}"


def canvas_zip(dest: Path, students=DEMO, utf8_flag: bool = False) -> Path:
    """Canvas's "Download Submissions" zip of the demo class (only each student's latest attempt)."""
    files = []
    attachment_id = 50000
    for s in students:
        folder: set[str] = set()  # the student's "Submissions" folder: a re-upload is renamed
        latest = []
        for attempt in s.attempts:
            latest = []
            for name, text in attempt.items():
                attachment_id += 1
                display = _canvas_unique(name, folder)
                folder.add(display)
                latest.append((attachment_id, display, text))
        for aid, display, text in latest:
            files.append((canvas_filename(s, aid, display), text.encode("utf-8")))
        if s.text_entry:
            prefix = re.sub(r"[^\w]", "", "_".join([canvas_user_name(s.sortable_name), str(s.canvas_id)])).lower()
            files.append((f"{prefix}_text.html", f"<html><body>{s.text_entry}</body></html>".encode()))
    return _zip(dest, files, utf8_flag=utf8_flag)


def _canvas_unique(name: str, existing: set[str]) -> str:
    """``Attachment.make_unique_filename``: ``name-1.ext``, ``name-2.ext``... when taken."""
    if name not in existing:
        return name
    stem, dot, ext = name.rpartition(".")
    stem, ext = (stem, dot + ext) if dot else (name, "")
    n = 1
    while f"{stem}-{n}{ext}" in existing:
        n += 1
    return f"{stem}-{n}{ext}"


def canvas_gradebook_csv(students=DEMO, assignment: str = "Homework 1 (4567)") -> str:
    """Canvas's gradebook export, used as the roster."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment, "Current Score"])
    w.writerow(["    Points Possible", "", "", "", "", "10", "(read only)"])
    for s in students:
        w.writerow([s.sortable_name, s.canvas_id, s.sid, s.login, s.section, "", ""])
    return buf.getvalue()


def read_canvas_import(text: str) -> dict:
    """How Canvas's GradebookImporter reads a gradebook CSV: the header must start with
    Student / ID and end the student columns with Section; a row starting with
    "Points Possible" gives the points; students are matched by the ID column;
    an assignment column is "Title (id)" (or a bare title)."""
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert len(header) > 3 and "Student" in header[0] and "ID" in header[1], header
    cols = 3
    if re.search(r"SIS\s+Login\s+ID", header[2]):
        cols += 1
    elif re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3]):
        cols += 2
    assert "Section" in header[cols - 1], header
    assignments = []
    for i, h in enumerate(header[cols:], start=cols):
        if re.search(r"Current Score|Current Points|Current Grade|Final Score|Final Points|Final Grade", h):
            continue
        m = re.match(r"(.*)\s+\((\d+)\)\s*$", h)
        assignments.append({"index": i, "title": m.group(1) if m else h, "id": m.group(2) if m else None})
    points_possible, students = {}, {}
    for row in rows[1:]:
        if row and "Points Possible" in row[0]:
            points_possible = {a["title"]: row[a["index"]] for a in assignments}
            continue
        if all(re.fullmatch(r"\s*(Muted|Manual Posting.*)?\s*", c or "", re.I) for c in row):
            continue
        students[row[1]] = {"name": row[0], "sis_user_id": row[2], "sis_login_id": row[3],
                            "section": row[cols - 1],
                            "grades": {a["title"]: row[a["index"]].strip() for a in assignments}}
    return {"assignments": assignments, "points_possible": points_possible, "students": students}


# --------------------------------------------------------------------------- Moodle


def moodle_clean_filename(text: str) -> str:
    """Moodle's ``clean_filename`` (PARAM_FILE): control characters and &<>"`|':\\/ removed."""
    return re.sub(r"[\x00-\x1f\x7f&<>\"`|':\\/]", "", text)


def moodle_prefix(s: DemoStudent, blind: bool = False) -> str:
    who = "Participant" if blind else s.full_name.replace("_", " ")
    return moodle_clean_filename(f"{who}_{s.moodle_id}")


def moodle_zip(dest: Path, students=DEMO, folders: bool = True, blind: bool = False) -> Path:
    """Moodle's "Download all submissions" of the demo class (the latest files of each)."""
    files = []
    for s in students:
        prefix = moodle_prefix(s, blind)
        for name, text in s.latest.items():
            path = (f"{prefix}_assignsubmission_file_/{name}" if folders
                    else moodle_clean_filename(f"{prefix}_assignsubmission_file_{name}"))
            files.append((path, text.encode("utf-8")))
        if s.text_entry:
            path = (f"{prefix}_assignsubmission_onlinetext_/onlinetext.html" if folders
                    else f"{prefix}_assignsubmission_onlinetext_onlinetext.html")
            files.append((path, s.text_entry.encode()))
    return _zip(dest, files, utf8_flag=True)


def moodle_folder(dest: Path, students=DEMO) -> Path:
    """The same download, unzipped (what an instructor grades after extracting it)."""
    import shutil

    tmp = dest.with_suffix(".zip")
    moodle_zip(tmp, students)
    with zipfile.ZipFile(tmp) as z:
        z.extractall(dest)
    tmp.unlink()
    shutil.rmtree(dest / "__MACOSX", ignore_errors=True)
    return dest


def moodle_worksheet(students=DEMO) -> str:
    """Moodle's grading worksheet, used as the roster."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"])
    for s in students:
        w.writerow([f"Participant {s.moodle_id}", s.full_name, s.email,
                    "Submitted for grading" if s.attempts else "No submission", "", "100.00", "Yes", "-", "-", ""])
    return buf.getvalue()


def read_moodle_import(text: str) -> dict:
    """How Moodle's offline grading importer reads a worksheet: the "Identifier", "Grade" and
    "Last modified (grade)" columns must all exist; the id is the Identifier after
    "Participant "; an empty grade is skipped; the modification time goes through strtotime."""
    from datetime import datetime

    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    id_i, grade_i, mod_i = header.index("Identifier"), header.index("Grade"), header.index("Last modified (grade)")
    out = {}
    for row in rows[1:]:
        ident = row[id_i]
        assert ident.startswith("Participant "), ident
        uid = ident[len("Participant "):]
        grade = row[grade_i]
        if grade == "":
            out[uid] = None
            continue
        modified = datetime.fromisoformat(row[mod_i])  # strtotime reads ISO 8601
        out[uid] = {"grade": float(grade.replace(",", ".")), "modified": modified,
                    "max": float(row[header.index("Maximum Grade")])}
    return out


# --------------------------------------------------------------------------- Gradescope


def gradescope_zip(dest: Path, students=DEMO, assignment_id: int = 777) -> Path:
    """Gradescope's "Export Submissions": the active submission of each student, and the
    metadata file as Ruby writes it (symbol keys, nanosecond times)."""
    root = f"assignment_{assignment_id}_export"
    files, meta = [], ["---"]
    sub_id = 9000
    for n, s in enumerate(students):
        if not s.attempts:
            continue
        sub_id += 1
        key = f"submission_{sub_id}"
        for name, text in s.latest.items():
            files.append((f"{root}/{key}/{name}", text.encode("utf-8")))
        hour = 10 + n
        meta += [f"{key}:", "  :submitters:", f"  - :name: {_yaml_str(s.full_name)}", f"    :sid: '{s.sid}'",
                 f"    :email: {s.email}", f"  :created_at: 2024-03-0{1 + s.late} {hour}:00:00.123456789 -08:00",
                 "  :score: !ruby/object:BigDecimal 18:0.0e0", "  :status: processed"]
        if len(s.attempts) > 1:
            meta += ["  :history:", f"  - :id: {sub_id + 500}",
                     f"    :created_at: 2024-02-28 09:00:00.000000000 -08:00", "    :score: 2.0", "    :active: false"]
        else:
            meta += ["  :history: []"]
    files.insert(0, (f"{root}/submission_metadata.yml", ("\n".join(meta) + "\n").encode("utf-8")))
    return _zip(dest, files)


def _yaml_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'" if any(c in text for c in ":'#") else text


def gradescope_roster(students=DEMO) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["Full Name", "SID", "Email", "Role", "Sections"])
    for s in students:
        w.writerow([s.full_name, s.sid, s.email, "Student", s.section])
    return buf.getvalue()


# --------------------------------------------------------------------------- GitHub Classroom


def _git(cwd: Path, *args: str, env: dict | None = None) -> None:
    import os

    e = {**os.environ, "GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": "x@x", "GIT_COMMITTER_NAME": "x",
         "GIT_COMMITTER_EMAIL": "x@x", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_SYSTEM": "/dev/null",
         **(env or {})}
    subprocess.run(["git", *args], cwd=cwd, env=e, check=True, capture_output=True)


STARTER = '''\
import numpy as np


def softmax(z, axis=-1):
    """Return the softmax of z along axis (numerically stable)."""
    raise NotImplementedError
'''


def github_classroom(dest: Path, students=DEMO, slug: str = "hw1") -> Path:
    """``gh classroom clone student-repos``: ``<slug>-submissions/<slug>-<login>/``, each a git
    repository made from the template (starter, README, workflow), then the student's commits."""
    root = dest / f"{slug}-submissions"
    root.mkdir(parents=True)
    for s in students:
        if not s.attempts:
            continue  # never accepted the assignment: no repository
        repo = root / f"{slug}-{s.login}"
        repo.mkdir()
        _git(repo, "init", "-q", "-b", "main")
        (repo / "README.md").write_text("# Homework 1\n")
        (repo / ".github" / "workflows").mkdir(parents=True)
        (repo / ".github" / "workflows" / "classroom.yml").write_text("name: Autograding\n")
        (repo / "softmax.py").write_text(STARTER)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "Initial commit")
        for n, attempt in enumerate(s.attempts):
            for name, text in attempt.items():
                (repo / name).write_text(text, encoding="utf-8")
            if "softmax.py" not in attempt and n == 0:
                (repo / "softmax.py").unlink()
            _git(repo, "add", "-A")
            _git(repo, "commit", "-q", "-m", f"attempt {n + 1}")
    return root


def github_roster(students=DEMO) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["identifier", "github_username", "github_id", "name"])
    for n, s in enumerate(students):
        w.writerow([s.email, s.login, 100 + n, s.full_name])
    return buf.getvalue()


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
