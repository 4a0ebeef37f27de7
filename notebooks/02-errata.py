# %% [markdown] id="title"
# # 02 · Errata: what the article prints, what is true, and why the printed numbers cannot be right
#
# *Every number the article prints for its worked example, beside the correct value, with the invariants each printed tensor breaks, judged from the printed numbers and, where a check needs them, the inputs the article echoes.*
#
# **You will learn:** how to prove, allowing for the rounding of the printed numbers, that a tensor cannot be a log-softmax or a softmax (from the printed numbers alone) nor a margin or a weight (from them together with the logits, labels and β the article echoes); that several printed tensors are copies of the printed log_input.
#
# **You need first:** [notebook 01](01-walkthrough.ipynb) (the intermediates of the loss and the checks each must pass).

# %% [markdown] id="article-runs-klloss_v2-sample"
# The article (the blog post "adkd" on svgfk.baihongyu.com, dated 2023-04-17) runs its `klloss_v2` on the sample batch of [notebook 01](01-walkthrough.ipynb) and prints every intermediate tensor. We transcribed those numbers exactly as printed into `klloss/article_data/article_printed.json` (`tests/test_data.py` checks the transcription against the article's text, number for number, wherever a copy of that text is at hand). Here each printed tensor meets two kinds of evidence:
#
# 1. **the correct value**, from the float64 oracle (`klloss.oracle`);
# 2. **invariants** that any correct tensor must satisfy, checked on the printed numbers alone (a log-softmax is $\le 0$ and its exponentials sum to 1) or on them together with the inputs the article echoes (its logits, labels and β: the label's margin is 0; the margin is $z_y - z_c$; the weight is $m/\beta + k$). A number printed with four decimals stands for anything within half a unit of its last digit ($\pm 5\times10^{-5}$), and a check fails only when no values within that rounding could pass it. So a failed check of the first kind proves that *no input whatsoever* could have produced the printed tensor, and one of the second kind that the echoed inputs could not: either way the printing is wrong, not just the sample.
#
# The checks live in `course/errata.py`; `tests/test_errata.py` tests them on correct and broken tensors. One function runs them all for a printed step: `errata.broken_invariants(step, values, halves, sample)` takes the step's name, the numbers by step, the rounding allowance of each ($\pm$ half a unit, by step) and the sample (for the echoed inputs), and returns the names of the invariants broken. The first check below calls it too.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

import course
import klloss
from course import errata

torch.manual_seed(0)
np.random.seed(0)  # noqa: NPY002 (seeds NumPy's global generator, in the one visible seeding cell)
pd.set_option("display.precision", 4)
pd.set_option("display.max_colwidth", 120)
course.i18n.translate_outputs()  # tables and figures in the reader's language, the Chinese kept for notebooks/zh/

sample = klloss.data.load_sample()
printed = klloss.data.load_article_printed()
truth = errata.correct_values(sample)
P = {key: step.values for key, step in printed.items()}  # printed numbers as floats
print("printed steps:", list(printed))
assert (course.ROOT / "klloss" / "article_data" / "article_printed.json").is_file()  # the file named above

# %% [markdown] id="echoed-inputs-are-right"
# ## The echoed inputs are right
#
# Before computing anything, the article echoes its inputs. Those match the sample it defines (and the `target` it passes is the teacher's logits again).
#
# One fact about where the printed run comes from: the listing of `klloss_v2` in the article has no print statement in it, yet its printed run starts by printing the inputs. So the printed run cannot come from the listed code as written. `tests/test_data.py` checks this on our copy of the article's text: it takes the listing from the function's definition to its return, checks that this span runs from the student's log-softmax to the added offset (so it is the whole computation), and checks that the word `print` occurs nowhere in it.

# %%
for key in ("logits_t", "input", "target", "label"):
    assert np.array_equal(P[key], getattr(sample, key)), key
assert P["beta"] == sample.beta
print("inputs as printed equal the sample:", True)

