"""A class roster: who is in the class, by the LMS's id, with a name, e-mail and section.

``--roster FILE.csv`` reads any of the CSV files an instructor already has:
the roster or gradebook an LMS exports (Canvas's gradebook export, Moodle's
grading worksheet, Gradescope's roster, GitHub Classroom's
``classroom_roster.csv``) or a hand-made one. Columns are found by their
header, case and spacing ignored (see ``COLUMNS``); the id column is the one
the download's ids come from (Canvas's ``ID``, Moodle's ``Identifier``
``Participant 123456``, Gradescope's ``SID``, GitHub's ``github_username``).

What a roster holds is data: it is shown (escaped) and exported (cells made
safe), never used as a path or interpreted.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from dlgrade.graders.errors import UserError

MAX_ROSTER_BYTES = 16 * 2**20

# Header aliases, in order of preference (normalised: lower case, single spaces).
COLUMNS = {
    "id": ("github username", "id", "lms id", "user id", "canvas user id", "student id",
           "identifier", "participant", "sid", "student number", "id number", "username", "login"),
    "name": ("name", "full name", "student", "student name", "display name", "sortable name"),
    "first": ("first name", "firstname", "given name"),
    "last": ("last name", "lastname", "surname", "family name"),
    "email": ("email", "email address", "e-mail", "e-mail address", "mail"),
    "section": ("section", "sections", "group", "groups", "class"),
    "sis_id": ("sis user id", "sis id"),
    "login": ("sis login id", "login id"),
}
# Rows of an LMS export that describe the gradebook, not a student.
NOT_A_STUDENT = re.compile(r"^\s*(points possible|muted|manual posting.*)?\s*$", re.I)
GRADEBOOK_ROW = re.compile(r"^\s*points possible\s*$", re.I)
PARTICIPANT = re.compile(r"^Participant\s+(\d+)$")


class RosterError(UserError):
    """The roster cannot be read (a usage error: one line naming the file)."""


@dataclass(frozen=True)
class Person:
    """One row of the roster."""

    id: str
    name: str = ""
    email: str = ""
    section: str = ""
    sis_id: str = ""
    login: str = ""


@dataclass
class Roster:
    """The class, by id, in the roster's order."""

    people: dict[str, Person]
    source: str = ""

    def get(self, student: str) -> Person | None:
        return self.people.get(student)

    def name_of(self, student: str) -> str:
        p = self.people.get(student)
        return p.name if p else ""

    def to_dict(self) -> dict:
        return {"source": self.source, "people": [asdict(p) for p in self.people.values()]}

    @classmethod
    def from_dict(cls, d: dict) -> "Roster":
        people = {}
        for row in d.get("people") or ():
            if isinstance(row, dict) and row.get("id"):
                p = Person(**{k: str(row.get(k) or "") for k in Person.__dataclass_fields__})
                people[p.id] = p
        return cls(people, str(d.get("source") or ""))


def _norm(header: str) -> str:
    return " ".join(header.replace("_", " ").replace("\ufeff", "").strip().lower().split())


def _find(headers: list[str], aliases: tuple[str, ...]) -> int | None:
    normed = [_norm(h) for h in headers]
    for alias in aliases:
        if _norm(alias) in normed:
            return normed.index(_norm(alias))
    return None


def parse_roster(text: str, source: str = "") -> Roster:
    """The roster in ``text`` (CSV with a header row; ``,``, ``;`` or tab separated).

    Raises RosterError with one line: no id column, an empty or duplicate id.
    """
    label = source or "roster"
    text = text.lstrip("\ufeff")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        raise RosterError(f"{label}: empty (expected a header row and one row per student)")
    headers = rows[0]
    col = {key: _find(headers, aliases) for key, aliases in COLUMNS.items()}
    if col["id"] is None:
        raise RosterError(f"{label}: no id column (headers: {', '.join(h.strip() for h in headers)}); "
                          f"name it one of: id, identifier, sid, github_username, user id")
    people: dict[str, Person] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(key: str) -> str:
            i = col[key]
            return row[i].strip() if i is not None and i < len(row) else ""

        if GRADEBOOK_ROW.match(row[0]) or all(NOT_A_STUDENT.match(c) for c in row):
            continue  # Canvas's "Points Possible" and "Muted" rows
        sid = cell("id")
        m = PARTICIPANT.match(sid)
        if m:  # Moodle's grading worksheet
            sid = m.group(1)
        if not sid:
            raise RosterError(f"{label}: line {n}: no id in column {headers[col['id']].strip()!r}")
        if sid in people:
            raise RosterError(f"{label}: line {n}: id {sid!r} appears twice")
        name = cell("name")
        if not name and (cell("first") or cell("last")):
            name = f"{cell('first')} {cell('last')}".strip()
        elif name and col["name"] is not None and _norm(headers[col["name"]]) in ("student", "sortable name") \
                and "," in name:
            last, _, first = name.partition(",")  # Canvas's "Last, First"
            name = f"{first.strip()} {last.strip()}".strip()
        people[sid] = Person(sid, name, cell("email"), cell("section"), cell("sis_id"), cell("login"))
    if not people:
        raise RosterError(f"{label}: no students (only a header row)")
    return Roster(people, source)


def read_roster(path) -> Roster:
    """The roster CSV at ``path``. Raises RosterError (a missing, unreadable or malformed file)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_ROSTER_BYTES:
            raise RosterError(f"{path}: too large for a roster ({size} bytes)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RosterError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RosterError(f"{path}: a folder, not a CSV file") from None
    except OSError as exc:
        raise RosterError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", "replace")  # a spreadsheet's "CSV" on Windows
    return parse_roster(text, str(path))


ROSTER_FILE = "roster.json"


def save(roster: Roster, out_dir) -> None:
    """Keep the roster in the output folder (``roster.json``), for later runs and commands."""
    from dlgrade.graders.batch import atomic_write

    path = Path(out_dir) / ROSTER_FILE
    data = (json.dumps(roster.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    try:
        if path.read_bytes() == data:
            return  # unchanged: the students' pages need not be rendered again
    except OSError:
        pass
    atomic_write(path, data)


def load(out_dir) -> Roster | None:
    """The roster kept in an output folder, or None."""
    try:
        d = json.loads((Path(out_dir) / ROSTER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Roster.from_dict(d) if isinstance(d, dict) else None


__all__ = ["Roster", "Person", "RosterError", "read_roster", "parse_roster", "save", "load", "ROSTER_FILE"]
