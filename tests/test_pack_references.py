"""The course pack's trusted references against independent derivations, in-process.

Each reference is checked against something that does not share its code: torch
autograd (losses, batch norm, the L2 network), ``torch.optim`` (the optimiser
steps, over whole trajectories), SymPy's ``diff`` (activations, sigmoid + MSE),
Python's ``statistics`` (standardisation), exact small-case enumeration (the
statistics module). The buggy references that are defined by a derivation
(batch norm with the batch statistics held constant, ...) are checked the same way.
"""
from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
import sympy as sp

from dlgrade.reference import activations, initialisation, losses, normalisation, optimizers, regularisation
from dlgrade.reference import sigmoid_mse, statistics as stats, xor

torch = pytest.importorskip("torch")
F = torch.nn.functional


def t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# --------------------------------------------------------------------------- softmax + cross-entropy


@pytest.mark.parametrize("shape", [(8, 5), (12, 3), (1, 6), (3, 3)])
def test_softmax_ce_grad_is_torch_autograd_of_cross_entropy(shape):
    rng = np.random.default_rng(sum(shape))
    z = rng.normal(scale=2.0, size=shape)
    y = rng.integers(0, shape[1], size=shape[0])
    zt = t(z, grad=True)
    F.cross_entropy(zt, torch.tensor(y)).backward()
    np.testing.assert_allclose(losses.softmax_ce_grad(z, y), zt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_softmax_ce_grad_large_logits_finite_and_right():
    z = np.array([[20.0, 134.0, 854.0], [1000.0, 1000.0, -1000.0], [710.0, 0.0, 700.0]])
    y = np.array([2, 0, 1])
    zt = t(z, grad=True)
    F.cross_entropy(zt, torch.tensor(y)).backward()
    g = losses.softmax_ce_grad(z, y)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=1e-12, atol=1e-300)
    assert not np.isfinite(losses.ce_naive_softmax(z, y)).all()


def test_softmax_ce_mistakes_are_what_they_say():
    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(6, 4)), rng.integers(0, 4, size=6)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    onehot = np.eye(4)[y]
    np.testing.assert_allclose(losses.ce_summed(z, y), p - onehot, rtol=1e-12)
    np.testing.assert_allclose(losses.ce_onehot_not_subtracted(z, y), p / 6, rtol=1e-12)
    pb = np.exp(z) / np.exp(z).sum(axis=0, keepdims=True)
    np.testing.assert_allclose(losses.ce_softmax_over_batch(z, y), (pb - onehot) / 6, rtol=1e-12)
    np.testing.assert_allclose(losses.ce_softmax_over_everything(z, y), (np.exp(z) / np.exp(z).sum() - onehot) / 6,
                               rtol=1e-12)
    np.testing.assert_allclose(losses.ce_sign_flipped(z, y), (onehot - p) / 6, rtol=1e-12)


# --------------------------------------------------------------------------- Huber


@pytest.mark.parametrize("delta, shape", [(1.0, (16, 4)), (0.5, (20,)), (2.0, (10, 3)), (0.3, (7, 2, 3))])
def test_huber_is_torch_huber_loss_and_its_autograd(delta, shape):
    rng = np.random.default_rng(int(10 * delta))
    pred, target = rng.normal(scale=1.5, size=shape), rng.normal(scale=1.5, size=shape)
    pt = t(pred, grad=True)
    expected = F.huber_loss(pt, t(target), delta=delta, reduction="mean")
    expected.backward()
    loss, grad = losses.huber_loss(pred, target, delta)
    assert loss == pytest.approx(expected.item(), rel=1e-13)
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-12, atol=1e-16)


