r"""klloss_v2 in plain torch, one formula a line: the readable form every other form is tested against.

.. math::
    L_i = \sum_c w_{ic}\, p_{ic} (\log p_{ic} - \log q_{ic}),\qquad
    w_{ic} = \frac{z'_{iy_i} - z'_{ic}}{\beta} + k,

with :math:`p = \mathrm{softmax}(z)`, :math:`q = \mathrm{softmax}(s)` and the batch mean over the
rows not ignored. Autograd differentiates it; only the student ``input`` gets a gradient.
Walked through in ``notebooks/01-walkthrough.ipynb``; the symbols are in ``docs/glossary.md``.
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
    """The rows that count, ``label != ignore_index`` (every row when ``ignore_index`` is None)."""
    return torch.ones_like(label, dtype=torch.bool) if ignore_index is None else label != ignore_index


def intermediates(input, target, logits_t, label, options):
    """Every tensor of the loss on checked arguments, (..., C) rows, in the article's order (the
    names of :class:`klloss.Trace`), plus ``kept``, the rows that count."""
    dtype = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
    s, z, z_m = input.to(dtype), target.detach().to(dtype), logits_t.detach().to(dtype)
    kept = rows_kept(label, options.ignore_index)  # label != ignore_index
    y = torch.where(kept, label, 0).long()  # an ignored row reads class 0, and counts 0
    log_q = F.log_softmax(s, dim=-1)  # log q = log softmax(s)
    log_p = F.log_softmax(z, dim=-1)  # log p = log softmax(z)
    p = log_p.exp()  # p = e^(log p)
    kl = torch.where(p > 0, p * (log_p - log_q), 0.0)  # p_c (log p_c - log q_c); 0 where p_c = 0
    m = margin(z_m, y)  # m_c = z'_y - z'_c
    w = weight(m, options.beta, options.offset)  # w_c = m_c / beta + k
    weighted = torch.where(p > 0, w * kl, 0.0)  # w_c p_c (log p_c - log q_c); 0 where p_c = 0, w_c = inf too
    per_sample = torch.where(kept, weighted.sum(dim=-1), 0.0)  # L_i = sum_c ...; 0 for an ignored row
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


def loss(input, target, logits_t, label, options):
    """The loss on checked arguments: the per-row losses, reduced as ``options.reduction`` says."""
    parts = intermediates(input, target, logits_t, label, options)
    per_sample, kept = parts["per_sample"], parts["kept"]
    if options.reduction == "none":
        return per_sample
    if options.reduction == "sum":
        return per_sample.sum()
    # batchmean: L = (1/N') sum_i L_i over the N' rows kept (at least 1), counted on the device
    return per_sample.sum() / kept.sum().clamp(min=1)


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
