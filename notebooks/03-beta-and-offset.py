# %% [markdown] id="title"
# # 03 · How β and the offset reshape the weights
#
# *The weight $w_c = m_c/\beta + k$ as β and k vary: where it departs from plain KL, where it turns negative, and what the loss tends to at both ends.*
#
# **You will learn:** how the margin scale β and the offset k shape the weights; that β is not a temperature (it scales the margin; $p$ stays $\mathrm{softmax}(z)$); where weights turn negative; that the loss is exactly $k\,\mathrm{KL}(p\|q) + M/\beta$, a straight line in $1/\beta$ and in $k$, and what that means for its limits and its sign.
#
# **You need first:** [notebook 01](01-walkthrough.ipynb) (the loss, the margin $m$ and the weight $w$); KL divergence.
#
# Each class's KL term is multiplied by
#
# $$w_c = \frac{m_c}{\beta} + k, \qquad m_c = z_y - z_c,$$
#
# a straight line in the margin $m_c$ with slope $1/\beta$ and intercept $k$ (the article's $k = 8$). Everything in this notebook follows from that line.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

import course
import klloss
from course import analysis

torch.manual_seed(0)
np.random.seed(0)  # noqa: NPY002 (seeds NumPy's global generator, in the one visible seeding cell)
pd.set_option("display.precision", 4)
course.i18n.translate_outputs()  # tables and figures in the reader's language, the Chinese kept for notebooks/zh/

sample = klloss.data.load_sample()
args = sample.tensors(torch.float64)
k = klloss.ARTICLE_OFFSET
betas = np.logspace(-1, 2, 7)  # 0.1 ... 100, log-spaced
betas = np.sort(np.append(betas, sample.beta))  # and the article's 1.5
print("betas:", [round(float(b), 3) for b in betas])

# %% [markdown] id="weight-against-margin"
# ## Weight against margin
#
# **Left panel: several β at the article's offset.** Small β makes the line steep (the margin dominates); large β flattens it towards the constant $k$ (plain KL, scaled). The article's setting, β = 1.5 and k = 8, is the thick crimson line in both panels.
#
# **The left panel's right-hand axis** reads the same lines as the **relative weight** $w_c/k = 1 + m_c/(k\beta)$: a class with margin $m$ is weighted $1 + m/(k\beta)$ times as much as the label's own class. So the product $k\beta$ is the one number that sets the shape: a class counts double ($w = 2k$) at $m = k\beta$, and nothing ($w = 0$) at $m = -k\beta$ (the two dots, for the article's β).
#
# **Right panel: several offsets at the article's β.** The offset only slides the line up or down.

# %%
margins = np.linspace(-16, 16, 321)  # wide enough to show m = -k beta and m = k beta at the article's beta
article = {
    "linewidth": 3,
    "color": "crimson",
}  # the article's (beta, k) = (1.5, 8): the same style in both panels
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.4), constrained_layout=True)
colours = plt.cm.viridis(np.linspace(0, 0.9, len(betas)))
for beta, colour in zip(betas, colours, strict=False):
    w = klloss.weight(torch.tensor(margins), float(beta), k).numpy()
    style = article if beta == sample.beta else {"color": colour}
    left.plot(margins, w, label=f"β = {beta:.3g} (kβ = {k * beta:.3g})", **style)
