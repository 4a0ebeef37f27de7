"""Gradients: finite differences (gradcheck), the published form, and where gradient may flow."""

import math

import numpy as np
import pytest
import torch
from helpers import as_tensors, batches, gradient_scale, loss_scale
from hypothesis import given, settings

import klloss


@settings(max_examples=40)
@given(batch=batches(max_n=4, max_c=6, max_abs=10.0))
def test_gradcheck_against_finite_differences(batch):
    logits_t, s, z, y, beta = as_tensors(batch, requires_grad=True)
    for reduction in ("batchmean", "sum", "none"):

        def loss(x, reduction=reduction):
            return klloss.klloss_v2(logits_t, x, z, y, beta, reduction=reduction)

        assert torch.autograd.gradcheck(loss, (s,))


@given(batch=batches())
def test_vectorized_gradient_matches_published(batch):
    logits_t, s, z, y, beta = as_tensors(batch, requires_grad=True)
    (ours,) = torch.autograd.grad(klloss.klloss_v2(logits_t, s, z, y, beta), s)
    (published,) = torch.autograd.grad(klloss.klloss_v2_published(logits_t, s, z, y, beta), s)
    assert torch.all((ours - published).abs() <= 1e-12 * torch.as_tensor(gradient_scale(batch)))


@given(batch=batches())
def test_gradient_rows_sum_to_zero(batch):
    # shift invariance in s means d L / d s_i is orthogonal to the all-ones vector
    logits_t, s, z, y, beta = as_tensors(batch, requires_grad=True)
    (g,) = torch.autograd.grad(klloss.klloss_v2(logits_t, s, z, y, beta), s)
    # g_ij = (q_ij W_i - w_ij p_ij) / N: the row sum cancels terms (see helpers.gradient_scale)
    assert np.all(np.abs(g.sum(1).numpy()) <= 1e-14 * gradient_scale(batch)[:, 0])


def test_corrected_form_sends_no_gradient_to_the_teacher(sample):
    t = sample.tensors(torch.float64)
    teacher = t["target"].clone().requires_grad_(True)
    margin_logits = t["logits_t"].clone().requires_grad_(True)
    student = t["input"].clone().requires_grad_(True)
    klloss.klloss_v2(margin_logits, student, teacher, t["label"], 1.5).backward()
    assert student.grad is not None
    assert student.grad.abs().sum() > 0
    assert teacher.grad is None
    assert margin_logits.grad is None


def test_published_form_sends_gradient_into_target(sample):
    t = sample.tensors(torch.float64)
    teacher = t["target"].clone().requires_grad_(True)
    margin_logits = t["logits_t"].clone().requires_grad_(True)
    klloss.klloss_v2_published(margin_logits, t["input"], teacher, t["label"], 1.5).backward()
    assert teacher.grad is not None
    assert teacher.grad.abs().sum() > 0
    assert margin_logits.grad is None  # logits_t is detached in the article too


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_gradient_has_the_input_dtype(sample, dtype):
    t = sample.tensors(dtype)
    s = t["input"].clone().requires_grad_(True)
    klloss.klloss_v2(t["logits_t"], s, t["target"], t["label"], 1.5).backward()
    assert s.grad.dtype == dtype
    assert torch.isfinite(s.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_runs_on_cuda(sample):
    t = sample.tensors(torch.float64)
    cuda = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in t.items()}
    got = klloss.klloss_v2(**cuda)
    assert got.device.type == "cuda"
    assert got.item() == pytest.approx(klloss.klloss_v2(**t).item(), rel=1e-12)
    assert math.isfinite(got.item())


@given(batch=batches())
def test_fast_path_matches_the_autograd_composition(batch):
    # klloss_v2 runs a custom autograd.Function; the plain composition of tensor ops is its reference
    from klloss.loss import _per_sample_autograd

    logits_t, s, z, y, beta = as_tensors(batch, requires_grad=True)
    fast = klloss.klloss_v2(logits_t, s, z, y, beta, reduction="none")
    slow = _per_sample_autograd(logits_t, s, z, y, beta, 8.0)
    weights = torch.rand(len(y), dtype=torch.float64)  # a non-uniform upstream gradient
    (g_fast,) = torch.autograd.grad((fast * weights).sum(), s)
    (g_slow,) = torch.autograd.grad((slow * weights).sum(), s)
    scale = loss_scale(batch)
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12 * scale)
    scale = torch.as_tensor(gradient_scale(batch))
    assert torch.all((g_fast - g_slow).abs() <= 1e-12 * scale)


def test_second_derivatives_match_the_autograd_composition(sample):
    # the gradient is itself differentiable: a Hessian-vector product agrees with autograd's
    from klloss.loss import _per_sample_autograd

    t = sample.tensors(torch.float64)
    v = torch.randn(t["input"].shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    products = []
    for per_sample in (
        lambda x: klloss.klloss_v2(t["logits_t"], x, t["target"], t["label"], 1.5, reduction="none"),
        lambda x: _per_sample_autograd(t["logits_t"], x, t["target"], t["label"], 1.5, 8.0),
    ):
        s = t["input"].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(per_sample(s).mean(), s, create_graph=True)
        (hv,) = torch.autograd.grad((g * v).sum(), s)
        products.append(hv)
    torch.testing.assert_close(products[0], products[1], rtol=1e-10, atol=1e-14)
    assert products[0].abs().max() > 1e-3
    assert torch.autograd.gradgradcheck(
        lambda x: klloss.klloss_v2(t["logits_t"], x, t["target"], t["label"], 1.5),
        (t["input"].clone().requires_grad_(True),),
    )


@pytest.mark.parametrize("offset", [1, 0])  # just below and at klloss.loss.SMALL_C
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_both_forward_paths_match_autograd(offset, dtype):
    # the forward computes the softmaxes in two ways, by the number of classes
    from klloss.loss import SMALL_C, _per_sample_autograd

    for classes in (SMALL_C - offset, 3 if offset else 1000):
        gen = torch.Generator().manual_seed(classes)
        z = 5 * torch.randn(16, classes, generator=gen, dtype=dtype)
        s = (5 * torch.randn(16, classes, generator=gen, dtype=dtype)).requires_grad_(True)
        y = torch.randint(0, classes, (16,), generator=gen)
        value = klloss.klloss_v2(z, s, z, y, 0.7)
        (fast,) = torch.autograd.grad(value, s)
        reference = _per_sample_autograd(z, s, z, y, 0.7, 8.0).sum() / 16
        (slow,) = torch.autograd.grad(reference, s)
        tol = 1e-12 if dtype == torch.float64 else 2e-5
        torch.testing.assert_close(value, reference, rtol=tol, atol=tol)
        torch.testing.assert_close(fast, slow, rtol=tol, atol=tol * slow.abs().max().item())
