r"""``klloss_v2`` and ``KLLossV2``, the training loss: the arguments checked once, then one dispatch
point (:func:`_path`) to the form that computes it.

.. math::
    L = \frac{1}{N'}\sum_i \sum_c w_{ic}\, p_{ic} (\log p_{ic} - \log q_{ic}),
    \qquad w_{ic} = \frac{z'_{iy_i} - z'_{ic}}{\beta} + k.

The forms, each tested against the reference and the float64 oracle:

* ``"reference"`` -- :mod:`klloss.reference`, plain torch and autograd; also what
  ``torch.compile`` compiles and what ``torch.func`` transforms;
* ``"fused"`` -- :mod:`klloss._fused`, one ``autograd.Function`` with the gradient computed in the
  forward, for plain eager calls on the CPU;
* ``"triton"`` -- :mod:`klloss._triton`, fused Triton kernels, for CUDA tensors.

Walked through in ``notebooks/01-walkthrough.ipynb``; for training, ``notebooks/06-performance.ipynb``.
"""

import dataclasses
import functools

import torch
from torch import nn

from . import _checks, _fused, reference
from .options import ARTICLE_OFFSET, Options

IMPLEMENTATIONS = ("auto", "reference", "fused", "triton")
"""The values of ``impl``: ``"auto"`` picks by :func:`_path`; the others force a form."""


def _triton():
    from . import _triton  # imports Triton, when it is installed, only for CUDA tensors

    return _triton


# What "auto" picks, and why. Forward + backward, 1 thread, side by side in one run of `make bench`
# on an AMD EPYC (AVX512 and capped at AVX2, both at 05ad50a), with nothing else running
# (data/bench/cpu-amd-epyc-{avx512,avx2}.json); a fast path stays only where it beats the
# reference by 1.2x or more on the workload it is for:
#   CPU, plain eager: fused, faster than the eager reference at all six sizes measured, by 1.5x
#     (4096 x 10) to 2.54x (1024 x 1000); under AVX2 by 1.69x to 2.8x
#   CPU, under torch.compile: the reference, compiled, faster than the eager reference by 1.7x
#     (64 x 10) to 4.65x (4096 x 10); under AVX2 by 1.53x to 3.05x
#   CUDA: Triton when importable and it takes every tensor, else the reference. Not measured at
#     this code: no GPU was at hand (tools/device_check.sh measures it, docs/gpu.md)
def _path(logits_t, input, target, label, impl):
    """The one dispatch point: which form computes this call."""
    if impl != "auto":
        return impl
    if input.is_cuda and _triton().why_not(input, target, logits_t) is None:
        return "triton"  # registered with torch.library: torch.compile sees the kernels
    if torch.compiler.is_compiling():
        return "reference"  # the compiler fuses the plain operations itself
    if any(_checks.is_transformed(x) for x in (logits_t, input, target, label)):
        return "reference"  # torch.func differentiates and batches the plain operations
    return "fused" if input.device.type == "cpu" else "reference"


ARTICLE_CALL = (
    "klloss_v2(logits_t, input, target, label, beta): the teacher's logits first, the student's second"
)
STUDENT_FIRST_CALL = "margin_kd_loss(student_logits, teacher_logits, labels)"


def _loss(logits_t, input, target, label, options, impl, count=None):
    """Check the tensors, then compute with the form :func:`_path` picks; ``count``: the divisor
    of ``batchmean`` when the caller gives it (:func:`margin_kd_loss`'s ``num_items_in_batch``)."""
    _checks.check_loss_tensors(logits_t, input, target, label)
    kept = _checks.check_labels(label, input.shape[-1], options)
    if count is not None:  # sum_i L_i / count: the global batch's mean
        options = dataclasses.replace(options, reduction="sum")
    path = _path(logits_t, input, target, label, impl)
    if path == "fused" and any(_checks.is_transformed(x) for x in (logits_t, input, target, label)):
        raise ValueError(
            "impl='fused' cannot run under a torch.func transform (its autograd.Function has no rules "
            "for one): use impl='auto', which picks the reference there, or impl='reference'"
        )
    if path == "fused" and kept is not None:
        out = _fused.loss(input, target, logits_t, label, options, kept)
    elif path == "triton":
        if (reason := _triton().why_not(input, target, logits_t)) is not None:
            raise ValueError(f"impl={impl!r} cannot compute this call: {reason}")
        out = _triton().loss(input, target, None if logits_t is target else logits_t, label, options)
    else:
        out = reference.loss(input, target, logits_t, label, options)
    if count is None:
        return out
    # at least 1, as batchmean's own count: a global batch of padding alone gives 0, not 0/0
    return out / (count.clamp(min=1) if isinstance(count, torch.Tensor) else count)