left.axhline(2 * k, color="grey", linewidth=0.8, linestyle="--", label="w = 2k: the class counts double")
left.axhline(
    k, color="black", linewidth=0.8, linestyle="--", label="w = k: the label's weight (plain KL × k)"
)
left.axhline(0, color="black", linewidth=0.8, label="w = 0")
kb = k * sample.beta
left.scatter(
    [-kb, kb],
    [0, 2 * k],
    color="crimson",
    edgecolor="black",
    zorder=4,
    label=f"article's β: w = 0 at m = −kβ = −{kb:g}, w = 2k at m = kβ = {kb:g}",
)
left.axvline(0, color="grey", linewidth=0.8, linestyle=":")
left.set(xlabel="margin m = z_y − z_c", ylabel="weight w", title=f"w = m/β + k, k = {k:g}", ylim=(-20, 40))
relative = left.secondary_yaxis("right", functions=(lambda w: w / k, lambda r: r * k))
relative.set_ylabel("relative weight w / k = 1 + m/(kβ)")
left.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.13))  # below the panel
others = iter(plt.cm.viridis(np.linspace(0, 0.9, 4)))
for offset in [0, 1, 4, 8, 16]:
    w = klloss.weight(torch.tensor(margins), sample.beta, offset).numpy()
    style = article if offset == k else {"color": next(others), "linewidth": 1.5}
    right.plot(margins, w, label=f"k = {offset:g}", **style)
right.axhline(0, color="black", linewidth=0.8)
right.axvline(0, color="grey", linewidth=0.8, linestyle=":")
right.set(
    xlabel="margin m = z_y − z_c",
    ylabel="weight w",
    title=f"w = m/β + k, β = {sample.beta:g} (the article's k = {k:g} in crimson, as on the left)",
    ylim=(-20, 40),
)
right.legend(fontsize=8, loc="lower right")
print("saved", course.plotting.save(fig, "03-weight-vs-margin"))
plt.show()

# %%
# the label's own class has m = 0, so its weight is k for every beta; slope is 1/beta;
# relative weight 1 + m/(k beta): 2 at m = k beta, 0 at m = -k beta
for beta in betas:
    w = klloss.weight(torch.tensor([0.0, 1.0, k * beta, -k * beta], dtype=torch.float64), float(beta), k)
    assert w[0] == k and math.isclose(w[1] - w[0], 1 / beta)
    assert math.isclose(w[2] / k, 2.0) and abs(w[3]) < 1e-12
print(
    "w(m=0) = k, dw/dm = 1/beta, w/k = 2 at m = k*beta and w = 0 at m = -k*beta, for every beta in the sweep"
)
print(f"at the article's beta a class counts double when its margin is k*beta = {k * sample.beta:g}")

# %% [markdown] id="sample-weight-matrix-as"
# ## The sample's weight matrix as β sweeps
#
# On the sample the teacher is right on both rows, so every margin is $\ge 0$ and every weight $\ge k$. As β grows the matrix flattens to $k$ everywhere. All panels share one colour scale (the colour bar), so a flat panel looks flat. β changes the weights only: the teacher's $p = \mathrm{softmax}(z)$ is the same in every panel. That is why β is a margin scale and not a temperature, which would soften $p$ itself.

# %%
sweep = [0.1, 0.5, sample.beta, 5.0, 50.0]
frames = {beta: klloss.trace(**{**args, "beta": beta}).to_frames()["weight"] for beta in sweep}
low = min(frame.to_numpy().min() for frame in frames.values())  # one colour scale for every panel
high = max(frame.to_numpy().max() for frame in frames.values())
fig, axes = plt.subplots(1, len(sweep), figsize=(17, 2.8), constrained_layout=True)
for ax, (beta, frame) in zip(axes, frames.items(), strict=False):
    image = course.plotting.heatmap(
        ax, frame, f"β = {beta:g}", fmt="{:.1f}", cmap="viridis", vmin=low, vmax=high
    )
fig.colorbar(image, ax=axes, label="weight w (one scale for all panels)", shrink=0.9)
fig.suptitle(f"the sample's weights w = m/β + k (k = {k:g}) flatten to k as β grows", fontsize=11)
print("saved", course.plotting.save(fig, "03-weight-matrix-sweep"))
plt.show()
spread = {beta: (klloss.trace(**{**args, "beta": beta}).weight - k).abs().max().item() for beta in sweep}
print("largest |w - k| per beta:", {b: round(v, 3) for b, v in spread.items()})
assert all(
    a > b for a, b in zip(spread.values(), list(spread.values())[1:], strict=False)
)  # shrinks like 1/beta
p_sweep = [klloss.trace(**{**args, "beta": beta}).target_prob for beta in sweep]
assert all(torch.equal(p_beta, p_sweep[0]) for p_beta in p_sweep)  # p = softmax(z) whatever beta
print("p = softmax(z) is identical for every beta in the sweep")

