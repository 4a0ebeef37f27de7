r"""The loss from a stored top-k teacher: :func:`topk_store` and :func:`margin_kd_loss_topk`.

A teacher's (N, V) log-probabilities are too large to store for a corpus; their K largest per
row are not. :func:`topk_store` keeps, per row, the indices of the teacher's K most probable
classes, their log-probabilities :math:`\ell_c = \log p_c` at temperature 1, and the label's
:math:`\ell_y`. Let :math:`S` be the top K and the label (K or K+1 classes), :math:`R` the other
:math:`n` classes (the tail) and :math:`\ell_{(K)}` the smallest stored log-probability. What
the store gives exactly, and what it does not:

* the margins on S: :math:`z_y - z_c = \ell_y - \ell_c` (the normaliser cancels), so the
  weights :math:`w_c = (\ell_y - \ell_c)/\beta + k` on S; :math:`p_c` on S; and the student's
  :math:`q` everywhere (its logits are whole);
* on the tail, only its mass :math:`p_B = 1 - \sum_S p_c` and a floor on its weights: every tail
  class ranks below the K-th, :math:`z_c \le z_{(K)}`, so
  :math:`w_c \ge w_B := (\ell_y - \ell_{(K)})/\beta + k` (:math:`\beta > 0`).

``tail`` says what stands in for the tail (:math:`\tilde w`: the weight, clamped at 0 with
``clamp=True``; :math:`f` = :attr:`klloss.Options.factor`):

* ``"renormalize"`` -- :math:`L_i = f \sum_{c \in S} \tilde w_c \tilde p_c (\log \tilde p_c -
  \log q_c)`, :math:`\tilde p = \mathrm{softmax}_S(\ell/T)`, :math:`q = \mathrm{softmax}(s/T)` over
  all V classes. Exactly :func:`klloss.margin_kd_loss` against a teacher whose logits are
  :math:`-\infty` off S (the margins still the true ones), at any temperature; equal to the full
  loss when the teacher's mass is all in S. Otherwise its distance from the full loss depends on
  the student's mass off S, without a bound: it teaches the student to put none there.
* ``"bucket"`` (temperature 1 only: :math:`p` at another T needs the tail's
  :math:`\sum_R p_c^{1/T}`, which the store does not hold) -- the tail as one class:
  :math:`L^b_i = f [\sum_{c \in S} \tilde w_c p_c (\log p_c - \log q_c) + \tilde w_B p_B
  (\log p_B - \log q_B)]`, :math:`q_B = \sum_R q_c`. With :math:`u = p_R/p_B`, :math:`v =
  q_R/q_B`, :math:`a_c = \ell_{(K)} - \log p_c \ge 0` and :math:`\Lambda = \log(n
  p_{(K)}/p_B)`, exactly

  .. math::
      L_i - L^b_i = f\,[\tilde w_B\, p_B\, \mathrm{KL}(u\|v) + \textstyle\sum_R (\tilde w_c -
      \tilde w_B)\, p_c \log(p_c/q_c)], \qquad 0 \le \tilde w_c - \tilde w_B \le a_c/\beta,

  and from it (``tests/test_topk.py`` checks each): the row's weight :math:`W = \sum_c \tilde
  w_c p_c` lies in :math:`[W^b, W^b + \Delta]`, :math:`\Delta = p_B \Lambda/\beta` (the tail's
  entropy is at most :math:`\log n` and :math:`p_c \le p_{(K)}`); the gradient on each
  :math:`c \in S` is short by :math:`f q_c (W - W^b) \in [0, f q_c \Delta]`; and, with
  :math:`\lambda = -\min_R \log q_c`, :math:`\mu = -\max_R \log q_c`, :math:`\kappa =
  \min(0, \ell_{(K)} - \log p_B) + \log q_B + \lambda` (so :math:`\mathrm{KL}(u\|v) \le \kappa`)
  and :math:`\sum_R p_c a_c^2 \le p_B (\max(\Lambda^2, 4) + 1)`,

  .. math::
      \frac{L_i - L^b_i}{f} \in \big[\min(0, \tilde w_B)\, p_B \kappa + \min(0, \ell_{(K)} +
      \mu)\,\Delta - \tfrac{p_B}{\beta} (\max(\Lambda^2, 4) + 1),\;
      \max(0, \tilde w_B)\, p_B \kappa + \max(0, \ell_{(K)} + \lambda)\,\Delta\big].

  Every term carries :math:`p_B`: the error vanishes with the tail's mass.

:math:`p_B` is computed from the stored log-probabilities, :math:`-\mathrm{expm1}(\log \sum_S
p_c)`, so they must be float32 or float64 (in 16 bits the tail's mass is lost). The stored
classes must be distinct and the teacher's K most probable (:func:`topk_store` builds them from
the raw teacher logits); the bucket's floor relies on it. On the CPU, a store that is not what it
says is refused by name: 16-bit numbers, values that are not log-probabilities, a class twice in a
row, a label's log-probability that the stored ones contradict. Explained in ``docs/training.md``.
"""

