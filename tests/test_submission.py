"""graders/submission.py: finding entries without running student code."""
from pathlib import Path

import pytest

from graders.submission import (
    Submission, SubmissionError, defined_names, literal_string, notebook_to_python,
)

FIX = Path(__file__).parent / "fixtures"


def test_defined_names_reads_the_ast():
    src = "import numpy as np\nX = 1\ndef softmax(z):\n    inner = 2\nclass K: pass\ny: int = 3\n"
    assert defined_names(src) == {"np", "X", "softmax", "K", "y"}


def test_defined_names_survives_a_syntax_error():
    assert "softmax" in defined_names("def softmax(z)\n    return z\n")


def test_literal_string_never_evaluates():
    assert literal_string('a = r"\\sigma(z) - y"\n', "a") == "\\sigma(z) - y"
    assert literal_string('a = "sigmoid(z)" + " - y"\n', "a") == "sigmoid(z) - y"
    assert literal_string('a = f"{1}"\n', "a") is None
    assert literal_string('a = __import__("os").getcwd()\n', "a") is None
    assert literal_string('a = "x"\na = "y"\n', "a") == "y"


def test_notebook_magics_and_shell_lines_do_not_break_loading():
    """The conversion itself is tested in tests/test_notebook.py; this is the thin call here."""
    raw = (FIX / "notebooks/softmax_with_magics.ipynb").read_bytes()
    src, line_map = notebook_to_python(raw, "nb.ipynb")
    compile(src, "nb", "exec")
    assert "pass  # %matplotlib inline" in src and "pass  # !pip install numpy" in src
    assert "pass  # %%time\nx = 1\n" in src  # the body of %%time runs
    assert "pass  # softmax?" in src
    assert len(line_map) == len(src.splitlines())
    line = src.splitlines().index("def softmax(z, axis=-1):") + 1
    assert line_map[line - 1] == (4, 1)


def test_malformed_notebook_is_one_clear_error():
    raw = (FIX / "notebooks/malformed.ipynb").read_bytes()
    with pytest.raises(SubmissionError, match=r"^m\.ipynb: malformed notebook \(not valid JSON"):
        notebook_to_python(raw, "m.ipynb")
    with pytest.raises(SubmissionError, match="no list of cells"):
        notebook_to_python(b'{"nbformat": 4}', "m.ipynb")


def test_folder_submission_finds_each_entry_and_ships_helpers(tmp_path):
    (tmp_path / "softmax.py").write_text("from helpers import f\ndef softmax(z, axis=-1):\n    return f(z)\n")
    (tmp_path / "helpers.py").write_text("def f(z):\n    return z\n")
    (tmp_path / "sigmoid_bce_grad.txt").write_text("$\\sigma(z) - y$")
    (tmp_path / "notes.md").write_text("ignored")
    sub = Submission(tmp_path, student="alice")
    assert {"softmax", "sigmoid_bce_grad", "f"} <= sub.entries()
    src = sub.source_for("softmax")
    assert src.main_name == "softmax.py" and set(src.files) == {"softmax.py", "helpers.py"}
    text = sub.source_for("sigmoid_bce_grad")
    assert text.kind == "text" and text.text == "$\\sigma(z) - y$"
    assert sub.source_for("two_layer_backprop") is None


def test_notebook_source_maps_lines_to_cells():
    sub = Submission(FIX / "notebooks/notebook_syntax_error.ipynb")
    src = sub.source_for("softmax")
    assert src.kind == "ipynb" and src.main_name == "notebook_syntax_error_ipynb.py"
    err = {"line": len(src.line_map) - 2}
    src.map_error(err)
    assert (err["cell"], err["cell_line"]) == (5, 1)
    assert src.location(err["line"]) == "cell 5, line 1"


def test_bad_paths_are_submission_errors(tmp_path):
    with pytest.raises(SubmissionError, match="no such file or folder"):
        Submission(tmp_path / "nope.py")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(SubmissionError, match="not a submission"):
        Submission(tmp_path / "x.csv")


def test_notebook_is_graded_like_a_py_file(grade):
    r = grade("stable-softmax", "notebooks/softmax_with_magics.ipynb")
    assert r.status == "graded" and r.score == r.max_score


def test_notebook_syntax_error_points_at_the_cell(grade):
    r = grade("stable-softmax", "notebooks/notebook_syntax_error.ipynb")
    assert r.status == "error"
    assert r.error["kind"] == "syntax-error"
    assert (r.error["cell"], r.error["cell_line"]) == (5, 1)
