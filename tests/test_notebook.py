"""graders/notebook.py: notebooks run as Jupyter runs them, with (cell, line) positions kept.

The conversion is tested in-process on tables of cells; the fixtures (a Jupyter
notebook, a Colab export) and hand-built notebooks are graded end to end through
the sandboxed worker, which provides the notebook runtime (display, %%capture,
%%writefile, the IPython stand-in).
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dlgrade.graders.api import grade_one
from dlgrade.graders.notebook import MalformedNotebook, convert
from dlgrade.graders.spec import get_exercise
from dlgrade.graders.submission import Submission

ROOT = Path(__file__).parent.parent
FIX = Path(__file__).parent / "fixtures"
NOTEBOOKS = FIX / "notebooks"
SKIPPED = ("cell {cell}: skipped the %%{magic} cell (dlgrade runs Python cells only, %%time, %%timeit, "
           "%%capture and %%writefile cells included)")

SOFTMAX = ("import numpy as np\n"
           "def softmax(z, axis=-1):\n"
           "    e = np.exp(z - z.max(axis=axis, keepdims=True))\n"
           "    return e / e.sum(axis=axis, keepdims=True)")


def notebook(cells, **meta) -> bytes:
    return json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                                  "outputs": [], "source": c} if isinstance(c, str) else c for c in cells],
                       "metadata": meta, "nbformat": 4, "nbformat_minor": 5}).encode()


def write_notebook(folder: Path, cells, name="hw.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(notebook(cells))
    return path


def converted(*cells) -> list[str]:
    """The module's lines for these cells."""
    nb = convert(notebook(cells), "t.ipynb")
    compile(nb.source, "t", "exec")  # whatever the cells, the module is valid Python
    assert len(nb.line_map) == len(nb.source.splitlines())
    return nb.source.splitlines()


def grade(exercise, path, runner, student="student-1"):
    return grade_one(get_exercise(exercise), Submission(path, student=student), runner)


# --------------------------------------------------------------------------- conversion


@pytest.mark.parametrize("cell, lines", [
    ("%%time\nx = 1\ny = x", ["pass  # %%time", "x = 1", "y = x", ""]),
    ("%%timeit\nf(x)", ["pass  # %%timeit", "f(x)", ""]),
    ("%%timeit -n 10 -r3 x = setup()\nf(x)", ["x = setup()  # %%timeit -n 10 -r3 x = setup()", "f(x)", ""]),
    ("%%prun -s cumulative\nf()", ["pass  # %%prun -s cumulative", "f()", ""]),
    ("\n%%time\nx = 1", ["", "pass  # %%time", "x = 1", ""]),
    ("%%capture\nprint(1)", ["_dlgrade_nb.capture_start(stdout=True, stderr=True, display=True)  # %%capture",
                             "print(1)", "_dlgrade_nb.capture_end()"]),
    ("%%capture out --no-stderr --no-display\nprint(1)",
     ["out = _dlgrade_nb.capture_start(stdout=True, stderr=False, display=False)  "
      "# %%capture out --no-stderr --no-display", "print(1)", "_dlgrade_nb.capture_end()"]),
    ("%%capture\n!pip install -q numpy", [
        "_dlgrade_nb.capture_start(stdout=True, stderr=True, display=True)  # %%capture",
        "pass  # !pip install -q numpy", "_dlgrade_nb.capture_end()"]),
    ("%%writefile helpers.py\ndef relu(x):\n    return x * (x > 0)",
     ["_dlgrade_nb.writefile('helpers.py', 'def relu(x):\\n    return x * (x > 0)\\n', append=False)  "
      "# %%writefile helpers.py", "# def relu(x):", "#     return x * (x > 0)", ""]),
    ("%%writefile -a 'my helpers.py'\nA = 1", [
        "_dlgrade_nb.writefile('my helpers.py', 'A = 1\\n', append=True)  # %%writefile -a 'my helpers.py'",
        "# A = 1", ""]),
    ("%%file helpers.py\nA = '''x'''", [
        "_dlgrade_nb.writefile('helpers.py', \"A = '''x'''\\n\", append=False)  # %%file helpers.py",
        "# A = '''x'''", ""]),
    ("%%writefile $folder/{name}.py\nA = 1", [
        "_dlgrade_nb.writefile(f'{folder}/{name}.py', 'A = 1\\n', append=False)  # %%writefile $folder/{name}.py",
        "# A = 1", ""]),
    ("%%bash\necho hi", ["pass  # %%bash  (not run)", "# echo hi", ""]),
    ("%%html\n<b>hi</b>", ["pass  # %%html  (not run)", "# <b>hi</b>", ""]),
])
def test_cell_magics(cell, lines):
    assert converted(cell) == lines


