# %% [markdown]
# # 03 · How β and the offset reshape the weights
#
# *The weight $w_c = m_c/\beta + k$ as β and k vary: where it departs from plain KL, where it turns negative, and what the loss tends to at both ends.*
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

import klloss
from klloss import analysis

torch.manual_seed(0)
np.random.seed(0)
pd.set_option("display.precision", 4)

sample = klloss.data.load_sample()
args = sample.tensors(torch.float64)
k = klloss.ARTICLE_OFFSET
betas = np.logspace(-1, 2, 7)  # 0.1 ... 100, log-spaced
betas = np.sort(np.append(betas, sample.beta))  # and the article's 1.5
print("betas:", [round(float(b), 3) for b in betas])

# %% [markdown]
# ## Weight against margin
#
# Left: for a range of β at the article's offset. Small β makes the line steep (the margin dominates); large β flattens it towards the constant $k$ (plain KL, scaled). Right: at the article's β for several offsets; the offset only slides the line up or down.

# %%
margins = np.linspace(-4, 4, 201)
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
colours = plt.cm.viridis(np.linspace(0, 0.9, len(betas)))
for beta, colour in zip(betas, colours):
    w = klloss.weight(torch.tensor(margins), float(beta), k).numpy()
    style = dict(linewidth=3, color="crimson") if beta == sample.beta else dict(color=colour)
    left.plot(margins, w, label=f"β = {beta:.3g}", **style)
left.axhline(0, color="black", linewidth=0.8)
left.axvline(0, color="grey", linewidth=0.8, linestyle=":")
left.set(xlabel="margin m = z_y − z_c", ylabel="weight w", title=f"w = m/β + k, k = {k:g}", ylim=(-20, 40))
left.legend(fontsize=8, ncol=2)
for offset, colour in zip([0, 1, 4, 8, 16], plt.cm.plasma(np.linspace(0, 0.85, 5))):
    w = klloss.weight(torch.tensor(margins), sample.beta, offset).numpy()
    right.plot(margins, w, color=colour, linewidth=3 if offset == k else 1.5, label=f"k = {offset:g}")
right.axhline(0, color="black", linewidth=0.8)
right.axvline(0, color="grey", linewidth=0.8, linestyle=":")
right.set(xlabel="margin m = z_y − z_c", ylabel="weight w", title=f"w = m/β + k, β = {sample.beta:g}")
right.legend(fontsize=8)
print("saved", klloss.plotting.save(fig, "03-weight-vs-margin"))
plt.show()

# %%
# the label's own class has m = 0, so its weight is k for every beta; slope is 1/beta
for beta in betas:
    w = klloss.weight(torch.tensor([0.0, 1.0], dtype=torch.float64), float(beta), k)
    assert w[0] == k and math.isclose(w[1] - w[0], 1 / beta)
print("w(m=0) = k and dw/dm = 1/beta for every beta in the sweep")

# %% [markdown]
# ## How far from plain KL: the relative weight $w_c / k = 1 + m_c/(k\beta)$
#
# Plain KL gives every class the same weight. Dividing by $k$ shows the loss's departure from (k times) plain KL per class: a class with margin $m$ is weighted $1 + m/(k\beta)$ times as much as the label's class. The product $k\beta$ is the margin at which a class counts double; it is the one number that sets the scale.

# %%
fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
for beta, colour in zip(betas, colours):
    rel = (klloss.weight(torch.tensor(margins), float(beta), k) / k).numpy()
    ax.plot(margins, rel, color="crimson" if beta == sample.beta else colour,
            linewidth=3 if beta == sample.beta else 1.5, label=f"β = {beta:.3g} (kβ = {k * beta:.3g})")
ax.axhline(1, color="black", linewidth=0.8, linestyle="--")
ax.set(xlabel="margin m", ylabel="w / k", ylim=(-1, 4), title="relative weight 1 + m/(kβ); dashed: plain KL")
ax.legend(fontsize=7)
print("saved", klloss.plotting.save(fig, "03-relative-weight"))
plt.show()
double = klloss.weight(torch.tensor(k * sample.beta, dtype=torch.float64), sample.beta, k) / k
assert math.isclose(double.item(), 2.0)
print(f"at the article's beta a class counts double when its margin is k*beta = {k * sample.beta:g}")

# %% [markdown]
# ## The sample's weight matrix as β sweeps
#
# On the sample the teacher is right on both rows, so every margin is $\ge 0$ and every weight $\ge k$. As β grows the matrix flattens to $k$ everywhere.

# %%
sweep = [0.1, 0.5, sample.beta, 5.0, 50.0]
fig, axes = plt.subplots(1, len(sweep), figsize=(16, 2.6), constrained_layout=True)
for ax, beta in zip(axes, sweep):
    frame = klloss.trace(**{**args, "beta": beta}).to_frames()["weight"]
    klloss.plotting.heatmap(ax, frame, f"β = {beta:g}", fmt="{:.1f}", cmap="viridis", center=None)
print("saved", klloss.plotting.save(fig, "03-weight-matrix-sweep"))
plt.show()
spread = {beta: (klloss.trace(**{**args, "beta": beta}).weight - k).abs().max().item() for beta in sweep}
print("largest |w - k| per beta:", {b: round(v, 3) for b, v in spread.items()})
assert all(a > b for a, b in zip(spread.values(), list(spread.values())[1:]))  # shrinks like 1/beta

# %% [markdown]
# ## Where weights turn negative
#
# $w_c < 0 \iff m_c < -k\beta$: a class the teacher ranks **above** the label by more than $k\beta$. The weight there is negative, so the loss *rewards* the student for moving away from the teacher on that class, and (notebook 04) the loss then has no lower bound.
#
# For a teacher that is right on a sample no margin is negative, so this never happens. It happens on the samples the teacher gets **wrong**, and on those it depends on how confidently wrong: below, the line $m = -k\beta$ splits the (β, margin) plane, and the shaded region is where weights are negative.

