# %% [markdown] id="title"
# # 05c · Appendix to 05: teachers that are wrong, in full
#
# *What [notebook 05](05-real-data.ipynb) reads off the teachers trained on flipped labels, in full: every comparison with its interval, what negative weights do to training, what klloss_v2 does on a row the teacher gets wrong, the recipe's leads, the clamped variant and its parts, and the limitations of the whole experiment.*
#
# **You will learn:** where klloss_v2's weights turn negative on a teacher that is confidently wrong, and what that does to training; every comparison of the wrong teachers' family, with its interval and its p-values before and after Holm's adjustment; why a row the teacher gets wrong counts less and what its target $q^*$ gives the true label; how the leads of a teacher's training rows set β, and why one row with a negative weight is enough to take away the loss's floor; what clamping the weights at zero (our variant) and each of its two parts do; and what this experiment cannot tell.
#
# **You need first:** [notebook 05](05-real-data.ipynb) (the set-up, the verdicts this appendix details), [notebook 04a](04a-statistics-primer.ipynb) (paired t-intervals, TOST, Holm's adjustment), notebooks [03](03-beta-and-offset.ipynb) and [04](04-what-it-teaches.ipynb) (negative weights, the identity $L_i = W_i\,\mathrm{KL}(q^*_i\|q_i) + L_{\min,i}$); [notebook 05b](05b-real-data-appendix.ipynb) for the clean teacher's mechanism.
#
# This notebook reads the same stored runs as [notebook 05](05-real-data.ipynb) (`data/experiments/digits.json`) and settles the same families of comparisons with the same functions (`course/realdata.py`), so every verdict here is the one [notebook 05](05-real-data.ipynb) prints. It trains nothing: [notebook 05](05-real-data.ipynb) checks that the stored numbers are the ones the code gives.

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

ex.seeds_everything(0)
pd.set_option("display.precision", 4)
course.i18n.translate_outputs()  # tables and figures in the reader's language, the Chinese kept for notebooks/zh/
config, plan, stored = rd.load_runs()  # the stored runs, exactly this code's configuration and plan
data = ex.load_digits_split(config)  # the split only: the teachers' logits are stored
SEEDS, BETAS, ALPHAS, SOFT_BETAS, T = plan.seeds, plan.betas, plan.alphas, plan.soft_betas, config.temperature
KD1, KD4, k, kl = rd.KD1, rd.kd(T), klloss.ARTICLE_OFFSET, rd.kl
METRICS = ["accuracy", "p_true", "nll", "ece"]
number, p_value, readable = rd.number, rd.p_value, rd.readable
wrong = {w["fraction"]: w for w in stored["wrong_teacher"]}
rows_index = torch.arange(len(data.y_train))
# the clean teacher's families (notebook 05b shows them), counted for the limitations at the end
main = ex.frame(stored["main"]["runs"])
tests = ex.settle({m: ex.compare(main, m, rd.clean_pairs(BETAS, T, SOFT_BETAS)) for m in METRICS})
ABLATION = [pair for _, group in rd.ablation_groups(plan.ablation, T) for pair in group]
ablation = ex.settle({m: ex.compare(main, m, ABLATION) for m in METRICS})
n_main, n_ablation = (sum(len(table) for table in family.values()) for family in (tests, ablation))
# what the limitations say of the clean teacher: how sure it is, and how much mass q* can move
z_train = ex.stored_logits(stored["main"]["teacher"], "train").double()
z_test = ex.stored_logits(stored["main"]["teacher"], "test").double()
p_y = z_train.softmax(1)[rows_index, data.y_train]
moved = {
    beta: 0.5
    * (analysis.stationary_student(z_train, z_train, data.y_train, beta) - z_train.softmax(1))
    .abs()
    .sum(1)
    .mean()
    .item()
    for beta in BETAS
}
student_size = ex.count_parameters(ex.mlp(data.x_train.shape[1], config.student_hidden, data.classes))
print(
    f"{len(plan.noise_seeds)} seeds per (labels flipped, alpha, loss); shares of labels flipped: {list(wrong)}"
)

# %% [markdown] id="teacher-that-wrong"
# <a id="wrong-teachers"></a>
# ## A teacher that is wrong
#
# Negative weights, the loss's worst failure (notebooks [03](03-beta-and-offset.ipynb) and [04](04-what-it-teaches.ipynb): a class the teacher ranks above the label by more than $k\beta$ gets a negative weight, and the loss has no lower bound), need training samples the teacher gets wrong, confidently. The clean teacher of notebooks [05](05-real-data.ipynb) and [05b](05b-real-data-appendix.ipynb) gets none wrong. So `make experiments` also trains **teachers on training labels with 0 %, 10 %, 20 % and 40 % of them flipped** to another class at random, for long enough (`config.wrong_teacher_epochs` epochs) that they fit the flipped labels: they are confidently wrong on those rows. The students are still taught with the true labels, by the same losses, at both α, with fewer seeds each (printed below).

# %%
wrong_runs = rd.wrong_runs(stored)  # every run, with the share of labels flipped for its teacher
teachers = rd.wrong_teachers(stored)
print(
    f"{len(plan.noise_seeds)} seeds per (labels flipped, alpha, loss); teachers trained {config.wrong_teacher_epochs} epochs, learning rate {config.wrong_teacher_lr:g}"
)
display(teachers.round(3))
negative = teachers.filter(like="rows with w < 0")
assert (teachers["fits its (flipped) labels"] == 1).all()
assert (negative.iloc[:, -1] == 0).all() and (
    negative.diff(axis=1).iloc[:, 1:] <= 0
).all().all()  # fewer as beta grows
# the stored shares are klloss.negative_weight_share of the stored logits
for w in wrong.values():
    z_f = ex.stored_logits(w["teacher"])
    for b, share in w["teacher"]["negative_weight_rows"].items():
        assert klloss.negative_weight_share(z_f, data.y_train, float(b)).item() == share

# %% [markdown] id="happened-training-per-fraction"
# What happened in training, per fraction of flipped labels (columns) and per loss: the mean training loss in the last epoch, and the largest student logit $|s|$ over the training set (median over seeds: a loss that runs off to $-\infty$ drives logits without bound):

# %%
LOSSES = ["CE only", KD1, KD4] + [kl(b) for b in BETAS]
flipped_pct = {f: f"{f:.0%}" for f in wrong}


def wrong_table(column, how="mean"):
    table = wrong_runs.pivot_table(index=["alpha", "loss"], columns="flipped", values=column, aggfunc=how)
    table = (
        table.rename(columns=flipped_pct).reindex([(a, n) for a in ALPHAS for n in LOSSES]).dropna(how="all")
    )
    table.columns.name = "labels flipped"
    return table


for title, column, how, digits in [
    (markdown("title-wrong-loss", "**mean training loss, last epoch**"), "final_loss", "mean", 3),
    (
        markdown("title-wrong-logit", "**largest |s| on the training set (median over seeds)**"),
        "max_logit",
        "median",
        1,
    ),
]:
    display(title, wrong_table(column, how).round(digits))

