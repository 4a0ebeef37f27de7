r"""What klloss_v2 does to a student: closed-form gradient, stationary point, decomposition,
lower bound. Symbols as in :mod:`course.glossary`; all functions take the arguments of
:func:`klloss.klloss_v2` (checked the same way) and reduce over the batch like
``reduction="batchmean"``.

For one sample, with :math:`W = \sum_c w_c p_c`,

.. math::
    L = \sum_c w_c p_c \log p_c - \sum_c w_c p_c \log q_c,
    \qquad \frac{\partial L}{\partial s_j} = q_j W - w_j p_j .

When every weight is >= 0, with :math:`q^* = w \odot p / W` (the minimiser),

.. math::
    L = W\,\mathrm{KL}(q^* \| q) + L_{\min}, \qquad L_{\min} = W \log W - \sum_c p_c w_c \log w_c \le 0:

KD towards a re-weighted teacher, scaled by W, plus a constant (:func:`reweighted_kd`).

Walked through in ``notebooks/03-beta-and-offset.ipynb`` and ``notebooks/04-what-it-teaches.ipynb``.
"""

import dataclasses

import torch
import torch.nn.functional as F

import klloss
from klloss import ARTICLE_OFFSET


def _prepare(logits_t, input, target, label, beta, offset):
    """Checked arguments as (s, m, w, log p, p, beta, offset), from the library's own trace (same
    checks, same arithmetic); nothing here needs gradient."""
    t = klloss.trace(logits_t, input, target, label, beta, offset=offset)
    options = klloss.Options(beta, offset)
    s = input.detach().to(t.log_input.dtype)
    return s, t.margin, t.weight, t.log_target, t.target_prob, options.beta, options.offset


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


def _check_nonnegative(w, purpose):
    """Raise ValueError unless every weight is >= 0, naming where the smallest one is."""
    if (w < 0).any():
        flat = int(w.argmin())
        i, c = divmod(flat, w.shape[1])
        raise ValueError(
            f"weights must all be >= 0 {purpose}; the smallest is {w.min().item():.4g} "
            f"(sample {i}, class {c}: logits_t ranks class {c} above the label by more than offset * beta)"
        )


def _big_w(w, p):
    r""":math:`W_i = \sum_c w_{ic} p_{ic}`, shape (N, 1)."""
    return (w * p).sum(dim=1, keepdim=True)


def _q_star(w, p, big_w):
    r""":math:`q^* = w \odot p / W`; where :math:`W = 0` (every weight 0, so every student is a
    minimiser) it is set to p."""
    positive = big_w > 0
    # q* = w p / W
    return torch.where(positive, w * p / torch.where(positive, big_w, 1.0), p)


def _min_loss_per_sample(w, p):
    r""":math:`L_{\min,i} = W_i \log W_i - \sum_c p_{ic} w_{ic} \log w_{ic}` with 0 log 0 = 0, shape (N,)."""
    big_w = _big_w(w, p).squeeze(1)
    # W log W - sum_c p_c xlogy(w_c, w_c)
    return torch.xlogy(big_w, big_w) - (p * torch.xlogy(w, w)).sum(dim=1)


def stationary_student(logits_t, target, label, beta, *, offset=ARTICLE_OFFSET):
    r"""The student distribution that minimises the loss, :math:`q^* = w \odot p / W`, (N, C).

    Defined when every weight is >= 0, and the minimum when every weight is > 0; a weight of 0
    gives :math:`q^*_c = 0`, which a softmax student only approaches (the loss's infimum, not a
    minimum), and a row whose weights are all 0 is minimised by any student (its row is p).
    Raises ``ValueError`` for a negative weight, because the loss then has no minimum (it is
    still convex in the student logits as long as :math:`W \ge 0`, but unbounded below). See
    ``notebooks/04-what-it-teaches.ipynb``.
    """
    _, _, w, _, p, _, _ = _prepare(logits_t, target, target, label, beta, offset)
    _check_nonnegative(w, "for a minimiser to exist")
    # q* = w p / sum_c w_c p_c
    return _q_star(w, p, _big_w(w, p))


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
    _check_nonnegative(w, "for the loss to be bounded below")
    return _min_loss_per_sample(w, p).mean()


@dataclasses.dataclass(frozen=True)
class ReweightedKD:
    r"""The parts of :math:`L_i = W_i\,\mathrm{KL}(q^*_i \| q_i) + L_{\min,i}`, per sample
    (see :func:`reweighted_kd`): ``big_w`` :math:`W_i` (N,), ``q_star`` :math:`q^*` (N, C),
    ``kl`` :math:`\mathrm{KL}(q^*_i \| q_i)` (N,), ``min_loss`` :math:`L_{\min,i}` (N,)."""

    big_w: torch.Tensor
    q_star: torch.Tensor
    kl: torch.Tensor
    min_loss: torch.Tensor

    @property
    def per_sample(self):
        r"""Recombined: :math:`W_i\,\mathrm{KL}(q^*_i \| q_i) + L_{\min,i}`, shape (N,)."""
        return self.big_w * self.kl + self.min_loss


def reweighted_kd(logits_t, input, target, label, beta, *, offset=ARTICLE_OFFSET):
    r"""klloss_v2 as KD towards a re-weighted teacher: for every sample,

    .. math::
        L_i = W_i\,\mathrm{KL}(q^*_i \| q_i) + L_{\min,i},\qquad
        q^*_i = \frac{w_i \odot p_i}{W_i},\quad
        L_{\min,i} = W_i \log W_i - \sum_c p_{ic} w_{ic} \log w_{ic}.

    It holds when every weight is >= 0; a negative weight raises ``ValueError`` (then
    :math:`q^*` is no distribution and the loss has no minimum). Terms with :math:`w_{ic} = 0`
    count as :math:`0 \log 0 = 0` (then :math:`q^*_{ic} = 0`). A row whose weights are all 0
    (offset 0 and a teacher with equal logits) has :math:`W_i = 0` and :math:`L_i = 0` for every
    student; its ``q_star`` is then set to :math:`p_i` (any student minimises it).

    Returns a :class:`ReweightedKD` of per-sample tensors; ``.per_sample`` equals
    ``klloss_v2(..., reduction="none")``. See ``notebooks/04-what-it-teaches.ipynb``.
    """
    s, _, w, _, p, _, _ = _prepare(logits_t, input, target, label, beta, offset)
    _check_nonnegative(w, "for the identity L = W KL(q* || q) + L_min")
    big_w = _big_w(w, p)
    # q* = w p / W  (p where W = 0: every student is a minimiser there)
    q_star = _q_star(w, p, big_w)
    log_q = F.log_softmax(s, dim=1)
    # KL(q* || q) = sum_c q*_c (log q*_c - log q_c), with 0 log 0 = 0
    kl = torch.where(q_star > 0, q_star * (q_star.log() - log_q), 0.0).sum(dim=1)
    return ReweightedKD(big_w=big_w.squeeze(1), q_star=q_star, kl=kl, min_loss=_min_loss_per_sample(w, p))


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
    from klloss import klloss_v2

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