# %% [markdown] id="step-by-step-printed"
# ## Step by step: printed beside correct
#
# ### log_input, the student's log-softmax $\log q$
#
# Printed: all positive. A log-probability is $\log q_c \le 0$, and each row must satisfy $\log\sum_c e^{\log q_c} = 0$.

# %%
display(errata.side_by_side("log_input"))
lse = np.log(np.exp(P["log_input"]).sum(1))
print("log-sum-exp of each printed row (must be 0):", lse.round(4).tolist())
print("largest printed log-probability (must be <= 0):", P["log_input"].max())
assert errata.log_softmax_positive(P["log_input"], errata.half_unit(printed["log_input"].text))
assert errata.log_softmax_not_normalised(P["log_input"], errata.half_unit(printed["log_input"].text))
halves = {key: errata.half_unit(step.text) for key, step in printed.items()}  # +- half a unit, by step
broken = errata.broken_invariants("log_input", P, halves, sample)
print("errata.broken_invariants('log_input', ...):", broken)
assert {"log-softmax <= 0", "rows log-sum-exp to 0"} <= set(broken)

# %% [markdown] id="log_target-teacher-log-softmax"
# ### log_target, the teacher's log-softmax $\log p$
#
# The same two invariants fail. Its second row (sample 1) is, digit for digit, the *first row (sample 0) of the printed log_input*, a different tensor of a different network.

# %%
display(errata.side_by_side("log_target"))
print(
    "log-sum-exp of each printed row (must be 0):", np.log(np.exp(P["log_target"]).sum(1)).round(4).tolist()
)
print(
    "printed log_target row 1 == printed log_input row 0:",
    np.array_equal(P["log_target"][1], P["log_input"][0]),
)
assert np.array_equal(P["log_target"][1], P["log_input"][0])

# %% [markdown] id="target-teacher-softmax"
# ### target, the teacher's softmax $p$
#
# Probabilities lie in $[0, 1]$, each row sums to 1, and $p = e^{\log p}$. The printed "probabilities" include one above 1, the rows sum to far more than 1, and they are not the exponential of the printed log-softmax. The whole tensor repeats the printed log_input.

# %%
display(errata.side_by_side("target_prob"))
print("row sums of printed p (must be 1):", P["target_prob"].sum(1).round(4).tolist())
print("largest printed p (must be <= 1):", P["target_prob"].max())
print("exp(printed log p), row 0:", np.exp(P["log_target"][0]).round(4).tolist())
print("printed p, row 0:         ", P["target_prob"][0].tolist())
assert np.array_equal(P["target_prob"], P["log_input"])
assert P["target_prob"].max() > 1

# %% [markdown] id="output-per-class-kl"
# ### output, the per-class KL terms $p_c(\log p_c - \log q_c)$
#
# From the article's own printed factors, output would be $p \cdot (\log p - \log q)$. It is not: the printed output is, once more, the printed log_input.

# %%
display(errata.side_by_side("output"))
from_factors = P["target_prob"] * (P["log_target"] - P["log_input"])
print("printed p * (printed log p - printed log q), row 0:", from_factors[0].round(4).tolist())
print("printed output, row 0:                             ", P["output"][0].tolist())
assert np.array_equal(P["output"], P["log_input"])

# %% [markdown] id="matrix-margin"
# ### matrix, the margin $m_c = z_y - z_c$
#
# At the label the margin is $z_y - z_y = 0$, yet the printed rows are not zero there (printed below). On the sample the teacher's top class *is* the label, so no margin may be negative; the printed rows have negatives. The margin is a plain difference of the echoed (exact) inputs, which the printed numbers do not match. And the two rows are identical although the samples' logits are not a shift of each other.

