"""`%dlgrade check` in real kernels (nbclient + ipykernel), against `dlgrade check --json`.

Each notebook runs top to bottom in a kernel of this test's own Python; its last
cell is the check. The inline outputs (text and ``text/html``) are asserted, and
the same notebook, saved to disk, is graded by the CLI: score, status, checks
and diagnoses must be the same, and the text is the CLI's summary. A notebook
with its inline report is exported with nbconvert and photographed in headless
Chromium (``tests/artifacts/notebook_inline.png``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from lxml import html as lxml_html  # noqa: E402

from dlgrade.graders.diagnose import describe  # noqa: E402
from dlgrade.graders.kernel_check import WARMING_UP  # noqa: E402

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parent.parent
FIX = Path(__file__).parent / "fixtures"
ARTIFACTS = Path(__file__).parent / "artifacts"
KERNEL = "dlgrade-test-python"
CHECK_CELL = "%load_ext dlgrade\n%dlgrade check"

CORRECT = (FIX / "softmax" / "correct_shift_max.py").read_text()
WRONG = (FIX / "softmax" / "softmax_wrong_axis.py").read_text()
CRASHING = "import numpy as np\n\ndef softmax(z, axis=-1):\n    return np.exp(z) / np.exp(z).sum(axis, keepdims=True)"
HANGING = "def softmax(z, axis=-1):\n    while True:\n        pass"
RESULT_JSON = ("import json as _j\nfrom dlgrade.graders.kernel_check import session as _s\n"
               "print(_j.dumps(_s().last.to_dict()))")
WORKER_PIDS = ("from dlgrade.graders.kernel_check import session as _s\n"
               "print([w.proc.pid for w in _s().runner.workers.values()])")


@pytest.fixture(scope="module", autouse=True)
def kernelspec(tmp_path_factory):
    """A kernelspec that runs this Python (the one dlgrade is installed in)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dlgrade tests", "language": "python"}))
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(root) + (os.pathsep + old if old else "")
    yield
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


def _silent(client, code: str) -> str:
    """Run ``code`` in the kernel without it entering the history; its stdout."""
    out = []

    def hook(msg):
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])

    from nbclient.util import run_sync

    reply = run_sync(client.kc.execute_interactive)(code, store_history=False, output_hook=hook, timeout=60)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


def run_notebook(folder: Path, name: str, cells: list[str], monkeypatch, allow_errors=False, after=None,
                 told=True):
    """Run ``cells`` in a fresh kernel as the notebook ``folder/name``, save it there;
    ``after(client)`` runs (silently) in the same kernel before it shuts down. ``told``:
    the kernel is told its notebook's path as Jupyter Server tells it; else the notebook
    is on disk before it runs, as with ``jupyter nbconvert --execute``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "dlgrade tests", "language": "python"}
    if told:
        monkeypatch.setenv("JPY_SESSION_NAME", str(folder / name))
    else:
        monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
        nbformat.write(nb, folder / name)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=120, allow_errors=allow_errors,
                                     resources={"metadata": {"path": str(folder)}})
    extra = None
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            client.execute_cell(cell, i)
        if after is not None:
            extra = after(client)
    nbformat.write(nb, folder / name)
    return nb, extra


def cli(path: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlgrade", "check", path.name, *args], cwd=path.parent,
                          capture_output=True, text=True, timeout=300)


def _outputs(cell, kind):
    return [o for o in cell.outputs if o.output_type == kind]


def _comparable(results: list[dict]) -> list[dict]:
    keep = ("student", "exercise", "status", "score", "max_score", "diagnoses", "message", "submission")
    return [{**{k: r.get(k) for k in keep},
             "checks": [(c["name"], c["passed"], c["score"], c["message"]) for c in r["checks"]]}
            for r in results]


def assert_same_as_cli(nb, path: Path, kernel_result: dict) -> dict:
    """The check cell's inline text is the CLI's summary, and its record the CLI's --json."""
    display = _outputs(nb.cells[-1], "display_data")
    assert len(display) == 1
    bundle = display[0]["data"]
    text = cli(path)
    assert text.returncode == 0, text.stderr
    assert bundle["text/plain"] == text.stdout.rstrip("\n")
    as_json = cli(path, "--json")
    assert as_json.returncode == 0, as_json.stderr
    want = json.loads(as_json.stdout)
    want = want if isinstance(want, list) else [want]
    assert _comparable(kernel_result["results"]) == _comparable(want)
    return bundle


