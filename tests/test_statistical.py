"""The ``statistical`` kind (graders/checks/statistical.py): dropout and an initialiser graded
on properties of their random output, each with a stated false-failure probability."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dlgrade.graders.checks.protocol import OptionError, read_options, settings_of
from dlgrade.graders.checks.statistical import Options
from dlgrade.graders.inputs import make_case
from dlgrade.graders.spec import SpecError, get_exercise, load_exercise
from dlgrade.reference import statistics as stats

PACK = Path(__file__).parent / "fixtures" / "pack"
ROOT = Path(__file__).parent.parent

CORRECT = {"dropout": ["correct_random_mask.py", "correct_binomial.py", "correct_layer_class.py"],
           "xavier-init": ["correct_normal_scale.py", "correct_standard_normal.py", "correct_box_muller.py"]}
WRONG = {
    "dropout": {"not_inverted.py": "not-inverted", "keep_drop_swapped.py": "keep-drop-swapped",
                "dropout_at_eval.py": "dropout-at-eval", "scale_by_p.py": "scale-by-p", "global_rng.py": "ignores-rng",
                "mutates_input.py": "mutates-input"},
    "xavier-init": {"constant_init.py": "constant-init", "zeros_init.py": "constant-init",
                    "std_as_variance.py": "std-as-variance", "fan_out_used.py": "fan-out-used",
                    "fan_average_used.py": "fan-average-used", "uniform_not_normal.py": "uniform-not-normal",
                    "global_rng.py": "ignores-rng", "transposed.py": "transposed"},
}


def by_name(r):
    return {c.name: c for c in r.checks}


@pytest.mark.parametrize("exercise_id, fixture", [(e, f) for e, fs in CORRECT.items() for f in fs])
def test_every_correct_style_gets_full_marks_and_no_diagnosis(grade, exercise_id, fixture):
    for student in ("student-1", "student-2"):
        r = grade(exercise_id, PACK / exercise_id / fixture, student=student)
        assert (r.status, r.score, r.max_score, r.diagnoses) == ("graded", 10, 10, ()), [c.message for c in r.checks]


@pytest.mark.parametrize("exercise_id, fixture, diag", [(e, f, d) for e, fs in WRONG.items() for f, d in fs.items()])
def test_each_mistake_loses_points_and_is_named_alone(grade, exercise_id, fixture, diag):
    r = grade(exercise_id, PACK / exercise_id / fixture)
    assert r.status == "graded" and r.score < 10 and r.diagnoses == (diag,), (r.score, r.diagnoses)
    assert all(not c.diagnoses for c in r.checks if c.passed)


def test_dropout_messages(grade):
    r = by_name(grade("dropout", PACK / "dropout" / "global_rng.py"))
    assert r["uses its generator"].message == (
        "dropout(x, p, train, rng) gave different outputs for two generators of the same seed (numpy's global "
        "seed changed in between) on a batch (200 x 100) in training with p = 0.5 (case 'seeds'): draw from rng, "
        "not np.random")
    r = by_name(grade("dropout", PACK / "dropout" / "dropout_at_eval.py"))
    assert r["identity at evaluation and p = 0"].message == (
        "dropout(x, p, train, rng) changed 20000 / 20000 elements of x on a batch (200 x 100) at evaluation "
        "(train = False, p = 0.5) (case 'eval'); it must return x unchanged")
    r = by_name(grade("dropout", PACK / "dropout" / "keep_drop_swapped.py"))
    msg = r["drop rate"].message
    assert re.fullmatch(re.escape("dropout(x, p, train, rng) dropped ") + r"1\d{4}" + re.escape(" / 20000 units (")
                        + r"[\d.]+" + re.escape("%) with p = 0.2 on a batch (200 x 100) in training with p = 0.2 "
                                                "(case 'p-0.2'); a correct dropout drops between 3714 and 4291 "
                                                "(18.6%–21.5%) with probability 1 - 3.33333e-07"), msg), msg
    r = by_name(grade("dropout", PACK / "dropout" / "correct_random_mask.py"))
    assert r["zeros and scaled survivors"].message == "dropout: every element is 0 or x/(1 - p) on 3 inputs"
    assert r["uses its generator"].message == "dropout: draws from the generator it is given on 1 input"


def test_xavier_messages(grade):
    r = by_name(grade("xavier-init", PACK / "xavier-init" / "transposed.py"))
    assert r["shape (n_in, n_out)"].message == (
        "xavier_init(400, 100, rng) has shape (100, 400) on a 400 x 100 layer (case 'wide'); expected (400, 100) "
        "— is it transposed?")
    assert r["shape (n_in, n_out)"].diagnoses == ("transposed",)
    assert r["uses its generator"].passed
    r = by_name(grade("xavier-init", PACK / "xavier-init" / "zeros_init.py"))
    assert r["not constant"].message == (
        "xavier_init(400, 100, rng) returned a constant matrix (every entry 0) on a 400 x 100 layer (case 'wide'); "
        "the units of a layer would all stay identical")
    r = by_name(grade("xavier-init", PACK / "xavier-init" / "fan_out_used.py"))
    assert re.fullmatch(re.escape("xavier_init(400, 100, rng) has variance ") + r"0\.0\d+" + re.escape(
        " (sample of 40000 entries) on a 400 x 100 layer (case 'wide'); expected 1/n_in = 0.0025 (a correct "
        "initialiser falls in [0.00241215, 0.00258987] with probability 1 - 5e-07)"), r["variance 1/n_in"].message)
    assert r["variance 1/n_in"].diagnoses == ("fan-out-used",) and r["mean 0"].passed
    r = by_name(grade("xavier-init", PACK / "xavier-init" / "uniform_not_normal.py"))
    assert re.fullmatch(re.escape("xavier_init(400, 100, rng) does not look normal on a 400 x 100 layer (case "
                                  "'wide'): ") + r"1\d{4} / 20000 entries within one standard deviation \(5\d\.\d%\); "
                        + re.escape("a normal sample has 65.3%–71.2% with probability 1 - 5e-07"),
                        r["normal entries"].message), r["normal entries"].message
    assert r["variance 1/n_in"].passed  # the right variance: it loses the normality point only


def test_the_bands_in_the_specs_fail_a_correct_function_with_probability_at_most_1e_6():
    dropout = get_exercise("dropout")
    rate = next(c for c in dropout.checks if c.opt("test") == "rate")
    alpha = settings_of(rate, Options).alpha / len(rate.cases)
    n = 200 * 100
    total = sum(stats.binomial_outside(n, float(dropout.cases[c]["args"][1]), *stats.binomial_band(
        n, float(dropout.cases[c]["args"][1]), alpha)) for c in rate.cases)
    assert total <= 1e-6
    xavier = get_exercise("xavier-init")
    for check in xavier.checks:
        opts = settings_of(check, Options)
        if opts.test not in ("mean", "variance", "normal"):
            continue
        a = opts.alpha / len(check.cases)
        p = 0.0
        for case in check.cases:
            n_in, n_out = xavier.cases[case]["args"][:2]
            n, v = n_in * n_out, 1 / n_in
            if opts.test == "mean":
                p += stats.normal_two_sided(stats.mean_band(n, v, a) / np.sqrt(v / n))
            elif opts.test == "variance":
                p += stats.variance_outside(n, v, *stats.variance_band(n, v, a))
            else:
                p += a  # normal_fraction_band's guarantee (tests/test_pack_proposals.py checks it)
        assert p <= 1e-6 * (1 + 1e-9), check.name


def test_a_generator_argument_is_built_from_a_seed_per_student_and_case():
    spec = {"args": [{"normal": [3]}, {"rng": True}]}
    a, b = make_case("c", spec, {}, 1), make_case("c", spec, {}, 2)
    assert a.args[1].rng is not None and a.args[1].rng != b.args[1].rng
    g1, g2 = a.arrays()[0][1], a.arrays()[0][1]
    assert isinstance(g1, np.random.Generator) and g1.random() == g2.random()  # fresh each time


def _spec_with(tmp_path, old: str, new: str) -> Path:
    folder = tmp_path / "xavier-init"
    folder.mkdir(parents=True)
    text = (ROOT / "exercises" / "xavier-init" / "spec.toml").read_text()
    assert old in text
    (folder / "spec.toml").write_text(text.replace(old, new, 1))
    return folder


def test_spec_typos_are_one_line(tmp_path):
    folder = _spec_with(tmp_path, 'test = "variance"', 'test = "varience"')
    with pytest.raises(SpecError) as err:
        load_exercise(folder)
    assert str(err.value) == (
        f"{folder / 'spec.toml'}: check 'variance 1/n_in': option 'test' must be one of "
        "support, rate, identity, shape, not-constant, mean, variance, normal, generator (got 'varience')")
    with pytest.raises(OptionError, match=re.escape("test 'mean' needs option 'std'")):
        read_options(Options, {"test": "mean"})
    with pytest.raises(OptionError, match=re.escape("missing required option 'test'")):
        read_options(Options, {})


# --------------------------------------------------------------------------- every mistake, every student

from dlgrade.graders import engine  # noqa: E402
from dlgrade.graders.checks import statistical  # noqa: E402
from dlgrade.graders.inputs import make_cases  # noqa: E402
from dlgrade.graders.decoding import Leaf  # noqa: E402
from dlgrade.reference import initialisation  # noqa: E402

STUDENTS = [f"student-{i}" for i in range(12)] + ["alice", "李"]


def graded_in_process(exercise_id: str, student: str, fn):
    """The statistical checks' own plan and evaluation, the sandbox's calls replaced by
    ``fn`` run here with the same generator seeds and global seeds: (score, max, diagnoses)."""
    ex = get_exercise(exercise_id)
    ctx = engine.Context(ex, student, make_cases(ex, student, sorted({c for k in ex.checks for c in k.cases})))
    checks = [c for c in ex.checks if c.kind == "statistical"]
    for check in checks:
        for call in statistical.plan(check, ctx):
            ctx.planned.setdefault(call.id, call)
    for cid, call in ctx.planned.items():
        seed = call.args[statistical._rng_index(ctx, call.case)]["rng"] if call.args else None
        out, changed = statistical._trusted(fn, ctx, call.case, seed, call.global_seed)
        ctx.calls[cid] = engine.CallResult(status="ok", output=Leaf(out) if out is not None else None,
                                           global_changed=changed)
    results = [statistical.evaluate(c, ctx) for c in checks]
    return sum(r.score for r in results), sum(c.points for c in checks), {d for r in results for d in r.diagnoses}


def _transposed(n_in, n_out, rng):
    return initialisation.xavier_init(n_in, n_out, rng).T


@pytest.mark.slow
@pytest.mark.parametrize("exercise_id", ["dropout", "xavier-init"])
def test_every_mistake_variant_is_named_alone_for_every_student(exercise_id):
    ex = get_exercise(exercise_id)
    mistakes = dict(ex.mistake_fns())
    if exercise_id == "xavier-init":
        mistakes["transposed"] = _transposed
    for student in STUDENTS:
        score, top, found = graded_in_process(exercise_id, student, ex.reference_fn())
        assert (score, found) == (top, set()), student
        for diag, fns in mistakes.items():
            for fn in (fns if isinstance(fns, tuple) else (fns,)):
                score, top, found = graded_in_process(exercise_id, student, fn)
                assert score < top and found == {diag}, (student, fn.__name__, score, found)


def test_the_precomputed_bands_are_exact_and_cover_the_builtin_specs():
    """``dlgrade check`` of a statistical exercise in a fresh process reads its χ² and normal
    quantiles from graders/data/statistical_bands.json (seconds of mpmath otherwise)."""
    from dlgrade.graders.checks import bands

    needed = bands.needed_by_builtin()
    stored = bands.table()
    assert needed["chi2_band"] and needed["normal_quantile"] and needed["normal_fraction_band"]
    for kind, entries in needed.items():
        for key, value in entries.items():
            assert stored[kind][key] == pytest.approx(value, rel=1e-12), (kind, key)
    assert bands.variance_band(40000, 1 / 400, 5e-7) == pytest.approx(stats.variance_band(40000, 1 / 400, 5e-7),
                                                                      rel=1e-12)
    # a size outside the table is computed exactly
    assert bands.chi2_band(99, 1e-3) == pytest.approx(stats.chi2_band(99, 1e-3), rel=1e-12)


def test_non_finite_values_and_lists_are_named_before_any_statistic(grade):
    here = Path(__file__).parent / "fixtures" / "statistical"
    r = by_name(grade("xavier-init", here / "xavier_overflows.py"))
    assert r["variance 1/n_in"].message == (
        "xavier_init(400, 100, rng) returned 1 non-finite value on a 400 x 100 layer (case 'wide') "
        "(first at (0, 0): inf); expected finite values")
    assert r["shape (n_in, n_out)"].passed and r["uses its generator"].passed
    r = grade("dropout", here / "dropout_returns_a_list.py")
    assert r.diagnoses == ()
    checks = by_name(r)
    assert checks["drop rate"].message == (
        "dropout(x, p, train, rng) returned a value of type list of 200 items on a batch (200 x 100) in training "
        "with p = 0.2 (case 'p-0.2'); expected an array of shape (200, 100)")
    assert checks["uses its generator"].message == (
        "dropout(x, p, train, rng) returned a value of type list of 200 items on a batch (200 x 100) in training "
        "with p = 0.5 (case 'seeds'); expected an array")


def test_a_case_without_a_generator_or_a_std_that_does_not_resolve_is_a_spec_error(tmp_path):
    folder = _spec_with(tmp_path, "args = [400, 100, {rng = true}]", "args = [400, 100, 7]")
    with pytest.raises(SpecError, match=re.escape(
            "check 'shape (n_in, n_out)': case 'wide' needs an {rng = true} argument")):
        load_exercise(folder)
    folder = _spec_with(tmp_path / "b", 'std = "dlgrade.reference.initialisation:STD"',
                        'std = "dlgrade.reference.initialisation:SDT"')
    with pytest.raises(SpecError, match=re.escape(
            "check 'mean 0': option 'std': dlgrade.reference.initialisation has no 'SDT'")):
        load_exercise(folder)
