r"""The klloss_v2 loss, two ways: the article's algorithm as published, and our corrected form.

Symbols (see :mod:`klloss.glossary`): student logits :math:`s` (``input``), teacher logits
:math:`z` (``logits_t`` for the margin, ``target`` for the soft target), labels :math:`y`,
:math:`p=\mathrm{softmax}(z)`, :math:`q=\mathrm{softmax}(s)`, margin :math:`m_{ic}=z_{iy_i}-z_{ic}`,
weight :math:`w_{ic}=m_{ic}/\beta+k` with offset :math:`k=8`, and

.. math::
    L = \frac{1}{N}\sum_i \sum_c w_{ic}\, p_{ic} (\log p_{ic} - \log q_{ic}).

Walked through in ``notebooks/01-walkthrough.ipynb``.
"""

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks

ARTICLE_OFFSET = 8.0
"""The constant :math:`k` the article adds to every weight."""


def klloss_v2_published(logits_t, input, target, label, beta):
    r"""The article's ``klloss_v2``, step for step, quirks included.

    Arguments keep the article's names and order:

    * ``logits_t`` -- teacher logits :math:`z`, shape (N, C), used only for the margin (detached);
    * ``input`` -- student logits :math:`s`, shape (N, C);
    * ``target`` -- teacher logits again, shape (N, C), turned into :math:`p` (NOT detached);
    * ``label`` -- true classes :math:`y`, shape (N,);
    * ``beta`` -- :math:`\beta`, divides the margin.

    Kept on purpose, because this function exists to show exactly what the article computes:

    * the margin is built in a Python loop, one sample at a time, after copying ``label`` to
      the CPU (on a GPU that is one host synchronisation per sample);
    * ``target`` is not detached, so gradient flows into whatever produced the teacher logits;
    * nothing is checked: a label of -1 (or -100) silently indexes from the end of the row.

    Use :func:`klloss_v2` for training. Walked through in ``notebooks/01-walkthrough.ipynb``;
    its quirks are shown in ``notebooks/04-what-it-teaches.ipynb``.
    """
    # log q = log_softmax(s)
    log_input = F.log_softmax(input, dim=1)
    # log p = log_softmax(z)
    log_target = F.log_softmax(target, dim=1)
    # p = softmax(z); gradient still reaches `target`
    target_prob = F.softmax(target, dim=1)
    # per-class KL terms, p (log p - log q)
    output = target_prob * (log_target - log_input)
    # m_i = z_i[y_i] - z_i, one sample at a time, labels copied to the host
    rows = [z_i[y_i] - z_i for y_i, z_i in zip(label.cpu(), logits_t.detach())]
    margin = torch.cat(rows).reshape(-1, input.size(1))
    # w = m / beta + 8
    weight = margin / beta
    weight = weight + ARTICLE_OFFSET
    # L = (1/N) sum_{i,c} w p (log p - log q)
    return (weight * output).sum() / input.shape[0]


def margin(logits_t, label):
    r"""Teacher margin to the label, :math:`m_{ic} = z_{iy_i} - z_{ic}`, shape (N, C).

    Zero at the label; positive where the teacher ranks class c below the label.
    Vectorized: one ``gather`` instead of the article's per-sample loop.
    See ``notebooks/01-walkthrough.ipynb``.
    """
    # z_{i y_i}, shape (N, 1)
    z_label = logits_t.gather(1, label.unsqueeze(1))
    # m = z_y - z
    return z_label - logits_t


def weight(margin, beta, offset=ARTICLE_OFFSET):
    r"""Per-class weight :math:`w = m / \beta + k`. See ``notebooks/03-beta-and-offset.ipynb``."""
    return margin / beta + offset


def _compute_dtype(x):
    # half-precision logits are computed in float32, as autocast does for kl_div
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


def _prepared(logits_t, input, target):
    """(s, z, z_margin) in the compute dtype, the two teacher tensors detached: the one place
    that decides precision and where gradient may flow, for every corrected form."""
    dtype = _compute_dtype(input)
    return input.to(dtype), target.detach().to(dtype), logits_t.detach().to(dtype)


def _per_sample_autograd(logits_t, input, target, label, beta, offset):
    """Per-sample losses L_i written as plain tensor operations, differentiated by autograd.

    The readable form of the loss; :class:`_PerSample` computes the same numbers faster and is
    tested against it. Arguments already checked.
    """
    s, z, z_margin = _prepared(logits_t, input, target)
    # log q = log_softmax(s);  log p = log_softmax(z);  p = exp(log p)
    log_q = F.log_softmax(s, dim=1)
    log_p = F.log_softmax(z, dim=1)
    p = log_p.exp()
    # w = (z_y - z) / beta + k  -- a constant for autograd
    w = weight(margin(z_margin, label), beta, offset)
    # L_i = sum_c w_ic p_ic (log p_ic - log q_ic)
    return (w * p * (log_p - log_q)).sum(dim=1)


