r"""klloss_v2 in plain torch, one formula a line: the readable form every other form is tested against.

.. math::
    L_i = \sum_c w_{ic}\, p_{ic} (\log p_{ic} - \log q_{ic}),\qquad
    w_{ic} = \frac{z'_{iy_i} - z'_{ic}}{\beta} + k,

with :math:`p = \mathrm{softmax}(z)`, :math:`q = \mathrm{softmax}(s)` and the batch mean over the
rows not ignored. Autograd differentiates it; only the student ``input`` gets a gradient.
Walked through in ``notebooks/01-walkthrough.ipynb``; the symbols are in ``docs/glossary.md``.

At the edges: a class with :math:`p_c = 0` (a teacher logit of -inf) adds 0, whatever its weight.
An ignored row adds exactly 0 to the loss and to the gradient, whatever it holds (NaN, inf): its
logits are replaced by zeros before any arithmetic. A kept row with no teacher distribution (a
NaN or +inf teacher logit, or every one -inf) gives NaN, and so do ``"sum"`` and ``"batchmean"``.
Labels are compared with ``ignore_index`` without wrapping (:func:`rows_kept`).
"""

import math

import torch
import torch.nn.functional as F

from . import _checks
from .options import ARTICLE_OFFSET, Options


def margin(logits_t, label):
    r"""Teacher margin to the label, :math:`m_c = z'_y - z'_c`, shape (..., C): 0 at the label,
    positive where the teacher ranks class c below it. One ``gather``, no loop over samples."""
    # z'_y, shape (..., 1)
    z_label = logits_t.gather(-1, label.unsqueeze(-1))
    # m = z'_y - z'
    return z_label - logits_t


def weight(margin, beta, offset=ARTICLE_OFFSET):
    r"""Per-class weight :math:`w = m / \beta + k`: the margin, formed first, then scaled (so that
    :math:`k` survives a large :math:`|z|/\beta`); :math:`w = k` at :math:`\beta = \infty`.
    See ``notebooks/03-beta-and-offset.ipynb``."""
    if beta == math.inf:
        return torch.full_like(margin, offset)
    return margin / beta + offset


def rows_kept(label, ignore_index):
    """The rows that count, ``label != ignore_index``, compared without wrapping: every row when
    ``ignore_index`` is None or outside the range of the label's dtype."""
    ignore_index = _checks.ignore_value(label.dtype, ignore_index)  # None if no label can equal it
    return torch.ones_like(label, dtype=torch.bool) if ignore_index is None else label != ignore_index


def compute_dtype(*tensors):
    """The dtype the loss is computed in: float64 if any argument is, else float32 (float16 and
    bfloat16 are computed in float32); the student and the teacher may differ."""
    return torch.float64 if any(x.dtype == torch.float64 for x in tensors) else torch.float32


def intermediates(input, target, logits_t, label, options):
    """Every tensor of the loss on checked arguments, (..., C) rows, in the article's order (the
    names of :class:`klloss.Trace`), plus ``kept``, the rows that count. With the extensions of
    :class:`klloss.Options`: p and q at temperature T, ``weight`` clamped at 0 if asked, and
    ``per_sample`` times :attr:`klloss.Options.factor`."""
    dtype = compute_dtype(input, target, logits_t)
    s, z = input.to(dtype), target.detach().to(dtype)
    z_m = z if logits_t is target else logits_t.detach().to(dtype)
    t = options.temperature
    kept = rows_kept(label, options.ignore_index)  # label != ignore_index
    if options.ignore_index is not None:
        # an ignored row's s, z, z' replaced by 0 before any arithmetic: whatever it holds (NaN,
        # inf), it reaches neither the loss nor the gradient
        row = kept.unsqueeze(-1)
        s, z, z_m = (torch.where(row, x, 0.0) for x in (s, z, z_m))
    y = torch.where(kept, label, 0).long()  # an ignored row reads class 0, and counts 0
    log_q = F.log_softmax(s if t == 1 else s / t, dim=-1)  # log q = log softmax(s / T)
    log_p = F.log_softmax(z if t == 1 else z / t, dim=-1)  # log p = log softmax(z / T)
    p = log_p.exp()  # p = e^(log p)
    kl = torch.where(p == 0, 0.0, p * (log_p - log_q))  # p_c (log p_c - log q_c); 0 where p_c = 0
    m = margin(z_m, y)  # m_c = z'_y - z'_c, from the raw teacher logits
    w = weight(m, options.beta, options.offset)  # w_c = m_c / beta + k
    if options.clamp:
        w = w.clamp(min=0)  # w~_c = max(w_c, 0)
    weighted = torch.where(p == 0, 0.0, w * kl)  # w_c p_c (log p_c - log q_c); 0 where p_c = 0, w_c = inf too
    row = weighted.sum(dim=-1)  # sum_c w_c p_c (log p_c - log q_c)
    if options.factor != 1:
        row = row * options.factor  # L_i = f sum_c ..., f = T^2 (/ k)
    per_sample = torch.where(kept, row, 0.0)  # L_i; 0 for an ignored row
    return {
        "log_input": log_q,
        "log_target": log_p,
        "target_prob": p,
        "output": kl,
        "margin": m,
        "weight": w,
        "weighted": weighted,
        "per_sample": per_sample,
        "kept": kept,
    }


