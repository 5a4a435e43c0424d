"""The checks proposed in ``exercises/<id>/checks.md`` for the exercises that need the future
``sequences``, ``statistical`` and ``training`` kinds, run in-process on the fixtures.

Each proposal is written here as a small function that computes exactly what its
checks.md says (cases, properties, bands, points, the evidence for each diagnosis),
so the proposal is tested before the kind exists: every correct fixture gets full
marks and no diagnosis, every mistake fixture loses points and gets its own
diagnosis, and each statistical check's false-failure probability is computed and
bounded by 1e-6. The fixtures' code runs in this process here (it is ours); the real
kinds run it in the sandbox.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from dlgrade.reference import initialisation, optimizers, regularisation, xor
from dlgrade.reference import statistics as stats

PACK = Path(__file__).parent / "fixtures" / "pack"
RTOL, ATOL = 1e-6, 1e-12


def load(exercise_id: str, fixture: str, entry: str):
    path = PACK / exercise_id / fixture
    spec = importlib.util.spec_from_file_location(f"pack_{exercise_id}_{path.stem}".replace("-", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, entry)


def fixtures(exercise_id: str, correct: bool):
    names = sorted(p.name for p in (PACK / exercise_id).glob("*.py"))
    return [n for n in names if n.startswith("correct_") == correct]


def differing(truth: dict, buggy: dict) -> frozenset:
    return frozenset(k for k in truth if buggy.get(k) != truth[k])


def evidence(student: dict, truth: dict, buggy: dict) -> bool:
    """The evidence rule over features: on every feature where the buggy reference differs
    from the truth (there is at least one), the submission has the buggy value."""
    keys = differing(truth, buggy)
    return bool(keys) and all(student.get(k) == buggy.get(k) for k in keys)


def diagnose(student: dict, truth: dict, mistakes: dict) -> set[str]:
    """Every mistake with evidence, less those another one with evidence explains more
    fully (its differing features a strict superset): a dropout that keeps units with
    probability p and scales them by 1/p also shows "survivors scaled by 1/p", but it is
    named keep-drop-swapped only."""
    matched = {d: [differing(truth, v) for v in variants if evidence(student, truth, v)]
               for d, variants in mistakes.items()}
    matched = {d: max(sets, key=len) for d, sets in matched.items() if sets}
    return {d for d, keys in matched.items() if not any(keys < other for e, other in matched.items() if e != d)}


# =========================================================================== sequences


def _seq_case(seed, shape, steps, scale=1.0, **kwargs):
    rng = np.random.default_rng(seed)
    return {"w0": rng.normal(size=shape), "grads": [rng.normal(scale=scale, size=shape) for _ in range(steps)],
            "kwargs": kwargs}


# exercise -> (entry, state arrays, counts t from 1?, {case: (shape, steps, grad scale, kwargs)}, {check: (points, cases)})
SEQUENCES = {
    "momentum-step": ("momentum_step", 1, False,
                      {"one-step": ((3, 4), 1, 1.0, {}), "trajectory": ((3, 4), 6, 1.0, {}),
                       "hyper": ((7,), 5, 1.0, dict(lr=0.1, beta=0.5))},
                      {"first step from zero velocity": (2, ["one-step"]), "six steps": (5, ["trajectory"]),
                       "other lr and beta": (3, ["hyper"])}),
    "adam-step": ("adam_step", 2, True,
                  {"one-step": ((3, 4), 1, 1.0, {}), "trajectory": ((3, 4), 6, 1.0, {}),
                   "tiny": ((3, 4), 6, 1e-5, {}),
                   "hyper": ((7,), 5, 1.0, dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6))},
                  {"first step (t = 1)": (2, ["one-step"]), "six steps": (4, ["trajectory"]),
                   "tiny gradients": (2, ["tiny"]), "other hyper-parameters": (2, ["hyper"])}),
    "rmsprop-step": ("rmsprop_step", 1, False,
                     {"one-step": ((3, 4), 1, 1.0, {}), "trajectory": ((3, 4), 6, 1.0, {}),
                      "hyper": ((7,), 5, 1.0, dict(lr=0.01, rho=0.7))},
                     {"first step from zero state": (2, ["one-step"]), "six steps": (5, ["trajectory"]),
                      "other lr and rho": (3, ["hyper"])}),
}
SEQ_MISTAKES = {"momentum-step": optimizers.MOMENTUM_MISTAKES, "adam-step": optimizers.ADAM_MISTAKES,
                "rmsprop-step": optimizers.RMSPROP_MISTAKES}
SEQ_REFERENCE = {"momentum-step": optimizers.momentum_step, "adam-step": optimizers.adam_step,
                 "rmsprop-step": optimizers.rmsprop_step}


def run_sequence(step, case, n_state: int, counts_t: bool):
    """The harness: zero state, the student's own returned state fed back, a copy of every
    returned array taken at once (in-place updates are allowed). The displacements
    ``w_k - w_0``, or the first structural problem as a string."""
    w0 = case["w0"]
    w, state, out = w0.copy(), [np.zeros_like(w0) for _ in range(n_state)], []
    for k, g in enumerate(case["grads"]):
        extra = (k + 1,) if counts_t else ()
        with np.errstate(all="ignore"):
            ret = step(w.copy(), g.copy(), *[s.copy() for s in state], *extra, **case["kwargs"])
        if not isinstance(ret, tuple) or len(ret) != 1 + n_state:
            return f"step {k + 1} returned {type(ret).__name__}; expected a tuple of {1 + n_state} arrays"
        arrays = [np.array(r, dtype=np.float64, copy=True) for r in ret]
        if any(a.shape != w0.shape for a in arrays):
            return f"step {k + 1} returned shapes {[a.shape for a in arrays]}; expected {w0.shape}"
        w, *state = arrays
        out.append(w - w0)
    return out


def _close(a, b, scale=1.0):
    return all(x.shape == y.shape and np.allclose(x, y, rtol=RTOL * scale, atol=ATOL * scale, equal_nan=True)
               for x, y in zip(a, b))


def grade_sequence(exercise_id: str, step, student: int = 0) -> tuple[float, float, set[str]]:
    """(score, max score, diagnoses) by the proposal in exercises/<id>/checks.md, on the
    cases of one student (their seeds depend on ``student``)."""
    _, n_state, counts_t, cases, checks = SEQUENCES[exercise_id]
    made = {name: _seq_case(1000 * student + i + 1, shape, steps, scale, **kw)
            for i, (name, (shape, steps, scale, kw)) in enumerate(cases.items())}
    ref = {n: run_sequence(SEQ_REFERENCE[exercise_id], c, n_state, counts_t) for n, c in made.items()}
    got = {n: run_sequence(step, c, n_state, counts_t) for n, c in made.items()}
    score = sum(points for points, names in checks.values()
                if all(not isinstance(got[n], str) and _close(got[n], ref[n]) for n in names))
    found = set()
    for diag, fns in SEQ_MISTAKES[exercise_id].items():
        for fn in (fns if isinstance(fns, tuple) else (fns,)):
            bug = {n: run_sequence(fn, c, n_state, counts_t) for n, c in made.items()}
            pairs = [(not isinstance(got[n], str) and _close(got[n], bug[n]), not _close(bug[n], ref[n], 10))
                     for n in made]
            distinguishing = [m for m, d in pairs if d]
            if distinguishing and all(distinguishing):
                found.add(diag)
    return score, sum(p for p, _ in checks.values()), found


SEQ_WRONG = {
    "momentum-step": {"velocity_not_decayed.py": "velocity-not-decayed", "lr_applied_twice.py": "lr-applied-twice",
                      "sign_flipped.py": "sign-flipped", "ema_velocity.py": "ema-velocity"},
    "adam-step": {"no_bias_correction.py": "no-bias-correction", "eps_inside_sqrt.py": "eps-inside-sqrt",
                  "bias_correction_off_by_one.py": "bias-correction-off-by-one"},
    "rmsprop-step": {"no_sqrt.py": "no-sqrt", "rho_swapped.py": "rho-swapped"},
}


@pytest.mark.parametrize("exercise_id", list(SEQUENCES))
def test_sequence_proposal_gives_every_correct_style_full_marks(exercise_id):
    entry = SEQUENCES[exercise_id][0]
    names = fixtures(exercise_id, correct=True)
    assert len(names) >= 2
    for name in names:
        score, top, found = grade_sequence(exercise_id, load(exercise_id, name, entry))
        assert (score, found) == (top, set()), name
        assert top == 10


@pytest.mark.parametrize("exercise_id", list(SEQUENCES))
def test_sequence_proposal_names_each_mistake_and_takes_points(exercise_id):
    entry = SEQUENCES[exercise_id][0]
    assert set(SEQ_WRONG[exercise_id].values()) == set(SEQ_MISTAKES[exercise_id])
    assert set(SEQ_WRONG[exercise_id]) == set(fixtures(exercise_id, correct=False))
    for name, diag in SEQ_WRONG[exercise_id].items():
        score, top, found = grade_sequence(exercise_id, load(exercise_id, name, entry))
        assert score < top and found == {diag}, (name, score, found)


def test_adam_eps_inside_sqrt_shows_for_every_student_in_tiny_and_only_where_gradients_are_small():
    """Why the 'tiny gradients' case exists: the two placements of eps differ by about
    eps/(2·v̂) relative, invisible for gradients of order 1, large near sqrt(eps)."""
    _, n_state, counts_t, cases, _ = SEQUENCES["adam-step"]
    shape, steps, scale, kw = cases["tiny"]
    for seed in range(30):  # whatever the student's draws
        case = _seq_case(seed, shape, steps, scale, **kw)
        a = run_sequence(optimizers.adam_step, case, n_state, counts_t)
        b = run_sequence(optimizers.adam_eps_inside_sqrt, case, n_state, counts_t)
        assert not _close(a, b, 10), seed
    big = {"w0": np.zeros(3), "grads": [np.array([0.5, -1.0, 2.0])] * 3, "kwargs": {}}
    a = run_sequence(optimizers.adam_step, big, n_state, counts_t)
    b = run_sequence(optimizers.adam_eps_inside_sqrt, big, n_state, counts_t)
    assert _close(a, b)


def test_a_step_returning_nothing_is_a_structural_failure():
    def in_place_only(w, g, v, lr=0.01, beta=0.9):
        v *= beta
        v += g
        w -= lr * v

    got = run_sequence(in_place_only, _seq_case(0, (2, 2), 2), 1, False)
    assert got == "step 1 returned NoneType; expected a tuple of 2 arrays"


# =========================================================================== dropout (statistical)

DROP_P = (0.2, 0.5, 0.7)
DROP_ALPHA = stats.ALPHA / len(DROP_P)  # the rate check covers three values of p
DROP_CHECKS = {"zeros and scaled survivors": 3, "drop rate": 3, "identity at evaluation and p = 0": 2,
               "uses its generator": 1, "argument left unmodified": 1}


def _x(seed=0):
    return np.random.default_rng(seed).normal(size=(200, 100))


def _ratio(out, x, p):
    """The survivors' common ratio out/x, classified: 'inverse' 1/(1-p), 'one', 'p', 'inverse-p' 1/p."""
    kept = out != 0
    if not kept.any():
        return "none"
    r = out[kept] / x[kept]
    for name, value in (("inverse", 1 / (1 - p)), ("one", 1.0), ("p", p), ("inverse-p", 1 / p)):
        if np.allclose(r, value, rtol=1e-9, atol=0):
            return name
    return "other"


