"""Argument checks shared by :func:`klloss.klloss_v2`, :class:`klloss.KLLossV2` and :func:`klloss.trace`.

Every failure is a ``TypeError`` (wrong kind of object) or a ``ValueError`` (right kind, wrong
value) whose message starts with the argument's name. The published form calls none of this.
"""

import math
import numbers

import torch

REDUCTIONS = ("batchmean", "sum", "none")


def check_beta(beta):
    """Return ``beta`` as a Python float; it must be a real number > 0 (``inf`` allowed)."""
    if isinstance(beta, torch.Tensor):
        if beta.numel() != 1:
            raise ValueError(f"beta must be a single number, got a tensor of shape {tuple(beta.shape)}")
        if beta.dtype == torch.bool or beta.is_complex():
            raise TypeError(f"beta must be a real number, got a tensor of dtype {beta.dtype}")
        beta = beta.item()
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real):
        raise TypeError(f"beta must be a real number, got {type(beta).__name__}")
    beta = float(beta)
    if math.isnan(beta):
        raise ValueError("beta must be a real number > 0, got nan")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return beta


def check_offset(offset):
    """Return ``offset`` as a Python float; it must be a finite real number."""
    if isinstance(offset, bool) or not isinstance(offset, numbers.Real):
        raise TypeError(f"offset must be a real number, got {type(offset).__name__}")
    offset = float(offset)
    if not math.isfinite(offset):
        raise ValueError(f"offset must be finite, got {offset}")
    return offset


def check_reduction(reduction):
    """Return ``reduction`` if it is one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        allowed = ", ".join(repr(r) for r in REDUCTIONS)
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def _check_logits(name, x):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {x.dtype}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (N, C), got shape {tuple(x.shape)}")


def check_tensors(logits_t, input, target, label):
    """Check the three logit tensors and the labels; return (N, C)."""
    _check_logits("input", input)
    for name, x in (("target", target), ("logits_t", logits_t)):
        _check_logits(name, x)
        if x.shape != input.shape:
            raise ValueError(
                f"{name} must have the same shape as input {tuple(input.shape)}, got {tuple(x.shape)}"
            )
        if x.dtype != input.dtype:
            raise TypeError(f"{name} must have the same dtype as input ({input.dtype}), got {x.dtype}")
        if x.device != input.device:
            raise ValueError(f"{name} must be on the same device as input ({input.device}), got {x.device}")
    n, c = input.shape
    if n == 0:
        raise ValueError(f"input must hold at least one sample, got shape {tuple(input.shape)}")
    if c == 0:
        raise ValueError(f"input must have at least one class, got shape {tuple(input.shape)}")

    if not isinstance(label, torch.Tensor):
        raise TypeError(f"label must be a torch.Tensor of integers, got {type(label).__name__}")
    if label.dtype == torch.bool or label.is_floating_point() or label.is_complex():
        raise TypeError(f"label must have an integer dtype, got {label.dtype}")
    if label.shape != (n,):
        raise ValueError(f"label must have shape (N,) = ({n},), got {tuple(label.shape)}")
    if label.device != input.device:
        raise ValueError(f"label must be on the same device as input ({input.device}), got {label.device}")
    bounds = torch.aminmax(label)  # one pass, one host copy
    low, high = bounds.min.item(), bounds.max.item()
    if low < 0 or high >= c:
        raise ValueError(f"label values must lie in [0, C) = [0, {c}), got values from {low} to {high}")
    return n, c


def check_all(logits_t, input, target, label, beta, offset, reduction="batchmean"):
    """Run every check; return (beta, offset, reduction) normalised to Python values."""
    check_tensors(logits_t, input, target, label)
    return check_beta(beta), check_offset(offset), check_reduction(reduction)
