"""reference/autodiff.py and reference/two_layer.py, cross-checked against torch autograd.

torch is imported only here (the reference itself never imports it).
"""
import subprocess
import sys

import numpy as np
import pytest

from dlgrade.reference import autodiff as ad
from dlgrade.reference import two_layer

torch = pytest.importorskip("torch")


def _torch_grads(fn_np, fn_torch, *arrays):
    """Gradients of a scalar function by our autodiff and by torch, for every input."""
    vs = [ad.Var(a) for a in arrays]
    ours = ad.grad(fn_np(*vs), vs)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    fn_torch(*ts).backward()
    return ours, [t.grad.numpy() for t in ts]


@pytest.mark.parametrize("name", ["add-broadcast", "matmul", "relu", "logsumexp", "take", "mul", "neg-total"])
def test_each_operation_matches_torch(name):
    rng = np.random.default_rng(1)
    a, b, v = rng.normal(size=(4, 3)), rng.normal(size=(3,)), rng.normal(size=(3, 5))
    idx = np.array([[0], [2], [2], [1]])
    cases = {
        "add-broadcast": (lambda x, y: ad.mean(ad.relu(x + y) * x), lambda x, y: (torch.relu(x + y) * x).mean(), a, b),
        "matmul": (lambda x, w: ad.total(ad.matmul(x, w) * ad.matmul(x, w)), lambda x, w: ((x @ w) ** 2).sum(), a, v),
        "relu": (lambda x: ad.total(ad.relu(x) * x), lambda x: (torch.relu(x) * x).sum(), a),
        "logsumexp": (lambda x: ad.total(ad.logsumexp(x * 300.0, axis=1)),
                      lambda x: torch.logsumexp(x * 300.0, dim=1).sum(), a),
        "take": (lambda x: ad.total(ad.take_along_axis(x, idx, axis=1) * 2.0),
                 lambda x: (torch.take_along_dim(x, torch.tensor(idx), dim=1) * 2.0).sum(), a),
        "mul": (lambda x, y: ad.mean(ad.mul(x, y)), lambda x, y: (x * y).mean(), a, b),
        "neg-total": (lambda x: ad.total(-x + 1.0), lambda x: (-x + 1.0).sum(), a),
    }
    fn_np, fn_t, *arrays = cases[name]
    ours, theirs = _torch_grads(fn_np, fn_t, *arrays)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, t, rtol=1e-12, atol=1e-14)


def test_repeated_indices_accumulate():
    x = ad.Var(np.zeros((1, 3)))
    g, = ad.grad(ad.total(ad.take_along_axis(x, np.array([[1, 1, 2]]), axis=1)), [x])
    assert g.tolist() == [[0.0, 2.0, 1.0]]


def test_inner_nodes_constants_and_unused_variables():
    w = ad.Var(np.array([1.0, -2.0]))
    unused = ad.Var(np.ones(3))
    tiled = ad.broadcast_to(w, (4, 2))
    out = ad.mean(ad.relu(tiled + np.array([0.0, 3.0])))
    gw, gt, gu = ad.grad(out, [w, tiled, unused])
    assert gw.tolist() == [0.5, 0.5]          # summed back over the 4 rows
    assert gt.shape == (4, 2) and np.allclose(gt, 0.125)  # per row, before the sum
    assert gu.tolist() == [0.0, 0.0, 0.0]


def test_grad_of_a_non_scalar_is_refused():
    x = ad.Var(np.ones(3))
    with pytest.raises(ValueError, match=r"grad needs a scalar output, got shape \(3,\)"):
        ad.grad(x + 1.0, [x])


def _network(rng, n, d, h, c, w2_scale=1.0):
    return (rng.normal(size=(n, d)), rng.permutation(np.arange(n) % c), rng.normal(size=(d, h)),
            rng.normal(size=h), rng.normal(size=(h, c)) * w2_scale, rng.normal(size=c))


