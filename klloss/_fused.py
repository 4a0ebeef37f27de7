r"""The CPU fast path: one ``autograd.Function`` that computes the loss and its gradient in one go.

.. math::
    L_i = f \sum_c \tilde w_{ic} p_{ic} (\log p_{ic} - \log q_{ic}), \qquad
    \frac{\partial L_i}{\partial s_{ic}} = \frac{f}{T} (q_{ic} \tilde W_i - \tilde w_{ic} p_{ic}),
    \qquad \tilde W_i = \sum_c \tilde w_{ic} p_{ic},

with :math:`p = \mathrm{softmax}(z/T)`, :math:`q = \mathrm{softmax}(s/T)`, the margin from the raw
teacher logits, :math:`\tilde w = w` (or :math:`\max(w, 0)`, ``clamp``) and :math:`f` =
:attr:`klloss.Options.factor`. The forward has both softmaxes at hand, so it writes
:math:`G = \sigma (q\tilde W - \tilde w p)` (:math:`\sigma = f/T` times the reduction's scale)
into the buffer of the weighted teacher and saves it; the backward only multiplies it by the
upstream gradient. Where the reference keeps about ten (N, C) tensors for autograd, this keeps
one. Same numbers as :mod:`klloss.reference` (tested against it, and the float64 oracle), with
the same care at the edges: the margin formed before it is scaled, log-probabilities, and 0 for a
class with p = 0.

Plain eager calls only (:func:`klloss.loss._path` decides): ``torch.compile`` compiles the
reference, and ``torch.func`` differentiates the reference. Whether it earns its place is
measured by ``make bench`` (the numbers are beside the switch in :mod:`klloss.loss`).
"""

import math

import torch

from .reference import compute_dtype


def _rows(x, c, dtype):
    """``x`` as contiguous (N, C) rows in the compute dtype (``x`` itself where nothing changes:
    at small sizes each call costs as much as an operator)."""
    if x.dim() != 2:
        x = x.reshape(-1, c)
    if x.dtype != dtype:
        x = x.to(dtype)
    return x if x.is_contiguous() else x.contiguous()


def _neg_weight(z_m, y, options, sigma, out=None):
    """-sigma w~ on (N, C) rows (written into ``out`` when given), or the number -sigma k~ at
    beta = inf: the margin m = z'_y - z' formed first, then scaled; ``clamp``: -sigma w~ =
    min(-sigma w, 0), as sigma > 0."""
    if options.beta == math.inf:
        return -sigma * (max(options.offset, 0.0) if options.clamp else options.offset)  # -sigma k~
    neg_w = torch.sub(z_m.gather(-1, y.unsqueeze(-1)), z_m, out=out)  # m = z'_y - z'
    neg_w.mul_(-sigma / options.beta).sub_(sigma * options.offset)  # -sigma w = (-sigma / beta) m - sigma k
    if options.clamp:
        neg_w.clamp_(max=0.0)  # -sigma w~ = -sigma max(w, 0)
    return neg_w


def _log_softmax(x, t, out=None):
    """log softmax(x / T) over the last dimension, into ``out`` when given (``x`` itself may be it)."""
    if t != 1:
        x = x / t if out is None else torch.div(x, t, out=out)
    return torch.log_softmax(x, -1, out=out)


def _forward(s, z, z_m, y, ignored, options, scale, need_grad, exact_zeros, work=None):
    """(out, G, -sigma W~) on (N, C) rows; ``scale`` None: per-row losses, else scale sum_i L_i.

    sigma = (f / T) scale folds the factor, the temperature's 1/T in the gradient and the
    reduction into the weights; the loss is T times their sum (nothing to multiply at T = 1). The
    weighted teacher is kept negated, -sigma w~ p, and the log-ratio as log q - log p, so that
    the loss is their dot product and G one fused update. ``exact_zeros``: mask the classes with
    p = 0 (needed only where a weight or a log-probability is infinite; see :func:`loss`).

    ``work``: None, or two spare (N, C) buffers; then ``s`` and ``z`` are the caller's to
    overwrite too (the loss from hidden states, :mod:`klloss.linear`), nothing of size (N, C) is
    allocated, and G is written into one of the spare buffers. The same operations either way, so the same
    numbers.
    """
    t = options.temperature
    sigma = 1.0 if scale is None else scale
    if t != 1 or options.normalize:
        sigma = sigma * options.factor / t
    into = (None,) * 4 if work is None else (*work, s, z)  # where each (N, C) result goes
    neg_w = _neg_weight(z_m, y, options, sigma, out=into[0])  # -sigma w~, from the raw z' (first)
    log_q = _log_softmax(s, t, out=into[2])  # log q = log softmax(s / T)
    log_p = _log_softmax(z, t, out=into[3])  # log p = log softmax(z / T)
    p = torch.exp(log_p, out=into[1])  # p
    massless = p == 0 if exact_zeros else None  # classes that add nothing, whatever their weight
    neg_wp = neg_w.mul_(p) if isinstance(neg_w, torch.Tensor) else p.mul_(neg_w)  # -sigma w~ p
    d = torch.sub(log_q, log_p, out=log_p)  # log q - log p, in log p's buffer
    if exact_zeros:
        neg_wp.masked_fill_(massless, 0.0)  # (inf * 0 is NaN)
        d.masked_fill_(massless, 0.0)
    if ignored is not None:
        rows = ignored.unsqueeze(-1)
        neg_wp.masked_fill_(rows, 0.0)  # an ignored row weighs nothing
        d.masked_fill_(rows, 0.0)  # and its logits, whatever they hold, reach no sum
    neg_w = neg_wp.sum(-1, keepdim=True)  # -sigma W~ = sum_c -sigma w~ p
    # scale L_i / T = sum_c (-sigma w~ p)(log q - log p); for the total, the per-row sums summed
    # (pairwise: one float32 dot product over all N C terms lost digits at a language model's size)
    out = d.mul_(neg_wp).sum(-1)
    if scale is not None:
        out = out.sum()
    if t != 1:
        out = out.mul_(t)  # scale L_i
    if not need_grad:
        return out, None, None
    grad = neg_wp.addcmul_(log_q.exp_(), neg_w, value=-1)  # sigma G = q sigma W~ - sigma w~ p
    if ignored is not None:
        grad.masked_fill_(ignored.unsqueeze(-1), 0.0)
    return out, grad, neg_w


