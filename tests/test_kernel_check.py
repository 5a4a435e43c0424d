"""Checking from inside a kernel, without starting one: the history becomes the notebook
that `dlgrade check` grades, the magic's arguments, the inline rendering.

The same in real kernels (nbclient, ipykernel): tests/test_notebook_magic.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import html as lxml_html

from dlgrade.graders import kernel_check as kc
from dlgrade.graders.api import check as api_check
from dlgrade.graders.diagnose import describe
from dlgrade.graders.results import StudentReport
from dlgrade.reports.notebook_inline import MAX_HEIGHT_PX, MIN_HEIGHT_PX, frame_height, mime_bundle
from dlgrade.reports.terminal import render_report

ROOT = Path(__file__).parent.parent
FIX = Path(__file__).parent / "fixtures"
WRONG_AXIS = (FIX / "softmax" / "softmax_wrong_axis.py").read_text()


class FakeShell:
    """What kernel_check reads of an IPython shell: its raw input history and namespace."""

    def __init__(self, cells, ns=None):
        self.history_manager = SimpleNamespace(input_hist_raw=["", *cells])
        self.user_ns = ns or {}


def test_history_is_the_raw_cells_in_execution_order():
    ip = FakeShell(["x = 1", "%time y = 2", "x = 3", "%dlgrade check"])
    assert kc.history_cells(ip) == ["x = 1", "%time y = 2", "x = 3", "%dlgrade check"]
    nb = json.loads(kc.notebook_bytes(kc.history_cells(ip)))
    assert [c["cell_type"] for c in nb["cells"]] == ["code"] * 4
    assert ["".join(c["source"]) for c in nb["cells"]] == ["x = 1", "%time y = 2", "x = 3", "%dlgrade check"]


def test_history_without_a_history_manager_reads_ih():
    ip = SimpleNamespace(history_manager=SimpleNamespace(), user_ns={"_ih": ["", "a = 1", "b = 2"]})
    assert kc.history_cells(ip) == ["a = 1", "b = 2"]


@pytest.mark.parametrize("ns, env, expected", [
    ({"__session__": "/home/ada/course/hw1.ipynb"}, {}, "hw1.ipynb"),
    ({}, {"JPY_SESSION_NAME": "work/My Homework.ipynb"}, "My Homework.ipynb"),
    ({"__vsc_ipynb_file__": "/c/x/lab2.ipynb", "__session__": "other.ipynb"}, {}, "lab2.ipynb"),
    ({"__session__": "a-console-session-id"}, {}, None),
    ({}, {}, None),
])
def test_the_notebooks_file_name_comes_from_the_kernel(ns, env, expected, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert kc.notebook_file_name(FakeShell([], ns)) == expected


def _write_nb(path: Path, cells) -> None:
    path.write_bytes(kc.notebook_bytes(cells))


def test_a_kernel_told_nothing_finds_its_notebook_in_its_folder(tmp_path, monkeypatch):
    """nbclient, papermill, nbconvert --execute: the kernel runs in the notebook's folder."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    ran = ["import numpy as np", "def softmax(z):\n    return z", "%dlgrade check"]
    _write_nb(tmp_path / "hw1.ipynb", ran)
    _write_nb(tmp_path / "hw0.ipynb", ["import numpy as np", "%dlgrade check"])  # fewer of the cells run
    _write_nb(tmp_path / "other.ipynb", ran[:2])  # not the running cell
    (tmp_path / "broken.ipynb").write_text("{not json")
    (tmp_path / ".hidden.ipynb").write_bytes(kc.notebook_bytes(ran + ["x = 1"]))
    assert kc.notebook_file_name(FakeShell(ran), ran, str(tmp_path)) == "hw1.ipynb"
    _write_nb(tmp_path / "hw1 copy.ipynb", ran)  # two equally good: none is guessed
    assert kc.matching_notebook(ran, str(tmp_path)) is None
    assert kc.matching_notebook(["%dlgrade check stable-softmax"], str(tmp_path)) is None
    assert kc.matching_notebook(ran, str(tmp_path / "missing")) is None


@pytest.mark.parametrize("line, request_", [
    ("check", kc.CheckRequest()),
    ("check stable-softmax two-layer-backprop",
     kc.CheckRequest(("stable-softmax", "two-layer-backprop"))),
    ("check -e stable-softmax --student ada --exercises-dir 'my course/ex' --require-sandbox",
     kc.CheckRequest(("stable-softmax",), "ada", ("my course/ex",), True)),
])
def test_magic_arguments(line, request_):
    assert kc.parse_magic(line) == request_


