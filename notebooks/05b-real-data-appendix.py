# %% [markdown] id="title"
# # 05b · Appendix to 05: the clean teacher in full
#
# *What [notebook 05](05-real-data.ipynb) reads off the clean teacher, in full: how much mass the weights can move, which rows they weigh up, every comparison with its interval, the student's confidence against [notebook 04](04-what-it-teaches.ipynb)'s prediction, our softened variant, and the ablation of weight and target.*
#
# **You will learn:** how much of the teacher's probability mass klloss_v2's weights can move, and which rows they weigh up or down ($W_i/k$); every comparison of the clean teacher's family, with its interval, its p-values before and after Holm's adjustment and its verdict; how much of [notebook 04](04-what-it-teaches.ipynb)'s predicted loss of confidence the students show; what happens when the weights act on softened distributions (our extension); and which part of the loss, the row weight or the target $q^*$, moves which metric (our ablation).
#
# **You need first:** [notebook 05](05-real-data.ipynb) (the set-up, the verdicts this appendix details), [notebook 04a](04a-statistics-primer.ipynb) (paired t-intervals, TOST, Holm's adjustment), notebooks [03](03-beta-and-offset.ipynb) and [04](04-what-it-teaches.ipynb) (the weights $w_c$, the identity $L_i = W_i\,\mathrm{KL}(q^*_i\|q_i) + L_{\min,i}$).
#
# This notebook reads the same stored runs as [notebook 05](05-real-data.ipynb) (`data/experiments/digits.json`) and settles the same family of comparisons with the same functions (`course/realdata.py`), so every verdict here is the one [notebook 05](05-real-data.ipynb) prints. It trains nothing: [notebook 05](05-real-data.ipynb) checks that the stored numbers are the ones the code gives.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from matplotlib.ticker import FixedLocator, NullFormatter
from scipy import stats

import course
import klloss
from course import analysis
from course import experiments as ex
from course import realdata as rd
from course.i18n import markdown

ex.seeds_everything(0)  # the figures' jitter draws from its own generators
pd.set_option("display.precision", 4)
course.i18n.translate_outputs()  # tables and figures in the reader's language, the Chinese kept for notebooks/zh/
config, plan, stored = rd.load_runs()  # the stored runs, exactly this code's configuration and plan
main = ex.frame(stored["main"]["runs"])
data = ex.load_digits_split(config)  # the split only: the teacher's logits are stored
SEEDS, BETAS, ALPHAS, SOFT_BETAS, T = plan.seeds, plan.betas, plan.alphas, plan.soft_betas, config.temperature
KD1, KD4, k, kl = rd.KD1, rd.kd(T), klloss.ARTICLE_OFFSET, rd.kl
METRICS, UNITS = ["accuracy", "p_true", "nll", "ece"], rd.UNITS
teacher_stored = stored["main"]["teacher"]
wrong = {w["fraction"]: w for w in stored["wrong_teacher"]}
print(
    f"{len(main)} stored students: {len(SEEDS)} seeds for each (alpha, loss); betas {BETAS}, alphas {ALPHAS}"
)

# %% [markdown] id="much-there-weights-act"
# <a id="mass"></a>
# ## How much is there for the weights to act on?
#
# The weights multiply the teacher's probabilities, and the optimum $q^* = w \odot p / W$ moves mass between classes in proportion to how unequal the weights are. Its total variation from the teacher, $\mathrm{TV} = \frac12 \sum_c |q^*_c - p_c|$, is the share of probability mass the weighting relocates. On a row the teacher gets right the label has the smallest weight ($w_y = k \le W$), so mass moves from the label and the classes with $w_c < W$ to those with $w_c > W$, and
#
# $$\mathrm{TV} = \sum_{c:\,w_c > W} p_c\Big(\frac{w_c}{W} - 1\Big) \;\le\; (1 - p_y)\Big(\frac{\max_c w_c}{W} - 1\Big).$$
#
# This bound can exceed the mass $1 - p_y$ that the teacher puts off the label (when some weight is more than twice $W$): the weights are not limited to moving the mass off the label. On the stored teacher's training rows:

# %%
z_train = ex.stored_logits(teacher_stored, "train").double()  # the stored teacher's logits
z_test = ex.stored_logits(teacher_stored, "test").double()
rows_index = torch.arange(len(data.y_train))
p_train = z_train.softmax(1)
p_y = p_train[rows_index, data.y_train]
train_accuracy = (z_train.argmax(1) == data.y_train).double().mean().item()
print(
    f"teacher on the training set: accuracy {train_accuracy:.4f}, mean p_y {p_y.mean().item():.4f}, "
    f"rows with p_y > 0.99: {(p_y > 0.99).double().mean().item():.1%}, mean mass off the label {(1 - p_y).mean().item():.2%}"
)
moved = {}
for beta in BETAS:
    w = klloss.weight(klloss.margin(z_train, data.y_train), beta, k)  # w = m / beta + k
    big_w = (w * p_train).sum(1)  # W = sum_c w_c p_c
    q_star = analysis.stationary_student(z_train, z_train, data.y_train, beta)
    tv = 0.5 * (q_star - p_train).abs().sum(1)  # mass moved, row by row
    bound = (1 - p_y) * (w.max(1).values / big_w - 1)  # (1 - p_y)(max_c w_c / W - 1)
    assert (tv <= bound * (1 + 1e-9)).all()
    moved[beta] = tv.mean().item()
    negative = klloss.negative_weight_share(z_train, data.y_train, beta).item()
    assert negative == teacher_stored["negative_weight_rows"][f"{beta:g}"] == 0
    print(
        f"beta = {beta:>6g}: q* moves {moved[beta]:.2%} of the mass (the bound, averaged: {bound.mean().item():.2%});"
        f" rows moving more than their mass off the label: {(tv > 1 - p_y).double().mean().item():.1%};"
        f" rows with a negative weight: {negative:.0%}"
    )
assert train_accuracy == 1 and max(moved.values()) < 0.01
assert moved[min(BETAS)] > (1 - p_y).mean().item()  # more than the mass off the label, on average


