"""klloss: the klloss_v2 knowledge-distillation loss, correct, tested and teachable.

* :func:`margin_kd_loss` / :class:`MarginKDLoss` -- for training: the student's logits first,
  the settings distillers use (temperature, normalisation, a global count), wrong orders refused
  (:mod:`klloss.distill`);
* :func:`margin_kd_loss_from_hidden` / :class:`MarginKDLossFromHidden` -- the same loss from
  hidden states and an output layer, chunk by chunk, without the (N, V) logits
  (:mod:`klloss.linear`); :func:`margin_kd_loss_topk` -- from a stored top-k teacher, which
  :func:`topk_store` builds (:mod:`klloss.topk`);
* :func:`klloss_v2` / :class:`KLLossV2` -- the same loss in the article's argument order (both
  reach one dispatch point to the fastest correct form: :mod:`klloss.loss`);
* :func:`klloss_v2_reference` -- the readable plain-torch form, the spine (:mod:`klloss.reference`);
* :func:`klloss_v2_published` -- the article's algorithm, step for step (:mod:`klloss.published`);
* :class:`Options` -- every option (beta, offset, reduction, ignore_index, temperature, ...) as
  one checked value;
* :func:`trace` -- every intermediate; :func:`margin`, :func:`weight`; :func:`negative_weight_share`;
* :mod:`klloss.oracle` -- a float64 NumPy reference; :mod:`klloss.data` -- the article's sample.

Start with ``notebooks/01-walkthrough.ipynb``; the symbols are in ``docs/glossary.md``. The oracle
and the data loaders need NumPy alone (``make test-oracle`` runs them without torch); everything
else needs torch, and without it raises ModuleNotFoundError naming torch.
"""

from . import data, oracle

_NEEDS_TORCH = (
    "ARTICLE_OFFSET",
    "KLLossV2",
    "MarginKDLoss",
    "MarginKDLossFromHidden",
    "Options",
    "Parts",
    "TopKStore",
    "Trace",
    "klloss_v2",
    "klloss_v2_published",
    "klloss_v2_reference",
    "margin",
    "margin_kd_loss",
    "margin_kd_loss_from_hidden",
    "margin_kd_loss_topk",
    "negative_weight_share",
    "topk_store",
    "trace",
    "weight",
)

try:
    import torch  # noqa: F401  (only to learn whether it is there)
except ModuleNotFoundError as error:
    if error.name != "torch":  # torch is there but broken: say so, do not hide it
        raise
    _torch_missing = error
else:
    from .diagnostics import negative_weight_share
    from .distill import MarginKDLoss, Parts, margin_kd_loss
    from .linear import MarginKDLossFromHidden, margin_kd_loss_from_hidden
    from .loss import KLLossV2, klloss_v2
    from .options import ARTICLE_OFFSET, Options
    from .published import klloss_v2_published
    from .reference import klloss_v2_reference, margin, weight
    from .topk import TopKStore, margin_kd_loss_topk, topk_store
    from .trace import Trace, trace


def __getattr__(name):
    # reached only for names not set above: those that need torch, when it is not installed
    if name in _NEEDS_TORCH:
        raise ModuleNotFoundError(
            f"klloss.{name} needs torch, which is not installed (pip install torch); "
            "klloss.oracle and klloss.data work without it",
            name="torch",
        ) from _torch_missing
    raise AttributeError(f"module 'klloss' has no attribute {name!r}")


__all__ = [
    "ARTICLE_OFFSET",
    "KLLossV2",
    "MarginKDLoss",
    "MarginKDLossFromHidden",
    "Options",
    "Parts",
    "TopKStore",
    "Trace",
    "data",
    "klloss_v2",
    "klloss_v2_published",
    "klloss_v2_reference",
    "margin",
    "margin_kd_loss",
    "margin_kd_loss_from_hidden",
    "margin_kd_loss_topk",
    "negative_weight_share",
    "oracle",
    "topk_store",
    "trace",
    "weight",
]
__version__ = "0.1.0"
