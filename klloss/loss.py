r"""The klloss_v2 loss, two ways: the article's algorithm as published, and our corrected form.

Symbols (see :mod:`klloss.glossary`): student logits :math:`s` (``input``), teacher logits
:math:`z` (``logits_t`` for the margin, ``target`` for the soft target), labels :math:`y`,
:math:`p=\mathrm{softmax}(z)`, :math:`q=\mathrm{softmax}(s)`, margin :math:`m_{ic}=z_{iy_i}-z_{ic}`,
weight :math:`w_{ic}=m_{ic}/\beta+k` with offset :math:`k=8`, and

.. math::
    L = \frac{1}{N}\sum_i \sum_c w_{ic}\, p_{ic} (\log p_{ic} - \log q_{ic}).

Walked through in ``notebooks/01-walkthrough.ipynb``.
"""

import math

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

    The readable form of the loss; :class:`_KLLossV2Function` computes the same numbers faster and is
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


SMALL_C = 128
"""On a CPU, below this many classes the forward starts from ATen's log-softmax kernel (as it
always does on a GPU); from it up, from ATen's softmax kernel, whose outputs avoid the
(N, C) exponentials and logarithms the other way needs, which dominate long rows. A speed choice
only, made by timing both ways on one CPU; both give the same numbers (``tests/test_gradients.py``)."""