# %% [markdown] id="where-weights-turn-negative"
# ## Where weights turn negative
#
# $w_c < 0 \iff m_c < -k\beta$: a class the teacher ranks **above** the label by more than $k\beta$. The weight there is negative, so the loss *rewards* the student for moving away from the teacher on that class, and ([notebook 04](04-what-it-teaches.ipynb)) the loss then has no lower bound.
#
# For a teacher that is right on a sample no margin is negative, so this never happens. It happens on the samples the teacher gets **wrong**, and on those it depends on how confidently wrong: below, the line $m = -k\beta$ splits the (β, margin) plane, and the shaded region is where weights are negative.

# %%
beta_grid = np.logspace(-2, 2, 200)
fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
ax.fill_between(
    beta_grid,
    -k * beta_grid,
    -1e3,
    color="crimson",
    alpha=0.25,
    label=f"shaded: w < 0 for k = {k:g} (m < −{k:g}β)",
)
ax.plot(beta_grid, -k * beta_grid, color="crimson", label=f"m = −kβ, k = {k:g}")
for offset, at in ((1.0, -35.0), (4.0, -20.0)):
    ax.plot(
        beta_grid,
        -offset * beta_grid,
        color="grey",
        linestyle="--",
        linewidth=1,
        label="m = −kβ for k = 1 and 4 (not shaded)" if offset == 1.0 else None,
    )
    ax.annotate(f"k = {offset:g}", (-at / offset * 1.15, at), fontsize=8, color="grey", ha="left")
ax.axvline(sample.beta, color="black", linestyle=":", label=f"article's β = {sample.beta:g}")
ax.set(
    xscale="log",
    xlabel="β",
    ylabel="margin m = z_y − z_c",
    ylim=(-40, 5),
    title=f"negative weights (k = {k:g}): classes that beat the label by more than kβ",
)
ax.legend(fontsize=8, loc="lower left")
print("saved", course.plotting.save(fig, "03-negative-weight-region"))
plt.show()

# a teacher wrong by more than k*beta on a class gives it a negative weight; exactly k*beta gives zero
wrong_by = torch.tensor([[0.0, k * sample.beta + 1.0, k * sample.beta]], dtype=torch.float64)
w = klloss.weight(klloss.margin(wrong_by, torch.tensor([0])), sample.beta, k)
print("teacher logits", wrong_by.tolist(), "label 0 -> weights", w.round(decimals=4).tolist())
assert w[0, 1] < 0 and w[0, 2] == 0 and w[0, 0] == k

# %% [markdown] id="at-article-threshold-logits"
# At the article's β the threshold is $k\beta = 12$ logits. Whether any weight turns negative on real data depends on the teacher: it happens on exactly those samples where the teacher ranks a wrong class above the label by more than $k\beta$, so only with a teacher that makes confident mistakes, and more often the smaller β is. ([Notebook 05](05-real-data.ipynb) shows both cases on real data: its teacher trained on the true labels has no negative weight at any β tried there, down to β = 0.5, while teachers trained on flipped labels have them on a sizeable share of their training rows at β = 0.5.) Larger β or a larger offset pushes the threshold away, at the price of making the loss closer to plain KL.

