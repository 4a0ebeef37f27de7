# %% [markdown] id="title"
# # 04a · Statistics for comparing training runs
#
# *Paired differences over seeds, the Student-t interval, equivalence tests with a margin and Holm's adjustment, each worked by hand on five seeds, then computed by the functions [notebook 05](05-real-data.ipynb) calls.*
#
# **You will learn:** why two training losses are compared seed by seed, through their differences, and not through two separate means; how to compute the Student-t confidence interval of a mean difference by hand, and what it covers; how an equivalence test (TOST) with a margin shows that a difference is small, and why a difference can be significant and equivalent at once; why many comparisons read together need Holm's adjustment, and how it steps down through the p-values; and that `course.experiments`, which [notebook 05](05-real-data.ipynb) uses, computes exactly these numbers.
#
# **You need first:** the mean and the standard deviation of a list of numbers, and what a probability is; no earlier notebook. A calculator (or Python) for the steps worked by hand. Read it before [notebook 05](05-real-data.ipynb), which applies all of it to klloss_v2.
#
# Train the same network twice with two different seeds (the seed sets the initial weights and the order of the batches), and its test accuracy changes. So when one training loss gives a higher accuracy than another, is the loss better, or was its seed luckier? [Notebook 05](05-real-data.ipynb) answers with four tools, taught here on a table small enough to check by hand: five seeds, three training losses A, B and C, test accuracies to three digits. **The numbers are invented** for teaching, and shaped like [notebook 05](05-real-data.ipynb)'s runs of two losses that train almost alike: the seed moves the accuracy more than the loss does. Section 1 then measures, on [notebook 05](05-real-data.ipynb)'s stored runs, how far that holds for losses that train differently. Each step is computed by hand first (with `math`, and one quantile from `scipy.stats` where you would read a printed table), then by the functions [notebook 05](05-real-data.ipynb) calls, and an `assert` checks that the two agree.

# %%
import itertools
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from scipy import stats

from course import experiments as ex
from course import i18n, plotting

rng = np.random.default_rng(0)  # the one random generator: section 5 and exercise 4 draw from it
LEVEL = ex.LEVEL  # the level of every test here, as in notebook 05
assert LEVEL == 0.05
i18n.translate_outputs()  # tables and figures in the reader's language, the Chinese kept for notebooks/zh/


def shown(frame, fmt="{:.4f}"):
    """``frame`` as the tables show it: every float as text in ``fmt`` (the code keeps the exact numbers)."""
    return frame.map(lambda v: fmt.format(v) if isinstance(v, float) else v)


# test accuracy of three training losses, each trained once on each of the same five seeds
accuracy = pd.DataFrame(
    {
        "A": [0.912, 0.935, 0.921, 0.948, 0.929],
        "B": [0.915, 0.936, 0.925, 0.949, 0.932],
        "C": [0.917, 0.931, 0.928, 0.947, 0.932],
    },
    index=pd.Index(range(5), name="seed"),
)
a, b, c = (accuracy[name].to_numpy() for name in "ABC")
n = len(accuracy)  # number of seeds
display(shown(accuracy, "{:.3f}"))

# %% [markdown] id="1-pair-seed"
# ## 1 · Pair by seed
#
# Read down each column of the table above: the seed moves the accuracy far more than the loss does. The best seed is the same for all three losses, and so is the worst (the cell below checks it): in this table, a seed that is good for A is good for B too. So compare the two seed by seed: the difference $d_i = b_i - a_i$ on seed $i$, in which whatever the seed does to both losses alike cancels. This is the **paired design**; [notebook 05](05-real-data.ipynb) trains every loss on the same seeds for this reason.
#
# The unpaired alternative treats A's five accuracies and B's five as two separate samples: the difference of their means, with a standard error from both spreads, $\mathrm{se} = \sqrt{\mathrm{sd}(a)^2/n + \mathrm{sd}(b)^2/n}$, and Student's t with $2n - 2$ degrees of freedom (section 2 explains the t). The mean difference is the same both ways; its uncertainty is not.

# %%
d_b, d_c = b - a, c - a  # paired differences, one per seed
differences = pd.DataFrame({"d = B − A": d_b, "d = C − A": d_c}, index=accuracy.index)
display(shown(differences, "{:+.3f}"))
# the seed moves every loss alike: the same best seed and the same worst seed in every column
assert accuracy.idxmax().nunique() == 1 and accuracy.idxmin().nunique() == 1


def t_quantile(confidence, df):
    """The two-sided t quantile: (1 - confidence) / 2 in each tail."""
    return float(stats.t.ppf((1 + confidence) / 2, df))


# unpaired: two separate means, each with its own spread
se_unpaired = math.sqrt(a.var(ddof=1) / n + b.var(ddof=1) / n)
half_unpaired = t_quantile(0.95, 2 * n - 2) * se_unpaired
# paired: one mean, of the differences
se_paired = d_b.std(ddof=1) / math.sqrt(n)
half_paired = t_quantile(0.95, n - 1) * se_paired
centre = b.mean() - a.mean()
assert math.isclose(centre, d_b.mean(), rel_tol=1e-12)  # the same centre both ways
print(f"B − A, mean difference {centre:+.4f}")
print(
    f"  unpaired 95% interval: ± {half_unpaired:.4f}   [{centre - half_unpaired:+.4f}, {centre + half_unpaired:+.4f}]"
)
print(
    f"  paired   95% interval: ± {half_paired:.4f}   [{centre - half_paired:+.4f}, {centre + half_paired:+.4f}]"
)
print(f"  the unpaired interval is {half_unpaired / half_paired:.0f} times as wide")
assert centre - half_unpaired < 0 < centre + half_unpaired  # unpaired: 0 inside, nothing shown
assert centre - half_paired > 0  # paired: 0 outside, B is higher
assert half_unpaired > 5 * half_paired
# scipy's two-sample t-test gives the same unpaired interval
unpaired = stats.ttest_ind(b, a).confidence_interval(0.95)
assert math.isclose(unpaired.low, centre - half_unpaired, rel_tol=1e-9)
assert math.isclose(unpaired.high, centre + half_unpaired, rel_tol=1e-9)

