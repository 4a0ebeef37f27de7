r"""The loss from hidden states: :func:`margin_kd_loss_from_hidden` and :class:`MarginKDLossFromHidden`.

A language model's last layer turns hidden states :math:`h` (N, H) into logits
:math:`s = h W^\top + b` over a vocabulary of V classes; at N = 8192 positions and V = 128k,
one (N, V) float32 tensor is 4 GiB, and the loss needs several. This entry point never holds
them: it walks over the rows in chunks, and for each chunk

1. forms both chunks of logits in float32 (float64 if an argument is), :math:`s = hW^\top + b`
   and :math:`z = h_t W_t^\top + b_t`, never rounded to the inputs' bfloat16;
2. computes the chunk's loss and :math:`G = \partial L / \partial s` (C x V) with the library's
   own forms: on the CPU the fused form, in place (:func:`klloss._fused.rows_in_place`, the same
   operations as :class:`klloss._fused.FusedLoss`), elsewhere :func:`klloss.loss._loss` (Triton
   where it applies, else the reference under autograd);
3. turns G at once into the gradients of the inputs: :math:`\partial L/\partial h = G W`,
   :math:`\partial L/\partial W \mathrel{+}= G^\top h`, :math:`\partial L/\partial b \mathrel{+}= \sum_i G_i`.

Only the gradients are kept for the backward pass, which multiplies them by the upstream gradient.
Memory: on the CPU four C x V tensors, made once per call and reused by every chunk (the two
logits, overwritten by the loss's intermediates, and two more), so that the allocator never takes
and returns memory chunk after chunk; elsewhere a few C x V tensors a chunk. Plus float32 copies
of bfloat16 weights and the gradients, :math:`\partial L/\partial W` (V x H, float32) among them,
formed in the forward pass: where the weight's ``.grad`` is None (``optimizer.zero_grad()``'s
default), backward stores them as ``.grad`` without a copy; where a ``.grad`` is there
(accumulation), backward adds them into it, so that two V x H tensors are held at the peak. The loss is
the same as :func:`klloss.margin_kd_loss` on the full logits (``tests/test_linear.py`` checks the
value and the three gradients against it, with the error model stated there). The teacher gets
no gradient. Plain eager mode only: ``torch.compile`` and ``torch.func`` are not supported here.
Explained in ``docs/training.md``.
"""

import dataclasses
import math
import numbers

import torch
from torch import nn

from . import _checks, _fused, distill, loss, reference
from .options import ARTICLE_OFFSET

CALL = "margin_kd_loss_from_hidden(student_hidden, student_weight, teacher_hidden, teacher_weight, labels)"
CHUNK_SIZE = 64
"""The default ``chunk_size``: four (C, V) float32 tensors on a CPU, reused chunk after chunk.
``make bench`` measures it beside larger chunks (``benchmarks/bench_hidden.py``; the numbers are
beside :func:`_in_place`): on a CPU, at N = 4096 and V = 32000, the peak above the inputs,
weights and gradients stays under a quarter of the (N, V) float32 logits with the gradients None
before the step and also with them pre-allocated, at about the whole-logit path's time."""
VOCAB = ("equal", "truncate")
"""The values of ``vocab``: the two vocabularies must be equal, or the teacher's is cut to the
student's first V classes."""


def _check_matrix(name, x, rows=None, cols=None):
    """``x`` a float tensor of shape (rows, cols) (None: any)."""
    _checks._check_logits(name, x)
    if x.dim() != 2 or (rows is not None and x.shape[0] != rows) or (cols is not None and x.shape[1] != cols):
        want = f"({'V' if rows is None else rows}, {'H' if cols is None else cols})"
        raise ValueError(f"{name} must have shape {want}, got {tuple(x.shape)}")