@pytest.mark.parametrize("line", ["", "help", "check --help", "check -h"])
def test_magic_help(line):
    assert kc.parse_magic(line) is None
    assert kc.MAGIC_HELP.splitlines()[0] == (
        "Usage: %dlgrade check [EXERCISE ...] [--student ID] [--exercises-dir DIR] [--require-sandbox]")
    assert kc.MAGIC_HELP.splitlines()[-2:] == [
        "  %dlgrade check stable-softmax", '  dlgrade.check("stable-softmax")      # the same, from Python']


@pytest.mark.parametrize("line, message", [
    ("grade", "unknown command 'grade' (usage: " + kc.MAGIC_USAGE + ")"),
    ("check --colour", "unrecognized arguments: --colour (usage: " + kc.MAGIC_USAGE + ")"),
    ("check 'unclosed", "cannot read the arguments (No closing quotation) (usage: " + kc.MAGIC_USAGE + ")"),
])
def test_bad_magic_arguments_are_one_line(line, message):
    with pytest.raises(kc.NotebookCheckError) as info:
        kc.parse_magic(line)
    assert str(info.value) == message
    assert info.value._render_traceback_() == [f"Error: {message}"]  # what IPython shows: no traceback


def test_check_outside_a_kernel_says_where_it_works():
    with pytest.raises(kc.NotebookCheckError) as info:
        kc.check(ip=SimpleNamespace(user_ns={}))
    assert str(info.value) == ("dlgrade.check() grades the cells a notebook's kernel has run, and this is not a "
                               "notebook kernel; from a terminal, run: dlgrade check FILE")


