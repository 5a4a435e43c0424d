"""Recognised mistakes: stable ids, teaching hints, and the evidence rule.

Each exercise lists buggy references (``mistakes = "module:MISTAKES"`` in its
spec): functions that make one classic mistake on purpose. A diagnosis is
reported only when the evidence shows it: on every input where the buggy
reference and the true reference disagree, the submission agrees with the
buggy one (and there is at least one such input). A correct submission agrees
with the true reference, so it can never be diagnosed this way. An input where the
submission's output is non-finite (and the buggy one's is not) counts neither way:
another mistake broke it, so one submission can show several (``overflow`` and
``wrong-axis``).

Behavioural diagnoses (``mutates-input``, ``overflow``, ``device-mismatch``,
``not-differentiable``) are reported by the checks that observe the behaviour.
Two belong to check kinds rather than to one exercise: ``ignores-rng`` (the
statistical kind's generator test: numpy's global generator used instead of the
``rng`` given) and ``linear-model`` (the training kind: a trained network whose
boundary is a straight line).

A non-finite output is put down to the buggy reference that reproduces it
(``log-underflow``, ``global-max-shift``, ...) before the check's generic
``nonfinite_diagnosis`` (see :mod:`dlgrade.graders.nonfinite`).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnosis:
    id: str
    title: str
    hint: str


def _d(id: str, title: str, hint: str) -> Diagnosis:
    return Diagnosis(id, title, hint)


SIGN_FLIPPED = _d(
    "sign-flipped", "The sign is flipped",
    "Your answer is the negative of the gradient. The loss falls as the prediction moves toward "
    "the label, so dL/dz = σ(z) − y is positive when the prediction is too high; check which term "
    "you subtract from which.")
MISSING_CHAIN_RULE = _d(
    "missing-chain-rule", "Derivative with respect to p, not z",
    "You differentiated the loss with respect to the probability p = σ(z) and stopped there. "
    "The question asks for dL/dz: multiply by dp/dz = σ(z)(1 − σ(z)) (the chain rule), and the "
    "expression simplifies to σ(z) − y.")
SIGMOID_DERIVATIVE_ONLY = _d(
    "sigmoid-derivative-only", "Only the sigmoid's derivative",
    "σ(z)(1 − σ(z)) is dp/dz, one factor of the chain rule. dL/dz also needs dL/dp = "
    "(p − y) / (p(1 − p)); multiplied together they give σ(z) − y.")
MSE_GRADIENT = _d(
    "mse-gradient", "The squared-error gradient",
    "This is the gradient of the squared error ½(σ(z) − y)², not of binary cross-entropy. With "
    "cross-entropy the σ'(z) factor cancels, which is exactly why it trains faster on a sigmoid.")
OVERFLOW = _d(
    "overflow", "Overflow on large inputs",
    "exp() of a large number overflows to inf, and inf/inf is nan. Softmax only depends on "
    "differences, S(z + β) = S(z): subtract the maximum along the axis before exponentiating, "
    "or use log-sum-exp.")
MUTATES_INPUT = _d(
    "mutates-input", "Modifies its argument",
    "Your function changed the caller's array (for instance with `z -= z.max()`). Compute into a "
    "new array instead: `shifted = z - z.max(axis=axis, keepdims=True)`.")
WRONG_AXIS = _d(
    "wrong-axis", "Normalised along the wrong axis",
    "The values are normalised along a different axis than the one asked for. Use the `axis` "
    "argument in every reduction, with keepdims=True so the result broadcasts back.")
MISSING_BATCH_MEAN = _d(
    "missing-batch-mean", "Off by a factor N (batch size)",
    "The loss is the mean over the batch, so every gradient carries a 1/N. Your values are N "
    "times too large (or the loss is a sum): divide by the batch size once, at the start of "
    "the backward pass.")
TRANSPOSED = _d(
    "transposed", "Gradient transposed",
    "A weight's gradient must have the weight's own shape. With row-vector batches, "
    "dW = inputᵀ @ upstream, not upstream @ input or its transpose.")
MISSING_RELU_MASK = _d(
    "missing-relu-mask", "ReLU mask missing",
    "The gradient flows back through the ReLU only where its input was positive: multiply the "
    "upstream gradient by (z1 > 0) before computing dW1 and db1.")
BIAS_NOT_SUMMED = _d(
    "bias-not-summed", "Bias gradient not summed over the batch",
    "A bias is shared by every example in the batch, so its gradient is the sum (over axis 0) "
    "of the per-example gradients, with the bias's shape.")
SMOOTHING_OVER_C_MINUS_1 = _d(
    "smoothing-over-c-minus-1", "ε spread over C − 1 classes",
    "You spread ε over the C − 1 wrong classes. This exercise (like PyTorch's "
    "`label_smoothing`) uses q = (1 − ε)·onehot + ε/C: every class, the true one included, "
    "gets ε/C.")
SMOOTHING_NOT_APPLIED = _d(
    "smoothing-not-applied", "Label smoothing not applied",
    "Your result is the plain cross-entropy: ε has no effect. Build the smoothed target "
    "q = (1 − ε)·onehot(target) + ε/C and take −Σ q·log_softmax(logits).")
DEVICE_MISMATCH = _d(
    "device-mismatch", "Not on the input's device",
    "Your code decides the device itself instead of following its input: a tensor created on "
    "the CPU (or moved there) while the input lives on a GPU, or a hard-coded `.cuda()` / "
    "`device=\"cuda\"`, which fails on any machine without CUDA (and on CPU inputs). Use the "
    "input's device: create new tensors with `device=logits.device` (or `torch.zeros_like`, "
    "`F.one_hot(...).to(logits)`), never name a device, and avoid `.numpy()`/`.item()` in the "
    "computation.")
LOG_UNDERFLOW = _d(
    "log-underflow", "A probability underflowed to 0 before the log",
    "Your loss is infinite although every score is finite: the softmax probability of a class "
    "far below the best one is smaller than the smallest float, rounds to 0, and log(0) = -inf. "
    "Subtracting the maximum does not help here (it is what makes the best class 1 and the others "
    "0). Compute the log-probabilities directly with log-softmax, log p = s − max − "
    "log Σ exp(s − max) (log-sum-exp), and never take the log of a probability.")
GLOBAL_MAX_SHIFT = _d(
    "global-max-shift", "One max for the whole array, not one per slice",
    "You subtract the maximum of the whole array, so a row (or slice) far below the largest "
    "value becomes exp(−1000) = 0 everywhere and 0/0 = nan. Each slice is its own softmax: "
    "subtract each slice's own maximum, `z - z.max(axis=axis, keepdims=True)`.")
NOT_DIFFERENTIABLE = _d(
    "not-differentiable", "Gradients cannot flow back",
    "autograd cannot differentiate your result: it was detached, rebuilt from numpy or Python "
    "numbers, or made with in-place operations on leaves. Keep the whole computation in "
    "torch operations on the input tensor.")
IGNORES_RNG = _d(
    "ignores-rng", "numpy's global generator instead of rng",
    "Draw every random number from the generator you are given (rng.random(...), rng.normal(...), "
    "rng.standard_normal(...)), never from np.random.rand, np.random.randn or np.random.binomial: "
    "the same rng must give the same result, whatever numpy's global seed.")
LINEAR_MODEL = _d(
    "linear-model", "A linear model",
    "The boundary your parameters draw is a straight line (or gives every point one class): the "
    "network behaves as a linear model, and no line separates XOR's quadrants. Use the tanh in both "
    "the forward and the backward pass of training, and train until the hidden units leave tanh's "
    "linear regime (enough steps, a large enough learning rate).")

DIAGNOSES: dict[str, Diagnosis] = {
    d.id: d for d in (
        SIGN_FLIPPED, MISSING_CHAIN_RULE, SIGMOID_DERIVATIVE_ONLY, MSE_GRADIENT, OVERFLOW,
        MUTATES_INPUT, WRONG_AXIS, MISSING_BATCH_MEAN, TRANSPOSED, MISSING_RELU_MASK,
        BIAS_NOT_SUMMED, SMOOTHING_OVER_C_MINUS_1, SMOOTHING_NOT_APPLIED, DEVICE_MISMATCH,
        NOT_DIFFERENTIABLE, IGNORES_RNG, LINEAR_MODEL, LOG_UNDERFLOW, GLOBAL_MAX_SHIFT,
    )
}
BUILTIN_DIAGNOSES: dict[str, Diagnosis] = dict(DIAGNOSES)  # dlgrade's own (nothing ever adds to them)


def of_exercise(table: dict, diag_id: str) -> Diagnosis | None:
    """An exercise's own text for ``diag_id`` from its ``[diagnoses.ID]`` table: a new id,
    or a built-in one with this exercise's title and hint (what it leaves out stays the
    built-in's). None when the exercise says nothing about it."""
    own = table.get(diag_id) if isinstance(table, dict) else None
    if not isinstance(own, dict):
        return None
    base = BUILTIN_DIAGNOSES.get(diag_id) or Diagnosis(diag_id, default_title(diag_id), "")
    return Diagnosis(diag_id, own.get("title") or base.title, own.get("hint") or base.hint)


def default_title(diag_id: str) -> str:
    """``missing-delta`` -> ``Missing delta``: what a student reads for an id no text describes."""
    words = diag_id.replace("-", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else diag_id


def describe(diag_id: str, result=None) -> Diagnosis:
    """The title and hint a student reads for ``diag_id``: the graded exercise's own (a
    result carries them, ``result.explanations``), else dlgrade's, else a title made
    from the id (never "no such diagnosis")."""
    own = getattr(result, "explanations", None) or {}
    text = own.get(diag_id)
    if isinstance(text, dict):
        base = BUILTIN_DIAGNOSES.get(diag_id) or Diagnosis(diag_id, default_title(diag_id), "")
        return Diagnosis(diag_id, text.get("title") or base.title, text.get("hint") or base.hint)
    return BUILTIN_DIAGNOSES.get(diag_id) or Diagnosis(diag_id, default_title(diag_id), "")


def evidence_matches(pairs) -> bool:
    """The evidence rule over ``(student_matches_buggy, buggy_differs_from_reference)`` pairs.

    True when at least one input distinguishes the mistake from the truth and
    the student agrees with the mistake on every such input.
    """
    distinguishing = [m for m, differs in pairs if differs]
    return bool(distinguishing) and all(distinguishing)