# why: var(b - a) = var(a) + var(b) - 2 cov(a, b), and the seeds make the covariance large
covariance = np.cov(a, b)[0, 1]
assert math.isclose(d_b.var(ddof=1), a.var(ddof=1) + b.var(ddof=1) - 2 * covariance, rel_tol=1e-9)
print(
    f"var(a) + var(b) = {a.var(ddof=1) + b.var(ddof=1):.2e},  2 cov(a, b) = {2 * covariance:.2e},  ", end=""
)
print(
    f"var(b − a) = {d_b.var(ddof=1):.2e};  correlation of a and b over seeds: {np.corrcoef(a, b)[0, 1]:.3f}"
)
assert d_b.var(ddof=1) < 0.01 * (a.var(ddof=1) + b.var(ddof=1))  # the covariance removes nearly all of it

# %% [markdown] id="same-data-same-difference"
# On the same data, the same mean difference: the unpaired interval contains zero and shows nothing, the paired one excludes it. The last line says why. The variance of a difference is $\mathrm{var}(a) + \mathrm{var}(b) - 2\,\mathrm{cov}(a, b)$, and a seed that is good for A is good for B too, so the covariance removes nearly all of the seeds' spread. Pairing needs both losses trained on the same seeds, each seed once per loss. How much it gains depends on how strongly the seed moves both losses alike, as the next cell measures.

# %% [markdown] id="what-pairing-gains"
# ### What pairing gains on [notebook 05](05-real-data.ipynb)'s runs
#
# [Notebook 05](05-real-data.ipynb) trains a small student on handwritten digits with plain KD at two temperatures, $T = 1$ and $T = 4$, and with klloss_v2; α is the weight its loss gives the teacher's term, against cross-entropy's $1 - \alpha$. In the invented table the correlation over seeds is close to 1, and pairing narrows the interval many times. That is not a law. Write $\rho$ for the correlation of the two losses' accuracies over seeds. When both spread alike, $\mathrm{var}(b - a) = 2\,\mathrm{var}(a)\,(1 - \rho)$, so the paired standard error is about $\sqrt{1 - \rho}$ times the unpaired one. It pays one price: its t quantile has $n - 1$ degrees of freedom, not $2n - 2$. The cell below reads [notebook 05](05-real-data.ipynb)'s stored runs (every loss trained on the same seeds; the table prints how many) and computes, for three of its comparisons, $\rho$ and the two 95% half-widths:
#
# - klloss_v2 at β = 1.5 against KD at T = 1: the two losses train almost alike, the seed moves both alike, and pairing narrows the interval several times over;
# - KD at T = 4 against KD at T = 1, at either α: the temperature changes the training enough that a seed good for one is hardly good for the other. The correlation is weak but positive, so the variance of the difference is still below $\mathrm{var}(a) + \mathrm{var}(b)$, and pairing still narrows the interval here, only slightly.
#
# So train on the same seeds and pair: when the correlation is positive, the variance of the difference is the smaller one. But what pairing gains is measured for each comparison, not assumed.

# %%
runs = ex.frame(ex.load_stored()["main"]["runs"])  # notebook 05's stored runs, one row per loss, α and seed
accuracy_margin = ex.MARGINS["accuracy"]


def pairing_gain(loss, baseline, alpha):
    """Correlation over seeds of two losses' test accuracies, and the unpaired and paired 95% half-widths."""
    per_seed = runs[runs["alpha"] == alpha].pivot_table(index="seed", columns="loss", values="accuracy")
    x, y = per_seed[baseline].to_numpy(), per_seed[loss].to_numpy()
    # the paired differences are the ones notebook 05 tests
    assert np.allclose(
        ex.paired_differences(runs, "accuracy", loss, baseline).loc[alpha], y - x, rtol=0, atol=0
    )
    paired = ex.paired_test(y - x, margin=accuracy_margin)
    unpaired = stats.ttest_ind(y, x).confidence_interval(0.95)
    half_paired = (paired["ci_high"] - paired["ci_low"]) / 2
    half_unpaired = (unpaired.high - unpaired.low) / 2
    spread = (x.var(ddof=1) + y.var(ddof=1), (y - x).var(ddof=1))  # unpaired sum, variance of the difference
    return {
        "seeds": len(per_seed),
        "correlation over seeds": float(np.corrcoef(x, y)[0, 1]),
        "unpaired 95% ±": half_unpaired,
        "paired 95% ±": half_paired,
        "unpaired / paired": half_unpaired / half_paired,
    }, spread


comparisons = {
    "klloss_v2, beta = 1.5 − KD, T = 1 (α = 0.5)": ("klloss_v2, beta = 1.5", "KD, T = 1", 0.5),
    "KD, T = 4 − KD, T = 1 (α = 0.5)": ("KD, T = 4", "KD, T = 1", 0.5),
    "KD, T = 4 − KD, T = 1 (α = 0.9)": ("KD, T = 4", "KD, T = 1", 0.9),
}
gains, spreads = {}, {}
for label, args in comparisons.items():
    gains[label], spreads[label] = pairing_gain(*args)
gain = pd.DataFrame(gains).T
formats = {"seeds": "{:.0f}", "correlation over seeds": "{:.3f}", "unpaired / paired": "{:.2f}"}
display(gain.apply(lambda column: column.map(formats.get(column.name, "{:.4f}").format)))
seeds_stored = int(gain["seeds"].iloc[0])
print(
    f"t quantiles at {seeds_stored} seeds: paired t({seeds_stored - 1}, 0.975) = {t_quantile(0.95, seeds_stored - 1):.3f},"
    f"  unpaired t({2 * seeds_stored - 2}, 0.975) = {t_quantile(0.95, 2 * seeds_stored - 2):.3f}"
)
close, temperature = gain.iloc[0], gain.iloc[1:]
assert close["correlation over seeds"] > 0.95 and close["unpaired / paired"] > 4  # several times narrower
assert (temperature["correlation over seeds"] < 0.35).all() and (temperature["unpaired / paired"] < 1.3).all()
for label, (unpaired_sum, paired_var) in spreads.items():
    assert (
        gains[label]["correlation over seeds"] > 0 and paired_var < unpaired_sum
    )  # positive ρ: smaller variance
    assert gains[label]["unpaired / paired"] > 1  # and here a narrower interval, in every comparison
    # the ratio is close to 1/√(1 − ρ), times the ratio of the two t quantiles
    rho = gains[label]["correlation over seeds"]
    approx = t_quantile(0.95, 2 * seeds_stored - 2) / t_quantile(0.95, seeds_stored - 1) / math.sqrt(1 - rho)
    assert math.isclose(gains[label]["unpaired / paired"], approx, rel_tol=0.05)

