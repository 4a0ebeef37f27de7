"""Gradients: finite differences (gradcheck), the published form, and where gradient may flow."""

import math

import pytest
import torch
from helpers import as_tensors, batches, loss_scale
from hypothesis import given, settings

import klloss


@settings(max_examples=40)
@given(batch=batches(max_n=4, max_c=6, max_abs=10.0))
def test_gradcheck_against_finite_differences(batch):
    logits_t, s, z, y, beta = as_tensors(batch, requires_grad=True)
    for reduction in ("batchmean", "sum", "none"):
        assert torch.autograd.gradcheck(
            lambda x: klloss.klloss_v2(logits_t, x, z, y, beta, reduction=reduction), (s,)
        )


@given(batch=batches())
def test_vectorized_gradient_matches_published(batch):
    logits_t, s, z, y, beta = as_tensors(batch, requires_grad=True)
    (ours,) = torch.autograd.grad(klloss.klloss_v2(logits_t, s, z, y, beta), s)
    (published,) = torch.autograd.grad(klloss.klloss_v2_published(logits_t, s, z, y, beta), s)
    torch.testing.assert_close(ours, published, rtol=1e-10, atol=1e-12 * loss_scale(batch))


@given(batch=batches())
def test_gradient_rows_sum_to_zero(batch):
    # shift invariance in s means d L / d s_i is orthogonal to the all-ones vector
    logits_t, s, z, y, beta = as_tensors(batch, requires_grad=True)
    (g,) = torch.autograd.grad(klloss.klloss_v2(logits_t, s, z, y, beta), s)
    assert torch.all(g.sum(1).abs() <= 1e-12 * (1 + g.abs().sum(1)))


def test_corrected_form_sends_no_gradient_to_the_teacher(sample):
    t = sample.tensors(torch.float64)
    teacher = t["target"].clone().requires_grad_(True)
    margin_logits = t["logits_t"].clone().requires_grad_(True)
    student = t["input"].clone().requires_grad_(True)
    klloss.klloss_v2(margin_logits, student, teacher, t["label"], 1.5).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None
    assert margin_logits.grad is None


def test_published_form_sends_gradient_into_target(sample):
    t = sample.tensors(torch.float64)
    teacher = t["target"].clone().requires_grad_(True)
    margin_logits = t["logits_t"].clone().requires_grad_(True)
    klloss.klloss_v2_published(margin_logits, t["input"], teacher, t["label"], 1.5).backward()
    assert teacher.grad is not None and teacher.grad.abs().sum() > 0
    assert margin_logits.grad is None  # logits_t is detached in the article too


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_gradient_has_the_input_dtype(sample, dtype):
    t = sample.tensors(dtype)
    s = t["input"].clone().requires_grad_(True)
    klloss.klloss_v2(t["logits_t"], s, t["target"], t["label"], 1.5).backward()
    assert s.grad.dtype == dtype and torch.isfinite(s.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_runs_on_cuda(sample):
    t = sample.tensors(torch.float64)
    cuda = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in t.items()}
    got = klloss.klloss_v2(**cuda)
    assert got.device.type == "cuda"
    assert got.item() == pytest.approx(klloss.klloss_v2(**t).item(), rel=1e-12)
    assert math.isfinite(got.item())