# %%
beta_grid = np.logspace(-2, 2, 200)
fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
ax.fill_between(beta_grid, -k * beta_grid, -1e3, color="crimson", alpha=0.25, label="w < 0 (m < −kβ)")
ax.plot(beta_grid, -k * beta_grid, color="crimson", label="m = −kβ")
for offset in (1.0, 4.0):
    ax.plot(beta_grid, -offset * beta_grid, color="grey", linestyle="--", linewidth=1)
    ax.annotate(f"k = {offset:g}", (30 / offset, -30), fontsize=8, color="grey", ha="left")
ax.axvline(sample.beta, color="black", linestyle=":", label=f"article's β = {sample.beta:g}")
ax.set(xscale="log", xlabel="β", ylabel="margin m = z_y − z_c", ylim=(-40, 5),
       title="negative weights: classes that beat the label by more than kβ")
ax.legend(fontsize=8, loc="lower left")
print("saved", klloss.plotting.save(fig, "03-negative-weight-region"))
plt.show()

# a teacher wrong by more than k*beta on a class gives it a negative weight; exactly k*beta gives zero
wrong_by = torch.tensor([[0.0, k * sample.beta + 1.0, k * sample.beta]], dtype=torch.float64)
w = klloss.weight(klloss.margin(wrong_by, torch.tensor([0])), sample.beta, k)
print("teacher logits", wrong_by.tolist(), "label 0 -> weights", w.round(decimals=4).tolist())
assert w[0, 1] < 0 and w[0, 2] == 0 and w[0, 0] == k

# %% [markdown]
# At the article's β the threshold $k\beta$ is printed above. A teacher's logits for a confident wrong answer can beat the label by far more than that on real data, so with small β negative weights are not a corner case: they appear exactly on the teacher's confident mistakes. Larger β or a larger offset pushes the threshold away, at the price of making the loss closer to plain KL.
#
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
# `klloss.analysis.decompose` computes the two parts; we check the identity on the sample across β and k.

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

# %%
beta_axis = np.logspace(-2, 3, 120)
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
loss_beta = [klloss.klloss_v2(**{**args, "beta": float(b)}).item() for b in beta_axis]
left.plot(beta_axis, loss_beta, color="crimson", linewidth=3, label="klloss_v2 on the sample")
left.axhline(k * parts.kl.item(), color="black", linestyle="--", label="β → ∞: k·KL")
left.plot(beta_axis, parts.margin_term.item() / beta_axis, color="grey", linestyle=":", label="β → 0: M/β")
crossing = -parts.margin_term.item() / (k * parts.kl.item())  # L = k KL + M / beta = 0
left.axvline(crossing, color="tab:blue", linewidth=1, linestyle="--", label=f"L = 0 at β = {crossing:.3f}")
left.axvline(sample.beta, color="black", linewidth=0.8, linestyle=":")
left.axhline(0, color="black", linewidth=0.8)
left.set(xscale="log", yscale="symlog", xlabel="β", ylabel="loss (symmetric log scale)",
         title=f"loss against β (k = {k:g})")
left.set_yscale("symlog", linthresh=1e-2)
left.legend(fontsize=8)
offsets = np.linspace(0, 16, 50)
for beta, colour in zip([0.5, sample.beta, 5.0, math.inf], ["tab:blue", "crimson", "tab:green", "black"]):
    right.plot(offsets, [klloss.klloss_v2(**{**args, "beta": beta}, offset=float(o)).item() for o in offsets],
               color=colour, label=f"β = {beta:g}")
right.axvline(k, color="black", linewidth=0.8, linestyle=":")
right.set(xlabel="offset k", ylabel="loss", title="loss against the offset: straight lines of slope KL")
right.legend(fontsize=8)
print("saved", klloss.plotting.save(fig, "03-loss-vs-beta-and-offset"))
plt.show()
# on the sample M < 0: below the crossing the loss is negative, and it falls without bound as beta -> 0
assert parts.margin_term.item() < 0
assert klloss.klloss_v2(**{**args, "beta": crossing / 2}).item() < 0 < klloss.klloss_v2(**{**args, "beta": crossing * 2}).item()
print(f"M = {parts.margin_term.item():.4f} < 0: the loss on the sample is negative for beta < {crossing:.4f}")

# %% [markdown]
# ## What the offset buys, and what it costs
#
# - **It buys positive weights while the teacher is right.** With $k = 0$ the label's own class would get weight 0 (its KL term dropped entirely) and every class the teacher ranks above the label a negative weight. With $k > 0$ every weight on a correctly classified sample is at least $k$, so the loss there is a non-negatively weighted KL, bounded below and convex in the student's logits (notebook 04).
# - **It costs closeness to the margin idea.** The relative weight $1 + m/(k\beta)$ shows that the offset dilutes the margin term: the larger $k\beta$, the closer the loss is to $k\cdot$KL, with the margins barely mattering. At the article's values the largest relative boost on the sample is printed below.
# - **It does not protect the teacher's mistakes.** On a misclassified sample, a class that beats the label by more than $k\beta$ still gets a negative weight.

# %%
relative = klloss.trace(**args).weight / k
print(f"largest w/k on the sample at beta = {sample.beta:g}, k = {k:g}: {relative.max().item():.4f}")
zero_offset = klloss.trace(**args, offset=0.0).weight
print("with k = 0, weight at the labels:", zero_offset[torch.arange(2), args["label"]].tolist())
assert torch.all(zero_offset[torch.arange(2), args["label"]] == 0)
assert torch.all(klloss.trace(**args).weight >= k)