# %% [markdown] id="2-student-t-interval"
# ## 2 · The Student-t interval of the mean difference
#
# With $n$ paired differences $d_1, \dots, d_n$:
#
# $$\bar d = \frac1n \sum_i d_i, \qquad \mathrm{sd} = \sqrt{\frac{1}{n-1}\sum_i \big(d_i - \bar d\big)^2}, \qquad \mathrm{se} = \frac{\mathrm{sd}}{\sqrt n}, \qquad \text{95\% interval: } \bar d \pm t_{n-1,\,0.975}\;\mathrm{se}.$$
#
# $\mathrm{se}$, the standard error, is how much $\bar d$ itself would vary from one set of $n$ seeds to another. $t_{n-1,\,0.975}$ is the 97.5% quantile of Student's t distribution with $n - 1$ degrees of freedom: 2.5% of its mass lies above it, 2.5% below minus it. It is larger than the normal distribution's quantile because $\mathrm{sd}$ is itself estimated, from only $n$ numbers; the two are printed below. If the differences are normal, an interval made this way covers the true mean difference in 95% of repetitions, at any $n$ (section 5 checks it by simulation).
#
# The same numbers give the **t-test** of "no difference": $t = \bar d / \mathrm{se}$, and its two-sided **p-value** is the probability, were the true mean zero, of a $|t|$ at least this large. The interval excludes zero exactly when $p < 0.05$. (This course writes $P$ for a p-value in formulas: $p$ is the teacher's distribution.)
#
# The worksheet below does it for B − A, one step a line, each a step you can redo with a calculator.

# %%
d = d_b
print("d = B − A:      ", "  ".join(f"{x:+.3f}" for x in d))
total = sum(d)
mean = total / n
print(f"mean           d̄ = {total:.3f} / {n} = {mean:.4f}")
squares = [(x - mean) ** 2 for x in d]
print("(d − d̄)²:      ", "  ".join(f"{x:.2e}" for x in squares))
variance = sum(squares) / (n - 1)
print(f"variance       sd² = {sum(squares):.2e} / {n - 1} = {variance:.2e}")
sd = math.sqrt(variance)
se = sd / math.sqrt(n)
print(f"std. deviation sd = {sd:.5f};  standard error se = sd / √{n} = {se:.5f}")
t_95 = t_quantile(0.95, n - 1)
print(
    f"t quantile     t({n - 1}, 0.975) = {t_95:.3f}   (the normal distribution's: {stats.norm.ppf(0.975):.3f})"
)
assert t_95 > stats.norm.ppf(0.975)
low, high = mean - t_95 * se, mean + t_95 * se
print(f"95% interval   {mean:.4f} ± {t_95:.3f} × {se:.5f} = [{low:.4f}, {high:.4f}]")
t_stat = mean / se
p_diff = 2 * float(stats.t.sf(abs(t_stat), n - 1))
print(f"t-test         t = {mean:.4f} / {se:.5f} = {t_stat:.2f},  two-sided p = {p_diff:.4f}")
# from a printed t table: t lies between the 0.99 and the 0.995 quantiles, so 0.01 < p < 0.02
q99, q995 = float(stats.t.ppf(0.99, n - 1)), float(stats.t.ppf(0.995, n - 1))  # a table's 0.99, 0.995 columns
print(f"               (a printed table: {q99:.3f} < t < {q995:.3f}, so 0.01 < p < 0.02)")
assert q99 < t_stat < q995 and 0.01 < p_diff < 0.02
assert (low > 0) == (p_diff < LEVEL)  # the interval excludes 0 exactly when p < 0.05

# %% [markdown] id="same-numbers-code-notebook"
# The same numbers by the code [notebook 05](05-real-data.ipynb) runs, `course.experiments.paired_test`, with the checks that it agrees with the worksheet (its `margin` argument is section 3's):

# %%
test_b = ex.paired_test(d_b, margin=ex.MARGINS["accuracy"])
display(shown(pd.DataFrame([test_b], index=["paired_test(B − A)"])))
for key, by_hand in (
    ("mean", mean),
    ("sd", sd),
    ("ci_low", low),
    ("ci_high", high),
    ("t", t_stat),
    ("p", p_diff),
):
    assert math.isclose(test_b[key], by_hand, rel_tol=1e-9), key
assert test_b["n"] == n and test_b["above"] == n  # B is higher than A on every seed

# %% [markdown] id="interval-covers-seeds-only"
# **What the interval covers: seeds only.** The only thing that changed from one row of the table to the next is the seed. The split, the teacher and the test images are the same in every run, so the interval says how the mean difference would move **with other seeds, on this test set**. It says nothing about another test set drawn from the same source, or another split: that sampling is not in it. For scale: on [notebook 05](05-real-data.ipynb)'s test set, of the size printed below, one model's accuracy has a binomial standard error several times the width of the whole paired interval, and none of it is in the interval. The error of a *difference* between two models scored on the same test images is not in it either, and it is not one model's binomial error: the two models' mistakes fall partly on the same images. [Notebook 05](05-real-data.ipynb) says so beside its verdicts.

# %%
test_images = len(ex.load_digits_split().y_test)  # notebook 05's test set
accuracy_se = math.sqrt(a.mean() * (1 - a.mean()) / test_images)  # binomial: sqrt(acc (1 - acc) / images)
print(
    f"{test_images} test images: one accuracy near {a.mean():.3f} has a test-set standard error of {accuracy_se:.4f}"
)
print(f"the whole paired 95% interval of B − A is {high - low:.4f} wide")
assert accuracy_se > 3 * (high - low)

