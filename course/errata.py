"""What the article prints, what is true, and why each printed tensor cannot be right.

Every check here works on printed numbers alone, allowing for their rounding: a number printed
with d decimals stands for any value within half a unit of its last digit. An invariant is
*broken* only when no values within that rounding could satisfy it, so a correct tensor rounded
to 4 decimals never fails a check (``tests/test_errata.py`` shows both sides).

Walked through in ``notebooks/02-errata.ipynb``.
"""

import numpy as np

from klloss import ARTICLE_OFFSET
from klloss.data import load_article_printed, load_sample

SLACK = 1e-12
"""Added to every tolerance, for float64 arithmetic on the printed numbers."""


def half_unit(text):
    """Half a unit in the last printed place of each number, same nesting as ``text``.

    ``"0.7415"`` -> 5e-5, ``"3.0"`` -> 0.05, ``"3"`` -> 0.5.
    """

    def one(t):
        decimals = len(t.split(".")[1]) if "." in t else 0
        return 0.5 * 10.0 ** (-decimals)

    return np.vectorize(one, otypes=[float])(np.array(text, dtype=object))


def _logsumexp(x):
    top = x.max(axis=-1, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=-1, keepdims=True)))[..., 0]


# Each check takes printed arrays and their half-units; it returns True when the invariant is
# BROKEN beyond what rounding allows.


def log_softmax_positive(log_q, h):
    """log-softmax values are log-probabilities: all <= 0."""
    return bool(np.any(log_q - h > SLACK))


def log_softmax_not_normalised(log_q, h):
    """Each log-softmax row must log-sum-exp to 0 (exp of the row sums to 1).

    log-sum-exp moves by at most max|h| when each entry moves by at most h.
    """
    return bool(np.any(np.abs(_logsumexp(log_q)) > h.max(axis=-1) + SLACK))


def probability_out_of_range(p, h):
    """Probabilities lie in [0, 1]."""
    return bool(np.any(p + h < -SLACK) or np.any(p - h > 1 + SLACK))


def probability_not_normalised(p, h):
    """Each probability row sums to 1."""
    return bool(np.any(np.abs(p.sum(axis=-1) - 1.0) > h.sum(axis=-1) + SLACK))


def softmax_not_exp_of_log_softmax(p, h_p, log_p, h_log_p):
    """p = softmax(z) must equal exp(log_softmax(z)) entry by entry."""
    low, high = np.exp(log_p - h_log_p), np.exp(log_p + h_log_p)
    return bool(np.any((p + h_p < low - SLACK) | (p - h_p > high + SLACK)))


def output_not_product(output, h_out, p, h_p, log_p, h_log_p, log_q, h_log_q):
    """output = p (log p - log q), from the printed p, log p and log q."""
    diff = log_p - log_q
    bound = np.abs(p) * (h_log_p + h_log_q) + h_p * (np.abs(diff) + h_log_p + h_log_q) + h_out
    return bool(np.any(np.abs(output - p * diff) > bound + SLACK))


def margin_nonzero_at_label(margin, h, label):
    """m_y = z_y - z_y = 0 at each sample's label."""
    at_label = margin[np.arange(len(label)), label]
    return bool(np.any(np.abs(at_label) > h[np.arange(len(label)), label] + SLACK))


def margin_negative_where_teacher_right(margin, h, label, logits_t):
    """Where the teacher's top class is the label, every margin z_y - z_c is >= 0."""
    right = logits_t.argmax(axis=1) == label
    return bool(np.any((margin + h < -SLACK)[right]))


def margin_not_difference(margin, h, label, logits_t):
    """m_c = z_y - z_c, from the (exact) printed inputs."""
    expected = logits_t[np.arange(len(label)), label][:, None] - logits_t
    return bool(np.any(np.abs(margin - expected) > h + SLACK))


def weight_not_affine(weight, h_w, margin, h_m, beta, offset=ARTICLE_OFFSET):
    """w = m / beta + k, from the printed margin."""
    return bool(np.any(np.abs(weight - (margin / beta + offset)) > h_w + h_m / beta + SLACK))


def factors_not_printed(pairs, h_pairs, weight, h_w, output, h_out):
    """The factors of each printed product are the printed weight and the printed output."""
    a, b = pairs[..., 0], pairs[..., 1]
    return bool(
        np.any(np.abs(a - weight) > h_pairs[..., 0] + h_w + SLACK)
        or np.any(np.abs(b - output) > h_pairs[..., 1] + h_out + SLACK)
    )


def product_not_equal_factors(products, h_prod, pairs, h_pairs):
    """Each printed product value equals a * b of its printed factors."""
    a, b = pairs[..., 0], pairs[..., 1]
    ha, hb = h_pairs[..., 0], h_pairs[..., 1]
    bound = h_prod + np.abs(a) * hb + np.abs(b) * ha + ha * hb
    return bool(np.any(np.abs(products - a * b) > bound + SLACK))


