"""Every buggy reference of the pack's spec'd exercises can be told apart, on the inputs
students are graded with, from the truth and from every other mistake of its exercise.

The cases are the specs' own (``make_cases``), seeded for many student ids: a mistake
that some student's inputs could not reveal, or that could be taken for another, fails
here. The evidence rule is the one of ``dlgrade.graders.diagnose`` applied, as issue #12 will
make the engine do, to each check's own output path (a tuple element, a dict key, a
gradient): a mistake is named when, on every (path, case) where it differs from the
truth by more than ten times the tolerance, the submission matches it.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import sympy as sp

from dlgrade.graders.compare import allclose, tolerance_for
from dlgrade.graders.engine import Context, select
from dlgrade.graders.inputs import make_cases
from dlgrade.graders.spec import get_exercise

SPEC_EXERCISES = ["softmax-ce-grad", "activation-grads", "huber-loss", "hinge-loss", "batchnorm-forward",
                  "batchnorm-backward", "l2-backprop", "standardise"]
STUDENTS = [f"student-{i}" for i in range(25)] + ["alice", "bob", "李", "o'brien", "x" * 80]
RTOL, ATOL = tolerance_for("float64")


def observations(ex):
    """(path, case) pairs whose values some check compares with the reference."""
    obs = []
    gradient = ex.raw.get("gradient", {})
    for check in ex.checks:
        if check.kind == "values":
            paths = [tuple(check.opt("output", ()))]
        elif check.kind == "gradients":
            paths = [(*gradient.get("grads", [1]), key) for key in gradient["params"]]
        else:
            continue
        obs += [(p, c) for p in paths for c in check.cases]
    return list(dict.fromkeys(obs))


def _arr(v):
    try:
        return np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        return None


def _close(a, b, scale=1.0):
    return a is not None and b is not None and allclose(a, b, RTOL * scale, ATOL * scale)


class Graded:
    """The truth and every mistake variant evaluated on one student's cases."""

    def __init__(self, exercise_id: str, student: str):
        self.ex = get_exercise(exercise_id)
        self.obs = observations(self.ex)
        names = sorted({c for _, c in self.obs})
        self.ctx = Context(self.ex, student, make_cases(self.ex, student, names))
        self.variants = {d: list(range(len(self.ctx.mistake_variants(d)))) for d in self.ex.mistake_fns()}

    def value(self, who, path, case):
        out = self.ctx.reference(case) if who is None else self.ctx.mistake(who[0], case, who[1])
        return _arr(select(out, path)) if out is not None else None

    def differs(self, who, path, case) -> bool:
        return not _close(self.value(who, path, case), self.value(None, path, case), 10.0)

    def diagnosed_as(self, submission) -> set[str]:
        """The diagnoses the evidence rule gives a submission that behaves like ``submission``
        (a (diagnosis, variant) pair, or None for the truth)."""
        found = set()
        for diag, variants in self.variants.items():
            for v in variants:
                pairs = [(_close(self.value(submission, p, c), self.value((diag, v), p, c)),
                          self.differs((diag, v), p, c)) for p, c in self.obs]
                distinguishing = [m for m, d in pairs if d]
                if distinguishing and all(distinguishing):
                    found.add(diag)
                    break
        return found


@pytest.mark.parametrize("exercise_id", SPEC_EXERCISES)
def test_every_mistake_is_seen_and_named_alone_for_every_student(exercise_id):
    for student in STUDENTS:
        g = Graded(exercise_id, student)
        assert g.diagnosed_as(None) == set()
        for diag, variants in g.variants.items():
            for v in variants:
                assert any(g.differs((diag, v), p, c) for p, c in g.obs), (student, diag, v)
                assert g.diagnosed_as((diag, v)) == {diag}, (student, diag, v)


@pytest.mark.parametrize("exercise_id", SPEC_EXERCISES)
def test_every_mistake_loses_points_on_its_own_checks(exercise_id):
    """A submission that is the buggy reference fails at least one check (not only a
    diagnosis table): some check's path differs beyond the tolerance on some case."""
    ex = get_exercise(exercise_id)
    g = Graded(exercise_id, "student-1")
    for diag, variants in g.variants.items():
        for v in variants:
            failing = [c.name for c in ex.checks if c.kind in ("values", "gradients") and any(
                not _close(g.value((diag, v), p, case), g.value(None, p, case))
                for p, case in observations_of(ex, c))]
            assert failing, (diag, v)


def observations_of(ex, check):
    gradient = ex.raw.get("gradient", {})
    if check.kind == "values":
        return [(tuple(check.opt("output", ())), c) for c in check.cases]
    return [((*gradient.get("grads", [1]), k), c) for k in gradient["params"] for c in check.cases]


def test_ordinary_cases_are_well_conditioned_for_every_student():
    """Fairness: whoever the student, the ordinary cases keep both Huber branches, both
    sides of the hinge's margin and live and dead ReLUs populated, so no student's
    inputs hide a mistake that another's reveal (the tests above), and no student gets
    a near-tie where rounding decides a branch."""
    for student in STUDENTS:
        huber = get_exercise("huber-loss")
        for name, case in make_cases(huber, student, ["random", "delta-half", "delta-two"]).items():
            (pred, target), delta = case.arrays()[0], case.kwargs.get("delta")
            delta = delta.value if delta is not None else 1.0
            r = np.abs(pred - target)
            assert (r < delta).sum() >= 2 and (r > delta).sum() >= 2, (student, name)
            assert np.min(np.abs(r - delta)) > 1e-9, (student, name)
        hinge = get_exercise("hinge-loss")
        for name, case in make_cases(hinge, student, ["random", "small-scores"]).items():
            s, y = case.arrays()[0]
            m = s * y
            assert (m < 1).sum() >= 2 and (m > 1).sum() >= 1, (student, name)
            assert np.min(np.abs(m - 1)) > 1e-9, (student, name)
        l2 = get_exercise("l2-backprop")
        for name, case in make_cases(l2, student, ["random", "square", "reg-zero"]).items():
            X, _, W1, b1, *_ = case.arrays()[0]
            z1 = X @ W1 + b1
            assert 0.15 < (z1 > 0).mean() < 0.85 and np.min(np.abs(z1)) > 1e-9, (student, name)


# --------------------------------------------------------------------------- sigmoid + MSE (symbolic)


def test_sigmoid_mse_mistakes_differ_from_the_truth_and_each_other_for_both_labels():
    from dlgrade.reference import sigmoid_mse

    z, y = sigmoid_mse.z, sigmoid_mse.y
    exprs = {"truth": sigmoid_mse.derivative(), **{d: f() for d, f in sigmoid_mse.MISTAKES.items()}}
    points = np.linspace(-6, 6, 25)
    values = {}
    for name, e in exprs.items():
        fn = sp.lambdify((z, y), e.rewrite(sp.exp), "numpy")
        values[name] = np.array([[fn(zz, label) for zz in points] for label in (0, 1)], dtype=float)
    for a, b in itertools.combinations(values, 2):
        for label in (0, 1):  # distinguishable within each label, so no case is ambiguous
            assert np.max(np.abs(values[a][label] - values[b][label])) > 1e-3, (a, b, label)
