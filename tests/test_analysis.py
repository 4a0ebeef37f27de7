"""course.analysis against autograd and numerical optimisation."""

import math

import numpy as np
import pytest
import torch
from helpers import as_tensors, batches, gradient_scale
from hypothesis import given, settings

import klloss
from course import analysis


@given(batch=batches())
def test_closed_form_gradient_matches_autograd(batch):
    logits_t, s, z, y, beta = as_tensors(batch, requires_grad=True)
    (auto,) = torch.autograd.grad(klloss.klloss_v2(logits_t, s, z, y, beta), s)
    closed = analysis.grad_student(logits_t, s, z, y, beta)
    assert torch.all((closed - auto).abs() <= 1e-12 * torch.as_tensor(gradient_scale(batch)))


@given(batch=batches())
def test_decomposition_recombines_to_the_loss(batch):
    args = as_tensors(batch)
    parts = analysis.decompose(*args)
    loss = klloss.klloss_v2(*args)
    assert parts.loss.item() == pytest.approx(
        loss.item(), rel=1e-9, abs=1e-9 * (1 + abs(parts.kl.item()) * 8)
    )
    kl = torch.nn.functional.kl_div(
        torch.log_softmax(args[1], 1), torch.softmax(args[2], 1), reduction="batchmean"
    )
    assert parts.kl.item() == pytest.approx(kl.item(), rel=1e-9, abs=1e-12)


def _nonnegative(batch):
    return np.all(klloss.oracle.intermediates(*batch)["weight"] >= 0)


