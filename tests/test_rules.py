"""graders/rules.py and the worker's import guard: ``[rules] forbid_imports``.

The source scan (in-process, fast) decides direct imports with their line; the
guard in the job's child reports what the source cannot show (computed names,
``exec``), refuses forbidden imports while the entry runs, and keeps forbidden
modules out of ``sys.modules``. Hostile cases run in both isolation modes.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dlgrade.graders.api import grade_one
from dlgrade.graders.rules import CHECK_NAME, import_sites, rule_message, violations
from dlgrade.graders.runner import warm_preload
from dlgrade.graders.spec import Rules, get_exercise
from dlgrade.graders.submission import Submission, SubmissionSource

FIXTURES = Path(__file__).parent / "fixtures"
HOSTILE = FIXTURES / "hostile"
NUMPY_ONLY = Rules(("torch", "functorch", "jax", "tensorflow", "autograd"), "this exercise is numpy only")


def verdict(files: dict[str, str], entry: str = "softmax", main: str = "softmax.py", kind: str = "py") -> str | None:
    """The rule message the source alone gives, or None when it breaks no rule."""
    shipped = {k: v.encode() for k, v in files.items()}
    found = violations(import_sites(shipped, main, entry, NUMPY_ONLY), files=shipped)
    source = SubmissionSource(main, main, shipped, kind)
    return rule_message(NUMPY_ONLY.reason, found[0], source) if found else None


# --------------------------------------------------------------------------- the source


@pytest.mark.parametrize("code, message", [
    ("import numpy as np\n\nimport torch\n\ndef softmax(z, axis=-1):\n    return torch.softmax(torch.tensor(z), axis)\n",
     "this exercise is numpy only: `import torch` at line 3"),
    ("import numpy as np\nimport torch\n\ndef softmax(z, axis=-1):\n    return z\n",  # imported for nothing
     "this exercise is numpy only: `import torch` at line 2"),
    ("def softmax(z, axis=-1):\n    import jax.numpy as jnp\n    return jnp.exp(z)\n",
     "this exercise is numpy only: `import jax.numpy as jnp` at line 2"),
    ("from torch.autograd import grad\n\ndef softmax(z, axis=-1):\n    return grad\n",
     "this exercise is numpy only: `from torch.autograd import grad` at line 1"),
    ("import importlib\n\ndef softmax(z, axis=-1):\n    return importlib.import_module('torch').tensor(z)\n",
     "this exercise is numpy only: `importlib.import_module('torch')` at line 4"),
    ("def softmax(z, axis=-1):\n    return __import__('tensorflow').nn.softmax(z)\n",
     "this exercise is numpy only: `__import__('tensorflow')` at line 2"),
    ("from torch import *\n\ndef softmax(z, axis=-1):\n    return z\n",
     "this exercise is numpy only: `from torch import *` at line 1"),
    ("import torch\nW = torch.zeros(3)\n\ndef softmax(z, axis=-1):\n    return z + W.numpy()\n",
     "this exercise is numpy only: `import torch` at line 1"),
    ("import autograd.numpy as anp\nfrom autograd import grad\n\ndef softmax(z, axis=-1):\n    return grad(anp.exp)(z)\n",
     "this exercise is numpy only: `import autograd.numpy as anp` at line 1"),
])
def test_a_forbidden_import_the_entry_reaches_is_named_with_its_line(code, message):
    assert verdict({"softmax.py": code}) == message


@pytest.mark.parametrize("code", [
    # another exercise's code in the same file or notebook uses torch
    "import numpy as np\nimport torch\n\ndef softmax(z, axis=-1):\n    return z\n\n"
    "def label_smoothing_ce(logits, target, epsilon):\n    return torch.log_softmax(logits, 1)\n",
    "import torch\nimport torch.nn.functional as F\n\ndef softmax(z, axis=-1):\n    return z\n\n"
    "def label_smoothing_ce(logits, target, epsilon):\n    return F.cross_entropy(logits, target)\n",
    "import torch\ntorch.manual_seed(0)\n\ndef softmax(z, axis=-1):\n    return z\n",
    "def softmax(z, axis=-1):\n    return z\n\ndef other():\n    import torch\n    return torch\n",
    # not forbidden: another package, a word, a comment, a relative import
    "import torchvision\n# import torch\nx = 'import torch'\nfrom . import jax\n\ndef softmax(z, axis=-1):\n    return z\n",
    "import numpy as np\n\ndef softmax(z, axis=-1):\n    e = np.exp(z - z.max(axis, keepdims=True))\n"
    "    return e / e.sum(axis, keepdims=True)\n",
])
def test_imports_the_entry_never_reaches_break_no_rule(code):
    assert verdict({"softmax.py": code}) is None


def test_helper_modules_are_followed_by_name():
    main = "from helper import grads\n\ndef softmax(z, axis=-1):\n    return grads(z)\n"
    helper = "import numpy as np\nimport torch\n\ndef grads(z):\n    return torch.tensor(z).numpy()\n"
    assert verdict({"softmax.py": main, "helper.py": helper}) == \
        "this exercise is numpy only: `import torch` at line 2 of helper.py"
    main = "import helper\n\ndef softmax(z, axis=-1):\n    return helper.numpy_part(z)\n"
    helper = "import torch\n\ndef numpy_part(z):\n    return z\n\ndef torch_part(x):\n    return torch.relu(x)\n"
    assert verdict({"softmax.py": main, "helper.py": helper}) is None
    # another exercise's file in the folder, never imported by this one
    other = "import torch\nimport torch.nn.functional as F\n\ndef label_smoothing_ce(l, t, e):\n    return F.relu(l)\n"
    assert verdict({"softmax.py": "def softmax(z, axis=-1):\n    return z\n", "label_smoothing.py": other}) is None


def test_a_helper_named_like_a_forbidden_library_is_told_to_rename_it():
    main = "from autograd import grad\n\ndef softmax(z, axis=-1):\n    return grad(z)\n"
    assert verdict({"softmax.py": main, "autograd.py": "def grad(z):\n    return z\n"}) == (
        "this exercise is numpy only: `from autograd import grad` at line 1 "
        "(rename your autograd.py: autograd is a library this exercise forbids)")


def test_a_notebook_import_is_named_by_cell_and_line():
    from dlgrade.graders.submission import notebook_to_python
    import json

    nb = {"cells": [{"cell_type": "markdown", "source": "# hw"},
                    {"cell_type": "code", "source": "import numpy as np"},
                    {"cell_type": "code", "source": "import torch\ndef softmax(z, axis=-1):\n    return torch.tensor(z)"}]}
    code, line_map = notebook_to_python(json.dumps(nb).encode(), "hw.ipynb")
    shipped = {"hw_ipynb.py": code.encode()}
    found = violations(import_sites(shipped, "hw_ipynb.py", "softmax", NUMPY_ONLY))
    source = SubmissionSource("hw.ipynb", "hw_ipynb.py", shipped, "ipynb", line_map=line_map)
    assert rule_message(NUMPY_ONLY.reason, found[0], source) == "this exercise is numpy only: `import torch` at cell 3, line 1"


def test_a_module_the_exercise_forbids_is_warm_only_where_the_file_imports_it_at_load():
    top = {"hw.py": b"import torch\n"}
    nested = {"hw.py": b"def label_smoothing_ce(l, t, e):\n    import torch\n    return torch.relu(l)\n"}
    assert warm_preload(("numpy",), nested) == ("numpy", "torch")  # no rules: warm as before
    assert warm_preload(("numpy",), nested, ("torch", "jax")) == ("numpy",)  # never in the process
    assert warm_preload(("numpy",), top, ("torch",)) == ("numpy", "torch")  # imported at load anyway


# --------------------------------------------------------------------------- graded, end to end


def numpy_only(ex_id: str):
    from test_sandbox import SHORT

    return dataclasses.replace(get_exercise(ex_id), limits=dataclasses.replace(SHORT, wall_s=20, cpu_s=20))


def graded(runner, path, ex_id="stable-softmax"):
    return grade_one(numpy_only(ex_id), Submission(Path(path)), runner)


def rule_broken(r, message: str, found: str) -> None:
    assert (r.status, r.score, r.max_score) == ("graded", 0, 10)
    (c,) = r.checks
    assert (c.name, c.kind, c.passed, c.score, c.max_score) == (CHECK_NAME, "rules", False, 0, 10)
    assert c.message == message
    assert c.details["rule"] == "forbid_imports" and c.details["found"] == found


def test_gradients_from_torch_autograd_score_nothing_in_a_numpy_exercise(any_runner):
    r = graded(any_runner, HOSTILE / "backprop_torch_autograd.py", "two-layer-backprop")
    rule_broken(r, "this exercise is numpy only: `import torch` at line 4", "source")
    assert r.isolation == "" and r.output == ""  # decided before anything ran
    assert r.checks[0].details["line"] == 4 and r.checks[0].details["module"] == "torch"


def test_an_import_computed_while_the_entry_runs_is_refused_and_reported(any_runner):
    r = graded(any_runner, HOSTILE / "forbidden_import_at_call.py")
    rule_broken(r, 'this exercise is numpy only: `t = importlib.import_module("to" + "rch")` at line 9', "running")
    assert "no torch: No module named 'torch' (this exercise does not allow it)" in r.output


def test_an_import_computed_at_load_is_reported(any_runner):
    r = graded(any_runner, HOSTILE / "forbidden_import_at_load.py")
    rule_broken(r, 'this exercise is numpy only: `LIB = importlib.import_module("".join(["to", "rch"]))` at line 4',
                "loading")


def test_removing_the_import_finder_does_not_remove_the_guard(any_runner):
    r = graded(any_runner, HOSTILE / "forbidden_import_unhooked.py")
    rule_broken(r, "this exercise is numpy only: `__import__(name)` at line 13", "running")
    assert set(r.output.splitlines()) == {  # once per call of softmax
        f"refused: No module named {m!r} (this exercise does not allow it)" for m in ("torch", "jax", "torch.autograd")}
    found = [(v["module"].split(".")[0], v["line"]) for v in r.checks[0].details["violations"]]
    assert ("torch", 13) in found and ("jax", 13) in found and ("torch", 17) in found


def test_a_file_for_two_exercises_grades_its_numpy_part_with_torch_out_of_reach(any_runner):
    r = graded(any_runner, HOSTILE / "sees_no_torch.py")
    assert (r.status, r.score) == ("graded", 10)
    assert set(r.output.splitlines()) == {"torch modules: []"}