def _forward(s, z, z_margin, label, ignored, beta, offset, scale, need_grad):
    r"""The loss and, when ``need_grad``, the gradient :math:`G = qW - wp` and :math:`-W`.

    Rows (N, C), already checked; ``z_margin`` None when it is ``z`` itself (``torch.compile``
    refuses the same tensor twice); ``ignored``: (N,) bool mask or None. ``scale``: None for the
    per-row losses :math:`L_i`; else a number :math:`\sigma`, and the output is
    :math:`\sigma\sum_i L_i`. :math:`\sigma` is folded into the weights, so that
    :math:`G = \sigma(qW - wp)` and :math:`-\sigma W` come at no extra cost: plain eager calls
    pass 1/N for a batch mean. Compiled and ``torch.func`` calls pass 1 and divide outside (see
    :func:`klloss_v2`), since a float other than 0 or 1 reaches ``torch.compile`` as a symbolic
    number, which torch 2.11 turned into a zero gradient.

    Two ways to the two softmaxes (see :data:`SMALL_C`). On a GPU, or with few classes, the
    log-probabilities themselves, :math:`\log p_c - \log q_c`, and the gradient from ATen's
    log-softmax backward kernel. On a CPU with many classes, ATen's softmax kernel and the identity

    .. math::
        \log p_c - \log q_c = (z_c - s_c) - D, \qquad D = \log\textstyle\sum_j e^{z_j} - \log\sum_j e^{s_j},

    so that :math:`L_i = \sum_c w_c p_c (z_c - s_c) - W D`: no (N, C) logarithm is taken. Every
    large temporary after the softmaxes is reused in place.
    """
    # sigma, folded into the weights below
    fold = 1.0 if scale is None else scale
    if z_margin is None:
        z_margin = z
    # y: labels to gather; ignored rows read class 0, and their results are zeroed below
    y = label if ignored is None else label.masked_fill(ignored, 0)
    # z_y, first: the gather checks every label against [0, C) (see _loss), before any work
    z_label = None if beta == math.inf else z_margin.gather(-1, y.unsqueeze(-1))
    by_log_softmax = s.shape[-1] < SMALL_C or not s.is_cpu
    if by_log_softmax:
        # log p = log_softmax(z);  log q = log_softmax(s);  p = e^(log p);  D = 0
        log_p = torch.log_softmax(z, -1)
        log_q = torch.log_softmax(s, -1)
        p = log_p.exp()
        big_d = None
    else:
        # q = softmax(s);  p = softmax(z)
        q = torch.softmax(s, -1)
        p = torch.softmax(z, -1)
        # log sum_j e^{x_j} = max x - log max softmax(x): softmax peaks where x does
        # D = (max z - max s) + log(max q / max p)
        big_d = z.amax(-1, keepdim=True).sub_(s.amax(-1, keepdim=True))
        big_d += q.amax(-1, keepdim=True).div_(p.amax(-1, keepdim=True)).log_()
    # The weighted teacher is kept negated, -sigma w p: the gradient is then one fused operation.
    if beta == math.inf:
        # -sigma w p = -sigma k p
        neg_wp = p * (-offset * fold)
    else:
        # -c = -sigma (k + z_y / beta), one number per row
        neg_c = torch.full_like(z_label, -offset * fold).sub_(z_label, alpha=fold / beta)
        # -sigma w = sigma z / beta - c;  -sigma w p
        neg_wp = torch.add(neg_c, z_margin, alpha=fold / beta).mul_(p)
    # -sigma W = sum_c -sigma w_c p_c
    neg_w = neg_wp.sum(-1, keepdim=True)
    grad = None
    if need_grad and by_log_softmax:
        # sigma G = sigma (q W - w p) = (-sigma w p) - e^(log q) sum_c (-sigma w p): exactly what
        # the log-softmax backward kernel computes from its output log q and a gradient -sigma w p
        grad = torch._log_softmax_backward_data(neg_wp, log_q, -1, log_q.dtype)
    # d = log q - log p + D (signs to match the negated weights), in a buffer no longer needed
    d = log_q.sub_(log_p) if by_log_softmax else torch.sub(s, z, out=p)
    rows = None if ignored is None else ignored.unsqueeze(-1)
    if scale is not None and rows is None:
        # sigma sum_i L_i = sum_ic (-sigma w p) d  (+ sum_i (-sigma W_i) D_i): one dot product each
        out = torch.dot(neg_wp.view(-1), d.view(-1))
        if big_d is not None:
            out = out.add_(torch.dot(neg_w.view(-1), big_d.view(-1)))
    else:
        # sigma L_i = sum_c (-sigma w p) d  (+ (-sigma W) D)
        per_sample = d.mul_(neg_wp).sum(-1, keepdim=True)
        if big_d is not None:
            per_sample = per_sample.addcmul_(neg_w, big_d)
        if rows is not None:
            per_sample.masked_fill_(rows, 0.0)
        # L_i, or sigma sum_i L_i
        out = per_sample.squeeze(-1) if scale is None else per_sample.sum()
    if not need_grad:
        return out, s.new_empty(0), s.new_empty(0)
    if grad is None:
        # sigma G = sigma (q W - w p) = (-sigma w p) - q (-sigma W), in the weighted teacher's buffer
        grad = neg_wp.addcmul_(q, neg_w, value=-1)
    if rows is not None:
        grad.masked_fill_(rows, 0.0)
    # backward only multiplies G by the upstream gradient
    return out, grad, neg_w


def _backward(ctx, grad_out):
    """Gradient w.r.t. ``s`` from what the forward saved: ``(s, G, -W, ignored)`` and the reduction."""
    s, grad, neg_w, ignored = ctx.saved_tensors
    # upstream gradient: g_i per row, or one g for the sum
    factor = grad_out.unsqueeze(-1) if ctx.per_row else grad_out
    if torch.is_grad_enabled():
        # building a graph of the gradient (double backward, torch.func): q differentiable in s
        big_w = -neg_w if ignored is None else (-neg_w).masked_fill_(ignored.unsqueeze(-1), 0.0)
        q = torch.softmax(s, -1)
        # w p = q W - G, recovered from what was saved; a constant
        wp = q.detach() * big_w - grad
        return (q * big_w - wp) * factor
    # dL/ds = G g
    return grad * factor


def _remember(ctx, s, scale, ignored, grad, neg_w):
    ctx.per_row = scale is None
    ctx.save_for_backward(s, grad, neg_w, ignored)


