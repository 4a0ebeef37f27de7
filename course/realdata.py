"""The comparisons notebook 05 and its appendices read from the stored experiment, and the tables a
reader sees: the losses' names, the pairs of each family of comparisons, the families settled
(:func:`course.experiments.settle`), and the tables and grids they are printed as.

The core (``notebooks/05-real-data.ipynb``) and the appendices (``05b-...``, ``05c-...``) build
every family with these functions, so a verdict reads the same wherever it is printed: Holm's
adjustment depends on the whole family, and each family here is the one both notebooks adjust.
"""

import dataclasses
import json
import math

import numpy as np

from . import experiments as ex

KD1 = "KD, T = 1"
CE = "CE only"
UNITS = {"accuracy": "pp", "p_true": "pp", "nll": "nats", "ece": "pp"}
"""How each metric's differences are printed: in percentage points, or NLL in nats."""
MINUS, ALPHA = "\N{MINUS SIGN}", "\N{GREEK SMALL LETTER ALPHA}"


def load_runs():
    """``(config, plan, stored)``: the stored experiment (:func:`course.experiments.load_stored`)
    with the configuration and plan of this code, which it must be exactly (else ``ValueError``:
    run ``make experiments``). Every number the notebooks print comes from ``stored``."""
    config, plan = ex.Config(), ex.Plan()
    stored = ex.load_stored()
    provenance = stored["provenance"]
    if provenance["config"] != dataclasses.asdict(config) or provenance["plan"] != json.loads(
        json.dumps(dataclasses.asdict(plan))
    ):
        raise ValueError(f"{ex.STORED} was not written by this code's Config and Plan: run make experiments")
    return config, plan, stored


def wrong_teachers(stored):
    """The teachers trained on flipped labels, one row per share flipped: how well each fits the
    labels it saw and the true ones, its test accuracy, and its share of training rows with a
    negative weight at each beta of the plan."""
    import pandas as pd

    rows = {}
    for part in stored["wrong_teacher"]:
        teacher = part["teacher"]
        rows[part["fraction"]] = {
            "fits its (flipped) labels": teacher["train_accuracy_on_labels_seen"],
            "right on true labels (train)": teacher["train_accuracy"],
            "test accuracy": teacher["test"]["accuracy"],
            **{f"rows with w < 0, beta = {b}": v for b, v in teacher["negative_weight_rows"].items()},
        }
    table = pd.DataFrame(rows).T
    table.index.name = "labels flipped"
    return table


def mass_moved(z, labels, betas):
    """{beta: how much probability mass klloss_v2's target moves}: the total variation between
    q* (notebook 04) and the teacher's p, averaged over the rows of ``z`` (notebook 05b explains)."""
    from . import analysis

    p = z.softmax(1)
    return {
        b: 0.5 * (analysis.stationary_student(z, z, labels, b) - p).abs().sum(1).mean().item() for b in betas
    }


def median_ratio(runs, column, loss, baseline, fractions, alphas):
    """{(flipped, alpha): median of ``column`` over the seeds of ``loss`` / that of ``baseline``}."""
    out = {}
    for f in fractions:
        for a in alphas:
            part = runs[(runs["flipped"] == f) & (runs["alpha"] == a)]
            out[f, a] = (
                part[part["loss"] == loss][column].median() / part[part["loss"] == baseline][column].median()
            )
    return out


def train_on_batch(data, config, x, y, z, loss, seed):
    """A student trained by :func:`course.experiments.train` for one epoch on a data set of the one
    mini-batch ``(x, y)`` with teacher logits ``z``: one optimiser step (notebook 05 compares it
    with the step written out)."""
    import torch

    torch.manual_seed(seed)  # as ex.train_student seeds the student
    student = ex.mlp(data.x_train.shape[1], config.student_hidden, data.classes)
    one_batch = dataclasses.replace(data, x_train=x, y_train=y)
    ex.train(student, loss, one_batch, z, dataclasses.replace(config, epochs=1), seed)
    return student


def kd(temperature):
    """The name of plain KD at ``temperature`` in the stored runs."""
    return f"KD, T = {temperature:g}"


def kl(beta):
    """The name of klloss_v2 at ``beta`` in the stored runs."""
    return f"klloss_v2, beta = {beta:g}"


def clean_pairs(betas, temperature, soft_betas=()):
    """The clean teacher's family: KD at ``temperature`` minus KD at T = 1; klloss_v2 at each beta
    minus both; our softened extension at each of ``soft_betas`` minus KD at ``temperature``."""
    kd_t = kd(temperature)
    pairs = [(kd_t, KD1)] + [(kl(b), KD1) for b in betas] + [(kl(b), kd_t) for b in betas]
    return pairs + [(ex.soft_name(temperature, b), kd_t) for b in soft_betas]