def per_sample_not_one_per_sample(per_sample, n):
    """A per-sample sum has exactly one number per sample: shape (N,)."""
    return per_sample.shape != (n,)


def mean_not_sum_over_n(loss, h_loss, per_sample, h_per_sample, n):
    """The batch-mean loss equals the sum of everything printed as the per-sample sums, over N."""
    return bool(abs(loss - per_sample.sum() / n) > h_loss + h_per_sample.sum() / n + SLACK)


def identical_rows_for_different_inputs(rows, inputs):
    """Two samples give identical rows only if their input rows differ by a constant
    (softmax is shift-invariant); the sample's rows do not, so identical rows are impossible."""
    rows = np.asarray(rows)
    broken = False
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            shift = inputs[i] - inputs[j]
            same_up_to_shift = np.allclose(shift, shift[0])
            if np.array_equal(rows[i], rows[j]) and not same_up_to_shift:
                broken = True
    return broken


def _printed_arrays():
    printed = load_article_printed()
    values = {k: s.values for k, s in printed.items()}
    halves = {k: half_unit(s.text) for k, s in printed.items()}
    return printed, values, halves


def broken_invariants(key, values, halves, sample):
    """Names of the invariants the printed tensor ``key`` breaks (from the printed numbers, and the
    echoed inputs where a check needs them: the label, the logits, beta).
    See ``notebooks/02-errata.ipynb``."""
    v, h = values, halves
    y, z, s, n = sample.label, sample.logits_t, sample.input, len(sample.label)
    checks = {
        "log_input": {
            "log-softmax <= 0": lambda: log_softmax_positive(v["log_input"], h["log_input"]),
            "rows log-sum-exp to 0": lambda: log_softmax_not_normalised(v["log_input"], h["log_input"]),
            "different inputs, different rows": lambda: identical_rows_for_different_inputs(
                v["log_input"], s
            ),
        },
        "log_target": {
            "log-softmax <= 0": lambda: log_softmax_positive(v["log_target"], h["log_target"]),
            "rows log-sum-exp to 0": lambda: log_softmax_not_normalised(v["log_target"], h["log_target"]),
            "different inputs, different rows": lambda: identical_rows_for_different_inputs(
                v["log_target"], z
            ),
        },
        "target_prob": {
            "probabilities in [0, 1]": lambda: probability_out_of_range(v["target_prob"], h["target_prob"]),
            "rows sum to 1": lambda: probability_not_normalised(v["target_prob"], h["target_prob"]),
            "p = exp(log p)": lambda: softmax_not_exp_of_log_softmax(
                v["target_prob"], h["target_prob"], v["log_target"], h["log_target"]
            ),
            "different inputs, different rows": lambda: identical_rows_for_different_inputs(
                v["target_prob"], z
            ),
        },
        "output": {
            "output = p (log p - log q)": lambda: output_not_product(
                v["output"],
                h["output"],
                v["target_prob"],
                h["target_prob"],
                v["log_target"],
                h["log_target"],
                v["log_input"],
                h["log_input"],
            ),
        },
        "margin": {
            "m = 0 at the label": lambda: margin_nonzero_at_label(v["margin"], h["margin"], y),
            "m >= 0 where the teacher is right": lambda: margin_negative_where_teacher_right(
                v["margin"], h["margin"], y, z
            ),
            "m = z_y - z": lambda: margin_not_difference(v["margin"], h["margin"], y, z),
            "different inputs, different rows": lambda: identical_rows_for_different_inputs(v["margin"], z),
        },
        "weight": {
            "w = m / beta + 8": lambda: weight_not_affine(
                v["weight"], h["weight"], v["margin"], h["margin"], sample.beta
            ),
            "different inputs, different rows": lambda: identical_rows_for_different_inputs(v["weight"], z),
        },
        "weighted": {
            "factors are the printed w and output": lambda: factors_not_printed(
                v["weighted"], h["weighted"], v["weight"], h["weight"], v["output"], h["output"]
            ),
        },
        "per_sample": {
            "one number per sample": lambda: per_sample_not_one_per_sample(v["per_sample"], n),
            "entries = printed a * b": lambda: product_not_equal_factors(
                v["per_sample"], h["per_sample"], v["weighted"], h["weighted"]
            ),
            "different inputs, different rows": lambda: identical_rows_for_different_inputs(
                v["per_sample"], s
            ),
        },
        "loss": {
            "loss = sum / N": lambda: mean_not_sum_over_n(
                v["loss"], h["loss"], v["per_sample"], h["per_sample"], n
            ),
        },
    }
    return [name for name, broken in checks.get(key, {}).items() if broken()]