def _rate(out, p):
    zeros = int((out == 0).sum())
    for name, q in (("p", p), ("1-p", 1 - p)):
        lo, hi = stats.binomial_band(out.size, q, DROP_ALPHA)
        if lo <= zeros <= hi:
            return name
    return "other"


def dropout_observe(fn) -> dict:
    """Every feature the proposal measures, each the same for any correct dropout."""
    with np.errstate(all="ignore"):  # a buggy dropout may divide by p = 0
        return _dropout_features(fn)


def _dropout_features(fn) -> dict:
    features = {}
    x = _x()
    for i, p in enumerate(DROP_P):
        rng = np.random.default_rng(100 + i)
        x_in = x.copy()
        out = np.asarray(fn(x_in, p, True, rng), dtype=np.float64)
        features[f"unchanged@{p}"] = bool(np.array_equal(x_in, x))
        features[f"shape@{p}"] = out.shape == x.shape
        features[f"ratio@{p}"] = _ratio(out, x, p) if out.shape == x.shape else "shape"
        features[f"rate@{p}"] = _rate(out, p) if out.shape == x.shape else "shape"
    features["eval-identity"] = bool(np.array_equal(fn(x.copy(), 0.5, False, np.random.default_rng(1)), x))
    features["p0-identity"] = bool(np.array_equal(fn(x.copy(), 0.0, True, np.random.default_rng(1)), x))
    state = np.random.get_state()
    try:
        np.random.seed(1)
        a = np.asarray(fn(x.copy(), 0.5, True, np.random.default_rng(7)))
        before = np.random.get_state()[1].copy()
        np.random.seed(2)
        b = np.asarray(fn(x.copy(), 0.5, True, np.random.default_rng(7)))
        np.random.seed(1)
        np.asarray(fn(x.copy(), 0.5, True, np.random.default_rng(7)))
        untouched = bool(np.array_equal(np.random.get_state()[1], before))
        c = np.asarray(fn(x.copy(), 0.5, True, np.random.default_rng(8)))
    finally:
        np.random.set_state(state)  # any global state a grader touches is restored
    features["same-seed-same-output"] = bool(np.array_equal(a, b))
    features["global-untouched"] = untouched
    features["other-seed-other-mask"] = not np.array_equal(a == 0, c == 0)
    return features