class _PerSample(torch.autograd.Function):
    r"""Per-sample losses with the closed-form gradient (``notebooks/04-what-it-teaches.ipynb``):

    .. math::
        \frac{\partial L_i}{\partial s_{ij}} = q_{ij} W_i - w_{ij} p_{ij}, \qquad W_i = \sum_c w_{ic} p_{ic}.

    Same numbers as :func:`_per_sample_autograd`, with fewer (N, C) temporaries: on the CPU each
    fresh large tensor costs page faults, so the work is done in place where nothing else needs
    the old values. ``benchmarks/bench_loss.py`` measures the gain.
    """

    @staticmethod
    def forward(ctx, s, z, z_margin, label, beta, offset):
        # log q = log_softmax(s);  p = softmax(z)
        log_q = F.log_softmax(s, dim=1)
        p = torch.softmax(z, dim=1)
        # log p = (z - max z) - log sum_j e^(z_j - max z) = (z - max z) + log(max p): at the row's
        # arg-max softmax is 1 / sum_j e^(z_j - max z), so no second pass of exponentials is needed
        log_p = (z - z.amax(dim=1, keepdim=True)).add_(p.amax(dim=1, keepdim=True).log())
        # w p = ((z_y - z) / beta + k) p, in the margin's buffer
        wp = margin(z_margin, label).div_(beta).add_(offset).mul_(p)
        del p
        # L_i = sum_c w p (log p - log q), in log p's buffer
        per_sample = log_p.sub_(log_q).mul_(wp).sum(dim=1)
        # log sum_j e^(s_j) = max s - max log q, one number per row, so backward can rebuild q
        lse_s = s.amax(dim=1, keepdim=True).sub_(log_q.amax(dim=1, keepdim=True))
        # keep s, not q: s is alive anyway, and recomputing q from it in backward keeps the
        # gradient itself differentiable (Hessian-vector products, gradient penalties)
        ctx.save_for_backward(s, wp, lse_s)
        return per_sample

    @staticmethod
    def backward(ctx, grad_per_sample):
        s, wp, lse_s = ctx.saved_tensors
        # W_i = sum_c w_ic p_ic
        big_w = wp.sum(dim=1, keepdim=True)
        g = grad_per_sample.unsqueeze(1)
        if torch.is_grad_enabled():  # building a graph of the gradient: differentiable q, no in-place
            return (torch.softmax(s, dim=1) * big_w - wp) * g, None, None, None, None, None
        # q = softmax(s). Measured on the CPU (benchmarks/bench_loss.py): with few classes
        # torch's row-wise softmax costs far more than one exponential pass from the saved
        # log-sum-exp; with many classes the fused softmax kernel is the faster of the two
        q = torch.softmax(s, dim=1) if s.shape[1] >= 64 else (s - lse_s).exp_()
        # dL/ds = (q W - w p) g
        return q.mul_(big_w).sub_(wp).mul_(g), None, None, None, None, None


def _per_sample(logits_t, input, target, label, beta, offset):
    """Per-sample losses L_i (checked arguments), with gradient only into ``input``."""
    s, z, z_margin = _prepared(logits_t, input, target)
    return _PerSample.apply(s, z, z_margin, label, beta, offset)


def klloss_v2(logits_t, input, target, label, beta, *, offset=ARTICLE_OFFSET, reduction="batchmean"):
    r"""Corrected, vectorized ``klloss_v2``:
    :math:`L=\frac1N\sum_{i,c} w_{ic}\,p_{ic}(\log p_{ic}-\log q_{ic})`.

    Arguments (article's names and order):

    * ``logits_t`` -- teacher logits :math:`z` for the margin, (N, C), float; detached;
    * ``input`` -- student logits :math:`s`, (N, C), same dtype and device; the only
      argument that receives gradient;
    * ``target`` -- teacher logits for :math:`p=\mathrm{softmax}(z)`, (N, C); detached;
    * ``label`` -- integer labels :math:`y`, (N,), each in [0, C), on the same device;
    * ``beta`` -- :math:`\beta>0` (``inf`` allowed: then every weight equals ``offset``);
    * ``offset`` -- :math:`k`, the article's 8.0;
    * ``reduction`` -- ``"batchmean"`` (sum over everything / N, the article's choice),
      ``"sum"``, or ``"none"`` (the N per-sample losses).

    Same value as :func:`klloss_v2_published` and the same gradient w.r.t. ``input``, but no
    Python loop over samples, no host copy, and no gradient into the teacher. float16 and
    bfloat16 logits are computed in float32 and the result is float32. Bad arguments raise
    ``TypeError`` or ``ValueError`` naming the argument.
    See ``notebooks/01-walkthrough.ipynb``.
    """
    beta, offset, reduction = _checks.check_all(logits_t, input, target, label, beta, offset, reduction)
    per_sample = _per_sample(logits_t, input, target, label, beta, offset)
    if reduction == "none":
        return per_sample
    total = per_sample.sum()
    if reduction == "sum":
        return total
    # batchmean: L = (1/N) sum_i L_i
    return total / input.shape[0]


class KLLossV2(nn.Module):
    r"""``nn.Module`` around :func:`klloss_v2`; ``forward(logits_t, input, target, label)``.

    ``beta``, ``offset`` and ``reduction`` are checked once, here. See
    ``notebooks/01-walkthrough.ipynb``.
    """

    def __init__(self, beta, offset=ARTICLE_OFFSET, reduction="batchmean"):
        super().__init__()
        self.beta = _checks.check_beta(beta)
        self.offset = _checks.check_offset(offset)
        self.reduction = _checks.check_reduction(reduction)

    def forward(self, logits_t, input, target, label):
        return klloss_v2(
            logits_t, input, target, label, self.beta, offset=self.offset, reduction=self.reduction
        )

    def extra_repr(self):
        return f"beta={self.beta}, offset={self.offset}, reduction={self.reduction!r}"
