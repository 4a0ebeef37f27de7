"""The published, vectorized and oracle forms agree; reductions, invariances and limits."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from article_reference import article_klloss_v2
from helpers import EPS, as_tensors, batches, float32_bound, loss_scale
from hypothesis import given

import klloss


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@given(batch=batches())
def test_published_is_bit_identical_to_the_article(dtype, batch):
    logits_t, s, z, y, beta = as_tensors(batch, dtype, requires_grad=True)
    z.requires_grad_(True)
    ours = klloss.klloss_v2_published(logits_t, s, z, y, beta)
    (g_s, g_z) = torch.autograd.grad(ours, (s, z))
    theirs = article_klloss_v2(logits_t, s, z, y, beta)
    (h_s, h_z) = torch.autograd.grad(theirs, (s, z))
    assert torch.equal(ours, theirs)
    assert torch.equal(g_s, h_s)
    assert torch.equal(g_z, h_z)


@given(batch=batches())
def test_float64_forms_match_the_oracle(batch):
    expected = klloss.oracle.klloss_v2(*batch)
    tol = 1e-12 * loss_scale(batch) + 1e-300
    args = as_tensors(batch, torch.float64)
    assert abs(klloss.klloss_v2(*args).item() - expected) <= tol
    assert abs(klloss.klloss_v2_published(*args).item() - expected) <= tol
    assert abs(klloss.trace(*args).loss.item() - expected) <= tol


@given(batch=batches())
def test_float32_vectorized_matches_published(batch):
    args = as_tensors(batch, torch.float32)
    ours = klloss.klloss_v2(*args).item()
    published = klloss.klloss_v2_published(*args).item()
    assert abs(ours - published) <= 1e-5 * loss_scale(batch) + 1e-30


@pytest.mark.parametrize("impl", ["reference", "fused"])
@given(batch=batches())
def test_float32_close_to_oracle(batch, impl):
    # the oracle sees the same float32-rounded inputs; what is left is float32 arithmetic, whose
    # error model (helpers.float32_bound) is relative to the log-probabilities and weights
    logits_t, s, z, y, beta = batch
    as32 = tuple(np.asarray(a, np.float32).astype(np.float64) for a in (logits_t, s, z))
    parts = klloss.oracle.intermediates(*as32, y, beta)
    tol = float32_bound(parts, beta, 8.0, len(y), EPS[torch.float32])
    got = klloss.klloss_v2(*as_tensors(batch, torch.float32), impl=impl).item()
    assert abs(got - parts["loss"]) <= tol


def test_sample_matches_oracle_and_article_magnitude(sample):
    t = sample.tensors(torch.float64)
    expected = klloss.oracle.klloss_v2(
        sample.logits_t, sample.input, sample.target, sample.label, sample.beta
    )
    assert klloss.klloss_v2(**t).item() == pytest.approx(expected, rel=1e-12)
    # the article prints 3.1765; the true loss is far smaller
    assert 0 < expected < 0.1


@given(batch=batches())
def test_reductions_agree(batch):
    args = as_tensors(batch)
    n = args[1].shape[0]
    none = klloss.klloss_v2(*args, reduction="none")
    total = klloss.klloss_v2(*args, reduction="sum")
    mean = klloss.klloss_v2(*args, reduction="batchmean")
    assert none.shape == (n,)
    torch.testing.assert_close(none.sum(), total, rtol=1e-12, atol=1e-12 * loss_scale(batch) * n)
    torch.testing.assert_close(total / n, mean, rtol=1e-12, atol=1e-300)
    oracle_rows = klloss.oracle.intermediates(*batch)["per_sample"]
    np.testing.assert_allclose(none.numpy(), oracle_rows, rtol=1e-11, atol=1e-12 * loss_scale(batch) * n)


@given(batch=batches())
def test_shift_invariance(batch):
    logits_t, s, z, y, beta = batch
    rng = np.random.default_rng(0)
    n = s.shape[0]
    cs, cz = rng.normal(0, 10, (n, 1)), rng.normal(0, 10, (n, 1))
    before = klloss.oracle.klloss_v2(*batch)
    after_args = as_tensors((logits_t + cz, s + cs, z + cz, y, beta))
    after = klloss.klloss_v2(*after_args).item()
    assert abs(after - before) <= 1e-10 * loss_scale(batch) + 1e-300


@given(batch=batches())
def test_large_beta_tends_to_offset_times_kl(batch):
    logits_t, s, z, y, _ = batch
    args = as_tensors(batch)
    kl = F.kl_div(F.log_softmax(args[1], 1), F.softmax(args[2], 1), reduction="batchmean").item()
    at_inf = klloss.klloss_v2(args[0], args[1], args[2], args[3], math.inf)
    assert abs(at_inf.item() - 8.0 * kl) <= 1e-12 * loss_scale(batch)
    # |L(beta) - 8 KL| = |sum m p (log p - log q)| / (N beta): shrinks like 1/beta
    parts = klloss.oracle.intermediates(logits_t, s, z, y, 1.0, offset=0.0)
    bound = np.abs(parts["weighted"]).sum() / s.shape[0]
    for beta in (1e2, 1e4, 1e6):
        gap = abs(klloss.klloss_v2(args[0], args[1], args[2], args[3], beta).item() - 8.0 * kl)
        assert gap <= bound / beta * (1 + 1e-9) + 1e-12 * loss_scale((logits_t, s, z, y, beta))


def test_offset_scales_the_kl_part(sample):
    t = sample.tensors(torch.float64)
    kl = klloss.oracle.kl(sample.target, sample.input)
    for offset in (0.0, 1.0, 8.0, -3.0):
        got = klloss.klloss_v2(**{**t, "beta": math.inf}, offset=offset).item()
        assert got == pytest.approx(offset * kl, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(sample, dtype):
    t = sample.tensors(dtype)
    got = klloss.klloss_v2(**t)
    assert got.dtype == torch.float32
    as32 = {
        k: (v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in t.items()
    }
    assert torch.equal(got, klloss.klloss_v2(**as32))


def test_module_matches_function_and_repr(sample):
    t = sample.tensors(torch.float64)
    module = klloss.KLLossV2(beta=2.0, offset=4.0, reduction="none")
    assert repr(module) == "KLLossV2(beta=2.0, offset=4.0, reduction='none', ignore_index=-100)"
    got = module(t["logits_t"], t["input"], t["target"], t["label"])
    expected = klloss.klloss_v2(**{**t, "beta": 2.0}, offset=4.0, reduction="none")
    assert torch.equal(got, expected)


def test_trace_matches_oracle_step_by_step(sample):
    t = sample.tensors(torch.float64)
    tr = klloss.trace(**t)
    ref = klloss.oracle.intermediates(sample.logits_t, sample.input, sample.target, sample.label, sample.beta)
    assert tr.names() == list(ref)
    for name in tr.names():
        np.testing.assert_allclose(getattr(tr, name).numpy(), ref[name], rtol=1e-12, atol=1e-15, err_msg=name)
    frames = tr.to_frames()
    assert list(frames) == tr.names()
    assert frames["weight"].shape == (2, 5)
    assert frames["weight"].index[1] == "sample 1"
    assert frames["weight"].columns[3] == "class 3"
    assert frames["loss"].iloc[0, 0] == pytest.approx(tr.loss.item())


def test_trace_is_frozen(sample):
    tr = klloss.trace(**sample.tensors())
    with pytest.raises(dataclasses.FrozenInstanceError):
        tr.loss = torch.tensor(0.0)


def test_oracle_is_independent_of_torch():
    # the reference must not share code with what it checks: load oracle.py on its own
    import subprocess
    import sys
    from pathlib import Path

    oracle = Path(klloss.oracle.__file__)
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('oracle', {str(oracle)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "value = module.klloss_v2([[2.5, 1.2]], [[2.0, 1.0]], [[2.5, 1.2]], [0], 1.5)\n"
        "assert 'torch' not in sys.modules, 'oracle imported torch'\n"
        "print(value)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == pytest.approx(
        klloss.klloss_v2(
            torch.tensor([[2.5, 1.2]], dtype=torch.float64),
            torch.tensor([[2.0, 1.0]], dtype=torch.float64),
            torch.tensor([[2.5, 1.2]], dtype=torch.float64),
            torch.tensor([0]),
            1.5,
        ).item(),
        rel=1e-12,
    )
