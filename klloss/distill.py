r"""The student-first entry point for training: :func:`margin_kd_loss` and :class:`MarginKDLoss`.

The same loss as :func:`klloss.klloss_v2`, through the same dispatch point, in the order and with
the settings distillers use elsewhere (TRL's ``generalized_jsd_loss``, torchtune's
``ForwardKLLoss``): the student's logits first, then the teacher's, then the labels, every option
keyword-only.

.. math::
    L = \frac{1}{N'} \sum_i f \sum_c \tilde w_{ic}\, p_{ic} (\log p_{ic} - \log q_{ic}),\qquad
    w_{ic} = \frac{z_{iy_i} - z_{ic}}{\beta} + k,

with :math:`p = \mathrm{softmax}(z/T)`, :math:`q = \mathrm{softmax}(s/T)`, :math:`\tilde w = w` (or
:math:`\max(w, 0)` with ``clamp=True``) and :math:`f = T^2/k` (``normalize=True``, the default:
at ``margin_scale=inf`` this is plain KD at temperature T, so a mixing weight means what it means
in KD) or :math:`f = T^2`. The margin scale :math:`\beta` is called ``margin_scale`` here: in TRL
and Liger-Kernel ``beta`` is the mix of a generalised JSD, a different thing.

Shown in a training loop in ``notebooks/06-performance.ipynb``; ``docs/training.md`` shows
gradient accumulation and several processes with ``num_items_in_batch``.
"""

import numbers
import re
from typing import NamedTuple

import torch
from torch import nn

from . import _checks, loss, reference
from .options import ARTICLE_OFFSET

ARTICLE_BETA = 1.5
"""The margin scale of the article's worked example, the default ``margin_scale``."""


class Parts(NamedTuple):
    r"""What :func:`margin_kd_loss` returns with ``return_parts=True``; per row, shape
    ``labels.shape``, ignored rows 0:

    * ``loss`` -- the loss, reduced as asked (differentiable);
    * ``per_row`` -- :math:`L_i` (differentiable);
    * ``weight_sum`` -- :math:`W_i = \sum_c \tilde w_{ic} p_{ic}`, the row's weight (with
      ``normalize``, :math:`W_i/k` is it relative to KD);
    * ``kl_to_optimum`` -- :math:`\mathrm{KL}(q^*_i \| q_i)`, how far the student is from the
      distribution that minimises the row, :math:`q^* = \tilde w p / W`;
    * ``lower_bound`` -- :math:`L^{\min}_i = -f\,W_i\,\mathrm{KL}(q^*_i\|p_i)`, the row's minimum.

    ``per_row = f * weight_sum * kl_to_optimum + lower_bound``, with :math:`f` =
    :attr:`klloss.Options.factor`. Where :math:`q^*` is no distribution (a negative weight on a
    class the teacher gives mass, which ``clamp=True`` rules out), the last two are NaN: the row
    has no minimum. The last three are detached.
    """

    loss: torch.Tensor
    per_row: torch.Tensor
    weight_sum: torch.Tensor
    kl_to_optimum: torch.Tensor
    lower_bound: torch.Tensor


def check_count(num_items_in_batch, reduction):
    """``num_items_in_batch``: None, a positive integer, or a tensor holding one (not read on the
    host); only with ``batchmean``."""
    if num_items_in_batch is None:
        return None
    if reduction != "batchmean":
        raise ValueError(
            f"num_items_in_batch divides the sum of the rows, so it needs reduction='batchmean', "
            f"got reduction={reduction!r}"
        )
    if isinstance(num_items_in_batch, torch.Tensor):
        if num_items_in_batch.numel() != 1 or num_items_in_batch.dtype == torch.bool:
            raise ValueError(
                "num_items_in_batch must be a number or a one-element tensor of a number, got a "
                f"tensor of shape {tuple(num_items_in_batch.shape)} and dtype {num_items_in_batch.dtype}"
            )
        return num_items_in_batch.reshape(())
    if isinstance(num_items_in_batch, bool) or not isinstance(num_items_in_batch, numbers.Real):
        raise TypeError(
            f"num_items_in_batch must be a number or a tensor, got {type(num_items_in_batch).__name__}"
        )
    if not num_items_in_batch > 0:
        raise ValueError(f"num_items_in_batch must be > 0, got {num_items_in_batch}")
    if num_items_in_batch != int(num_items_in_batch):
        raise ValueError(
            f"num_items_in_batch must be a whole number of rows (the labels not equal to ignore_index "
            f"in the whole batch), got {num_items_in_batch}"
        )
    return num_items_in_batch