# %%
display(errata.side_by_side("margin"))
at_label = P["margin"][np.arange(2), sample.label]
print("printed margin at the label (must be 0):", at_label.tolist())
print("teacher's top class:", sample.logits_t.argmax(1).tolist(), "labels:", sample.label.tolist())
print("z_y - z from the printed inputs, row 0:", (P["logits_t"][0, 3] - P["logits_t"][0]).tolist())
assert np.all(at_label != 0) and np.array_equal(P["margin"][0], P["margin"][1])

# %% [markdown] id="matrix-after-scaling-offset"
# ### matrix after scaling and offset, the weight $w = m / \beta + 8$
#
# Whatever the margin, the weight must be the printed margin divided by $\beta$ plus 8. The printed margins are all small, so every weight should sit near 8 (the range is computed below); the printed weights do not. Where the printed margin is negative the printed weight repeats it unchanged: neither the division nor the offset was applied there.

# %%
display(errata.side_by_side("weight"))
print("printed margin / beta + 8, row 0:", (P["margin"][0] / sample.beta + 8).round(4).tolist())
print("printed weight, row 0:           ", P["weight"][0].tolist())
implied = P["margin"] / sample.beta + 8
print(
    "weights implied by the printed margins range from",
    implied.min().round(4),
    "to",
    implied.max().round(4),
    "; the printed weights from",
    P["weight"].min(),
    "to",
    P["weight"].max(),
)
negative = P["margin"] < 0
assert np.array_equal(P["weight"][negative], P["margin"][negative])
assert errata.weight_not_affine(
    P["weight"],
    errata.half_unit(printed["weight"].text),
    P["margin"],
    errata.half_unit(printed["margin"].text),
    sample.beta,
)

# %% [markdown] id="final-loss-printed-as"
# ### "final loss": printed as products $w \times$ output
#
# The article prints this step as unevaluated products. Their factors are consistent with its own printed weight and output (so they inherit all the errors above). The correct factors are beside them.

# %%
display(errata.side_by_side("weighted"))

# %% [markdown] id="loss-sum"
# ### "loss sum"
#
# A per-sample sum has one number per sample; the article prints a 2 × 5 matrix, with two identical rows. Read as the values of the products above, its entries do not equal those products either (and one even has the wrong sign). The correct per-class weighted terms are beside them; their row sums are the true per-sample losses.

# %%
display(errata.side_by_side("per_sample"))
products = P["weighted"][..., 0] * P["weighted"][..., 1]
print("printed a * b, row 0:     ", products[0].round(4).tolist())
print("printed 'sum' row 0:      ", P["per_sample"][0].tolist())
print("true per-sample losses:   ", truth["per_sample"].sum(1).round(4).tolist())

# %% [markdown] id="loss-mean"
# ### "loss mean"
#
# The batch mean equals the sum of the per-sample values over $N$. The printed mean is the first printed "sum" entry, not that; and the true loss is far smaller.

# %%
display(errata.side_by_side("loss"))
print(
    "sum of the printed 'sums' / N:", round(P["per_sample"].sum() / 2, 4), " printed mean:", float(P["loss"])
)
assert errata.mean_not_sum_over_n(
    P["loss"], 5e-5, P["per_sample"], errata.half_unit(printed["per_sample"].text), 2
)

# %% [markdown] id="whole-account"
# ## The whole account
#
# One row per printed step, built by `course.errata.table()` from the data file and the oracle: how many numbers the article prints, how many are right to the printed precision, the largest error, the invariants the printed numbers break on their own, and which earlier printed tensors they repeat.

# %%
table = errata.table()
display(table.drop(columns=["label"]).assign(max_abs_error=table["max_abs_error"].round(4)))

# %%
summary = errata.summary(table)
for name, value in summary.items():
    print(f"{name:>22}: {value:.4f}" if isinstance(value, float) else f"{name:>22}: {value}")
assert summary["printed numbers"] == sum(step.count for step in printed.values())
assert summary["right intermediates"] == 0