# %% [markdown] id="this-teacher-gets-every"
# This teacher gets every training image right and is almost certain of each: about 1 % of the probability mass, or less, is there for the weights to move, at any β, and no weight is negative. **On this teacher the experiment barely exercises the loss.** That limits what "no difference" in [notebook 05](05-real-data.ipynb) can mean; the softened variant and the ablation below, and the wrong teachers of [notebook 05c](05c-real-data-wrong-teachers.ipynb), exercise it much more.
#
# <a id="row-weights"></a>
# ## Which rows the loss weights up, and which down: $W_i/k$
#
# By the identity, klloss_v2 gives row $i$ the weight $W_i/k$ relative to KD, with $W_i = k + \mu_i/\beta$ and $\mu_i = \sum_c p_{ic} m_{ic} = z_{iy} - \sum_c p_{ic} z_{ic}$, the label's lead over the teacher's mean logit. So:
#
# - on a row the teacher gets **right** (every $m_c \ge 0$), $W_i/k \ge 1$, and the more so the more mass the teacher puts on classes far below the label: the loss **weights up rows where the teacher is right but unsure**;
# - on a row with $\mu_i < 0$ (possible only where the teacher is **wrong**) and every $w_{ic} \ge 0$ (then $W_i > 0$ and $q^*_i$ is a distribution; without that condition $W_i$ can even be negative, when $\mu_i < -k\beta$), $0 < W_i/k < 1$: the row counts less, and its target puts **more** on the label than the teacher does, $q^*_y / p_y = k/W_i > 1$.
#
# Below, $W_i/k$ for the stored teacher at β = 0.5 on its training and test rows (it gets some test rows wrong), at $T = 1$ (klloss_v2 itself) and at $T = 4$ (our softened extension, further down: the same weights on $p_T = \mathrm{softmax}(z/T)$), and for the teacher trained on 40 % flipped labels at β = 1.5 (rows with a negative weight, which have no $q^*$, left out and counted).


# %%
def row_weights(z, y, beta, temperature=1.0):
    """Per row: the teacher's p_y at T, whether it is right, mu, W/k and q*_y / p_y (rows with a
    negative weight dropped, as they have no q*); and how many were dropped."""
    negative = (klloss.weight(klloss.margin(z, y), beta, k) < 0).any(1)
    z, y = z[~negative], y[~negative]
    at_label = torch.arange(len(y)), y
    p_t = (z / temperature).softmax(1)
    scale, q_star = ex.reweighting(z, y, beta, temperature)  # W / k and q*
    frame = pd.DataFrame(
        {
            "p_y": p_t[at_label].numpy(),
            "right": (z.argmax(1) == y).numpy(),
            "mu": (z[at_label] - (p_t * z).sum(1)).numpy(),  # z_y - sum_c p_c z_c
            "W/k": scale.numpy(),
            "q*_y / p_y": (q_star[at_label] / p_t[at_label]).numpy(),
        }
    )
    return frame, int(negative.sum())


z_wrong40 = ex.stored_logits(wrong[0.4]["teacher"]).double()
cases = {
    "clean teacher, train rows, T = 1, beta = 0.5": (z_train, data.y_train, 0.5, 1.0),
    "clean teacher, test rows, T = 1, beta = 0.5": (z_test, data.y_test, 0.5, 1.0),
    f"clean teacher, train rows, T = {T:g}, beta = 0.5": (z_train, data.y_train, 0.5, T),
    f"clean teacher, test rows, T = {T:g}, beta = 0.5": (z_test, data.y_test, 0.5, T),
    "40 % flipped, train rows, T = 1, beta = 1.5": (z_wrong40, data.y_train, 1.5, 1.0),
}
weights_rows, summary_rows, dropped = {}, [], {}
for name, (z, y, beta, temperature) in cases.items():
    weights_rows[name], dropped[name] = row_weights(z, y, beta, temperature)
    frame = weights_rows[name]
    for right, part in frame.groupby("right"):
        summary_rows.append(
            {
                "rows": name,
                "teacher": "right" if right else "wrong",
                "n": len(part),
                "mean W/k": part["W/k"].mean(),
                "min W/k": part["W/k"].min(),
                "max W/k": part["W/k"].max(),
                "share with mu < 0": (part["mu"] < 0).mean(),
                "mean q*_y / p_y": part["q*_y / p_y"].mean(),
            }
        )
display(pd.DataFrame(summary_rows).set_index(["rows", "teacher"]).round(4))
print("rows left out for a negative weight:", {name: n for name, n in dropped.items() if n})

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True, layout="constrained")
panels = [
    (
        "clean teacher, T = 1, β = 0.5",
        ["clean teacher, train rows, T = 1, beta = 0.5", "clean teacher, test rows, T = 1, beta = 0.5"],
    ),
    (
        f"clean teacher, T = {T:g}, β = 0.5 (our softened extension)",
        [
            f"clean teacher, train rows, T = {T:g}, beta = 0.5",
            f"clean teacher, test rows, T = {T:g}, beta = 0.5",
        ],
    ),
    ("teacher on 40 % flipped labels, T = 1, β = 1.5", ["40 % flipped, train rows, T = 1, beta = 1.5"]),
]
for ax, (title, names) in zip(axes, panels, strict=True):
    frame = pd.concat([weights_rows[name] for name in names])
    for right, colour, label in [(True, "tab:blue", "teacher right"), (False, "crimson", "teacher wrong")]:
        part = frame[frame["right"] == right]
        ax.scatter(
            part["p_y"], part["W/k"], s=8, alpha=0.5, color=colour, label=f"{label} ({len(part)} rows)"
        )
    ax.axhline(1, color="black", linewidth=0.8, linestyle="--", label="W/k = 1: the row weighs as in KD")
    ax.set(xlabel="p_y: the teacher's probability on the true label (at T)", xlim=(0, 1.02), title=title)
    ax.legend(fontsize=8, loc="lower right")
axes[0].set(yscale="log", ylabel="W_i / k: the row's weight against KD's (log scale)")
w_ticks = [0.01, 0.03, 0.1, 0.3, 1, 2]
axes[0].yaxis.set_major_locator(FixedLocator(w_ticks))
axes[0].yaxis.set_minor_formatter(NullFormatter())
axes[0].set_yticks(w_ticks, [f"{t:g}" for t in w_ticks])
print("saved", course.plotting.save(fig, "05b-row-weights"))
plt.show()

# %%
for frame in weights_rows.values():
    right = frame[frame["right"]]
    # a right row weighs at least as in KD, and its target gives the label less than the teacher does
    assert (right["mu"] >= 0).all() and (right["W/k"] >= 1).all() and (right["q*_y / p_y"] <= 1 + 1e-12).all()
    # a row with mu < 0 (only where the teacher is wrong) and every w >= 0 (the rows kept) weighs less, and
    # its target gives the label more
    below = frame[frame["mu"] < 0]
    assert (~below["right"]).all() and (below["W/k"] > 0).all() and (below["W/k"] < 1).all()
    assert (below["q*_y / p_y"] > 1).all()
    np.testing.assert_allclose(frame["q*_y / p_y"], 1 / frame["W/k"], rtol=1e-10)  # q*_y / p_y = k / W