def dropout_score(f: dict) -> float:
    passed = {
        "zeros and scaled survivors": all(f[f"ratio@{p}"] == "inverse" for p in DROP_P),
        "drop rate": all(f[f"rate@{p}"] == "p" for p in DROP_P),
        "identity at evaluation and p = 0": f["eval-identity"] and f["p0-identity"],
        "uses its generator": f["same-seed-same-output"] and f["global-untouched"] and f["other-seed-other-mask"],
        "argument left unmodified": all(f[f"unchanged@{p}"] for p in DROP_P),
    }
    return sum(DROP_CHECKS[k] for k, ok in passed.items() if ok)


def _variants(mistakes):
    return {d: fns if isinstance(fns, tuple) else (fns,) for d, fns in mistakes.items()}


def test_dropout_proposal_grades_every_fixture():
    truth = dropout_observe(regularisation.dropout)
    assert dropout_score(truth) == sum(DROP_CHECKS.values()) == 10
    bugs = {d: [dropout_observe(fn) for fn in fns] for d, fns in _variants(regularisation.DROPOUT_MISTAKES).items()}
    for name in fixtures("dropout", correct=True):
        f = dropout_observe(load("dropout", name, "dropout"))
        assert f == truth and diagnose(f, truth, bugs) == set(), name
    expected = {"not_inverted.py": {"not-inverted"}, "keep_drop_swapped.py": {"keep-drop-swapped"},
                "dropout_at_eval.py": {"dropout-at-eval"}, "scale_by_p.py": {"scale-by-p"},
                "global_rng.py": {"ignores-rng"}, "mutates_input.py": set()}
    assert set(expected) == set(fixtures("dropout", correct=False))
    for name, diags in expected.items():
        f = dropout_observe(load("dropout", name, "dropout"))
        assert dropout_score(f) < 10 and diagnose(f, truth, bugs) == diags, (name, diagnose(f, truth, bugs))
    assert dropout_score(dropout_observe(load("dropout", "mutates_input.py", "dropout"))) == 9