# %% [markdown] id="every-number-article-prints"
# Every number the article prints after its inputs is wrong, and the final loss it reports is off by the factor printed above.
#
# When you check a published worked example, start with the invariants that must hold within the printed rounding (a log-softmax is at most 0 and its exponentials sum to 1; the label's margin is 0). They need neither the author's code nor a rerun, and one that fails shows that the printed numbers are wrong, whatever code produced them.

# %% [markdown] id="exercises"
# ## Exercises
#
# Each exercise has a worked solution below it, folded: try it first. The solutions run, and check themselves.
#
# **Exercise 1 · The rounding allowance of log-sum-exp.** The check "rows log-sum-exp to 0" allows each printed entry to be anywhere within half a unit $h$ of its last digit. Show that if every entry of a row $x$ moves by at most $h$, its log-sum-exp $\operatorname{lse}(x) = \log\sum_c e^{x_c}$ moves by at most $h$. Then compute, for each printed row of log_input, the smallest and largest log-sum-exp that any values within the rounding could have, and check that 0 lies outside that range.

# %% [markdown] id="solution-lse-moves-at-most" tags=["solution"]
# **Solution 1.** lse is increasing in each entry, and $\operatorname{lse}(x + c) = \operatorname{lse}(x) + c$ for a constant $c$ added to every entry. So for $x'$ with $|x'_c - x_c| \le h$: $\operatorname{lse}(x) - h = \operatorname{lse}(x - h) \le \operatorname{lse}(x') \le \operatorname{lse}(x + h) = \operatorname{lse}(x) + h$. The extremes are reached by moving every entry down, or every entry up, by $h$. The printed rows' ranges (computed below) lie far above 0: no values within the rounding make a log-softmax.

# %% tags=["solution"]
h_log_input = errata.half_unit(printed["log_input"].text)  # half a unit of each printed entry
lse_printed = np.log(np.exp(P["log_input"]).sum(1))
lowest = np.log(np.exp(P["log_input"] - h_log_input).sum(1))  # every entry moved down by h
highest = np.log(np.exp(P["log_input"] + h_log_input).sum(1))  # every entry moved up by h
np.testing.assert_allclose(
    lowest, lse_printed - h_log_input.max(1), rtol=0, atol=1e-12
)  # lse(x - h) = lse(x) - h
np.testing.assert_allclose(highest, lse_printed + h_log_input.max(1), rtol=0, atol=1e-12)
for row, (lo, hi) in enumerate(zip(lowest, highest, strict=True)):
    print(f"printed log_input row {row}: log-sum-exp within the rounding lies in [{lo:.5f}, {hi:.5f}]")
assert (lowest > 0).all()  # 0 is outside every row's range
assert errata.log_softmax_not_normalised(P["log_input"], h_log_input)  # the library's check agrees

# %% [markdown] id="exercise-2-coarser-printing"
# **Exercise 2 · What if the article had printed fewer decimals?** *(open-ended)* Round every printed step to $d = 3, 2, 1, 0$ decimals, widen the allowance to half a unit of the new last digit ($0.5 \cdot 10^{-d}$), and run the same invariant checks (`errata.broken_invariants(step, values, halves, sample)`, introduced at the top: it returns the names of the invariants a step breaks). Before running: which checks do you expect to survive the coarsest printing, and why? As a control, put the *correct* values through the same rounding and the same checks: a check that could fire on a correct printing would prove nothing. What does the result say about how much of this notebook's proof rests on the four decimals the article chose?

# %% [markdown] id="solution-coarser-printing" tags=["solution"]
# **Solution 2.** The table below counts, at each $d$, the checks the printed steps still break, and lists those that stop proving anything as $d$ falls. A check survives coarse rounding when the printed numbers miss the invariant by far more than the allowance: printed log-probabilities well above their bound of 0, a printed margin at the label far from the 0 it must be. It stops proving anything when they miss it by less: the printed margin's negative entries are tiny, so at one decimal they round to zero and "m ≥ 0 where the teacher is right" no longer fails. The control, the correct values rounded the same way, breaks none of the checks that allow for rounding, at any $d$ (the check that a per-sample sum has one number per sample is about shape, and the correct values kept for that step are the per-class terms, so it is left out of the control). Most of the proof does not depend on the four decimals: it rests on printed numbers that are wrong by far more than any rounding. One kind of check is not a rounding check at all: "different inputs, different rows" compares digits for identity, and its force comes from how unlikely two different rows are to round alike; the coarser the printing, the less that is worth.