def identity_parts(input, target, logits_t, label, options):
    r"""The per-row loss and the parts of the identity
    :math:`L_i = f\,W_i\,\mathrm{KL}(q^*_i\|q_i) + L^{\min}_i`, with :math:`W_i = \sum_c w_c p_c`,
    :math:`q^*_{ic} = w_{ic} p_{ic} / W_i` and :math:`L^{\min}_i = -f\,W_i\,\mathrm{KL}(q^*_i\|p_i)`
    (``notebooks/04-what-it-teaches.ipynb``): ``(per_sample, kept, weight_sum, kl_to_optimum,
    lower_bound)``, the last three detached. Where :math:`q^*` is no distribution (some
    :math:`w_c < 0` with :math:`p_c > 0`, or :math:`W_i = 0`) the KL terms are NaN; an ignored
    row gives 0 in all four."""
    parts = intermediates(input, target, logits_t, label, options)
    w, p, log_p, log_q, kept = (
        parts[k] for k in ("weight", "target_prob", "log_target", "log_input", "kept")
    )
    with torch.no_grad():
        live = p != 0  # p_c > 0, or NaN (an undefined row, which stays NaN)
        w_p = torch.where(live, w * p, 0.0)  # w_c p_c, 0 where p_c = 0
        big_w = w_p.sum(-1)  # W_i = sum_c w_c p_c
        defined = (big_w > 0) & ~(live & (w < 0)).any(-1)  # q* a distribution
        has = live & (w > 0)  # q*_c > 0
        log_w = torch.where(has, w, 1.0).log()
        log_ratio = torch.where(has, log_w - big_w.clamp(min=0).log().unsqueeze(-1), 0.0)  # log(q*/p)
        q_star = torch.where(has, w_p / big_w.unsqueeze(-1), 0.0)  # q* = w p / W
        kl_star_q = (q_star * torch.where(has, log_ratio + log_p - log_q, 0.0)).sum(-1)  # KL(q* || q)
        kl_star_p = (q_star * log_ratio).sum(-1)  # KL(q* || p)
        nan = torch.full_like(big_w, math.nan)
        kl_star_q = torch.where(defined, kl_star_q, nan)
        lower = torch.where(defined, -options.factor * big_w * kl_star_p, nan)
        zero = torch.zeros_like(big_w)
        big_w, kl_star_q, lower = (torch.where(kept, x, zero) for x in (big_w, kl_star_q, lower))
    return parts["per_sample"], kept, big_w, kl_star_q, lower


def reduce(per_sample, kept, reduction):
    """The per-row losses reduced as ``reduction`` says; ``kept``, the rows that count."""
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    # batchmean: L = (1/N') sum_i L_i over the N' rows kept (at least 1), counted on the device
    return per_sample.sum() / kept.sum().clamp(min=1)


def loss(input, target, logits_t, label, options):
    """The loss on checked arguments: the per-row losses, reduced as ``options.reduction`` says."""
    parts = intermediates(input, target, logits_t, label, options)
    return reduce(parts["per_sample"], parts["kept"], options.reduction)


def klloss_v2_reference(
    logits_t, input, target, label, beta, *, offset=ARTICLE_OFFSET, reduction="batchmean", ignore_index=-100
):
    """klloss_v2 as plain tensor operations differentiated by autograd; arguments and results as
    :func:`klloss.klloss_v2`, which is tested against it (the fast paths compute the same numbers).
    See ``notebooks/01-walkthrough.ipynb``."""
    options = Options(beta, offset, reduction, ignore_index)
    _checks.check_loss_tensors(logits_t, input, target, label)
    _checks.check_labels(label, input.shape[-1], options)
    return loss(input, target, logits_t, label, options)