# %% [markdown] id="loss-as-function-offset"
# ## The loss as a function of β and of the offset, and its limits
#
# Split the weight into its two parts:
#
# $$L = \frac1N\sum_{i,c}\Big(k + \frac{m_{ic}}{\beta}\Big)p_{ic}\log\frac{p_{ic}}{q_{ic}}
#   = k\,\underbrace{\frac1N\sum_{i,c} p_{ic}\log\frac{p_{ic}}{q_{ic}}}_{\mathrm{KL}(p\|q)}
#   \;+\; \frac1\beta\,\underbrace{\frac1N\sum_{i,c} m_{ic}\,p_{ic}\log\frac{p_{ic}}{q_{ic}}}_{M}.$$
#
# So the loss is **exactly** linear in $k$ and in $1/\beta$: $L(\beta, k) = k\,\mathrm{KL} + M/\beta$. Two limits follow:
# - $\beta \to \infty$: $L \to k\,\mathrm{KL}(p\|q)$, plain KL scaled by the offset;
# - $\beta \to 0$: the margin term dominates, $\beta L \to M$. Its sign is the sign of $M$, which can be negative because single KL terms can be: then the loss itself turns negative below $\beta = -M/(k\,\mathrm{KL})$, even on a sample the teacher classifies correctly. On the article's sample this is what happens (below).
#
# `course.analysis.decompose` computes the two parts; we check the identity on the sample across β and k.

# %%
parts = analysis.decompose(**args)
print(f"KL(p||q) = {parts.kl.item():.6f}   M = {parts.margin_term.item():.6f}")
rows = []
for beta in [0.01, 0.1, sample.beta, 10.0, 1e3, 1e6, math.inf]:
    for offset in [0.0, 1.0, k]:
        loss = klloss.klloss_v2(**{**args, "beta": beta}, offset=offset).item()
        recombined = offset * parts.kl.item() + parts.margin_term.item() / beta
        assert math.isclose(loss, recombined, rel_tol=1e-12, abs_tol=1e-15)
        rows.append({"beta": beta, "offset": offset, "loss": loss, "k KL + M / beta": recombined})
table = pd.DataFrame(rows)
display(table[table["offset"] == k].set_index("beta"))
assert math.isclose(klloss.klloss_v2(**{**args, "beta": math.inf}).item(), k * parts.kl.item(), rel_tol=1e-12)

# %% [markdown] id="axes-where-straight-line"
# On axes where it is a straight line: against $1/\beta$ the loss is a line with intercept $k\,\mathrm{KL}$ (β = ∞) and slope $M$; against $k$ a line with slope KL.

# %%
inverse_beta = np.linspace(0, 2, 41)  # 1/beta from 0 (beta = inf) to 2 (beta = 0.5)
loss_inverse = np.array(
    [klloss.klloss_v2(**{**args, "beta": math.inf if x == 0 else 1 / x}).item() for x in inverse_beta]
)
slope, intercept = np.polyfit(inverse_beta, loss_inverse, 1)
crossing = -parts.margin_term.item() / (k * parts.kl.item())  # L = k KL + M / beta = 0
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.4), constrained_layout=True)
left.plot(
    inverse_beta,
    intercept + slope * inverse_beta,
    color="crimson",
    linewidth=2,
    label=f"k·KL + M/β: intercept (β = ∞) k·KL = {k * parts.kl.item():.4f}, slope M = {parts.margin_term.item():.4f}",
)
left.scatter(inverse_beta, loss_inverse, color="black", s=12, zorder=3, label="klloss_v2 on the sample")
left.axhline(0, color="black", linewidth=0.8)
left.axvline(
    1 / sample.beta, color="black", linewidth=0.8, linestyle=":", label=f"article's β = {sample.beta:g}"
)
left.set(xlabel="1/β", ylabel="loss", title=f"loss against 1/β (k = {k:g}): a straight line")
left.legend(fontsize=8, loc="lower left")
offsets = np.linspace(0, 16, 50)
for beta, colour in zip(
    [0.5, sample.beta, 5.0, math.inf], ["tab:blue", "crimson", "tab:green", "black"], strict=False
):
    right.plot(
        offsets,
        [klloss.klloss_v2(**{**args, "beta": beta}, offset=float(o)).item() for o in offsets],
        color=colour,
        label=f"β = {beta:g}",
    )