# %% [markdown] id="3-difference-small-equivalence"
# ## 3 · Is the difference small? Equivalence with a margin
#
# A p-value above 0.05 does not show that two losses do the same: with five seeds, a real difference can easily go unseen. To show that a difference is **small**, first fix what small means: an **equivalence margin** $\Delta$, in the metric's own units, the largest difference that counts as no difference. [Notebook 05](05-real-data.ipynb) fixes one per metric before reading any result (`ex.MARGINS`, each justified there); for accuracy it is the Δ printed below. Then test two one-sided null hypotheses with the same $\bar d$ and $\mathrm{se}$:
#
# - "the mean difference is $\le -\Delta$": $t_1 = (\bar d + \Delta)/\mathrm{se}$, and $P_1$ is the probability above $t_1$;
# - "the mean difference is $\ge \Delta$": $t_2 = (\bar d - \Delta)/\mathrm{se}$, and $P_2$ is the probability below $t_2$.
#
# Equivalence is shown when both are rejected, $\max(P_1, P_2) < 0.05$. These are the **two one-sided tests (TOST)**; `paired_test` returns $\max(P_1, P_2)$ as `p_equivalence`.
#
# There is a simpler way to read the same verdict. $P_2 < 0.05$ exactly when $t_2 < -t_{n-1,\,0.95}$, that is when $\bar d + t_{n-1,\,0.95}\,\mathrm{se} < \Delta$: the upper end of the **90%** t-interval lies below $\Delta$. Likewise $P_1 < 0.05$ exactly when its lower end lies above $-\Delta$. So TOST at level 0.05 says "equivalent" exactly when the 90% interval lies inside $\pm\Delta$: 90%, not 95%, because each one-sided test puts its whole 0.05 in one tail.

# %%
margin = ex.MARGINS["accuracy"]  # notebook 05's equivalence margin for accuracy
t_90 = t_quantile(0.90, n - 1)  # = the one-sided 0.95 quantile
t1, t2 = (mean + margin) / se, (mean - margin) / se
p1, p2 = float(stats.t.sf(t1, n - 1)), float(stats.t.cdf(t2, n - 1))
low90, high90 = mean - t_90 * se, mean + t_90 * se
print(f"margin         Δ = {margin:g}")
print(f"mean ≤ −Δ ?    t1 = ({mean:.4f} + {margin:g}) / {se:.5f} = {t1:+.2f},  P1 = {p1:.4f}")
print(f"mean ≥ +Δ ?    t2 = ({mean:.4f} − {margin:g}) / {se:.5f} = {t2:+.2f},  P2 = {p2:.4f}")
print(f"TOST           max(P1, P2) = {max(p1, p2):.4f}")
print(
    f"90% interval   {mean:.4f} ± {t_90:.3f} × {se:.5f} = [{low90:.4f}, {high90:.4f}],  inside ±{margin:g}: {-margin < low90 and high90 < margin}"
)
# paired_test gives the same, and at confidence=0.90 the same 90% interval
test_b90 = ex.paired_test(d_b, margin=margin, confidence=0.90)
assert math.isclose(test_b["p_equivalence"], max(p1, p2), rel_tol=1e-9)
assert math.isclose(test_b90["ci_low"], low90, rel_tol=1e-9) and math.isclose(
    test_b90["ci_high"], high90, rel_tol=1e-9
)
# the duality, on this example and for margins all around it: TOST < 0.05 iff the 90% interval is inside
assert (max(p1, p2) < LEVEL) == (-margin < low90 and high90 < margin)
for m in np.linspace(0.0005, 0.02, 40):
    tested = ex.paired_test(d_b, margin=float(m), confidence=0.90)
    inside = -m < tested["ci_low"] and tested["ci_high"] < m
    assert (tested["p_equivalence"] < LEVEL) == inside, m

# %% [markdown] id="significant-equivalent-neither"
# **Significant and equivalent, or neither.** The two tests answer different questions: "is there a difference?" and "is any difference smaller than Δ?". Both can say yes, and both can say no. The table gives both comparisons of the data, each with its 95% interval and t-test, its 90% interval and TOST:

# %%
rows = {}
for name, diff in (("B − A", d_b), ("C − A", d_c)):
    t95_, t90_ = (ex.paired_test(diff, margin=margin, confidence=level) for level in (0.95, 0.90))
    rows[name] = {
        "mean d": t95_["mean"],
        "95% low": t95_["ci_low"],
        "95% high": t95_["ci_high"],
        "p (difference)": t95_["p"],
        "90% low": t90_["ci_low"],
        "90% high": t90_["ci_high"],
        "p (TOST)": t95_["p_equivalence"],
        "different": t95_["p"] < LEVEL,
        "equivalent": t95_["p_equivalence"] < LEVEL,
    }
both = pd.DataFrame(rows).T
display(shown(both))
assert both.loc["B − A", "different"] and both.loc["B − A", "equivalent"]  # a real but small difference
assert not both.loc["C − A", "different"] and not both.loc["C − A", "equivalent"]  # five seeds settle nothing
assert (d_c > 0).any() and (d_c < 0).any()  # C − A changes sign from seed to seed
assert both.loc["C − A", "95% low"] < 0 < both.loc["C − A", "95% high"]
assert both.loc["C − A", "90% high"] > margin

# %% [markdown] id="b-higher-than-every"
# - **B − A: significant and equivalent.** B is higher than A on every seed, and the 95% interval excludes zero; the 90% interval also lies inside ±Δ. B really is better, by less than the margin: a difference too small to matter, shown to be so. [Notebook 05](05-real-data.ipynb) words this "higher, within the margin".
# - **C − A: neither.** The differences change sign from seed to seed. The 95% interval contains zero, so no difference is shown; the 90% interval reaches past Δ, so no equivalence is shown either. The honest verdict is "not settled": five seeds are too few to say. It is **not** "C is as good as A".
#
# The figure shows both: one dot per seed, the 95% interval (black) and the 90% interval (blue), the margin as a grey band; and for B − A, the unpaired interval of section 1 (orange) on the same data.