def wrong_pairs(betas, temperature, middle=1.5):
    """The wrong teachers' family: klloss_v2 at each beta minus KD at T = 1; CE only minus KD at
    T = 1 and minus klloss_v2 at ``middle``; KD at ``temperature`` minus KD at T = 1, and
    klloss_v2 at ``middle`` and CE only minus KD at ``temperature``."""
    kd_t = kd(temperature)
    pairs = [(kl(b), KD1) for b in betas] + [(CE, KD1), (CE, kl(middle))]
    return [*pairs, (kd_t, KD1), (kl(middle), kd_t), (CE, kd_t)]


def clamped_pairs(betas):
    """The clamped variant's family: at each beta, max(w, 0) minus KD at T = 1 and minus klloss_v2;
    target only and scale only minus KD at T = 1; CE only minus max(w, 0)."""
    pairs = []
    for beta in betas:
        clamped = ex.part_name("clamped", 1, beta)
        pairs += [(clamped, KD1), (clamped, kl(beta)), (ex.part_name("target", 1, beta), KD1)]
        pairs += [(ex.part_name("scale", 1, beta), KD1), (CE, clamped)]
    return pairs


def wrong_runs(stored):
    """Every run of the wrong teachers' part of a stored record, one DataFrame with a column
    ``flipped`` (the share of training labels flipped for the teacher)."""
    import pandas as pd

    parts = {w["fraction"]: ex.frame(w["runs"]) for w in stored["wrong_teacher"]}
    return pd.concat(parts, names=["flipped", "row"]).reset_index(level="row", drop=True).reset_index()


def compare_by_fraction(runs, pairs, metrics, fractions):
    """:func:`course.experiments.compare` per share of labels flipped: {metric: a table indexed
    (flipped, alpha, loss, baseline)}, not yet settled."""
    import pandas as pd

    out = {}
    for metric in metrics:
        parts = {f: ex.compare(runs[runs["flipped"] == f], metric, pairs) for f in fractions}
        out[metric] = pd.concat(parts, names=["flipped"])
    return out


DECIMALS = {"pp": 2, "nats": 4}
"""The decimals every mean and interval of a unit is printed with: a hundredth of a point is
under a tenth of one test image of accuracy; a ten-thousandth of a nat is a hundredth of the NLL
margin."""


def number(value, unit="pp"):
    """A difference as the reader sees it, in one fixed format per unit: pp (the value times 100)
    with :data:`DECIMALS` ``["pp"]`` decimals, or nats with ``["nats"]``, signed; a value that is 0
    up to the rounding of a mean of zeros prints unsigned, so an exact tie shows as one."""
    decimals = DECIMALS[unit]
    value = 100 * value if unit == "pp" else value
    if abs(value) < 1e-12:  # a mean of differences that are all 0, up to the sum's rounding
        return f"{0:.{decimals}f}"
    return f"{value:+.{decimals}f}"


def p_value(p):
    """A p-value as printed: four decimals, or "< 0.0001"."""
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def verdict(row):
    """A settled comparison's verdict, with ", within the margin" where a higher or lower one
    also passed the equivalence test after the adjustment."""
    inside = row["verdict"] in ("higher", "lower") and row["within_margin"]
    return row["verdict"] + (", within the margin" if inside else "")


def readable(table, pairs=None, unit="pp"):
    """A settled table as the reader sees it: mean difference, 95 % t-interval, t, the t-test's p
    and the equivalence test's (TOST) p, each also Holm-adjusted, seeds either side, verdict (only
    ``pairs``, if given): every verdict can be read off its row."""
    import pandas as pd

    if pairs is not None:
        table = table[[(loss, baseline) in pairs for *_, loss, baseline in table.index]]
    return pd.DataFrame(
        {
            f"mean ({unit})": [number(v, unit) for v in table["mean"]],
            f"95% CI ({unit})": [
                f"[{number(lo, unit)}, {number(hi, unit)}]"
                for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)
            ],
            "t": ["n/a" if math.isnan(t) else f"{t:.2f}" for t in table["t"]],
            "p": [p_value(p) for p in table["p"]],
            "p (Holm)": [p_value(p) for p in table["p_holm"]],
            "p (TOST)": [p_value(p) for p in table["p_equivalence"]],
            "p (TOST, Holm)": [p_value(p) for p in table["p_equivalence_holm"]],
            "seeds above": table["above"],
            "seeds below": table["below"],
            "verdict": [verdict(row) for _, row in table.iterrows()],
        },
        index=table.index,
    )


