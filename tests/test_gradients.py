"""Gradients: finite differences (gradcheck), the published form, and where gradient may flow."""

import math

import numpy as np
import pytest
import torch
from helpers import as_tensors, batches, gradient_scale, loss_scale
from hypothesis import given, settings

import klloss


@pytest.mark.slow
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


@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_gradient_is_the_float32_gradient_rounded(sample, dtype, impl):
    # half-precision logits are computed in float32; the gradient comes back in the input's dtype,
    # as the float32 gradient of the same (rounded) inputs, rounded once
    t = sample.tensors(dtype)
    s = t["input"].clone().requires_grad_(True)
    klloss.klloss_v2(t["logits_t"], s, t["target"], t["label"], 1.5, impl=impl).backward()
    s32 = t["input"].float().requires_grad_(True)
    klloss.klloss_v2(t["logits_t"].float(), s32, t["target"].float(), t["label"], 1.5, impl=impl).backward()
    assert s.grad.dtype == dtype
    assert torch.equal(s.grad, s32.grad.to(dtype))
    assert s.grad.abs().max() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_runs_on_cuda(sample):
    t = sample.tensors(torch.float64)
    cuda = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in t.items()}
    got = klloss.klloss_v2(**cuda)
    assert got.device.type == "cuda"
    assert got.item() == pytest.approx(klloss.klloss_v2(**t).item(), rel=1e-12)
    assert math.isfinite(got.item())


@pytest.mark.parametrize("impl", ["fused", "auto"])
@given(batch=batches())
def test_fast_path_matches_the_reference(batch, impl):
    # every form is tested against the readable reference: per-row losses and their gradient,
    # under a non-uniform upstream gradient
    logits_t, s, z, y, beta = as_tensors(batch, requires_grad=True)
    fast = klloss.klloss_v2(logits_t, s, z, y, beta, reduction="none", impl=impl)
    slow = klloss.klloss_v2_reference(logits_t, s, z, y, beta, reduction="none")
    weights = torch.rand(len(y), dtype=torch.float64)
    (g_fast,) = torch.autograd.grad((fast * weights).sum(), s)
    (g_slow,) = torch.autograd.grad((slow * weights).sum(), s)
    scale = loss_scale(batch)
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12 * scale)
    scale = torch.as_tensor(gradient_scale(batch))
    assert torch.all((g_fast - g_slow).abs() <= 1e-12 * scale)


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_second_derivatives_match_the_reference(sample, impl):
    # the gradient is itself differentiable: a Hessian-vector product agrees with the reference's,
    # and with finite differences of the gradient (gradgradcheck)
    t = sample.tensors(torch.float64)
    v = torch.randn(t["input"].shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    args = (t["logits_t"], t["target"], t["label"], 1.5)
    products = []
    for per_sample in (
        lambda x: klloss.klloss_v2(args[0], x, *args[1:], reduction="none", impl=impl),
        lambda x: klloss.klloss_v2_reference(args[0], x, *args[1:], reduction="none"),
    ):
        s = t["input"].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(per_sample(s).mean(), s, create_graph=True)
        (hv,) = torch.autograd.grad((g * v).sum(), s)
        products.append(hv)
    torch.testing.assert_close(products[0], products[1], rtol=1e-10, atol=1e-14)
    assert products[0].abs().max() > 1e-3
    assert torch.autograd.gradgradcheck(
        lambda x: klloss.klloss_v2(args[0], x, *args[1:], impl=impl),
        (t["input"].clone().requires_grad_(True),),
    )


@pytest.mark.parametrize("classes", [1, 2, 127, 128, 1000])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_matches_the_reference_across_class_counts(classes, dtype):
    gen = torch.Generator().manual_seed(classes)
    z = 5 * torch.randn(16, classes, generator=gen, dtype=dtype)
    s = (5 * torch.randn(16, classes, generator=gen, dtype=dtype)).requires_grad_(True)
    y = torch.randint(0, classes, (16,), generator=gen)
    value = klloss.klloss_v2(z, s, z, y, 0.7, impl="fused")
    (fast,) = torch.autograd.grad(value, s)
    reference = klloss.klloss_v2_reference(z, s, z, y, 0.7)
    (slow,) = torch.autograd.grad(reference, s)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(value, reference, rtol=tol, atol=tol)
    torch.testing.assert_close(fast, slow, rtol=tol, atol=tol * slow.abs().max().item())
