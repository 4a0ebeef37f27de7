"""Loaders for ``sample.json`` (the article's inputs) and ``article_printed.json`` (every
number the article prints, as printed). Both ship inside the package, in
``klloss/article_data/`` (its ``README.md`` describes them), and are read with
:mod:`importlib.resources`, so they load from an installed wheel as from a clone. NumPy alone
reads them; torch is needed only for :meth:`Sample.tensors`.

Used by every notebook, first in ``notebooks/01-walkthrough.ipynb``.
"""

import dataclasses
import json
from importlib import resources

import numpy as np

PACKAGE_DATA = "article_data"
"""The folder inside the package that holds the article's data files."""


def _read_json(name):
    # files() is the package as a Traversable: a folder in a clone, or inside a wheel or zip
    path = resources.files(__package__).joinpath(PACKAGE_DATA).joinpath(name)
    return json.loads(path.read_text(encoding="utf-8"))


@dataclasses.dataclass(frozen=True)
class Sample:
    """The article's sample batch: N = 2 samples, C = 5 classes (NumPy arrays)."""

    logits_t: np.ndarray
    input: np.ndarray
    target: np.ndarray
    label: np.ndarray
    beta: float

    def tensors(self, dtype=None):
        """The arguments of :func:`klloss.klloss_v2` as a dict of torch tensors.

        ``dtype`` defaults to torch.float32, the dtype the article uses.
        """
        import torch

        dtype = dtype or torch.float32
        return {
            "logits_t": torch.tensor(self.logits_t, dtype=dtype),
            "input": torch.tensor(self.input, dtype=dtype),
            "target": torch.tensor(self.target, dtype=dtype),
            "label": torch.tensor(self.label, dtype=torch.long),
            "beta": self.beta,
        }


def load_sample():
    """The article's sample inputs, from ``klloss/article_data/sample.json``."""
    raw = _read_json("sample.json")
    return Sample(
        logits_t=np.array(raw["logits_t"], dtype=np.float64),
        input=np.array(raw["input"], dtype=np.float64),
        target=np.array(raw["target"], dtype=np.float64),
        label=np.array(raw["label"], dtype=np.int64),
        beta=float(raw["beta"]),
    )


@dataclasses.dataclass(frozen=True)
class PrintedStep:
    """One tensor the article prints: its key (our name for the step), the article's own
    label, the numbers as printed (strings) and as floats (same nesting)."""

    key: str
    label: str
    group: str
    text: object
    values: np.ndarray
    note: str = ""

    @property
    def count(self):
        """How many numbers the article prints for this step."""
        return int(self.values.size)


def load_article_printed():
    """Every number the article prints, as a dict ``key -> PrintedStep`` in the article's order.

    Nothing is corrected: ``text`` keeps each number exactly as printed (``"-0.0000"``).
    """
    raw = _read_json("article_printed.json")
    steps = {}
    for step in raw["steps"]:
        steps[step["key"]] = PrintedStep(
            key=step["key"],
            label=step["label"],
            group=step["group"],
            text=step["printed"],
            values=np.array(step["printed"], dtype=np.float64),
            note=step.get("note", ""),
        )
    return steps