@pytest.mark.parametrize("cell, lines", [
    ("%matplotlib inline\n!pip install numpy\n%pip install torch\nimport numpy as np",
     ["pass  # %matplotlib inline", "pass  # !pip install numpy", "pass  # %pip install torch",
      "import numpy as np", ""]),
    ("%time y = f(2)", ["y = f(2)  # %time", ""]),
    ("%timeit -n 3 -r 1 -q f(2)", ["f(2)  # %timeit", ""]),
    ("%prun -s cumtime f(2)", ["f(2)  # %prun", ""]),
    ("%time", ["pass  # %time", ""]),
    ("softmax?\n??np.exp\nnp.exp??", ["pass  # softmax?", "pass  # ??np.exp", "pass  # np.exp??", ""]),
    ("print('why?')  # really?", ["print('why?')  # really?", ""]),
    ("%run helpers.py a 2", ["_dlgrade_nb.run('helpers.py', ['a', '2'], globals(), in_namespace=False)  "
                             "# %run helpers.py a 2", ""]),
    ("%run -i setup.py", ["_dlgrade_nb.run('setup.py', [], globals(), in_namespace=True)  # %run -i setup.py",
                          ""]),
    ("%run -m module", ["pass  # %run -m module", ""]),
    ("if True:\n    !ls\n    %time x = 1", ["if True:", "    pass  # !ls", "    x = 1  # %time", ""]),
    ("!pip install \\\n    numpy\nx = 1", ["pass  # !pip install \\", "#     numpy", "x = 1", ""]),
    ("files = !ls *.csv\nt = %timeit -o f(2)\ny = %time f(3)\na, b = %sx echo 1",
     ["files = []  # files = !ls *.csv", "t = None  # t = %timeit -o f(2)", "y = f(3)  # %time",
      "a, b = None  # a, b = %sx echo 1", ""]),
    ("x = 5 % 2\ny = (3\n     % 2)", ["x = 5 % 2", "y = (3", "     % 2)", ""]),
    # not magics: the continuation of a bracket or of a multi-line string
    ("x = (7\n% 4)", ["x = (7", "% 4)", ""]),
    ('doc = """\n%matplotlib inline\n!ls\n"""', ['doc = """', "%matplotlib inline", "!ls", '"""', ""]),
])
def test_line_magics(cell, lines):
    assert converted(cell) == lines


def test_a_future_import_stays_only_at_the_top():
    assert converted("# types\nfrom __future__ import annotations\nx: 'int' = 1") == [
        "# types", "from __future__ import annotations", "x: 'int' = 1", ""]
    assert converted("import numpy as np", "from __future__ import annotations") == [
        "import numpy as np", "", "pass  # from __future__ import annotations  (Python takes it only at the "
                                  "top of a module)", ""]


def test_every_line_maps_to_its_cell_and_line():
    cells = ["import numpy as np", {"cell_type": "markdown", "metadata": {}, "source": "# text"},
             "%%capture\nprint(1)\nx = 2", "%%writefile h.py\nA = 1\nB = 2", "%%bash\nls", "y = 3\nz = 4"]
    nb = convert(notebook(cells), "t.ipynb")
    src = nb.source.splitlines()
    assert nb.position(1) == (1, 1) and nb.position(0) is None
    assert nb.position(src.index("x = 2") + 1) == (3, 3)
    assert nb.position(src.index("z = 4") + 1) == (6, 2)
    assert nb.position(src.index("# B = 2") + 1) == (4, 3)
    assert nb.position(len(src) + 1) is None
    assert nb.written == {"h.py": [(4, 2), (4, 3)]}
    assert nb.position(2, "h.py") == (4, 3) and nb.position(3, "h.py") is None
    assert nb.notes == (SKIPPED.format(cell=5, magic="bash"),)


def test_written_files_follow_appends_and_overwrites():
    nb = convert(notebook(["%%writefile h.py\nA = 1", "%%writefile -a h.py\n\nB = 2",
                           "%%writefile sub/x.py\nC = 3"]), "t.ipynb")
    assert nb.written == {"h.py": [(1, 2), (2, 2), (2, 3)]}  # sub/x.py: not in the job folder itself
    nb = convert(notebook(["%%writefile h.py\nA = 1", "%%writefile ./h.py\nB = 2"]), "t.ipynb")
    assert nb.written == {"h.py": [(2, 2)]}


def test_a_writefile_without_one_file_name_is_skipped_with_a_note():
    nb = convert(notebook(["%%writefile\nA = 1", "%%writefile a.py b.py\nB = 1"]), "t.ipynb")
    assert nb.notes == (SKIPPED.format(cell=1, magic="writefile"), SKIPPED.format(cell=2, magic="writefile"))