def _frame_page(bundle) -> str:
    frames = lxml_html.fragment_fromstring(bundle["text/html"]).xpath("//iframe")
    assert len(frames) == 1 and frames[0].get("sandbox") == ""
    return frames[0].get("srcdoc")


def test_correct_notebook(tmp_path, monkeypatch):
    nb, got = run_notebook(tmp_path, "hw1.ipynb", [CORRECT, "x = softmax(np.array([[1.0, 2.0]]))", CHECK_CELL],
                           monkeypatch, after=lambda c: json.loads(_silent(c, RESULT_JSON)))
    assert [o.text for o in _outputs(nb.cells[-1], "stream")] == [WARMING_UP + "\n"]
    bundle = assert_same_as_cli(nb, tmp_path / "hw1.ipynb", got)
    assert got["student"] == "hw1" and got["score"] == got["max_score"] == 10
    assert bundle["text/plain"].startswith("dlgrade check: hw1  (isolation: ")
    assert bundle["text/plain"].endswith("Total: 10 / 10")
    assert 'class="first"' not in _frame_page(bundle)


def test_a_notebook_executed_from_its_file_is_graded_under_its_own_name(tmp_path, monkeypatch):
    nb, got = run_notebook(tmp_path, "ada_hw.ipynb", [WRONG, CHECK_CELL], monkeypatch, told=False,
                           after=lambda c: json.loads(_silent(c, RESULT_JSON)))
    assert got["student"] == "ada_hw"
    assert_same_as_cli(nb, tmp_path / "ada_hw.ipynb", got)


def test_wrong_notebook_shows_the_mistake_first(tmp_path, monkeypatch):
    nb, got = run_notebook(tmp_path, "lab 2.ipynb", ["%precision 4", WRONG, "%%time\nz = softmax(np.ones((2, 3)))", CHECK_CELL], monkeypatch,
                           after=lambda c: json.loads(_silent(c, RESULT_JSON)))
    bundle = assert_same_as_cli(nb, tmp_path / "lab 2.ipynb", got)
    assert got["results"][0]["diagnoses"] == ["wrong-axis"] and got["score"] < 10
    info = describe("wrong-axis")
    assert f"diagnosis [wrong-axis] {info.title}" in bundle["text/plain"]
    doc = lxml_html.document_fromstring(_frame_page(bundle))
    first = doc.xpath("//section[@class='first']")[0]
    assert " ".join(first.xpath(".//h4")[0].text_content().split()) == f"stable-softmax: {info.title} wrong-axis"
    page = lxml_html.tostring(doc, encoding="unicode")
    assert page.index('class="first"') < page.index("<h3>Checks</h3>")


def test_crashing_notebook(tmp_path, monkeypatch):
    # the cell raises in the kernel too; the check is still run (allow_errors, as "Run all" would not stop
    # in a notebook whose author ran the cells one by one)
    cells = [CRASHING, "softmax(np.array([1.0, 2.0]))\nraise ValueError('not ready')", CHECK_CELL]
    nb, got = run_notebook(tmp_path, "hw3.ipynb", cells, monkeypatch, allow_errors=True,
                           after=lambda c: json.loads(_silent(c, RESULT_JSON)))
    assert _outputs(nb.cells[1], "error")[0]["ename"] == "ValueError"
    bundle = assert_same_as_cli(nb, tmp_path / "hw3.ipynb", got)
    r = got["results"][0]
    assert r["status"] == "error" and r["score"] == 0
    assert "ValueError: not ready" in r["message"] and "(cell 2, line 2)" in r["message"]
    problem = lxml_html.document_fromstring(_frame_page(bundle)).xpath("//section[@class='first']/div")[0]
    assert " ".join(problem.text_content().split()) == " ".join(f"stable-softmax — ERROR: {r['message']}".split())