def test_huber_at_the_branch_boundary_both_branches_agree():
    pred, target = np.array([1.0, -1.0, 0.5, 3.0, 0.0]), np.array([0.0, 0.0, 0.5, 1.5, 2.5])
    loss, grad = losses.huber_loss(pred, target, 1.0)
    # ½·1 + ½·1 + 0 + 1·(1.5 − ½) + 1·(2.5 − ½), over 5 elements
    assert loss == pytest.approx((0.5 + 0.5 + 0 + 1.0 + 2.0) / 5, rel=1e-15)
    np.testing.assert_array_equal(grad, np.array([1.0, -1.0, 0.0, 1.0, -1.0]) / 5)
    pt = t(pred, grad=True)
    F.huber_loss(pt, t(target), delta=1.0).backward()
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-15)


def test_huber_mistakes_are_what_they_say():
    rng = np.random.default_rng(5)
    pred, target, d = rng.normal(scale=2, size=30), rng.normal(scale=2, size=30), 0.5
    r = pred - target
    lin = np.abs(r) > d
    assert losses.huber_mae(pred, target, d)[0] == pytest.approx(np.abs(r).mean())
    assert losses.huber_mse(pred, target, d)[0] == pytest.approx((r ** 2).mean() / 2)
    assert losses.huber_summed(pred, target, d)[0] == pytest.approx(30 * losses.huber_loss(pred, target, d)[0])
    l1, g1 = losses.huber_linear_without_delta(pred, target, d)
    assert l1 == pytest.approx(np.where(lin, np.abs(r) - d / 2, r ** 2 / 2).mean())
    np.testing.assert_allclose(g1, np.where(lin, np.sign(r), r) / 30)
    # the offset variant's value differs, its gradient does not; the gradient variant the other way round
    truth = losses.huber_loss(pred, target, d)
    assert losses.huber_offset_without_delta(pred, target, d)[0] != pytest.approx(truth[0])
    np.testing.assert_array_equal(losses.huber_offset_without_delta(pred, target, d)[1], truth[1])
    assert losses.huber_gradient_without_delta(pred, target, d)[0] == truth[0]


# --------------------------------------------------------------------------- hinge


def test_hinge_is_torch_autograd_of_relu_of_the_margin():
    rng = np.random.default_rng(7)
    s = rng.normal(scale=2.0, size=40)
    y = rng.choice([-1, 1], size=40)
    st = t(s, grad=True)
    out = torch.relu(1 - torch.tensor(y, dtype=torch.float64) * st).mean()
    out.backward()
    loss, grad = losses.hinge_loss(s, y)
    assert loss == pytest.approx(out.item(), rel=1e-14)
    np.testing.assert_allclose(grad, st.grad.numpy(), rtol=1e-14)


def test_hinge_subgradient_is_zero_at_the_kink_as_relu_takes_it():
    s, y = np.array([1.0, -1.0, 0.5, 2.0, -0.25, 1.0]), np.array([1, -1, 1, 1, 1, -1])
    loss, grad = losses.hinge_loss(s, y)
    np.testing.assert_array_equal(grad, np.array([0, 0, -1, 0, -1, 1]) / 6)
    assert loss == pytest.approx((0.5 + 1.25 + 2.0) / 6)
    st = t(s, grad=True)
    torch.relu(1 - torch.tensor(y, dtype=torch.float64) * st).mean().backward()
    np.testing.assert_array_equal(grad, st.grad.numpy())


# --------------------------------------------------------------------------- activations

_z = sp.Symbol("z", real=True)
_alpha, _beta = sp.Symbol("alpha", positive=True), sp.Symbol("beta", positive=True)
SYMPY_ACTIVATIONS = {  # (expression below 0, expression above 0)
    "leaky_relu": (_alpha * _z, _z),
    "elu": (_alpha * (sp.exp(_z) - 1), _z),
    "tanh": (sp.tanh(_z), sp.tanh(_z)),
    "softplus": (sp.log(1 + sp.exp(_z)), sp.log(1 + sp.exp(_z))),
    "swish": (_z / (1 + sp.exp(-_beta * _z)), _z / (1 + sp.exp(-_beta * _z))),
}