@pytest.mark.slow
@settings(max_examples=40)
@given(batch=batches(max_abs=5.0))
def test_stationary_student_is_the_minimiser(batch):
    logits_t, _, z, y, beta = as_tensors(batch)
    if not _nonnegative(batch):
        with pytest.raises(ValueError, match="weights must all be >= 0"):
            analysis.stationary_student(logits_t, z, y, beta)
        return
    q_star = analysis.stationary_student(logits_t, z, y, beta)
    torch.testing.assert_close(q_star.sum(1), torch.ones(len(y), dtype=q_star.dtype))
    # the gradient vanishes at q*
    s_star = q_star.log()
    g = analysis.grad_student(logits_t, s_star, z, y, beta)
    assert g.abs().max() < 1e-12 * (1 + 8 + abs(batch[1]).max())
    # and no numerically optimised student does better (L-BFGS from the teacher's logits)
    at_star = klloss.klloss_v2(logits_t, s_star, z, y, beta).item()
    x = z.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([x], max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        value = klloss.klloss_v2(logits_t, x, z, y, beta)
        value.backward()
        return value

    opt.step(closure)
    found = klloss.klloss_v2(logits_t, x, z, y, beta).item()
    assert at_star <= found + 1e-9 * (1 + abs(found))
    assert analysis.min_loss(logits_t, z, y, beta).item() == pytest.approx(at_star, rel=1e-9, abs=1e-12)


def test_min_loss_is_negative_with_unequal_weights(sample):
    t = sample.tensors(torch.float64)
    bound = analysis.min_loss(t["logits_t"], t["target"], t["label"], t["beta"])
    assert bound.item() < 0
    # equal weights (beta = inf) make it plain k * KL, whose minimum is 0
    assert analysis.min_loss(t["logits_t"], t["target"], t["label"], math.inf).item() == pytest.approx(
        0, abs=1e-12
    )


@pytest.mark.slow  # the minimiser, then 300 descent steps
def test_negative_weights_have_no_minimum():
    wrong = torch.tensor([[0.0, 5.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0])
    with pytest.raises(ValueError, match="weights must all be >= 0"):
        analysis.min_loss(wrong, wrong, y, 0.5)
    losses = analysis.descend(wrong, wrong, y, 0.5, steps=300, lr=1.0).losses
    assert losses[-1] < losses[0] - 10  # falls and keeps falling
    assert losses[-1] < losses[len(losses) // 2] - 1


@pytest.mark.slow
def test_descend_converges_to_the_stationary_student(sample):
    t = sample.tensors(torch.float64)
    run = analysis.descend(t["logits_t"], t["target"], t["label"], t["beta"], steps=2000, lr=0.5)
    q_star = analysis.stationary_student(t["logits_t"], t["target"], t["label"], t["beta"])
    torch.testing.assert_close(torch.softmax(run.logits, 1), q_star, atol=1e-6, rtol=0)
    assert np.all(np.diff(run.losses.numpy()) <= 1e-12)  # monotone on this convex problem
    assert run.trajectory.shape == (2001, 2, 5)
    torch.testing.assert_close(run.trajectory[0], torch.full((2, 5), 0.2, dtype=torch.float64))
    torch.testing.assert_close(run.trajectory[-1], torch.softmax(run.logits, 1))


def test_analysis_checks_its_arguments(sample):
    t = sample.tensors(torch.float64)
    with pytest.raises(ValueError, match="beta must be > 0"):
        analysis.grad_student(t["logits_t"], t["input"], t["target"], t["label"], 0.0)
    with pytest.raises(ValueError, match="label values must lie"):
        analysis.stationary_student(t["logits_t"], t["target"], torch.tensor([-1, 2]), 1.5)
    with pytest.raises(TypeError, match=r"input must be a torch\.Tensor"):
        analysis.decompose(t["logits_t"], None, t["target"], t["label"], 1.5)
    with pytest.raises(ValueError, match="target must have the same shape"):
        analysis.reweighted_kd(t["logits_t"], t["input"], t["target"][:, :3], t["label"], 1.5)
    with pytest.raises(TypeError, match="offset must be a real number"):
        analysis.reweighted_kd(t["logits_t"], t["input"], t["target"], t["label"], 1.5, offset="8")


def _row_scale(batch):
    """Per-row scale of rounding in W KL(q* || q) + L_min: every term of both sums, in magnitude,
    each a product with a logarithm (of p, q, w or W) that may cancel against another."""
    parts = klloss.oracle.intermediates(*batch)
    w, p, log_q = parts["weight"], parts["target_prob"], parts["log_input"]
    big_w = (w * p).sum(1)
    log_w = np.log(np.where(w > 0, w, 1.0))
    terms = np.abs(w) * p * (1 + np.abs(parts["log_target"]) + np.abs(log_q) + np.abs(log_w))
    return terms.sum(1) + np.abs(big_w * np.log(np.where(big_w > 0, big_w, 1.0))) + 1.0


def _identity_numpy(batch):
    """The identity's two sides from the float64 NumPy oracle alone: (W, KL(q* || q), L_min, L_i)."""
    parts = klloss.oracle.intermediates(*batch)
    w, p, log_q = parts["weight"], parts["target_prob"], parts["log_input"]
    big_w = (w * p).sum(1)
    q_star = w * p / big_w[:, None]
    with np.errstate(divide="ignore"):
        log_q_star = np.log(q_star)
    kl = np.where(q_star > 0, q_star * (log_q_star - log_q), 0.0).sum(1)
    w_log_w = np.where(w > 0, w * np.log(np.where(w > 0, w, 1.0)), 0.0)
    min_loss = big_w * np.log(big_w) - (p * w_log_w).sum(1)
    return big_w, kl, min_loss, parts["per_sample"]


@given(batch=batches())
def test_loss_is_weighted_kd_towards_q_star_plus_its_minimum(batch):
    args = as_tensors(batch)
    if not _nonnegative(batch):
        with pytest.raises(
            ValueError, match=r"weights must all be >= 0 for the identity .*sample \d+, class \d+"
        ):
            analysis.reweighted_kd(*args)
        return
    tol = 1e-12 * _row_scale(batch)
    big_w, kl, min_loss, per_sample = _identity_numpy(batch)
    # the identity in float64 NumPy, from the oracle alone: L_i = W_i KL(q*_i || q_i) + L_min,i
    assert np.all(np.abs(big_w * kl + min_loss - per_sample) <= tol)
    # course.analysis agrees with it part by part, and recombines to the torch loss
    parts = analysis.reweighted_kd(*args)
    np.testing.assert_allclose(parts.big_w.numpy(), big_w, rtol=1e-12)
    np.testing.assert_allclose(parts.min_loss.numpy(), min_loss, rtol=0, atol=1e-12 * _row_scale(batch).max())
    assert np.all(np.abs(parts.kl.numpy() - kl) * big_w <= tol)
    loss = klloss.klloss_v2(*args, reduction="none").numpy()
    assert np.all(np.abs(parts.per_sample.numpy() - loss) <= tol)
    # KL(q* || q) is a KL divergence: torch's kl_div (0 log 0 = 0) gives it, and it is >= 0
    kl_torch = torch.nn.functional.kl_div(torch.log_softmax(args[1], 1), parts.q_star, reduction="none").sum(
        1
    )
    torch.testing.assert_close(parts.kl, kl_torch, rtol=1e-9, atol=1e-12)
    assert torch.all(parts.kl >= -1e-12)
    # L_min <= 0 (Jensen), and it is the loss at q*, as min_loss says
    assert np.all(min_loss <= tol)
    torch.testing.assert_close(parts.q_star, analysis.stationary_student(args[0], args[2], args[3], args[4]))
    assert parts.min_loss.mean().item() == pytest.approx(
        analysis.min_loss(args[0], args[2], args[3], args[4]).item(), rel=1e-12, abs=1e-12
    )


def test_identity_on_the_sample(sample):
    t = sample.tensors(torch.float64)
    parts = analysis.reweighted_kd(**t)
    big_w, kl, min_loss, per_sample = _identity_numpy(
        tuple(
            x.numpy() if isinstance(x, torch.Tensor) else x
            for x in (t["logits_t"], t["input"], t["target"], t["label"], t["beta"])
        )
    )
    np.testing.assert_allclose(parts.per_sample.numpy(), per_sample, rtol=1e-12)
    np.testing.assert_allclose(big_w * kl + min_loss, per_sample, rtol=1e-12)
    # the student is not at q*, so it pays W KL(q* || q) > 0 above the (negative) minimum
    assert torch.all(parts.kl > 0)
    assert torch.all(parts.min_loss < 0)


def test_identity_with_zero_weights():
    beta, k = 1.5, klloss.ARTICLE_OFFSET
    # the teacher ranks class 1 exactly k * beta above the label: w_1 = 0, so q*_1 = 0 (0 log 0 = 0)
    z = torch.tensor([[0.0, k * beta, 1.0]], dtype=torch.float64)
    s = torch.tensor([[3.0, -40.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([0])
    assert klloss.weight(klloss.margin(z, y), beta, k)[0, 1] == 0
    parts = analysis.reweighted_kd(z, s, z, y, beta)
    assert parts.q_star[0, 1] == 0
    assert torch.isfinite(parts.per_sample).all()
    torch.testing.assert_close(parts.per_sample, klloss.klloss_v2(z, s, z, y, beta, reduction="none"))
    # every weight 0 (offset 0, equal teacher logits): W = 0, the loss is 0 for every student
    flat = torch.zeros(2, 4, dtype=torch.float64)
    s2 = torch.tensor([[1.0, -2.0, 0.0, 5.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    y2 = torch.tensor([0, 3])
    zero = analysis.reweighted_kd(flat, s2, flat, y2, 1.0, offset=0.0)
    assert torch.all(zero.big_w == 0)
    assert torch.all(zero.per_sample == 0)
    assert torch.all(klloss.klloss_v2(flat, s2, flat, y2, 1.0, offset=0.0, reduction="none") == 0)
    torch.testing.assert_close(zero.q_star, torch.full((2, 4), 0.25, dtype=torch.float64))


def test_identity_refuses_negative_weights():
    wrong = torch.tensor([[0.0, 1.0, 0.0], [0.0, 20.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 0])
    with pytest.raises(
        ValueError, match=r"weights must all be >= 0 for the identity.*-5\.333.*sample 1, class 1"
    ):
        analysis.reweighted_kd(wrong, wrong, wrong, y, 1.5)


@given(batch=batches(max_abs=20.0))
def test_optimum_loses_label_confidence_exactly_when_the_label_logit_beats_the_teacher_mean(batch):
    # q*_y / p_y = k / W and W = k + (z_y - sum_c p_c z_c) / beta: below 1 iff z_y > E_p[z]
    logits_t, _s, z, y, beta = as_tensors(batch)
    if not _nonnegative(batch) or math.isinf(beta):
        return
    parts = klloss.oracle.intermediates(*batch)
    p = parts["target_prob"]
    rows = np.arange(len(y))
    lead = batch[0][rows, batch[3]] - (p * batch[0]).sum(1)  # z_y - E_p[z], from logits_t
    q_star = analysis.stationary_student(logits_t, z, y, beta).numpy()
    ratio = q_star[rows, batch[3]] / p[rows, batch[3]]
    np.testing.assert_allclose(ratio, 8.0 / (8.0 + (parts["margin"] * p).sum(1) / beta), rtol=1e-9)
    clear = np.abs(lead) / beta > 1e-9  # away from the tie, where round-off decides
    assert np.all((ratio[clear] < 1) == (lead[clear] > 0))