def test_hanging_notebook_times_out_as_check_does(tmp_path, monkeypatch):
    nb, got = run_notebook(tmp_path, "hw4.ipynb", [HANGING, "%load_ext dlgrade\n%dlgrade check stable-softmax"],
                           monkeypatch, after=lambda c: json.loads(_silent(c, RESULT_JSON)))
    bundle = assert_same_as_cli(nb, tmp_path / "hw4.ipynb", got)
    assert got["results"][0]["status"] == "timeout" and got["score"] == 0
    assert "TIMEOUT" in bundle["text/plain"]


def _gone(pid: int, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie is gone for our purposes: it runs nothing
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def test_later_checks_reuse_the_warm_worker_which_closes_with_the_kernel(tmp_path, monkeypatch):
    def after(client):
        return _silent(client, WORKER_PIDS)

    cells = [CORRECT, CHECK_CELL, "%dlgrade check stable-softmax",
             "import dlgrade\ndlgrade.check('stable-softmax')", "pids_before = 1"]
    nb, pids = run_notebook(tmp_path, "hw5.ipynb", cells, monkeypatch, after=after)
    assert [o.text for o in _outputs(nb.cells[1], "stream")] == [WARMING_UP + "\n"]
    assert _outputs(nb.cells[2], "stream") == [] and len(_outputs(nb.cells[2], "display_data")) == 1
    # dlgrade.check() as a cell's value shows the same two representations
    shown = _outputs(nb.cells[3], "execute_result")[0]["data"]
    assert set(shown) >= {"text/plain", "text/html"}
    assert shown["text/plain"] == _outputs(nb.cells[2], "display_data")[0]["data"]["text/plain"]
    pids = json.loads(pids)
    assert len(pids) == 1  # one warm zygote (numpy), used by all three checks
    assert _gone(pids[0]), "the warm worker outlived its kernel"
    # the saved notebook, with its dlgrade.check() cell, grades the same under the CLI
    assert json.loads(cli(tmp_path / "hw5.ipynb", "--json").stdout)["score"] == 10


def test_unknown_exercise_is_one_line_in_the_notebook(tmp_path, monkeypatch):
    nb, _ = run_notebook(tmp_path, "hw6.ipynb", [CORRECT, "%load_ext dlgrade\n%dlgrade check nope"], monkeypatch,
                         allow_errors=True)
    err = _outputs(nb.cells[-1], "error")[0]
    assert err["traceback"] == [f"Error: {err['evalue']}"]
    assert err["evalue"].startswith("unknown exercise 'nope'; known: ")


def test_starter_notebook_checks_itself(tmp_path, monkeypatch):
    made = subprocess.run([sys.executable, "-m", "dlgrade", "init", "stable-softmax", "--notebook", str(tmp_path)],
                          capture_output=True, text=True, check=True)
    assert made.returncode == 0
    path = tmp_path / "stable_softmax.ipynb"
    cells = ["".join(c["source"]) for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    nb, got = run_notebook(tmp_path, path.name, cells, monkeypatch,
                           after=lambda c: json.loads(_silent(c, RESULT_JSON)))
    assert cells[-1] == "%load_ext dlgrade\n%dlgrade check stable-softmax"
    assert_same_as_cli(nb, path, got)
    assert got["results"][0]["exercise"] == "stable-softmax"


def test_screenshot_of_a_notebook_with_its_inline_report(tmp_path, monkeypatch):
    from chromium_cdp import Browser, find_chromium

    nbconvert = pytest.importorskip("nbconvert")
    binary = find_chromium()
    if not binary:
        if os.environ.get("CI"):
            pytest.fail("CI must photograph the inline report, but chromium is not installed")
        pytest.skip("chromium is not installed")
    nb, _ = run_notebook(tmp_path, "softmax_homework.ipynb", [WRONG, CHECK_CELL], monkeypatch)
    body, _ = nbconvert.HTMLExporter(template_name="classic").from_notebook_node(nb)
    assert "srcdoc=" in body and 'sandbox=""' in body  # nbconvert keeps the frame as it is
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / "notebook_inline.html"
    page.write_text(body, encoding="utf-8")
    # the page inside the frame, on its own: it renders, what went wrong first, with no error
    framed = ARTIFACTS / "notebook_inline_frame.html"
    framed.write_text(_frame_page(_outputs(nb.cells[-1], "display_data")[0]["data"]), encoding="utf-8")
    with Browser(binary) as b:
        b.open(page.resolve().as_uri())
        box = b.evaluate("JSON.stringify(document.querySelector('iframe').getBoundingClientRect())")
        shot = b.screenshot(ARTIFACTS / "notebook_inline.png")
        b.open(framed.resolve().as_uri())
        first = b.evaluate("document.querySelector('section.first h4').textContent")
        errors = b.console_errors()
        requests = [u for u in b.requests() if not u.startswith("file:")]
    assert json.loads(box)["height"] >= 240 and json.loads(box)["width"] > 400
    assert " ".join(first.split()) == f"stable-softmax: {describe('wrong-axis').title} wrong-axis"
    assert errors == [] and requests == []
    assert shot.stat().st_size > 10_000


def test_without_bubblewrap_the_usual_warning_shows_inline(tmp_path, monkeypatch):
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no bwrap to be found (the kernel's Python is named in full)
    monkeypatch.delenv("DLGRADE_BWRAP", raising=False)
    monkeypatch.delenv("DLGRADE_NO_SANDBOX", raising=False)
    nb, got = run_notebook(tmp_path, "hw7.ipynb", [CORRECT, CHECK_CELL], monkeypatch,
                           after=lambda c: json.loads(_silent(c, RESULT_JSON)))
    bundle = assert_same_as_cli(nb, tmp_path / "hw7.ipynb", got)
    from dlgrade.graders.sandbox import basic_warning

    warning = got["warnings"][0]
    assert warning == basic_warning(warning[len("WARNING: "):].split(": student code runs")[0])  # the usual one
    assert bundle["text/plain"].splitlines()[:2] == [warning, "dlgrade check: hw7  (isolation: basic)"]
    page = lxml_html.document_fromstring(_frame_page(bundle))
    assert [" ".join(p.text_content().split()) for p in page.xpath("//p[@class='warning']")] == [warning]
    assert got["score"] == 10


def test_a_broken_sandbox_is_one_line_in_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("DLGRADE_BWRAP", str(tmp_path / "no-such-bwrap"))
    nb, _ = run_notebook(tmp_path, "hw8.ipynb", [CORRECT, CHECK_CELL], monkeypatch, allow_errors=True)
    err = _outputs(nb.cells[-1], "error")[0]
    cli_line = cli(tmp_path / "hw8.ipynb")
    assert cli_line.returncode == 3
    assert err["traceback"] == [cli_line.stderr.strip()]  # the CLI's own line: "Error: dlgrade could not grade ..."
    assert err["evalue"].startswith("dlgrade could not grade hw8.ipynb: bubblewrap is installed but cannot create")


def test_help_and_unloading_the_extension_closes_the_warm_worker(tmp_path, monkeypatch):
    from dlgrade.graders.kernel_check import MAGIC_HELP

    def after(client):
        pids = json.loads(_silent(client, WORKER_PIDS))
        _silent(client, "%unload_ext dlgrade")
        closed = all(_gone(p) for p in pids)  # while the kernel still runs
        left = _silent(client, "print('dlgrade' in get_ipython().magics_manager.magics['line'])")
        return pids, closed, left.strip()

    nb, (pids, closed, left) = run_notebook(tmp_path, "hw9.ipynb", [CORRECT, CHECK_CELL, "%dlgrade help"],
                                            monkeypatch, after=after)
    assert [o.text for o in _outputs(nb.cells[2], "stream")] == [MAGIC_HELP + "\n"]
    assert len(pids) == 1 and closed and left == "False"
