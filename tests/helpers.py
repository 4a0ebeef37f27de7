"""Hypothesis strategies and tolerance helpers shared by the klloss tests (those that need
NumPy alone are in numpy_helpers.py, and re-exported here)."""

import numpy as np
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