# right but unsure rows weigh more: at T = 1, rows with p_y < 0.9 against rows with p_y > 0.99
train_t1 = weights_rows["clean teacher, train rows, T = 1, beta = 0.5"]
unsure, sure = train_t1[train_t1["p_y"] < 0.9]["W/k"], train_t1[train_t1["p_y"] > 0.99]["W/k"]
assert unsure.min() > sure.max()
# the teacher's wrong rows: most have mu < 0, hence W/k < 1 and q*_y > p_y
for name in ("clean teacher, test rows, T = 1, beta = 0.5", "40 % flipped, train rows, T = 1, beta = 1.5"):
    wrong_rows = weights_rows[name][~weights_rows[name]["right"]]
    assert (wrong_rows["mu"] < 0).mean() > 0.5
soft_test = weights_rows[f"clean teacher, test rows, T = {T:g}, beta = 0.5"]
assert (soft_test[~soft_test["right"]]["mu"] < 0).mean() < 0.5  # at T = 4, most wrong rows have mu >= 0
# at T = 4 the softened teacher spreads mass to classes far below the label: the rows weigh much more
soft_train = weights_rows[f"clean teacher, train rows, T = {T:g}, beta = 0.5"]["W/k"]
effective = {a: (a * soft_train / (1 - a + a * soft_train)).mean() for a in ALPHAS}
print(
    f"at T = {T:g}, beta = 0.5, the training rows' mean W/k is {soft_train.mean():.2f} (at T = 1: {train_t1['W/k'].mean():.3f}):"
    f" a row's distillation term weighs alpha W/k against (1 - alpha) for CE, as if alpha were, on average,"
    + ",".join(f" {effective[a]:.2f} for alpha = {a}" for a in ALPHAS)
)
print(
    f"right rows with p_y < 0.9: W/k from {unsure.min():.3f} to {unsure.max():.3f};"
    f" with p_y > 0.99: from {sure.min():.4f} to {sure.max():.4f}"
)
assert soft_train.mean() > 1.5 and train_t1["W/k"].mean() < 1.01

# %% [markdown] id="table-figure-show"
# What the table and figure show (each asserted above):
#
# - **Right rows weigh at least as in KD, unsure ones more.** Every row the teacher gets right has $W_i/k \ge 1$ and a target that gives the label less than the teacher ($q^*_y \le p_y$). On the clean teacher at $T = 1$ almost every row is sure, and $W_i/k$ hardly leaves 1; the few rows where the teacher is unsure ($p_y < 0.9$) all weigh more than every sure row ($p_y > 0.99$).
# - **Wrong rows weigh less, at $T = 1$.** Most rows the teacher gets wrong have $\mu_i < 0$ there: $W_i/k < 1$ and $q^*_y/p_y = k/W_i > 1$, the target gives the true label more than the teacher does. (A wrong row can still have $\mu_i \ge 0$, when the teacher's mass below the label drags its mean logit under $z_y$; at $T = 4$, where the softened teacher spreads its mass over the classes below, that is the rule on the clean teacher's wrong test rows, as the table shows.)
# - **At $T = 4$ the weights act on much more mass.** The softened teacher spreads its mass over the classes below the label, whose weights exceed $k$, so the rows weigh much more (mean $W/k$ printed): in the mix $(1-\alpha)\,\mathrm{CE} + \alpha\,D$ our softened variant acts as if α were larger. That is one of the two effects the ablation below separates.
#
# <a id="students"></a>
# ## The students
#
# One student per (loss, α, seed): the same architecture, initialisation seed, mini-batch order and optimiser (Adam) for every loss, so each student has a twin trained with every other loss. [Notebook 05](05-real-data.ipynb) trains two of them again and checks them against the stored numbers; the table shows the stored means and standard deviations over seeds, for every loss of the clean teacher.

# %%
display(ex.summarise(main)[["accuracy", "accuracy std", "nll", "ece", "p_true", "p_true std"]])

# %% [markdown] id="any-difference-real-paired"
# <a id="clean-family"></a>
# ## Is any difference real? Paired comparisons
#
# Every loss used the same seeds, so the fair comparison is seed by seed: for each seed, the difference between a student and its twin. For each comparison the table gives the mean paired difference over the seeds, its **95 % Student-t interval** (mean ± $t_{n-1}\,s/\sqrt n$; with as few seeds as here, and fewer further down, a percentile bootstrap would be too narrow, `tests/test_experiments.py` measures by how much), Student's paired t-test, and how many seeds lie above or below zero.
#
# Many comparisons are read together: every row of every table in this section, the test of a difference and the test of equivalence, both α (the count is printed). Read one at a time, about one 95 % interval in twenty would exclude zero by chance. So the verdicts rest on **Holm-adjusted p-values** over the whole section (`ex.settle`), which keep the chance of any wrong verdict among this section's comparisons below 5 %. That bound holds per family of comparisons: this section is one family, and the ablation below, the wrong teachers and the clamped variant ([notebook 05c](05c-real-data-wrong-teachers.ipynb)) are each another, adjusted on its own. Across all the families together the chance of some wrong verdict is larger (the limitations at the end of [notebook 05c](05c-real-data-wrong-teachers.ipynb) count the families and bound it).
#
# - **higher / lower**: the adjusted p-value of the t-test is below 0.05;
# - **equivalent**: not that, but the adjusted p-value of equivalence is below 0.05: two one-sided t-tests (TOST) show the mean difference within ± the metric's margin;
# - **not settled**: neither shown different nor shown equivalent; more seeds would be needed to say which. A single interval can exclude zero and still be "not settled": the difference it shows does not survive the adjustment.
#
# A "higher" or "lower" that also passes the equivalence test is a real difference smaller than the margin ("within the margin"). Both "equivalent" and "within the margin" are read from the Holm-adjusted TOST p-value, not from the 95 % interval the tables display: an interval can lie inside the margin while the equivalence test does not survive the adjustment.
#
# **The margins.** Each metric has its own equivalence margin, in its own units (`ex.MARGINS`), each below the **sampling error of the metric itself on a 540-image test set** (the standard error of one student's metric, by bootstrap over test images, stored with every run; the median over KD students printed below): a difference inside the margin is small against how far one student's metric would move on a fresh test set of this size. That is not the standard error of a paired difference between two students on the same images, so it does not make such a difference undetectable. For accuracy the margin is also under three test images. For the NLL, in nats, **lower is better**, as for the ECE; for accuracy and $p_{\text{true}}$ (the mean probability on the true class) higher is.
#
# **What the intervals cover.** Seeds vary the student's initialisation and batch order only. The split, the teacher and the test set are fixed, so a verdict is reached against seed variation only; test-set sampling (the standard errors above) and another split are not in the intervals.