def readable_by_fraction(table, unit="pp"):
    """:func:`readable` for a table whose first index level is the share of labels flipped."""
    import pandas as pd

    parts = {
        f"{f:.0%}": readable(part.droplevel("flipped"), unit=unit)
        for f, part in table.groupby(level="flipped")
    }
    return pd.concat(parts, names=["flipped"])


def grid(tables, rows, columns=("alpha",), names=None):
    """A compact view of settled tables: one row per (metric, loss, baseline) in ``rows``, the
    metric with its unit (:data:`UNITS`); for each value of the index levels ``columns``, two
    columns: the mean difference (:func:`number`) and the verdict. ``tables``: {metric: settled
    table}; ``names``: shorter names of some losses, for the rows' labels."""
    names = names or {}
    import pandas as pd

    out = {}
    for metric, loss, baseline in rows:
        table = tables[metric].xs((loss, baseline), level=["loss", "baseline"])
        unit = UNITS[metric]
        cells = {}
        for key, row in table.iterrows():
            key = key if isinstance(key, tuple) else (key,)
            cells[(*key, "mean")] = number(row["mean"], unit)
            cells[(*key, "verdict")] = verdict(row)
        label = f"{names.get(loss, loss)} {MINUS} {names.get(baseline, baseline)}"
        out[(f"{metric} ({unit})", label)] = cells
    frame = pd.DataFrame(out).T
    frame.index.names = ["metric", f"first {MINUS} second"]
    frame.columns.names = [*columns, None]
    if "flipped" in columns:
        frame = frame.rename(
            columns=lambda f: f"{f:.0%}" if isinstance(f, float) and f < 1 else f, level="flipped"
        )
    return frame


def strip(ax, table, metric, pairs, runs, alphas):
    """One row per comparison on ``ax``: each seed's paired difference (dots, per alpha), the mean
    and its 95 % t-interval (black), the metric's equivalence margin (grey band)."""
    colours = {alphas[0]: "tab:blue", alphas[-1]: "tab:orange"}
    scale = 100 if UNITS[metric] == "pp" else 1
    for row, (loss, baseline) in enumerate(pairs):
        d = ex.paired_differences(runs, metric, loss, baseline)
        for alpha, shift in zip(alphas, (-0.18, 0.18), strict=True):
            values = scale * d.loc[alpha].to_numpy()
            jitter = np.random.default_rng(row).uniform(-0.07, 0.07, len(values))
            one_seed = f"{ALPHA} = {alpha}, one seed" if row == 0 else None
            ax.scatter(values, row + shift + jitter, s=9, color=colours[alpha], alpha=0.6, label=one_seed)
            test = table.loc[(alpha, loss, baseline)]
            error = [[scale * (test["mean"] - test["ci_low"])], [scale * (test["ci_high"] - test["mean"])]]
            label = "mean, 95 % t-interval" if row == 0 and alpha == alphas[0] else None
            ax.errorbar(
                scale * test["mean"],
                row + shift,
                xerr=error,
                fmt="o",
                color="black",
                markersize=4,
                capsize=3,
                label=label,
            )
    ax.axvline(0, color="crimson", linewidth=1)
    margin = scale * ex.MARGINS[metric]
    ax.axvspan(-margin, margin, color="0.9", zorder=0, label="± the metric's equivalence margin")
    ax.set_yticks(range(len(pairs)), [f"{a}  {MINUS}  {b}" for a, b in pairs], fontsize=8)
    ax.set_ylim(len(pairs) - 0.5, -0.5)  # the first comparison on top


def ablation_groups(ablation, temperature):
    """Our ablation's family, in groups: for each (T, beta) of ``ablation``, target only, scale
    only and both (klloss_v2, or our softened extension at T != 1), each minus KD at that T.
    Returns [(label, [(loss, baseline), ...]), ...]; the family is every pair of every group."""
    groups = []
    for t, beta in ablation:
        kd_t = KD1 if t == 1 else kd(temperature)
        both = kl(beta) if t == 1 else ex.soft_name(temperature, beta)
        pairs = [
            (ex.part_name("target", t, beta), kd_t),
            (ex.part_name("scale", t, beta), kd_t),
            (both, kd_t),
        ]
        groups.append((f"T = {t:g}, β = {beta:g}", pairs))
    return groups
