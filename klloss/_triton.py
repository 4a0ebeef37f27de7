r"""klloss_v2 on a GPU as two Triton kernels: one pass over the logits forward, one backward.

Symbols as in the glossary: student logits :math:`s`, teacher logits :math:`z` (and :math:`z'`
for the margin, often the same tensor), labels :math:`y`, temperature :math:`T`,
:math:`p=\mathrm{softmax}(z/T)`, :math:`q=\mathrm{softmax}(s/T)`, the weight from the raw teacher
logits :math:`w_c=(z'_y-z'_c)/\beta+k`, clamped to :math:`\tilde w_c=\max(w_c, 0)` when
``clamp`` is set (else :math:`\tilde w = w`), and per row

.. math::
    L_i = f \sum_c \tilde w_c p_c (\log p_c - \log q_c), \qquad
    \frac{\partial L_i}{\partial s_c} = \frac{f}{T}(q_c \tilde W - \tilde w_c p_c),
    \quad \tilde W = \sum_c \tilde w_c p_c,

with the factor :math:`f = T^2` (:math:`T^2/k` with ``normalize``). The kernels compute the sum
for :math:`f = 1`, the gradient with its :math:`1/T`; :func:`loss` multiplies the row losses by
:math:`f` in torch, and autograd carries it to the gradient.

**Forward**: one program per row reads :math:`s` and :math:`z` once, in blocks, keeping only a
few numbers per row: the running maxima :math:`M_z, M_s` of :math:`z/T` and :math:`s/T`, the sums
:math:`S_z=\sum e^{z/T-M_z}`, :math:`S_s=\sum e^{s/T-M_s}`, :math:`A=\sum \tilde w e^{z/T-M_z}` and
:math:`B=\sum \tilde w e^{z/T-M_z}\,[(z/T-M_z)-(s/T-M_s)]`, all relative to the running maxima
and rescaled when one grows, so no error grows with a shift of the logits. Then
:math:`\tilde W=A/S_z` and :math:`L_i/f=(B-A(\log S_z-\log S_s))/S_z`. **Backward**: one more pass
writes :math:`g\,(q\tilde W-\tilde wp)/T` in the student's dtype. Five (N, C) transfers in all: s
and z twice, the gradient once. The student and the teachers may have different dtypes of
:data:`DTYPES`; the arithmetic is float32. Explained in ``notebooks/06-performance.ipynb``;
tested on the CPU under Triton's interpreter (``TRITON_INTERPRET=1``, ``tests/test_triton.py``)
and on a GPU (``tests/test_cuda.py``, ``tools/device_check.sh``).

Edge cases, as the reference: a class with :math:`p_c=0` (a teacher logit of :math:`-\infty`, or
one so low that :math:`e^{z_c/T-M_z}` is 0) adds 0 to the loss and the gradient even where its
weight is infinite. A row in which a class with an infinite weight has :math:`p_c>0` (say
:math:`z'_y=-\infty`, or :math:`\beta` so small that :math:`m/\beta` overflows) gets NaN in the
loss and the gradient (the reference gives NaN or :math:`\pm\infty` there, depending on signs);
with ``clamp``, a weight known to be negative (:math:`m=-\infty`, or :math:`m/\beta` below
float32's range) is clamped to 0 like any other. The sums are float32: a term
:math:`\tilde w e^{z/T-M_z} d` beyond :math:`2^{127}` relative to a block's running maximum makes
the row NaN, unless a later block's maximum discards it (:math:`e^{M_z-M_z'}=0`), as it does a
huge weight on a class that only looked likely early in the row. A row with no defined teacher
distribution (a NaN or :math:`+\infty` teacher logit, or every one :math:`-\infty`) is NaN too. A
label outside [0, C) that is not ``ignore_index`` is never used as an index: its row's loss and
gradient are NaN, on the device, with no host synchronisation. An ignored row reads nothing but
its label and gets exactly 0. Labels are read at their stride, in any integer dtype, and compared with
``ignore_index`` only where it fits that dtype (elsewhere no label can equal it).
"""

import math
import os

import torch

from . import _checks

TORCH_MIN = (2, 6)
"""torch.library.triton_op and wrap_triton are public from torch 2.6 (custom_op and
register_vmap from 2.4)."""
TRITON_MIN = (3, 2)
"""The Triton torch 2.6 was built with; older ones are not tried."""