# %%
PAIRS = rd.clean_pairs(BETAS, T)
SOFT_PAIRS = [(ex.soft_name(T, b), KD4) for b in SOFT_BETAS]
tests = ex.settle({metric: ex.compare(main, metric, PAIRS + SOFT_PAIRS) for metric in METRICS})
n_main = sum(len(table) for table in tests.values())
test_se = {metric: main[main["kind"] == "KD"][f"se_{metric}"].median() for metric in METRICS}
for metric in METRICS:
    scale = 100 if UNITS[metric] == "pp" else 1
    print(
        f"{metric:>8}: margin ±{scale * ex.MARGINS[metric]:g} {UNITS[metric]}, "
        f"test-set standard error {scale * test_se[metric]:.2g} {UNITS[metric]}"
    )
    assert ex.MARGINS[metric] < test_se[metric]
assert ex.MARGINS["accuracy"] < 3 / len(data.y_test) and len(data.y_test) == 540  # the prose's test-set size
print(
    f"{len(SEEDS)} seeds per comparison; {n_main} comparisons in this section, each tested for a difference and "
    f"for equivalence: Holm over {2 * n_main} p-values"
)


number, p_value, readable = rd.number, rd.p_value, rd.readable
# one title per metric, for this family and for the ablation's below
TITLES = {
    "accuracy": markdown("title-accuracy", "**Test accuracy: first minus second**"),
    "p_true": markdown("title-p-true", "**Mean probability on the true class (test): first minus second**"),
    "nll": markdown(
        "title-nll", "**Test negative log-likelihood (lower is better), in nats: first minus second**"
    ),
    "ece": markdown("title-ece", "**Test ECE (lower is better): first minus second**"),
}
for metric in METRICS:
    display(TITLES[metric], readable(tests[metric], PAIRS, unit=UNITS[metric]))

# %% [markdown] id="same-differences-one-dot"
# The same differences, one dot per seed, with each mean and its 95 % t-interval (black); the grey band is the metric's equivalence margin. A dot to the right of zero is a seed where the first loss gave the higher value:

# %%
fig, axes = plt.subplots(1, 2, figsize=(14, 6.5), sharey=True, layout="constrained")
for ax, metric, label in zip(
    axes, ["accuracy", "p_true"], ["test accuracy", "mean p(true class), test"], strict=True
):
    rd.strip(ax, tests[metric], metric, PAIRS, main, ALPHAS)
    ax.set(
        xlabel=f"paired difference in {label} (pp): first loss minus second",
        title=f"{label}: {len(SEEDS)} paired seeds",
    )
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=9)
print("saved", course.plotting.save(fig, "05b-paired-differences"))
plt.show()

# %% [markdown] id="paired-comparisons-settle"
# ## What the paired comparisons show
#
# Read off the tables above, after Holm's adjustment:

# %%
acc, conf, nll = tests["accuracy"], tests["p_true"], tests["nll"]


def verdicts(table, pairs):
    """{(alpha, loss, baseline): verdict} for these pairs, both alphas."""
    return {(a, *pair): table.loc[(a, *pair), "verdict"] for a in ALPHAS for pair in pairs}


kl_kd1 = [(kl(b), KD1) for b in BETAS]
kl_kd4 = [(kl(b), KD4) for b in BETAS]
print("KD T = 4 minus KD T = 1, accuracy:", set(verdicts(acc, [(KD4, KD1)]).values()))
print("klloss_v2 minus KD T = 1, accuracy:", set(verdicts(acc, kl_kd1).values()))
print("klloss_v2 minus KD T = 4, accuracy:", set(verdicts(acc, kl_kd4).values()))
for metric in ("p_true", "nll", "ece"):
    table = tests[metric]
    print(
        f"klloss_v2 minus KD T = 1, {metric}, by (alpha, beta):",
        {
            (a, b): table.loc[(a, kl(b), KD1), "verdict"]
            + (
                ", within the margin"
                if table.loc[(a, kl(b), KD1), "within_margin"]
                and table.loc[(a, kl(b), KD1), "verdict"] != "equivalent"
                else ""
            )
            for a in ALPHAS
            for b in BETAS
        },
    )
nll_outside = nll.loc[(0.9, kl(0.5), KD1)]  # the one NLL difference not shown within the margin
print(
    f"NLL, klloss_v2 at beta = 0.5 minus KD T = 1, alpha = 0.9: 95% CI [{nll_outside['ci_low']:+.4f}, "
    f"{nll_outside['ci_high']:+.4f}] nats (margin ±{ex.MARGINS['nll']:g}); TOST p {p_value(nll_outside['p_equivalence'])}, "
    f"Holm-adjusted {p_value(nll_outside['p_equivalence_holm'])}"
)
# the smallest effect, at beta = 1000, on the training set where the loss acts: real (nearly every
# seed below zero; a sign test), and of the size L = k KL + M / beta predicts, 1 / beta times that
# at beta = 5 (the medians: a seed whose training took another path moves a mean, not a median)
far = {a: ex.paired_differences(main, "train_p_true", kl(1000), KD1).loc[a] for a in ALPHAS}
near = {a: ex.paired_differences(main, "train_p_true", kl(5), KD1).loc[a] for a in ALPHAS}
scaling = {a: far[a].median() * 1000 / (near[a].median() * 5) for a in ALPHAS}
sign_p = {a: stats.binomtest(int((far[a] < 0).sum()), len(far[a])).pvalue for a in ALPHAS}
for a in ALPHAS:
    print(
        f"alpha = {a}: train p_true at beta = 1000 minus KD T = 1: median {number(far[a].median(), 'pp')} pp,"
        f" below zero in {int((far[a] < 0).sum())} of {len(far[a])} seeds (sign test p {p_value(sign_p[a])});"
        f" median x 1000 / (median at beta = 5 x 5) = {scaling[a]:.2f}"
    )