right.axvline(k, color="black", linewidth=0.8, linestyle=":")
right.axhline(0, color="black", linewidth=0.8)
right.set(xlabel="offset k", ylabel="loss", title="loss against the offset: straight lines of slope KL")
right.legend(fontsize=8)
print("saved", course.plotting.save(fig, "03-loss-vs-beta-and-offset"))
plt.show()
# a straight line in 1/beta: the fit recovers k KL and M, and no point is off the line beyond round-off
assert math.isclose(intercept, k * parts.kl.item(), rel_tol=1e-9) and math.isclose(
    slope, parts.margin_term.item(), rel_tol=1e-9
)
assert np.abs(loss_inverse - (intercept + slope * inverse_beta)).max() < 1e-12
print(
    f"fit of L against 1/beta: intercept {intercept:.6f} = k KL, slope {slope:.6f} = M; every point within 1e-12 of the line"
)
# on the sample M < 0: below the crossing the loss is negative, and it falls without bound as beta -> 0
assert parts.margin_term.item() < 0
assert (
    klloss.klloss_v2(**{**args, "beta": crossing / 2}).item()
    < 0
    < klloss.klloss_v2(**{**args, "beta": crossing * 2}).item()
)
print(
    f"M = {parts.margin_term.item():.4f} < 0: below some beta the loss on the sample is negative (exercise 1 finds where)"
)

# %% [markdown] id="offset-buys-costs"
# ## What the offset buys, and what it costs
#
# - **It buys positive weights while the teacher is right.** With $k = 0$ the label's own class would get weight 0 (its KL term dropped entirely) and every class the teacher ranks above the label a negative weight. With $k > 0$ every weight on a correctly classified sample is at least $k$, so the loss there is a weighted sum of the per-class KL terms with positive weights: bounded below and convex in the student's logits, yet not a divergence, because its minimum is negative unless all weights are equal: each shown in [notebook 04](04-what-it-teaches.ipynb) (convexity in its §3, the minimum in its §5).
# - **It costs closeness to the margin idea.** The relative weight $1 + m/(k\beta)$ shows that the offset dilutes the margin term: the larger $k\beta$, the closer the loss is to $k\cdot$KL, with the margins barely mattering. At the article's values the largest relative boost on the sample is printed below.
# - **It does not protect the teacher's mistakes.** On a misclassified sample, a class that beats the label by more than $k\beta$ still gets a negative weight.

# %%
relative = klloss.trace(**args).weight / k
print(f"largest w/k on the sample at beta = {sample.beta:g}, k = {k:g}: {relative.max().item():.4f}")
zero_offset = klloss.trace(**args, offset=0.0).weight
print("with k = 0, weight at the labels:", zero_offset[torch.arange(2), args["label"]].tolist())
assert torch.all(zero_offset[torch.arange(2), args["label"]] == 0)
assert torch.all(klloss.trace(**args).weight >= k)

# %% [markdown] id="exercises"
# ## Exercises
#
# Each has a worked solution below it, folded: try first, then unfold.
#
# **Exercise 1 · When does the sample's loss turn negative?** Using only `klloss.klloss_v2` (no decomposition), find the β at which the loss on the sample is 0 by bisection, then check your answer against the formula $\beta = -M/(k\,\mathrm{KL})$.

# %% [markdown] id="solution-loss-with-increasing" tags=["solution"]
# **Solution 1.** The loss is $k\,\mathrm{KL} + M/\beta$ with $M < 0$: increasing in β, negative for small β and positive for large β, so bisection on $\log\beta$ between 0.01 and 100 finds the one zero. Setting $k\,\mathrm{KL} + M/\beta = 0$ gives $\beta = -M/(k\,\mathrm{KL})$.

# %% tags=["solution"]
low, high = 0.01, 100.0
assert (
    klloss.klloss_v2(**{**args, "beta": low}).item() < 0 < klloss.klloss_v2(**{**args, "beta": high}).item()
)
for _ in range(100):
    middle = math.sqrt(low * high)  # bisect in log(beta)
    if klloss.klloss_v2(**{**args, "beta": middle}).item() < 0:
        low = middle
    else:
        high = middle
