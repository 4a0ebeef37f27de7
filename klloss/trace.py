"""Every intermediate tensor of klloss_v2, in the order the article prints them, from the
reference itself (:func:`klloss.reference.intermediates`): no second implementation.

Walked through in ``notebooks/01-walkthrough.ipynb``.
"""

import dataclasses

import torch

from . import _checks, reference
from .options import ARTICLE_OFFSET, Options


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
        """Each intermediate as a pandas DataFrame (rows are samples, columns classes): a dict in
        the article's order; ``per_sample`` is one column, ``loss`` 1 x 1. Needs pandas
        (``pip install 'klloss[frames]'``)."""
        try:
            import pandas as pd
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(
                "Trace.to_frames needs pandas: pip install 'klloss[frames]'", name="pandas"
            ) from error

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
    """klloss_v2 on (N, C) logits, keeping every intermediate; arguments as for
    :func:`klloss.klloss_v2`, every label a class (no ``ignore_index``). The loss equals
    ``klloss_v2(..., reduction="batchmean")``. See ``notebooks/01-walkthrough.ipynb``."""
    options = Options(beta, offset, "batchmean", None)
    _checks.check_strict(logits_t, input, target, label)
    parts = reference.intermediates(input, target, logits_t, label, options)
    del parts["kept"]
    # the article shows the margin whatever beta is; the reference needs it only for finite beta
    parts["margin"] = reference.margin(logits_t.detach().to(parts["log_input"].dtype), label.long())
    loss = parts["per_sample"].sum() / input.shape[0]  # L = (1/N) sum_i L_i
    return Trace(**parts, loss=loss)
