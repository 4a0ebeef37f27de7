"""Argument checks shared by :func:`klloss.klloss_v2`, :class:`klloss.KLLossV2`, :func:`klloss.trace`
and :mod:`klloss.analysis`.

Every failure is a ``TypeError`` (wrong kind of object) or a ``ValueError`` (right kind, wrong
value) whose message starts with the argument's name. The published form calls none of this.

Two families: :func:`check_all` is strict, logits of shape (N, C) and every label in [0, C), for
the teaching functions (``trace``, ``analysis``); :func:`check_loss_tensors` and
:func:`label_mask` serve the training loss, which takes any leading shape and an ``ignore_index``,
and checks label values on the host only where that costs no synchronisation.
"""

import math
import numbers

import torch

REDUCTIONS = ("batchmean", "sum", "none")


def check_beta(beta):
    """Return ``beta`` as a Python float; it must be a real number > 0 (``inf`` allowed)."""
    if type(beta) is float and beta > 0:  # the common case, first and cheap
        return beta
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
    if type(offset) is float and math.isfinite(offset):  # the common case, first and cheap
        return offset
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


def check_ignore_index(ignore_index):
    """Return ``ignore_index`` as a Python int, or None (no label is ignored)."""
    if ignore_index is None or type(ignore_index) is int:
        return ignore_index
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an integer or None, got {type(ignore_index).__name__}")
    return int(ignore_index)


def _check_logits(name, x, shape_words):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {x.dtype}")
    if shape_words == "(N, C)" and x.dim() != 2:
        raise ValueError(f"{name} must have shape (N, C), got shape {tuple(x.shape)}")
    if x.dim() == 0:
        raise ValueError(f"{name} must have shape {shape_words}, got a 0-d tensor")


def _check_teachers(logits_t, input, target, shape_words):
    _check_logits("input", input, shape_words)
    for name, x in (("target", target), ("logits_t", logits_t)):
        _check_logits(name, x, shape_words)
        if x.shape != input.shape:
            raise ValueError(
                f"{name} must have the same shape as input {tuple(input.shape)}, got {tuple(x.shape)}"
            )
        if x.dtype != input.dtype:
            raise TypeError(f"{name} must have the same dtype as input ({input.dtype}), got {x.dtype}")
        if x.device != input.device:
            raise ValueError(f"{name} must be on the same device as input ({input.device}), got {x.device}")
    c = input.shape[-1]
    n = input.numel() // c if c else math.prod(input.shape[:-1])
    if n == 0:
        raise ValueError(f"input must hold at least one sample, got shape {tuple(input.shape)}")
    if c == 0:
        raise ValueError(f"input must have at least one class, got shape {tuple(input.shape)}")
    return n, c


def _check_label_tensor(label, input, expected, words):
    if not isinstance(label, torch.Tensor):
        raise TypeError(f"label must be a torch.Tensor of integers, got {type(label).__name__}")
    if label.dtype == torch.bool or label.is_floating_point() or label.is_complex():
        raise TypeError(f"label must have an integer dtype, got {label.dtype}")
    if label.shape != expected:
        raise ValueError(f"label must have shape {words} = {tuple(expected)}, got {tuple(label.shape)}")
    if label.device != input.device:
        raise ValueError(f"label must be on the same device as input ({input.device}), got {label.device}")


def check_tensors(logits_t, input, target, label):
    """Strict checks for the teaching functions: logits (N, C), labels (N,) in [0, C); return (N, C)."""
    n, c = _check_teachers(logits_t, input, target, "(N, C)")
    _check_label_tensor(label, input, (n,), "(N,)")
    bounds = torch.aminmax(label)  # one pass, one host copy
    low, high = bounds.min.item(), bounds.max.item()
    if low < 0 or high >= c:
        raise ValueError(f"label values must lie in [0, C) = [0, {c}), got values from {low} to {high}")
    return n, c


def check_all(logits_t, input, target, label, beta, offset, reduction="batchmean"):
    """Run every strict check; return (beta, offset, reduction) normalised to Python values."""
    check_tensors(logits_t, input, target, label)
    return check_beta(beta), check_offset(offset), check_reduction(reduction)


_FLOATS = frozenset({torch.float64, torch.float32, torch.float16, torch.bfloat16})
_INTEGERS = frozenset({torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8})


def check_loss_tensors(logits_t, input, target, label):
    """Checks for the training loss: logits (..., C) and labels (...), no label values read.

    Returns (N, C), N the number of rows (the product of the leading dimensions).
    """
    # the usual, valid call in a few comparisons (a loss is called once per step, and at small
    # sizes these checks cost as much as an operator); anything else goes on to name the fault
    tensor = torch.Tensor
    if (
        isinstance(input, tensor)
        and isinstance(target, tensor)
        and isinstance(logits_t, tensor)
        and isinstance(label, tensor)
    ):
        shape, dtype, device = input.shape, input.dtype, input.device
        if (
            dtype in _FLOATS
            and target.dtype == dtype
            and logits_t.dtype == dtype
            and label.dtype in _INTEGERS
            and target.shape == shape
            and logits_t.shape == shape
            and label.shape == shape[:-1]
            and len(shape)
            and target.device == device
            and logits_t.device == device
            and label.device == device
        ):
            c = shape[-1]
            n = input.numel() // c if c else 0
            if n:
                return n, c
    n, c = _check_teachers(logits_t, input, target, "(..., C)")
    _check_label_tensor(label, input, input.shape[:-1], "input.shape[:-1]")
    return n, c


def host_checked(label):
    """Whether label values are read on the host: only for CPU tensors in plain eager mode.

    On CUDA that read would wait for the device; under ``torch.compile`` it would break the graph;
    under ``torch.func`` transforms the labels may be batched. There the gather that reads the
    margin checks its indices on the device instead (see :func:`klloss.klloss_v2`).
    """
    return (
        label.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and not torch._C._are_functorch_transforms_active()
    )


def label_mask(label, c, ignore_index):
    """Check label values where that is free; return the mask of ignored rows, or None.

    ``None`` means no row is ignored: either ``ignore_index`` is None, or the labels were read on
    the host (:func:`host_checked`) and none equals it. On the host, a label outside [0, C) that
    is not ``ignore_index`` raises ``ValueError``. Elsewhere the mask is always returned and
    nothing waits for the device.
    """
    if not host_checked(label):
        return None if ignore_index is None else label == ignore_index
    bounds = torch.aminmax(label)  # one pass; on the CPU the host copy waits for nothing
    low, high = bounds.min.item(), bounds.max.item()
    if low >= 0 and high < c and (ignore_index is None or not 0 <= ignore_index < c):
        return None
    ignored = None if ignore_index is None else label == ignore_index
    bad = (label < 0) | (label >= c)
    if ignored is not None:
        bad &= ~ignored
    if bad.any():
        values = torch.unique(label[bad]).tolist()
        shown = ", ".join(str(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
        allowed = f"[0, C) = [0, {c})" + (
            "" if ignore_index is None else f" or equal ignore_index = {ignore_index}"
        )
        raise ValueError(f"label values must lie in {allowed}, got {shown}")
    return ignored
