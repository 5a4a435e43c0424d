"""`dlgrade new`: a complete exercise folder to edit, one per framework.

Each scaffold is a real, small exercise that passes ``dlgrade test-exercise``
as written: a commented ``spec.toml``, ``statement.md``, ``starter.py``,
``reference.py`` (the trusted answer and one buggy reference), and
``submissions/correct.py`` / ``submissions/wrong.py`` to grade with
``dlgrade check``. The texts are templates below (``$id``, ``$entry``, ``$title``).
"""
from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from dlgrade.graders.errors import UserError
from dlgrade.graders.spec import FRAMEWORKS

ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
FILES = ("spec.toml", "statement.md", "starter.py", "reference.py",
         "submissions/correct.py", "submissions/wrong.py")


class ScaffoldError(UserError, ValueError):
    """The id, framework or destination cannot be used (one line for the author)."""


# --------------------------------------------------------------------------- numpy

NUMPY_SPEC = '''\
# A course exercise written by `dlgrade new`: edit every part of it, then check it:
#   dlgrade test-exercise $folder
# (the reference must get full marks, each mistake must be diagnosed, every check must be
# able to fail). The keys, check kinds and options: docs/adding-an-exercise.md.
id = "$id"                        # the id on the command line and in results
title = "$title"
framework = "numpy"               # numpy | torch | symbolic
entry = "$entry"                  # the function a submission must define
signature = "$entry(z) -> numpy.ndarray"
reference = "reference.py:$entry"   # the trusted answer: file.py:name in this folder
mistakes = "reference.py:MISTAKES"   # buggy references: {diagnosis id: function}
time_limit = 5                    # seconds per grading

# A diagnosis of this course: what a student reads when their answer matches the buggy
# reference of the same id (a built-in id such as "sign-flipped" needs no table).
[diagnoses.tanh-square-missing]
title = "tanh not squared"
hint = "The derivative of tanh is 1 - tanh(z)**2: square tanh before subtracting it from 1."

# What a submission may not do: this one is numpy only.
[rules]
forbid_imports = ["torch", "jax", "tensorflow", "autograd"]

[dims]                            # named sizes for the shapes below
N = 8
D = 5

# Seeded inputs: each student gets their own; regrading gives the same ones.
[cases.random]
description = "random inputs"
args = [{normal = ["N", "D"], scale = 2.0}]

[cases.saturated]
description = "large inputs (tanh saturates)"
args = [{normal = ["N", "D"], scale = 20.0}]

[[checks]]
name = "derivative values"
kind = "values"                   # the output against the reference, case by case
points = 3
cases = ["random", "saturated"]
label = "$entry(z)"               # how messages name the output

[[checks]]
name = "argument left unmodified"
kind = "no-mutation"              # the array arguments must be unchanged (mutates-input)
points = 1
cases = ["random"]
label = "$entry(z)"
hidden = true                     # students see its name and pass/fail only
'''

NUMPY_STATEMENT = '''\
# $title

Write `$entry(z)`: the element-wise derivative of `tanh(z)`, an array of the same
shape as `z`. Use numpy only, and do not modify `z`.
'''

NUMPY_STARTER = '''\
import numpy as np


def $entry(z):
    """The element-wise derivative of tanh at z."""
    raise NotImplementedError
'''

NUMPY_REFERENCE = '''\
"""The trusted answer and the buggy references of $id (never shown to students)."""
import numpy as np


def $entry(z):
    return 1.0 - np.tanh(z) ** 2


def tanh_not_squared(z):
    """The classic slip: 1 - tanh(z) instead of 1 - tanh(z)**2."""
    return 1.0 - np.tanh(z)


MISTAKES = {"tanh-square-missing": tanh_not_squared}
'''

NUMPY_CORRECT = '''\
import numpy as np


def $entry(z):
    t = np.tanh(z)
    return 1.0 - t * t
'''

NUMPY_WRONG = '''\
import numpy as np


def $entry(z):
    return 1.0 - np.tanh(z)
'''

