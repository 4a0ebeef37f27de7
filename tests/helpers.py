"""Hypothesis strategies and tolerance helpers shared by the klloss tests (those that need
NumPy alone are in numpy_helpers.py, and re-exported here)."""

import numpy as np
import pytest
import torch
from numpy_helpers import batches, loss_scale

import klloss

__all__ = ["as_tensors", "batches", "gradient_scale", "loss_scale"]


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