# %%
# the prose below states these; if a rerun ever changed them, this cell fails instead of the text going stale
assert set(verdicts(acc, [(KD4, KD1)]).values()) == {"higher"}
assert set(verdicts(acc, kl_kd1).values()) == {"equivalent"}
assert set(verdicts(acc, kl_kd4).values()) == {"lower"}
# p_true: lower, within the margin, at beta <= 1.5 and at beta = 5 with alpha = 0.9; equivalent at beta = 5, alpha = 0.5
lower_conf = [(a, kl(b), KD1) for a in ALPHAS for b in BETAS if b <= 1.5] + [(0.9, kl(5), KD1)]
assert (conf.loc[lower_conf, "verdict"] == "lower").all() and conf.loc[lower_conf, "within_margin"].all()
assert conf.loc[(0.5, kl(5), KD1), "verdict"] == "equivalent" and conf.loc[(0.5, kl(5), KD1), "p"] < 0.05
# NLL (lower is better): lower at beta <= 1.5, within the margin but at beta = 0.5 with alpha = 0.9; equivalent at beta >= 5
lower_nll = [(a, kl(b), KD1) for a in ALPHAS for b in BETAS if b <= 1.5]
assert (nll.loc[lower_nll, "verdict"] == "lower").all()
assert (
    nll.loc[lower_nll, "within_margin"].sum() == len(lower_nll) - 1
    and not nll.loc[(0.9, kl(0.5), KD1), "within_margin"]
)
# ... there the 95 % interval lies inside the margin: the equivalence test fails only after Holm's adjustment
assert -ex.MARGINS["nll"] < nll_outside["ci_low"] and nll_outside["ci_high"] < ex.MARGINS["nll"]
assert nll_outside["p_equivalence"] < 0.05 <= nll_outside["p_equivalence_holm"]
assert (nll.loc[[(a, kl(b), KD1) for a in ALPHAS for b in (5, 1000)], "verdict"] == "equivalent").all()
assert (
    nll.loc[[(a, kl(5), KD1) for a in ALPHAS], "p"] < 0.05
).all()  # significant alone, not after adjustment
# ECE: no klloss_v2 - KD difference survives adjustment
assert (
    not tests["ece"]
    .loc[[(a, *pair) for a in ALPHAS for pair in kl_kd1], "verdict"]
    .isin(["higher", "lower"])
    .any()
)
# beta = 1000: real, negligible, and 1 / beta times the effect at beta = 5
assert all(0.8 < v < 1.25 for v in scaling.values()) and all(p < 1e-4 for p in sign_p.values())
assert all(((far[a] < 0).sum() >= 27) for a in ALPHAS)
assert (conf.loc[[(a, kl(1000), KD1) for a in ALPHAS], "verdict"] == "equivalent").all()

# %% [markdown] id="kd-at-beats-kd"
# - **KD at $T = 4$ beats KD at $T = 1$** on test accuracy, at both mixing weights: it survives the adjustment.
# - **klloss_v2 against its own limit, KD at $T = 1$**: at every β and both α the accuracy difference is shown to lie within the accuracy margin (printed above). That is an equivalence *shown* (the Holm-adjusted TOST p-value is below 0.05), not a failure to find a difference: with this teacher, any effect of the loss on accuracy is smaller than the margin, under three test images.
# - **klloss_v2 against KD at $T = 4$**: lower accuracy at every β and both α. No setting of the article's loss reaches ordinary KD with a temperature; klloss_v2 has no temperature, and the article does not add one.
# - **Confidence** ($p_{\text{true}}$, higher means more probability on the true class): lower than its KD ($T = 1$) twin at β ≤ 1.5 for both α and at β = 5 for α = 0.9, in most seeds (the counts are in the table) and more so for small β: a real difference, but within the margin. At β = 5 with α = 0.5 the interval excludes zero on its own, yet the difference does not survive the adjustment: there it is only shown equivalent.
# - **Test NLL** (lower is better): lower than the KD twin's at β = 0.5 and 1.5 for both α, so slightly *better*; within the margin except at β = 0.5 with α = 0.9, where its interval lies inside the margin, but the equivalence test does not survive Holm's adjustment (its TOST p-values printed above). At β = 5 the difference is significant on its own but not after adjustment: equivalent. Calibration error (ECE): no difference survives.
# - **β = 1000 is not round-off.** The difference from KD at $T = 1$ there is real: on the training set it lies below zero in nearly every seed (sign test above), and its median is what $L = k\,\mathrm{KL} + M/\beta$ predicts, $5/1000$ of the effect at β = 5 (the printed ratio is close to 1). It is just negligible (the medians printed above), and shown equivalent on the test set. (On the test set a single seed whose training took another path dominates the mean; the median and the signs are robust to it.)

# %% [markdown] id="does-student-end-less"
# <a id="less-confident"></a>
# ## Does the student end less confident, as [notebook 04](04-what-it-teaches.ipynb) predicts? Prediction and observation on the same split
#
# [Notebook 04](04-what-it-teaches.ipynb)'s optimum $q^* = w \odot p / W$ is what the klloss_v2 term alone would make of a student free to take any logits. Our students also have a cross-entropy term; with it the per-sample optimum is still in closed form (`ex.mixed_optimum`): $(1-\alpha)\mathrm{CE} + \frac{\alpha}{k}\sum_c w_c p_c \log(p_c/q_c)$ is, up to a constant, the cross-entropy of $q$ against $t = (1-\alpha)e_y + \frac{\alpha}{k}\, w\odot p$, so $q = t / \sum_c t_c$; at β → ∞ it is KD's $(1-\alpha)e_y + \alpha p$. This mixed optimum has both of klloss_v2's changes in it: the target $q^*$ and the row weight $W/k$ (the $\frac{\alpha}{k} w \odot p$ in $t$ is $\alpha \frac{W}{k} q^*$).
#
# So there are two predictions of the klloss_v2 student's probability on the true class *relative to its KD ($T = 1$) twin*: the pure-klloss one ($q^*_y - p_y$) and the mixed-loss one (the difference of the two mixed optima). Both are computed on each split from the stored teacher's logits there, and compared with what the students did **on the same split**: the mean over seeds of the paired difference in mean $q_y$, with its 95 % t-interval.

# %%
splits = {
    "training set": (z_train, data.y_train, "train_p_true"),
    "test set": (z_test, data.y_test, "p_true"),
}
rows = []
for split, (z, y, column) in splits.items():
    index = torch.arange(len(y))
    teacher_p_y = z.softmax(1)[index, y].mean().item()
    for alpha in ALPHAS:
        kd_optimum = ex.mixed_optimum(z, y, math.inf, alpha)[index, y].mean().item()
        for beta in BETAS[:-1]:  # at beta = 1000 both predictions are below 1e-4 pp: nothing to compare
            pure = analysis.stationary_student(z, z, y, beta)[index, y].mean().item() - teacher_p_y
            mixed = ex.mixed_optimum(z, y, beta, alpha)[index, y].mean().item() - kd_optimum
            observed = ex.paired_test(
                ex.paired_differences(main, column, kl(beta), KD1).loc[alpha].to_numpy(),
                margin=ex.MARGINS["p_true"],
            )
            rows.append(
                {
                    "split": split,
                    "α": alpha,
                    "β": beta,
                    "predicted, pure (pp)": 100 * pure,
                    "predicted, mixed (pp)": 100 * mixed,
                    "observed (pp)": 100 * observed["mean"],
                    "observed CI (pp)": f"[{number(observed['ci_low'], 'pp')}, {number(observed['ci_high'], 'pp')}]",
                    "observed / pure": observed["mean"] / pure,
                    "observed / mixed": observed["mean"] / mixed,
                }
            )
prediction = pd.DataFrame(rows).set_index(["split", "α", "β"])
display(prediction.round(3))

# %%
at_smallest = prediction.xs(min(BETAS), level="β")
for (split, alpha), row in at_smallest.iterrows():
    print(
        f"{split:>12}, alpha = {alpha}: observed / pure prediction {row['observed / pure']:.2f}, "
        f"observed / mixed prediction {row['observed / mixed']:.2f}"
    )