def test_malformed_notebooks_are_refused():
    with pytest.raises(MalformedNotebook, match=r"^m\.ipynb: malformed notebook \(not valid JSON"):
        convert(b"{", "m.ipynb")
    with pytest.raises(MalformedNotebook, match=r"^m\.ipynb: malformed notebook \(cell 1 has a bad source\)$"):
        convert(json.dumps({"cells": [{"cell_type": "code", "source": [1]}]}).encode(), "m.ipynb")


def test_the_fixtures_are_valid_notebooks():
    import nbformat

    for name in ("jupyter_softmax.ipynb", "colab_backprop.ipynb"):
        nbformat.validate(nbformat.read(NOTEBOOKS / name, as_version=4))
    colab = json.loads((NOTEBOOKS / "colab_backprop.ipynb").read_text())
    assert "colab" in colab["metadata"] and colab["nbformat_minor"] == 0  # as Colab exports it


# --------------------------------------------------------------------------- end to end


def test_a_jupyter_notebook_runs_its_magic_cells(sandbox_runner):
    r = grade("stable-softmax", NOTEBOOKS / "jupyter_softmax.ipynb", sandbox_runner)
    assert r.status == "graded" and r.score == r.max_score, r.message
    assert r.isolation == "sandbox"
    assert r.extra["notebook"] == {"notes": [SKIPPED.format(cell=7, magic="bash")]}
    # display() shows what a kernel shows as text (as nbclient records it for this notebook:
    # tests/fixtures/notebooks/README.md); %%capture kept its cell's print
    assert r.output == ("<IPython.core.display.Markdown object>\n"
                        "array([0.0000000e+000, 2.0322308e-313, 1.0000000e+000])\n"
                        "<IPython.core.display.HTML object>\n")
    proc = subprocess.run([sys.executable, "-m", "dlgrade", "check", str(NOTEBOOKS / "jupyter_softmax.ipynb")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"  note  {SKIPPED.format(cell=7, magic='bash')}" in proc.stdout.splitlines()


@pytest.mark.parametrize("student", ["student-1", "alice", "0042", "Ünïcødé", "x" * 40])
def test_a_colab_notebook_writes_its_helpers_before_importing_them(sandbox_runner, student):
    r = grade("two-layer-backprop", NOTEBOOKS / "colab_backprop.ipynb", sandbox_runner, student)
    assert r.status == "graded" and r.score == r.max_score == 10, (r.message, [c.message for c in r.checks])
    assert r.output == "Writing helpers.py\n{'W1': (3, 5), 'b1': (5,), 'W2': (5, 2), 'b2': (2,)}\n"
    assert "notebook" not in r.extra  # every cell ran


def test_capture_writefile_run_and_display_in_both_isolations(tmp_path, any_runner):
    (tmp_path / "consts.py").write_text("SCALE = 1.0\nprint('consts ran')\n")
    write_notebook(tmp_path, [
        "%%capture log\nprint('hidden')\nimport numpy as np",
        "%%writefile -a shift.py\nimport numpy as np",
        "%%writefile -a shift.py\ndef shift(z, axis):\n    return z - z.max(axis=axis, keepdims=True)",
        "%run consts.py",
        "here = '.'", "%%writefile $here/scale.py\nSCALE = 1.0",
        "from scale import SCALE\nfrom shift import shift\nfrom IPython.display import display, Markdown\n"
        "def softmax(z, axis=-1):\n    e = np.exp(shift(z, axis) * SCALE)\n    return e / e.sum(axis=axis, keepdims=True)",
        "display(Markdown('done'), log.stdout.strip())\nlog.show()",
    ])
    r = grade("stable-softmax", tmp_path, any_runner)  # the folder: consts.py is shipped with it
    assert r.status == "graded" and r.score == r.max_score, r.message
    assert r.output == ("Writing shift.py\nAppending to shift.py\nconsts ran\nWriting ./scale.py\n"
                        "<IPython.core.display.Markdown object>\n'hidden'\nhidden\n")


def test_errors_keep_the_notebooks_cell_and_line(tmp_path, sandbox_runner):
    capture_then_raise = write_notebook(tmp_path / "a", [
        "%%capture\nprint('quiet')", "import numpy as np\n\n\nraise ValueError('stop here')\n" + SOFTMAX])
    r = grade("stable-softmax", capture_then_raise, sandbox_runner)
    assert r.status == "error"
    assert r.message == "loading the submission raised ValueError: stop here (cell 2, line 4)"
    assert (r.error["cell"], r.error["cell_line"]) == (2, 4)

    helper_raises = write_notebook(tmp_path / "b", [
        "import numpy as np", "%%writefile shift.py\nimport numpy as np\ndef shift(z, axis):\n"
        "    raise RuntimeError('not written yet')",
        "from shift import shift\n" + SOFTMAX.replace("z - z.max", "shift(z, axis) + 0 * z.max")])
    r = grade("stable-softmax", helper_raises, sandbox_runner)
    assert r.status == "graded" and r.score == 0
    assert r.checks[0].message == ("softmax(z) raised RuntimeError: not written yet (cell 2, line 4) on random "
                                   "logits, shape (16, 10) (case 'random')")
    calls_in_the_notebook = write_notebook(tmp_path / "e", [
        "%%capture\nimport numpy as np",
        "%%time\ndef softmax(z, axis=-1):\n    assert z.ndim == 1, 'one row only'\n    return z"])
    r = grade("stable-softmax", calls_in_the_notebook, sandbox_runner)
    assert r.checks[0].message == ("softmax(z) raised AssertionError: one row only (cell 2, line 3) on random "
                                   "logits, shape (16, 10) (case 'random')")

    helper_syntax_error = write_notebook(tmp_path / "c", [
        "%%writefile shift.py\ndef shift(z, axis)\n    return z", "from shift import shift\n" + SOFTMAX])
    r = grade("stable-softmax", helper_syntax_error, sandbox_runner)
    assert r.status == "error" and r.error["kind"] == "syntax-error"
    assert r.message == "SyntaxError on cell 1, line 2: expected ':'"
    assert (r.error["cell"], r.error["cell_line"]) == (1, 2)

    syntax_after_capture = write_notebook(tmp_path / "d", [
        "%%capture\n!pip install x\nimport numpy as np", SOFTMAX + "\nx = (1,"])
    r = grade("stable-softmax", syntax_after_capture, sandbox_runner)
    assert r.status == "error" and r.error["kind"] == "syntax-error"
    assert (r.error["cell"], r.error["cell_line"]) == (2, 5)


def test_the_ipython_stand_in_is_used_unless_the_student_ships_an_ipython_module(tmp_path, sandbox_runner):
    stand_in = write_notebook(tmp_path / "a", [
        SOFTMAX, "import IPython\nfrom IPython.core.display import HTML\n"
                 "print(IPython.__doc__, IPython.get_ipython(), get_ipython(), repr(HTML('<b>x</b>')))"])
    r = grade("stable-softmax", stand_in, sandbox_runner)
    assert r.score == r.max_score, r.message
    # the same whether IPython is installed on the grading machine or not
    assert r.output == ("dlgrade's stand-in for IPython in a graded notebook None None "
                        "<IPython.core.display.HTML object>\n")
    own = write_notebook(tmp_path / "b", [SOFTMAX, "import IPython\nprint(IPython.WHOSE)"])
    (tmp_path / "b" / "IPython.py").write_text("WHOSE = 'the real one'\n")
    r = grade("stable-softmax", own.parent, sandbox_runner)
    assert r.score == r.max_score and r.output == "the real one\n"


def test_a_plain_python_file_gets_no_notebook_runtime(tmp_path, sandbox_runner):
    path = tmp_path / "softmax.py"
    path.write_text(SOFTMAX + "\ndisplay(1)\n")
    r = grade("stable-softmax", path, sandbox_runner)
    assert r.status == "error"
    assert r.message == "loading the submission raised NameError: name 'display' is not defined (line 5)"


def test_a_notebook_answer_to_a_symbolic_exercise_can_be_computed_after_magics(tmp_path, sandbox_runner):
    path = write_notebook(tmp_path, [
        "%%writefile answer.py\nPARTS = ['sigmoid(z)', ' - y']",
        "%%capture\nfrom answer import PARTS\nprint(PARTS)",
        "sigmoid_bce_grad = ''.join(PARTS)\ndisplay(sigmoid_bce_grad)"])
    r = grade("sigmoid-bce-grad", path, sandbox_runner)
    assert r.status == "graded" and r.score == 10, [c.message for c in r.checks]
    assert r.output == "Writing answer.py\n'sigmoid(z) - y'\n"


def test_a_computed_symbolic_answer_that_raises_names_its_cell(tmp_path, sandbox_runner):
    path = write_notebook(tmp_path, ["%%capture\nimport math", "parts = ['sigmoid(z)']\nsigmoid_bce_grad = parts[1]"])
    r = grade("sigmoid-bce-grad", path, sandbox_runner)
    assert r.status == "error"
    assert r.message == "loading the submission raised IndexError: list index out of range (cell 2, line 2)"
    assert (r.error["cell"], r.error["cell_line"]) == (2, 2)