@pytest.mark.parametrize("key", activations.KEYS)
@pytest.mark.parametrize("alpha, beta", [(0.1, 1.0), (0.3, 1.7)])
def test_activation_derivatives_are_sympy_diff(key, alpha, beta):
    rng = np.random.default_rng(11)
    z = rng.normal(scale=3.0, size=50)
    z = z[np.abs(z) > 1e-6]
    below, above = (sp.lambdify((_z, _alpha, _beta), sp.diff(e, _z), "numpy") for e in SYMPY_ACTIVATIONS[key])
    expected = np.where(z > 0, above(z, alpha, beta) + 0 * z, below(z, alpha, beta) + 0 * z)
    np.testing.assert_allclose(activations.activation_grads(z, alpha, beta)[key], expected, rtol=1e-12, atol=1e-15)


def _torch_activation(key, x, alpha, beta):
    return {"leaky_relu": lambda: F.leaky_relu(x, alpha), "elu": lambda: F.elu(x, alpha),
            "tanh": lambda: torch.tanh(x), "softplus": lambda: F.softplus(x, threshold=100.0),  # torch is linear above 20 by default
            "swish": lambda: x * torch.sigmoid(beta * x)}[key]()


@pytest.mark.parametrize("key", activations.KEYS)
def test_activation_derivatives_are_torch_autograd_including_the_kink(key):
    z = np.concatenate([np.random.default_rng(2).uniform(-30, 30, size=40), [0.0, -0.0, 0.0]])
    alpha, beta = 0.25, 0.5
    x = t(z, grad=True)
    _torch_activation(key, x, alpha, beta).sum().backward()
    np.testing.assert_allclose(activations.activation_grads(z, alpha, beta)[key], x.grad.numpy(),
                               rtol=1e-12, atol=1e-15)


def test_each_activation_mistake_changes_only_its_own_entry():
    z = np.random.default_rng(4).normal(scale=2, size=(5, 4))
    truth = activations.activation_grads(z, 0.3, 1.7)
    owners = {"tanh-not-squared": "tanh", "elu-branch": "elu", "swish-product-rule": "swish",
              "swish-beta-missing": "swish", "softplus-value": "softplus", "relu-slope-only": "leaky_relu"}
    assert set(owners) == set(activations.MISTAKES)
    for diag, key in owners.items():
        out = activations.MISTAKES[diag](z, 0.3, 1.7)
        assert set(out) == set(activations.KEYS)
        for k in activations.KEYS:
            same = np.allclose(out[k], truth[k], rtol=1e-6, atol=1e-9)
            assert same == (k != key), (diag, k)


# --------------------------------------------------------------------------- batch norm


def _bn_torch(x, gamma, beta, eps, detach_mean=False, detach_var=False):
    mu = x.mean(dim=0)
    var = x.var(dim=0, unbiased=False)
    mu = mu.detach() if detach_mean else mu
    var = var.detach() if detach_var else var
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


@pytest.mark.parametrize("shape, eps", [((16, 5), 1e-5), ((10, 4), 0.1), ((4, 7), 1e-5)])
def test_batchnorm_forward_is_torch_batch_norm_in_training_mode(shape, eps):
    rng = np.random.default_rng(shape[0])
    x, gamma, beta = rng.normal(3, 2, size=shape), rng.normal(1, 0.5, shape[1]), rng.normal(size=shape[1])
    expected = F.batch_norm(t(x), None, None, weight=t(gamma), bias=t(beta), training=True, eps=eps)
    np.testing.assert_allclose(normalisation.batchnorm_forward(x, gamma, beta, eps), expected.numpy(),
                               rtol=1e-12, atol=1e-12)


def test_batchnorm_forward_mistakes_are_what_they_say():
    rng = np.random.default_rng(8)
    x, gamma, beta = rng.normal(3, 2, size=(9, 4)), rng.normal(1, .5, 4), rng.normal(size=4)
    xt = t(x)
    ln = F.layer_norm(xt, (4,), eps=1e-5).numpy()  # per example: layer norm
    np.testing.assert_allclose(normalisation.bn_per_example(x, gamma, beta), gamma * ln + beta, rtol=1e-10)
    unb = (x - x.mean(0)) / np.sqrt(x.var(0, ddof=1) + 1e-5)
    np.testing.assert_allclose(normalisation.bn_unbiased_variance(x, gamma, beta), gamma * unb + beta, rtol=1e-12)
    out = (x - x.mean(0)) / (x.std(0) + 1e-5)
    np.testing.assert_allclose(normalisation.bn_eps_outside_sqrt(x, gamma, beta), gamma * out + beta, rtol=1e-12)