STUDENT_FIRST_NAMES = {
    "beta": "margin_scale",
    "input": "student_logits",
    "target": "teacher_logits",
    "logits_t": "teacher_logits",
    "label": "labels",
}
"""The article's names of the arguments, and this entry point's: its errors use its own."""


def _renamed(error):
    """``error`` again, its message in this entry point's names (its checks are shared with
    :func:`klloss.klloss_v2`, whose arguments have the article's names)."""
    words = re.split(r"(\b(?:beta|input|target|logits_t|label)\b)", str(error))
    text = "".join(STUDENT_FIRST_NAMES.get(w, w) for w in words)
    return type(error)(
        text.replace("teacher_logits must have the same shape as teacher_logits", "teacher_logits")
    )


def _options(margin_scale, offset, reduction, ignore_index, temperature, normalize, clamp):
    try:
        return loss._options(margin_scale, offset, reduction, ignore_index, temperature, normalize, clamp)
    except (TypeError, ValueError) as error:
        raise _renamed(error) from None


def _no_beta(unexpected):
    """A keyword this entry point does not take; ``beta`` gets a pointer, as a TRL habit."""
    if "beta" in unexpected:
        raise TypeError(
            "margin_kd_loss takes no beta: the article's beta, the scale of the teacher's margins, is "
            "margin_scale here; TRL's and Liger-Kernel's beta, the mix of a generalised JSD, has no "
            "counterpart (this loss is a weighted forward KL)"
        )
    name = next(iter(unexpected))
    raise TypeError(f"margin_kd_loss got an unexpected keyword argument {name!r}")


def _compute(student_logits, teacher_logits, labels, options, impl, num_items_in_batch, return_parts):
    try:
        return _compute_named(
            student_logits, teacher_logits, labels, options, impl, num_items_in_batch, return_parts
        )
    except (TypeError, ValueError) as error:
        if str(error).startswith(
            ("student_logits", "teacher_logits", "labels", "num_items_in_batch", "impl")
        ):
            raise
        raise _renamed(error) from None


def _compute_named(student_logits, teacher_logits, labels, options, impl, num_items_in_batch, return_parts):
    count = check_count(num_items_in_batch, options.reduction)
    teachers = (("teacher_logits", teacher_logits),)
    _checks.check_roles(("student_logits", student_logits), teachers, loss.STUDENT_FIRST_CALL)
    z, s, y = teacher_logits, student_logits, labels
    if not return_parts:
        return loss._loss(z, s, z, y, options, loss.check_impl(impl), count)
    # the parts come from the readable form, in the same pass as the loss
    _checks.check_loss_tensors(z, s, z, y)
    _checks.check_labels(y, s.shape[-1], options)
    per_row, kept, big_w, kl_star, lower = reference.identity_parts(s, z, z, y, options)
    total = per_row.sum() / count if count is not None else reference.reduce(per_row, kept, options.reduction)
    return Parts(total, per_row, big_w, kl_star, lower)


