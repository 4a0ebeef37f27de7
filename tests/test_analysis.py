"""klloss.analysis against autograd and numerical optimisation."""

import math

import numpy as np
import pytest
import torch
from helpers import as_tensors, batches, gradient_scale
from hypothesis import given, settings

import klloss
from klloss import analysis


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


def test_negative_weights_have_no_minimum():
    wrong = torch.tensor([[0.0, 5.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([0])
    with pytest.raises(ValueError, match="weights must all be >= 0"):
        analysis.min_loss(wrong, wrong, y, 0.5)
    losses = analysis.descend(wrong, wrong, y, 0.5, steps=300, lr=1.0).losses
    assert losses[-1] < losses[0] - 10  # falls and keeps falling
    assert losses[-1] < losses[len(losses) // 2] - 1


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