@pytest.mark.parametrize("shape, eps", [((16, 5), 1e-5), ((4, 7), 1e-5), ((10, 3), 0.1)])
def test_batchnorm_backward_and_its_mistakes_are_torch_autograd(shape, eps):
    rng = np.random.default_rng(shape[1])
    dout, x, gamma = rng.normal(size=shape), rng.normal(3, 2, size=shape), rng.normal(1, .5, shape[1])

    def autograd(**detach):
        xt, gt, bt = t(x, True), t(gamma, True), t(np.zeros(shape[1]), True)
        _bn_torch(xt, gt, bt, eps, **detach).backward(t(dout))
        return xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()

    for ours, theirs in [(normalisation.batchnorm_backward, autograd()),
                         (normalisation.bnb_stats_constant, autograd(detach_mean=True, detach_var=True)),
                         (normalisation.bnb_mean_path_only, autograd(detach_var=True))]:
        for a, b in zip(ours(dout, x, gamma, eps), theirs):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- standardise


def test_standardise_is_the_per_column_definition():
    rng = np.random.default_rng(9)
    X_train, X_test = rng.normal(5, 3, size=(20, 4)), rng.normal(6, 2, size=(7, 4))
    Z_train, Z_test = normalisation.standardise(X_train, X_test)
    for j in range(4):
        mu, sd = statistics.fmean(X_train[:, j]), statistics.pstdev(X_train[:, j])
        np.testing.assert_allclose(Z_train[:, j], [(v - mu) / sd for v in X_train[:, j]], rtol=1e-12)
        np.testing.assert_allclose(Z_test[:, j], [(v - mu) / sd for v in X_test[:, j]], rtol=1e-12)
    np.testing.assert_allclose(Z_train.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(Z_train.std(0), 1, rtol=1e-12)


# --------------------------------------------------------------------------- L2


def _l2_torch(X, y, W1, b1, W2, b2, reg, penalise_biases=False):
    ps = [t(a, True) for a in (W1, b1, W2, b2)]
    h = torch.relu(t(X) @ ps[0] + ps[1])
    loss = F.cross_entropy(h @ ps[2] + ps[3], torch.tensor(y))
    loss = loss + reg * ((ps[0] ** 2).sum() + (ps[2] ** 2).sum())
    if penalise_biases:
        loss = loss + reg * ((ps[1] ** 2).sum() + (ps[3] ** 2).sum())
    loss.backward()
    return loss.item(), dict(zip(regularisation.PARAMS, (p.grad.numpy() for p in ps)))


def _network(seed, N=8, D=5, H=7, C=4):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(N, D)), rng.integers(0, C, size=N), rng.normal(size=(D, H)),
            rng.normal(size=H), rng.normal(size=(H, C)), rng.normal(size=C))


@pytest.mark.parametrize("reg", [0.0, 0.1, 0.3])
def test_l2_backprop_and_biases_regularised_are_torch_autograd(reg):
    args = _network(int(reg * 10))
    for ours, biases in [(regularisation.two_layer_backprop_l2, False), (regularisation.l2_biases_penalised, True)]:
        loss, grads = ours(*args, reg)
        exp_loss, exp_grads = _l2_torch(*args, reg, penalise_biases=biases)
        assert loss == pytest.approx(exp_loss, rel=1e-12)
        for k in regularisation.PARAMS:
            np.testing.assert_allclose(grads[k], exp_grads[k], rtol=1e-10, atol=1e-13)