import math
import numbers
from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import _checks, distill, reference
from .options import ARTICLE_OFFSET, Options

TAILS = ("renormalize", "bucket")
"""The values of ``tail``: what stands in for the classes outside the stored top K."""

CALL = "margin_kd_loss_topk(student_logits, topk_indices, topk_logprobs, label_logprob, labels, tail=...)"
NEG_INF = float("-inf")


class TopKStore(NamedTuple):
    """A teacher's top K per row, as :func:`topk_store` returns it; ``*store`` unpacks it into
    :func:`margin_kd_loss_topk`'s arguments.

    * ``indices`` -- (..., K) int64, the classes, most probable first;
    * ``logprobs`` -- (..., K), their :math:`\\log p_c` at temperature 1;
    * ``label_logprob`` -- (...), :math:`\\log p_y` of the label; NaN where the label is
      ``ignore_index``.
    """

    indices: torch.Tensor
    logprobs: torch.Tensor
    label_logprob: torch.Tensor


def _check_k(k, v):
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an integer, got {type(k).__name__}")
    if not 1 <= k <= v:
        raise ValueError(f"k must lie in [1, V] = [1, {v}], got {k}")
    return int(k)


def _check_store_args(teacher_logits, labels, k, chunk_size, ignore_index):
    _checks._check_logits("teacher_logits", teacher_logits)
    if not isinstance(labels, torch.Tensor) or labels.dtype not in _checks._INTEGERS:
        raise TypeError(f"labels must be a tensor of integers, got {getattr(labels, 'dtype', type(labels))}")
    if labels.shape != teacher_logits.shape[:-1] or labels.device != teacher_logits.device:
        raise ValueError(
            f"labels must have shape teacher_logits.shape[:-1] = {tuple(teacher_logits.shape[:-1])} "
            f"on {teacher_logits.device}, got {tuple(labels.shape)} on {labels.device}"
        )
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    options = Options(math.inf, ignore_index=ignore_index)  # checks ignore_index
    _checks.check_labels(labels, teacher_logits.shape[-1], options)
    return _check_k(k, teacher_logits.shape[-1]), options.ignore_index