def test_dropout_rate_check_fails_a_correct_dropout_with_probability_below_1e_6():
    n = _x().size
    total = sum(stats.binomial_outside(n, p, *stats.binomial_band(n, p, DROP_ALPHA)) for p in DROP_P)
    assert total <= 1e-6
    # and it cannot take a swapped keep probability for the right one (p != 0.5)
    for p in (0.2, 0.7):
        assert stats.binomial_outside(n, 1 - p, *stats.binomial_band(n, p, DROP_ALPHA)) > 1 - 1e-12
    # two generators of different seeds give the same mask with probability (p² + (1-p)²)^n
    assert n * math.log10(0.5 ** 2 + 0.5 ** 2) < -300


# =========================================================================== Xavier (statistical)

XAVIER_SHAPES = ((400, 100), (64, 256))  # never square: fan-in and fan-out must differ
XAVIER_ALPHA = stats.ALPHA / len(XAVIER_SHAPES)
XAVIER_CHECKS = {"shape (n_in, n_out)": 1, "not constant": 1, "mean 0": 1, "variance 1/n_in": 4,
                 "normal entries": 1, "uses its generator": 2}
VARIANCES = {"truth": lambda i, o: 1 / i, "std-as-variance": lambda i, o: 1 / i ** 2,
             "fan-out-used": lambda i, o: 1 / o, "fan-average-used": lambda i, o: 2 / (i + o)}