# every prediction and every observation points the same way: less confident than the KD twin
assert (prediction[["predicted, pure (pp)", "predicted, mixed (pp)", "observed (pp)"]] < 0).all().all()
# the share of the pure prediction that is realised grows with alpha, at every beta, on both splits
share = prediction["observed / pure"].unstack("α")
assert (share[ALPHAS[0]] < share[ALPHAS[1]]).all()
# on the training set (where the prediction is made) the mixed-loss prediction is mostly realised;
# on the test set less of either prediction is
mixed_share = prediction["observed / mixed"]
assert (mixed_share.loc["training set"] > 0.7).all() and (
    mixed_share.loc["test set"].to_numpy() < mixed_share.loc["training set"].to_numpy()
).all()
# the prediction itself is larger on the test set, where the teacher is less certain
pure_prediction = prediction["predicted, pure (pp)"]
assert (pure_prediction.loc["test set"].to_numpy() < pure_prediction.loc["training set"].to_numpy()).all()

# %% [markdown] id="measured-same-split-direction"
# Measured on the same split, the direction is always the one [notebook 04](04-what-it-teaches.ipynb) predicts. The size depends on α, and on which prediction one holds it to:
#
# - Against the **pure-klloss** optimum, the share realised grows with α, at every β and on both splits (asserted): at α = 0.9 the cross-entropy term that pulls the other way has a fifth of the weight it has at α = 0.5. So "much less than predicted" holds on both splits at α = 0.5; at α = 0.9 it holds on the test split only, not on the training split (the printed ratios).
# - The **mixed-loss** optimum already includes that pull. On the training set, the images the students were fitted to, they realise most of it (over 70 % at every β and α, asserted). On the test set they realise less of either prediction: the prediction there is larger (the teacher is less certain on test images, so the weights have more mass to move), while a student this small, trained on other images, responds only partly.
#
# <a id="softened"></a>
# ## A softer teacher: what if the weights acted on softened distributions? *(our extension, not the article's loss)*
#
# > **This is not the article's loss.** klloss_v2 has no temperature. Here we ask a "what if": keep the article's weights $w = (z_y - z)/\beta + k$ from the raw teacher logits, but apply them to $p^T = \mathrm{softmax}(z/T)$ and $q^T = \mathrm{softmax}(s/T)$ with $T = 4$, scaled by $T^2$ as KD is: $D = T^2\,\mathrm{klloss\_v2}(z, s/T, z/T, y, \beta)/k$ (`ex.klloss_kd_soft`). As β → ∞ it is exactly KD at $T = 4$ (tested), so the fair comparison is with KD at $T = 4$.
#
# Softening spreads the teacher's mass over the other classes, so the weights have much more to act on, and (as the $W_i/k$ section showed) the rows weigh much more:

# %%
p_soft = (z_train / T).softmax(1)
for beta in SOFT_BETAS:
    q_star_soft = analysis.stationary_student(z_train, z_train / T, data.y_train, beta)
    scale_soft, _ = ex.reweighting(z_train, data.y_train, beta, T)
    print(
        f"beta = {beta:>4g}: at T = {T:g}, mean p_y {p_soft[rows_index, data.y_train].mean().item():.3f}, "
        f"q* moves {0.5 * (q_star_soft - p_soft).abs().sum(1).mean().item():.1%} of the mass "
        f"(at T = 1: {moved[beta]:.2%}), mean W/k {scale_soft.mean().item():.2f}"
    )
soft = {metric: tests[metric].loc[[(a, *pair) for a in ALPHAS for pair in SOFT_PAIRS]] for metric in tests}
display(
    markdown(
        "title-soft-accuracy",
        "**Ours (klloss_v2 weights at T = {T:g}) minus KD at T = {T:g}, test accuracy**",
        T=T,
    ),
    readable(soft["accuracy"]),
)
display(markdown("title-soft-p-true", "**... mean probability on the true class**"), readable(soft["p_true"]))
display(
    markdown("title-soft-ece", "**... expected calibration error (lower is better)**"), readable(soft["ece"])
)
display(
    markdown("title-soft-nll", "**... negative log-likelihood (lower is better), in nats**"),
    readable(soft["nll"], unit="nats"),
)

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), sharey=True, layout="constrained")
for ax, metric, label in zip(
    axes,
    ["accuracy", "p_true", "ece"],
    ["test accuracy", "mean p(true class), test", "test ECE"],
    strict=True,
):
    rd.strip(ax, tests[metric], metric, SOFT_PAIRS, main, ALPHAS)
    ax.set(xlabel=f"paired difference in {label} (pp)", title=f"{label}: ours minus KD, T = {T:g}")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=9)
fig.suptitle(
    "OUR EXTENSION (not the article's loss): klloss_v2's weights on p and q softened by T = 4", fontsize=10
)
print("saved", course.plotting.save(fig, "05b-softened-extension"))
plt.show()

# %%
soft_acc = soft["accuracy"]
print(
    "accuracy verdicts:",
    {(a, loss.split("beta = ")[1]): v for (a, loss, _), v in soft_acc["verdict"].items()},
)
print(
    "largest drop in p_true (pp):",
    f"{-100 * soft['p_true']['mean'].min():.1f}",
    "; largest rise in ECE (pp):",
    f"{100 * soft['ece']['mean'].max():.1f}",
)
# no setting is more accurate than KD at T = 4; at beta = 5 it is equivalent at both alpha
assert not (soft_acc["verdict"] == "higher").any()
assert (soft_acc.loc[[(a, ex.soft_name(T, 5), KD4) for a in ALPHAS], "verdict"] == "equivalent").all()
# the one accuracy interval that excludes zero alone (beta = 0.5, alpha = 0.9) does not survive adjustment
assert ((soft_acc["ci_high"] < 0) == (soft_acc["p"] < 0.05)).all() and (soft_acc["verdict"] != "lower").all()
# every setting makes the student less confident; at beta <= 1.5 it is also worse calibrated (ECE and NLL higher)
assert (soft["p_true"]["verdict"] == "lower").all()
worse = [(a, ex.soft_name(T, b), KD4) for a in ALPHAS for b in SOFT_BETAS if b <= 1.5]
assert (soft["ece"].loc[worse, "verdict"] == "higher").all() and (
    soft["nll"].loc[worse, "verdict"] == "higher"
).all()
largest = [(a, ex.soft_name(T, max(SOFT_BETAS)), KD4) for a in ALPHAS]
assert (soft["nll"].loc[largest, "verdict"] == "equivalent").all()
# ... and there p_true is lower after adjustment, by about the margin: each interval straddles its edge
at_largest = soft["p_true"].loc[largest]
assert (at_largest["verdict"] == "lower").all() and not at_largest["within_margin"].any()
assert (
    (at_largest["ci_low"] < -ex.MARGINS["p_true"]) & (-ex.MARGINS["p_true"] < at_largest["ci_high"])
).all()