MAX_BLOCK = 4096
"""Classes a program reads at a time: rows longer than this loop over blocks of it."""

try:
    import triton
    import triton.language as tl
except Exception:  # not installed, or broken: available() says False, nothing here raises
    triton = None

INTERPRETED = triton is not None and os.environ.get("TRITON_INTERPRET") == "1"
"""Triton decided at import, from TRITON_INTERPRET, to run kernels in its CPU interpreter."""


def _version(text):
    """(major, minor) of a version string, (0, 0) when unreadable."""
    try:
        return tuple(int(part) for part in text.split("+")[0].split(".")[:2])
    except (AttributeError, ValueError):
        return (0, 0)


TORCH_VERSION = torch.__version__
TRITON_VERSION = getattr(triton, "__version__", "0.0")


def _versions_ok():
    if _version(TORCH_VERSION) < TORCH_MIN or _version(TRITON_VERSION) < TRITON_MIN:
        return False
    library = torch.library
    return all(hasattr(library, name) for name in ("triton_op", "wrap_triton", "custom_op", "register_vmap"))


def _why_not_here(device):
    """Why the kernels cannot run on ``device`` here, in words; None where they can. Never raises."""
    if triton is None:
        return "Triton is not installed (import triton failed)"
    if not (_versions_ok() and _OPS_DEFINED):
        least = ".".join(map(str, TORCH_MIN)), ".".join(map(str, TRITON_MIN))
        return (
            f"the Triton kernels need torch >= {least[0]} and Triton >= {least[1]}, "
            f"found torch {TORCH_VERSION} and Triton {TRITON_VERSION}"
        )
    try:
        kind = torch.device(device).type
    except Exception:
        return f"{device!r} is not a device"
    if kind == "cpu" and not INTERPRETED:
        return (
            "the tensors are on the CPU, where the Triton kernels run only in Triton's interpreter: "
            "set TRITON_INTERPRET=1 before klloss is imported, or use a CUDA device"
        )
    if kind not in ("cuda", "cpu"):
        return f"the Triton kernels run on CUDA devices, got tensors on {kind!r}"
    return None


def available(device):
    """True where :func:`loss` can run: Triton importable and recent enough, torch recent enough,
    and ``device`` a CUDA device, or the CPU with ``TRITON_INTERPRET=1`` set before import.
    Never raises."""
    return _why_not_here(device) is None


DTYPES = (torch.float32, torch.float16, torch.bfloat16)
"""Input dtypes the kernels take (arithmetic in float32 inside)."""


def why_not(input, target=None, logits_t=None):
    """Why :func:`loss` cannot compute with student logits ``input`` (and the teacher tensors
    ``target``, ``logits_t``, where given) here, in words; None where it can: :func:`available`
    on the device of ``input``, and every tensor of a dtype of :data:`DTYPES`. Never raises."""
    if not isinstance(input, torch.Tensor):
        return f"input must be a torch.Tensor, got {type(input).__name__}"
    reason = _why_not_here(input.device)
    if reason is not None:
        return reason
    for name, x in (("input", input), ("target", target), ("logits_t", logits_t)):
        if isinstance(x, torch.Tensor) and x.dtype not in DTYPES:
            taken = ", ".join(str(d).removeprefix("torch.") for d in DTYPES)
            return f"the Triton kernels take {taken}, got {name} of dtype {x.dtype}"
    return None


def handles(input):
    """True where :func:`loss` takes ``input``: :func:`why_not` has nothing to say."""
    return why_not(input) is None


def _launch_shape(c):
    """(BLOCK, num_warps) for rows of ``c`` classes."""
    block = min(max(16, triton.next_power_of_2(c)), MAX_BLOCK)
    return block, 4 if block <= 1024 else 8 if block <= 4096 else 16


FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _weight_scale(beta):
    """How the kernels form m / beta: (RECIPROCAL, number, limit). Multiplying by 1/beta rounded
    once to float32 where that is a normal float32 (beta <= 2**126), else a correctly rounded
    division; ``limit``, the largest margin whose m / beta stays inside float32's range."""
    inverse = 1.0 / beta
    limit = min(FLOAT32_MAX * beta, math.inf)
    return (True, inverse, limit) if inverse >= 2.0**-126 else (False, beta, limit)