# %%
fig, ax = plt.subplots(figsize=(8, 3.2), constrained_layout=True)
ax.axvspan(-margin, margin, color="0.88", zorder=0, label="± Δ, the equivalence margin")
ax.axvline(0, color="0.4", lw=0.8)
for y, (name, diff) in enumerate((("B − A", d_b), ("C − A", d_c))):
    row = both.loc[name]
    # one dot per seed; equal differences stacked, so that every seed shows
    stack = [int(np.isclose(diff[:i], x, rtol=0, atol=1e-12).sum()) for i, x in enumerate(diff)]
    ax.plot(
        diff, y + 0.22 + 0.1 * np.array(stack), "o", color="0.45", ms=5, label="one seed" if y == 0 else None
    )
    ax.plot(
        [row["95% low"], row["95% high"]],
        [y, y],
        color="black",
        lw=2,
        label="95% t-interval" if y == 0 else None,
    )
    ax.plot(
        [row["90% low"], row["90% high"]],
        [y - 0.12] * 2,
        color="tab:blue",
        lw=4,
        label="90% t-interval" if y == 0 else None,
    )
    ax.plot(row["mean d"], y, "D", color="black", ms=6)
ax.plot(
    [centre - half_unpaired, centre + half_unpaired],
    [-0.35] * 2,
    color="tab:orange",
    lw=2,
    label="B − A unpaired, 95%",
)
ax.set_yticks([0, 1], ["B − A", "C − A"])
ax.set_ylim(-0.6, 1.7)
ax.invert_yaxis()
ax.set_xlabel("difference in test accuracy")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
print("saved", plotting.save(fig, "04a-paired-intervals"))
plt.show()

# %% [markdown] id="4-many-comparisons-once"
# ## 4 · Many comparisons at once: Holm's adjustment
#
# Section 3 read four p-values: a t-test and a TOST for each of B − A and C − A. A test at level 0.05 whose null hypothesis holds rejects it with probability 0.05. Read several tests together, and the chance that **at least one** of them rejects wrongly grows: that chance is the **family-wise error rate** (FWER). For $J$ independent t-tests whose null hypotheses all hold (what section 5 simulates) it is $1 - 0.95^J$; for $J = 4$, the value printed below. The four tests here are not such a family: a t-test and a TOST computed from the same five numbers are not independent, and their null hypotheses (no difference; a difference of at least the margin) cannot both hold. For them the formula is not exact; it only shows why an adjustment is needed. [Notebook 05](05-real-data.ipynb) reads many tests at once (it prints how many), so it must control the FWER, not each test alone.
#
# Bonferroni's remedy multiplies each p-value by $J$ (capped at 1). Holm's keeps the same guarantee and rejects at least as much, stepping down:
#
# 1. sort the p-values, $P_{(1)} \le P_{(2)} \le \dots \le P_{(J)}$;
# 2. compare $P_{(1)}$ with $0.05/J$, $P_{(2)}$ with $0.05/(J-1)$, …, $P_{(i)}$ with $0.05/(J-i+1)$;
# 3. reject in that order up to the first that fails; it and every larger one stand.
#
# As adjusted p-values, which one compares with 0.05 directly: $(J-i+1)\,P_{(i)}$, each raised to the largest of those before it (so that the order is kept), capped at 1. The smallest p-value pays the full Bonferroni factor $J$, and each later one pays one less. The table works it by hand on the four p-values of section 3:

# %%
family = {
    "B − A difference": test_b["p"],
    "B − A TOST": test_b["p_equivalence"],
    "C − A difference": both.loc["C − A", "p (difference)"],
    "C − A TOST": both.loc["C − A", "p (TOST)"],
}
J = len(family)
steps, running = [], 0.0
for i, (name, p) in enumerate(sorted(family.items(), key=lambda item: item[1]), start=1):
    factor = J - i + 1
    running = max(running, factor * p)  # (J - i + 1) P_(i), never below the one before
    steps.append(
        {
            "rank i": i,
            "test": name,
            "P": p,
            "J − i + 1": factor,
            "(J − i + 1) P": factor * p,
            "Holm": min(running, 1.0),
            "0.05 / (J − i + 1)": LEVEL / factor,
            "Bonferroni J P": min(J * p, 1.0),
        }
    )
by_hand = pd.DataFrame(steps).set_index("rank i")
by_hand["Holm rejects"] = by_hand["Holm"] < LEVEL
by_hand["Bonferroni rejects"] = by_hand["Bonferroni J P"] < LEVEL
display(shown(by_hand))
print(
    f"FWER of {J} independent t-tests at {LEVEL:g}, nulls all true, unadjusted: 1 − 0.95^{J} = {1 - (1 - LEVEL) ** J:.3f}"
)

# course.experiments.holm, which notebook 05 uses, gives the same adjusted p-values
adjusted = dict(zip(family, ex.holm(list(family.values())), strict=True))
for name, row in by_hand.set_index("test").iterrows():
    assert math.isclose(adjusted[name], row["Holm"], rel_tol=1e-12), name
# stepping down: Holm rejects P_(i) exactly when every P_(j), j <= i, is below 0.05 / (J - j + 1)
below = by_hand["P"] < by_hand["0.05 / (J − i + 1)"]
assert by_hand["Holm rejects"].tolist() == below.cummin().tolist()
# Holm rejects everything Bonferroni rejects, and here one test more
assert (by_hand["Holm rejects"] >= by_hand["Bonferroni rejects"]).all()
gained = by_hand[by_hand["Holm rejects"] & ~by_hand["Bonferroni rejects"]]["test"].tolist()
assert gained == ["B − A difference"]
print("rejected by Holm, not by Bonferroni:", ", ".join(gained))

