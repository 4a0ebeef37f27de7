"""klloss: correct, teachable reference implementations of the klloss_v2 distillation loss.

Start with ``notebooks/01-walkthrough.ipynb``; the symbols are in the glossary
(``docs/glossary.md``).

The float64 NumPy oracle (:mod:`klloss.oracle`) and the data loaders (:mod:`klloss.data`) need
NumPy alone, so they import where torch is not installed
(``make test-oracle`` runs the oracle's tests that way on every supported Python). Everything else
needs torch; without it, using any of it raises ModuleNotFoundError naming torch.
"""

from . import data, oracle

_NEEDS_TORCH = (
    "ARTICLE_OFFSET",
    "KLLossV2",
    "Trace",
    "klloss_v2",
    "klloss_v2_published",
    "margin",
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
    from .loss import ARTICLE_OFFSET, KLLossV2, klloss_v2, klloss_v2_published, margin, weight
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
    "Trace",
    "data",
    "klloss_v2",
    "klloss_v2_published",
    "margin",
    "oracle",
    "trace",
    "weight",
]
__version__ = "0.1.0"