# %% [markdown] id="with-mass-act-weights"
# With mass to act on, the weights do change the student, but not for the better. Test accuracy is never higher than KD's at $T = 4$; it is shown equivalent at β = 5 (both α) and at β = 1.5 with α = 0.5, and elsewhere neither shown different nor shown equivalent (one interval excludes zero on its own, at β = 0.5 and α = 0.9, but does not survive the adjustment). The student ends markedly *less* confident on the true class than its KD twin at every β, and worse calibrated (higher ECE and NLL) at β ≤ 1.5. At β = 5 the weights are nearly flat: NLL equivalent to KD at $T = 4$. The student is still less confident there (lower after the adjustment), by about the size of the $p_{\text{true}}$ margin: both intervals straddle the margin's edge, so the difference is shown neither within the margin nor beyond it (the table above). On this data, putting the article's weights under a temperature buys nothing. Which of the two changes, the target $q^*$ or the heavier rows ($W/k$, as if α were larger), does this? The next section trains with each alone.
#
# <a id="ablation"></a>
# ## Which part moves which metric? An ablation read off the identity *(ours)*
#
# [Notebook 04](04-what-it-teaches.ipynb)'s identity splits each row's term into a weight and a target, $\frac1k L_i = \frac{W_i}{k}\,\mathrm{KL}(q^*_i\|q_i) + \text{const}$. Training with one part at a time (`ex.klloss_kd_part`, **our ablation, not the article's loss**; at $T = 4$ the same parts of our softened extension, scaled by $T^2$):
#
# - **target only**: KD towards $q^*_i$, $D = T^2\,\mathrm{KL}(q^*_i\|q_i)$: the loss with each row divided by its $W_i/k$;
# - **scale only**: KD with each row weighted, $D = T^2\,(W_i/k)\,\mathrm{KL}(p_i\|q_i)$;
# - **target and scale**: klloss_v2 itself (at $T = 4$, our softened extension), whose gradient is the one of $(W_i/k)\,\mathrm{KL}(q^*_i\|q_i)$;
#
# each against plain KD at the same temperature, on the same seeds and both α. This is its own family of comparisons, Holm-adjusted together.

# %%
# (T, beta): target only, scale only, target and scale; each minus KD at T
GROUPS = rd.ablation_groups(plan.ablation, T)
ABLATION = [pair for _, group in GROUPS for pair in group]
ablation = ex.settle({metric: ex.compare(main, metric, ABLATION) for metric in METRICS})
n_ablation = sum(len(table) for table in ablation.values())
print(
    f"{n_ablation} comparisons, each tested for a difference and for equivalence: Holm over {2 * n_ablation} p-values"
)
for metric in METRICS:
    display(TITLES[metric], readable(ablation[metric], unit=UNITS[metric]))

# %%
fig, axes = plt.subplots(1, len(METRICS), figsize=(16, 4.6), sharey=True, layout="constrained")
parts_colour = {"target only": "tab:purple", "scale only": "tab:green", "target and scale": "black"}
labels = []
for ax, metric in zip(axes, METRICS, strict=True):
    scale = 100 if UNITS[metric] == "pp" else 1
    position = 0
    for group, pairs in GROUPS:
        for (loss, baseline), part in zip(pairs, parts_colour, strict=True):
            for alpha, shift in zip(ALPHAS, (-0.15, 0.15), strict=True):
                test = ablation[metric].loc[(alpha, loss, baseline)]
                ax.errorbar(
                    scale * test["mean"],
                    position + shift,
                    xerr=[
                        [scale * (test["mean"] - test["ci_low"])],
                        [scale * (test["ci_high"] - test["mean"])],
                    ],
                    fmt="o" if alpha == ALPHAS[0] else "s",
                    color=parts_colour[part],
                    markersize=4,
                    capsize=3,
                    label=f"{part}, α = {alpha}" if metric == METRICS[0] and group == GROUPS[0][0] else None,
                )
            if metric == METRICS[0]:
                labels.append(f"{group}: {part}")
            position += 1
    ax.axvline(0, color="crimson", linewidth=1)
    ax.axvspan(-scale * ex.MARGINS[metric], scale * ex.MARGINS[metric], color="0.9", zorder=0)
    ax.set(xlabel=f"{metric} ({UNITS[metric]}): variant minus KD at its T", title=metric)
axes[0].set_yticks(range(len(labels)), labels, fontsize=8)
axes[0].set_ylim(len(labels) - 0.5, -0.5)
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=6, fontsize=9)
fig.suptitle(
    "OUR ABLATION: the target q* alone, the row weight W/k alone, and both, each minus KD (95 % t-intervals)",
    fontsize=10,
)
print("saved", course.plotting.save(fig, "05b-ablation"))
plt.show()

# %%
for temperature, beta in plan.ablation:
    kd = KD1 if temperature == 1 else KD4
    target, scale = ex.part_name("target", temperature, beta), ex.part_name("scale", temperature, beta)
    both = kl(beta) if temperature == 1 else ex.soft_name(temperature, beta)
    for metric in METRICS:
        print(
            f"T = {temperature:g}, beta = {beta:g}, {metric:>8}:",
            {
                name: sorted({ablation[metric].loc[(a, loss, kd), "verdict"] for a in ALPHAS})
                for name, loss in [("target only", target), ("scale only", scale), ("target and scale", both)]
            },
        )
    # the target carries the confidence and NLL effects of both, at every (T, beta) and both alpha
    for metric in ("p_true", "nll"):
        target_v = [ablation[metric].loc[(a, target, kd), "verdict"] for a in ALPHAS]
        both_v = [ablation[metric].loc[(a, both, kd), "verdict"] for a in ALPHAS]
        assert target_v == both_v and set(both_v) <= {"higher", "lower"}
    # the row weight alone is equivalent to KD in accuracy, p_true and NLL, at any (T, beta) and alpha ...
    for metric in ("accuracy", "p_true", "nll"):
        assert (ablation[metric].loc[[(a, scale, kd) for a in ALPHAS], "verdict"] == "equivalent").all()
    # ... and in ECE at T = 1; at T = 4 its ECE difference is not settled either way
    scale_ece = set(ablation["ece"].loc[[(a, scale, kd) for a in ALPHAS], "verdict"])
    assert scale_ece == ({"equivalent"} if temperature == 1 else {"not settled"})
    # at T = 4 the target alone also carries the worse calibration
    if temperature != 1:
        assert (ablation["ece"].loc[[(a, target, kd) for a in ALPHAS], "verdict"] == "higher").all()