def test_l2_mistakes_are_what_they_say():
    args, reg = _network(4), 0.2
    W1, W2 = args[2], args[4]
    loss, g = regularisation.two_layer_backprop_l2(*args, reg)
    data_loss, data = regularisation.two_layer_backprop_l2(*args, 0.0)
    penalty = reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    assert loss == pytest.approx(data_loss + penalty, rel=1e-13)

    def same(a, b):
        return all(np.allclose(a[k], b[k], rtol=1e-12, atol=1e-14) for k in regularisation.PARAMS)

    l, gr = regularisation.l2_derivative_without_2(*args, reg)
    assert l == pytest.approx(loss) and same(gr, {**data, "W1": data["W1"] + reg * W1, "W2": data["W2"] + reg * W2})
    l, gr = regularisation.l2_half_penalty(*args, reg)
    assert l == pytest.approx(data_loss + penalty / 2) and same(gr, regularisation.l2_derivative_without_2(*args, reg)[1])
    l, gr = regularisation.l2_not_in_loss(*args, reg)
    assert l == pytest.approx(data_loss) and same(gr, g)
    l, gr = regularisation.l2_not_in_gradient(*args, reg)
    assert l == pytest.approx(loss) and same(gr, data)


# --------------------------------------------------------------------------- sigmoid + MSE


def test_sigmoid_mse_derivative_and_mistakes_by_sympy():
    z, y = sigmoid_mse.z, sigmoid_mse.y
    s = 1 / (1 + sp.exp(-z))
    truth = (s - y) * s * (1 - s)
    assert sp.simplify(sigmoid_mse.derivative().rewrite(sp.exp) - truth) == 0
    expected = {"bce-gradient": s - y, "missing-half": 2 * truth, "sign-flipped": -truth,
                "sigmoid-derivative-only": s * (1 - s)}
    assert set(expected) == set(sigmoid_mse.MISTAKES)
    for diag, form in expected.items():
        got = sigmoid_mse.MISTAKES[diag]().rewrite(sp.exp)
        for label in (0, 1):
            assert sp.simplify((got - form).subs(y, label)) == 0, diag


# --------------------------------------------------------------------------- optimisers


def _grads(seed, shape=(3, 4), steps=6, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), [rng.normal(scale=scale, size=shape) for _ in range(steps)]


def _torch_trajectory(make_opt, w0, grads):
    w = torch.tensor(w0, requires_grad=True)
    opt = make_opt([w])
    out = []
    for g in grads:
        w.grad = torch.tensor(g)
        opt.step()
        out.append(w.detach().numpy().copy())
    return out


@pytest.mark.parametrize("lr, beta", [(0.01, 0.9), (0.1, 0.5)])
def test_momentum_step_is_torch_sgd_with_momentum(lr, beta):
    w0, grads = _grads(1)
    ours = optimizers.trajectory(optimizers.momentum_step, w0, grads, (np.zeros_like(w0),), dict(lr=lr, beta=beta))
    theirs = _torch_trajectory(lambda p: torch.optim.SGD(p, lr=lr, momentum=beta), w0, grads)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("lr, beta", [(0.01, 0.9), (0.1, 0.5), (0.3, 0.99)])
def test_both_momentum_conventions_give_the_same_trajectory_from_zero_state(lr, beta):
    w0, grads = _grads(2, steps=8)
    a = optimizers.trajectory(optimizers.momentum_step, w0, grads, (np.zeros_like(w0),), dict(lr=lr, beta=beta))
    b = optimizers.trajectory(optimizers.momentum_step_lr_inside, w0, grads, (np.zeros_like(w0),),
                              dict(lr=lr, beta=beta))
    for x, y in zip(a, b):
        np.testing.assert_allclose(x - w0, y - w0, rtol=1e-12, atol=1e-15)
    # ... while their velocities differ (by the factor -lr), so only w can be graded
    _, v1 = optimizers.momentum_step(w0, grads[0], np.zeros_like(w0), lr, beta)
    _, v2 = optimizers.momentum_step_lr_inside(w0, grads[0], np.zeros_like(w0), lr, beta)
    np.testing.assert_allclose(v2, -lr * v1, rtol=1e-15)


