r"""An independent float64 NumPy reference for klloss_v2 (no torch).

Written from the formula, not from the torch code:

.. math::
    L = \frac{1}{N} \sum_{i=1}^{N} \sum_{c=1}^{C}
        \Big(k + \frac{z_{i y_i} - z_{ic}}{\beta}\Big)\,
        p_{ic}\,\big(\log p_{ic} - \log q_{ic}\big),
    \qquad p_i = \mathrm{softmax}(z_i),\; q_i = \mathrm{softmax}(s_i).

The tests and the notebooks compare the torch forms against it.
See ``notebooks/01-walkthrough.ipynb``.
"""

import numpy as np


def _as_logits(name, x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError(f"{name} must have shape (..., C), got a 0-d array")
    return x


def log_softmax(x):
    r"""Row-wise :math:`\log\mathrm{softmax}(x)_c = x_c - \max_j x_j - \log\sum_j e^{x_j - \max x}`;
    NaN for a row that holds a NaN or +inf, or is -inf throughout (no distribution)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf: the row's NaN
        shifted = x - x.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _rows(z_margin, s, z, y, beta, offset, temperature, clamp):
    """The per-class intermediates of (N, C) rows; ``y`` holds a class in every row."""
    log_q = log_softmax(s / temperature)
    log_p = log_softmax(z / temperature)
    p = np.exp(log_p)
    with np.errstate(invalid="ignore", over="ignore"):
        # 0 * (-inf) where p = 0: replaced by the limit, 0 (a NaN p stays NaN)
        kl_terms = np.where(p == 0, 0.0, p * (log_p - log_q))
        m = z_margin[np.arange(len(y)), y][:, None] - z_margin
        # a weight beyond float64 where p = 0 is inf
        w = np.full_like(m, offset) if beta == np.inf else offset + m / beta
        if clamp:
            w = np.maximum(w, 0.0)
        weighted = np.where(p == 0, 0.0, w * kl_terms)  # and its term is the limit, 0
    return {
        "log_input": log_q,
        "log_target": log_p,
        "target_prob": p,
        "output": kl_terms,
        "margin": m,
        "weight": w,
        "weighted": weighted,
    }


def intermediates(
    logits_t,
    input,
    target,
    label,
    beta,
    offset=8.0,
    ignore_index=-100,
    temperature=1.0,
    normalize=False,
    clamp=False,
):
    r"""Every intermediate of the loss as float64 arrays, keyed like :class:`klloss.Trace`, for
    logits of shape (..., C) and labels of shape (...); ``per_sample`` has the labels' shape.

    Where the formula meets infinities, its limits: a class with :math:`p_c = 0` (a teacher
    logit of -inf) contributes 0, whatever its weight; at :math:`\beta = \infty` every weight
    is :math:`k`. A kept row with no teacher distribution (a NaN or +inf teacher logit, or every
    one -inf) is NaN, and so is the loss. Rows whose label equals ``ignore_index`` (None: no row)
    contribute 0, whatever they hold, and leave the batch mean, which is over the rows kept (0
    when none is). Labels are compared in int64.
    """
    s = _as_logits("input", input)
    z_margin = _as_logits("logits_t", logits_t)
    z = _as_logits("target", target)
    for name, x in (("logits_t", z_margin), ("target", z)):
        if x.shape != s.shape:
            raise ValueError(f"{name} must have the shape of input, {s.shape}, got shape {x.shape}")
    y = np.asarray(label, dtype=np.int64)
    if y.shape != s.shape[:-1]:
        raise ValueError(f"label must have shape input.shape[:-1] = {s.shape[:-1]}, got shape {y.shape}")
    c = s.shape[-1]
    kept = np.ones(y.shape, dtype=bool) if ignore_index is None else y != ignore_index
    if np.any(kept & ((y < 0) | (y >= c))):
        raise ValueError(f"label values must lie in [0, C) = [0, {c}), got {y.min()} to {y.max()}")
    flat = [x.reshape(-1, c) for x in (z_margin, s, z)]
    y_flat = np.where(kept, y, 0).reshape(-1)  # an ignored row reads class 0, and counts 0
    temperature = float(temperature)
    parts = _rows(*flat, y_flat, float(beta), offset, temperature, clamp)
    parts = {key: x.reshape(s.shape) for key, x in parts.items()}
    factor = temperature**2 / offset if normalize else temperature**2
    per_sample = np.where(kept, factor * parts["weighted"].sum(axis=-1), 0.0)
    parts["per_sample"] = per_sample
    parts["loss"] = per_sample.sum() / max(int(kept.sum()), 1)
    return parts


def klloss_v2(logits_t, input, target, label, beta, offset=8.0, ignore_index=-100, **extensions):
    """The loss (batch mean over the rows kept) as a Python float, computed in float64;
    ``extensions``: ``temperature``, ``normalize``, ``clamp``, as in :func:`intermediates`."""
    parts = intermediates(logits_t, input, target, label, beta, offset, ignore_index, **extensions)
    return float(parts["loss"])


def kl(target, input):
    r"""Mean over rows of :math:`\mathrm{KL}(p \| q)`, p = softmax(target), q = softmax(input)."""
    log_p = log_softmax(target)
    log_q = log_softmax(input)
    return float((np.exp(log_p) * (log_p - log_q)).sum(axis=1).mean())