# %% tags=["solution"]
step_keys = [k for k, s in printed.items() if s.group == "steps"]
inputs_only = {k: s.values for k, s in printed.items() if s.group == "inputs"}
inputs_half = {k: errata.half_unit(s.text) for k, s in printed.items() if s.group == "inputs"}


def broken_at(values_of, decimals):
    """{step: invariants broken} with every step rounded to `decimals` places, allowance 0.5 10^-decimals."""
    values = {
        **inputs_only,
        **{k: np.round(np.asarray(values_of[k], dtype=float), decimals) for k in step_keys},
    }
    halves = {**inputs_half, **{k: np.full(np.shape(values[k]), 0.5 * 10.0**-decimals) for k in step_keys}}
    return {k: errata.broken_invariants(k, values, halves, sample) for k in step_keys}


shape_check = "one number per sample"  # about shape, not rounding: left out of the control
as_printed = {
    k: errata.broken_invariants(k, P, {k2: errata.half_unit(s.text) for k2, s in printed.items()}, sample)
    for k in step_keys
}
counts, lost = {}, {}
previous = {(k, name) for k, names in as_printed.items() for name in names}
for decimals in (4, 3, 2, 1, 0):
    now = {(k, name) for k, names in broken_at(P, decimals).items() for name in names}
    control = {
        (k, name) for k, names in broken_at(truth, decimals).items() for name in names if name != shape_check
    }
    assert not control  # a correct printing, rounded the same way, breaks nothing
    assert now <= previous  # coarser printing never proves more
    counts[decimals], lost[decimals] = (
        len(now),
        "; ".join(f"{k}: {name}" for k, name in sorted(previous - now)),
    )
    previous = now
display(
    pd.DataFrame({"checks the printed steps break": counts, "no longer broken": lost}).rename_axis("decimals")
)
# at 4 decimals: the checks of the account above
assert counts[4] == sum(len(names) for names in as_printed.values())
assert lost[1] == "margin: m >= 0 where the teacher is right"  # its negative entries round to 0
assert counts[0] > counts[4] / 2  # most checks still prove the printing wrong at whole numbers

# %% [markdown] id="printed-tensors-all-at-once"
# ## For the curious: which printed rows are copies of others *(optional)*
#
# Forensics, not needed for what follows or for the exercises: where the wrong numbers came from. The top row draws four printed tensors on one colour scale: the printed target_prob and output are the printed log_input again, and the second row (sample 1) of the printed log_target is the first row (sample 0) of the printed log_input. The matrix below it compares every printed row of every 2 × 5 step with every earlier one, digit for digit, and marks the identical pairs. The bottom panels put each printed step's numbers (vertical) against the true values (horizontal): a correct printing would lie on the diagonal.

# %%
steps = [k for k, s in printed.items() if s.group == "steps"]
copied = ["log_input", "log_target", "target_prob", "output"]
grid_steps = [
    k for k, s in printed.items() if s.group == "steps" and np.shape(P[k]) == np.shape(P["log_input"])
]
row_names = [f"{k} row {r}" for k in grid_steps for r in range(2)]
row_texts = [list(printed[k].text[r]) for k in grid_steps for r in range(2)]
# identical[a, b]: printed row a equals printed row b digit for digit (b printed before a)
identical = np.array(
    [[b < a and row_texts[a] == row_texts[b] for b in range(len(row_texts))] for a in range(len(row_texts))]
)
pairs = [(row_names[a], row_names[b]) for a, b in zip(*np.nonzero(identical), strict=False)]
print("printed rows identical to an earlier printed row:")
for later, earlier in pairs:
    print(f"  {later:>18} = {earlier}")