def test_momentum_mistake_variants_agree_across_conventions():
    w0, grads = _grads(3)
    for diag, fns in optimizers.MOMENTUM_MISTAKES.items():
        fns = fns if isinstance(fns, tuple) else (fns,)
        trajs = [optimizers.trajectory(f, w0, grads, (np.zeros_like(w0),)) for f in fns]
        for other in trajs[1:]:
            for x, y in zip(trajs[0], other):
                np.testing.assert_allclose(x - w0, y - w0, rtol=1e-12, atol=1e-15, err_msg=diag)


@pytest.mark.parametrize("kw", [{}, dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6)])
@pytest.mark.parametrize("scale", [1.0, 1e-5])
def test_adam_step_is_torch_adam(kw, scale):
    w0, grads = _grads(4, scale=scale)
    zeros = np.zeros_like(w0)
    ours = optimizers.trajectory(optimizers.adam_step, w0, grads, (zeros, zeros), kw, t0=1)
    full = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, **{})
    full.update(kw)
    theirs = _torch_trajectory(lambda p: torch.optim.Adam(p, lr=full["lr"], betas=(full["beta1"], full["beta2"]),
                                                          eps=full["eps"]), w0, grads)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a - w0, b - w0, rtol=1e-10, atol=1e-17)


@pytest.mark.parametrize("kw", [{}, dict(lr=0.01, rho=0.5)])
def test_rmsprop_step_is_torch_rmsprop(kw):
    w0, grads = _grads(5)
    ours = optimizers.trajectory(optimizers.rmsprop_step, w0, grads, (np.zeros_like(w0),), kw)
    full = dict(lr=1e-3, rho=0.9, eps=1e-8)
    full.update(kw)
    theirs = _torch_trajectory(lambda p: torch.optim.RMSprop(p, lr=full["lr"], alpha=full["rho"], eps=full["eps"]),
                               w0, grads)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a - w0, b - w0, rtol=1e-10, atol=1e-17)


def test_optimiser_steps_never_modify_their_arguments():
    w0, grads = _grads(6, steps=1)
    state = np.abs(np.random.default_rng(0).normal(size=w0.shape))
    cases = [(optimizers.momentum_step, (w0, grads[0], state)),
             (optimizers.adam_step, (w0, grads[0], state, state * 0.5, 3)),
             (optimizers.rmsprop_step, (w0, grads[0], state))]
    for fn, args in cases:
        before = [np.copy(a) for a in args]
        fn(*args)
        for a, b in zip(args, before):
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- Xavier


@pytest.mark.parametrize("n_in, n_out", [(400, 100), (64, 256)])
def test_xavier_samplers_draw_from_the_normal_their_std_says(n_in, n_out):
    """Each normal initialiser's sample moments are those of N(0, STD²), within the exact
    1e-6 bands (seeded, so deterministic)."""
    n = n_in * n_out
    for name, fn in [("truth", initialisation.xavier_init),
                     *[(d, initialisation.XAVIER_MISTAKES[d]) for d in ("std-as-variance", "fan-out-used",
                                                                         "fan-average-used")]]:
        w = fn(n_in, n_out, np.random.default_rng(12))
        var = initialisation.STD[name](n_in, n_out) ** 2
        assert w.shape == (n_in, n_out)
        lo, hi = stats.variance_band(n, var)
        assert lo <= w.var(ddof=1) <= hi, name
        assert abs(w.mean()) <= stats.mean_band(n, var), name
    # constant means every entry equal (a float std of a constant array need not be exactly 0)
    assert np.ptp(initialisation.constant_zeros(n_in, n_out, None)) == 0
    assert np.ptp(initialisation.constant_scale(n_in, n_out, None)) == 0


