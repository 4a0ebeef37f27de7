"""What the explorer shows, computed in Python: the slider values, the rows (the article's
sample and one relabelled row), the oracle's intermediates and the fixed colour ranges."""

import numpy as np

from klloss import oracle
from klloss.data import Sample

from .strings import LABELS

# β on a log scale, 0.01 ... 1000: ten steps per decade, the article's 1.5 among them. Written as
# decimal strings, so each β is the double nearest to the number printed beside the slider.
_MANTISSAS = ("1", "1.2", "1.5", "2", "2.5", "3", "4", "5", "6", "8")
BETAS = (*tuple(float(f"{m}e{e}") for e in range(-2, 3) for m in _MANTISSAS), 1000.0)
"""The β values the β slider steps through, smallest first."""
OFFSETS = tuple(float(k) for k in range(17))
"""The offsets k the offset slider steps through: 0, 1, ..., 16."""
WRONG_LABEL = 1
"""The third row relabels sample 0 as this class: its teacher ranks classes 0, 3 and 4 above it."""


def check_sample(sample):
    """``sample`` if the explorer can show it; a TypeError or ValueError naming it otherwise."""
    if not isinstance(sample, Sample):
        raise TypeError(f"sample must be a klloss.data.Sample, got {type(sample).__name__}")
    if sample.input.shape[1] <= WRONG_LABEL:
        raise ValueError(f"sample must have more than {WRONG_LABEL} classes, got {sample.input.shape[1]}")
    if sample.beta not in BETAS:
        raise ValueError(
            f"sample.beta must be one of the β slider's values (course.explorer.BETAS), got {sample.beta}"
        )
    return sample


def _row(sample, i, label, name, in_batch):
    return {
        "name": name,
        "logits_t": sample.logits_t[i],
        "input": sample.input[i],
        "target": sample.target[i],
        "label": int(label),
        "in_batch": in_batch,
    }


def rows(sample, lang="en"):
    """The rows the explorer shows: the sample's own (``in_batch`` True; the loss is their mean)
    and one extra row, sample 0 relabelled as :data:`WRONG_LABEL`, whose teacher ranks wrong
    classes above the label (``in_batch`` False). A list of dicts of NumPy arrays and names."""
    sample = check_sample(sample)
    text = LABELS[lang]
    out = [_row(sample, i, y, text["row"].format(i=i, y=int(y)), True) for i, y in enumerate(sample.label)]
    out.append(_row(sample, 0, WRONG_LABEL, text["row_relabelled"].format(y=WRONG_LABEL), False))
    return out


def row_intermediates(row, beta, offset):
    """The oracle's intermediates (float64) for one row of :func:`rows` at ``(beta, offset)``."""
    return oracle.intermediates(
        row["logits_t"][None], row["input"][None], row["target"][None], np.array([row["label"]]), beta, offset
    )


def colour_domains(sample):
    """Half-widths of the two fixed, symmetric colour scales: the largest |w| and the largest
    |w p (log p - log q)| over every row and every slider setting, from the oracle.

    Both are linear in k and in 1/β, so their extremes lie at the corners of the slider ranges.
    """
    corners = [(b, k) for b in (BETAS[0], BETAS[-1]) for k in (OFFSETS[0], OFFSETS[-1])]
    w_max = weighted_max = 0.0
    for row in rows(sample):
        for beta, offset in corners:
            it = row_intermediates(row, beta, offset)
            w_max = max(w_max, float(np.abs(it["weight"]).max()))
            weighted_max = max(weighted_max, float(np.abs(it["weighted"]).max()))
    return {"w": w_max, "weighted": weighted_max}


def cells(sample, lang="en"):
    """The data the page computes from: one record per (row, class) with its logits s, z and the
    margin's teacher logits zt (the Vega data set ``cells``)."""
    values = []
    for r, row in enumerate(rows(sample, lang)):
        for c in range(len(row["input"])):
            values.append(
                {
                    "row": r,
                    "row_name": row["name"],
                    "y": row["label"],
                    "cls": c,
                    "in_batch": row["in_batch"],
                    "s": float(row["input"][c]),
                    "z": float(row["target"][c]),
                    "zt": float(row["logits_t"][c]),
                }
            )
    return values