# %% [markdown] id="students-compared-with-intervals"
# <a id="wrong-family"></a>
# **The students, compared with intervals.** Each klloss_v2 student against its KD ($T = 1$) twin; the student with no teacher (CE only) against KD at $T = 1$ and against klloss_v2 at β = 1.5; and KD at $T = 4$, the winner on the clean teacher, against KD at $T = 1$, with klloss_v2 at β = 1.5 and CE only against it; per fraction of flipped labels: the mean paired difference over the seeds (printed above), its 95 % t-interval, the t-test and its Holm-adjusted p-value over every comparison of this section (a family of its own), and the verdict. With this few seeds a t-interval is wide: several differences that look clear in a table of means do not survive.

# %%
WRONG_PAIRS = rd.wrong_pairs(BETAS, T)  # the clean teacher's winner, KD at T = 4, included
WRONG_METRICS = ["accuracy", "nll", "ece"]

wrong_tests = ex.settle(rd.compare_by_fraction(wrong_runs, WRONG_PAIRS, WRONG_METRICS, list(wrong)))
n_wrong = sum(len(table) for table in wrong_tests.values())
print(
    f"{n_wrong} comparisons, each tested for a difference and for equivalence: Holm over {2 * n_wrong} p-values"
)

readable_wrong = rd.readable_by_fraction

for metric, title in [
    ("accuracy", markdown("title-wrong-accuracy", "**test accuracy: first minus second**")),
    ("nll", markdown("title-wrong-nll", "**test NLL (lower is better), in nats: first minus second**")),
    ("ece", markdown("title-wrong-ece", "**test ECE (lower is better): first minus second**")),
]:
    display(
        title,
        readable_wrong(wrong_tests[metric], "nats" if metric == "nll" else "pp"),
    )


# %%
def colour(loss):
    """One colour per loss, the same in every panel."""
    fixed = {"CE only": "black", KD1: "0.45", KD4: "tab:green"}
    if loss in fixed:
        return fixed[loss]
    return plt.cm.plasma(BETAS.index(float(loss.split("= ")[1])) / len(BETAS))


def style(loss):
    """KD at T = 1 dashed and on top: klloss_v2 at beta = 1000 lies right under it."""
    return {
        "color": colour(loss),
        **({"linestyle": "--", "linewidth": 2, "zorder": 3} if loss == KD1 else {}),
    }


fig, axes = plt.subplots(2, 2, figsize=(13, 9.5), constrained_layout=True)
ax = axes[0, 0]
for f in wrong:
    values = [wrong[f]["teacher"]["negative_weight_rows"][f"{b:g}"] for b in BETAS]
    ax.plot(BETAS, values, marker="o", color=plt.cm.Reds(0.3 + f * 1.5), label=f"{f:.0%} of labels flipped")
    ax.annotate(
        f"{values[0]:.1%}", (BETAS[0], values[0]), textcoords="offset points", xytext=(6, 4), fontsize=8
    )
small_rows = ", ".join(f"{wrong[f]['teacher']['negative_weight_rows'][f'{BETAS[1]:g}']:.1%}" for f in wrong)
ax.annotate(
    f"at β = {BETAS[1]:g}: {small_rows}",
    (BETAS[1], 0.01),
    textcoords="offset points",
    xytext=(8, 14),
    fontsize=8,
)
ax.set(
    xscale="log",
    xlabel="β",
    ylabel="fraction of training rows",
    title="rows where some weight is negative (teacher vs true label)",
)
ax.legend(fontsize=8)
ax = axes[0, 1]
worst, alpha0 = max(wrong), ALPHAS[0]
for loss in LOSSES:
    runs = wrong_runs[
        (wrong_runs["flipped"] == worst) & (wrong_runs["alpha"] == alpha0) & (wrong_runs["loss"] == loss)
    ]
    curve = np.median(np.stack(runs["history"].to_list()), axis=0)
    ax.plot(range(1, len(curve) + 1), curve, label=loss, **style(loss))
ax.set_yscale("symlog", linthresh=1)
ax.axhline(0, color="crimson", linewidth=0.8)
ax.set(
    xlabel="epoch",
    ylabel="mean training loss (symlog)",
    title=f"training loss, {worst:.0%} flipped, α = {alpha0} (median over seeds)",
)
ax.legend(fontsize=8)
# bottom: the comparisons the text reads, with their 95 % t-intervals, at alpha0
fractions = [100 * f for f in wrong]
ax = axes[1, 0]
for offset, loss in zip(
    np.linspace(-1.2, 1.2, len(BETAS) + 2), [kl(b) for b in BETAS] + ["CE only", KD4], strict=True
):
    table = wrong_tests["accuracy"].xs((alpha0, loss, KD1), level=["alpha", "loss", "baseline"])
    ax.errorbar(
        np.array(fractions) + offset,
        100 * table["mean"],
        yerr=[100 * (table["mean"] - table["ci_low"]), 100 * (table["ci_high"] - table["mean"])],
        marker="o",
        capsize=3,
        label=f"{loss} − KD, T = 1",
        **{k_: v for k_, v in style(loss).items() if k_ != "zorder"},
    )
ax.axhline(0, color="0.45", linestyle="--", linewidth=1.5, label="KD, T = 1 (zero difference)")
ax.set(
    xlabel="training labels flipped for the teacher (%)",
    ylabel="paired difference in test accuracy (pp)",
    title=f"students against KD at T = 1, α = {alpha0}: mean and 95 % t-interval over {len(plan.noise_seeds)} seeds",
)
ax.set_xticks(fractions)
ax.legend(fontsize=8)
ax = axes[1, 1]
for offset, loss in zip(np.linspace(-1.2, 1.2, len(LOSSES)), LOSSES, strict=True):
    runs = wrong_runs[(wrong_runs["alpha"] == alpha0) | (wrong_runs["loss"] == "CE only")]
    runs = runs[runs["loss"] == loss].groupby("flipped")["nll"]
    mean, sd, n = runs.mean(), runs.std(ddof=1), runs.count()
    half = sd / np.sqrt(n) * stats.t.ppf(0.975, n - 1)  # 95 % t-interval of the mean
    ax.errorbar(
        np.array(fractions) + offset, mean, yerr=half, marker="o", capsize=3, label=loss, **style(loss)
    )
ax.set_yscale("log")
ticks = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50]
ax.yaxis.set_major_locator(FixedLocator(ticks))
ax.yaxis.set_minor_formatter(NullFormatter())
ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
ax.set(
    xlabel="training labels flipped for the teacher (%)",
    ylabel="test NLL in nats (log scale; lower is better)",
    title=f"students' test NLL, α = {alpha0}: mean and 95 % t-interval over {len(plan.noise_seeds)} seeds",
)
ax.set_xticks(fractions)
ax.legend(fontsize=8)
print("saved", course.plotting.save(fig, "05c-wrong-teacher"))
plt.show()

# %%
flipped = [f for f in wrong if f > 0]
neg = {f: {float(b): v for b, v in wrong[f]["teacher"]["negative_weight_rows"].items()} for f in wrong}