def _torch_two_layer(X, y, W1, b1, W2, b2):
    ts = [torch.tensor(a, requires_grad=True) for a in (W1, b1, W2, b2)]
    s = torch.relu(torch.tensor(X) @ ts[0] + ts[1]) @ ts[2] + ts[3]
    loss = torch.nn.functional.cross_entropy(s, torch.tensor(y))
    loss.backward()
    return loss.item(), dict(zip(two_layer.PARAMS, (t.grad.numpy() for t in ts)))


@pytest.mark.parametrize("dims,w2_scale", [((8, 5, 7, 4), 1.0), ((5, 6, 6, 6), 1.0), ((6, 5, 7, 4), 300.0),
                                           ((1, 3, 2, 2), 1.0)])
def test_two_layer_reference_matches_torch_autograd(dims, w2_scale):
    args = _network(np.random.default_rng(sum(dims)), *dims, w2_scale=w2_scale)
    loss, grads = two_layer.two_layer_backprop(*args)
    t_loss, t_grads = _torch_two_layer(*args)
    assert loss == pytest.approx(t_loss, rel=1e-12)
    assert list(grads) == ["W1", "b1", "W2", "b2"]
    for k in grads:
        np.testing.assert_allclose(grads[k], t_grads[k], rtol=1e-10, atol=1e-12 * max(1.0, np.abs(t_grads[k]).max()))


def test_buggy_references_make_exactly_their_mistake():
    args = _network(np.random.default_rng(3), 8, 5, 7, 4)
    n = 8
    _, g = two_layer.two_layer_backprop(*args)
    m = two_layer.MISTAKES
    _, summed = m["missing-batch-mean"](*args)
    _, flipped = m["sign-flipped"](*args)
    _, t1 = m["transposed"][0](*args)
    _, t2 = m["transposed"][1](*args)
    for k in g:
        np.testing.assert_allclose(summed[k], n * g[k], rtol=1e-12)
        np.testing.assert_array_equal(flipped[k], -g[k])
    assert t1["W1"].shape == (7, 5) and np.array_equal(t1["W1"], g["W1"].T) and np.array_equal(t1["W2"], g["W2"])
    assert t2["W2"].shape == (4, 7) and np.array_equal(t2["W1"], g["W1"])
    _, unmasked = m["missing-relu-mask"](*args)
    assert not np.allclose(unmasked["W1"], g["W1"]) and not np.allclose(unmasked["b1"], g["b1"])
    np.testing.assert_array_equal(unmasked["W2"], g["W2"])
    kept, first, mean, axis1, everything = (f(*args)[1] for f in m["bias-not-summed"])
    assert kept["b1"].shape == (8, 7) and kept["b2"].shape == (8, 4)
    np.testing.assert_allclose(kept["b1"].sum(axis=0), g["b1"], rtol=1e-12)
    np.testing.assert_allclose(first["b2"], kept["b2"][0])
    np.testing.assert_allclose(mean["b1"], g["b1"] / n, rtol=1e-12)
    assert axis1["b1"].shape == (8,) and everything["b2"].shape == ()
    for bug in (kept, first, mean, axis1, everything):
        np.testing.assert_array_equal(bug["W1"], g["W1"])


def test_reference_never_imports_torch():
    code = ("import sys; import dlgrade.reference.two_layer as t, numpy as np; "
            "t.two_layer_backprop(np.ones((2, 3)), np.array([0, 1]), np.ones((3, 4)), np.ones(4), np.ones((4, 2)), "
            "np.ones(2)); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).parent.parent))
    assert out.stdout.strip() == "False"


def test_reference_results_are_remembered_by_content_and_read_only():
    args = list(_network(np.random.default_rng(4), 6, 5, 7, 4))
    _, first = two_layer.two_layer_backprop(*args)
    _, again = two_layer.two_layer_backprop(*[np.array(a, copy=True) for a in args])
    assert again["W1"] is first["W1"] and not first["W1"].flags.writeable
    args[2] = args[2] + 1e-3  # same shapes, other content: computed afresh
    _, other = two_layer.two_layer_backprop(*args)
    assert not np.allclose(other["W1"], first["W1"])
    np.testing.assert_allclose(other["W1"], _torch_two_layer(*args)[1]["W1"], rtol=1e-10)