def _check_bias(name, bias, v, device):
    if bias is None:
        return
    _checks._check_logits(name, bias)
    if bias.shape != (v,):
        raise ValueError(f"{name} must have shape ({v},), one number per class, got {tuple(bias.shape)}")
    if bias.device != device:
        raise ValueError(f"{name} must be on the same device as student_hidden ({device}), got {bias.device}")


def _check_vocab(vocab, v_s, v_t):
    """The number of teacher classes used: V_s, when the vocabularies match or ``vocab`` allows a cut."""
    if vocab not in VOCAB:
        raise ValueError(f"vocab must be one of {', '.join(map(repr, VOCAB))}, got {vocab!r}")
    if v_t == v_s:
        return v_s
    if vocab == "truncate" and v_t > v_s:
        return v_s  # the teacher's first V_s classes; p renormalised over them
    raise ValueError(
        f"teacher_weight has {v_t} classes (rows) and student_weight {v_s}: the vocabularies differ. "
        + (
            "vocab='truncate' uses the teacher's first V_s classes, when the student's vocabulary is "
            "a prefix of the teacher's; nothing is padded"
            if v_t > v_s
            else "A teacher with fewer classes than the student cannot be cut to it; nothing is padded"
        )
    )


def _check_tensors(h, w, b, h_t, w_t, b_t, y):
    """Shapes, dtypes and devices of every tensor argument; values unread."""
    _checks._check_logits("student_hidden", h)
    _check_matrix("student_weight", w, cols=h.shape[-1])
    _checks._check_logits("teacher_hidden", h_t)
    if h_t.shape[:-1] != h.shape[:-1]:
        raise ValueError(
            f"teacher_hidden must have the leading shape of student_hidden {tuple(h.shape[:-1])}, "
            f"got {tuple(h_t.shape)}"
        )
    _check_matrix("teacher_weight", w_t, cols=h_t.shape[-1])
    for name, x in (("student_weight", w), ("teacher_hidden", h_t), ("teacher_weight", w_t)):
        if x.device != h.device:
            raise ValueError(
                f"{name} must be on the same device as student_hidden ({h.device}), got {x.device}"
            )
    _check_bias("student_bias", b, w.shape[0], h.device)
    _check_bias("teacher_bias", b_t, w_t.shape[0], h.device)
    if w.shape[0] == 0:
        raise ValueError("student_weight must have at least one class (row), got shape (0, H)")
    _check_labels(y, h)


def _check_labels(y, h):
    if not isinstance(y, torch.Tensor) or y.dtype not in _checks._INTEGERS:
        raise TypeError(f"labels must be a tensor of integers, got {getattr(y, 'dtype', type(y).__name__)}")
    if y.shape != h.shape[:-1]:
        raise ValueError(
            f"labels must have shape student_hidden.shape[:-1] = {tuple(h.shape[:-1])}, got {tuple(y.shape)}"
        )
    if y.device != h.device:
        raise ValueError(f"labels must be on the same device as student_hidden ({h.device}), got {y.device}")


def _check_roles(students, teachers):
    """Refuse a swapped call (:func:`klloss._checks.check_roles`): a teacher tensor that requires
    grad while none of the student's does, or the student's hidden states passed as the teacher's.
    A weight both sides share (the same ``lm_head``) is allowed: the teacher's side is detached."""
    students = [(n, t) for n, t in students if t is not None]
    trained = [(n, t) for n, t in students if t.requires_grad]
    shared = [t for _, t in students[1:]]
    teachers = [(n, t) for n, t in teachers if t is not None and not any(t is s for s in shared)]
    with torch.no_grad():  # here only the identity check: the hidden states are never one tensor
        _checks.check_roles(students[0], teachers[:1], CALL)
    _checks.check_roles((trained or students)[0], tuple(teachers), CALL)