# --------------------------------------------------------------------------- torch

TORCH_SPEC = '''\
# A course exercise written by `dlgrade new`: edit every part of it, then check it:
#   dlgrade test-exercise $folder
# The keys, check kinds and options: docs/adding-an-exercise.md.
id = "$id"
title = "$title"
framework = "torch"
entry = "$entry"
signature = "$entry(pred, target) -> torch.Tensor"
reference = "reference.py:$entry"
mistakes = "reference.py:MISTAKES"   # here a built-in diagnosis id: no [diagnoses] table needed
time_limit = 20                   # torch needs a little longer

[dims]
N = 16

[cases.random]
description = "a batch of 16 predictions"
args = [{normal = ["N"], torch = true, requires_grad = true}, {normal = ["N"], torch = true}]

[cases.float32]
description = "float32 predictions"
args = [{normal = ["N"], dtype = "float32", torch = true, requires_grad = true},
        {normal = ["N"], dtype = "float32", torch = true}]

[[checks]]
name = "loss values"
kind = "values"
points = 3
cases = ["random", "float32"]

[[checks]]
name = "gradient w.r.t. pred (autograd)"
kind = "autograd"                 # backward() works and the gradient matches the reference's
points = 2
cases = ["random"]

[[checks]]
name = "runs on any device (probe)"
kind = "device-probe"             # a stand-in GPU (PyTorch's meta device), on any machine
points = 1
cases = ["random"]

[[checks]]
name = "on a GPU"
kind = "gpu"                      # only where CUDA is present; 0 points unless [gpu] required = true
points = 0
cases = ["random"]
'''

TORCH_STATEMENT = '''\
# $title

Write `$entry(pred, target)`: the mean squared error of a batch, the scalar tensor
`mean((pred - target)**2)` over the batch, differentiable by autograd and on the
device of `pred`.
'''

TORCH_STARTER = '''\
import torch


def $entry(pred, target):
    """The mean over the batch of (pred - target)**2, a scalar tensor."""
    raise NotImplementedError
'''

TORCH_REFERENCE = '''\
"""The trusted answer and the buggy references of $id (never shown to students)."""
import torch


def $entry(pred, target):
    return ((pred - target) ** 2).mean()


def summed(pred, target):
    """A sum over the batch instead of a mean: N times too large."""
    return ((pred - target) ** 2).sum()


MISTAKES = {"missing-batch-mean": summed}
'''

TORCH_CORRECT = '''\
import torch


def $entry(pred, target):
    return torch.mean((pred - target) ** 2)
'''

TORCH_WRONG = '''\
import torch


def $entry(pred, target):
    return ((pred - target) ** 2).sum()
'''

# --------------------------------------------------------------------------- symbolic

SYMBOLIC_SPEC = '''\
# A course exercise written by `dlgrade new`: edit every part of it, then check it:
#   dlgrade test-exercise $folder
# The keys, check kinds and options: docs/adding-an-exercise.md.
id = "$id"
title = "$title"
framework = "symbolic"            # the answer is an expression, as text
entry = "$entry"                  # a string in a .py/notebook, or a $entry.txt/.tex file
signature = '$entry = "an expression in z"  (or a $entry.txt / .tex file)'
reference = "reference.py:derivative"   # a function returning a SymPy expression
mistakes = "reference.py:MISTAKES"      # {diagnosis id: function returning a SymPy expression}
time_limit = 10

[symbolic]
variables = ["z"]                 # the names an answer may use (SymPy symbols, real)
name = "dL/dz"                    # how messages name the reference
# discrete = { y = [0, 1] }       # a variable that only takes these values (a label)
# aliases = { p = "sigmoid(z)" }  # the statement's own names: accepted, meaning this
hints = { s = "sigmoid(z)" }      # a name refused, and what to write instead
simplify_s = 3                    # time budgets of the evaluator (seconds)
numeric_s = 3

[diagnoses.softplus-log-only]
title = "Only the logarithm's derivative"
hint = "d/du log(u) = 1/u is one factor: the chain rule also multiplies by du/dz = exp(z)."

[[checks]]
name = "parses"
kind = "symbolic-parse"           # the text reads as an expression in the variables
points = 2

[[checks]]
name = "equivalent to dL/dz"
kind = "symbolic-equivalence"     # equal to the reference for every value of the variables
points = 8
'''