class _KLLossV2Function(torch.autograd.Function):
    r"""klloss_v2 on (N, C) rows with the closed-form gradient (``notebooks/04-what-it-teaches.ipynb``):

    .. math::
        \frac{\partial L_i}{\partial s_{ij}} = q_{ij} W_i - w_{ij} p_{ij}, \qquad W_i = \sum_c w_{ic} p_{ic}.

    ``forward(s, z, z_margin, label, ignored, beta, offset, scale, need_grad)`` returns
    ``(out, G, -W)`` (see :func:`_forward`): ``out`` is the per-sample losses when ``scale`` is
    None, else their sum. The gradient :math:`G` is computed in the forward, where the softmaxes are at
    hand, and saved; backward only multiplies it by the upstream gradient. ``G`` and ``-W`` are
    outputs only so that ``setup_context`` can save them: this is the form ``torch.func`` and
    ``torch.compile`` need. Plain eager calls take :class:`_KLLossV2Eager`, the same computation
    with one output, which costs less per call.

    Same numbers as :func:`_per_sample_autograd`, tested against it; ``vmap`` folds the vmapped
    dimension into the rows, and double backward recomputes :math:`q` differentiably.
    """

    @staticmethod
    def forward(s, z, z_margin, label, ignored, beta, offset, scale, need_grad):
        return _forward(s, z, z_margin, label, ignored, beta, offset, scale, need_grad)

    @staticmethod
    def setup_context(ctx, inputs, output):
        s, _, _, _, ignored, _, _, scale, _ = inputs
        _, grad, neg_w = output
        ctx.mark_non_differentiable(grad, neg_w)
        # no zero tensors for the gradients of G and W, which nothing differentiates
        ctx.set_materialize_grads(False)
        _remember(ctx, s, scale, ignored, grad, neg_w)

    @staticmethod
    def backward(ctx, grad_out, _grad_g, _grad_w):
        if grad_out is None:  # nothing upstream depends on the loss
            return (None,) * 9
        return _backward(ctx, grad_out), None, None, None, None, None, None, None, None

    @staticmethod
    def vmap(info, in_dims, s, z, z_margin, label, ignored, beta, offset, scale, need_grad):
        # the loss is row-wise: fold the vmapped dimension into the rows, then unfold
        def rows(x, dim):
            if x is None:
                return None
            x = x.expand(info.batch_size, *x.shape) if dim is None else x.movedim(dim, 0)
            return x.reshape(-1, *x.shape[2:])

        tensors = [rows(x, d) for x, d in zip((s, z, z_margin, label, ignored), in_dims[:5])]
        per_sample, grad, neg_w = _KLLossV2Function.apply(*tensors, beta, offset, None, need_grad)
        batch, n = info.batch_size, per_sample.shape[0] // info.batch_size
        per_sample = per_sample.reshape(batch, n)
        if need_grad:
            grad, neg_w = grad.reshape(batch, n, -1), neg_w.reshape(batch, n, 1)
        else:
            grad, neg_w = grad.expand(batch, 0), neg_w.expand(batch, 0)
        out = per_sample if scale is None else per_sample.sum(-1)
        return (out, grad, neg_w), (0, 0, 0)


class _KLLossV2Eager(torch.autograd.Function):
    """:class:`_KLLossV2Function` for plain eager calls: one output, the context set in forward."""

    @staticmethod
    def forward(ctx, s, z, z_margin, label, ignored, beta, offset, scale, need_grad):
        out, grad, neg_w = _forward(s, z, z_margin, label, ignored, beta, offset, scale, need_grad)
        _remember(ctx, s, scale, ignored, grad, neg_w)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        return _backward(ctx, grad_out), None, None, None, None, None, None, None, None


_EAGER_APPLY = super(torch.autograd.Function, _KLLossV2Eager).apply


def _apply(*args):
    if torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active():
        return _KLLossV2Function.apply(*args)[0]
    # plain eager mode: the C++ apply, without the Python wrapper around it (which binds
    # arguments with inspect and unwraps torch.func tensors there are none of here)
    return _EAGER_APPLY(*args)