# %% [markdown] id="smallest-p-value-tost"
# The smallest p-value, B − A's TOST, pays the factor $J$ under both methods and passes. B − A's t-test pays $J$ under Bonferroni and fails; under Holm it pays $J - 1$ and passes. C − A's two tests fail under both. Holm's adjusted p-values hold the family-wise error rate at 0.05 whatever the dependence between the tests, which matters here: a t-test and a TOST computed from the same five numbers are not independent.
#
# **The verdicts [notebook 05](05-real-data.ipynb) prints.** `ex.settle` takes a family of tables of `paired_test` results, adjusts **every** p-value of the family together with `holm` (the tests of a difference and of equivalence alike), and words a verdict per comparison: "higher" or "lower" where the adjusted p-value of the difference is below 0.05; otherwise "equivalent" where the adjusted TOST is; otherwise "not settled". `within_margin` marks a "higher" or "lower" whose adjusted TOST also passed. On this family:

# %%
pairs = (("B − A", d_b), ("C − A", d_c))
tables = {
    "accuracy": pd.DataFrame(
        [ex.paired_test(diff, margin=margin) for _, diff in pairs], index=[name for name, _ in pairs]
    )
}
settled = ex.settle(tables)["accuracy"]
display(
    shown(settled[["mean", "p", "p_holm", "p_equivalence", "p_equivalence_holm", "verdict", "within_margin"]])
)
assert settled.loc["B − A", "verdict"] == "higher" and settled.loc["B − A", "within_margin"]
assert settled.loc["C − A", "verdict"] == "not settled"
assert math.isclose(settled.loc["B − A", "p_holm"], adjusted["B − A difference"], rel_tol=1e-12)
# with Bonferroni's factor instead, B − A would lose its difference and be only "equivalent"
assert J * settled.loc["B − A", "p"] >= LEVEL > J * settled.loc["B − A", "p_equivalence"]

# %% [markdown] id="one-family-both-kinds"
# **Why one family for both kinds of test, and what it costs.** Pooling both kinds of test under one Holm adjustment is this course's choice, a conservative one, not a standard convention: a study may as well adjust each kind in a family of its own, and should say which it did. Every verdict a reader takes away ("higher", "lower", "equivalent") rests on one test of the family, so adjusting the tests of difference and of equivalence together puts all of those verdicts under the one guarantee: at most a 5% chance that the family rejects any null hypothesis that is true, that is, reads a difference or an equivalence that is not there. It says nothing about the other error, a real difference or a real equivalence left "not settled". It is conservative: the family counts both tests of a comparison, though at most one of their null hypotheses can hold. The cost is power. Each p-value pays a larger Holm factor than it would in a family of the differences alone, so a difference whose 95% interval excludes 0 (unadjusted p below 0.05) can stay "not settled". The cell shows it on a made-up family of two comparisons (p-values chosen by hand, not measured):

# %%
made_up = pd.DataFrame(
    {"mean": [0.002, 0.003], "p": [0.02, 0.01], "p_equivalence": [0.2, 0.3]}, index=["B − A", "C − A"]
)
one_family = ex.settle({"accuracy": made_up})["accuracy"]
differences_alone = dict(zip(made_up.index, ex.holm(made_up["p"].tolist()), strict=True))
display(shown(one_family[["p", "p_holm", "p_equivalence_holm", "verdict"]]))
print(
    "B − A, unadjusted p:",
    made_up.loc["B − A", "p"],
    "| Holm over both kinds:",
    round(one_family.loc["B − A", "p_holm"], 4),
    "| Holm over the differences alone:",
    round(differences_alone["B − A"], 4),
)
# B − A's interval excludes 0 and a family of differences alone would call it higher, yet here it is not settled
assert made_up.loc["B − A", "p"] < LEVEL and differences_alone["B − A"] < LEVEL
assert one_family.loc["B − A", "p_holm"] >= LEVEL and one_family.loc["B − A", "verdict"] == "not settled"

# %% [markdown] id="5-checking-guarantee-simulation"
# ## 5 · Checking the guarantee by simulation
#
# Does an unadjusted family really go wrong that often, and does Holm's adjustment really prevent it? Draw many families of four comparisons in which **nothing** differs: each comparison, five differences from a normal distribution with mean zero. Test each comparison with `paired_test` arithmetic (vectorised here). First, as promised in section 2, count the 95% t-intervals that cover the true mean difference, zero; then the families with at least one p-value below 0.05, unadjusted and after `ex.holm`. Each count is a binomial sample, so each rate is printed with its 99.9% interval (Clopper–Pearson), and the checks allow for that sampling error.

# %%
families, seeds_per_comparison = 10_000, n
draws = rng.normal(0.0, 1.0, size=(families, J, seeds_per_comparison))
t_null = draws.mean(axis=2) / (draws.std(axis=2, ddof=1) / math.sqrt(seeds_per_comparison))
p_null = 2 * stats.t.sf(np.abs(t_null), seeds_per_comparison - 1)
assert math.isclose(p_null[0, 0], ex.paired_test(draws[0, 0], margin=1.0)["p"], rel_tol=1e-9)
# each comparison's 95% t-interval around its mean: does it cover the true mean, 0?
covered = np.abs(t_null) < t_quantile(0.95, seeds_per_comparison - 1)
coverage = stats.binomtest(int(covered.sum()), covered.size).proportion_ci(confidence_level=0.999)
print(
    f"95% t-intervals that cover the true mean: {covered.mean():.3f} of {covered.size} (99.9% interval {coverage.low:.3f} to {coverage.high:.3f})"
)
assert coverage.low < 0.95 < coverage.high
wrong_unadjusted = (p_null < LEVEL).any(axis=1)
wrong_holm = np.array([(ex.holm(p) < LEVEL).any() for p in p_null])
exact = {"unadjusted": 1 - (1 - LEVEL) ** J, "Holm": 1 - (1 - LEVEL / J) ** J}
for name, wrong in (("unadjusted", wrong_unadjusted), ("Holm", wrong_holm)):
    interval = stats.binomtest(int(wrong.sum()), families).proportion_ci(confidence_level=0.999)
    print(
        f"{name:>10}: at least one false discovery in {wrong.mean():.3f} of {families} families "
        f"(99.9% interval {interval.low:.3f} to {interval.high:.3f}; exact {exact[name]:.4f})"
    )
    assert interval.low < exact[name] < interval.high
    if name == "unadjusted":
        assert interval.low > 3 * LEVEL  # far more often than 5%
    else:
        assert exact[name] <= LEVEL and interval.low < LEVEL  # at most 5%, and the simulation agrees
