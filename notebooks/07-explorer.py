# %% [markdown] id="title"
# # 07 · Explorer: move β and the offset
#
# *Two sliders, β and the offset k, and the weights, the weighted terms, the loss and the student it teaches on the article's sample batch, recomputed in your browser with no kernel and no network.*
#
# **You will learn:** how β and $k$ reshape the weight matrix, when the loss on a batch the teacher gets right turns negative, where a weight turns negative on a sample the teacher gets wrong, and what student $q^*$ the loss pulls towards.
#
# **You need first:** [notebook 01](01-walkthrough.ipynb) (the loss, step by step) and [notebook 03](03-beta-and-offset.ipynb) (β and the offset, one figure at a time).
#
# Each weight is $w_c = k + m_c/\beta$ with margin $m_c = z_y - z_c$, and the loss on a batch of $N$ samples is
#
# $$L = \frac1N \sum_{i,c} w_{ic}\, p_{ic} \log\frac{p_{ic}}{q_{ic}} = k\,\mathrm{KL} + \frac{M}{\beta},$$
#
# where $\mathrm{KL} = \frac1N\sum_i \mathrm{KL}(p_i\|q_i)$ is the batch mean of the per-sample divergences and $M = \frac1N\sum_{i,c} m_{ic}\,p_{ic}\log\frac{p_{ic}}{q_{ic}}$ ([notebook 03](03-beta-and-offset.ipynb)).
#
# The first cell computes, from the sample, the numbers to look for when you move the sliders.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display
from matplotlib.colors import SymLogNorm

import course
import klloss
from course import analysis, explorer

course.i18n.translate_outputs()  # tables and figures in the reader's language, the Chinese kept for notebooks/zh/

sample = klloss.data.load_sample()
args = sample.tensors(torch.float64)
k = klloss.ARTICLE_OFFSET
parts = analysis.decompose(**args)
kl, big_m = parts.kl.item(), parts.margin_term.item()
# KL is the batch mean of the per-sample KL(p_i || q_i)
per_sample_kl = [
    klloss.oracle.kl(sample.target[i : i + 1], sample.input[i : i + 1]) for i in range(len(sample.label))
]
assert abs(kl - sum(per_sample_kl) / len(per_sample_kl)) < 1e-12
# L = k KL + M / beta = 0  at  beta = -M / (k KL)
beta_zero = -big_m / (k * kl)
print(f"on the sample: KL(p||q) = {kl:.5f} (the mean of the two samples' divergences), M = {big_m:.5f}")
print(f"at k = {k:g} the loss is negative for beta < {beta_zero:.4f}")
print(f"at the article's (beta, k) = ({sample.beta:g}, {k:g}): L = {klloss.klloss_v2(**args).item():.5f}")
assert big_m < 0 < kl
for beta in (beta_zero / 1.01, beta_zero * 1.01):
    loss = klloss.oracle.klloss_v2(sample.logits_t, sample.input, sample.target, sample.label, beta, offset=k)
    assert (loss < 0) == (beta < beta_zero)
# k = 0 leaves only M / beta, negative for every beta on this sample
assert all(klloss.klloss_v2(**{**args, "beta": b}, offset=0.0).item() < 0 for b in explorer.BETAS)
print("at k = 0 the loss is negative for every beta on the slider")

# %% [markdown] id="explorer"
# ## The explorer
#
# Move the sliders with the mouse or, after a click or Tab, with the arrow keys. The β slider steps through values on a log scale from 0.01 to 1000; the article's β = 1.5 and k = 8 are marked. What you see:
#
# - **left**: the weight matrix $w$, on one colour scale that does not change as you move the sliders (symmetric log, red for negative); the label's own class is outlined ($m = 0$, so $w = k$);
# - **middle**: the weighted terms $w\,p\,(\log p - \log q)$ and each sample's $L_i$;
# - **top right**: the loss on the article's batch of two samples, red when it is negative, and its two parts $k\,\mathrm{KL}$ and $M/\beta$;
# - **bottom**: for each sample, the teacher's $p$ beside $q^* = w \odot p / W$ (with $W = \sum_c w_c p_c$), the student that minimises the loss ([notebook 04](04-what-it-teaches.ipynb)). It exists only while every weight of the row is $\ge 0$.
#
# The third row is not part of the batch: it is sample 0 with its label changed to class 1, so the teacher ranks three wrong classes above the label. Its weight on a class turns negative where $m < -k\beta$, and then $q^*$ does not exist.
#
# Things to try: β below the value printed above (the loss turns negative at $k = 8$); $k = 0$ (the label's weight drops to 0, and the loss is negative for every β); the third row at small $k\beta$.

