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
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, C), got shape {x.shape}")
    return x


def log_softmax(x):
    r"""Row-wise :math:`\log\mathrm{softmax}(x)_c = x_c - \max_j x_j - \log\sum_j e^{x_j - \max x}`."""
    x = np.asarray(x, dtype=np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def intermediates(
    logits_t,
    input,
    target,
    label,
    beta,
    offset=8.0,
    ignore_index=None,
    temperature=1.0,
    normalize=False,
    clamp=False,
):
    r"""Every intermediate of the loss as float64 arrays, keyed like :class:`klloss.Trace`.

    Where the formula meets infinities, its limits: a class with :math:`p_c = 0` (a teacher
    logit of -inf) contributes 0, whatever its weight; at :math:`\beta = \infty` every weight
    is :math:`k`. Rows whose label equals ``ignore_index`` (None: no row) contribute 0 and leave
    the batch mean, which is over the rows kept (0 when none is).
    """
    s = _as_logits("input", input)
    n, c = s.shape
    z_margin = _as_logits("logits_t", logits_t)
    z = _as_logits("target", target)
    for name, x in (("logits_t", z_margin), ("target", z)):
        if x.shape != s.shape:
            raise ValueError(f"{name} must have the shape of input, (N, C) = {s.shape}, got shape {x.shape}")
    y = np.asarray(label, dtype=np.int64)
    if y.shape != (n,):
        raise ValueError(f"label must have shape (N,) = ({n},), got shape {y.shape}")
    kept = np.ones(n, dtype=bool) if ignore_index is None else y != ignore_index
    if np.any(kept & ((y < 0) | (y >= c))):
        raise ValueError(f"label values must lie in [0, C) = [0, {c}), got {y.min()} to {y.max()}")
    beta = float(beta)

    temperature = float(temperature)
    log_q = log_softmax(s / temperature)
    log_p = log_softmax(z / temperature)
    p = np.exp(log_p)
    with np.errstate(invalid="ignore"):  # 0 * (-inf) where p = 0: replaced by the limit, 0
        kl_terms = np.where(p > 0, p * (log_p - log_q), 0.0)
    rows = np.arange(n)
    m = z_margin[rows, np.where(kept, y, 0)][:, None] - z_margin
    with np.errstate(over="ignore", invalid="ignore"):  # a weight beyond float64 where p = 0 is inf
        w = np.full_like(m, offset) if beta == np.inf else offset + m / beta
        if clamp:
            w = np.maximum(w, 0.0)
        weighted = np.where(p > 0, w * kl_terms, 0.0)  # and its term is the limit, 0
    factor = temperature**2 / offset if normalize else temperature**2
    per_sample = np.where(kept, factor * weighted.sum(axis=1), 0.0)
    return {
        "log_input": log_q,
        "log_target": log_p,
        "target_prob": p,
        "output": kl_terms,
        "margin": m,
        "weight": w,
        "weighted": weighted,
        "per_sample": per_sample,
        "loss": per_sample.sum() / max(int(kept.sum()), 1),
    }


def klloss_v2(logits_t, input, target, label, beta, offset=8.0, ignore_index=None, **extensions):
    """The loss (batch mean over the rows kept) as a Python float, computed in float64;
    ``extensions``: ``temperature``, ``normalize``, ``clamp``, as in :func:`intermediates`."""
    parts = intermediates(logits_t, input, target, label, beta, offset, ignore_index, **extensions)
    return float(parts["loss"])


def kl(target, input):
    r"""Mean over rows of :math:`\mathrm{KL}(p \| q)`, p = softmax(target), q = softmax(input)."""
    log_p = log_softmax(target)
    log_q = log_softmax(input)
    return float((np.exp(log_p) * (log_p - log_q)).sum(axis=1).mean())