formula = -parts.margin_term.item() / (k * parts.kl.item())
assert math.isclose(middle, formula, rel_tol=1e-9)
print(f"bisection: beta = {middle:.6f};  -M / (k KL) = {formula:.6f}")

# %% [markdown] id="exercise-2-keeping-wrong"
# **Exercise 2 · Keeping a wrong teacher's weights non-negative.** A teacher ranks a wrong class 20 logits above the label. At the article's $k = 8$, what is the smallest β that keeps every weight $\ge 0$, so that the loss stays bounded below? At the article's β = 1.5, what is the smallest offset $k$? Check both with `klloss.weight` and `analysis.min_loss`.

# %% [markdown] id="solution-wrong-class-has" tags=["solution"]
# **Solution 2.** The wrong class has $m = -20$ and weight $k - 20/\beta$, which is $\ge 0$ when $k\beta \ge 20$: $\beta \ge 20/8 = 2.5$ at $k = 8$, and $k \ge 20/1.5 \approx 13.33$ at β = 1.5. Just below either bound the weight is negative and `min_loss` refuses, because the loss has no lower bound.

# %% tags=["solution"]
wrong = torch.tensor([[0.0, 20.0, 5.0]], dtype=torch.float64)  # label 0; class 1 leads by 20
label = torch.tensor([0])
for name, beta_bound, offset_bound in [("beta", 20 / k, k), ("k", sample.beta, 20 / sample.beta)]:
    # at the bound the wrong class's weight is 0 (up to round-off)
    assert abs(klloss.weight(klloss.margin(wrong, label), beta_bound, offset_bound)[0, 1]) < 1e-12
    scale = {"beta": (1, 0), "k": (0, 1)}[name]  # which of (beta, k) to move
    for factor in (1.01, 0.99):
        beta_try = beta_bound * factor ** scale[0]
        offset_try = offset_bound * factor ** scale[1]
        try:
            analysis.min_loss(wrong, wrong, label, beta_try, offset=offset_try)
            has_minimum = True
        except ValueError:
            has_minimum = False
        assert has_minimum == (factor > 1)
    print(
        f"smallest {name}: { {'beta': beta_bound, 'k': offset_bound}[name]:.4g}"
        f" (with {'k' if name == 'beta' else 'beta'} = { {'beta': offset_bound, 'k': beta_bound}[name]:g});"
        " 1% more has a minimum, 1% less has none"
    )

# %% [markdown] id="exercise-3-only-k"
# **Exercise 3 · Only kβ shapes the loss.** Show that $L(\beta, k) = k\,L(k\beta, 1)$: the offset scales the loss, and the product $k\beta$ alone decides its shape. Check it on the sample for $(\beta, k) = (1.5, 8), (3, 4), (12, 1), (0.75, 16)$.

# %% [markdown] id="solution-so-all-four" tags=["solution"]
# **Solution 3.** $w = m/\beta + k = k\,(1 + m/(k\beta))$, so $L(\beta, k) = k\sum_c (1 + m_c/(k\beta))\,p_c\log(p_c/q_c)/N = k\,L(k\beta, 1)$. All four settings have $k\beta = 12$, so $L/k$ is the same for all of them.

# %% tags=["solution"]
shape = {}
for beta_try, offset_try in [(1.5, 8.0), (3.0, 4.0), (12.0, 1.0), (0.75, 16.0)]:
    loss_try = klloss.klloss_v2(**{**args, "beta": beta_try}, offset=offset_try).item()
    shape[(beta_try, offset_try)] = loss_try / offset_try
    assert math.isclose(
        loss_try,
        offset_try * klloss.klloss_v2(**{**args, "beta": offset_try * beta_try}, offset=1.0).item(),
        rel_tol=1e-12,
    )
assert all(math.isclose(v, shape[(1.5, 8.0)], rel_tol=1e-12) for v in shape.values())
print("L / k for (beta, k) with k*beta = 12:", {key: round(v, 6) for key, v in shape.items()})

