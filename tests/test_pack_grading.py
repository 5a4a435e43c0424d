"""The course pack's spec'd exercises graded end to end, as ``dlgrade check`` grades them.

Every correct fixture (several styles per exercise) gets full marks and no diagnosis;
every fixture that makes a mistake loses points and is expected to carry exactly that
mistake's diagnosis, tuple and dict outputs included (mistakes are matched on each
check's own output path, issue #12). Messages a student reads are pinned word for word.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dlgrade.graders.cli import main
from dlgrade.graders.spec import get_exercise

PACK = Path(__file__).parent / "fixtures" / "pack"

CORRECT = {
    "sigmoid-mse-grad": ["correct_sympy_style.py", "correct_latex.tex", "correct_exp_form.txt",
                         "correct_in_p.py"],
    "softmax-ce-grad": ["correct_vectorised.py", "correct_logsumexp_onehot.py", "correct_loops.py",
                        "correct_notebook.ipynb"],
    "activation-grads": ["correct_vectorised.py", "correct_class_based.py", "correct_loops.py"],
    "huber-loss": ["correct_where.py", "correct_clip.py", "correct_loops.py"],
    "hinge-loss": ["correct_vectorised.py", "correct_loops.py", "correct_mask.py"],
    "batchnorm-forward": ["correct_vectorised.py", "correct_loops.py", "correct_layer_class.py"],
    "batchnorm-backward": ["correct_closed_form.py", "correct_staged_graph.py", "correct_loops.py"],
    "l2-backprop": ["correct_vectorised.py", "correct_loops.py", "correct_layers.py"],
    "standardise": ["correct_numpy.py", "correct_loops.py", "correct_scaler_class.py"],
    "momentum-step": ["correct_pytorch_convention.py", "correct_lr_inside.py", "correct_in_place.py",
                      "correct_class_based.py"],
    "adam-step": ["correct_vectorised.py", "correct_pytorch_style.py"],
    "rmsprop-step": ["correct_vectorised.py", "correct_in_place.py"],
    "dropout": ["correct_random_mask.py", "correct_binomial.py", "correct_layer_class.py"],
    "xavier-init": ["correct_normal_scale.py", "correct_standard_normal.py", "correct_box_muller.py"],
    "xor-training": ["correct_full_batch_gd.py", "correct_adam_class.py", "correct_minibatch_sgd.py"],
}

# exercise -> [(fixture, the diagnoses it must get)]
WRONG = {
    "sigmoid-mse-grad": [
        ("bce_gradient.py", ("bce-gradient",)), ("missing_half.txt", ("missing-half",)),
        ("sign_flipped.py", ("sign-flipped",)), ("sigmoid_derivative_only.txt", ("sigmoid-derivative-only",)),
    ],
    "softmax-ce-grad": [
        ("missing_batch_mean.py", ("missing-batch-mean",)), ("onehot_not_subtracted.py", ("onehot-not-subtracted",)),
        ("softmax_over_batch.py", ("wrong-axis",)), ("sign_flipped.py", ("sign-flipped",)),
        ("naive_overflow.py", ("overflow",)), ("mutates_input.py", ("mutates-input",)),
    ],
    "activation-grads": [
        ("tanh_not_squared.py", ("tanh-not-squared",)),
        ("elu_value_branch.py", ("elu-branch",)),
        ("swish_first_term_only.py", ("swish-product-rule",)),
        ("swish_beta_missing.py", ("swish-beta-missing",)),
        ("softplus_value.py", ("softplus-value",)),
        ("relu_slope_only.py", ("relu-slope-only",)),
        ("kink_right_derivative.py", ()),  # a convention, not a named mistake: it loses the kink points only
        ("returns_a_list.py", ()),
    ],
    "huber-loss": [
        ("missing_delta.py", ("missing-delta",)),
        ("missing_delta_in_gradient.py", ("missing-delta",)),
        ("mae_instead.py", ("mae-instead",)),
        ("mse_instead.py", ("mse-instead",)),
        ("sum_not_mean.py", ("sum-not-mean",)),
        ("gradient_wrt_target.py", ("sign-flipped",)),
        ("returns_loss_only.py", ()),
    ],
    "hinge-loss": [
        ("margin_sign.py", ("margin-sign",)),
        ("missing_batch_mean.py", ("missing-batch-mean",)),
        ("sign_flipped.py", ("sign-flipped",)),
        ("kink_gradient_nonzero.py", ()),
    ],
    "batchnorm-forward": [
        ("unbiased_variance.py", ("unbiased-variance",)), ("per_example_statistics.py", ("wrong-axis",)),
        ("eps_outside_sqrt.py", ("eps-outside-sqrt",)), ("mutates_input.py", ("mutates-input",)),
    ],
    "batchnorm-backward": [
        ("batch_stats_constant.py", ("batch-stats-constant",)),
        ("variance_path_missing.py", ("variance-path-missing",)),
        ("dbeta_not_summed.py", ("dbeta-not-summed",)),
        ("dbeta_averaged.py", ("dbeta-not-summed",)),
    ],
    "l2-backprop": [
        ("biases_regularised.py", ("biases-regularised",)), ("missing_factor_2.py", ("missing-factor-2",)),
        ("half_penalty_cs231n.py", ("missing-factor-2",)), ("reg_not_in_gradient.py", ("reg-not-in-gradient",)),
        ("missing_relu_mask.py", ("missing-relu-mask",)),
        ("reg_not_in_loss.py", ("reg-not-in-loss",)),
    ],
    "standardise": [
        ("test_statistics_leak.py", ("test-statistics-leak",)),
        ("pooled_statistics.py", ("test-statistics-leak",)),
        ("per_row.py", ("per-row",)),
        ("sample_std.py", ("sample-std",)),
        ("mutates_input.py", ("mutates-input",)),
    ],
    "momentum-step": [
        ("velocity_not_decayed.py", ("velocity-not-decayed",)), ("lr_applied_twice.py", ("lr-applied-twice",)),
        ("sign_flipped.py", ("sign-flipped",)), ("ema_velocity.py", ("ema-velocity",)),
    ],
    "adam-step": [
        ("no_bias_correction.py", ("no-bias-correction",)), ("eps_inside_sqrt.py", ("eps-inside-sqrt",)),
        ("bias_correction_off_by_one.py", ("bias-correction-off-by-one",)),
    ],
    "rmsprop-step": [("no_sqrt.py", ("no-sqrt",)), ("rho_swapped.py", ("rho-swapped",))],
    "dropout": [
        ("not_inverted.py", ("not-inverted",)), ("keep_drop_swapped.py", ("keep-drop-swapped",)),
        ("dropout_at_eval.py", ("dropout-at-eval",)), ("scale_by_p.py", ("scale-by-p",)),
        ("global_rng.py", ("ignores-rng",)), ("mutates_input.py", ("mutates-input",)),
    ],
    "xavier-init": [
        ("constant_init.py", ("constant-init",)), ("zeros_init.py", ("constant-init",)),
        ("std_as_variance.py", ("std-as-variance",)), ("fan_out_used.py", ("fan-out-used",)),
        ("fan_average_used.py", ("fan-average-used",)), ("uniform_not_normal.py", ("uniform-not-normal",)),
        ("global_rng.py", ("ignores-rng",)), ("transposed.py", ("transposed",)),
    ],
    "xor-training": [
        # the data are shared by every student: a trainer's boundary is the same under every id
        ("linear_model.py", ("linear-model",)),
        ("undertrained.py", ("linear-model",)),  # 30 small steps: tanh still in its linear regime
        ("forgot_tanh.py", ("linear-model",)),  # no tanh: a straight boundary
        ("one_output_column.py", ()),
    ],
}


def _rows(table, marks: bool = True):
    for ex, rows in table.items():
        for row in rows:
            if isinstance(row, str):
                yield pytest.param(ex, row, id=f"{ex}/{row}")
            elif hasattr(row, "values"):  # a pytest.param
                yield pytest.param(ex, *row.values, marks=row.marks if marks else (), id=f"{ex}/{row.values[0]}")
            else:
                yield pytest.param(ex, *row, id=f"{ex}/{row[0]}")


def by_name(result):
    return {c.name: c for c in result.checks}


@pytest.mark.parametrize("exercise_id, fixture", list(_rows(CORRECT)))
def test_correct_styles_get_full_marks_and_no_diagnosis(grade, exercise_id, fixture):
    r = grade(exercise_id, PACK / exercise_id / fixture)
    assert r.status == "graded", r.message
    assert [(c.name, c.message) for c in r.checks if not c.passed] == []
    assert r.score == r.max_score
    assert r.diagnoses == ()
    json.dumps(r.to_dict(), allow_nan=False)


@pytest.mark.parametrize("exercise_id, fixture, expected", list(_rows(WRONG)))
def test_each_mistake_loses_points_and_is_named(grade, exercise_id, fixture, expected):
    r = grade(exercise_id, PACK / exercise_id / fixture)
    assert r.status == "graded", r.message
    assert r.score < r.max_score
    assert r.diagnoses == expected


@pytest.mark.parametrize("exercise_id, fixture, expected", list(_rows(WRONG, marks=False)))
def test_each_mistake_fixture_loses_points_today(grade, exercise_id, fixture, expected):
    """The half of the table above that holds whatever #12 does: every wrong fixture
    loses points, and none is named for a mistake it does not make."""
    r = grade(exercise_id, PACK / exercise_id / fixture)
    assert r.status == "graded", r.message
    assert r.score < r.max_score
    assert set(r.diagnoses) <= set(expected)


def test_max_scores():
    assert {e: get_exercise(e).max_score for e in CORRECT} == {
        "sigmoid-mse-grad": 10, "softmax-ce-grad": 10, "activation-grads": 12, "huber-loss": 10,
        "hinge-loss": 10, "batchnorm-forward": 10, "batchnorm-backward": 10, "l2-backprop": 10,
        "standardise": 10, "momentum-step": 10, "adam-step": 10, "rmsprop-step": 10, "dropout": 10,
        "xavier-init": 10, "xor-training": 10}
    assert len(CORRECT) == 15


# --------------------------------------------------------------------------- what a student reads


def test_messages_on_the_kinks_and_branch_boundaries(grade):
    c = by_name(grade("activation-grads", PACK / "activation-grads" / "kink_right_derivative.py"))
    assert [n for n, x in c.items() if not x.passed] == ["leaky ReLU at z = 0", "ELU at z = 0"]
    assert c["leaky ReLU at z = 0"].message == (
        "activation_grads(z)['leaky_relu'] is wrong on z = 0 exactly (the kink), alpha = 0.25 (case 'kink'): "
        "4 / 8 elements (50%) differ; worst at (0, 0): got 1, expected 0.25 (max abs error 0.75, max rel error 3; "
        "allowed 1e-09 + 1e-06·|expected|)")
    c = by_name(grade("hinge-loss", PACK / "hinge-loss" / "kink_gradient_nonzero.py"))
    assert [n for n, x in c.items() if not x.passed] == ["subgradient at the kink (margin exactly 1)"]
    assert c["subgradient at the kink (margin exactly 1)"].message == (
        "the gradient is wrong on margins exactly 1 (the kink) (case 'kink'): 2 / 6 elements (33.3%) differ; "
        "worst at (0,): got -0.166667, expected 0 (max abs error 0.166667, max rel error inf; "
        "allowed 1e-09 + 1e-06·|expected|)")
    assert c["subgradient w.r.t. scores"].message.startswith(
        "the gradient matches the reference on 2 inputs (max abs error ")


def test_messages_for_shapes_and_outputs_of_tuples(grade):
    c = by_name(grade("batchnorm-backward", PACK / "batchnorm-backward" / "dbeta_not_summed.py"))
    assert c["dbeta"].message == "dbeta has shape (16, 5) on a random batch (16 x 5) (case 'random'); expected (5,)"
    assert c["dx"].passed and c["dgamma"].passed
    c = by_name(grade("standardise", PACK / "standardise" / "test_statistics_leak.py"))
    assert c["standardised training set"].passed
    assert re.fullmatch(re.escape("Z_test is wrong on 20 training and 7 test examples, 4 features (case 'random'): "
                                  "28 / 28 elements (100%) differ; worst at ") + r".*", c[
        "test set scaled with the training statistics"].message)


def test_l2_penalty_left_out_of_the_loss_fails_the_loss_and_its_own_finite_differences(grade):
    r = grade("l2-backprop", PACK / "l2-backprop" / "reg_not_in_loss.py")
    c = by_name(r)
    assert [n for n, x in c.items() if not x.passed] == ["loss value", "gradients of your own loss"]
    assert c["gradients of your own loss"].message.startswith(
        "grads['W1'] disagrees with finite differences of your own loss on a random batch (N=8, D=5, H=7, C=4), "
        "reg = 0.1 (case 'random'): along a random direction, analytic ")
    assert r.score == 5


def test_symbolic_answers_name_the_mistake_with_a_point(grade):
    r = grade("sigmoid-mse-grad", PACK / "sigmoid-mse-grad" / "bce_gradient.py")
    c = by_name(r)
    assert c["parses"].passed and not c["equivalent to dL/dz"].passed
    assert re.fullmatch(r"not equal to dL/dz: at z = .*, y = [01] your expression gives .*, but dL/dz is .*",
                        c["equivalent to dL/dz"].message)
    assert r.score == 2


# --------------------------------------------------------------------------- fairness


@pytest.mark.parametrize("exercise_id, fixtures", [
    ("softmax-ce-grad", ["correct_loops.py", "onehot_not_subtracted.py"]),
    ("activation-grads", ["correct_class_based.py", "elu_value_branch.py"]),
    ("huber-loss", ["correct_clip.py", "missing_delta.py"]),
    ("hinge-loss", ["correct_mask.py", "margin_sign.py"]),
    ("batchnorm-forward", ["correct_loops.py", "eps_outside_sqrt.py"]),
    ("batchnorm-backward", ["correct_staged_graph.py", "variance_path_missing.py"]),
    ("l2-backprop", ["correct_layers.py", "missing_factor_2.py"]),
    ("standardise", ["correct_scaler_class.py", "sample_std.py"]),
    ("momentum-step", ["correct_lr_inside.py", "velocity_not_decayed.py"]),
    ("adam-step", ["correct_vectorised.py", "no_bias_correction.py"]),  # eps-inside-sqrt shows where draws are small
    ("dropout", ["correct_binomial.py", "keep_drop_swapped.py"]),
    ("xavier-init", ["correct_box_muller.py", "fan_average_used.py"]),
])
def test_the_same_file_scores_the_same_under_any_student_id(grade, exercise_id, fixtures):
    for fixture in fixtures:
        seen = {(r.score, r.diagnoses, tuple(c.passed for c in r.checks))
                for r in (grade(exercise_id, PACK / exercise_id / fixture, student=s)
                          for s in ("ana", "ben-2", "Zoë Ünal", "9999"))}
        assert len(seen) == 1, (fixture, seen)


# --------------------------------------------------------------------------- catalogue, statements, starters


def _cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_listed_shown_and_initialised(tmp_path):
    listing = _cli("list").output
    for ex in CORRECT:
        assert re.search(rf"^{re.escape(ex)} +(numpy|symbolic) +{get_exercise(ex).entry} ", listing, re.M), ex
        shown = _cli("show", ex)
        assert shown.exit_code == 0 and f"entry: {get_exercise(ex).signature}" in shown.output
        assert _cli("init", ex, str(tmp_path / f"{ex}.py")).exit_code == 0
        assert _cli("init", ex, "--notebook", str(tmp_path / f"{ex}.ipynb")).exit_code == 0
        nb = json.loads((tmp_path / f"{ex}.ipynb").read_text())
        assert "".join(nb["cells"][1]["source"]).strip() == (tmp_path / f"{ex}.py").read_text().strip()


@pytest.mark.parametrize("exercise_id", sorted(CORRECT))
def test_the_starter_is_found_and_scores_nothing(grade, tmp_path, exercise_id):
    ex = get_exercise(exercise_id)
    starter = tmp_path / "answer.py"
    starter.write_text(ex.starter.read_text())
    r = grade(exercise_id, starter)
    assert r.status == "graded" and r.score == 0 and r.diagnoses == ()
    if ex.framework == "numpy":
        assert all("raised NotImplementedError" in c.message for c in r.checks), [c.message for c in r.checks]


# --------------------------------------------------------------------------- diagnosis ids, titles, hints

BUILTIN_IDS = {"sign-flipped", "missing-chain-rule", "sigmoid-derivative-only", "mse-gradient", "overflow",
               "mutates-input", "wrong-axis", "missing-batch-mean", "transposed", "missing-relu-mask",
               "bias-not-summed", "smoothing-over-c-minus-1", "smoothing-not-applied", "device-mismatch",
               "not-differentiable", "ignores-rng", "linear-model", "log-underflow", "global-max-shift"}
WAITING = {"momentum-step": "dlgrade.reference.optimizers:MOMENTUM_MISTAKES", "adam-step": "dlgrade.reference.optimizers:ADAM_MISTAKES",
           "rmsprop-step": "dlgrade.reference.optimizers:RMSPROP_MISTAKES",
           "dropout": "dlgrade.reference.regularisation:DROPOUT_MISTAKES",
           "xavier-init": "dlgrade.reference.initialisation:XAVIER_MISTAKES", "xor-training": "dlgrade.reference.xor:MISTAKES"}


def _mistake_ids(target: str) -> set[str]:
    import importlib

    module, name = target.split(":")
    found = getattr(importlib.import_module(module), name)
    return set(found["xor-training"] if name == "MISTAKES" else found)


def test_every_mistake_of_a_spec_has_a_title_and_hint_or_is_a_contract_id():
    for ex_id in CORRECT:
        ex = get_exercise(ex_id)
        tables = ex.raw.get("diagnoses", {})
        for diag in ex.mistake_fns():
            assert diag in tables or diag in BUILTIN_IDS, (ex_id, diag)
        for diag, table in tables.items():
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", diag) and table["title"] and len(table["hint"]) > 40


def test_checks_md_of_waiting_exercises_carry_every_mistake_title_and_hint():
    import tomllib

    root = Path(__file__).parent.parent / "exercises"
    for ex_id, target in WAITING.items():
        text = (root / ex_id / "checks.md").read_text()
        block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
        tables = tomllib.loads(block)["diagnoses"]
        assert set(tables) == _mistake_ids(target), ex_id
        assert all(t["title"] and len(t["hint"]) > 40 for t in tables.values())


def test_contract_additions_list_every_new_diagnosis_id():
    text = (Path(__file__).parent.parent / "docs" / "contract-additions.md").read_text()
    section = text[text.index("## The course pack"):]
    ids = set().union(*(set(get_exercise(e).mistake_fns()) for e in CORRECT),
                      *(_mistake_ids(t) for t in WAITING.values()))
    for diag in ids - BUILTIN_IDS:
        assert f"| `{diag}` |" in section, diag
    for ex_id in [*CORRECT, *WAITING]:
        assert f"| `{ex_id}` |" in section, ex_id


def test_the_exercise_table_has_one_row_per_exercise():
    from dlgrade.graders.spec import catalogue

    text = (Path(__file__).parent.parent / "README.md").read_text()  # the README's exercise table
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (numpy|torch|symbolic) \|", text, re.M)
    assert sorted(rows) == sorted((ex.id, ex.framework) for ex in catalogue().values())
