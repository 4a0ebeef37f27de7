"""Hypothesis strategies and tolerance helpers shared by the klloss tests."""

import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

import klloss


@st.composite
def batches(draw, max_n=6, max_c=8, max_abs=50.0):
    """A random batch (logits_t, input, target, label, beta) as float64 NumPy arrays.

    Logit scales run from tiny to |z| = 50; beta from 0.01 to 1e6, or inf. Some rows get a
    teacher that beats the label by more than offset * beta, so weights turn negative.
    """
    n = draw(st.integers(1, max_n))
    c = draw(st.integers(2, max_c))
    scale = draw(st.sampled_from([1e-3, 1.0, 5.0, max_abs]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    teacher = np.clip(rng.normal(0.0, scale, size=(n, c)), -max_abs, max_abs)
    student = np.clip(rng.normal(0.0, scale, size=(n, c)), -max_abs, max_abs)
    label = rng.integers(0, c, size=n)
    beta = draw(
        st.one_of(
            st.floats(0.01, 1e6),
            st.just(math.inf),
            st.sampled_from([0.01, 1.5, 1e6]),
        )
    )
    if draw(st.booleans()):
        # make the teacher wrong on row 0 by more than 8 * beta, where that stays in range
        gap = 8.0 * beta + 1.0
        if gap < max_abs:
            wrong = (label[0] + 1) % c
            teacher[0, wrong] = teacher[0, label[0]] + gap
    same_teacher = draw(st.booleans())
    target = teacher.copy() if same_teacher else np.clip(teacher + rng.normal(0, 0.5, (n, c)), -max_abs, max_abs)
    return teacher, student, target, label, beta


def as_tensors(batch, dtype=torch.float64, requires_grad=False):
    logits_t, input, target, label, beta = batch
    t = lambda x: torch.tensor(x, dtype=dtype)  # noqa: E731
    s = t(input).requires_grad_(requires_grad)
    return t(logits_t), s, t(target), torch.tensor(label, dtype=torch.long), beta


def loss_scale(batch, offset=8.0):
    """The scale rounding errors live on: sum_ic |w| p (1 + |log p| + |log q|) / N (float64 oracle).

    The loss is a sum of terms of both signs, each a difference log p - log q that may cancel,
    and a computed log-softmax carries an absolute error of a few ulps of 1 even where it is
    nearly 0, so tolerances are relative to this, not to the (possibly tiny) total.
    """
    parts = klloss.oracle.intermediates(*batch, offset=offset)
    size = np.abs(parts["weight"]) * parts["target_prob"] * (1.0 + np.abs(parts["log_target"]) + np.abs(parts["log_input"]))
    return float(size.sum() / size.shape[0])


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