# when every null hypothesis holds, Holm errs exactly when the smallest p is below 0.05 / J: as Bonferroni
wrong_bonferroni = (np.minimum(J * p_null, 1.0) < LEVEL).any(axis=1)
assert np.array_equal(wrong_holm, p_null.min(axis=1) < LEVEL / J)
assert np.array_equal(wrong_holm, wrong_bonferroni)
print(
    f"families where Holm errs: {wrong_holm.sum()}; where Bonferroni errs: {wrong_bonferroni.sum()}; "
    f"the same families: {np.array_equal(wrong_holm, wrong_bonferroni)}"
)

# %% [markdown] id="unadjusted-four-tests-go"
# Unadjusted, four tests go wrong together far more often than one in twenty; with Holm's adjustment the rate is at most 0.05, as promised (the exact rates are printed beside the simulated ones). When nothing differs, Holm and Bonferroni make the same errors, in the same families (the last line printed above): Holm's advantage is power, rejecting more where some differences are real (section 4), at no cost in errors.
#
# ## Summary
#
# - Train the losses on the **same seeds** and compare the **differences** seed by seed: the seeds' own effect cancels (section 1).
# - Report the mean difference with its **Student-t interval**, $\bar d \pm t_{n-1,\,0.975}\,\mathrm{sd}/\sqrt n$; it covers the variation between seeds on a fixed split, teacher and test set, nothing else (section 2).
# - To show that a difference is **small**, fix a margin Δ per metric in advance and run **TOST**: equivalent at 0.05 exactly when the 90% interval lies inside ±Δ. Significant and equivalent go together when the difference is real but small; neither means "not settled", never "the same" (section 3).
# - When many tests are read together, adjust them all with **Holm**; it holds the family-wise error rate at 0.05 and never rejects less than Bonferroni (sections 4 and 5).
#
# [Notebook 05](05-real-data.ipynb) does exactly this with `ex.compare` (a table of `paired_test` per comparison) and `ex.settle` (Holm over a family, and the verdicts), on many more seeds.

# %% [markdown] id="exercises"
# ## Exercises
#
# Each exercise has a worked solution below it, folded: try it first. The solutions run, and check themselves.
#
# **Exercise 1 · Holm by hand.** A family of five p-values: 0.030, 0.001, 0.013, 0.009, 0.200. By hand, adjust them with Holm's step-down and with Bonferroni's factor. Which are rejected at 0.05 by each? Check with `ex.holm`.

# %% [markdown] id="solution-1-sorted" tags=["solution"]
# **Solution 1.** Sort them and multiply the $i$-th smallest by $J - i + 1$, with $J = 5$; raise each to the largest before it. The cell prints each step and checks it against `ex.holm`. Holm stops at the first adjusted value at or above 0.05, and rejects one test more than Bonferroni.

# %% tags=["solution"]
exercise_p = [0.030, 0.001, 0.013, 0.009, 0.200]
J5, running, holm_by_hand = len(exercise_p), 0.0, {}
for i, (index, p) in enumerate(sorted(enumerate(exercise_p), key=lambda item: item[1]), start=1):
    running = max(running, (J5 - i + 1) * p)
    holm_by_hand[index] = min(running, 1.0)
    print(
        f"P({i}) = {p:.3f} × {J5 - i + 1} = {(J5 - i + 1) * p:.3f}  ->  Holm {holm_by_hand[index]:.3f},  Bonferroni {min(J5 * p, 1):.3f}"
    )
holm_code = ex.holm(exercise_p)
assert np.allclose(holm_code, [holm_by_hand[i] for i in range(J5)], rtol=1e-12, atol=0)
holm_rejects = int((holm_code < LEVEL).sum())
bonferroni_rejects = int((np.minimum(J5 * np.array(exercise_p), 1) < LEVEL).sum())
print(f"rejected at {LEVEL:g}: Holm {holm_rejects}, Bonferroni {bonferroni_rejects}")
assert holm_rejects == bonferroni_rejects + 1

# %% [markdown] id="exercise-2-margin-verdict"
# **Exercise 2 · where the margin flips the verdict.** *(open-ended)* For C − A, find the smallest margin Δ at which TOST would call the difference equivalent, and for B − A the smallest margin at which it still does, using only the 90% intervals of section 3. Check your answers with `paired_test` just below and just above each. Then the open question: why must the margin be fixed before the results are read, and what would you say of a study that chose Δ after seeing these two intervals?

# %% [markdown] id="solution-2-tost-equivalent" tags=["solution"]
# **Solution 2.** TOST says equivalent exactly when the 90% interval lies inside ±Δ, so the verdict flips at the end of the 90% interval farthest from zero: $\Delta^* = \max(|\text{low}_{90}|, |\text{high}_{90}|)$, equivalent for every Δ above it. The cell computes $\Delta^*$ for both comparisons and checks the verdict on either side.
#
# A margin chosen after the fact can be set just above $\Delta^*$, and then any comparison, however noisy, comes out "equivalent": the test would then only report the width of the interval, not a judgement about what difference matters. That is why [notebook 05](05-real-data.ipynb) justifies each margin from the metric itself (its test-set standard error, and for accuracy a count of test images), not from the differences it tests.

# %% tags=["solution"]
for name in ("B − A", "C − A"):
    row = both.loc[name]
    flip = max(abs(row["90% low"]), abs(row["90% high"]))
    below_flip = ex.paired_test(d_b if name == "B − A" else d_c, margin=flip * 0.999)
    above_flip = ex.paired_test(d_b if name == "B − A" else d_c, margin=flip * 1.001)
    print(
        f"{name}: equivalent for every margin above Δ* = {flip:.4f}  (notebook 05's accuracy margin: {margin:g})"
    )
    assert below_flip["p_equivalence"] > LEVEL > above_flip["p_equivalence"]