SYMBOLIC_STATEMENT = '''\
# $title

With `L(z) = log(1 + exp(z))` (the softplus), give `dL/dz` as an expression in `z`,
e.g. `$entry = "..."` in a .py file, or the expression alone in `$entry.txt`.
Python/SymPy syntax (`exp`, `log`, `sigmoid`) and LaTeX are both accepted.
'''

SYMBOLIC_STARTER = '''\
# Your answer: dL/dz as an expression in z, in quotes.
$entry = ""
'''

SYMBOLIC_REFERENCE = '''\
"""The trusted derivative and the buggy ones of $id, as SymPy expressions (never typed in
as answer strings: each is derived from the loss)."""
import sympy as sp

z = sp.Symbol("z", real=True)


def loss():
    return sp.log(1 + sp.exp(z))


def derivative():
    return sp.diff(loss(), z)


def log_only():
    """1/u for u = 1 + exp(z): the chain rule's du/dz left out."""
    u = sp.Symbol("u", positive=True)
    return sp.diff(sp.log(u), u).subs(u, 1 + sp.exp(z))


MISTAKES = {"softplus-log-only": log_only}
'''

SYMBOLIC_CORRECT = '''\
$entry = "sigmoid(z)"
'''

SYMBOLIC_WRONG = '''\
$entry = "1/(1 + exp(z))"
'''

TEMPLATES = {
    "numpy": ("Derivative of tanh", (NUMPY_SPEC, NUMPY_STATEMENT, NUMPY_STARTER, NUMPY_REFERENCE,
                                     NUMPY_CORRECT, NUMPY_WRONG)),
    "torch": ("Mean squared error in torch", (TORCH_SPEC, TORCH_STATEMENT, TORCH_STARTER, TORCH_REFERENCE,
                                              TORCH_CORRECT, TORCH_WRONG)),
    "symbolic": ("Derivative of the softplus", (SYMBOLIC_SPEC, SYMBOLIC_STATEMENT, SYMBOLIC_STARTER,
                                                SYMBOLIC_REFERENCE, SYMBOLIC_CORRECT, SYMBOLIC_WRONG)),
}


def entry_for(exercise_id: str) -> str:
    """The entry name for an id: ``my-exercise`` -> ``my_exercise``."""
    return exercise_id.replace("-", "_")


def new_exercise(exercise_id: str, framework: str, dest: str | Path = ".") -> Path:
    """Write the folder ``dest/exercise_id`` for ``framework``; returns it.

    Raises ScaffoldError for an id that is not lower-case words joined by hyphens
    (``my-exercise``), an unknown framework, or a folder that exists already.
    """
    if not ID_PATTERN.match(exercise_id or ""):
        raise ScaffoldError(f"{exercise_id!r} cannot be an exercise id: use lower-case letters and digits "
                            "in words joined by hyphens, starting with a letter, like \"tanh-grad\"")
    entry = entry_for(exercise_id)
    if keyword.iskeyword(entry):
        raise ScaffoldError(f"{exercise_id!r} cannot be an exercise id: its entry {entry!r} is a Python keyword")
    if framework not in TEMPLATES:
        raise ScaffoldError(f"framework must be one of {', '.join(FRAMEWORKS)} (got {framework!r})")
    folder = Path(dest) / exercise_id
    if folder.exists():
        raise ScaffoldError(f"{folder} already exists")
    title, texts = TEMPLATES[framework]
    values = {"id": exercise_id, "entry": entry, "title": title, "folder": str(folder)}
    (folder / "submissions").mkdir(parents=True)
    for name, text in zip(FILES, texts):
        (folder / name).write_text(Template(text).substitute(values), encoding="utf-8")
    return folder