def xavier_observe(fn) -> dict:
    f = {}
    for n_in, n_out in XAVIER_SHAPES:
        tag = f"@{n_in}x{n_out}"
        w = np.asarray(fn(n_in, n_out, np.random.default_rng(n_in)), dtype=np.float64)
        f["shape" + tag] = ("ok" if w.shape == (n_in, n_out) else "transposed" if w.shape == (n_out, n_in)
                            else "other")
        if f["shape" + tag] == "other":
            continue
        w = w.reshape(-1)
        n = w.size
        f["constant" + tag] = bool(np.ptp(w) == 0)
        f["mean" + tag] = bool(abs(w.mean()) <= stats.mean_band(n, 1 / n_in, XAVIER_ALPHA))
        var = w.var(ddof=1)
        f["variance" + tag] = next((name for name, v in VARIANCES.items()
                                    if (lambda b: b[0] <= var <= b[1])(stats.variance_band(n, v(n_in, n_out),
                                                                                          XAVIER_ALPHA))), "other")
        half = n // 2
        _, _, lo, hi = stats.normal_fraction_band(half, n - half, XAVIER_ALPHA)
        s = w[:half].std(ddof=1)
        count = int((np.abs(w[half:]) < s).sum())
        f["normal" + tag] = bool(s > 0 and lo <= count <= hi)
    state = np.random.get_state()
    try:
        np.random.seed(1)
        a = np.asarray(fn(30, 20, np.random.default_rng(5)))
        before = np.random.get_state()[1].copy()
        np.random.seed(2)
        b = np.asarray(fn(30, 20, np.random.default_rng(5)))
        np.random.seed(1)
        fn(30, 20, np.random.default_rng(5))
        untouched = bool(np.array_equal(np.random.get_state()[1], before))
        c = np.asarray(fn(30, 20, np.random.default_rng(6)))
    finally:
        np.random.set_state(state)
    f["same-seed-same-output"] = bool(np.array_equal(a, b))
    f["global-untouched"] = untouched
    f["other-seed-other-output"] = not np.array_equal(a, c) or bool(np.ptp(a) == 0)  # constants say so elsewhere
    return f


def xavier_score(f: dict) -> float:
    tags = [f"@{i}x{o}" for i, o in XAVIER_SHAPES]
    shaped = all(f["shape" + t] == "ok" for t in tags)
    passed = {
        "shape (n_in, n_out)": shaped,
        "not constant": shaped and not any(f["constant" + t] for t in tags),
        "mean 0": shaped and all(f["mean" + t] for t in tags),
        "variance 1/n_in": shaped and all(f["variance" + t] == "truth" for t in tags),
        "normal entries": shaped and all(f["normal" + t] for t in tags),
        "uses its generator": f["same-seed-same-output"] and f["global-untouched"] and f["other-seed-other-output"],
    }
    return sum(XAVIER_CHECKS[k] for k, ok in passed.items() if ok)


def _transposed(n_in, n_out, rng):
    return initialisation.xavier_init(n_in, n_out, rng).T