def klloss_v2(
    logits_t, input, target, label, beta, *, offset=ARTICLE_OFFSET, reduction="batchmean", ignore_index=-100
):
    r"""Corrected, vectorized ``klloss_v2``:
    :math:`L=\frac1{N'}\sum_{i,c} w_{ic}\,p_{ic}(\log p_{ic}-\log q_{ic})`.

    Arguments (article's names and order):

    * ``logits_t`` -- teacher logits :math:`z` for the margin, (..., C), float; detached;
    * ``input`` -- student logits :math:`s`, (..., C), same shape, dtype and device; the only
      argument that receives gradient;
    * ``target`` -- teacher logits for :math:`p=\mathrm{softmax}(z)`, (..., C); detached;
    * ``label`` -- integer labels :math:`y`, shape ``input.shape[:-1]``, each in [0, C) or equal
      to ``ignore_index``;
    * ``beta`` -- :math:`\beta>0` (``inf`` allowed: then every weight equals ``offset``); a
      Python number (a tensor is read with ``.item()``, which waits for a GPU);
    * ``offset`` -- :math:`k`, the article's 8.0;
    * ``reduction`` -- ``"batchmean"`` (sum over everything / N', the article's choice),
      ``"sum"``, or ``"none"`` (the per-row losses, shape ``input.shape[:-1]``);
    * ``ignore_index`` -- rows whose label equals it contribute 0 to the loss and get a zero
      gradient, as in ``F.cross_entropy`` (default -100); ``None`` ignores nothing.

    **Rows.** Any leading shape: (B, T, V) logits with (B, T) labels, as a language model gives,
    are the same as the flattened (B T, V) call. N' is the number of rows not ignored (at least
    1, so a batch with every row ignored gives 0, not NaN). Note that ``F.kl_div``'s
    ``"batchmean"`` divides by ``input.size(0)`` (B) instead; ours is the mean over rows, as
    ``F.cross_entropy``'s mean over tokens. Under DDP each process divides by its own N'; see
    ``notebooks/06-performance.ipynb`` for the global mean.

    **Label checks, and no waiting for the GPU.** The gather that reads :math:`z_y` checks its
    indices anyway, so that is the check. On the CPU, in eager mode, it runs before any other
    work, and only when it refuses a label are the labels read on the host: to mask the rows equal
    to ``ignore_index``, or to raise ``ValueError`` naming ``label`` for one outside [0, C) that is
    not ``ignore_index``. On a GPU nothing is read back: the rows to ignore are masked on the
    device, so neither forward nor backward synchronises with the host, and a bad label fails the
    gather's device-side bounds check, as in ``F.cross_entropy`` (a CUDA "device-side assert",
    reported at the next synchronising call; run on the CPU for the clear message).
    ``ignore_index=None`` skips the masking there. Under ``torch.compile`` the host reads are
    skipped too (``torch.compiler.is_compiling()``), so ``fullgraph=True`` compiles; the compiled
    gather checks its indices. With ``beta=inf`` the margin is not gathered, so labels are then
    checked on the CPU only (on the host).

    Same value as :func:`klloss_v2_published` and the same gradient w.r.t. ``input``, but no
    Python loop over samples, no host copy, and no gradient into the teacher. float16 and
    bfloat16 logits are computed in float32 and the result is float32. Works with
    ``torch.compile(fullgraph=True)``, ``torch.func.grad``, ``vmap`` and ``jacrev``, and double
    backward. Bad arguments raise ``TypeError`` or ``ValueError`` naming the argument.
    See ``notebooks/01-walkthrough.ipynb`` and, for training, ``notebooks/06-performance.ipynb``.
    """
    n, c = _checks.check_loss_tensors(logits_t, input, target, label)
    beta = _checks.check_beta(beta)
    offset = _checks.check_offset(offset)
    reduction = _checks.check_reduction(reduction)
    ignore_index = _checks.check_ignore_index(ignore_index)
    return _loss(logits_t, input, target, label, beta, offset, reduction, ignore_index, n, c)