def correct_values(sample=None):
    """The true value of every printed step, from the float64 oracle, keyed like the data file.

    ``weighted`` is printed as factor pairs, so its truth is the pairs (w, p (log p - log q));
    ``per_sample`` is printed with one entry per class, so it is compared with the per-class
    weighted terms those entries stand for.
    """
    from klloss import oracle

    sample = sample or load_sample()
    parts = oracle.intermediates(sample.logits_t, sample.input, sample.target, sample.label, sample.beta)
    truth = {k: getattr(sample, k) for k in ("logits_t", "input", "target", "label", "beta")}
    truth.update(
        {k: parts[k] for k in ("log_input", "log_target", "target_prob", "output", "margin", "weight")}
    )
    truth["weighted"] = np.stack([parts["weight"], parts["output"]], axis=-1)
    truth["per_sample"] = parts["weighted"]
    truth["loss"] = parts["loss"]
    return truth


COMPARED_WITH = {
    "weighted": "pairs (w, output)",
    "per_sample": "per-class w p (log p - log q)",
}


def repeats(values):
    """For each printed step, where it repeats numbers printed for an earlier step: the whole
    tensor (``"log_input"``) or single rows (``"log_input[0] as row 1"``)."""
    found = {}
    keys = list(values)
    for i, key in enumerate(keys):
        here, notes = np.asarray(values[key]), []
        for other in keys[:i]:
            there = np.asarray(values[other])
            if there.shape == here.shape and np.array_equal(there, here):
                notes.append(other)
            elif here.ndim == 2 and there.ndim == 2 and there.shape[1:] == here.shape[1:]:
                notes += [
                    f"{other}[{a}] as row {b}"
                    for b in range(len(here))
                    for a in range(len(there))
                    if np.array_equal(here[b], there[a])
                ]
        found[key] = notes
    return found


def table():
    """One row per printed step: printed vs correct, and the invariants the printed numbers break.

    Built from ``klloss/article_data/article_printed.json`` and the oracle, nothing typed in (shown in
    ``notebooks/02-errata.ipynb``). Columns: step,
    label (the article's), printed (count of numbers), right (count within the printed
    rounding), max_abs_error, broken (invariants), repeats (earlier steps printed identically).
    """
    import pandas as pd

    sample = load_sample()
    printed, values, halves = _printed_arrays()
    truth = correct_values(sample)
    repeated = repeats({k: values[k] for k, s in printed.items() if s.group == "steps"})
    rows = []
    for key, step in printed.items():
        error = np.abs(values[key] - np.asarray(truth[key], dtype=float))
        rows.append(
            {
                "step": key,
                "label": step.label,
                "compared with": COMPARED_WITH.get(key, "same step"),
                "printed": step.count,
                "right": int(np.sum(error <= halves[key] + SLACK)),
                "max_abs_error": float(error.max()),
                "broken": ", ".join(broken_invariants(key, values, halves, sample)),
                "repeats": ", ".join(repeated.get(key, [])),
            }
        )
    return pd.DataFrame(rows).set_index("step")


def summary(frame=None):
    """Totals over the errata table, and the printed and true final loss (a dict).
    See ``notebooks/02-errata.ipynb``."""
    frame = table() if frame is None else frame
    printed = load_article_printed()
    truth = correct_values()
    steps = frame.drop(index=[k for k, s in printed.items() if s.group == "inputs"])
    return {
        "printed numbers": int(frame["printed"].sum()),
        "right": int(frame["right"].sum()),
        "printed intermediates": int(steps["printed"].sum()),
        "right intermediates": int(steps["right"].sum()),
        "loss printed": float(printed["loss"].values),
        "loss correct": float(truth["loss"]),
        "factor off": float(printed["loss"].values / truth["loss"]),
    }


def side_by_side(key, decimals=4):
    """The printed tensor of step ``key`` (its text, exactly as printed) beside the correct one
    (formatted to the same ``decimals``), as one DataFrame: columns printed / correct, then class."""
    import pandas as pd

    step = load_article_printed()[key]
    text = np.array(step.text, dtype=object)
    truth = np.asarray(correct_values()[key], dtype=float)
    fmt = np.vectorize(lambda v: f"{v:.{decimals}f}", otypes=[object])
    if text.ndim == 3:  # factor pairs, shown as "a * b"
        join = np.vectorize(lambda a, b: f"{a} * {b}", otypes=[object])
        text, truth = join(text[..., 0], text[..., 1]), join(fmt(truth[..., 0]), fmt(truth[..., 1]))
    elif text.ndim == 0:
        return pd.DataFrame({"printed": [str(text)], "correct": [fmt(truth)[()]]}, index=[key])
    else:
        truth = fmt(truth)
    samples = [f"sample {i}" for i in range(len(text))]
    classes = [f"class {j}" for j in range(text.shape[1])]
    return pd.concat(
        {
            "printed": pd.DataFrame(text, index=samples, columns=classes),
            "correct": pd.DataFrame(truth, index=samples, columns=classes),
        },
        axis=1,
    )