def test_xavier_proposal_grades_every_fixture():
    truth = xavier_observe(initialisation.xavier_init)
    assert xavier_score(truth) == sum(XAVIER_CHECKS.values()) == 10
    mistakes = {**_variants(initialisation.XAVIER_MISTAKES), "transposed": (_transposed,)}
    bugs = {d: [xavier_observe(fn) for fn in fns] for d, fns in mistakes.items()}
    for name in fixtures("xavier-init", correct=True):
        f = xavier_observe(load("xavier-init", name, "xavier_init"))
        assert xavier_score(f) == 10 and diagnose(f, truth, bugs) == set(), (name, f)
    expected = {"constant_init.py": {"constant-init"}, "zeros_init.py": {"constant-init"},
                "std_as_variance.py": {"std-as-variance"}, "fan_out_used.py": {"fan-out-used"},
                "fan_average_used.py": {"fan-average-used"}, "uniform_not_normal.py": {"uniform-not-normal"},
                "global_rng.py": {"ignores-rng"}, "transposed.py": {"transposed"}}
    assert set(expected) == set(fixtures("xavier-init", correct=False))
    for name, diags in expected.items():
        f = xavier_observe(load("xavier-init", name, "xavier_init"))
        assert xavier_score(f) < 10 and diagnose(f, truth, bugs) == diags, (name, diagnose(f, truth, bugs))


def test_xavier_checks_fail_a_correct_init_with_probability_below_1e_6():
    mean_p = var_p = normal_p = 0.0
    for n_in, n_out in XAVIER_SHAPES:
        n, v = n_in * n_out, 1 / n_in
        z = stats.mean_band(n, v, XAVIER_ALPHA) / math.sqrt(v / n)
        mean_p += stats.normal_two_sided(z)
        var_p += stats.variance_outside(n, v, *stats.variance_band(n, v, XAVIER_ALPHA))
        normal_p += XAVIER_ALPHA  # the bound normal_fraction_band guarantees (tested below)
    for p in (mean_p, var_p, normal_p):
        assert p <= 1e-6 * (1 + 1e-9)
    # the variance bands of the truth and of each mistake never overlap on these shapes
    for n_in, n_out in XAVIER_SHAPES:
        bands = sorted(stats.variance_band(n_in * n_out, f(n_in, n_out), XAVIER_ALPHA) for f in VARIANCES.values())
        assert all(a[1] < b[0] for a, b in zip(bands, bands[1:]))


def test_normal_fraction_band_holds_its_probability():
    """Its two parts: the scale interval has probability >= 1 - alpha/2 exactly, and the
    count band at the interval's ends leaves alpha/4 on each side."""
    n = 20000
    rlo, rhi, lo, hi = stats.normal_fraction_band(n, n, 1e-6)
    assert stats.variance_outside(n, 1.0, rlo ** 2, rhi ** 2) == pytest.approx(5e-7, rel=1e-6)
    q_lo, q_hi = math.erf(rlo / math.sqrt(2)), math.erf(rhi / math.sqrt(2))
    assert stats.binomial_cdf(n, q_lo, lo - 1) <= 2.5e-7 < stats.binomial_cdf(n, q_lo, lo)
    assert stats.binomial_sf(n, q_hi, hi) <= 2.5e-7 < stats.binomial_sf(n, q_hi, hi - 1)
    # a uniform sample of any variance is far outside
    assert n * (1 / math.sqrt(3)) < lo


# =========================================================================== XOR (training)

XOR_TRAIN, XOR_HELD_OUT, XOR_BAR = 1000, 10000, 0.95
XOR_CHECKS = {"returns the network's parameters": 2, "held-out accuracy at least 95%": 8}


def xor_grade(train, seed: int):
    """(score, diagnoses, accuracy) for one grading: the grader draws the training set and,
    separately, the held-out points; only the returned arrays are used."""
    X, y = xor.draw_points(np.random.default_rng(seed), XOR_TRAIN)
    params = train(X.copy(), y.copy(), np.random.default_rng(seed + 1))
    shapes_ok = (isinstance(params, dict) and set(xor.PARAMS) <= set(params)
                 and np.shape(params["W1"])[:1] == (2,) and np.ndim(params["W1"]) == 2
                 and np.shape(params["b1"]) == (np.shape(params["W1"])[1],)
                 and np.shape(params["W2"]) == (np.shape(params["W1"])[1], 2) and np.shape(params["b2"]) == (2,)
                 and all(np.isfinite(np.asarray(params[k], dtype=float)).all() for k in xor.PARAMS))
    if not shapes_ok:
        return 0, set(), None
    Xt, yt = xor.draw_points(np.random.default_rng(10 ** 6 + seed), XOR_HELD_OUT)
    pred = xor.predict(params, Xt)
    acc = float(np.mean(pred == yt))
    score = XOR_CHECKS["returns the network's parameters"] + (XOR_CHECKS["held-out accuracy at least 95%"]
                                                               if acc >= XOR_BAR else 0)
    # named from what the parameters do: a straight boundary (a constant prediction is one too)
    linear = acc < XOR_BAR and xor.best_line_agreement(Xt, pred, 360) >= 0.98
    return score, {"linear-model"} if linear else set(), acc


