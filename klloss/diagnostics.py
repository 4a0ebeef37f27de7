r"""What to compute about a teacher before training with klloss_v2.

A class the teacher ranks above the label by more than :math:`k\beta` gets a negative weight
:math:`w_c = (z_y - z_c)/\beta + k < 0`. A row with one has no minimum: its loss is unbounded
below, and training can diverge (``notebooks/04-what-it-teaches.ipynb``,
``notebooks/05-real-data.ipynb``).
"""

import torch

from . import _checks, reference
from .options import ARTICLE_OFFSET, Options


@torch.no_grad()
def negative_weight_share(logits_t, label, beta, *, offset=ARTICLE_OFFSET, ignore_index=-100):
    r"""The share of rows (not ignored) where some class gets a negative weight: a 0-d float tensor
    in [0, 1] (0 when no row is kept). ``logits_t`` (..., C) teacher logits, ``label`` (...).

    A row has a negative weight exactly when :math:`\max_c z_c > z_y + k\beta`. See
    ``notebooks/05-real-data.ipynb`` for what that share does to training.
    """
    options = Options(beta, offset, "none", ignore_index)
    _checks.check_loss_tensors(logits_t, logits_t, logits_t, label)
    _checks.check_labels(label, logits_t.shape[-1], options)
    kept = reference.rows_kept(label, options.ignore_index)
    y = torch.where(kept, label, 0).long().unsqueeze(-1)
    z = logits_t.detach().float() if logits_t.dtype in (torch.float16, torch.bfloat16) else logits_t.detach()
    # some w_c < 0  <=>  max_c (z_c - z_y) > k beta  (the margin first, then compared)
    negative = (z.amax(-1) - z.gather(-1, y).squeeze(-1)) > options.offset * options.beta
    return (negative & kept).sum() / kept.sum().clamp(min=1)