def test_import_dlgrade_stays_light():
    code = ("import sys, dlgrade; assert callable(dlgrade.check) and callable(dlgrade.load_ipython_extension);"
            "print(sorted(m for m in ('numpy', 'torch', 'IPython', 'sympy', 'jinja2', 'dlgrade.graders.api')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def session():
    s = kc.KernelSession()
    yield s
    s.close()


def _saved(tmp_path, cells, name="hw1.ipynb") -> Path:
    path = tmp_path / name
    path.write_bytes(kc.notebook_bytes(cells))
    return path


def test_a_session_grades_the_history_as_check_grades_the_saved_notebook(session, runner, tmp_path, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "course/hw1.ipynb")
    cells = ["%matplotlib inline", WRONG_AXIS, "%%time\nz = softmax(np.ones((2, 3)))", "%load_ext dlgrade\n%dlgrade check"]
    said = []
    got = session.check(FakeShell(cells), kc.CheckRequest(), say=said.append)
    assert said == ["dlgrade: warming up the grader for this kernel (a few seconds, once; later checks reuse it)"]
    saved = _saved(tmp_path, cells)
    want = api_check(saved, runner=runner)
    assert got.notebook == "hw1.ipynb" and got.report.student == want.student == "hw1"
    g, w = got.to_dict(), want.to_dict()
    for r in g["results"] + w["results"]:
        r.pop("duration_s", None)
    w["results"][0]["submission"] = "hw1.ipynb"  # the CLI names the path it was given
    assert g["results"] == w["results"]
    assert g["results"][0]["diagnoses"] == ["wrong-axis"]
    # a second check reuses the warm workers and says nothing about warming up
    workers = dict(session.runner.workers)
    again = session.check(FakeShell(cells), kc.CheckRequest(("stable-softmax",)), say=said.append)
    assert len(said) == 1 and session.runner.workers == workers and session.checks == 2
    assert again.score == got.score
    assert session.last is again


def test_a_session_reports_usage_errors_in_one_line(session, tmp_path, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    with pytest.raises(kc.NotebookCheckError) as info:
        session.check(FakeShell([]), kc.CheckRequest())
    assert str(info.value) == "nothing to check yet: this kernel has run no cell (run your notebook's cells first)"
    with pytest.raises(kc.NotebookCheckError) as info:
        session.check(FakeShell(["x = 1"]), kc.CheckRequest())
    assert info.value.kind == "usage"
    # the temporary folder is not in the line: the notebook is named as the student knows it
    assert str(info.value).startswith("notebook.ipynb: no exercise entry found (looked for ")
    assert str(info.value).endswith("); name one with --exercise")
    with pytest.raises(kc.NotebookCheckError) as info:
        session.check(FakeShell(["x = 1"]), kc.CheckRequest(("nope",)))
    assert str(info.value).startswith("unknown exercise 'nope'; known: ")


def _result(tmp_path, runner, source, student="hw1"):
    return api_check(_saved(tmp_path, [source]), runner=runner, student=student)


def test_inline_bundle_is_the_terminal_summary_and_a_sandboxed_frame(runner, tmp_path):
    view = StudentReport.of(_result(tmp_path, runner, WRONG_AXIS))
    bundle = mime_bundle(view)
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/plain"] == render_report(view, color=False)
    outer = lxml_html.fragment_fromstring(bundle["text/html"])
    frames = outer.xpath("//iframe")
    assert len(frames) == 1 and frames[0].get("sandbox") == ""  # no scripts, no same origin
    assert frames[0].get("title") == f"dlgrade feedback for hw1: {view.score:g} / 10 points"
    assert "<script" not in bundle["text/html"].lower()
    page = frames[0].get("srcdoc")
    assert page.startswith("<!DOCTYPE html>") and "Content-Security-Policy" in page
    doc = lxml_html.document_fromstring(page)
    first = doc.xpath("//section[@class='first']")[0]
    info = describe("wrong-axis")
    assert first.xpath(".//h4")[0].text_content().split() == f"stable-softmax: {info.title} wrong-axis".split()
    assert " ".join(first.xpath(".//p")[-1].text_content().split()) == " ".join(info.hint.replace("`", "").split())
    # what went wrong comes before the page's own header and checks
    body = lxml_html.tostring(doc, encoding="unicode")
    assert body.index('class="first"') < body.index('class="page-head"') < body.index("<h3>Checks</h3>")


def test_inline_page_of_a_crash_shows_the_error_first(runner, tmp_path):
    view = StudentReport.of(_result(tmp_path, runner, "import numpy as np\ndef softmax(z, axis=-1):\n    return z\n1/0"))
    doc = lxml_html.document_fromstring(
        lxml_html.fragment_fromstring(mime_bundle(view)["text/html"]).xpath("//iframe")[0].get("srcdoc"))
    problem = doc.xpath("//section[@class='first']/div")[0]
    assert problem.get("class") == "problem error"
    assert " ".join(problem.text_content().split()) == f"stable-softmax — ERROR: {view.results[0].message}"


def test_a_passing_notebook_has_nothing_first(runner, tmp_path):
    view = StudentReport.of(_result(tmp_path, runner, (FIX / "softmax" / "correct_shift_max.py").read_text()))
    page = lxml_html.fragment_fromstring(mime_bundle(view)["text/html"]).xpath("//iframe")[0].get("srcdoc")
    assert 'class="first"' not in page and view.score == 10


def test_frame_height_is_bounded(runner, tmp_path):
    view = StudentReport.of(_result(tmp_path, runner, WRONG_AXIS))
    assert MIN_HEIGHT_PX <= frame_height(view) <= MAX_HEIGHT_PX
    with pytest.raises(TypeError):
        mime_bundle(_result(tmp_path, runner, WRONG_AXIS))  # the full record is refused


@pytest.mark.parametrize("cells", [
    ["import dlgrade\nr = dlgrade.check()", "from dlgrade import check, load_ipython_extension\ncheck('stable-softmax')"],
    ["%load_ext dlgrade", "%dlgrade check", "%unload_ext dlgrade"],
])
def test_check_cells_do_nothing_when_the_notebook_is_graded(cells, runner, basic_runner, tmp_path):
    """In the sandbox (no dlgrade there) and without it (dlgrade importable), the cells that
    check the notebook from its kernel neither fail nor change the score."""
    source = (FIX / "softmax" / "correct_shift_max.py").read_text()
    path = _saved(tmp_path, [source, *cells, "assert softmax(np.zeros(2)).sum() == 1"])
    for r in (runner, basic_runner):
        report = api_check(path, runner=r)
        assert (report.results[0].status, report.score) == ("graded", 10), report.results[0].message


def test_an_interrupted_check_keeps_no_worker(session, monkeypatch):
    from dlgrade.graders import api

    session.check(FakeShell([WRONG_AXIS]), kc.CheckRequest(), say=lambda _: None)
    assert session.runner is not None

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "check", interrupted)
    with pytest.raises(KeyboardInterrupt):
        session.check(FakeShell([WRONG_AXIS]), kc.CheckRequest(), say=lambda _: None)
    assert session.runner is None  # the next check warms up afresh