# %% [markdown] id="this-teacher-answer-clear"
# On this teacher the answer is clear (each asserted above): **the target moves the metrics, the row weight does not.**
#
# - **Target only** reproduces what the full loss does to confidence and NLL, at $T = 1$ (slightly lower $p_{\text{true}}$ and NLL) and at $T = 4$ (much lower $p_{\text{true}}$, much higher ECE and NLL): the same verdicts as klloss_v2 or our softened variant, at every setting tried and both α.
# - **Scale only** is shown equivalent to KD in accuracy, $p_{\text{true}}$ and NLL at every setting, even at $T = 4$, β = 0.5, where the rows weigh most (the mean $W/k$, and the α the mix behaves as if it had, are printed in the $W_i/k$ section). Its ECE is shown equivalent to KD's at $T = 1$ (β = 0.5); at $T = 4$ the ECE difference is neither shown different nor shown equivalent.
# - So [notebook 04](04-what-it-teaches.ipynb)'s $q^*_y < p_y$ is the mechanism behind the lower confidence here, and the heavier rows are not. The wrong teachers of [notebook 05c](05c-real-data-wrong-teachers.ipynb) show another case: there the row weight carries the accuracy gain, alone at β = 1.5 and together with the (clamped) target at β = 0.5.

# %% [markdown] id="exercises"
# <a id="exercises"></a>
# ## Exercises
#
# Each exercise has a worked solution below it, folded: try it first. The solutions run, and check themselves.
#
# **Exercise 1 · Holm's adjustment by hand.** The NLL difference of klloss_v2 at β = 0.5 from KD at $T = 1$, at α = 0.9, has an equivalence (TOST) p-value below 0.05 on its own, but not after Holm's adjustment (both printed in the section on paired comparisons). Recompute its adjusted value from the section's p-values: sort all of them (both tests, every metric, both α), find its rank $i$ among the $m$ p-values, multiply it by $m - i + 1$, and take the largest of that and the same products of the p-values ranked before it. Why is the factor so large, when most of the section's comparisons are clear?

# %% [markdown] id="solution-holm-by-hand" tags=["solution"]
# **Solution 1.** Holm's procedure tests the p-values from the smallest up: the $i$-th smallest must be below $0.05/(m - i + 1)$, where $m - i + 1$ is the number of hypotheses not yet rejected, and it stops at the first that is not. The adjusted p-value $\max_{j \le i} (m - j + 1)\,p_{(j)}$ is the smallest level at which the procedure would still reach and reject it. The factor is large because this TOST p-value, small on its own, sits in the middle of the ranking: nearly half of the section's p-values are smaller still (the clear differences and equivalences), and the $m - i + 1$ hypotheses left when its turn comes are as many again (the cell prints the rank, the factor and the product). Holm is uniformly more powerful than Bonferroni, whose factor would be $m$ for every p-value, but with this many comparisons a p-value in the middle of the ranking still needs to be very small.

# %% tags=["solution"]
section_p = np.concatenate(
    [tests[metric]["p"].to_numpy() for metric in tests]
    + [tests[metric]["p_equivalence"].to_numpy() for metric in tests]
)  # the order ex.settle adjusts them in: every difference test, then every equivalence test
m_all = len(section_p)
p_one = nll_outside["p_equivalence"]
# where p_one sits in section_p: the equivalence block, the NLL table, its row
before_nll = sum(len(tests[metric]) for metric in list(tests)[: list(tests).index("nll")])
position = m_all // 2 + before_nll + list(tests["nll"].index).index((0.9, kl(0.5), KD1))
assert section_p[position] == p_one
order = np.argsort(section_p, kind="stable")  # ascending, as ex.holm sorts them
rank = int(np.nonzero(order == position)[0][0]) + 1  # 1 for the smallest
products = (m_all - np.arange(m_all)) * section_p[order]  # (m - j + 1) p_(j), j = 1..m
by_hand = min(products[:rank].max(), 1.0)
print(
    f"m = {m_all} p-values; this one, {p_one:.4f}, is number {rank} from the smallest; "
    f"factor m - i + 1 = {m_all - rank + 1}; product {products[rank - 1]:.4f}; "
    f"largest product up to it {products[:rank].max():.4f}"
)
print(f"adjusted by hand: {by_hand:.4f}; by ex.settle: {nll_outside['p_equivalence_holm']:.4f}")
assert math.isclose(by_hand, nll_outside["p_equivalence_holm"], rel_tol=1e-12)
assert math.isclose(by_hand, ex.holm(section_p)[position], rel_tol=1e-12)
assert p_one < ex.LEVEL <= by_hand
assert 0.4 <= (rank - 1) / m_all < 0.5  # nearly half of the p-values are smaller

# %% [markdown] id="exercise-2-other-margins"
# **Exercise 2 · Other margins.** *(open-ended)* The accuracy margin, ±0.5 percentage points, was fixed before the runs were read ([notebook 04a](04a-statistics-primer.ipynb) says why it must be). Suppose another team had fixed ±0.25 pp, or ±1 pp. Before computing: which accuracy verdicts of this section can change, and in which direction? Settle the section's family again with each margin (`ex.compare(..., margin=...)`, then `ex.settle`), and count the verdicts that change. Then argue, for your own use of a distillation loss, which margin you would fix, and from what.

# %% [markdown] id="solution-2-other-margins" tags=["solution"]
# **Solution 2.** The margin enters the equivalence tests directly: a wider margin makes equivalence easier to show, so the direct effect can only move a verdict from "not settled" to "equivalent", and a narrower margin only the other way. Indirectly, Holm's adjustment runs over the whole family, so a changed p-value shifts the ranking of all the others and could, in principle, move any verdict. On these runs only the direct effect shows (the cell counts the changes for each margin and asserts their directions). A margin is a statement about what difference matters to you (one test image in 540? the run-to-run spread of your own model?), fixed before the results are read; the counts say how much the verdicts of this experiment lean on that choice.

# %% tags=["solution"]
margin_rows = []
for scale in (0.5, 1.0, 2.0):
    margin = scale * ex.MARGINS["accuracy"]
    family = {
        metric: ex.compare(main, metric, PAIRS + SOFT_PAIRS, margin=margin if metric == "accuracy" else None)
        for metric in METRICS
    }
    again = ex.settle(family)["accuracy"]["verdict"]
    before = tests["accuracy"]["verdict"]
    changed = again != before
    margin_rows.append({"margin (pp)": 100 * margin, "verdicts changed": int(changed.sum())})
    if scale > 1:
        assert set(again[changed]) <= {"equivalent"}  # a wider margin only adds equivalences
    if scale < 1:
        assert set(before[changed]) <= {"equivalent"}  # a narrower one only takes them away
    if scale == 1:
        assert not changed.any()  # the section's own margin gives the section's verdicts
display(pd.DataFrame(margin_rows).set_index("margin (pp)"))