# %% [markdown] id="exercise-4-large-must"
# **Exercise 4 · How large must β be for plain KL?** For which β is the loss on the sample within 1% of its β → ∞ limit $k\,\mathrm{KL}$? Check just above and just below your answer.

# %% [markdown] id="solution-so-exactly-when" tags=["solution"]
# **Solution 4.** $L - k\,\mathrm{KL} = M/\beta$, so $|L - k\,\mathrm{KL}| \le 0.01\,k\,\mathrm{KL}$ exactly when $\beta \ge 100\,|M|/(k\,\mathrm{KL})$: a hundred times the β at which the loss is 0 (exercise 1).

# %% tags=["solution"]
limit_value = k * parts.kl.item()
beta_1pc = 100 * abs(parts.margin_term.item()) / limit_value
for factor, inside in [(1.01, True), (0.99, False)]:
    gap = abs(klloss.klloss_v2(**{**args, "beta": factor * beta_1pc}).item() - limit_value) / limit_value
    assert (gap <= 0.01) == inside
print(f"within 1% of k KL from beta = {beta_1pc:.2f} on")

# %% [markdown] id="exercise-5-logit-scale"
# **Exercise 5 · A teacher's logit scale.** *(open-ended)* Exercise 2 found the bound for one row. A real teacher has thousands of rows, and how far its logits spread depends on how it was trained. Draw 2000 rows of a ten-class teacher that is often wrong: logits $\sigma\,\varepsilon$ with $\varepsilon$ standard normal and a label drawn uniformly, for σ = 1, 2, 4 and 8. At the article's (β, k) = (1.5, 8), what share of rows has a negative weight, for each σ? Before computing, predict how the share changes with σ, and why. Then propose a rule for choosing $k\beta$ from a teacher's logits, and check it on your draws. What does your rule cost on a teacher that is right on almost every row?

# %% [markdown] id="solution-5-logit-scale" tags=["solution"]
# **Solution 5.** A row has a negative weight exactly when some class leads the label by more than $k\beta$: $\max_c (z_c - z_y) > k\beta = 12$. Scaling the logits by σ scales every lead by σ, so on the same draws the share can only grow with σ. One rule: set $k\beta$ at or above the largest lead over the teacher's training rows (with some headroom), so that no training row gets a negative weight; [notebook 05](05-real-data.ipynb)'s recipe does this on real data. Its cost: a large $k\beta$ brings every weight close to $k$ (exercise 4), so the loss moves towards plain KL. On a teacher that is right on every row the largest lead is $\le 0$ and the rule asks nothing; β is then free.

# %% tags=["solution"]
draw = torch.Generator().manual_seed(5)
noise = torch.randn(2000, 10, generator=draw, dtype=torch.float64)
draw_labels = torch.randint(0, 10, (2000,), generator=draw)
scale_rows = []
for sigma in (1.0, 2.0, 4.0, 8.0):
    logits_sigma = sigma * noise
    lead = -klloss.margin(logits_sigma, draw_labels).min(1).values  # max_c (z_c - z_y)
    negative = (klloss.weight(klloss.margin(logits_sigma, draw_labels), sample.beta, k) < 0).any(1)
    assert torch.equal(
        negative, lead > k * sample.beta
    )  # a negative weight exactly where a lead exceeds k beta
    rule = lead.max().item()  # k beta at the largest lead: no training row gets a negative weight
    assert not (klloss.weight(klloss.margin(logits_sigma, draw_labels), rule / k, k) < 0).any()
    scale_rows.append(
        {
            "sigma": sigma,
            "rows with a negative weight": negative.double().mean().item(),
            "k beta by the rule": rule,
        }
    )
by_scale = pd.DataFrame(scale_rows).set_index("sigma")
display(by_scale)
shares = by_scale["rows with a negative weight"].tolist()
assert np.all(np.diff(shares) >= 0)  # the share grows with sigma