def test_xavier_uses_only_its_generator():
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    a = initialisation.xavier_init(30, 20, np.random.default_rng(1))
    b = initialisation.xavier_init(30, 20, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


# --------------------------------------------------------------------------- dropout


def test_dropout_reference_is_inverted_dropout():
    x = np.random.default_rng(0).normal(size=(200, 100))
    out = regularisation.dropout(x, 0.3, True, np.random.default_rng(1))
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / 0.7, rtol=1e-15)
    np.testing.assert_array_equal(regularisation.dropout(x, 0.3, False, np.random.default_rng(1)), x)
    np.testing.assert_array_equal(regularisation.dropout(x, 0.0, True, np.random.default_rng(1)), x)
    lo, hi = stats.binomial_band(x.size, 0.3)
    assert lo <= (~kept).sum() <= hi


# --------------------------------------------------------------------------- statistics module


def test_binomial_tails_match_exact_enumeration():
    for n, p in [(10, 0.5), (25, 0.2), (40, 0.9)]:
        pmf = [math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n + 1)]
        for k in range(-1, n + 1):
            assert stats.binomial_cdf(n, p, k) == pytest.approx(sum(pmf[:k + 1]), rel=1e-12, abs=1e-300)
            assert stats.binomial_sf(n, p, k) == pytest.approx(sum(pmf[k + 1:]), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("n, p", [(20000, 0.2), (20000, 0.5), (40000, 0.6827), (4000, 0.97)])
def test_binomial_band_is_the_narrowest_with_the_stated_probability(n, p):
    lo, hi = stats.binomial_band(n, p)
    assert stats.binomial_outside(n, p, lo, hi) <= 1e-6
    assert stats.binomial_cdf(n, p, lo) > 5e-7  # one more count at either end would exceed alpha/2
    assert stats.binomial_sf(n, p, hi - 1) > 5e-7


def test_chi2_and_normal_tails_match_closed_forms():
    for x in (0.5, 3.0, 40.0):  # χ²(2) is exponential: P(Q > x) = exp(-x/2)
        assert stats.chi2_sf(2, x) == pytest.approx(math.exp(-x / 2), rel=1e-12)
        assert stats.chi2_cdf(2, x) == pytest.approx(1 - math.exp(-x / 2), rel=1e-12)
    assert stats.normal_two_sided(1.959963984540054) == pytest.approx(0.05, rel=1e-12)
    assert stats.normal_quantile(1e-6) == pytest.approx(4.891638475698, rel=1e-9)
    lo, hi = stats.chi2_band(999)
    assert stats.chi2_cdf(999, lo) == pytest.approx(5e-7, rel=1e-6)
    assert stats.chi2_sf(999, hi) == pytest.approx(5e-7, rel=1e-6)
    vlo, vhi = stats.variance_band(1000, 2.0)
    assert stats.variance_outside(1000, 2.0, vlo, vhi) == pytest.approx(1e-6, rel=1e-5)


# --------------------------------------------------------------------------- XOR


def test_xor_labels_are_the_quadrants():
    X = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
    assert xor.xor_labels(X).tolist() == [0, 1, 0, 1]


def test_xor_reference_trains_deterministically_from_its_generator():
    X, y = xor.draw_points(np.random.default_rng(0), 1000)
    a = xor.train_xor(X, y, np.random.default_rng(1))
    b = xor.train_xor(X, y, np.random.default_rng(1))
    assert set(a) == set(xor.PARAMS)
    assert a["W1"].shape == (2, xor.HIDDEN) and a["W2"].shape == (xor.HIDDEN, 2) and a["b2"].shape == (2,)
    for k in xor.PARAMS:
        np.testing.assert_array_equal(a[k], b[k])


def test_best_line_agreement_separates_lines_from_xor():
    X, y = xor.draw_points(np.random.default_rng(3), 4000)
    assert xor.best_line_agreement(X, X @ np.array([0.3, -1.0]) > 0.2) > 0.995
    assert xor.best_line_agreement(X, np.zeros(4000)) == 1.0
    assert 0.6 < xor.best_line_agreement(X, y) < 0.72