def _rows(x, n, c, dtype):
    """x as contiguous (N, C) rows in the compute dtype; x itself, or a view, when nothing changes."""
    if x.dim() != 2:
        x = x.reshape(n, c)
    if x.dtype != dtype:
        x = x.to(dtype)
    return x if x.is_contiguous() else x.contiguous()


def _loss(logits_t, input, target, label, beta, offset, reduction, ignore_index, n, c):
    """klloss_v2 on checked arguments.

    Label values: on the CPU in plain eager mode (:func:`klloss._checks.host_checked`) the
    gather that reads :math:`z_y` refuses any label outside [0, C), before any other work; only
    then are the labels read on the host, to find rows to ignore or to name the bad value. So a
    batch without padding costs no label check at all. Elsewhere the mask of ignored rows is
    always built, on the device.
    """
    if label.dim() != 1:
        label = label.reshape(n)
    if label.dtype != torch.int64:
        label = label.long()  # gather's index type
    dtype = _compute_dtype(input)
    s, z = _rows(input, n, c, dtype), _rows(target, n, c, dtype)
    z_margin = None if logits_t is target else _rows(logits_t, n, c, dtype)
    need_grad = s.requires_grad and torch.is_grad_enabled()
    if (
        _checks.host_checked(label)
        and beta != math.inf
        and (ignore_index is None or not 0 <= ignore_index < c)
    ):
        # a plain eager call (host_checked): batchmean's 1/N is folded into the weights
        scale = None if reduction == "none" else 1.0 if reduction == "sum" else 1.0 / n
        try:
            out = _apply(s, z, z_margin, label, None, beta, offset, scale, need_grad)
            return out.reshape(input.shape[:-1]) if scale is None else out
        except RuntimeError:
            # some label is outside [0, C): padding to ignore, or a ValueError naming it
            ignored = _checks.label_mask(label, c, ignore_index)
            if ignored is None:  # the labels are fine; the failure was something else
                raise
    else:
        ignored = _checks.label_mask(label, c, ignore_index)
    eager = not torch.compiler.is_compiling() and not torch._C._are_functorch_transforms_active()
    fold = reduction == "batchmean" and ignored is None and eager
    scale = None if reduction == "none" else 1.0 / n if fold else 1.0
    out = _apply(s, z, z_margin, label, ignored, beta, offset, scale, need_grad)
    if reduction == "none":
        return out.reshape(input.shape[:-1])
    if reduction == "sum" or fold:
        return out
    # batchmean: L = (1/N') sum_i L_i over the N' rows not ignored (at least 1), counted on the device
    return out / n if ignored is None else out / (n - ignored.sum()).clamp(min=1)


class KLLossV2(nn.Module):
    r"""``nn.Module`` around :func:`klloss_v2`; ``forward(logits_t, input, target, label)``.

    ``beta``, ``offset``, ``reduction`` and ``ignore_index`` are checked once, here. See
    ``notebooks/01-walkthrough.ipynb``.
    """

    def __init__(self, beta, offset=ARTICLE_OFFSET, reduction="batchmean", ignore_index=-100):
        super().__init__()
        self.beta = _checks.check_beta(beta)
        self.offset = _checks.check_offset(offset)
        self.reduction = _checks.check_reduction(reduction)
        self.ignore_index = _checks.check_ignore_index(ignore_index)

    def forward(self, logits_t, input, target, label):
        n, c = _checks.check_loss_tensors(logits_t, input, target, label)
        return _loss(
            logits_t, input, target, label, self.beta, self.offset, self.reduction, self.ignore_index, n, c
        )

    def extra_repr(self):
        return (
            f"beta={self.beta}, offset={self.offset}, reduction={self.reduction!r}, "
            f"ignore_index={self.ignore_index}"
        )