# %%
display(explorer.output())  # in the reader's language: notebooks/zh/ shows it in Chinese

# %% [markdown] id="same-drawn-once-weight"
# The same, drawn once (this figure is what you see if the explorer above does not run, for instance in a JupyterLab notebook that is not trusted): the weight matrix at five values of β and three offsets, on the same fixed colour scale, with the loss on the batch above each panel.

# %%
betas = [0.1, 0.5, sample.beta, 10.0, 1000.0]
offsets = [0.0, k, 16.0]
rows = explorer.rows(sample)
row_names = [row["name"] for row in rows]
w_limit = explorer.colour_domains(sample)["w"]
norm = SymLogNorm(linthresh=1.0, vmin=-w_limit, vmax=w_limit, base=10)  # the explorer's range, fixed
fig, axes = plt.subplots(
    len(offsets), len(betas), figsize=(16, 6.2), sharex=True, sharey=True, constrained_layout=True
)
for ax_row, offset in zip(axes, offsets, strict=False):
    for ax, beta in zip(ax_row, betas, strict=False):
        # w = k + m / beta for every row, from the oracle
        w = np.vstack([explorer.row_intermediates(row, beta, offset)["weight"] for row in rows])
        image = ax.imshow(w, cmap="RdBu", norm=norm, aspect="auto")
        for (i, j), value in np.ndenumerate(w):
            ax.text(
                j,
                i,
                f"{value:.3g}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if abs(norm(value) - 0.5) > 0.33 else "black",
            )
        loss = klloss.oracle.klloss_v2(
            sample.logits_t, sample.input, sample.target, sample.label, beta, offset=offset
        )
        ax.set_title(
            f"β = {beta:g}, k = {offset:g}\nL = {loss:.4g}",
            fontsize=9,
            color="#b91c1c" if loss < 0 else "black",
        )
        ax.set_xticks(range(w.shape[1]), [f"c = {c}" for c in range(w.shape[1])], fontsize=7)
        ax.set_yticks(range(len(rows)), row_names, fontsize=7)
fig.colorbar(image, ax=axes, label="weight w = k + m/β (symmetric log scale)", shrink=0.8)
fig.suptitle(
    "weights w of the article's two samples and of sample 0 relabelled (third row, not in L); "
    "red titles: the loss on the batch is negative",
    fontsize=10,
)
print("saved", course.plotting.save(fig, "07-weights-small-multiples"))
plt.show()

# %% [markdown] id="loss-straight-line-each"
# The loss is a straight line in $1/\beta$ for each offset, $L = k\,\mathrm{KL} + M\cdot(1/\beta)$, with the same slope $M$ for every $k$; here it is against $1/\beta$, where those lines are straight, with the article's β and the zero crossing at $k = 8$ marked.

# %%
inverse = np.linspace(0, 3, 61)  # 1/beta; beta from infinity down to 1/3
fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
for offset, colour in zip([0.0, 4.0, k, 16.0], ["tab:blue", "tab:green", "crimson", "black"], strict=False):
    losses = [
        klloss.klloss_v2(**{**args, "beta": 1 / x if x > 0 else math.inf}, offset=offset).item()
        for x in inverse
    ]
    ax.plot(inverse, losses, color=colour, linewidth=3 if offset == k else 1.5, label=f"k = {offset:g}")