def runs_of(f, a, loss):
    return wrong_runs[
        (wrong_runs["flipped"] == f) & (wrong_runs["alpha"] == a) & (wrong_runs["loss"] == loss)
    ]


def wrong_verdicts(metric, loss, baseline=KD1, fractions=flipped, tables=wrong_tests):
    """{(flipped, alpha): verdict} of loss minus baseline."""
    return {(f, a): tables[metric].loc[(f, a, loss, baseline), "verdict"] for f in fractions for a in ALPHAS}


negative_final = wrong_runs[wrong_runs["final_loss"] < 0].groupby(["flipped", "loss"]).size()
print(
    "(labels flipped, loss) with a negative training loss at the end, and in how many runs:",
    {key: int(count) for key, count in negative_final.items()},
)
growth = {}  # (flipped, alpha) -> {beta: median largest |s| / KD's}
for f in flipped:
    for a in ALPHAS:
        beta_small = runs_of(f, a, kl(min(BETAS)))
        still_falling = bool((beta_small["history"].map(lambda h: h[-1] < h[len(h) * 2 // 3])).all())
        kd_logit = runs_of(f, a, KD1)["max_logit"].median()
        growth[f, a] = {b: runs_of(f, a, kl(b))["max_logit"].median() / kd_logit for b in (0.5, 1.5)}
        print(
            f"{f:.0%} flipped, alpha = {a}, beta = {min(BETAS)}: every seed still falling in the last third: {still_falling}; "
            f"largest |s| {growth[f, a][0.5]:.0f}x KD's (at beta = 1.5: {growth[f, a][1.5]:.1f}x)"
        )
        assert still_falling and growth[f, a][0.5] > 10
for metric in ("accuracy", "nll", "ece"):
    for b in (0.5, 1.5):
        print(f"{metric}, beta = {b} minus KD T = 1:", wrong_verdicts(metric, kl(b)))
print("accuracy, CE only minus KD T = 1:", wrong_verdicts("accuracy", "CE only"))
print("accuracy, CE only minus klloss_v2 beta = 1.5:", wrong_verdicts("accuracy", "CE only", kl(1.5)))
# negative weights appear only on rows whose label the teacher learned wrong: at beta = 0.5 on most of them
for f in wrong:
    assert neg[f][1000.0] == 0 and neg[f][5.0] == 0 and neg[f][1.5] < 0.011 and neg[f][0.5] <= f + 1e-3
    assert f == 0 or neg[f][0.5] > 0.75 * f
# the loss ends negative exactly where weights are negative on a sizeable share of rows: beta = 0.5, labels flipped
assert set(negative_final.index) == {(f, kl(0.5)) for f in flipped}
assert (negative_final == 2 * len(plan.noise_seeds)).all()  # every seed, both alphas
# beta = 0.5: NLL higher everywhere; accuracy lower at 40 %, not settled at 10 and 20 % (significant alone)
assert set(wrong_verdicts("nll", kl(0.5)).values()) == {"higher"}
acc_half = wrong_verdicts("accuracy", kl(0.5))
assert {v for (f, _), v in acc_half.items() if f == max(flipped)} == {"lower"}
assert {v for (f, _), v in acc_half.items() if f < max(flipped)} == {"not settled"}
assert (
    wrong_tests["accuracy"].loc[[(f, a, kl(0.5), KD1) for f in flipped for a in ALPHAS], "ci_high"] < 0
).all()
# beta = 1.5: accuracy higher at 10 and 20 %, not settled at 40 %; NLL lower everywhere; ECE lower but at 10 %, alpha = 0.5
acc_15 = wrong_verdicts("accuracy", kl(1.5))
assert {v for (f, _), v in acc_15.items() if f < max(flipped)} == {"higher"}
assert {v for (f, _), v in acc_15.items() if f == max(flipped)} == {"not settled"}
at_40 = wrong_tests["accuracy"].loc[[(max(flipped), a, kl(1.5), KD1) for a in ALPHAS]]
assert (
    at_40["ci_low"].iloc[0] < 0 < at_40["ci_high"].iloc[0] and at_40["ci_low"].iloc[1] > 0
)  # alpha 0.5, 0.9
assert set(wrong_verdicts("nll", kl(1.5)).values()) == {"lower"}
ece_15 = wrong_verdicts("ece", kl(1.5))
assert ece_15.pop((min(flipped), ALPHAS[0])) == "not settled" and set(ece_15.values()) == {"lower"}
# no teacher at all: more accurate than KD at T = 1 everywhere, and than klloss_v2 at beta = 1.5 at 20 and 40 %
assert set(wrong_verdicts("accuracy", "CE only").values()) == {"higher"}
ce_15 = wrong_verdicts("accuracy", "CE only", kl(1.5))
assert {v for (f, _), v in ce_15.items() if f == min(flipped)} == {"not settled"}
assert {v for (f, _), v in ce_15.items() if f > min(flipped)} == {"higher"}
# at beta = 1.5 the few negative weights already drive the logits at the largest share flipped (elsewhere near KD),
# above ten times KD's at alpha = 0.9, yet less than at beta = 0.5 at any share flipped
assert all(g[1.5] > 5 if f == max(flipped) else g[1.5] < 1.5 for (f, _), g in growth.items())
assert growth[max(flipped), 0.9][1.5] > 10
assert max(g[1.5] for g in growth.values()) < min(g[0.5] for g in growth.values())
# with the teacher trained the same way on the true labels, klloss_v2 is KD at T = 1 again
assert all(set(wrong_verdicts("accuracy", kl(b), fractions=[0.0]).values()) == {"equivalent"} for b in BETAS)

# %%
# KD at T = 4, the winner on the clean teacher, where the teacher is wrong
KD4_PAIRS = [(KD4, KD1), (kl(1.5), KD4), ("CE only", KD4)]
for loss, baseline in KD4_PAIRS:
    print(f"accuracy, {loss} minus {baseline}:", wrong_verdicts("accuracy", loss, baseline))
print(f"ECE, {KD4} minus {KD1}:", wrong_verdicts("ece", KD4))
acc_table = wrong_tests["accuracy"]
# how far KD at T = 4's mean accuracy lies below each student it is compared with, per (flipped, alpha), in pp
below_kd4 = pd.DataFrame(
    {
        KD1: [-acc_table.loc[(f, a, KD4, KD1), "mean"] for f in flipped for a in ALPHAS],
        kl(1.5): [acc_table.loc[(f, a, kl(1.5), KD4), "mean"] for f in flipped for a in ALPHAS],
        "CE only": [acc_table.loc[(f, a, "CE only", KD4), "mean"] for f in flipped for a in ALPHAS],
    },
    index=pd.MultiIndex.from_product([flipped, ALPHAS], names=["flipped", "alpha"]),
)
print("mean accuracy of each student minus KD at T = 4's, with labels flipped (pp):")
display((100 * below_kd4).round(2))
# with labels flipped, every student it is compared with has a higher mean accuracy, in every setting
assert (below_kd4 > 0).all().all()
# after Holm: less accurate than no teacher everywhere; than klloss_v2 at beta = 1.5 in all settings but one,
# whose interval excludes zero on its own; than KD at T = 1 only at 40 % flipped with alpha = 0.5
assert set(wrong_verdicts("accuracy", "CE only", KD4).values()) == {"higher"}
kl_kd4_acc = wrong_verdicts("accuracy", kl(1.5), KD4)
assert kl_kd4_acc.pop((min(flipped), ALPHAS[1])) == "not settled" and set(kl_kd4_acc.values()) == {"higher"}
assert acc_table.loc[(min(flipped), ALPHAS[1], kl(1.5), KD4), "ci_low"] > 0
kd4_kd1_acc = wrong_verdicts("accuracy", KD4)
assert kd4_kd1_acc.pop((max(flipped), ALPHAS[0])) == "lower" and set(kd4_kd1_acc.values()) == {"not settled"}
assert (acc_table.loc[[(f, a, KD4, KD1) for (f, a) in kd4_kd1_acc], "ci_high"] < 0).any()  # some, alone
# better calibrated than KD at T = 1 with any labels flipped
assert set(wrong_verdicts("ece", KD4).values()) == {"lower"}
# with the teacher trained on the true labels (0 %), none of these accuracy differences is shown either way
assert all(
    set(wrong_verdicts("accuracy", *pair, fractions=[0.0]).values()) == {"not settled"} for pair in KD4_PAIRS
)

# %% [markdown] id="wrong-teachers-show"
# What the wrong teachers show (each statement asserted above; "shown" means after Holm's adjustment over this section):
#
# - **Where the weights turn negative.** Only on rows whose label the teacher learned wrong (it fits every label it was given, so elsewhere the true label is its top class), and at β = 0.5 on most of them: the teacher ranks its wrong class above the true label by more than $k\beta = 4$. At β = 1.5 ($k\beta = 12$) on about 1 % of rows or fewer, at β ≥ 5 on none. With the article's $k = 8$, a negative weight needs a teacher that is wrong *and* sure of it.
# - **What the negative weights do to training (β = 0.5).** Exactly as notebooks [03](03-beta-and-offset.ipynb) and [04](04-what-it-teaches.ipynb) warn: the training loss goes negative in every run with flipped labels, at both α, and is still falling in the last third of training: it has no floor. The student's logits run away (median largest $|s|$ more than ten times KD's) and its test NLL explodes (higher than KD's everywhere). Its accuracy is shown lower than KD's at $T = 1$ only at 40 % flipped; at 10 % and 20 % every interval lies below zero on its own, but the drop does not survive the adjustment with this few seeds.
# - **A few negative weights (β = 1.5).** At 40 % flipped the logits already grow to several times KD's (the ratios printed above; at α = 0.9 above ten times too), though less than at β = 0.5 at any share flipped; at 10 % and 20 % they stay near KD's. What sets this regime apart is the loss: it stays positive within the epochs trained, where at β = 0.5 it is negative in every run. The student is more accurate than with KD at $T = 1$ at 10 % and 20 % flipped (both α); at 40 % the difference is **neither shown nor shown equivalent** (at α = 0.5 the interval includes zero; at α = 0.9 it excludes zero alone but does not survive the adjustment). Its NLL is lower at every share flipped and its ECE lower at all but one setting: better calibrated than the KD twin.
# - **Better no teacher than a wrong one.** With any labels flipped, cross-entropy alone is more accurate than KD at $T = 1$ everywhere, and than klloss_v2 at β = 1.5 at 20 % and 40 % flipped (at 10 % flipped the difference is neither shown nor shown equivalent, at either α). And with a teacher trained the same long way on the true labels (0 %), klloss_v2 is again shown equivalent to KD at $T = 1$ in accuracy at every β.
# - **KD at $T = 4$, the winner on the clean teacher, loses where the teacher is wrong.** With labels flipped, every student it is compared with (no teacher, KD at $T = 1$, klloss_v2 at β = 1.5) has a higher mean test accuracy than it, in every setting (the differences are printed above). After the adjustment it is shown less accurate than no teacher at all everywhere, and than klloss_v2 at β = 1.5 in every setting but one (10 % flipped, α = 0.9, where the interval excludes zero on its own). Against KD at $T = 1$ the drop is shown only at 40 % flipped with α = 0.5; elsewhere it is neither shown nor shown equivalent, though some intervals exclude zero on their own. It is better calibrated than KD at $T = 1$ there (lower ECE with any labels flipped). With the teacher trained on the true labels (0 %), none of these accuracy differences is shown either way.

# %% [markdown] id="klloss_v2-does-row-teacher"
# <a id="wrong-row"></a>
# **What klloss_v2 does on a row the teacher gets wrong.** Take a row with $\mu = z_y - \sum_c p_c z_c < 0$, which needs a teacher that is wrong (a label on top has $\mu \ge 0$), and whose weights are all $\ge 0$ (otherwise $q^*$ does not exist at all: the row's loss has no minimum). Then:
#
# - $W = k + \mu/\beta < k$, so the target gives the true label **more** than the teacher does: $q^*_y / p_y = k/W > 1$;
# - mass leaves exactly the classes whose logit is above the teacher's mean logit, $z_c > \sum_j p_j z_j$ (there $w_c < W$), and goes to the others; a class the teacher ranks above the label but below its mean logit *gains*. With $z = (0, 10, 1)$, $y = 0$, β = 1.5, class 2 is ranked above the label and gets $q^*_2/p_2 = w_2/W$, more than five times the teacher's mass (printed below);
# - the row's whole distillation term shrinks to $W/k$ of KD's.
#
# It is not that "a class ranked above the label gets $w_c < k$, hence less than the teacher": $W < k$ too, and $q^*_c/p_c = w_c/W$ compares $w_c$ with $W$, not with $k$. Checked on every such training row of the teachers with flipped labels, at β = 1.5:

# %%
example, example_label = torch.tensor([[0.0, 10.0, 1.0]], dtype=torch.float64), torch.tensor([0])
example_scale, example_q = ex.reweighting(example, example_label, 1.5)
example_p = example.softmax(1)
assert example_scale.item() < 1 and (example_q[0, 2] / example_p[0, 2]).item() > 5
print(
    f"z = (0, 10, 1), y = 0, beta = 1.5: W/k = {example_scale.item():.3f}, q*_y / p_y = "
    f"{(example_q[0, 0] / example_p[0, 0]).item():.2f}, q*_2 / p_2 = {(example_q[0, 2] / example_p[0, 2]).item():.2f}"
)
mechanism = []
for f in [f for f in wrong if f > 0]:
    z_f = ex.stored_logits(wrong[f]["teacher"]).double()
    w_f = klloss.weight(klloss.margin(z_f, data.y_train), 1.5, k)
    p_f = z_f.softmax(1)
    mu = z_f[rows_index, data.y_train] - (p_f * z_f).sum(1)  # z_y - sum_c p_c z_c
    wrong_row = z_f.argmax(1) != data.y_train
    chosen = (mu < 0) & (w_f >= 0).all(1)
    assert not (chosen & ~wrong_row).any()  # mu < 0 only where the teacher is wrong
    big_w = (w_f * p_f).sum(1)[chosen]
    q_star_f = analysis.stationary_student(z_f[chosen], z_f[chosen], data.y_train[chosen], 1.5)
    at_label = torch.arange(int(chosen.sum())), data.y_train[chosen]
    ratio_y = q_star_f[at_label] / p_f[chosen][at_label]
    assert (big_w < k).all() and torch.allclose(ratio_y, k / big_w, rtol=1e-10) and (ratio_y > 1).all()
    # mass leaves exactly the classes above the teacher's mean logit
    above_mean = z_f[chosen] > (p_f * z_f).sum(1)[chosen, None]
    assert torch.equal(q_star_f < p_f[chosen], above_mean)
    mechanism.append(
        {
            "labels flipped": f"{f:.0%}",
            "rows the teacher gets wrong": int(wrong_row.sum()),
            "of them with mu < 0 and every w >= 0": int(chosen.sum()),
            "with a negative weight (no q*)": int(((w_f < 0).any(1)).sum()),
            "mean W/k there": (big_w / k).mean().item(),
            "mean q*_y / p_y there": ratio_y.mean().item(),
        }
    )
display(pd.DataFrame(mechanism).set_index("labels flipped").round(3))

# %% [markdown] id="practical-recipe-choosing-your"
# <a id="leads"></a>
# ## The recipe of [notebook 05](05-real-data.ipynb), step by step: choosing β for your teacher, before training
#
# **1 · Read kβ off your teacher's leads.** A row gets a negative weight exactly when some class leads the label by more than $k\beta$: when its *lead* $g_i = \max_c z_{ic} - z_{iy}$ (0 where the teacher is right, the most negative margin's size where it is wrong) exceeds $k\beta$. One such row is enough to take away the loss's floor, and a share under 1 % already drives the student's logits up (step 2 shows both). So **choose $k\beta$ at or above the largest lead on your training set, with headroom** for inputs the leads were not computed on (augmented or new images: the clean teacher leads on none of its training rows, yet on some of its test rows, printed below), **or clamp the weights** (step 3).
#
# The quantiles of the leads are a diagnostic: they show how far the largest lead lies above most rows, and which rows a smaller $k\beta$ would put at risk. (With $k\beta$ at the $q$-quantile of the leads, at most a share $1 - q$ of the rows can have a negative weight, by construction, so the table does not repeat that share.) On the teachers with flipped labels (stored logits; the β each quantile needs at $k = 8$):

# %%
LEVELS = [0.99, 0.999, 1.0]
recipe = []
for f in [f for f in wrong if f > 0]:
    z_f = ex.stored_logits(wrong[f]["teacher"])
    lead = z_f.amax(1) - z_f[rows_index, data.y_train]  # g_i = max_c z_c - z_y, 0 where the teacher is right
    for level in LEVELS:
        k_beta = torch.quantile(lead.double(), level, interpolation="higher").item()  # a lead that occurs
        share = klloss.negative_weight_share(z_f, data.y_train, k_beta / k).item()
        assert share <= 1 - level + 1e-12  # by construction: only leads above k beta count
        recipe.append(
            {
                "labels flipped": f"{f:.0%}",
                "quantile of the lead": f"{level:.1%}" if level < 1 else "largest",
                "k beta": k_beta,
                "beta at k = 8": k_beta / k,
            }
        )
    assert share == 0  # at the largest lead no training row has a negative weight
display(pd.DataFrame(recipe).set_index(["labels flipped", "quantile of the lead"]).round(4))
# headroom: leads on inputs the training set did not have; the clean teacher's, on its training and test rows
clean_lead = {
    "train": z_train.amax(1) - z_train[rows_index, data.y_train],
    "test": z_test.amax(1) - z_test[torch.arange(len(data.y_test)), data.y_test],
}
print(
    "the clean teacher's largest lead: "
    + ", ".join(f"{split} rows {lead.max().item():.2f}" for split, lead in clean_lead.items())
)
assert clean_lead["train"].max() == 0 < clean_lead["test"].max()
# one row with a negative weight already removes the floor: on the 40 % teacher at beta = 1.5, a student equal
# to the teacher everywhere but on one such row, whose negative-weight classes it pushes down ever further
z_40 = ex.stored_logits(wrong[max(flipped)]["teacher"]).double()
w_40 = klloss.weight(klloss.margin(z_40, data.y_train), 1.5, k)
one_row = int((w_40 < 0).any(1).nonzero()[0, 0])
floorless = {}
for push in (0.0, 1e2, 1e4):
    s_push = z_40.clone()
    s_push[one_row] -= push * (w_40[one_row] < 0)  # s_c - push where w_c < 0, on that row only
    floorless[push] = klloss.klloss_v2(z_40, s_push, z_40, data.y_train, 1.5).item()
n_negative_40 = int((w_40 < 0).any(1).sum())  # rows with a negative weight
assert n_negative_40 > 1 and round(neg[max(flipped)][1.5] * len(z_40)) == n_negative_40  # the stored share
print(
    f"the 40 % teacher at beta = 1.5: {n_negative_40} of its {len(z_40)} training rows have a negative weight "
    f"({n_negative_40 / len(z_40):.2%}). A student equal to the teacher but on one of them, whose negative-weight"
    " classes it pushes down: the loss over the training set, pushed down by "
    + ", ".join(f"{push:g}: {v:.3g}" for push, v in floorless.items())
)
print(
    f"with those {n_negative_40} rows, the students' largest |s| (median over seeds) is "
    + " and ".join(f"{growth[max(flipped), a][1.5]:.1f}x KD's at alpha = {a}" for a in ALPHAS)
)
assert floorless[0.0] == 0 and floorless[1e2] < 0 and floorless[1e4] < 50 * floorless[1e2]  # falls linearly
# the two regimes of step 2: a sizeable share at beta = 0.5, under 1 % at beta = 1.5
assert min(neg[f][0.5] for f in flipped) > 0.05 and 0 < neg[max(flipped)][1.5] < 0.01

# %% [markdown] id="price-large-point-loss"
# The price of a large $k\beta$ is the point of the loss: the relative weight is $1 + m/(k\beta)$ ([notebook 03](03-beta-and-offset.ipynb)), so the larger $k\beta$, the less the margins matter and the closer klloss_v2 comes to $k$ times plain KD. On these teachers every weight stays $\ge 0$ from the β of the "largest" rows of the table on; how much of the weighting is left there is what [notebook 05b](05b-real-data-appendix.ipynb) measures at β = 1.5 and 5.
#
# **2 · Compute the share before training.** One line, on the teacher's logits for your training set:
#
# ```python
# share = klloss.negative_weight_share(teacher_logits, labels, beta, offset=8.0)  # rows with some w < 0
# ```
#
# It is the column "rows with w < 0" of the teachers' table above. With any row negative the loss has no floor (a single row is enough, printed above); with a sizeable share, training diverges within the epochs run (β = 0.5 here); under 1 % it already drives the logits up (β = 1.5 at 40 % flipped: the count of such rows and the growth of the logits printed above).
#
# <a id="clamped"></a>
# **3 · Or clamp the weights: $\max(w, 0)$** *(our variant, not the article's loss)*. A clamped weight keeps every row bounded below: a class the teacher ranks above the label by more than $k\beta$ is simply left out of the sum (`ex.klloss_kd_part(..., "clamped")`). Where no weight is negative it is klloss_v2 exactly. The library has it: `klloss.margin_kd_loss(student_logits, teacher_logits, labels, margin_scale=β, clamp=True)` computes the same distillation term as the one these students were trained with (asserted below). On the teachers with flipped labels, at β = 0.5 (where most rows the teacher gets wrong have a negative weight) and at β = 1.5, against KD at $T = 1$ and against klloss_v2 at the same β; and its two parts alone (the ablation of [notebook 05b](05b-real-data-appendix.ipynb), on the clamped weights), against KD at $T = 1$. A family of its own, Holm-adjusted together:

# %%
# the library's clamped loss is the distillation term these students were trained with (alpha = 1: the term alone)
student_check = z_40 + torch.randn(
    z_40.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
)
for beta in plan.wrong_ours:
    torch.testing.assert_close(
        klloss.margin_kd_loss(student_check, z_40, data.y_train, margin_scale=beta, clamp=True),
        ex.klloss_kd_part(1.0, beta, "clamped")(student_check, z_40, data.y_train),
        rtol=1e-12,
        atol=0,
    )
OURS_PAIRS = rd.clamped_pairs(plan.wrong_ours)
ours_tests = ex.settle(
    rd.compare_by_fraction(wrong_runs, OURS_PAIRS, ["accuracy", "nll"], [f for f in wrong if f > 0])
)
n_ours = sum(len(table) for table in ours_tests.values())
print(
    f"{n_ours} comparisons, each tested for a difference and for equivalence: Holm over {2 * n_ours} p-values"
)
display(
    markdown("title-ours-accuracy", "**test accuracy: first minus second**"),
    readable_wrong(ours_tests["accuracy"]),
)
display(
    markdown("title-ours-nll", "**test NLL (lower is better), in nats: first minus second**"),
    readable_wrong(ours_tests["nll"], "nats"),
)
clamped_runs = wrong_runs[wrong_runs["loss"].str.startswith("ours: max(w, 0)")]
clamped_logits = clamped_runs.groupby(["flipped", "loss"])["max_logit"].median()
print("largest |s| on the training set (median over seeds), clamped:", clamped_logits.round(1).to_dict())
# of ordinary size: below the median of the students with no teacher
assert clamped_logits.max() < wrong_runs[wrong_runs["loss"] == "CE only"]["max_logit"].median()

# %%
for beta in plan.wrong_ours:
    target, scale, clamped = (ex.part_name(part, 1, beta) for part in ex.PARTS)
    for name, loss, baseline in [
        ("max(w, 0) - KD", clamped, KD1),
        ("max(w, 0) - klloss_v2", clamped, kl(beta)),
        ("target only - KD", target, KD1),
        ("scale only - KD", scale, KD1),
        ("CE only - max(w, 0)", "CE only", clamped),
    ]:
        found = wrong_verdicts("accuracy", loss, baseline, tables=ours_tests)
        print(f"beta = {beta}, accuracy, {name}:", {f"{f:.0%}, alpha {a}": v for (f, a), v in found.items()})


# %%
def ours_verdicts(metric, loss, baseline):
    return wrong_verdicts(metric, loss, baseline, tables=ours_tests)


clamped_half, clamped_15 = ex.part_name("clamped", 1, 0.5), ex.part_name("clamped", 1, 1.5)
# clamped at beta = 0.5: more accurate and lower NLL than KD at T = 1 and than klloss_v2 at beta = 0.5, everywhere
for baseline in (KD1, kl(0.5)):
    assert set(ours_verdicts("accuracy", clamped_half, baseline).values()) == {"higher"}
    assert set(ours_verdicts("nll", clamped_half, baseline).values()) == {"lower"}
# ... and no accuracy difference from no teacher at all is shown, either way
assert not {"higher", "lower"} & set(ours_verdicts("accuracy", "CE only", clamped_half).values())
# clamped at beta = 1.5: more accurate than KD everywhere; never less accurate than klloss_v2 at beta = 1.5
assert set(ours_verdicts("accuracy", clamped_15, KD1).values()) == {"higher"}
assert "lower" not in ours_verdicts("accuracy", clamped_15, kl(1.5)).values()
assert ours_verdicts("accuracy", clamped_15, kl(1.5))[(max(flipped), 0.9)] == "higher"
# the row weight: scale only is more accurate than KD in all but one setting per beta
for beta in plan.wrong_ours:
    scale_v = list(ours_verdicts("accuracy", ex.part_name("scale", 1, beta), KD1).values())
    assert scale_v.count("higher") >= len(scale_v) - 1
# the target: at beta = 1.5 target only is more accurate than KD in no setting; at beta = 0.5 it is at
# alpha = 0.9 everywhere, and at alpha = 0.5 every interval lies above zero but none survives the adjustment
assert "higher" not in ours_verdicts("accuracy", ex.part_name("target", 1, 1.5), KD1).values()
target_half = ours_verdicts("accuracy", ex.part_name("target", 1, 0.5), KD1)
assert {v for (_, a), v in target_half.items() if a == 0.9} == {"higher"}
assert {v for (_, a), v in target_half.items() if a == 0.5} == {"not settled"}
low = ours_tests["accuracy"].xs(
    (0.5, ex.part_name("target", 1, 0.5), KD1), level=["alpha", "loss", "baseline"]
)
assert (low["ci_low"] > 0).all()
gain_share = {}  # target only's mean accuracy gain over KD, as a share of scale only's, per (flipped, alpha)
for beta in plan.wrong_ours:
    gain = {
        part: ours_tests["accuracy"].xs((ex.part_name(part, 1, beta), KD1), level=["loss", "baseline"])[
            "mean"
        ]
        for part in ("target", "scale")
    }
    gain_share[beta] = gain["target"] / gain["scale"]
    print(
        f"beta = {beta}: target only's mean accuracy gain over KD is {gain_share[beta].min():.0%} to "
        f"{gain_share[beta].max():.0%} of scale only's"
    )
assert gain_share[0.5].between(0.5, 0.8).all() and (gain_share[1.5].abs() < 0.2).all()
# why: at beta = 0.5 the clamp changes the target on most rows the teacher gets wrong. q+* gives the class the
# teacher wrongly prefers no mass (the teacher put almost all of it there) and the true label much more; at
# beta = 1.5 on few of those rows
for f in flipped:
    z_f = ex.stored_logits(wrong[f]["teacher"]).double()
    p_f, top = z_f.softmax(1), z_f.argmax(1)
    teacher_wrong = top != data.y_train
    zeroed = {}
    for beta in plan.wrong_ours:
        _, q_plus = ex.reweighting(z_f, data.y_train, beta)  # q+* = max(w, 0) p / W+
        zeroed[beta] = teacher_wrong & (
            q_plus[rows_index, top] == 0
        )  # no mass on the teacher's wrong top class
        if beta == 0.5:
            on_top = p_f[rows_index, top][zeroed[beta]].mean().item()
            p_label = p_f[rows_index, data.y_train][zeroed[beta]].mean().item()
            q_label = q_plus[rows_index, data.y_train][zeroed[beta]].mean().item()
    share = {beta: zeroed[beta][teacher_wrong].double().mean().item() for beta in plan.wrong_ours}
    print(
        f"{f:.0%} flipped: q+* gives the teacher's wrong top class no mass on {share[0.5]:.0%} of the rows it gets"
        f" wrong at beta = 0.5 (mean p there {on_top:.3f}; on the true label p_y {p_label:.3f}, q+*_y {q_label:.2f}),"
        f" on {share[1.5]:.1%} at beta = 1.5"
    )
    assert share[0.5] > 0.75 and on_top > 0.95 and q_label > 0.4 > 0.01 > p_label and share[1.5] < 0.03

# %% [markdown] id="clamped-variant-parts-show"
# What the clamped variant and its parts show on the wrong teachers (asserted above; *ours, not the article's loss*):
#
# - **Clamping removes the failure.** At β = 0.5, where klloss_v2 diverges, $\max(w, 0)$ gives students more accurate and with a lower NLL than both KD at $T = 1$ and klloss_v2, at every share flipped and both α, with logits of ordinary size (printed above). No accuracy difference from the student with no teacher at all is shown either way. At β = 1.5, where few weights are negative, it is more accurate than KD everywhere and never less accurate than klloss_v2 (more accurate at 40 % flipped with α = 0.9, where klloss_v2's logits grew).
# - **On wrong teachers the row weight carries the gain at β = 1.5; at β = 0.5 both parts give one (the target's gain shown only at α = 0.9).** *Scale only* ($W_i/k$ with KD's target $p$) is more accurate than KD in all but one setting at each β. *Target only* ($q^*$ at KD's weight) never shows an accuracy gain at β = 1.5. At β = 0.5 it is more accurate than KD at α = 0.9 at every share flipped; at α = 0.5 its intervals lie above zero but do not survive the adjustment; its mean gain is a large part of scale only's (printed above). There the clamp itself changes the target a lot: on most rows the teacher gets wrong, the clamped target $q^{+*} = w^+ \odot p / W^+$ ($w^+ = \max(w, 0)$) gives the class the teacher wrongly prefers, which holds nearly all the teacher's mass, no mass at all, and the true label much more than the teacher does (printed above); at β = 1.5 it does so on few of those rows. So at β = 1.5 the gain comes from the rows the teacher gets wrong counting less ($W_i/k < 1$, the table of the mechanism above), not from $q^*$ moving mass to the true label; at β = 0.5 the clamped target also gives a gain on its own. On the clean teacher it was the other way round: there the rows all weigh about as in KD, and the target did everything.
#
# <a id="limitations"></a>
# ## Limitations: what this experiment cannot tell

# %%
n_images = len(data.y_train) + len(data.y_test)
FAMILIES = {
    "clean teacher": tests,
    "ablation": ablation,
    "wrong teachers": wrong_tests,
    "clamped variant": ours_tests,
}
assert [n_main, n_ablation, n_wrong, n_ours] == [sum(map(len, f.values())) for f in FAMILIES.values()]
LIMITATIONS = """
> **Limitations.**
>
> - **One small dataset.** {n_images} images of 8×8 pixels, {classes} classes, one fixed train/test split; {n_test} test images, so accuracy moves in steps of {step:.2f} pp. Other data, and many classes (where the weights have many more classes to act on), need their own runs.
> - **Small MLPs.** One teacher architecture and one student of {student_size} parameters, one optimiser (Adam, learning rate {lr:g}), {epochs} epochs. A student able to fit its teacher, or a convolutional network, could behave differently, and a divergence that {epochs} epochs only begin could go further with more.
> - **What the intervals cover.** {n_seeds} seeds ({n_noise_seeds} with the wrong teachers) vary the student's initialisation and batch order only; the split, each teacher and the test set are fixed. The t-intervals and verdicts describe that variation and nothing else: a verdict does not cover test-set sampling (whose standard errors, printed with the margins, are larger than the margins) nor another split.
> - **How many comparisons.** {n_main} comparisons on the clean teacher, {n_ablation} in the ablation, {n_wrong} on the wrong teachers and {n_ours} for the clamped variant, each tested for a difference and for equivalence; the verdicts are Holm-adjusted within each of these {n_families} families. So the chance of any wrong verdict is below {level:.0%} within a family, not across them: across all {n_families} together it is bounded only by {bound:.0%}, the sum of the families' levels. The 95 % intervals in the tables are per comparison: an interval that excludes zero with a verdict of "not settled" is one that did not survive the adjustment.
> - **The margins.** One per metric, each below the test-set standard error of its metric; other margins would move some verdicts (most directly the equivalences).
> - **How confident the teacher is.** The clean teacher puts a mean {p_y_mean:.4f} on the true training label, so the weights move under {moved_max:.1%} of the mass: "equivalent to KD at T = 1" holds for that regime. The softened variant, the ablation and the wrong teachers show that the loss behaves differently once there is mass to move; teachers that are wrong but unsure (trained less long on flipped labels, or underfit) were not run.
> - **β and α.** {n_betas} values of β and {n_alphas} of α; the article recommends none. Between β = {beta_low:g}, where weights go negative on a wrong teacher's rows, and β = {beta_next:g}, where they barely do, lies a boundary that depends on the teacher's logit scale (the recipe reads it off the teacher).
> - **Ours, not the article's.** The softened variant, the ablation's parts and the clamped variant are our constructions, labelled as such wherever they appear.
"""
display(
    markdown(
        "limitations",
        LIMITATIONS,
        n_images=n_images,
        classes=data.classes,
        n_test=len(data.y_test),
        step=100 / len(data.y_test),
        student_size=student_size,
        lr=config.lr,
        epochs=config.epochs,
        n_seeds=len(SEEDS),
        n_noise_seeds=len(plan.noise_seeds),
        n_main=n_main,
        n_ablation=n_ablation,
        n_wrong=n_wrong,
        n_ours=n_ours,
        n_families=len(FAMILIES),
        level=ex.LEVEL,
        bound=len(FAMILIES) * ex.LEVEL,
        p_y_mean=p_y.mean().item(),
        moved_max=max(moved.values()),
        n_betas=len(BETAS),
        n_alphas=len(ALPHAS),
        beta_low=BETAS[0],
        beta_next=BETAS[1],
    )
)

# %% [markdown] id="exercises"
# <a id="exercises"></a>
# ## Exercises
#
# The worked solution is below the exercise, folded: try it first. It runs, and checks itself.

# %% [markdown] id="exercise-3-sign-flip"
# **Exercise 1 · A sign-flip permutation test.** *(open-ended)* The t-test assumes the paired differences are roughly normal. A sign-flip test does not: if two losses do equally well, each seed's difference is as likely to have either sign, so flipping signs at random gives the distribution of the mean under "no difference". For KD at $T = 4$ against KD at $T = 1$ on the wrong teachers' test accuracy (10 seeds each), compute the exact sign-flip p-value over all $2^{10}$ sign patterns and set it beside the t-test's. What is the smallest p-value a sign-flip test can give with 10 seeds? Could such a p-value ever survive Holm's adjustment in this family, and how many seeds would it take?

# %% [markdown] id="solution-sign-flip" tags=["solution"]
# **Solution 1.** With $n$ seeds there are $2^n$ sign patterns, and the observed pattern and its mirror image (every sign flipped) give the same $|\text{mean}|$, so the exact p-value is at least $2/2^n$. Holm's adjustment multiplies the smallest p-value in a family of $m$ by $m$: a sign-flip p-value survives it only if $2/2^n < 0.05/m$, that is with more than $\log_2(2m/0.05)$ seeds (the number is printed below). In this family, with 10 seeds, no sign-flip p-value can survive the adjustment, however clear the difference: the t-test's much smaller p-values come from its assumption about the shape of the differences, which is what lets it reach verdicts with so few seeds. Where the differences are all of one sign the sign-flip p-value sits at its floor, and the two tests agree on which differences are clear on their own (the table). More seeds, or fewer comparisons per family, would let the assumption-free test decide too.

# %% tags=["solution"]
n_seeds = len(plan.noise_seeds)
signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * n_seeds)).reshape(n_seeds, -1).T  # every sign pattern, 2^n rows
flip_rows = []
for f in flipped:
    for a in ALPHAS:
        d = (
            ex.paired_differences(wrong_runs[wrong_runs["flipped"] == f], "accuracy", KD4, KD1)
            .loc[a]
            .to_numpy()
        )
        assert len(d) == n_seeds
        observed = abs(d.mean())
        p_flip = float(np.mean(np.abs(signs @ d) / n_seeds >= observed - 1e-12))  # exact, all 2^n patterns
        flip_rows.append(
            {
                "flipped": f,
                "alpha": a,
                "t-test p": acc_table.loc[(f, a, KD4, KD1), "p"],
                "sign-flip p": p_flip,
            }
        )
        assert p_flip >= 2 / 2**n_seeds - 1e-15
        if (d < 0).all() or (d > 0).all():  # all of one sign: the floor
            assert math.isclose(p_flip, 2 / 2**n_seeds)
flip_table = pd.DataFrame(flip_rows).set_index(["flipped", "alpha"])
display(flip_table.round(5))
m_wrong = 2 * n_wrong  # p-values in the wrong teachers' family
floor = 2 / 2**n_seeds
seeds_needed = math.floor(math.log2(2 * m_wrong / ex.LEVEL)) + 1  # the least n with 2 / 2^n < LEVEL / m
print(
    f"smallest sign-flip p with {n_seeds} seeds: {floor:.5f}; Holm's first step in this family needs p < "
    f"{ex.LEVEL / m_wrong:.6f}; a sign-flip test would need {seeds_needed} seeds"
)
assert floor * m_wrong > ex.LEVEL  # no sign-flip p-value can survive Holm here
assert (flip_table["sign-flip p"] == floor).any()  # differences all of one sign: the floor
assert 2 / 2**seeds_needed < ex.LEVEL / m_wrong <= 2 / 2 ** (seeds_needed - 1)
assert ((flip_table["sign-flip p"] < ex.LEVEL) == (flip_table["t-test p"] < ex.LEVEL)).all()

# %% [markdown] id="exercise-2-clamp-by-hand"
# **Exercise 2 · The floor, by hand.** Take the first training row of the teacher with 40 % flipped labels that has a negative weight at β = 1.5, and its class $c$ with the most negative weight. Start a student at the teacher's own logits and push its logit of class $c$ down by $t$ = 0, 5, 10, 20, 40. Show that the row's loss falls without bound, with slope $w_c\,p_c$ per unit of $t$ once $q_c$ is small, and that with the weights clamped at zero (`clamp=True`) it never goes below $W\log W - \sum_c w_c p_c \log w_c$ of the clamped weights (a zero weight contributes 0).

# %% [markdown] id="solution-2-clamp-by-hand" tags=["solution"]
# **Solution 2.** With $\log q_c = s_c - \operatorname{lse}(s)$, lowering $s_c$ by $t$ lowers $\log q_c$ by nearly $t$ once $q_c$ is small, and the term $-w_c p_c \log q_c$ changes by $w_c p_c\,t$: negative when $w_c < 0$, and without bound. The other classes gain what $c$ loses, so their terms change by at most a bounded amount. Clamped, every weight is $\ge 0$, the row is [notebook 04](04-what-it-teaches.ipynb)'s loss with non-negative weights, and its minimum over students is $W\log W - \sum_c w_c p_c\log w_c$ (reached at $q^* = w \odot p/W$).

# %% tags=["solution"]
z40 = ex.stored_logits(wrong[0.4]["teacher"]).double()
w40 = klloss.weight(klloss.margin(z40, data.y_train), 1.5, k)
row = int(torch.nonzero((w40 < 0).any(1))[0])
c = int(w40[row].argmin())
z_row, y_row = z40[row : row + 1], data.y_train[row : row + 1]
p_row = z_row.softmax(1)[0]
w_clamped = w40[row].clamp(min=0)
big_w = (w_clamped * p_row).sum()
positive = w_clamped > 0
floor = (big_w * big_w.log() - (w_clamped * p_row)[positive] @ w_clamped[positive].log()).item()
pushes, plain, clamped = [0.0, 5.0, 10.0, 20.0, 40.0], [], []
for t in pushes:
    s_row = z_row.clone()
    s_row[0, c] -= t
    for clamp, out in ((False, plain), (True, clamped)):
        out.append(
            klloss.margin_kd_loss(s_row, z_row, y_row, margin_scale=1.5, normalize=False, clamp=clamp).item()
        )
slope = (plain[-1] - plain[-2]) / (pushes[-1] - pushes[-2])
print(
    f"row {row}, class {c}: w_c = {w40[row, c].item():.3f}, p_c = {p_row[c].item():.3e}, w_c p_c = {(w40[row, c] * p_row[c]).item():.3e}"
)
print("loss as the student's logit of c is pushed down:", [f"{v:.4f}" for v in plain])
print("clamped:", [f"{v:.4f}" for v in clamped], f" floor {floor:.4f}")
assert np.all(np.diff(plain) < 0)  # falls at every step
assert math.isclose(slope, (w40[row, c] * p_row[c]).item(), rel_tol=1e-3)
assert all(v >= floor - 1e-12 for v in clamped)
