r"""What klloss_v2 does to a student: closed-form gradient, stationary point, decomposition,
lower bound. Symbols as in :mod:`klloss.glossary`; all functions take the arguments of
:func:`klloss.klloss_v2` (checked the same way) and reduce over the batch like
``reduction="batchmean"``.

For one sample, with :math:`W = \sum_c w_c p_c`,

.. math::
    L = \sum_c w_c p_c \log p_c - \sum_c w_c p_c \log q_c,
    \qquad \frac{\partial L}{\partial s_j} = q_j W - w_j p_j .

Walked through in ``notebooks/03-beta-and-offset.ipynb`` and ``notebooks/04-what-it-teaches.ipynb``.
"""

import dataclasses

import torch
import torch.nn.functional as F

from . import _checks
from .loss import ARTICLE_OFFSET, _prepared, margin, weight


def _prepare(logits_t, input, target, label, beta, offset):
    """Checked arguments as (s, m, w, log p, p, beta, offset); nothing here needs gradient."""
    beta, offset, _ = _checks.check_all(logits_t, input, target, label, beta, offset)
    s, z, z_margin = (x.detach() for x in _prepared(logits_t, input, target))
    m = margin(z_margin, label)
    log_p = F.log_softmax(z, dim=1)
    return s, m, weight(m, beta, offset), log_p, log_p.exp(), beta, offset


def grad_student(logits_t, input, target, label, beta, *, offset=ARTICLE_OFFSET):
    r"""Closed-form gradient of the batch-mean loss w.r.t. the student logits ``input``:
    :math:`\partial L / \partial s_{ij} = (q_{ij} W_i - w_{ij} p_{ij}) / N`,
    :math:`W_i = \sum_c w_{ic} p_{ic}`. Shape (N, C). See ``notebooks/04-what-it-teaches.ipynb``.
    """
    s, _, w, _, p, _, _ = _prepare(logits_t, input, target, label, beta, offset)
    q = F.softmax(s, dim=1)
    # W_i = sum_c w_ic p_ic
    big_w = (w * p).sum(dim=1, keepdim=True)
    # (q W - w p) / N
    return (q * big_w - w * p) / input.shape[0]


def stationary_student(logits_t, target, label, beta, *, offset=ARTICLE_OFFSET):
    r"""The student distribution that minimises the loss, :math:`q^* = w \odot p / W`, (N, C).

    Exists only when every weight is >= 0 (then the loss is convex in the student logits);
    raises ``ValueError`` otherwise, because with a negative weight the loss has no minimum.
    See ``notebooks/04-what-it-teaches.ipynb``.
    """
    _, _, w, _, p, _, _ = _prepare(logits_t, target, target, label, beta, offset)
    if (w < 0).any():
        raise ValueError(
            "weights must all be >= 0 for a minimiser to exist; "
            f"the smallest is {w.min().item():.4g} (a class beats the label by more than offset * beta)"
        )
    # q* = w p / sum_c w_c p_c
    wp = w * p
    return wp / wp.sum(dim=1, keepdim=True)


@dataclasses.dataclass(frozen=True)
class Decomposition:
    r"""``loss = offset * kl + margin_term / beta`` (batch means; see :func:`decompose`)."""

    kl: torch.Tensor
    margin_term: torch.Tensor
    offset: float
    beta: float

    @property
    def loss(self):
        r"""Recombined: :math:`k \cdot \mathrm{KL} + M / \beta`."""
        return self.offset * self.kl + self.margin_term / self.beta


def decompose(logits_t, input, target, label, beta, *, offset=ARTICLE_OFFSET):
    r"""Split the loss into :math:`k\,\mathrm{KL}(p\|q)` and :math:`\frac1\beta \sum_c m_c p_c \log(p_c/q_c)`.

    Returns a :class:`Decomposition` with ``kl`` = batch mean of KL(p ‖ q) and ``margin_term`` =
    batch mean of :math:`\sum_c m_c p_c (\log p_c - \log q_c)`. As beta grows the loss tends
    to ``offset * kl``. See ``notebooks/03-beta-and-offset.ipynb``.
    """
    s, m, _, log_p, p, beta, offset = _prepare(logits_t, input, target, label, beta, offset)
    log_q = F.log_softmax(s, dim=1)
    terms = p * (log_p - log_q)
    n = input.shape[0]
    return Decomposition(
        kl=terms.sum() / n,
        margin_term=(m * terms).sum() / n,
        offset=offset,
        beta=beta,
    )


def min_loss(logits_t, target, label, beta, *, offset=ARTICLE_OFFSET):
    r"""The smallest batch-mean loss any student can reach, when every weight is >= 0:
    mean over samples of :math:`W \log W - \sum_c p_c w_c \log w_c` (reached at
    :func:`stationary_student`). It is <= 0, and < 0 unless the weights of a row are all equal.
    Raises ``ValueError`` if a weight is negative (then there is no lower bound).
    See ``notebooks/04-what-it-teaches.ipynb``.
    """
    _, _, w, _, p, _, _ = _prepare(logits_t, target, target, label, beta, offset)
    if (w < 0).any():
        raise ValueError("weights must all be >= 0 for the loss to be bounded below")
    big_w = (w * p).sum(dim=1)
    # W log W - sum_c p_c xlogy(w_c, w_c)
    per_sample = torch.xlogy(big_w, big_w) - (p * torch.xlogy(w, w)).sum(dim=1)
    return per_sample.mean()


@dataclasses.dataclass(frozen=True)
class Descent:
    """What :func:`descend` records: the loss before each step (steps + 1,), the final student
    logits (N, C), and the student distribution q before each step (steps + 1, N, C)."""

    losses: torch.Tensor
    logits: torch.Tensor
    trajectory: torch.Tensor


def descend(logits_t, target, label, beta, *, offset=ARTICLE_OFFSET, student=None, steps=200, lr=1.0):
    """Plain gradient descent (SGD, ``lr``) of klloss_v2 on free student logits, starting from
    ``student`` (default: zeros); returns a :class:`Descent`. For the demonstrations in
    ``notebooks/04-what-it-teaches.ipynb``.
    """
    from .loss import klloss_v2

    s = (torch.zeros_like(target) if student is None else student.detach().clone()).requires_grad_(True)
    optimiser = torch.optim.SGD([s], lr=lr)
    losses, trajectory = [], []
    for step in range(steps + 1):
        loss = klloss_v2(logits_t, s, target, label, beta, offset=offset)
        losses.append(loss.item())
        trajectory.append(F.softmax(s.detach(), dim=1))
        if step < steps:
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return Descent(torch.tensor(losses, dtype=torch.float64), s.detach(), torch.stack(trajectory))
