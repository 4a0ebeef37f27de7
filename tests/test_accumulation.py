"""Gradient accumulation with ``num_items_in_batch``: micro-batches, each divided by the count of
rows kept in the whole batch, add up to the one-batch gradient.

Reference: the closed-form gradient of the whole batch's mean, from the float64 NumPy oracle's
intermediates, dL/ds_j = f/T (q_j W - w_j p_j) / K on the K rows kept (notebook 04 derives it for
T = 1, f = 1; the chain rule through s/T gives the 1/T), zero on the ignored rows.
"""

import numpy as np
import pytest
import torch
from helpers import EPS

import klloss

IGNORE = -100
B, T, C = 4, 6, 11
LENGTHS = [6, 4, 5, 1]  # uneven padding: the two micro-batches below keep 6 + 4 = 10 and 5 + 1 = 6 rows

OPTIONS = {
    # the defaults: temperature 1, normalize (f = 1/k); the reference form computes them
    "defaults": {},
    # the article's scale: the fused form on the CPU
    "article's scale": {"normalize": False},
    "temperature 2, clamp, beta 0.5": {"temperature": 2.0, "clamp": True, "margin_scale": 0.5},
}


def _batch(seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    z = 3 * torch.randn(B, T, C, generator=gen, dtype=torch.float64)
    s = torch.randn(B, T, C, generator=gen, dtype=torch.float64)
    y = torch.randint(0, C, (B, T), generator=gen)
    y[torch.arange(T) >= torch.tensor(LENGTHS).unsqueeze(1)] = IGNORE
    return z.to(dtype), s.to(dtype), y


def _closed_form_gradient(z, s, y, options):
    """f/T (q W - w p) / K on kept rows, from the oracle, in float64."""
    kw = {"margin_scale": 1.5, "temperature": 1.0, "normalize": True, "clamp": False, **options}
    offset = 8.0
    zf, sf = (x.double().reshape(-1, C).numpy() for x in (z, s))
    yf = y.reshape(-1).numpy()
    parts = klloss.oracle.intermediates(
        zf, sf, zf, yf, kw["margin_scale"], offset, IGNORE, kw["temperature"], kw["normalize"], kw["clamp"]
    )
    p, w, q = parts["target_prob"], parts["weight"], np.exp(parts["log_input"])
    big_w = (w * p).sum(1, keepdims=True)
    factor = kw["temperature"] ** 2 / offset if kw["normalize"] else kw["temperature"] ** 2
    kept = (yf != IGNORE)[:, None]
    grad = np.where(kept, factor / kw["temperature"] * (q * big_w - w * p), 0.0) / kept.sum()
    return grad.reshape(B, T, C)


def _accumulated_gradient(z, s, y, options, count_as, splits=(slice(0, 2), slice(2, 4))):
    """Backward once per micro-batch, each divided by the whole batch's count; the gradients add
    up in one leaf, as they do in a model's parameters."""
    leaf = s.clone().requires_grad_(True)
    count = sum((y[rows] != IGNORE).sum() for rows in splits)  # a tensor, as a training loop has it
    if count_as == "int":
        count = int(count)
    for rows in splits:
        loss = klloss.margin_kd_loss(leaf[rows], z[rows], y[rows], num_items_in_batch=count, **options)
        loss.backward()
    return leaf.grad


@pytest.mark.parametrize("count_as", ["tensor", "int"])
@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_micro_batches_with_the_count_give_the_one_batch_gradient_float64(seed, name, count_as):
    z, s, y = _batch(seed)
    expected = _closed_form_gradient(z, s, y, OPTIONS[name])
    got = _accumulated_gradient(z, s, y, OPTIONS[name], count_as).numpy()
    assert np.all(got[y.numpy() == IGNORE] == 0)
    # float64 rounding only: a few dozen roundings of numbers of the gradient's size
    bound = 64 * EPS[torch.float64] * np.abs(expected).max()
    assert np.abs(got - expected).max() <= bound


@pytest.mark.parametrize("name", list(OPTIONS))
def test_micro_batches_in_float32_are_within_float32_rounding_of_the_float64_gradient(name):
    z, s, y = _batch(3, torch.float32)
    expected = _closed_form_gradient(z, s, y, OPTIONS[name])  # from the same float32 inputs
    got = _accumulated_gradient(z, s, y, OPTIONS[name], "tensor")
    assert got.dtype == torch.float32  # an int64 count does not promote the gradient
    # float32 rounding: a few dozen roundings of numbers of the gradient's size (the logits are
    # below 10 in size here, so the log-probabilities lose no more than that)
    scale = float(np.abs(expected).max())
    assert np.abs(got.numpy() - expected).max() <= 64 * EPS[torch.float32] * scale


@pytest.mark.parametrize("name", list(OPTIONS))
def test_the_count_makes_the_micro_batch_split_irrelevant(name):
    # one row per micro-batch, one batch of everything: the same gradient, to float64 rounding
    z, s, y = _batch(4)
    whole = _accumulated_gradient(z, s, y, OPTIONS[name], "tensor", splits=(slice(0, 4),))
    rows = tuple(slice(i, i + 1) for i in range(B))
    split = _accumulated_gradient(z, s, y, OPTIONS[name], "tensor", splits=rows)
    leaf = s.clone().requires_grad_(True)
    klloss.margin_kd_loss(leaf, z, y, **OPTIONS[name]).backward()  # plain batchmean, no count
    for g in (whole, split):
        assert (g - leaf.grad).abs().max() <= 64 * EPS[torch.float64] * leaf.grad.abs().max()


def test_without_the_count_each_micro_batch_is_its_own_mean():
    # the mistake the count prevents: per-micro-batch means, averaged, weigh each row of the
    # micro-batch with fewer kept rows (6, against 10) more than the others
    z, s, y = _batch(5)
    expected = _closed_form_gradient(z, s, y, {})
    leaf = s.clone().requires_grad_(True)
    for rows in (slice(0, 2), slice(2, 4)):
        (klloss.margin_kd_loss(leaf[rows], z[rows], y[rows]) / 2).backward()
    assert np.abs(leaf.grad.numpy() - expected).max() > 1e-3 * np.abs(expected).max()
