"""klloss: correct, teachable reference implementations of the klloss_v2 distillation loss.

Start with ``notebooks/01-walkthrough.ipynb``; the symbols are in :mod:`klloss.glossary`.
"""

from . import analysis, data, errata, explorer, glossary, oracle, plotting
from .loss import ARTICLE_OFFSET, KLLossV2, klloss_v2, klloss_v2_published, margin, weight
from .trace import Trace, trace

__all__ = [
    "ARTICLE_OFFSET",
    "analysis",
    "KLLossV2",
    "Trace",
    "data",
    "errata",
    "explorer",
    "glossary",
    "klloss_v2",
    "klloss_v2_published",
    "margin",
    "oracle",
    "plotting",
    "trace",
    "weight",
]
__version__ = "0.1.0"
