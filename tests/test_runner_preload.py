"""graders/runner.py: which warm zygote a job goes to."""
from __future__ import annotations

import pytest

from dlgrade.graders.runner import warm_preload, zygote_preload


@pytest.mark.parametrize("source, expected", [
    (b"import numpy as np\n", ("numpy",)),
    (b"import torch\n", ("numpy", "torch")),
    (b"import torch.nn.functional as F\n", ("numpy", "torch")),
    (b"from torch import nn\n", ("numpy", "torch")),
    (b"def f():\n    import sympy\n", ("numpy", "sympy")),
    (b"import sympy, torch\n", ("numpy", "torch", "sympy")),
    (b"from .torch import x\n", ("numpy",)),            # a relative import is the student's own file
    (b"import torchvision\n", ("numpy",)),
    (b"import torch\ndef broken(:\n", ("numpy",)),      # unparsable: the job reports the syntax error
])
def test_heavy_imports_of_the_submission_are_preloaded(source, expected):
    assert warm_preload(("numpy",), {"hw.py": source}) == expected


def test_only_python_files_count_and_nothing_is_duplicated():
    files = {"notes.txt": b"import torch\n", "hw.py": b"import torch\n"}
    assert warm_preload(("numpy", "torch"), files) == ("numpy", "torch")
    assert warm_preload(("numpy",), {"notes.txt": b"import torch\n"}) == ("numpy",)


def test_zygotes_import_numpy_random_once_for_all_jobs():
    assert zygote_preload(("numpy",)) == ("numpy", "numpy.random")
    assert zygote_preload(("numpy", "torch")) == ("numpy", "numpy.random", "torch")


@pytest.mark.slow
def test_a_numpy_exercise_of_a_torch_importing_file_runs_in_the_torch_zygote(grade, runner):
    r = grade("stable-softmax", "batch/softmax_imports_torch.py")
    assert r.score == r.max_score == 10
    assert (("numpy", "torch"), False) in runner.workers
    assert runner.workers[(("numpy", "torch"), False)].info["preloaded"] == ["numpy", "numpy.random", "torch"]


def test_imports_nested_in_functions_branches_and_handlers_are_found():
    src = (b"def f():\n    if True:\n        try:\n            pass\n        except ImportError:\n"
           b"            import torch\n")
    assert warm_preload(("numpy",), {"hw.py": src}) == ("numpy", "torch")
    assert warm_preload(("numpy",), {"hw.py": b"x = 'torch'\n"}) == ("numpy",)  # a word is no import
