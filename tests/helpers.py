"""Hypothesis strategies and tolerance helpers shared by the klloss tests (those that need
NumPy alone are in numpy_helpers.py, and re-exported here)."""

import math

import numpy as np
import pytest
import torch
from numpy_helpers import batches, loss_scale

import klloss

__all__ = ["EPS", "as_tensors", "batches", "float32_bound", "gradient_scale", "loss_scale"]

EPS = {torch.float32: 2.0**-24, torch.float64: 2.0**-53}
"""The unit roundoff of each dtype."""
SMALLEST_SUBNORMAL = {2.0**-24: 2.0**-149, 2.0**-53: 2.0**-1074}
"""The spacing of each dtype's numbers below its normal range, by its unit roundoff."""


def as_tensors(batch, dtype=torch.float64, requires_grad=False):
    logits_t, input, target, label, beta = batch
    t = lambda x: torch.tensor(x, dtype=dtype)  # noqa: E731
    s = t(input).requires_grad_(requires_grad)
    return t(logits_t), s, t(target), torch.tensor(label, dtype=torch.long), beta


def gradient_scale(batch):
    """Per-row scale of rounding in d L / d s = (q W - w p) / N: the terms that cancel are of
    size sum_j |w_j| p_j / N, each rounded relative to the logits' size. Shape (N, 1)."""
    parts = klloss.oracle.intermediates(*batch)
    n = parts["weight"].shape[0]
    size = (np.abs(parts["weight"]) * parts["target_prob"]).sum(1, keepdims=True) / n
    spread = 1 + np.abs(batch[1]).max() + np.abs(batch[2]).max()
    return spread * (1 + size)


def float32_bound(parts, beta, offset, n_kept, eps):
    """How far a correct computation in precision ``eps`` may be from the oracle (which saw the same
    rounded inputs), for the batch mean: per class term w p (log p - log q), a few roundings of each
    of its factors, each relative to the size of the log-probabilities and the weight,

        |error_c| <= 8 eps (|w_c| + |k| + |m_c| / beta) p_c (1 + |d_c|) (2 + |log p_c| + |log q_c| + log C)

    with d = log p - log q, plus the roundings of the sums (one eps per term added, N C terms at
    most); divided by the rows kept. Nothing here grows with a constant added to the logits.

    Below the dtype's normal range (p = e^-92 is subnormal in float32) a product is rounded to an
    absolute spacing, the smallest subnormal number, not to a relative one, and the factors it
    is multiplied by afterwards carry that error: per class, a few of those spacings times
    (1 + |w_c|)(1 + |d_c|). No computation in that dtype does better: its result itself is
    rounded to that spacing.
    """
    p, log_p, log_q, w, m = (parts[k] for k in ("target_prob", "log_target", "log_input", "weight", "margin"))
    c = p.shape[1]
    with np.errstate(invalid="ignore", over="ignore"):
        m_over_beta = np.zeros_like(m) if beta == math.inf else np.abs(m) / beta
        size = (np.abs(w) + abs(offset) + m_over_beta) * p
        d = np.abs(log_p - log_q)
        term = np.where(p > 0, 8 * size * (1 + d) * (2 + np.abs(log_p) + np.abs(log_q) + math.log(c)), 0.0)
        sums = np.where(p > 0, np.abs(parts["weighted"]), 0.0) * p.size
        tiny = SMALLEST_SUBNORMAL[eps]
        floor = np.where(p > 0, 4 * tiny * (1 + np.abs(w)) * (1 + d), 0.0)
    return (eps * float(term.sum() + sums.sum()) + float(floor.sum())) / max(n_kept, 1)


# Two warnings that torch raises inside torch.compile itself (seen with torch 2.13), which our
# `filterwarnings = error` would turn into failures of torch's own code. "default" lets them
# through (pytest lists them) and filters nothing else; tests that compile carry these marks.
# - Dynamo builds a placeholder for every autograd.Function context by instantiating
#   torch.autograd.Function inside `warnings.catch_warnings(record=True)`, meaning to swallow the
#   DeprecationWarning that raises; upstream removes that instantiation in
#   https://github.com/pytorch/pytorch/pull/186421 (issue #128439);
# - Inductor's CPU passes import torch.utils.mkldnn, which still decorates with the deprecated
#   torch.jit.script_method at import time.
COMPILE_WARNINGS = [
    pytest.mark.filterwarnings(
        "default:<class 'torch.autograd.function.Function'> should not be instantiated:DeprecationWarning"
    ),
    pytest.mark.filterwarnings("default:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]