assert max(abs(both.loc["B − A", "90% low"]), abs(both.loc["B − A", "90% high"])) < margin
assert max(abs(both.loc["C − A", "90% low"]), abs(both.loc["C − A", "90% high"])) > margin

# %% [markdown] id="exercise-3-sign-flip"
# **Exercise 3 · a sign-flip permutation test.** If the two losses were the same, each difference $d_i$ would be as likely to come out $-d_i$: the labels "A" and "B" of each seed could be swapped. With five seeds there are $2^5 = 32$ ways to flip the signs. The permutation p-value is the share of the 32 whose mean is at least as far from zero as the observed mean. Compute it for B − A and C − A, and compare it with the t-test's p-value. What is the smallest p-value this test can ever give with five seeds, and what does that say about five seeds? (Open-ended: when would you trust the permutation test more than the t-test?)

# %% [markdown] id="solution-3-b-every" tags=["solution"]
# **Solution 3.** For B − A every difference is positive, so only two sign patterns reach the observed $|\bar d|$: no flip and all flipped. That share is the smallest any permutation test on five seeds can give, and it is above 0.05: with five seeds this test can **never** reject at 0.05. The t-test can, because it assumes the differences are normal, and that assumption carries the weight that five numbers cannot. The permutation test assumes only that each difference is as likely to come out with either sign when the losses are the same: trust it more when the differences are skewed or have an outlier, and run enough seeds for it to have a chance ([notebook 05](05-real-data.ipynb) has the number of seeds printed below). The cell works in whole thousandths, so that the ties are exact.

# %% tags=["solution"]
signs = np.array(list(itertools.product((1, -1), repeat=n)))  # all 2^n sign patterns
permutation = {}
for name, diff in (("B − A", d_b), ("C − A", d_c)):
    thousandths = np.rint(diff * 1000).astype(int)  # exact integers: ties compare exactly
    assert np.allclose(thousandths / 1000, diff, rtol=0, atol=1e-12)
    as_far = np.abs(signs @ thousandths) >= abs(thousandths.sum())  # |flipped mean| >= |observed mean|
    permutation[name] = as_far.mean()
    p_t = ex.paired_test(diff, margin=margin)["p"]
    print(
        f"{name}: permutation p = {as_far.sum()}/{len(signs)} = {permutation[name]:.4f},  t-test p = {p_t:.4f}"
    )
smallest = 2 / len(signs)  # no flip and all flipped are always as far as the observed mean
print(
    f"smallest permutation p with {n} seeds: 2/{len(signs)} = {smallest:.4f};  notebook 05 trains {len(ex.Plan().seeds)} seeds"
)
assert permutation["B − A"] == smallest > LEVEL > ex.paired_test(d_b, margin=margin)["p"]
assert min(permutation.values()) >= smallest

# %% [markdown] id="exercise-4-many-seeds"
# **Exercise 4 · how many seeds?** Five seeds left C − A "not settled". Suppose its differences are normal with the mean and the standard deviation of the five seeds above. For 5, 10, 20 and 30 seeds, simulate a few thousand experiments each and estimate how often the t-test shows a difference, and how often TOST (with [notebook 05](05-real-data.ipynb)'s margin) shows equivalence. Predict first: which settles sooner, and can both happen in the same experiment? (Open-ended: what would you do if the real mean difference were exactly at the margin?)

# %% [markdown] id="solution-4-more-seeds" tags=["solution"]
# **Solution 4.** More seeds shrink the standard error like $1/\sqrt n$, so both tests gain power. With these numbers the mean is well inside the margin, so equivalence becomes likely before a difference does, and with many seeds both often hold: a real difference, smaller than the margin, the "higher, within the margin" of section 4. At a true mean exactly at the margin, TOST says "equivalent" in only about 5% of experiments, whatever the number of seeds (the cell checks it at 30): no number of seeds can show equivalence for a difference that is not inside the margin.

# %% tags=["solution"]
mean_c, sd_c = d_c.mean(), d_c.std(ddof=1)
experiments = 4000
shares = {}
for seeds_n in (5, 10, 20, 30):
    sample = rng.normal(mean_c, sd_c, size=(experiments, seeds_n))
    m_hat = sample.mean(axis=1)
    se_hat = sample.std(axis=1, ddof=1) / math.sqrt(seeds_n)
    p_difference = 2 * stats.t.sf(np.abs(m_hat / se_hat), seeds_n - 1)
    p_tost = np.maximum(
        stats.t.sf((m_hat + margin) / se_hat, seeds_n - 1),
        stats.t.cdf((m_hat - margin) / se_hat, seeds_n - 1),
    )
    assert math.isclose(p_tost[0], ex.paired_test(sample[0], margin=margin)["p_equivalence"], rel_tol=1e-9)
    shares[seeds_n] = {
        "different": (p_difference < LEVEL).mean(),
        "equivalent": (p_tost < LEVEL).mean(),
        "both": ((p_difference < LEVEL) & (p_tost < LEVEL)).mean(),
    }
power = pd.DataFrame(shares).T.rename_axis("seeds")
display(shown(power, "{:.3f}"))
assert power["equivalent"].is_monotonic_increasing and power["different"].is_monotonic_increasing
assert (power["equivalent"] > power["different"]).all() and power.loc[30, "both"] > 0.5
# a true mean difference exactly at the margin: TOST says "equivalent" in at most about 5% of experiments
at_margin = rng.normal(margin, sd_c, size=(experiments, 30))
m_hat, se_hat = at_margin.mean(axis=1), at_margin.std(axis=1, ddof=1) / math.sqrt(30)
p_tost = np.maximum(stats.t.sf((m_hat + margin) / se_hat, 29), stats.t.cdf((m_hat - margin) / se_hat, 29))
wrongly = stats.binomtest(int((p_tost < LEVEL).sum()), experiments).proportion_ci(confidence_level=0.999)
print(
    f"true mean at the margin, 30 seeds: equivalent in {(p_tost < LEVEL).mean():.3f} of {experiments} experiments"
)
assert wrongly.low < LEVEL and wrongly.high < 2 * LEVEL