def margin_kd_loss(
    student_logits,
    teacher_logits,
    labels,
    *,
    margin_scale=ARTICLE_BETA,
    offset=ARTICLE_OFFSET,
    temperature=1.0,
    normalize=True,
    clamp=False,
    reduction="batchmean",
    ignore_index=-100,
    num_items_in_batch=None,
    return_parts=False,
    impl="auto",
    **unexpected,
):
    r"""klloss_v2 with the student first: :math:`\frac{1}{N'}\sum_i f\sum_c \tilde w_{ic}
    p_{ic}(\log p_{ic} - \log q_{ic})` (module docstring).

    * ``student_logits`` -- :math:`s`, (..., C), any float dtype; the only argument that gets a
      gradient;
    * ``teacher_logits`` -- :math:`z`, (..., C), detached; may have another float dtype (a float32
      teacher beside a bfloat16 student: computed in float32);
    * ``labels`` -- :math:`y`, integers, shape ``student_logits.shape[:-1]``, in [0, C) or
      ``ignore_index``;
    * ``margin_scale`` -- :math:`\beta` (the article's ``beta``; not TRL's JSD ``beta``), > 0,
      ``inf`` for plain KD; ``offset`` -- :math:`k`;
    * ``temperature`` -- :math:`T` for p and q, the loss times :math:`T^2` (OUR EXTENSION: the
      margin stays the raw logits');
    * ``normalize`` -- divide by :math:`k` (default True): at ``margin_scale=inf`` the loss is
      ``T**2 * F.kl_div(log_softmax(s/T), log_softmax(z/T), "batchmean", log_target=True)``;
    * ``clamp`` -- :math:`\max(w, 0)` (OUR VARIANT): every row bounded below, so a teacher that
      ranks a class far above the label cannot drive the student's logits without bound;
    * ``reduction`` -- ``"batchmean"`` (over the rows not ignored), ``"sum"`` or ``"none"``;
      ``ignore_index`` -- rows labelled so count for nothing (-100; None: none);
    * ``num_items_in_batch`` -- the rows kept in the whole batch (every micro-batch, every
      process), an int or a tensor (never read on the host): ``batchmean`` divides by it instead of
      this call's count (``docs/training.md``);
    * ``return_parts`` -- also return :math:`L_i`, :math:`W_i`, :math:`\mathrm{KL}(q^*\|q)` and the
      row's minimum, as :class:`Parts`;
    * ``impl`` -- ``"auto"``, or a form of :data:`klloss.loss.IMPLEMENTATIONS`.

    Raises ``ValueError`` when the arguments look swapped: the teacher requires grad while the
    student does not, or the same tensor is passed as both.
    """
    if unexpected:
        _no_beta(unexpected)
    options = _options(margin_scale, offset, reduction, ignore_index, temperature, normalize, clamp)
    return _compute(student_logits, teacher_logits, labels, options, impl, num_items_in_batch, return_parts)


class MarginKDLoss(nn.Module):
    r"""``nn.Module`` around :func:`margin_kd_loss`:
    ``MarginKDLoss(margin_scale=1.5, temperature=2.0)(student_logits, teacher_logits, labels)``.

    The options are one :class:`klloss.Options` (``self.options``, with ``beta`` the margin
    scale), checked here. ``forward`` takes ``num_items_in_batch`` and ``return_parts`` per call.
    """

    def __init__(
        self,
        *,
        margin_scale=ARTICLE_BETA,
        offset=ARTICLE_OFFSET,
        temperature=1.0,
        normalize=True,
        clamp=False,
        reduction="batchmean",
        ignore_index=-100,
        impl="auto",
        **unexpected,
    ):
        super().__init__()
        if unexpected:
            _no_beta(unexpected)
        self.options = _options(margin_scale, offset, reduction, ignore_index, temperature, normalize, clamp)
        self.impl = loss.check_impl(impl)

    def forward(self, student_logits, teacher_logits, labels, *, num_items_in_batch=None, return_parts=False):
        """The loss of ``student_logits`` (s) against ``teacher_logits`` (z) at ``labels`` (y)."""
        args = (self.options, self.impl, num_items_in_batch, return_parts)
        return _compute(student_logits, teacher_logits, labels, *args)

    def extra_repr(self):
        o = self.options
        text = (
            f"margin_scale={o.beta}, offset={o.offset}, temperature={o.temperature}, "
            f"normalize={o.normalize}, clamp={o.clamp}, reduction={o.reduction!r}, "
            f"ignore_index={o.ignore_index}"
        )
        return text + ("" if self.impl == "auto" else f", impl={self.impl!r}")