def _check_chunk_size(chunk_size):
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral):
        raise TypeError(f"chunk_size must be a positive integer, got {type(chunk_size).__name__}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    return int(chunk_size)


def _chunk_loss(s, z, y, options, impl, need_grad, work=None, exact_zeros=False):
    """(sum_i L_i, dL/ds or None) of one chunk of checked (C, V) logits, by the library's forms.
    ``work``: two spare (C, V) buffers; then the CPU fused form computes in place (:mod:`klloss._fused`:
    ``s``, ``z`` and the buffers overwritten, ``exact_zeros`` as there), else :func:`klloss.loss._loss`."""
    if work is not None:
        return _fused.rows_in_place(s, z, y, options, need_grad, work, exact_zeros)
    if not need_grad:
        return loss._loss(z, s, z, y, options, impl), None
    with torch.enable_grad():  # the forward of an autograd.Function runs without it
        s = s.detach().requires_grad_(True)
        total = loss._loss(z, s, z, y, options, impl)  # sum_i L_i
        (grad,) = torch.autograd.grad(total, s)  # G = d sum_i L_i / ds, (C, V)
    return total.detach(), grad


def _logits(h, w, b, out=None):
    """h W^T + b, in the dtype of ``w`` (the compute dtype), into ``out`` when given; ``b`` may be None."""
    return torch.matmul(h, w.T, out=out) if b is None else torch.addmm(b, h, w.T, out=out)


@dataclasses.dataclass
class _Inputs:
    """The arguments as the chunk loop uses them: (N, H) rows and weights in the compute dtype."""

    h: torch.Tensor  # (N, H_s), any float dtype
    w: torch.Tensor  # (V, H_s), compute dtype
    b: torch.Tensor | None  # (V,), compute dtype
    h_t: torch.Tensor  # (N, H_t)
    w_t: torch.Tensor  # (V, H_t), compute dtype, the first V classes when cut
    b_t: torch.Tensor | None
    y: torch.Tensor  # (N,)


# The in-place chunks, measured by `make bench` (benchmarks/bench_hidden.py) at 3a1dee4 on an AMD
# EPYC, 1 thread, N = 4096, H = 512, V = 32000, float32, while other work ran
# (data/bench/hidden/cpu-amd-epyc-avx512.json): the peak above the inputs, weights and gradients,
# over one (N, V) float32 tensor, 0.073 at chunk 64 and 0.135 at 128 with the gradients None before
# the step (0.214 and 0.276 with them pre-allocated), 1.02 at 1024; the time 1.17x, 0.80x and 0.65x
# the whole-logit path's. Before (one set of tensors a chunk, from the allocator each time, at
# bd337d3): 1.91 at chunk 1024, and at chunk 16 0.22 but 1.91x the time.
def _in_place(impl, device):
    """Whether the chunks go through the CPU fused form in place, in four (C, V) buffers made once
    per call: what :func:`klloss.loss._path` picks for a plain eager call on the CPU, or asked."""
    return impl == "fused" or (impl == "auto" and device.type == "cpu")


def _chunk(x, h, h_t, y, options, impl, need_grad, work):
    """(sum_i L_i, G or None) of one chunk of rows: its logits s = h W^T + b and z = h_t W_t^T + b_t,
    then the loss, in ``work`` (four (C', V) buffers, C' >= C) where given."""
    if work is None:
        s, z = _logits(h, x.w, x.b), _logits(h_t, x.w_t, x.b_t)  # s, z (C, V), never rounded to bfloat16
        return _chunk_loss(s, z, y, options, impl, need_grad)
    buffers = [buffer[: h.shape[0]] for buffer in work]
    for exact_zeros in (False, True):  # as the fused form: again where p = 0 met an infinity
        s = _logits(h, x.w, x.b, out=buffers[0])  # s = h W^T + b, (C, V)
        z = _logits(h_t, x.w_t, x.b_t, out=buffers[1])  # z = h_t W_t^T + b_t
        part, g = _chunk_loss(s, z, y, options, impl, need_grad, buffers[2:], exact_zeros)
        if exact_zeros or math.isfinite(part.item()):
            return part, g


def _forward(x, options, impl, chunk_size, count, needs):
    """(loss, dL/dh, dL/dW, dL/db) over every chunk of rows of ``x`` (:class:`_Inputs`): the loss
    ``sum_i L_i / count`` (``count`` None: the sum), each gradient where ``needs`` asks, else None."""
    chunk_options = dataclasses.replace(options, reduction="sum")  # every form computes every option
    dtype, device = x.w.dtype, x.h.device
    (n, v), need_h, need_w, need_b = (x.h.shape[0], x.w.shape[0]), *needs
    grad_h = torch.zeros_like(x.h) if need_h else None  # dL/dh, (N, H_s), in the hidden states' dtype
    grad_w = torch.zeros_like(x.w) if need_w else None  # dL/dW, (V, H_s), accumulated in the compute dtype
    grad_b = torch.zeros(v, dtype=dtype, device=device) if need_b else None  # dL/db, (V,)
    total = torch.zeros((), dtype=dtype, device=device)
    work = None
    if _in_place(impl, device) and n:  # s, z, and two for the loss: reused by every chunk
        work = [torch.empty(min(chunk_size, n), v, dtype=dtype, device=device) for _ in range(4)]
    for start in range(0, n, chunk_size):
        rows = slice(start, start + chunk_size)
        y, h, h_t = x.y[rows], x.h[rows].to(dtype), x.h_t[rows].to(dtype)
        if options.ignore_index is not None:
            kept = (y != options.ignore_index).unsqueeze(-1)  # label != ignore_index
            h = torch.where(kept, h, 0.0)  # an ignored row's hidden states reach no sum
            h_t = torch.where(kept, h_t, 0.0)
        part, g = _chunk(x, h, h_t, y, chunk_options, impl, any(needs), work)
        total += part  # sum_i L_i over the chunks so far
        if g is None:
            continue
        if count is not None:
            g.div_(count)  # G = dL/ds of this chunk's rows, in place: g is ours
        if need_h and grad_h.dtype == dtype:
            torch.matmul(g, x.w, out=grad_h[rows])  # dL/dh = G W, written in place
        elif need_h:
            grad_h[rows] = g @ x.w  # dL/dh = G W, rounded to the hidden states' dtype
        if need_w:
            grad_w.addmm_(g.T, h)  # dL/dW += G^T h
        if need_b:
            grad_b += g.sum(0)  # dL/db += sum_i G_i
    total = total if count is None else total / count  # L = sum_i L_i / count
    return total, grad_h, grad_w, grad_b


def _gradients(h, w, b, h_t, w_t, b_t, y, options, impl, chunk_size, count, needs):
    """(loss, dL/dh, dL/dW, dL/db) of checked arguments, the gradients in the inputs' shapes and
    dtypes, each None where ``needs`` does not ask for it."""
    dtype = reference.compute_dtype(*(x for x in (h, w, b, h_t, w_t, b_t) if x is not None))
    as_dtype = lambda x: None if x is None else x.to(dtype)  # noqa: E731  (no copy if it already is)
    x = _Inputs(
        h.reshape(-1, h.shape[-1]), as_dtype(w), as_dtype(b),
        h_t.reshape(-1, h_t.shape[-1]), as_dtype(w_t), as_dtype(b_t), y.reshape(-1),
    )  # fmt: skip
    out, grad_h, grad_w, grad_b = _forward(x, options, impl, chunk_size, count, needs)
    grad_h = None if grad_h is None else grad_h.reshape(h.shape)
    grad_w = None if grad_w is None else grad_w.to(w.dtype)
    grad_b = None if grad_b is None else grad_b.to(b.dtype)
    return out, grad_h, grad_w, grad_b


class _FromHidden(torch.autograd.Function):
    """``apply(h, w, b, h_t, w_t, b_t, y, options, impl, chunk_size, count, grad_enabled)``: the
    loss of checked arguments, its gradients computed in the forward pass (where grad mode was on
    at the call and the input requires grad) and kept; no graph of them (no double backward).

    The first backward scales the kept gradients in place and hands them out, so that nothing
    the size of the weight is copied; a later backward of a retained graph forms them again from
    the saved inputs (the chunked pass once more)."""

    @staticmethod
    def forward(ctx, h, w, b, h_t, w_t, b_t, y, options, impl, chunk_size, count, grad_enabled):
        wanted = ctx.needs_input_grad  # True for an input that requires grad, even under no_grad
        needs = (
            grad_enabled and wanted[0],
            grad_enabled and wanted[1],
            grad_enabled and b is not None and wanted[2],
        )
        ctx.settings = (options, impl, chunk_size, count, needs)
        out, *grads = _gradients(h, w, b, h_t, w_t, b_t, y, *ctx.settings)
        ctx.grads = grads  # intermediates, ours alone until backward hands them out
        ctx.save_for_backward(h, w, b, h_t, w_t, b_t, y)  # the inputs, for a second backward
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        grads = ctx.grads
        if grads is None:  # handed out already: a retained graph's next backward forms them again
            grads = _gradients(*ctx.saved_tensors, *ctx.settings)[1:]
        ctx.grads = None
        # dL/dx times the upstream gradient, in place: the buffers are handed out, not kept
        scaled = [None if g is None else g.mul_(grad_out) for g in grads]
        return scaled[0], scaled[1], scaled[2], *([None] * 9)


def _compute(h, w, h_t, w_t, y, b, b_t, options, impl, chunk_size, vocab, num_items_in_batch):
    """Check every argument, then the chunked loss."""
    if options.reduction == "none":
        raise ValueError(
            "reduction must be 'batchmean' or 'sum' here, got 'none': the gradients are computed "
            "in the forward pass, for one number"
        )
    count = distill.check_count(num_items_in_batch, options.reduction)
    impl = loss.check_impl(impl)
    chunk_size = _check_chunk_size(chunk_size)
    _check_tensors(h, w, b, h_t, w_t, b_t, y)
    _check_roles(
        (("student_hidden", h), ("student_weight", w), ("student_bias", b)),
        (("teacher_hidden", h_t), ("teacher_weight", w_t), ("teacher_bias", b_t)),
    )
    v = _check_vocab(vocab, w.shape[0], w_t.shape[0])
    w_t, b_t = w_t[:v], None if b_t is None else b_t[:v]  # the teacher's first V classes (all, when equal)
    _checks.check_labels(y, v, options)
    if options.reduction == "batchmean" and count is None:
        count = reference.rows_kept(y, options.ignore_index).sum().clamp(min=1)  # N', on the device
    grad_enabled = torch.is_grad_enabled()  # off in the forward of an autograd.Function: read it here
    return _FromHidden.apply(h, w, b, h_t, w_t, b_t, y, options, impl, chunk_size, count, grad_enabled)


def margin_kd_loss_from_hidden(
    student_hidden,
    student_weight,
    teacher_hidden,
    teacher_weight,
    labels,
    *,
    student_bias=None,
    teacher_bias=None,
    chunk_size=CHUNK_SIZE,
    vocab="equal",
    margin_scale=distill.ARTICLE_BETA,
    offset=ARTICLE_OFFSET,
    temperature=1.0,
    normalize=True,
    clamp=False,
    reduction="batchmean",
    ignore_index=-100,
    num_items_in_batch=None,
    impl="auto",
):
    r""":func:`klloss.margin_kd_loss` of the logits :math:`s = hW^\top + b` and
    :math:`z = h_t W_t^\top + b_t`, computed chunk by chunk without the (N, V) logits (module
    docstring); the value is the same, up to rounding.

    * ``student_hidden`` -- :math:`h`, (..., H_s), any float dtype; ``student_weight`` --
      :math:`W`, (V, H_s) (an ``lm_head.weight``); ``student_bias`` -- :math:`b`, (V,) or None.
      These three get gradients;
    * ``teacher_hidden`` -- :math:`h_t`, (..., H_t), the same leading shape; ``teacher_weight``
      -- :math:`W_t`, (V_t, H_t); ``teacher_bias`` -- (V_t,) or None. Detached;
    * ``labels`` -- :math:`y`, integers of shape ``student_hidden.shape[:-1]``, in [0, V) or
      ``ignore_index``;
    * ``chunk_size`` -- rows per chunk (:data:`CHUNK_SIZE`): the memory is about four
      ``chunk_size x V`` float32 tensors (module docstring);
    * ``vocab`` -- ``"equal"`` (V_t must equal V, else ``ValueError``) or ``"truncate"`` (V_t > V:
      the teacher's first V classes, :math:`p` renormalised over them; nothing is ever padded);
    * ``margin_scale``, ``offset``, ``temperature``, ``normalize``, ``clamp``, ``ignore_index``,
      ``num_items_in_batch``, ``impl`` -- as in :func:`klloss.margin_kd_loss`; ``reduction`` --
      ``"batchmean"`` or ``"sum"`` (the gradient is computed in the forward pass, for one number).

    The logits are formed in float32 (float64 if any argument is) from inputs of any float dtype;
    the gradients come back in each input's dtype. No double backward.
    """
    options = distill._options(margin_scale, offset, reduction, ignore_index, temperature, normalize, clamp)
    args = (student_hidden, student_weight, teacher_hidden, teacher_weight, labels)
    return _compute(*args, student_bias, teacher_bias, options, impl, chunk_size, vocab, num_items_in_batch)


class MarginKDLossFromHidden(nn.Module):
    r"""``nn.Module`` around :func:`margin_kd_loss_from_hidden`:
    ``MarginKDLossFromHidden(chunk_size=64)(h, lm_head.weight, h_t, teacher_head.weight, labels)``.

    The options are one :class:`klloss.Options` (``self.options``, ``beta`` the margin scale).
    ``forward`` takes the biases and ``num_items_in_batch`` per call.
    """

    def __init__(
        self,
        *,
        chunk_size=CHUNK_SIZE,
        vocab="equal",
        margin_scale=distill.ARTICLE_BETA,
        offset=ARTICLE_OFFSET,
        temperature=1.0,
        normalize=True,
        clamp=False,
        reduction="batchmean",
        ignore_index=-100,
        impl="auto",
    ):
        super().__init__()
        options = (margin_scale, offset, reduction, ignore_index, temperature, normalize, clamp)
        self.options = distill._options(*options)
        if reduction == "none":
            raise ValueError("reduction must be 'batchmean' or 'sum' here, got 'none'")
        if vocab not in VOCAB:
            raise ValueError(f"vocab must be one of {', '.join(map(repr, VOCAB))}, got {vocab!r}")
        self.chunk_size, self.vocab = _check_chunk_size(chunk_size), vocab
        self.impl = loss.check_impl(impl)

    def forward(
        self,
        student_hidden,
        student_weight,
        teacher_hidden,
        teacher_weight,
        labels,
        *,
        student_bias=None,
        teacher_bias=None,
        num_items_in_batch=None,
    ):
        """The loss of ``student_hidden`` (h) and ``student_weight`` (W) against the teacher's."""
        args = (student_hidden, student_weight, teacher_hidden, teacher_weight, labels, student_bias)
        rest = (self.options, self.impl, self.chunk_size, self.vocab, num_items_in_batch)
        return _compute(*args, teacher_bias, *rest)

    def extra_repr(self):
        o = self.options
        return (
            f"chunk_size={self.chunk_size}, vocab={self.vocab!r}, margin_scale={o.beta}, offset={o.offset}, "
            f"temperature={o.temperature}, normalize={o.normalize}, clamp={o.clamp}, "
            f"reduction={o.reduction!r}, ignore_index={o.ignore_index}"
            + ("" if self.impl == "auto" else f", impl={self.impl!r}")
        )
