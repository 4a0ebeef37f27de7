"""Hypothesis strategies and tolerance scales that need NumPy alone (no torch), shared by the
oracle's tests (tests/test_oracle.py, which `make test-oracle` runs without torch) and the rest."""

import math

import numpy as np
from hypothesis import strategies as st

import klloss.oracle


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
    target = (
        teacher.copy() if same_teacher else np.clip(teacher + rng.normal(0, 0.5, (n, c)), -max_abs, max_abs)
    )
    return teacher, student, target, label, beta


def loss_scale(batch, offset=8.0):
    """The scale rounding errors live on: sum_ic |w| p (1 + |log p| + |log q|) / N (float64 oracle).

    The loss is a sum of terms of both signs, each a difference log p - log q that may cancel,
    and a computed log-softmax carries an absolute error of a few ulps of 1 even where it is
    nearly 0, so tolerances are relative to this, not to the (possibly tiny) total.
    """
    parts = klloss.oracle.intermediates(*batch, offset=offset)
    size = (
        np.abs(parts["weight"])
        * parts["target_prob"]
        * (1.0 + np.abs(parts["log_target"]) + np.abs(parts["log_input"]))
    )
    return float(size.sum() / size.shape[0])
