"""Every intermediate tensor of klloss_v2, in the order the article prints them.

Walked through in ``notebooks/01-walkthrough.ipynb``.
"""

import dataclasses

import torch
import torch.nn.functional as F

from . import _checks
from .loss import ARTICLE_OFFSET, _prepared, margin, weight


@dataclasses.dataclass(frozen=True)
class Trace:
    """The intermediates of one klloss_v2 evaluation (detached tensors, article's order).

    ``log_input`` log q (N, C); ``log_target`` log p (N, C); ``target_prob`` p (N, C);
    ``output`` p (log p - log q) (N, C); ``margin`` m (N, C); ``weight`` w (N, C);
    ``weighted`` w p (log p - log q) (N, C); ``per_sample`` L_i (N,); ``loss`` L (scalar).
    """

    log_input: torch.Tensor
    log_target: torch.Tensor
    target_prob: torch.Tensor
    output: torch.Tensor
    margin: torch.Tensor
    weight: torch.Tensor
    weighted: torch.Tensor
    per_sample: torch.Tensor
    loss: torch.Tensor

    def names(self):
        """Field names, in the article's order."""
        return [f.name for f in dataclasses.fields(self)]

    def to_frames(self, class_names=None):
        """Each intermediate as a pandas DataFrame: rows are samples, columns are classes.

        ``per_sample`` is a one-column frame and ``loss`` a 1 x 1 frame. Returns a dict in the
        article's order.
        """
        import pandas as pd

        n, c = self.log_input.shape
        samples = pd.Index([f"sample {i}" for i in range(n)], name="sample")
        classes = pd.Index(class_names or [f"class {j}" for j in range(c)], name="class")
        frames = {}
        for name in self.names():
            values = getattr(self, name).cpu().double().numpy()
            if values.ndim == 2:
                frames[name] = pd.DataFrame(values, index=samples, columns=classes)
            elif values.ndim == 1:
                frames[name] = pd.DataFrame({name: values}, index=samples)
            else:
                frames[name] = pd.DataFrame({name: [values.item()]}, index=["batchmean"])
        return frames


@torch.no_grad()
def trace(logits_t, input, target, label, beta, *, offset=ARTICLE_OFFSET):
    """Compute klloss_v2 keeping every intermediate; arguments as for :func:`klloss.klloss_v2`.

    Checks its arguments like :func:`klloss.klloss_v2`. The loss equals
    ``klloss_v2(..., reduction="batchmean")``. See ``notebooks/01-walkthrough.ipynb``.
    """
    beta, offset, _ = _checks.check_all(logits_t, input, target, label, beta, offset)
    s, z, z_margin = _prepared(logits_t, input, target)
    # log q = log_softmax(s)
    log_input = F.log_softmax(s, dim=1)
    # log p = log_softmax(z)
    log_target = F.log_softmax(z, dim=1)
    # p = exp(log p)
    target_prob = log_target.exp()
    # p (log p - log q)
    output = target_prob * (log_target - log_input)
    # m = z_y - z
    m = margin(z_margin, label)
    # w = m / beta + k
    w = weight(m, beta, offset)
    # w p (log p - log q)
    weighted = w * output
    # L_i = sum_c w p (log p - log q)
    per_sample = weighted.sum(dim=1)
    # L = (1/N) sum_i L_i
    loss = per_sample.sum() / input.shape[0]
    return Trace(log_input, log_target, target_prob, output, m, w, weighted, per_sample, loss)