STATS = 6
"""Numbers kept per row between the kernels: M_s, log S_s, M_z, log S_z, W, z'_y."""

_OPS_DEFINED = False

if triton is not None:
    # 2**-64, exact in float32: scales two factors whose product is tested against 2**127
    _TWO_TO_MINUS_64 = tl.constexpr(2.0**-64)

    @triton.jit
    def _weight(
        z_label, zm, limit, scale, offset,
        BETA_INF: tl.constexpr, RECIPROCAL: tl.constexpr, CLAMP: tl.constexpr,
    ):  # fmt: skip
        # (w, finite): w = (z'_y - z'_c) / beta + k from the raw teacher logits, the margin formed
        # first, then scaled; NaN where w is not a finite float32 (an infinite logit, or m / beta
        # past float32's range), chosen, not computed, so that no lane overflows; beta = inf:
        # w = k exactly. CLAMP: max(w, 0), and 0 where w is known negative beyond float32's range
        if BETA_INF:
            w = tl.zeros_like(zm) + offset
            if CLAMP:
                w = tl.maximum(w, 0.0)  # max(k, 0)
            finite = zm == zm  # every lane (NaN logits aside)
        else:
            z_label = tl.zeros_like(zm) + z_label  # z'_y in every lane
            both = (tl.abs(zm) < float("inf")) & (tl.abs(z_label) < float("inf"))
            margin = tl.where(both, z_label, 0.0) - tl.where(both, zm, 0.0)  # m = z'_y - z'_c
            finite = both & (tl.abs(margin) <= limit)  # |m / beta| fits in float32
            margin = tl.where(finite, margin, 0.0)
            if RECIPROCAL:
                w = margin * scale + offset  # m (1/beta) + k
            else:
                w = tl.math.div_rn(margin, tl.zeros_like(margin) + scale) + offset  # m / beta + k
            if CLAMP:
                # m = -inf, or m / beta < -FLOAT32_MAX <= -k: w < 0, so max(w, 0) = 0 (NaN stays NaN)
                negative = (finite == 0) & (z_label < zm)
                w = tl.where(finite, tl.maximum(w, 0.0), 0.0)  # max(w, 0)
                finite = finite | negative
            w = tl.where(finite, w, float("nan"))
        return w, finite

    @triton.jit
    def _tempered(x, inv_temperature):
        # x / T as x (1/T); +inf (no distribution) made NaN by choice, so that no inf - inf follows
        return tl.where(x == float("inf"), float("nan"), x) * inv_temperature

    @triton.jit
    def _finite_max(running, block):
        # (M', R, R_old): the running maximum updated, a finite stand-in for it (0 while every
        # value seen is -inf) and for the old one (R itself on the first block)
        new = tl.maximum(running, block)
        ref = tl.where(new == float("-inf"), 0.0, new)
        return new, ref, tl.where(running == float("-inf"), ref, running)

    @triton.jit
    def _row_label(label_ptr, row, label_stride, C, ignore_index, HAS_IGNORE: tl.constexpr):
        # (y, ignored, bad): the label at its stride, widened to int64 before any comparison
        # (ignore_index fits the label's dtype, loss() sees to it); bad = outside [0, C) and not
        # ignored, then replaced by 0
        y = tl.load(label_ptr + row * label_stride).to(tl.int64)
        ignored = y != y  # False
        if HAS_IGNORE:
            ignored = y == ignore_index
        bad = ((y < 0) | (y >= C)) & (ignored == 0)
        return tl.where(bad, 0, y), ignored, bad

    @triton.jit
    def _forward_kernel(
        s_ptr, z_ptr, zm_ptr, label_ptr, loss_ptr, stats_ptr,
        C, s_stride, z_stride, zm_stride, label_stride, limit, scale, offset, inv_temperature, ignore_index,
        HAS_IGNORE: tl.constexpr, SEPARATE_MARGIN: tl.constexpr, BETA_INF: tl.constexpr,
        RECIPROCAL: tl.constexpr, CLAMP: tl.constexpr, BLOCK: tl.constexpr, STATS: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0).to(tl.int64)
        y, ignored, bad = _row_label(label_ptr, row, label_stride, C, ignore_index, HAS_IGNORE)
        if ignored:  # L_i = 0; nothing read
            tl.store(loss_ptr + row, 0.0)
            return
        s_row, z_row, zm_row = s_ptr + row * s_stride, z_ptr + row * z_stride, zm_ptr + row * zm_stride
        z_label = 0.0  # z'_y, read once (a bad label reads class 0, and its row is NaN below)
        if not BETA_INF:
            z_label = tl.load(zm_row + y).to(tl.float32)
        neg_inf = float("-inf")
        max_z, max_s = neg_inf, neg_inf  # M_z, M_s: running maxima
        sum_z, sum_s, big_a, big_b = 0.0, 0.0, 0.0, 0.0  # S_z, S_s, A, B (relative to M_z, M_s)
        inf_weight_max = neg_inf  # the largest z among classes whose weight is not finite
        overflowed = False  # B holds a term beyond float32's range, not yet discarded
        for start in range(0, C, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            inside = cols < C
            s = _tempered(tl.load(s_row + cols, mask=inside, other=neg_inf).to(tl.float32), inv_temperature)
            zm = tl.load(z_row + cols, mask=inside, other=neg_inf).to(tl.float32)  # raw z
            z = _tempered(zm, inv_temperature)  # z/T
            if SEPARATE_MARGIN:  # z' another tensor than z
                zm = tl.load(zm_row + cols, mask=inside, other=0.0).to(tl.float32)
            w, finite = _weight(z_label, zm, limit, scale, offset, BETA_INF, RECIPROCAL, CLAMP)
            max_z, ref_z, old_z = _finite_max(max_z, tl.max(z, 0))  # M_z'
            max_s, ref_s, old_s = _finite_max(max_s, tl.max(s, 0))  # M_s'
            e_z = tl.exp(z - ref_z)  # e^(z - M_z'): 0 where z = -inf (p = 0)
            e_s = tl.exp(s - ref_s)  # e^(s - M_s')
            live = finite & (e_z != 0.0)  # the classes that enter A and B
            w_e = tl.where(live, w, 0.0) * e_z  # w e^(z - M_z')
            # d = (z - M_z') - (s - M_s'): log p - log q up to a constant of the row
            d = (tl.where(live, z, ref_z) - ref_z) - (tl.where(live, s, ref_s) - ref_s)
            alpha = tl.exp(old_z - ref_z)  # e^(M_z - M_z')
            shift = (ref_z - old_z) - (ref_s - old_s)  # (M_z' - M_z) - (M_s' - M_s)
            # w e d at the edge of float32's range or past it (a huge weight on this block's
            # maximum, which a later maximum may discard): chosen 0 and flagged, not computed;
            # |w e| |d| > 2**127 tested on both scaled by 2**-64, a product that cannot overflow
            over = (tl.abs(w_e) * _TWO_TO_MINUS_64) * (tl.abs(d) * _TWO_TO_MINUS_64) > 0.5
            w_e_d = tl.where(over, 0.0, w_e) * d  # w e^(z - M_z') d
            # a term past the range stays in B unless e^(M_z - M_z') = 0 discards the old B
            overflowed = (overflowed & (alpha != 0.0)) | (tl.max(over.to(tl.int32), 0) > 0)
            # B' relative to M_z', M_s': e^(M_z - M_z') (B - A shift) + sum w e d, with A rescaled
            # before it meets the shift (alpha A shift is of the size of B'; A shift may overflow)
            big_b = alpha * big_b - (alpha * big_a) * shift + tl.sum(w_e_d, 0)
            big_a = alpha * big_a + tl.sum(w_e, 0)  # A' = e^(M_z - M_z') A + sum w e
            sum_z = alpha * sum_z + tl.sum(e_z, 0)  # S_z'
            sum_s = tl.exp(old_s - ref_s) * sum_s + tl.sum(e_s, 0)  # S_s'
            inf_weight_max = tl.maximum(inf_weight_max, tl.max(tl.where(finite, neg_inf, z), 0))
        # every teacher or every student logit -inf: no distribution, NaN chosen, not log 0
        empty = (sum_z == 0.0) | (sum_s == 0.0)
        sum_z, sum_s = tl.where(empty, float("nan"), sum_z), tl.where(empty, float("nan"), sum_s)
        max_z, max_s = tl.where(empty, float("nan"), max_z), tl.where(empty, float("nan"), max_s)
        log_sum_z, log_sum_s = tl.log(sum_z), tl.log(sum_s)
        # L_i = sum w p ((z - M_z) - (s - M_s) - log S_z + log S_s) = (B - A (log S_z - log S_s)) / S_z
        loss = (big_b - big_a * (log_sum_z - log_sum_s)) / sum_z
        big_w = big_a / sum_z  # W = sum w p
        # a weight that is not finite on a class with p > 0, or a bad label: no finite loss
        broken = bad | overflowed | (tl.exp((inf_weight_max - max_z) - log_sum_z) > 0.0)
        loss = tl.where(broken, float("nan"), loss)
        big_w = tl.where(broken, float("nan"), big_w)
        tl.store(loss_ptr + row, loss)
        # what backward needs: log q = (s - M_s) - log S_s, log p = (z - M_z) - log S_z, W, z'_y
        stats = stats_ptr + row * STATS
        tl.store(stats, max_s)
        tl.store(stats + 1, log_sum_s)
        tl.store(stats + 2, max_z)
        tl.store(stats + 3, log_sum_z)
        tl.store(stats + 4, big_w)
        tl.store(stats + 5, z_label)

    @triton.jit
    def _backward_kernel(
        grad_out_ptr, s_ptr, z_ptr, zm_ptr, label_ptr, stats_ptr, grad_ptr,
        C, grad_out_stride, s_stride, z_stride, zm_stride, label_stride, grad_stride,
        limit, scale, offset, inv_temperature, ignore_index,
        HAS_IGNORE: tl.constexpr, SEPARATE_MARGIN: tl.constexpr, BETA_INF: tl.constexpr,
        RECIPROCAL: tl.constexpr, CLAMP: tl.constexpr, BLOCK: tl.constexpr, STATS: tl.constexpr,
    ):  # fmt: skip
        row = tl.program_id(0).to(tl.int64)
        _label, ignored, _bad = _row_label(label_ptr, row, label_stride, C, ignore_index, HAS_IGNORE)
        grad_row = grad_ptr + row * grad_stride
        if ignored:  # a zero gradient
            for start in range(0, C, BLOCK):
                cols = start + tl.arange(0, BLOCK)
                zero = tl.zeros([BLOCK], dtype=grad_ptr.dtype.element_ty)
                tl.store(grad_row + cols, zero, mask=cols < C)
            return
        g = tl.load(grad_out_ptr + row * grad_out_stride).to(tl.float32) * inv_temperature  # g / T
        stats = stats_ptr + row * STATS
        max_s, log_sum_s = tl.load(stats), tl.load(stats + 1)
        max_z, log_sum_z = tl.load(stats + 2), tl.load(stats + 3)
        big_w, z_label = tl.load(stats + 4), tl.load(stats + 5)
        s_row, z_row, zm_row = s_ptr + row * s_stride, z_ptr + row * z_stride, zm_ptr + row * zm_stride
        for start in range(0, C, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            inside = cols < C
            s = _tempered(
                tl.load(s_row + cols, mask=inside, other=float("-inf")).to(tl.float32), inv_temperature
            )
            zm = tl.load(z_row + cols, mask=inside, other=float("-inf")).to(tl.float32)  # raw z
            z = _tempered(zm, inv_temperature)  # z/T
            if SEPARATE_MARGIN:
                zm = tl.load(zm_row + cols, mask=inside, other=0.0).to(tl.float32)
            w, _finite = _weight(z_label, zm, limit, scale, offset, BETA_INF, RECIPROCAL, CLAMP)
            q = tl.exp((s - max_s) - log_sum_s)  # q = e^((s/T - M_s) - log S_s), exact in a shift of s
            p = tl.exp((z - max_z) - log_sum_z)  # p = e^((z/T - M_z) - log S_z)
            w_p = tl.where(p == 0.0, 0.0, w) * p  # w p, 0 where p = 0 whatever w is
            grad = g * (q * big_w - w_p)  # (g / T) (q W - w p)
            tl.store(grad_row + cols, grad.to(grad_ptr.dtype.element_ty), mask=inside)

    _OPS_DEFINED = True


def _plain_eager(*tensors):
    """Neither compiling nor any of ``tensors`` a tensor subclass (a fake or functional tensor of a
    trace) or wrapped by a torch.func transform: the kernels can be launched directly, without the
    ops' dispatch (which costs more than a launch at small sizes). None entries are skipped."""
    if torch.compiler.is_compiling():
        return False
    plain = (torch.Tensor, torch.nn.Parameter)
    return all(x is None or (type(x) in plain and not _checks.is_transformed(x)) for x in tensors)


def _launch(kernel, n, *args, **meta):
    """Run ``kernel`` on ``n`` programs. Under the interpreter, or on plain tensors outside any
    tracing, it is called as it is (under the interpreter the ops are opaque to torch.compile);
    otherwise through wrap_triton, so that torch.compile sees the kernels inside the ops."""
    tensors = [x for x in args if isinstance(x, torch.Tensor)]
    launcher = kernel if INTERPRETED or _plain_eager(*tensors) else torch.library.wrap_triton(kernel)
    launcher[(n,)](*args, **meta)


def _meta(c, beta, offset, ignore_index, z_margin, temperature, clamp):
    """The kernels' scalar arguments (limit, scale, offset, 1/T, ignore_index) and compile-time
    switches."""
    block, warps = _launch_shape(c)
    reciprocal, scale, limit = (True, 0.0, math.inf) if beta == math.inf else _weight_scale(beta)
    switches = {
        "HAS_IGNORE": ignore_index is not None,
        "SEPARATE_MARGIN": z_margin is not None,
        "BETA_INF": beta == math.inf,
        "RECIPROCAL": reciprocal,
        "CLAMP": clamp,
        "BLOCK": block,
        "STATS": STATS,
        "num_warps": warps,
    }
    scalars = (limit, scale, offset, 1.0 / temperature, 0 if ignore_index is None else ignore_index)
    return scalars, switches


def _rows_forward(
    s: torch.Tensor,
    z: torch.Tensor,
    z_margin: torch.Tensor | None,
    label: torch.Tensor,
    beta: float,
    offset: float,
    ignore_index: int | None,
    temperature: float,
    clamp: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    # (L_i / f, stats): per-row losses without the factor f, float32 (N,), and
    # (M_s, log S_s, M_z, log S_z, W, z'_y) per row
    n, c = s.shape
    loss = s.new_empty(n, dtype=torch.float32)
    stats = s.new_zeros((n, STATS), dtype=torch.float32)
    if n:
        zm = z if z_margin is None else z_margin
        scalars, switches = _meta(c, beta, offset, ignore_index, z_margin, temperature, clamp)
        strides = (s.stride(0), z.stride(0), zm.stride(0), label.stride(0))
        _launch(_forward_kernel, n, s, z, zm, label, loss, stats, c, *strides, *scalars, **switches)
    return loss, stats


def _rows_backward(
    grad_rows: torch.Tensor,
    s: torch.Tensor,
    z: torch.Tensor,
    z_margin: torch.Tensor | None,
    label: torch.Tensor,
    stats: torch.Tensor,
    beta: float,
    offset: float,
    ignore_index: int | None,
    temperature: float,
    clamp: bool,
) -> torch.Tensor:
    # dL/ds = (g_i / T) (q W - w p), in the dtype of s
    n, c = s.shape
    grad = torch.empty((n, c), dtype=s.dtype, device=s.device)
    if n:
        zm = z if z_margin is None else z_margin
        scalars, switches = _meta(c, beta, offset, ignore_index, z_margin, temperature, clamp)
        strides = [x.stride(0) for x in (grad_rows, s, z, zm, label, grad)]
        args = (grad_rows, s, z, zm, label, stats, grad, c, *strides, *scalars)
        _launch(_backward_kernel, n, *args, **switches)
    return grad


def _fake_forward(s, z, z_margin, label, beta, offset, ignore_index, temperature, clamp):
    n = s.shape[0]
    return s.new_empty(n, dtype=torch.float32), s.new_empty((n, STATS), dtype=torch.float32)


def _fake_backward(grad_rows, s, z, z_margin, label, stats, beta, offset, ignore_index, temperature, clamp):
    return torch.empty(s.shape, dtype=s.dtype, device=s.device)


def _second_order(grad_rows, s, z, z_margin, label, stats, options, upstream):
    r"""The vector-Jacobian product of :math:`G = (g/T)(q\tilde W - \tilde wp)` with ``upstream``
    :math:`v`, in plain torch (double backward is rare):
    :math:`\partial/\partial g_i = \sum_c v_c(q_c\tilde W - \tilde w_cp_c)/T` and
    :math:`\partial/\partial s_j = g\,\tilde W q_j (v_j - \sum_c v_c q_c)/T^2`. Ignored rows are 0,
    selected before any arithmetic, whatever they hold."""
    beta, offset, ignore_index, temperature, clamp = options
    inv_t = 1.0 / temperature
    kept = None if ignore_index is None else (label != ignore_index).unsqueeze(-1)  # (N, 1)

    def keep(x):  # x on the rows kept, 0 on the others
        return x if kept is None else torch.where(kept, x, 0.0)

    stats = keep(stats)
    max_s, log_sum_s, max_z, log_sum_z, big_w, z_label = (x.unsqueeze(-1) for x in stats.unbind(-1))
    q = torch.exp((keep(s.float()) * inv_t - max_s) - log_sum_s)  # q = e^((s/T - M_s) - log S_s)
    p = torch.exp((keep(z.float()) * inv_t - max_z) - log_sum_z)  # p = e^((z/T - M_z) - log S_z)
    zm = keep((z if z_margin is None else z_margin).float())  # raw z'
    w = torch.full_like(p, offset) if beta == math.inf else (z_label - zm) / beta + offset  # w
    if clamp:
        w = w.clamp(min=0.0)  # max(w, 0)
    w_p = torch.where(p == 0, 0.0, w) * p  # w p, 0 where p = 0
    v, g = keep(upstream.float()), keep(grad_rows.float().unsqueeze(-1))
    d_grad_rows = (v * (q * big_w - w_p)).sum(-1) * inv_t  # sum_c v_c (q_c W - w_c p_c) / T
    d_s = g * big_w * q * (v - (v * q).sum(-1, keepdim=True)) * inv_t**2  # g W q (v - v.q) / T^2
    return d_grad_rows.to(grad_rows.dtype), keep(d_s).to(s.dtype)


class _Backward(torch.autograd.Function):
    """:math:`G = (g/T)(qW - wp)` by the backward kernel, itself differentiable (double backward,
    ``torch.func``) through :func:`_second_order`."""

    generate_vmap_rule = True

    @staticmethod
    def forward(grad_rows, s, z, z_margin, label, stats, beta, offset, ignore_index, temperature, clamp):
        options = (beta, offset, ignore_index, temperature, clamp)
        return torch.ops.klloss.rows_backward(grad_rows, s, z, z_margin, label, stats, *options)

    @staticmethod
    def setup_context(ctx, inputs, output):
        grad_rows, s, z, z_margin, label, stats, *options = inputs
        ctx.save_for_backward(grad_rows, s, z, z_margin, label, stats)
        ctx.options = tuple(options)

    @staticmethod
    def backward(ctx, upstream):
        d_grad_rows, d_s = _second_order(*ctx.saved_tensors, ctx.options, upstream)
        return d_grad_rows, d_s, *(None,) * 9


def _as_rows(x, dim, batch):
    """A vmapped argument as rows: the vmapped dimension first (broadcast where there is none),
    folded into the rows. None stays None."""
    if x is None:
        return None
    x = x.expand(batch, *x.shape) if dim is None else x.movedim(dim, 0)
    return x.reshape(-1, *x.shape[2:])


def _vmap_forward(info, in_dims, s, z, z_margin, label, *options):
    # the loss is row-wise: fold the vmapped dimension into the rows, then unfold
    rows = [
        _as_rows(x, d, info.batch_size) for x, d in zip((s, z, z_margin, label), in_dims[:4], strict=True)
    ]
    loss, stats = torch.ops.klloss.rows_forward(*rows, *options)
    return (loss.reshape(info.batch_size, -1), stats.reshape(info.batch_size, -1, STATS)), (0, 0)


def _vmap_backward(info, in_dims, grad_rows, s, z, z_margin, label, stats, *options):
    tensors = (grad_rows, s, z, z_margin, label, stats)
    rows = [_as_rows(x, d, info.batch_size) for x, d in zip(tensors, in_dims[:6], strict=True)]
    grad = torch.ops.klloss.rows_backward(*rows, *options)
    return grad.reshape(info.batch_size, -1, grad.shape[-1]), 0


def _define_ops():
    """Register the two kernels as the ops ``klloss::rows_forward`` and ``klloss::rows_backward``:
    through ``triton_op`` (torch.compile traces into them and sees the kernels), or, under the
    interpreter, as opaque custom ops with shape-only fake implementations. Autograd and vmap
    rules either way."""
    define = torch.library.custom_op if INTERPRETED else torch.library.triton_op
    forward = define("klloss::rows_forward", _rows_forward, mutates_args=())
    backward = define("klloss::rows_backward", _rows_backward, mutates_args=())
    if INTERPRETED:
        forward.register_fake(_fake_forward)
        backward.register_fake(_fake_backward)
    torch.library.register_vmap("klloss::rows_forward", _vmap_forward)
    torch.library.register_vmap("klloss::rows_backward", _vmap_backward)


class _Loss(torch.autograd.Function):
    """The two ops as one differentiable function of ``s``, in the form ``torch.func`` needs
    (``setup_context``; vmap from the ops' own vmap rules). Returns (L_i / f, stats)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(s, z, z_margin, label, beta, offset, ignore_index, temperature, clamp):
        plain = _plain_eager(s, z, z_margin, label)
        rows_forward = _rows_forward if plain else torch.ops.klloss.rows_forward
        return rows_forward(s, z, z_margin, label, beta, offset, ignore_index, temperature, clamp)

    @staticmethod
    def setup_context(ctx, inputs, output):
        s, z, z_margin, label, *options = inputs
        ctx.save_for_backward(s, z, z_margin, label, output[1])
        ctx.options = tuple(options)
        ctx.mark_non_differentiable(output[1])

    @staticmethod
    def backward(ctx, grad_rows, _grad_stats):
        tensors = (grad_rows, *ctx.saved_tensors)
        # a plain backward builds no graph: the kernel, without the differentiable wrapper
        plain = not torch.is_grad_enabled() and _plain_eager(*tensors)
        grad = _rows_backward(*tensors, *ctx.options) if plain else _Backward.apply(*tensors, *ctx.options)
        return grad, *(None,) * 8


def _rows(x, n, c):
    """x as (N, C) rows whose classes are contiguous (a view when it already is one)."""
    x = x.reshape(n, c)
    return x if x.stride(-1) == 1 else x.contiguous()


def _comparable(ignore_index, dtype):
    """``ignore_index`` where a label of integer ``dtype`` can equal it, else None (no label is
    ignored): then every comparison of labels with it, in the label's dtype, is exact."""
    if ignore_index is None:
        return None
    info = torch.iinfo(dtype)
    return ignore_index if info.min <= ignore_index <= info.max else None


def loss(input, target, logits_t, label, options):
    r"""klloss_v2 by the Triton kernels, on checked arguments: the value :func:`klloss.klloss_v2`
    returns for :class:`klloss.options.Options` ``options``, differentiable in ``input``.

    ``input`` :math:`s`, ``target`` :math:`z`, ``logits_t`` :math:`z'` (None when it is
    ``target``), shape (..., C), each a dtype of :data:`DTYPES` (the gradient has the dtype of
    ``input``); ``label`` :math:`y`, shape (...), any integer dtype and strides. The result is
    float32. ``batchmean`` divides by the rows kept, counted on the device.
    """
    c = input.shape[-1]
    n = input.numel() // c if c else 0
    s, z = _rows(input, n, c), _rows(target, n, c)
    z_margin = None if logits_t is None else _rows(logits_t, n, c)
    y = label.reshape(n)  # a view where it can be one, of any stride (0 included): the kernels read it
    ignore_index = _comparable(options.ignore_index, y.dtype)
    switches = (options.beta, options.offset, ignore_index, options.temperature, options.clamp)
    rows, _ = _Loss.apply(s, z, z_margin, y, *switches)
    if options.factor != 1.0:
        rows = rows * options.factor  # L_i = f sum_c w p (log p - log q); autograd carries f to the gradient
    if options.reduction == "none":
        return rows.reshape(input.shape[:-1])
    total = rows.sum()
    if options.reduction == "sum":
        return total
    if ignore_index is None:
        return total / max(n, 1)
    # batchmean: sum_i L_i / max(1, rows kept), the count kept on the device (in the label's
    # dtype, which holds ignore_index)
    return total / (y != ignore_index).sum().clamp(min=1)


if _OPS_DEFINED and _versions_ok():
    _define_ops()
else:
    _OPS_DEFINED = False
