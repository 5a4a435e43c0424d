"""graders/submission.py: finding entries without running student code."""
import os
from pathlib import Path

import pytest

from dlgrade.graders.submission import (
    LoadFailure, Refusal, Submission, SubmissionError, defined_names, literal_string, notebook_to_python,
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


# --------------------------------------------------------------------------- links, descriptors, limits

SECRET = "dlgrade-secret-6f1c2b9a"  # what a link points at must never be read


def _never_read(sub: Submission) -> None:
    for f in sub.files():
        assert SECRET.encode() not in (f.data or b"")
        assert f.data is None or f.refusal is None


@pytest.fixture
def secret_file(tmp_path):
    p = tmp_path / "private" / "grader_token.txt"
    p.parent.mkdir()
    p.write_text(f'{SECRET}\ndef softmax(z, axis=-1):\n    return "{SECRET}"\n')
    return p


def test_a_linked_file_in_a_folder_is_refused_never_read(tmp_path, secret_file):
    sub_dir = tmp_path / "alice"
    sub_dir.mkdir()
    (sub_dir / "softmax.py").symlink_to(secret_file)
    sub = Submission(sub_dir)
    _never_read(sub)
    with pytest.raises(LoadFailure) as err:
        sub.source_for("softmax")
    assert err.value.refusal == Refusal(str(sub_dir / "softmax.py"), "symlink",
                                        f"{sub_dir / 'softmax.py'} is a symbolic link; submit the file itself")
    assert sub.entries() == set() and sub.guessed_entries() == {"softmax"}


def test_a_link_to_the_installed_reference_is_refused(tmp_path):
    from dlgrade.reference import softmax as reference_softmax

    sub_dir = tmp_path / "bob"
    sub_dir.mkdir()
    (sub_dir / "softmax.py").symlink_to(reference_softmax.__file__)
    with pytest.raises(LoadFailure, match=r"softmax\.py is a symbolic link; submit the file itself$"):
        Submission(sub_dir).source_for("softmax")


def test_a_linked_helper_module_refuses_the_exercise_it_would_ship_with(tmp_path, secret_file):
    (tmp_path / "softmax.py").write_text("import helper\ndef softmax(z, axis=-1):\n    return z\n")
    (tmp_path / "helper.py").symlink_to(secret_file)
    (tmp_path / "sigmoid_bce_grad.txt").write_text("sigmoid(z) - y")
    sub = Submission(tmp_path, student="carol", display_root=tmp_path.parent)
    _never_read(sub)
    with pytest.raises(LoadFailure, match=rf"^{tmp_path.name}/helper\.py is a symbolic link; submit the file itself$"):
        sub.source_for("softmax")
    assert sub.source_for("sigmoid_bce_grad").text == "sigmoid(z) - y"  # a text entry ships no helper


@pytest.mark.parametrize("as_given", ["relative", "absolute"])
def test_a_linked_submission_folder_is_refused(tmp_path, monkeypatch, secret_file, as_given):
    real = tmp_path / "real"
    real.mkdir()
    (real / "softmax.py").write_text("def softmax(z, axis=-1):\n    return z\n")
    (tmp_path / "linked").symlink_to(real, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    base = Path("linked") if as_given == "relative" else tmp_path / "linked"
    for given, is_file in [(base, False), (base / "softmax.py", True)]:
        sub = Submission(given)
        assert sub.is_file is is_file and sub.files() == []
        assert sub.refusal == Refusal(str(base), "symlink", f"{base} is a symbolic link; submit the folder itself")
        with pytest.raises(LoadFailure):
            sub.source_for("softmax")


def test_a_lone_linked_file_and_a_dangling_link_are_refusals_not_missing_paths(tmp_path, secret_file):
    (tmp_path / "softmax.py").symlink_to(secret_file)
    (tmp_path / "gone.py").symlink_to(tmp_path / "nowhere.py")
    for name in ("softmax.py", "gone.py"):
        sub = Submission(tmp_path / name)
        assert sub.refusal.kind == "symlink" and sub.refusal.message.endswith("is a symbolic link; submit the file itself")
        assert sub.guessed_entries() == {Path(name).stem}


def test_a_fifo_is_refused_without_waiting_on_it(tmp_path):
    os = pytest.importorskip("os")
    (tmp_path / "softmax.py").write_text("def softmax(z, axis=-1):\n    return z\n")
    os.mkfifo(tmp_path / "helpers.py")
    sub = Submission(tmp_path)
    (helpers,) = [f for f in sub.files() if f.name == "helpers.py"]
    assert helpers.refusal.kind == "not-regular"
    assert helpers.refusal.message == f"{tmp_path / 'helpers.py'} is not a regular file; submit the file itself"


def test_files_over_the_limits_are_refused(tmp_path):
    from dlgrade.graders import submission

    big = tmp_path / "softmax.py"
    big.write_bytes(b"#" * (submission.MAX_FILE_BYTES + 1))
    sub = Submission(big)
    assert sub.refusal == Refusal(str(big), "too-large", f"{big}: file too large ({submission.MAX_FILE_BYTES + 1} "
                                                         f"bytes; the limit is {submission.MAX_FILE_BYTES})")


def colab_notebook(code: str, image_bytes: int) -> bytes:
    """A notebook as Colab saves it: code cells whose outputs hold base64 PNG figures."""
    import base64
    import json

    png = base64.b64encode(os.urandom(image_bytes)).decode()
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Homework 1\n"]}]
    for i in range(4):
        cells.append({"cell_type": "code", "execution_count": i + 1, "metadata": {"id": f"c{i}"},
                      "source": code.splitlines(True) if i == 0 else [f"total_{i} = sum(range({i}))\n"],
                      "outputs": [{"output_type": "display_data", "metadata": {},
                                   "data": {"image/png": png[i::4], "text/plain": ["<Figure>"]}}]})
    return json.dumps({"cells": cells, "metadata": {"colab": {"provenance": []}}, "nbformat": 4,
                       "nbformat_minor": 0}).encode()


def test_a_4mb_colab_notebook_of_figures_is_fine_but_megabytes_of_code_are_not(tmp_path):
    from dlgrade.graders import submission

    nb = tmp_path / "hw1.ipynb"
    nb.write_bytes(colab_notebook("import numpy as np\n"
                                  "def softmax(z, axis=-1):\n    return z\n", 3 * 2**20))
    assert nb.stat().st_size > 4 * 2**20 > submission.MAX_FILE_BYTES
    src = Submission(nb).source_for("softmax")
    assert src.kind == "ipynb" and b"def softmax" in src.files["hw1_ipynb.py"]
    huge = tmp_path / "huge.ipynb"
    huge.write_bytes(colab_notebook("def softmax(z, axis=-1):\n    return z\n" + "x = 1\n" * (submission.MAX_CODE_BYTES // 6 + 1), 10))
    with pytest.raises(LoadFailure, match=r"huge\.ipynb: the notebook's code cells hold \d+ bytes \(the limit is 2097152\)$"):
        Submission(huge).source_for("softmax")


def test_a_malformed_notebook_is_a_refusal_whose_entries_are_guessed(tmp_path):
    nb = tmp_path / "hw1.ipynb"
    nb.write_text('{"cells": [{"cell_type": "code", "source": "import numpy as np\\ndef softmax(z, axis=-1):\\n')
    sub = Submission(nb)
    assert sub.entries() == set() and "softmax" in sub.guessed_entries()
    with pytest.raises(LoadFailure, match=r"hw1\.ipynb: malformed notebook \(not valid JSON"):
        sub.source_for("softmax")