def check_impl(impl):
    """``impl`` if it is one of :data:`IMPLEMENTATIONS`."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"impl must be one of {', '.join(map(repr, IMPLEMENTATIONS))}, got {impl!r}")
    return impl


_cached_options = functools.lru_cache(maxsize=64, typed=True)(Options)  # typed: True is not 1


def _options(beta, offset, reduction, ignore_index, *extensions):
    # a loss is called once per step with the same options: check each set of plain values once
    plain = (float, int, bool)
    if (
        type(beta) in plain
        and type(offset) in plain
        and type(reduction) is str
        and (ignore_index is None or type(ignore_index) is int)
        and all(type(x) in plain for x in extensions)
        and not torch.compiler.is_compiling()
    ):
        return _cached_options(beta, offset, reduction, ignore_index, *extensions)
    return Options(beta, offset, reduction, ignore_index, *extensions)


def klloss_v2(
    logits_t,
    input,
    target,
    label,
    beta,
    *,
    offset=ARTICLE_OFFSET,
    reduction="batchmean",
    ignore_index=-100,
    impl="auto",
):
    r"""klloss_v2: :math:`L=\frac1{N'}\sum_{i,c} w_{ic}\,p_{ic}(\log p_{ic}-\log q_{ic})`,
    :math:`w_{ic} = (z'_{iy_i} - z'_{ic})/\beta + k`.

    * ``logits_t`` -- teacher logits :math:`z'` for the margin, (..., C); detached;
    * ``input`` -- student logits :math:`s`, (..., C), same shape, dtype and device; the only
      argument that gets a gradient;
    * ``target`` -- teacher logits :math:`z` for :math:`p = \mathrm{softmax}(z)`, (..., C); detached
      (usually the same tensor as ``logits_t``);
    * ``label`` -- integer labels :math:`y`, shape ``input.shape[:-1]``, in [0, C) or equal to
      ``ignore_index``;
    * ``beta``, ``offset``, ``reduction``, ``ignore_index`` -- see :class:`klloss.Options`
      (``reduction="batchmean"``: the mean over the N' rows not ignored, 0 when there are none);
    * ``impl`` -- ``"auto"`` (default), or force a form: ``"reference"``, ``"fused"``, ``"triton"``.

    **At the edges.** A teacher class at -inf (masked vocabulary) has p = 0 and adds 0, in the loss
    and the gradient. A student class at -inf where the teacher puts mass gives +inf (as
    ``F.kl_div``), with the finite gradient :math:`qW - wp`. A row whose label the teacher rules out
    (:math:`z'_y = -\infty`, finite beta) has weights of -inf and no finite loss (NaN or -inf).
    A kept row with no teacher distribution (a NaN or +inf teacher logit, or every one -inf)
    gives NaN. An ignored row adds exactly 0 to the loss and the gradient, whatever it holds.
    No rows (N = 0): ``"none"`` gives an empty tensor, ``"sum"`` and ``"batchmean"`` give 0.

    **Labels.** int64, int32, int16, int8 or uint8; compared with ``ignore_index`` without
    wrapping (an ``ignore_index`` outside the dtype's range ignores no row). On the CPU in eager
    mode a label outside [0, C) that is not ``ignore_index`` raises ``ValueError`` naming
    ``label``. Elsewhere the labels are not read on the host: on a GPU a bad label fails a
    device-side assert, as in ``F.cross_entropy``; under ``torch.compile`` on the CPU, the
    compiled gather's index check raises ``RuntimeError`` ("index out of bounds").

    float16 and bfloat16 inputs are computed in float32 and the result is float32. Works under
    ``torch.compile(fullgraph=True)`` (``beta`` and ``offset`` may be arguments of the compiled
    function, as Python numbers: a tensor ``beta`` is refused there), ``torch.func`` (grad, vmap,
    jacrev, over any tensor argument) and double backward. See ``notebooks/01-walkthrough.ipynb``,
    and for training ``notebooks/06-performance.ipynb``.
    """
    options = _options(beta, offset, reduction, ignore_index)
    _checks.check_roles(("input", input), (("logits_t", logits_t), ("target", target)), ARTICLE_CALL)
    return _loss(logits_t, input, target, label, options, check_impl(impl))


class KLLossV2(nn.Module):
    r"""``nn.Module`` around :func:`klloss_v2`; ``forward(logits_t, input, target, label)``.

    The options are one :class:`klloss.Options` (``self.options``), checked here; ``beta``,
    ``offset``, ``reduction`` and ``ignore_index`` read it, and setting one checks the new value
    (``loss.beta = 0`` raises ``ValueError``). See ``notebooks/01-walkthrough.ipynb``.
    """

    def __init__(self, beta, offset=ARTICLE_OFFSET, reduction="batchmean", ignore_index=-100, impl="auto"):
        super().__init__()
        self.options = Options(beta, offset, reduction, ignore_index)
        self.impl = impl

    def _option(name):
        def get(self):
            return getattr(self.options, name)

        def set_(self, value):
            self.options = dataclasses.replace(self.options, **{name: value})

        return property(get, set_, doc=f"``options.{name}``; setting it checks the new value.")

    beta = _option("beta")
    offset = _option("offset")
    reduction = _option("reduction")
    ignore_index = _option("ignore_index")
    del _option

    @property
    def impl(self):
        """Which form computes the loss: one of :data:`IMPLEMENTATIONS`."""
        return self._impl

    @impl.setter
    def impl(self, value):
        self._impl = check_impl(value)

    def forward(self, logits_t, input, target, label):
        """:func:`klloss_v2` with this module's options: ``logits_t`` (teacher, for the margin),
        ``input`` (student), ``target`` (teacher), ``label``. For the student first, use
        :class:`MarginKDLoss`."""
        _checks.check_roles(("input", input), (("logits_t", logits_t), ("target", target)), ARTICLE_CALL)
        return _loss(logits_t, input, target, label, self.options, self._impl)

    def extra_repr(self):
        o = self.options
        return (
            f"beta={o.beta}, offset={o.offset}, reduction={o.reduction!r}, ignore_index={o.ignore_index}"
            + ("" if self._impl == "auto" else f", impl={self._impl!r}")
        )
