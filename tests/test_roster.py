"""graders/roster.py: the roster CSVs instructors already have, read by their headers."""
from __future__ import annotations

import pytest

import lms_downloads as L
from dlgrade.graders.roster import Person, RosterError, parse_roster, read_roster
from dlgrade.reports.class_pages import HTML_PAGES


def test_canvas_gradebook_export_as_roster():
    r = parse_roster(L.canvas_gradebook_csv())
    assert list(r.people) == ["1001", "1002", "1003", "1004", "1005", "1006", "1007"]  # "Points Possible" skipped
    assert r.people["1002"] == Person("1002", "José Müller", "", "A", "S1002", "jose-muller")
    assert r.people["1003"].name == "Zoë O'Brien-Smith"


def test_moodle_worksheet_as_roster():
    r = parse_roster(L.moodle_worksheet())
    assert r.people["2002"] == Person("2002", "José Müller", "jose@uni.example")


def test_gradescope_and_github_rosters():
    r = parse_roster(L.gradescope_roster())
    assert r.people["S1003"] == Person("S1003", "Zoë O'Brien-Smith", "zoe@uni.example", "B")
    r = parse_roster(L.github_roster())
    assert list(r.people)[:2] == ["ada-lovelace", "jose-muller"]  # github_username, not identifier
    assert r.people["jose-muller"].name == "José Müller"


def test_a_hand_made_roster_with_semicolons_a_bom_and_first_last_names(tmp_path):
    p = tmp_path / "roster.csv"
    p.write_bytes("\ufeffStudent ID;First name;Last name;E-mail;Section\n"
                  "42;Zoë;O'Brien;zoe@x.org;B\n\n43;=HYPERLINK(\"x\");Smith;;\n".encode("utf-8"))
    r = read_roster(p)
    assert r.people["42"] == Person("42", "Zoë O'Brien", "zoe@x.org", "B")
    assert r.people["43"].name == '=HYPERLINK("x") Smith'  # data, kept as written (exports escape it)


def test_a_windows_spreadsheet_csv_is_read(tmp_path):
    p = tmp_path / "roster.csv"
    p.write_bytes("id,name\r\n7,Jos\xe9\r\n".encode("latin-1"))
    assert read_roster(p).people["7"].name == "José"


@pytest.mark.parametrize("text, message", [
    ("name,email\nAda,ada@x\n", "roster.csv: no id column (headers: name, email); name it one of: id, identifier, "
                                "sid, github_username, user id"),
    ("id,name\n1,Ada\n1,Ben\n", "roster.csv: line 3: id '1' appears twice"),
    ("id,name\n,Ada\n", "roster.csv: line 2: no id in column 'id'"),
    ("id,name\n", "roster.csv: no students (only a header row)"),
    ("", "roster.csv: empty (expected a header row and one row per student)"),
])
def test_roster_errors_are_one_line(text, message):
    with pytest.raises(RosterError) as exc:
        parse_roster(text, "roster.csv")
    assert str(exc.value) == message


def test_a_missing_roster_file(tmp_path):
    with pytest.raises(RosterError) as exc:
        read_roster(tmp_path / "nope.csv")
    assert str(exc.value) == f"{tmp_path / 'nope.csv'}: no such file"
    with pytest.raises(RosterError) as exc:
        read_roster(tmp_path)
    assert str(exc.value) == f"{tmp_path}: a folder, not a CSV file"


@pytest.mark.slow
def test_names_and_ids_from_a_roster_are_data_never_paths_or_markup(tmp_path):
    from dlgrade.graders import lms

    roster = tmp_path / "roster.csv"
    roster.write_text('id,name,email\n1001,<script>alert(1)</script>,a@x\n../../../tmp/evil,"=cmd|\' /C calc\'!A0",\n',
                      encoding="utf-8")
    out = tmp_path / "out"
    lms.grade(L.canvas_zip(tmp_path / "c.zip", students=L.DEMO[:1]), out, roster_file=roster, jobs=1,
              exercise_ids=["stable-softmax"], pages=HTML_PAGES)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in index and "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert "<code>../../../tmp/evil</code>" in index  # listed as submitting nothing, as text
    page = (out / "students" / "1001.html").read_text(encoding="utf-8")
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt; <span" in page
    assert sorted(p.name for p in (out / "students").iterdir()) == ["1001.html", "1001.json"]
    assert not (tmp_path / "tmp").exists() and not any(p.name == "evil" for p in tmp_path.rglob("*"))