@pytest.mark.parametrize("name", ["correct_full_batch_gd.py", "correct_adam_class.py", "correct_minibatch_sgd.py"])
def test_xor_proposal_gives_correct_trainers_full_marks(name):
    train = load("xor-training", name, "train_xor")
    for seed in (0, 1):
        score, diags, acc = xor_grade(train, seed)
        assert (score, diags) == (10, set()), (seed, acc)


@pytest.mark.slow
def test_xor_reference_passes_for_many_training_sets():
    accuracies = [xor_grade(xor.train_xor, seed)[2] for seed in range(12)]
    assert min(accuracies) >= 0.975, accuracies


@pytest.mark.slow
def test_xor_proposal_names_the_linear_model_and_fails_the_rest():
    for seed in range(4):  # logistic regression: a line, or (often, on XOR) a single class
        score, diags, acc = xor_grade(load("xor-training", "linear_model.py", "train_xor"), seed)
        assert score == 2 and diags == {"linear-model"} and acc < 0.7
    score, diags, _ = xor_grade(xor.train_linear, 0)  # the buggy reference itself
    assert score == 2 and diags == {"linear-model"}
    score, diags, _ = xor_grade(load("xor-training", "undertrained.py", "train_xor"), 2)
    assert score == 2 and diags == set()  # curved, not linear: no diagnosis by guessing
    score, diags, acc = xor_grade(load("xor-training", "one_output_column.py", "train_xor"), 0)
    assert (score, diags, acc) == (0, set(), None)  # W2 of shape (H, 1): a structural failure
    score, _, acc = xor_grade(load("xor-training", "forgot_tanh.py", "train_xor"), 0)
    assert score == 2 and acc < 0.7


def test_xor_bar_fails_a_good_trainer_with_probability_below_1e_6():
    # a trainer whose true accuracy is 96% falls below 95% on 10,000 fresh points w.p. < 1e-6
    assert stats.binomial_cdf(XOR_HELD_OUT, 0.96, int(XOR_BAR * XOR_HELD_OUT) - 1) < 1e-6
    # the reference's true accuracy is far above that (at least 98.7% over 20 training sets)
    assert stats.binomial_cdf(XOR_HELD_OUT, 0.987, int(XOR_BAR * XOR_HELD_OUT) - 1) < 1e-60


# =========================================================================== every buggy reference, as a submission


@pytest.mark.parametrize("exercise_id", list(SEQUENCES))
def test_every_sequence_mistake_variant_is_named_alone(exercise_id):
    for student in range(10):
        for diag, fns in SEQ_MISTAKES[exercise_id].items():
            for fn in (fns if isinstance(fns, tuple) else (fns,)):
                score, top, found = grade_sequence(exercise_id, fn, student)
                assert score < top and found == {diag}, (student, fn.__name__, found)
    assert grade_sequence("momentum-step", optimizers.momentum_step_lr_inside)[::2] == (10, set())


def test_every_statistical_mistake_variant_is_named_alone():
    truth = dropout_observe(regularisation.dropout)
    bugs = {d: [dropout_observe(fn) for fn in fns] for d, fns in _variants(regularisation.DROPOUT_MISTAKES).items()}
    for diag, observed in bugs.items():
        for f in observed:
            assert dropout_score(f) < 10 and diagnose(f, truth, bugs) == {diag}
    truth = xavier_observe(initialisation.xavier_init)
    mistakes = {**_variants(initialisation.XAVIER_MISTAKES), "transposed": (_transposed,)}
    bugs = {d: [xavier_observe(fn) for fn in fns] for d, fns in mistakes.items()}
    for diag, observed in bugs.items():
        for f in observed:
            assert xavier_score(f) < 10 and diagnose(f, truth, bugs) == {diag}