ax.axhline(0, color="black", linewidth=0.8)
ax.axvline(1 / sample.beta, color="black", linestyle=":", label=f"article's β = {sample.beta:g}")
ax.axvline(
    1 / beta_zero,
    color="crimson",
    linestyle="--",
    linewidth=1,
    label=f"L = 0 at β = {beta_zero:.3f} (k = {k:g})",
)
ax.set(xlabel="1/β", ylabel="loss L on the sample", title="L = k·KL + M/β: one straight line per offset")
ax.legend(fontsize=8)
print("saved", course.plotting.save(fig, "07-loss-against-inverse-beta"))
plt.show()

# %% [markdown] id="sliders-range-over"
# ## What the sliders range over
#
# The colour scale is fixed at the largest $|w|$ any slider setting gives; since $w$ is linear in $k$ and in $1/\beta$ the largest value sits at a corner of the slider ranges, which the next cell checks against every setting.

# %%
print(
    f"beta: {len(explorer.BETAS)} steps from {explorer.BETAS[0]:g} to {explorer.BETAS[-1]:g}; "
    f"offset: {len(explorer.OFFSETS)} steps from {explorer.OFFSETS[0]:g} to {explorer.OFFSETS[-1]:g}"
)
assert sample.beta in explorer.BETAS and k in explorer.OFFSETS
ratios = np.diff(np.log10(explorer.BETAS))
print(f"log10 steps between neighbouring betas: {ratios.min():.3f} ... {ratios.max():.3f}")
largest = max(
    np.abs(explorer.row_intermediates(row, b, o)["weight"]).max()
    for row in rows
    for b in explorer.BETAS
    for o in explorer.OFFSETS
)
assert math.isclose(largest, w_limit)
print(f"largest |w| over every setting and row: {largest:.4g} (the colour scale spans ±{w_limit:.4g})")

# %% [markdown] id="explorer-made-why-this"
# ## How the explorer is made, and why this way
#
# The page computes the loss itself: `course.explorer` writes the formula as a chain of named Vega transforms (log-softmax, margin, weight, weighted terms, batch mean), one per line of the formula, and Vega recomputes the ones a slider reaches. That makes it a third implementation of the loss, beside `klloss.klloss_v2` and the oracle, so it is tested like them: `tests/test_explorer.py` opens this page of the site in Chromium with the network cut, sets the sliders to several $(\beta, k)$, and compares the readout with `klloss.oracle.klloss_v2` to the digits shown.
#
# The options we weighed, against what the explorer must do (work offline without a kernel, in JupyterLab and in the site; native or ARIA sliders with fixed ids; a readout the page can read; output identical from run to run):
#
# | library | for | against |
# |---|---|---|
# | ipywidgets | the usual notebook sliders | dead without a kernel; the exported page fetches the widget code from a CDN |
# | Plotly (plotly.js embedded) | familiar charts | its sliders are drawn in SVG, not keyboard-operable inputs; it has no dataflow, so the loss would be hand-written JS or precomputed frames; of the four that embed a file in the page, the largest file |
# | Bokeh (`CustomJS`, inline resources) | real widgets, Python API | its widgets live in shadow DOM, where the page's ids cannot reach them; the loss would be hand-written JS; embedded output carries generated ids |
# | Vega-Lite via Altair | concise charts from Python | binds to native inputs (it runs on Vega) but names its derived data itself, so the page cannot read the loss by name; needs the Vega-Lite compiler in the page or a large converter package at build time |
# | **Vega** | declarative dataflow with named data and signals bound to native `<input type="range">` elements; one minified file | the chart specification is longer than Vega-Lite's |
#
# Vega comes from npm, pinned in `tools/site/package-lock.json`, and its minified build is embedded in this notebook's output and in the site page:

# %%
vega_kib = len(explorer.vega_js().encode()) / 1024
spec_kib = len(explorer.spec_json(sample).encode()) / 1024
page_kib = len(explorer.html(sample).encode()) / 1024
print(
    f"Vega {explorer.VEGA_VERSION} (vega.min.js): {vega_kib:.0f} KiB; explorer specification: {spec_kib:.0f} KiB; "
    f"whole explorer output: {page_kib:.0f} KiB"
)
assert explorer.html(sample) == explorer.html(sample)  # nothing random, nothing dated

# %% [markdown] id="exercise"
# ## Exercises
#
# **Exercise 1 · Where the wrong row turns negative.** At the article's β = 1.5, for which offsets on the slider does the relabelled sample (third row) get a negative weight? Find them with the sliders, then from $m < -k\beta$.

# %% [markdown] id="solution-weight-negative-exactly" tags=["solution"]
# **Solution 1.** A weight $k + m/\beta$ is negative exactly when $k < -m/\beta$, so the class with the most negative margin of the third row turns negative first, at the largest offset. The cell prints the row's margins, that threshold, and the offsets on the slider below it.

# %% tags=["solution"]
wrong = rows[-1]
m_wrong = klloss.margin(torch.tensor(wrong["logits_t"])[None], torch.tensor([wrong["label"]]))[0]
print(f"{wrong['name']}: margins m = {[round(v, 3) for v in m_wrong.tolist()]}")
threshold = -m_wrong.min().item() / sample.beta
negative_offsets = [o for o in explorer.OFFSETS if (klloss.weight(m_wrong, sample.beta, o) < 0).any()]
print(f"k < {threshold:.3g}: offsets with a negative weight at beta = {sample.beta:g}: {negative_offsets}")
assert negative_offsets == [o for o in explorer.OFFSETS if o < threshold]

# %% [markdown] id="exercise-2-negative-loss"
# **Exercise 2 · A negative loss on a teacher that is right.** *(open-ended)* Move β below the value the first cell printed, at k = 8: the loss on the sample turns negative, though the teacher ranks the label first in both samples and every weight is positive. Does a negative loss mean the student has learnt the teacher better than perfectly? Compare, at one such β, the loss of the student on the sample, the loss of a student that copies the teacher ($q = p$), and the smallest loss any student can reach (`analysis.min_loss`). Then say what you would tell a colleague who logs this loss and sees it go below zero.

# %% [markdown] id="solution-2-negative-loss" tags=["solution"]
# **Solution 2.** No. A student that copies the teacher has every term $p_c(\log p_c - \log q_c) = 0$, so its loss is exactly 0, and yet the loss can go lower: when every weight is $\ge 0$ its minimum is $L_{\min} = \frac1N\sum_i \big(W_i\log W_i - \sum_c p_{ic} w_{ic}\log w_{ic}\big) \le 0$, reached at $q^*$ ([notebook 04](04-what-it-teaches.ipynb)), and it is below 0 whenever a row's weights are not all equal. A negative value says only that the student is closer to $q^*$ than the teacher itself is, measured by $\sum_i W_i\,\mathrm{KL}(q^*_i\|\cdot)$. For logging, the quantity with a floor at 0 is the loss minus $L_{\min}$, which is $\frac1N\sum_i W_i\,\mathrm{KL}(q^*_i\|q_i)$ ([notebook 04](04-what-it-teaches.ipynb)'s identity).

# %% tags=["solution"]
beta_below = beta_zero / 2
loss_student = klloss.klloss_v2(**{**args, "beta": beta_below}).item()
copy_args = {**args, "input": args["target"].clone(), "beta": beta_below}  # a student equal to the teacher
loss_copy = klloss.klloss_v2(**copy_args).item()
floor = analysis.min_loss(args["logits_t"], args["target"], args["label"], beta_below)
assert (klloss.trace(**{**args, "beta": beta_below}).weight > 0).all()  # every weight positive
assert floor < loss_student < 0 == loss_copy
print(
    f"beta = {beta_below:.4f}, k = {k:g}: the sample's student {loss_student:.5f}, "
    f"a copy of the teacher {loss_copy:.5f}, the smallest any student reaches {floor:.5f}"
)
