"""What a check sees in the trusted grader: the exercise, the seeded cases, the
decoded results of its calls, and the reference and buggy references computed
here, in this process, on the same inputs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dlgrade.graders.inputs import Case
from dlgrade.graders.job import Call, CallResult  # noqa: F401  (a check's planned calls)
from dlgrade.graders.decoding import Leaf
from dlgrade.graders.threads import one_torch_thread

if TYPE_CHECKING:  # pragma: no cover
    from dlgrade.graders.spec import Exercise


class Context:
    """What a check sees: the exercise, the seeded cases, the calls' results,
    and lazily computed reference and buggy-reference outputs."""

    def __init__(self, exercise: Exercise, student: str, cases: dict[str, Case]):
        self.exercise = exercise
        self.student = student
        self.cases = cases
        self.calls: dict[str, CallResult] = {}
        self.planned: dict[str, Call] = {}
        self._ref_cache: dict[str, Any] = {}
        self._mistake_cache: dict[tuple[str, str], Any] = {}
        self._mistake_errors: dict[tuple[str, str, int], Exception] = {}
        self.extra: dict[str, Any] = {}
        self.compared: list = []  # Compared records: the values checks compare (for mistake matching)

    # -- reference side (trusted, in this process)
    def reference(self, case: str) -> Any:
        if case not in self._ref_cache:
            self._ref_cache[case] = self._call_trusted(self.exercise.reference_fn(), case)
        return self._ref_cache[case]

    def mistake_variants(self, diag_id: str) -> list:
        """The buggy references for one diagnosis id (a spec may give several)."""
        fns = self.exercise.mistake_fns()[diag_id]
        return list(fns) if isinstance(fns, (list, tuple)) else [fns]

    def mistake(self, diag_id: str, case: str, variant: int = 0) -> Any:
        key = (diag_id, case, variant)
        if key not in self._mistake_cache:
            fn = self.mistake_variants(diag_id)[variant]
            try:
                self._mistake_cache[key] = self._call_trusted(fn, case)
            except Exception as exc:  # a buggy reference may legitimately fail on some inputs
                self._mistake_cache[key] = None
                self._mistake_errors[key] = exc
        return self._mistake_cache[key]

    def mistake_error(self, diag_id: str, case: str, variant: int = 0) -> Exception | None:
        """What the buggy reference raised on ``case`` (None when it returned)."""
        self.mistake(diag_id, case, variant)
        return self._mistake_errors.get((diag_id, case, variant))

    def _call_trusted(self, fn, case_name: str, device: str = "cpu", dtype: str | None = None):
        case = self.cases[case_name]
        args, kwargs = case.arrays()
        if self.exercise.framework == "torch":
            args = [to_torch(a, spec, device, dtype) for a, spec in zip(args, case.args)]
            kwargs = {k: to_torch(v, case.kwargs[k], device, dtype) for k, v in kwargs.items()}
        with np.errstate(all="ignore"), one_torch_thread():  # the grader's own torch: one thread
            out = fn(*args, **kwargs)
            return to_plain(out)

    def call(self, call_id: str) -> CallResult:
        return self.calls.get(call_id, CallResult(status="not-run"))


def to_torch(value, arg, device="cpu", dtype=None):
    if not getattr(arg, "torch", False) or not isinstance(value, np.ndarray):
        return value
    import torch

    t = torch.from_numpy(np.ascontiguousarray(value))
    if dtype and t.is_floating_point():
        t = t.to(getattr(torch, dtype))
    t = t.to(device)
    if arg.requires_grad:
        t.requires_grad_(True)
    return t


def to_plain(out):
    """Reference outputs as plain numpy (tensors detached), mirroring :func:`decode`."""
    if isinstance(out, (tuple, list)):
        return tuple(to_plain(o) for o in out)
    if isinstance(out, dict):
        return {k: to_plain(v) for k, v in out.items()}
    if hasattr(out, "detach"):
        return out.detach().cpu().double().numpy() if out.is_floating_point() else out.detach().cpu().numpy()
    if isinstance(out, (np.ndarray, np.generic, float, int)):
        return np.asarray(out)
    return out


def leaf_array(value) -> np.ndarray | None:
    """The array behind a decoded student value, or None if it is not numeric."""
    if isinstance(value, Leaf):
        return value.array
    return None


def select(tree, path: tuple):
    for key in path:
        if isinstance(tree, dict) and key in tree:
            tree = tree[key]
        elif isinstance(tree, (tuple, list)) and isinstance(key, int) and -len(tree) <= key < len(tree):
            tree = tree[key]
        else:
            return None
    return tree