def topk_store(teacher_logits, labels, k, *, chunk_size=1024, ignore_index=-100):
    """The teacher's top ``k`` per row, as :class:`TopKStore` (indices, log-probabilities at
    temperature 1, the label's log-probability), computed ``chunk_size`` rows at a time in float32
    (float64 for a float64 teacher).

    * ``teacher_logits`` -- :math:`z`, (..., V), any float dtype, as the teacher gives them (not
      divided by a temperature: :func:`margin_kd_loss_topk` applies its own); ``labels`` -- (...), in [0, V)
      or ``ignore_index`` (those rows get a NaN ``label_logprob``);
    * ``k`` -- K, in [1, V]; ties between equal logits are broken in any order.
    """
    k, ignore_index = _check_store_args(teacher_logits, labels, k, chunk_size, ignore_index)
    lead, v = teacher_logits.shape[:-1], teacher_logits.shape[-1]
    z, y = teacher_logits.detach().reshape(-1, v), labels.reshape(-1)
    dtype = reference.compute_dtype(z)
    indices = torch.empty(y.shape[0], k, dtype=torch.long, device=z.device)
    logprobs = torch.empty(y.shape[0], k, dtype=dtype, device=z.device)
    label_logprob = torch.empty(y.shape[0], dtype=dtype, device=z.device)
    for start in range(0, y.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        log_p = F.log_softmax(z[rows].to(dtype), -1)  # log p = z - logsumexp(z)
        top = log_p.topk(k, -1)  # the K largest log p_c, largest first
        indices[rows], logprobs[rows] = top.indices, top.values
        kept = reference.rows_kept(y[rows], ignore_index)
        at_label = log_p.gather(-1, torch.where(kept, y[rows], 0).long().unsqueeze(-1)).squeeze(-1)  # log p_y
        label_logprob[rows] = torch.where(kept, at_label, math.nan)
    return TopKStore(indices.reshape(*lead, k), logprobs.reshape(*lead, k), label_logprob.reshape(lead))


def _check_topk_tensors(s, idx, logp, label_logp, y):
    """Shapes, dtypes and devices; the index values where they are free to read."""
    _checks._check_logits("student_logits", s)
    lead, v = s.shape[:-1], s.shape[-1]
    if not isinstance(idx, torch.Tensor) or idx.dtype not in _checks._INTEGERS:
        raise TypeError(f"topk_indices must be a tensor of integers, got {getattr(idx, 'dtype', type(idx))}")
    if idx.shape[:-1] != lead or idx.dim() != s.dim() or not 1 <= idx.shape[-1] <= v:
        raise ValueError(
            f"topk_indices must have shape (*student_logits.shape[:-1], K) = "
            f"({', '.join(map(str, lead))}, K) with 1 <= K <= V = {v}, got {tuple(idx.shape)}"
        )
    _checks._check_logits("topk_logprobs", logp)
    if logp.shape != idx.shape:
        raise ValueError(
            f"topk_logprobs must have the shape of topk_indices {tuple(idx.shape)}, got {tuple(logp.shape)}"
        )
    if not isinstance(label_logp, torch.Tensor) or label_logp.dtype not in _checks._FLOATS:
        raise TypeError(
            f"label_logprob must be a float tensor, got {getattr(label_logp, 'dtype', type(label_logp))}"
        )
    if label_logp.shape != lead:
        raise ValueError(f"label_logprob must have shape {tuple(lead)}, got {tuple(label_logp.shape)}")
    if not isinstance(y, torch.Tensor) or y.dtype not in _checks._INTEGERS or y.shape != lead:
        raise ValueError(
            f"labels must be integers of shape {tuple(lead)}, got {getattr(y, 'shape', type(y))}"
        )
    for name, x in (
        ("topk_indices", idx),
        ("topk_logprobs", logp),
        ("label_logprob", label_logp),
        ("labels", y),
    ):
        if x.device != s.device:
            raise ValueError(
                f"{name} must be on the same device as student_logits ({s.device}), got {x.device}"
            )
    for name, x in (("topk_logprobs", logp), ("label_logprob", label_logp)):
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(
                f"{name} must be float32 or float64, got {x.dtype}: in 16 bits the tail's mass "
                "1 - sum of the stored p_c, and with it the bucket's bound, is lost "
                "(topk_store keeps float32)"
            )
    if _checks.host_readable(idx) and idx.numel() and not (idx.min() >= 0 and idx.max() < v):
        raise ValueError(f"topk_indices values must lie in [0, V) = [0, {v})")


def _check_store_values(idx, logp, label_logp, y, ignore_index):
    """On kept rows, where that is free to read (:func:`klloss._checks.host_readable`): the store
    holds distinct classes and log-probabilities (each <= 0, their probabilities summing to at most
    1), and its label's log-probability is the one the top K imply for these labels (equal to the
    stored one where the label is among them, at most the smallest stored one where it is not).
    Each up to a rounding allowance; a NaN (an undefined teacher) passes, and gives NaN."""
    if not (_checks.host_readable(idx) and _checks.host_readable(y)) or not idx.numel():
        return
    kept = reference.rows_kept(y, ignore_index)
    idx, logp, label_logp, y = idx[kept], logp[kept].double(), label_logp[kept].double(), y[kept]
    # the rounding allowance: far above float32's, far below an error of the store
    slack = lambda x: 1e-3 * (1 + x.abs())  # noqa: E731
    total = torch.logsumexp(logp, -1)  # log sum_S p_c
    if bool(
        (logp > slack(logp)).any() or (total > slack(total)).any() or (label_logp > slack(label_logp)).any()
    ):
        raise ValueError(
            "topk_logprobs and label_logprob must be log-probabilities at temperature 1 (each <= 0, the "
            "stored ones summing to at most 1), got a row with a value above 0 or probabilities summing to "
            f"{float(total.exp().max()):.4g}: pass log-probabilities, not logits or probabilities "
            "(topk_store builds them from the raw teacher logits)"
        )
    ordered = idx.sort(-1).values
    if bool((ordered[..., 1:] == ordered[..., :-1]).any()):
        raise ValueError(
            "topk_indices must hold K distinct classes in each row, got a row with a class twice"
        )
    at = idx == y.unsqueeze(-1)  # where the label is among the top K
    stored = torch.where(at, logp, 0.0).sum(-1)
    inside = at.any(-1)
    # the K-th log-probability: the label's, where it is not stored, is at most that
    floor = logp.min(-1).values
    wrong = torch.where(
        inside, (label_logp - stored).abs() > slack(stored), label_logp > floor + slack(floor)
    )
    if bool(wrong.any()):
        raise ValueError(
            f"label_logprob disagrees with topk_logprobs for these labels in {int(wrong.sum())} kept "
            "row(s): where the label is among the stored classes it must equal the stored log-probability, "
            "elsewhere be at most the smallest one; were the store and labels made from the same labels, "
            "shifted the same way?"
        )


def _weight(m, options):
    r"""\tilde w = m / beta + k, clamped at 0 if asked."""
    w = reference.weight(m, options.beta, options.offset)  # w = m / beta + k
    return w.clamp(min=0) if options.clamp else w  # w~ = max(w, 0)


def _bucket(log_q_all, cols, ell, low, label_logp, n_tail, options):
    """Per row, the tail as one class: w~_B p_B (log p_B - log q_B), 0 where the tail has no mass."""
    log_kept = torch.logsumexp(ell, -1)  # log sum_S p_c
    p_b = (-torch.expm1(log_kept)).clamp(min=0)  # p_B = 1 - sum_S p_c
    live = (n_tail > 0) & (low > NEG_INF) & (p_b > 0)  # a tail that can hold mass, and does
    off_s = log_q_all.scatter(-1, cols, NEG_INF)  # log q_c off S, -inf on S
    off_s = torch.where(live.unsqueeze(-1), off_s, 0.0)  # no tail: finite numbers (no NaN in the backward)
    log_q_b = torch.logsumexp(off_s, -1)  # log q_B = log sum_R q_c
    w_b = _weight(label_logp - torch.where(live, low, 0.0), options)  # w~_B, at the K-th class's margin
    log_p_b = torch.where(live, p_b, 1.0).log()  # log p_B
    return torch.where(live, w_b * p_b * (log_p_b - log_q_b), 0.0)  # w~_B p_B (log p_B - log q_B)


def _rows(s, idx, logp, label_logp, y, options, tail):
    """Per-row losses L_i on checked arguments, 0 for an ignored row; rows (N, V) and (N, K)."""
    dtype = reference.compute_dtype(s, logp, label_logp)
    t = options.temperature
    kept = reference.rows_kept(y, options.ignore_index)  # label != ignore_index
    y = torch.where(kept, y, 0).long()  # an ignored row reads class 0, and counts 0
    row = kept.unsqueeze(-1)
    s = torch.where(row, s.to(dtype), 0.0)  # an ignored row's numbers reach no sum, whatever they hold
    logp = torch.where(row, logp.to(dtype), 0.0)
    label_logp = torch.where(kept, label_logp.to(dtype), 0.0)  # log p_y
    in_top = (idx == y.unsqueeze(-1)).any(-1, keepdim=True)  # y among the top K
    cols = torch.cat([idx.long(), y.unsqueeze(-1)], -1)  # S = top K, then y: (N, K + 1)
    ell = torch.cat([logp, torch.where(in_top, NEG_INF, label_logp.unsqueeze(-1))], -1)  # log p_c; y once
    live = ell != NEG_INF  # p_c > 0 (or NaN: an undefined teacher gives NaN)
    log_q_all = F.log_softmax(s if t == 1 else s / t, -1)  # log q = log softmax(s / T), all V classes
    log_q = log_q_all.gather(-1, cols)  # log q_c, c in S
    w = torch.where(live, _weight(label_logp.unsqueeze(-1) - ell, options), 0.0)  # w~_c, m_c = l_y - l_c
    # bucket: log p_c (T = 1); renormalize: log p~ = log softmax_S(l / T)
    log_p = ell if tail == "bucket" else F.log_softmax(ell if t == 1 else ell / t, -1)
    d = torch.where(live, log_p - log_q, 0.0)  # log p_c - log q_c; 0 where p_c = 0
    total = (w * log_p.exp() * d).sum(-1)  # sum_S w~_c p_c (log p_c - log q_c)
    if tail == "bucket":
        n_tail = s.shape[-1] - idx.shape[-1] - (~in_top).squeeze(-1).long()  # n = V - |S|
        total = total + _bucket(log_q_all, cols, ell, logp.min(-1).values, label_logp, n_tail, options)
    return torch.where(kept, total * options.factor, 0.0)  # L_i = f (...)


def margin_kd_loss_topk(
    student_logits,
    topk_indices,
    topk_logprobs,
    label_logprob,
    labels,
    *,
    tail,
    margin_scale=distill.ARTICLE_BETA,
    offset=ARTICLE_OFFSET,
    temperature=1.0,
    normalize=True,
    clamp=False,
    reduction="batchmean",
    ignore_index=-100,
    num_items_in_batch=None,
):
    r""":func:`klloss.margin_kd_loss` with the teacher given by its stored top K (module docstring).

    * ``student_logits`` -- :math:`s`, (..., V), any float dtype; the only argument that gets a
      gradient;
    * ``topk_indices``, ``topk_logprobs`` -- (..., K): the teacher's K most probable classes and
      their :math:`\log p_c` at temperature 1; ``label_logprob`` -- (...), :math:`\log p_y`;
      :func:`topk_store` builds all three (``*store``);
    * ``labels`` -- :math:`y`, (...), in [0, V) or ``ignore_index``;
    * ``tail`` -- ``"renormalize"`` or ``"bucket"``, no default: they approximate different things
      (module docstring); ``"bucket"`` needs ``temperature=1``;
    * the other options as in :func:`klloss.margin_kd_loss`, but ``return_parts``.

    Plain torch, differentiated by autograd: memory of a few (N, V) tensors of the student's.
    """
    options = distill._options(margin_scale, offset, reduction, ignore_index, temperature, normalize, clamp)
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {', '.join(map(repr, TAILS))}, got {tail!r}")
    if tail == "bucket" and options.temperature != 1.0:
        raise ValueError(
            f"tail='bucket' needs temperature=1, got {temperature}: p at another temperature needs the "
            "tail's sum of p_c^(1/T), which the store does not hold; tail='renormalize' works at any T"
        )
    count = distill.check_count(num_items_in_batch, options.reduction)
    s, idx, logp, label_logp, y = student_logits, topk_indices, topk_logprobs, label_logprob, labels
    _check_topk_tensors(s, idx, logp, label_logp, y)
    teachers = (("topk_logprobs", logp), ("label_logprob", label_logp))
    _checks.check_roles(("student_logits", s), teachers, CALL)
    _checks.check_labels(y, s.shape[-1], options)
    _check_store_values(idx, logp.detach(), label_logp.detach(), y, options.ignore_index)
    v, k = s.shape[-1], idx.shape[-1]
    flat = (s.reshape(-1, v), idx.reshape(-1, k), logp.detach().reshape(-1, k))
    per_row = _rows(*flat, label_logp.detach().reshape(-1), y.reshape(-1), options, tail).reshape(y.shape)
    if count is not None:
        return per_row.sum() / count  # sum_i L_i / num_items_in_batch
    return reference.reduce(per_row, reference.rows_kept(y, options.ignore_index), options.reduction)