# the copies of log_input that the sections above found, and no copy of any later step
assert {
    ("log_target row 1", "log_input row 0"),
    ("target_prob row 0", "log_input row 0"),
    ("output row 1", "log_input row 1"),
} <= set(pairs)
assert all(np.array_equal(P[k], P["log_input"]) for k in ("target_prob", "output"))

fig = plt.figure(figsize=(15, 15), layout="constrained")
top, middle, bottom = fig.subfigures(3, 1, height_ratios=[2.3, 5.2, 6.2])
top.suptitle(
    "the printed target_prob and output are the printed log_input; row 1 of the printed log_target is "
    "row 0 of the printed log_input (one colour scale)",
    fontsize=12,
)
axes_top = top.subplots(1, 4)
low = min(P[k].min() for k in copied)
high = max(P[k].max() for k in copied)
for ax, key in zip(axes_top, copied, strict=False):
    frame = pd.DataFrame(
        P[key], index=[f"sample {i}" for i in range(2)], columns=[f"class {j}" for j in range(5)]
    )
    image = course.plotting.heatmap(
        ax, frame, f"printed {key}", fmt="{:.4f}", cmap="viridis", vmin=low, vmax=high
    )
top.colorbar(image, ax=axes_top, label="printed value")

middle.suptitle("which printed rows are digit-for-digit copies of an earlier printed row", fontsize=12)
ax = middle.subplots()
shown = np.where(np.tril(np.ones_like(identical), k=-1), identical.astype(float), np.nan)  # earlier rows only
ax.imshow(shown, cmap=ListedColormap(["whitesmoke", "crimson"]), vmin=0, vmax=1)
ax.set_xticks(range(len(row_names)), row_names, rotation=90, fontsize=8)
ax.set_yticks(range(len(row_names)), row_names, fontsize=8)
ax.set(xlabel="printed earlier", ylabel="printed later")
for boundary in np.arange(1.5, len(row_names) - 1, 2):  # separate the steps
    ax.axhline(boundary, color="grey", linewidth=0.5)
    ax.axvline(boundary, color="grey", linewidth=0.5)
ax.legend(
    handles=[
        Patch(color="crimson", label="identical, digit for digit"),
        Patch(color="whitesmoke", label="different"),
    ],
    loc="upper right",
    fontsize=9,
)

bottom.suptitle("printed against correct: a correct printing lies on the grey diagonal", fontsize=12)
titles = {
    "log_input": "log_input: log q",
    "log_target": "log_target: log p",
    "target_prob": "target_prob: p",
    "output": "output: per-class KL terms",
    "margin": "margin m",
    "weight": "weight w",
    "weighted": "'final loss': factors w and\np(log p - log q) of each product",
    "per_sample": "'loss sum' (printed 2 x 5) vs\nper-class weighted terms w p (log p - log q)",
    "loss": "'loss mean' vs the loss L",
}
legend_handles = None  # set by the first panel, shown in the last
for ax, key in zip(bottom.subplots(2, 5).flat, [*steps, None], strict=False):
    if key is None:
        ax.axis("off")
        ax.legend(*legend_handles, loc="center", fontsize=10)
        continue
    x = np.ravel(np.asarray(truth[key], dtype=float))
    y = np.ravel(P[key])
    lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
    pad = 0.05 * (hi - lo or 1)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", linewidth=1, label="printed = correct")
    ax.scatter(x, y, s=18, color="crimson", label="article")
    legend_handles = ax.get_legend_handles_labels()
    ax.set_title(titles[key], fontsize=9)
    ax.set_xlabel("correct", fontsize=8)
    ax.set_ylabel("printed", fontsize=8)
    ax.tick_params(labelsize=7)
print("saved", course.plotting.save(fig, "02-printed-vs-correct"))
plt.show()