def rows_in_place(s, z, y, options, need_grad, work, exact_zeros):
    """(sum_i L_i, G or None) of checked (N, C) rows, ``options.reduction`` 'sum': what
    :class:`FusedLoss` computes, with the caller's own logits ``s`` and ``z`` (contiguous, the
    compute dtype) overwritten and two spare (N, C) buffers ``work``, so that nothing of size
    (N, C) is allocated (the loss from hidden states, :mod:`klloss.linear`, reuses them chunk after
    chunk). Where the total is not finite, the caller calls again on fresh logits with
    ``exact_zeros=True``, as :class:`FusedLoss` does."""
    ignored = None if options.ignore_index is None else y == options.ignore_index
    if ignored is not None and ignored.any():
        y = y.masked_fill(ignored, 0)  # an ignored row reads class 0; its result is zeroed
    else:
        ignored = None
    out, grad, _ = _forward(s, z, z, y.long(), ignored, options, 1.0, need_grad, exact_zeros, work)
    return out, grad


class FusedLoss(torch.autograd.Function):
    """``apply(s, z, z_m, y, ignored, options, scale)`` on (N, C) rows: per-row losses when
    ``scale`` is None, else ``scale * sum_i L_i``. Differentiable in ``s`` only, twice: the backward
    builds a graph of the gradient when asked (double backward, Hessian-vector products)."""

    @staticmethod
    def forward(ctx, s, z, z_m, y, ignored, options, scale):
        args = (s, z, z_m, y, ignored, options, scale, ctx.needs_input_grad[0])
        out, grad, neg_w = _forward(*args, exact_zeros=False)
        if not math.isfinite((out if scale is not None else out.sum()).item()):
            # an infinite weight or log-probability met p = 0 somewhere (a masked class, an
            # overflowing margin), or the loss is truly infinite: again, with those terms set to
            # their limit, 0 (on the CPU this read of one number waits for nothing)
            out, grad, neg_w = _forward(*args, exact_zeros=True)
        ctx.per_row = scale is None
        ctx.temperature = options.temperature
        ctx.save_for_backward(s, grad, neg_w, ignored)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        s, grad, neg_w, ignored = ctx.saved_tensors
        factor = grad_out.unsqueeze(-1) if ctx.per_row else grad_out  # g_i per row, or one g
        if torch.is_grad_enabled():
            # a graph of the gradient: q = softmax(s / T) differentiable in s; -w~ p = G - q W~, a
            # constant; an ignored row's logits, whatever they hold, reach no softmax
            x = s if ignored is None else s.masked_fill(ignored.unsqueeze(-1), 0.0)
            t = ctx.temperature
            q = torch.softmax(x if t == 1 else x / t, -1)
            neg_wp = grad + q.detach() * neg_w
            return (neg_wp - q * neg_w) * factor, None, None, None, None, None, None
        # dL/ds = G g, always a new tensor: the caller owns what backward returns (it may become
        # s.grad and be changed in place), and a retained graph needs G unchanged for the next one
        return grad * factor, None, None, None, None, None, None


def loss(input, target, logits_t, label, options, kept):
    """The loss on checked arguments, on the CPU in eager mode; ``kept``: the number of rows not
    ignored, counted on the host by :func:`klloss._checks.check_labels`. Computed in float32, or
    float64 if any argument is (:func:`klloss.reference.compute_dtype`); the gradient reaches
    ``input`` in its own dtype (through the ``to`` outside the Function)."""
    c = input.shape[-1]
    dtype = input.dtype  # one dtype throughout, checked first and cheaply: the common case
    if target.dtype is not dtype or (logits_t is not target and logits_t.dtype is not dtype):
        dtype = compute_dtype(input, target, logits_t)  # float64 if any is, else float32
    elif dtype is torch.float16 or dtype is torch.bfloat16:
        dtype = torch.float32
    s, z = _rows(input, c, dtype), _rows(target.detach(), c, dtype)
    z_m = z if logits_t is target else _rows(logits_t.detach(), c, dtype)  # raw: never scaled by 1/T
    y = label if label.dim() == 1 else label.reshape(-1)
    y = y if y.dtype == torch.int64 else y.long()
    ignored = None
    if kept < y.numel():
        ignored = y == options.ignore_index
        y = y.masked_fill(ignored, 0)  # an ignored row reads class 0; its result is zeroed
    scale = {"none": None, "sum": 1.0, "batchmean": 1.0 / max(kept, 1)}[options.reduction]
    out = FusedLoss.apply(s, z, z_m, y, ignored, options, scale)
    return out.reshape(input.shape[:-1]) if scale is None else out
