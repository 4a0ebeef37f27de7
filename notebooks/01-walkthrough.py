# %% [markdown] id="title"
# # 01 · klloss_v2, step by step
#
# *Every intermediate tensor of the loss on the article's sample batch, each with the check that proves it right.*
#
# **You will learn:** what each line of `klloss_v2` computes, on the article's own two-sample batch, and the check each intermediate must pass; what the margin scale β does, and why it is not a temperature; which student the loss favours, and why that is not "agree more with the teacher".
#
# **You need first:** Python and basic PyTorch (tensors, `softmax`, autograd); logarithms and probability distributions.
#
# Every symbol and term used here is defined in the [glossary at the end](#glossary).

# %% [markdown] id="loss-knowledge-distillation-small"
# **What the loss is.** In knowledge distillation a small *student* network learns from a large *teacher* by matching the teacher's class probabilities, usually through the Kullback–Leibler divergence
#
# $$\mathrm{KL}(p \,\|\, q) = \sum_c p_c \,(\log p_c - \log q_c), \qquad p = \mathrm{softmax}(z),\; q = \mathrm{softmax}(s).$$
#
# `klloss_v2` changes one thing: each class's term gets its own weight. The weight grows with how far the teacher ranks that class *below* the true label $y$ (the teacher's *margin* $m_c = z_y - z_c$), divided by a *margin scale* $\beta$ and lifted by a constant offset $k = 8$:
#
# $$w_c = \frac{m_c}{\beta} + k, \qquad L = \frac{1}{N} \sum_{i=1}^{N} \sum_{c=1}^{C} w_{ic}\, p_{ic} \,(\log p_{ic} - \log q_{ic}).$$
#
# $\beta$ only rescales the margins; unlike a temperature it leaves $p$ and $q$ as they are (step 5 checks it).
#
# **Why someone might want it.** The article gives no motivation; what follows is ours. The weight is $k$ at the label, larger on every class the teacher ranks below the label (the further below, the larger), and smaller on any class the teacher ranks above it. One might expect a larger weight to make the student match the teacher more closely on those classes. It does not: when every weight is $> 0$, the loss is smallest at a re-weighted copy of the teacher, $q^* = w \odot p / W$ with $W = \sum_c w_c p_c$, which gives **more** probability than the teacher to every class whose weight exceeds $W$ and, where the teacher ranks the label first, **less** to the label. The last section computes $q^*$ on the sample (exercise 2 derives it; [notebook 04](04-what-it-teaches.ipynb) studies it).
#
# **The article's worked example.** The article (the blog post "adkd" on svgfk.baihongyu.com, dated 2023-04-17) prints every intermediate tensor of a worked example. The inputs it echoes are right; every number it prints after them is wrong (counted below, from `course.errata.table()`). This notebook computes each one correctly, shows it as a table, and runs a check that it must pass. [Notebook 02](02-errata.ipynb) puts the article's numbers beside these.

# %% id="setup-code"
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import display

import course
import klloss

# one visible place for every source of randomness and every display setting
torch.manual_seed(0)
np.random.seed(0)  # noqa: NPY002 (seeds NumPy's global generator, in the one visible seeding cell)
pd.set_option("display.precision", 4)
course.i18n.translate_outputs()  # tables and figures in the reader's language, the Chinese kept for notebooks/zh/
torch.set_printoptions(precision=4)

# %% [markdown] id="sample-batch"
# ## The sample batch
#
# The article's batch has two samples and five classes, in float32 as in the article. The teacher's logits are passed twice: as `logits_t` (for the margin) and as `target` (for the soft target $p$). They are the same numbers.

# %% id="sample-batch-code"
sample = klloss.data.load_sample()
args = sample.tensors()  # float32, as in the article
classes = pd.Index([f"class {j}" for j in range(sample.input.shape[1])], name="class")
samples = pd.Index([f"sample {i}" for i in range(sample.input.shape[0])], name="sample")

inputs = pd.concat(
    {
        "teacher z (logits_t = target)": pd.DataFrame(sample.logits_t, index=samples, columns=classes),
        "student s (input)": pd.DataFrame(sample.input, index=samples, columns=classes),
    },
    axis=1,
)
display(inputs)
print("labels y:", sample.label.tolist(), "  beta:", sample.beta, "  offset k:", klloss.ARTICLE_OFFSET)
assert np.array_equal(sample.logits_t, sample.target)

# %% [markdown] id="klloss-trace-runs-loss"
# `klloss.trace` runs the loss once and keeps every intermediate, in the order the article prints them. `to_frames()` labels each as samples × classes.

# %%
tr = klloss.trace(**args)
frames = tr.to_frames()
N, C = tr.log_input.shape
print(tr.names())

# %% [markdown] id="step-1-log-softmax"
# ## Step 1 · log-softmax of the student, $\log q = \log\mathrm{softmax}(s)$
#
# $$\log q_c = s_c - \log \sum_j e^{s_j}.$$
#
# A log-probability is never positive, and the probabilities of each row sum to one: $\log\sum_c e^{\log q_c} = 0$.

# %% id="step-1-log-softmax-code"
display(frames["log_input"])
# log q <= 0  and  logsumexp_c(log q_c) = 0 on every row
assert (tr.log_input <= 0).all()
row_lse = torch.logsumexp(tr.log_input, dim=1)
assert torch.allclose(row_lse, torch.zeros(N), atol=1e-6)
print("largest |logsumexp| of a row: < 1e-6 (float32 round-off)")

# %% [markdown] id="step-2-log-softmax"
# ## Step 2 · log-softmax and softmax of the teacher, $\log p$ and $p$
#
# $$\log p_c = z_c - \log \sum_j e^{z_j}, \qquad p_c = e^{\log p_c}.$$
#
# The article names the softmax of `target` `target` again; we call it `target_prob`. Each $p_c$ lies in $[0, 1]$ and each row sums to one.

# %% id="step-2-log-softmax-code"
display(
    pd.concat({"log p (log_target)": frames["log_target"], "p (target_prob)": frames["target_prob"]}, axis=1)
)
# 0 <= p <= 1,  sum_c p_c = 1,  p = exp(log p)
assert (tr.target_prob >= 0).all() and (tr.target_prob <= 1).all()
assert torch.allclose(tr.target_prob.sum(1), torch.ones(N), atol=1e-6)
assert torch.allclose(tr.target_prob, F.softmax(args["target"], dim=1), atol=1e-7)
print("row sums of p:", [round(v, 6) for v in tr.target_prob.sum(1).tolist()])

# %% [markdown] id="step-3-per-class"
# ## Step 3 · the per-class KL terms, `output` $= p_c(\log p_c - \log q_c)$
#
# These are the summands of KL(p ‖ q). A single term can be negative (wherever the student gives a class *more* probability than the teacher), but each row sums to KL(p ‖ q) ≥ 0, which is what `torch.nn.functional.kl_div` computes.

# %% id="step-3-per-class-code"
display(frames["output"])
# sum_c p_c (log p_c - log q_c) = KL(p || q) >= 0, as F.kl_div computes it
kl_rows = F.kl_div(tr.log_input, tr.target_prob, reduction="none").sum(1)
assert torch.allclose(tr.output.sum(1), kl_rows, atol=1e-7)
assert (kl_rows >= 0).all() and (tr.output < 0).any()
print("KL(p || q) per sample:", [round(v, 4) for v in kl_rows.tolist()])

# %% [markdown] id="step-4-margin"
# ## Step 4 · the margin, $m_c = z_y - z_c$
#
# How far the teacher ranks class $c$ below the true label. It is zero at the label; it is negative only for classes the teacher ranks *above* the label, i.e. where the teacher is wrong. The article builds it one sample at a time; `klloss.margin` gathers the label's logit for the whole batch at once.

# %% id="step-4-margin-code"
display(frames["margin"])
rows = torch.arange(N)
teacher_right = tr.margin.new_tensor(sample.logits_t.argmax(1) == sample.label, dtype=torch.bool)
# m_y = 0, and m >= 0 on rows where argmax z = y
assert torch.all(tr.margin[rows, args["label"]] == 0)
assert torch.all(tr.margin[teacher_right] >= 0)
print(
    "teacher's top class:",
    sample.logits_t.argmax(1).tolist(),
    " labels:",
    sample.label.tolist(),
    " teacher right on every sample:",
    bool(teacher_right.all()),
)

# %% [markdown] id="step-5-weights"
# ## Step 5 · the weights, $w_c = m_c / \beta + k$
#
# At the label the margin is zero, so the weight there is exactly the offset $k$; every other class the teacher ranks below the label gets more.

# %% id="step-5-weights-code"
display(frames["weight"])
# w_y = k,  w = m / beta + k
assert torch.all(tr.weight[rows, args["label"]] == klloss.ARTICLE_OFFSET)
assert torch.allclose(tr.weight, tr.margin / sample.beta + klloss.ARTICLE_OFFSET)
print("weight range:", round(tr.weight.min().item(), 4), "to", round(tr.weight.max().item(), 4))

# %% [markdown] id="margin-scale-not-temperature"
# **β is a margin scale, not a temperature.** β enters the loss only through the weights: it divides the margins, so a larger β pulls every weight towards $k$. The teacher's distribution $p = \mathrm{softmax}(z)$ (and the student's $q$) are the same for every β. A *temperature* $T$, as in plain KD ([notebook 05](05-real-data.ipynb)), divides the logits *before* the softmax, $p_T = \mathrm{softmax}(z / T)$: a larger $T$ flattens $p$ itself, raising its entropy $-\sum_c p_c \log p_c$ towards $\log C$. The table runs the loss at three β and the softmax at three $T$.

# %% id="margin-scale-not-temperature-code"
betas, temperatures = [0.5, sample.beta, 10.0], [1.0, 2.0, 4.0]


def entropy(probs):
    # H(p) = -sum_c p_c log p_c, one value per sample
    return -(probs * probs.log()).sum(1)


rows_beta = {f"beta = {b:g}": klloss.trace(**{**args, "beta": b}) for b in betas}
p_T = {f"T = {T:g}": F.softmax(args["target"] / T, dim=1) for T in temperatures}  # p_T = softmax(z / T)
scale_vs_temperature = pd.DataFrame(
    [
        {
            "largest p in the batch": t.target_prob.max().item(),
            "entropy of p, sample 0": entropy(t.target_prob)[0].item(),
            "weights from": t.weight.min().item(),
            "weights to": t.weight.max().item(),
        }
        for t in rows_beta.values()
    ]
    + [
        {"largest p in the batch": q.max().item(), "entropy of p, sample 0": entropy(q)[0].item()}
        for q in p_T.values()
    ],
    index=[*rows_beta, *p_T],
).map(lambda v: "—" if pd.isna(v) else f"{v:.4f}")  # "—": a temperature has no weights
display(scale_vs_temperature)
# p does not depend on beta (bit for bit); the weights do
assert all(
    torch.equal(t.target_prob, tr.target_prob) and torch.equal(t.log_input, tr.log_input)
    for t in rows_beta.values()
)
assert not torch.equal(rows_beta["beta = 0.5"].weight, rows_beta["beta = 10"].weight)
# a temperature changes p: its entropy rises with T, towards log C
H = torch.stack([entropy(q) for q in p_T.values()])
assert torch.all(H[1:] > H[:-1]) and torch.all(math.log(C) > H)
print(
    "p identical for every beta:", True, "| entropy of p rises with T, below log C =", round(math.log(C), 4)
)

# %% [markdown] id="step-6-weighted-terms"
# ## Step 6 · the weighted terms, $w_c\, p_c (\log p_c - \log q_c)$, and the per-sample losses
#
# $$L_i = \sum_c w_{ic}\, p_{ic} (\log p_{ic} - \log q_{ic}).$$

# %% id="step-6-weighted-terms-code"
display(pd.concat({"weighted": frames["weighted"], "": frames["per_sample"]}, axis=1))
# weighted = w * output,  L_i = sum_c weighted_ic
assert torch.equal(tr.weighted, tr.weight * tr.output)
assert torch.allclose(tr.per_sample, tr.weighted.sum(1))

# %% [markdown] id="step-7-loss"
# ## Step 7 · the loss, $L = \frac{1}{N}\sum_i L_i$
#
# The article divides the sum over everything by the batch size (`reduction="batchmean"`), so the per-sample values sum to $N \times L$.

# %% id="step-7-loss-code"
print(f"L = {tr.loss.item():.6f}")
# sum_i L_i = N L
assert torch.allclose(tr.per_sample.sum(), N * tr.loss)
print(f"sum of per-sample losses = {tr.per_sample.sum().item():.6f} = N x L with N = {N}")


# %% [markdown] id="the-whole-loss"
# ## The whole loss, in eight lines
#
# Steps 1 to 7 fit in one short function, a line per step with its formula. The cell checks that it gives the library's `klloss.klloss_v2`, value and gradient, on the sample. The library's readable form, `klloss.reference`, has these same lines, plus what a training loop needs beyond the article (rows to leave out, classes the teacher gives no probability, and options of ours that [notebook 06](06-performance.ipynb) introduces); every faster form of the library is tested against it.


# %% id="eight-lines-code"
def klloss_in_eight_lines(logits_t, input, target, label, beta, offset=8.0):
    log_q = F.log_softmax(input, dim=1)  # step 1: log q = log softmax(s)
    log_p = F.log_softmax(target, dim=1)  # step 2: log p = log softmax(z)
    p = log_p.exp()  # p = e^(log p)
    output = p * (log_p - log_q)  # step 3: p_c (log p_c - log q_c)
    margin = logits_t.gather(1, label[:, None]) - logits_t  # step 4: m_c = z_y - z_c
    weight = margin / beta + offset  # step 5: w_c = m_c / beta + k
    per_sample = (weight * output).sum(1)  # step 6: L_i = sum_c w_c p_c (log p_c - log q_c)
    return per_sample.mean()  # step 7: L = (1/N) sum_i L_i


gaps_eight = {}
for dtype in (torch.float32, torch.float64):
    ours, library = (sample.tensors(dtype) for _ in range(2))
    ours["input"].requires_grad_(True)
    library["input"].requires_grad_(True)
    mine, theirs = klloss_in_eight_lines(**ours), klloss.klloss_v2(**library)
    mine.backward()
    theirs.backward()
    gaps_eight[dtype] = max(
        (mine - theirs).abs().item(), (ours["input"].grad - library["input"].grad).abs().max().item()
    )
print(
    f"eight lines: L = {klloss_in_eight_lines(**args).item():.6f}, klloss.klloss_v2: L = {tr.loss.item():.6f}"
)
# the same value and gradient as the library: float32 round-off, and float64 round-off
assert gaps_eight[torch.float32] < 1e-5 and gaps_eight[torch.float64] < 1e-12
print("largest difference, value or gradient: float32 < 1e-5, float64 < 1e-12")

# %% [markdown] id="four-implementations-one-number"
# ## Four implementations, one number
#
# `klloss_v2_published` follows the article's code line by line (its loop over samples, its undetached `target`); `klloss_v2_reference` is the library's readable form (the eight lines above, with what a training loop needs), behind the library's argument checks; `klloss_v2` is the form for training, which picks the fastest form that is correct for the call; `klloss.oracle` is a float64 NumPy implementation written from the formula alone. They agree, in float32 and float64.

# %% id="four-implementations-one-number-code"
oracle_loss = klloss.oracle.klloss_v2(sample.logits_t, sample.input, sample.target, sample.label, sample.beta)
agreement = pd.DataFrame(
    {
        dtype_name: {
            "published (article's algorithm)": klloss.klloss_v2_published(**sample.tensors(dtype)).item(),
            "klloss_v2_reference": klloss.klloss_v2_reference(**sample.tensors(dtype)).item(),
            "klloss_v2 (for training)": klloss.klloss_v2(**sample.tensors(dtype)).item(),
            "trace(...).loss": klloss.trace(**sample.tensors(dtype)).loss.item(),
            "oracle (NumPy float64)": oracle_loss,
        }
        for dtype_name, dtype in [("float32", torch.float32), ("float64", torch.float64)]
    }
)
display(agreement.map("{:.10f}".format))
# float32 keeps about 7 significant digits, and the loss is a sum of terms of both signs
# larger than itself: judge float32 on the size of those terms, sum |w p (log p - log q)| / N
term_size = tr.weighted.abs().sum().item() / N
print(f"size of the terms: {term_size:.4f}, {term_size / tr.loss.item():.0f} times the loss itself")
assert np.all(np.abs(agreement["float32"] - oracle_loss) <= 1e-6 * term_size)
assert np.all(np.abs(agreement["float64"] - oracle_loss) <= 1e-14 * term_size)
print("largest difference from the oracle: float32 < 1e-6 x the size of the terms, float64 < 1e-14 x it")

# %% [markdown] id="article-printed-counted"
# ## What the article printed, counted
#
# `course.errata.table()` compares every number the article prints with the oracle, to the printed precision ([notebook 02](02-errata.ipynb) goes through them one by one). The inputs it echoes are right; none of the numbers it computes from them is.

# %% id="article-printed-counted-code"
errata_table = course.errata.table()
steps_of = {key: step.group for key, step in klloss.data.load_article_printed().items()}
counted = (
    errata_table[["printed", "right"]]
    .groupby(errata_table.index.map(steps_of))
    .sum()
    .rename(index={"inputs": "echoed inputs", "steps": "computed intermediates and loss"})
)
counted.loc["all"] = counted.sum()
display(counted)
# every echoed input is right; no computed number is
assert counted.loc["echoed inputs", "printed"] > 0
assert counted.loc["echoed inputs", "right"] == counted.loc["echoed inputs", "printed"]
assert counted.loc["computed intermediates and loss", "right"] == 0
print(
    f"the article's loss: {float(klloss.data.load_article_printed()['loss'].values):.4f}, ours: {tr.loss.item():.4f}"
)

# %% [markdown] id="weights-terms-they-multiply"
# ## The weights and the terms they multiply, as pictures
#
# Left, the weights: the label's cell (outlined) sits at the offset $k$, the rest above it. Middle, the KL terms: blue where the student gives a class more probability than the teacher ($q_c > p_c$, a negative term). Right, their product, whose sum over both rows (divided by $N$) is the loss. The middle and right panels share one colour scale, symmetric around zero, so the weighting's effect is visible: the same signs, larger. Most of that enlargement is the offset: the teacher ranks the label first on both samples, so every weight is at least $k = 8$, and each weighted term is its KL term times $k$ times $w/k \ge 1$. The margins add at most a factor of the largest $w/k$ on the sample, printed above the figure.

# %% id="weights-terms-they-multiply-code"
q = tr.log_input.exp()
# a KL term p (log p - log q) is negative exactly where q > p; the weights are > 0, so the weighted term too
assert torch.equal(tr.output < 0, q > tr.target_prob) and torch.equal(tr.weighted < 0, tr.output < 0)

terms_span = max(frames["output"].abs().max().max(), frames["weighted"].abs().max().max())
fig, axes = plt.subplots(1, 3, figsize=(15, 3.4), constrained_layout=True)
weight_image = course.plotting.heatmap(
    axes[0], frames["weight"], r"weight $w = m/\beta + k$", fmt="{:.2f}", cmap="viridis", center=None
)
course.plotting.heatmap(
    axes[1],
    frames["output"],
    r"KL terms $p(\log p - \log q)$",
    fmt="{:.4f}",
    vmin=-terms_span,
    vmax=terms_span,
)
terms_image = course.plotting.heatmap(
    axes[2],
    frames["weighted"],
    r"weighted terms $w\,p(\log p - \log q)$",
    fmt="{:.4f}",
    vmin=-terms_span,
    vmax=terms_span,
)
fig.colorbar(weight_image, ax=axes[0], label="weight w")
fig.colorbar(terms_image, ax=axes[1:], label="term (one scale for both panels)")
for ax in axes:
    for i, y in enumerate(sample.label):  # outline the label's cell
        ax.add_patch(plt.Rectangle((y - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
fig.legend(
    handles=[
        plt.Rectangle(
            (0, 0),
            1,
            1,
            fill=False,
            edgecolor="black",
            linewidth=2,
            label="outline: the label's cell (margin 0, weight k)",
        ),
        plt.Rectangle(
            (0, 0),
            1,
            1,
            color=plt.get_cmap("RdBu_r")(0.15),
            label="blue: negative term, the student gives the class more than the teacher ($q > p$)",
        ),
        plt.Rectangle((0, 0), 1, 1, color=plt.get_cmap("RdBu_r")(0.85), label="red: positive term ($q < p$)"),
    ],
    loc="outside lower center",
    ncols=3,
    fontsize=9,
    frameon=False,
)
print("saved", course.plotting.save(fig, "01-weights-and-terms"))
plt.show()
# weighted term = k x (w / k) x KL term, with 1 <= w / k: the offset k gives most of the enlargement
w_over_k = tr.weight / klloss.ARTICLE_OFFSET
assert torch.all(w_over_k >= 1) and torch.equal(tr.weighted, tr.weight * tr.output)
assert w_over_k.max() < klloss.ARTICLE_OFFSET  # the margins' factor is smaller than the offset's
print(
    f"weighted term / KL term = w = k x w/k: the offset gives x{klloss.ARTICLE_OFFSET:g}, "
    f"the margins at most x{w_over_k.max().item():.4f} more (the largest w/k on the sample)"
)

# %% [markdown] id="weighting-asks-student"
# ## What the weighting asks of the student
#
# The motivation at the top says where the loss is smallest: at $q^* = w \odot p / W$ (a minimum, because every weight on the sample is $> 0$; with a weight of 0 the loss only approaches its infimum as $q_c \to 0$, and with a negative weight it has no minimum, [notebook 04](04-what-it-teaches.ipynb)), with $q^*_c / p_c = w_c / W$. `course.analysis.stationary_student` computes $q^*$; here it is beside the teacher, in float64.

# %% id="weighting-asks-student-code"
args64 = sample.tensors(torch.float64)
q_star = course.analysis.stationary_student(
    args64["logits_t"], args64["target"], args64["label"], sample.beta
)
t64 = klloss.trace(**args64)
p64, w64 = t64.target_prob, t64.weight
W = (w64 * p64).sum(1, keepdim=True)  # W = sum_c w_c p_c
assert (w64 > 0).all()  # every weight > 0: q* is a minimum
display(
    pd.concat(
        {
            "teacher p": pd.DataFrame(p64.numpy(), index=samples, columns=classes),
            "optimum q*": pd.DataFrame(q_star.numpy(), index=samples, columns=classes),
            "w / W": pd.DataFrame((w64 / W).numpy(), index=samples, columns=classes),
        }
    ).round(4)
)
# q*_c / p_c = w_c / W; more mass than the teacher exactly where w_c > W; less on the label (the teacher is right)
assert torch.allclose(q_star / p64, w64 / W, rtol=1e-12)
assert torch.equal(q_star > p64, w64 > W)
assert torch.all(q_star[rows, args64["label"]] < p64[rows, args64["label"]])
i, c = divmod(int(w64.argmax()), C)  # the class with the largest weight in the batch
print(f"largest weight: sample {i}, class {c}, w = {w64[i, c].item():.4f} > W = {W[i, 0].item():.4f}")
print(f"  teacher p = {p64[i, c].item():.4f}, optimum q* = {q_star[i, c].item():.4f}: more than the teacher")
assert q_star[i, c] > p64[i, c]

# %% [markdown] id="exercises"
# ## Exercises
#
# Each exercise has a worked solution below it, folded: try it first. The solutions run, and check themselves.
#
# **Exercise 1 · a weight by hand.** A row the sample does not have: teacher logits $z = (2.5, 0.5, 3, -1)$, label class 2, β = 1.5 (the article's), k = 8. Compute by hand (a calculator for the exponentials) the margin and the weight of class 1, and $W = \sum_c w_c p_c$. Then say whether the optimum $q^*$ puts more or less probability on class 1 than the teacher does, using only $w$ and $W$.

# %% [markdown] id="solution-1-since-optimum" tags=["solution"]
# **Solution 1.** $m_1 = z_2 - z_1$ and $w_1 = m_1 / \beta + k$; the other weights the same way ($w_2 = k$ at the label). Since $q^*_c / p_c = w_c / W$, the optimum puts more on class 1 than the teacher exactly when $w_1 > W$. The cell prints each number and checks it against the library.

# %% id="solution-1-since-optimum-code" tags=["solution"]
row = torch.tensor([[2.5, 0.5, 3.0, -1.0]], dtype=torch.float64)  # teacher logits z
row_label, c, beta_1 = torch.tensor([2]), 1, 1.5
m_1 = row[0, 2].item() - row[0, c].item()  # m = z_y - z_c
w_1 = m_1 / beta_1 + klloss.ARTICLE_OFFSET  # w = m / beta + k
print(f"m = {row[0, 2].item():g} - {row[0, c].item():g} = {m_1:g};  w = {m_1:g} / {beta_1:g} + 8 = {w_1:.4f}")
w_row = klloss.weight(klloss.margin(row, row_label), beta_1)
p_row = row.softmax(1)
W_row = (w_row * p_row).sum().item()  # W = sum_c w_c p_c
assert math.isclose(w_1, w_row[0, c].item(), rel_tol=1e-12)
print(f"p = {p_row.numpy().round(4).tolist()[0]}; w = {w_row.numpy().round(4).tolist()[0]}; W = {W_row:.4f}")
more = w_1 > W_row
print(f"w_1 {'>' if more else '<'} W, so q* puts {'more' if more else 'less'} on class {c} than the teacher")
q_row = course.analysis.stationary_student(row, row, row_label, beta_1)
assert more == bool(q_row[0, c] > p_row[0, c])

# %% [markdown] id="exercise-2-gradient-closed"
# **Exercise 2 · the gradient in closed form.** Derive $\partial L_i / \partial s_j$ for one sample, using $\log q_c = s_c - \operatorname{lse}(s)$ and the Kronecker delta $\delta_{jc}$. Check your formula against autograd on the sample, and show that it vanishes at the $q^*$ of the section above and at no other $q$.

# %% [markdown] id="solution-2-only-depends" tags=["solution"]
# **Solution 2.** Only $\log q$ depends on $s$, and $\partial \log q_c / \partial s_j = \delta_{jc} - q_j$. So
#
# $$\frac{\partial L_i}{\partial s_j} = -\sum_c w_c\, p_c\, (\delta_{jc} - q_j) = q_j \sum_c w_c\, p_c - w_j\, p_j = q_j\, W - w_j\, p_j ,$$
#
# and the batch mean divides it by $N$. It is zero for every $j$ exactly when $q_j = w_j p_j / W$: at $q^*$, and only there. (Each row of the gradient sums to $W - W = 0$.)

# %% id="solution-2-only-depends-code" tags=["solution"]
student = args64["input"].clone().requires_grad_(True)
klloss.klloss_v2(**{**args64, "input": student}).backward()
q64 = t64.log_input.exp()
closed_form = (q64 * W - w64 * p64) / N  # dL/ds_j = (q_j W - w_j p_j) / N
gap = (student.grad - closed_form).abs().max().item()
print("largest |autograd - closed form|:", "< 1e-12" if gap < 1e-12 else f"{gap:.1e}")
assert gap < 1e-12
assert torch.allclose(closed_form, course.analysis.grad_student(**args64), rtol=0, atol=1e-15)
assert closed_form.sum(1).abs().max() < 1e-15  # each row sums to W - W = 0
# at q = q* the gradient vanishes
at_q_star = (q_star * W - w64 * p64).abs().max().item()
print("largest |gradient| at q = q*:", "< 1e-12" if at_q_star < 1e-12 else f"{at_q_star:.1e}")
assert at_q_star < 1e-12

# %% [markdown] id="exercise-3-add-temperature"
# **Exercise 3 · add a temperature.** *(harder)* Put a temperature $T$ into both softmaxes and keep the weights as they are:
#
# $$L_T = \frac1N \sum_i \sum_c w_{ic}\, p_{T,ic} \left(\log p_{T,ic} - \log q_{T,ic}\right), \qquad p_T = \mathrm{softmax}(z / T),\; q_T = \mathrm{softmax}(s / T).$$
#
# In code this is `klloss.klloss_v2(z, s / T, z / T, y, beta)`: the margin comes from `logits_t`, the soft target from `target`. Before computing anything, predict: (a) which intermediates of `klloss.trace` change with $T$; (b) how $L_T$ behaves as $T$ grows. Plain KD multiplies $\mathrm{KL}(p_T \| q_T)$ by $T^2$ to keep its size comparable across temperatures: $T^2\,\mathrm{KL}(p_T \| q_T)$ tends to a finite limit as $T \to \infty$. Does $T^2 L_T$? Then check.

# %% [markdown] id="solution-3-margins-weights" tags=["solution"]
# **Solution 3.** (a) The margins and weights are computed from `logits_t`, so they do not change; $p$, $q$, the KL terms and the loss do.
#
# (b) Write $d = z - s$ and $\bar d$ for its mean over classes. For large $T$, $\log p_{T,c} - \log q_{T,c} = (d_c - \bar d)/T + O(1/T^2)$ and $p_{T,c} = 1/C + O(1/T)$, so
#
# $$L_T = \frac{1}{C\,T} \sum_c w_c\,(d_c - \bar d) + O(1/T^2).$$
#
# With equal weights the first term vanishes (because $\sum_c (d_c - \bar d) = 0$); that is plain KD, where the next order gives $T^2\,\mathrm{KL}(p_T \| q_T) \to \frac{1}{2C}\sum_c (d_c - \bar d)^2$. With the margin weights, $w_c - \bar w = -(z_c - \bar z)/\beta$, and the first term is in general not zero:
#
# $$T\,L_T \to -\frac{1}{C\,\beta} \sum_c (z_c - \bar z)(d_c - \bar d) \quad \text{(averaged over the batch).}$$
#
# So, unless that limit is zero, $L_T$ decays like $1/T$, not $1/T^2$, and $T^2 L_T$ grows without bound in size, with the sign of the limit, which can be negative (it is on the sample). Hinton's $T^2$ factor does not carry over.

# %% id="solution-3-margins-weights-code" tags=["solution"]
z64, s64, y64 = args64["logits_t"], args64["input"], args64["label"]
# (a) weights and margins do not depend on T; p does
hot = klloss.trace(z64, s64 / 4, z64 / 4, y64, sample.beta)
assert torch.equal(hot.weight, t64.weight) and torch.equal(hot.margin, t64.margin)
assert not torch.allclose(hot.target_prob, t64.target_prob)
# (b) the predicted limits: -(1/(C beta)) sum_c (z_c - mean z)(d_c - mean d), and (1/(2C)) sum_c (d_c - mean d)^2
d = z64 - s64
d_c, z_c = d - d.mean(1, keepdim=True), z64 - z64.mean(1, keepdim=True)
limit_L = (-(z_c * d_c).sum(1) / (C * sample.beta)).mean().item()
limit_KD = ((d_c**2).sum(1) / (2 * C)).mean().item()
temperature_axis = [1.0, 10.0, 100.0, 1000.0, 10000.0]
rows_T = []
for T in temperature_axis:
    L_T = klloss.klloss_v2(z64, s64 / T, z64 / T, y64, sample.beta).item()
    kl_T = F.kl_div(
        F.log_softmax(s64 / T, 1), F.log_softmax(z64 / T, 1), log_target=True, reduction="batchmean"
    ).item()  # KL(p_T || q_T), batch mean
    rows_T.append({"T": T, "L_T": L_T, "T L_T": T * L_T, "T^2 L_T": T**2 * L_T, "T^2 KL": T**2 * kl_T})
by_T = pd.DataFrame(rows_T).set_index("T")
display(by_T.map("{:.4g}".format))
print(f"predicted limits: T L_T -> {limit_L:.4f},  T^2 KL -> {limit_KD:.4f}")
gaps = (by_T["T L_T"] - limit_L).abs().iloc[1:]
assert limit_L < 0 and np.all(np.diff(gaps) < 0) and gaps.iloc[-1] < 1e-3 * abs(limit_L)
assert abs(by_T["T^2 KL"].iloc[-1] - limit_KD) < 1e-3 * limit_KD
assert np.all(np.diff(by_T["T^2 L_T"].iloc[1:]) < 0)  # T^2 L_T keeps falling: no finite limit

# %% [markdown] id="exercise-4-own-rows"
# **Exercise 4 · Rows of your own.** *(open-ended)* Make up two rows of teacher logits over five classes, both with the label ranked first: one where the teacher is sure (the label leads every class by 5 or more) and one where it hesitates (one other class within 0.5 of the label). Before computing, predict for each: which classes $q^*$ raises above the teacher's $p$, whether it lowers the label, and which row's $q^*$ moves further from $p$. Then compute the weights, $W$ and $q^*$ (`analysis.stationary_student`), and measure how far $q^*$ moves from $p$ by the total variation $\frac12\sum_c |q^*_c - p_c|$. Last, vary β from 0.1 to 100: how does that distance change, and why must it vanish as β grows?

# %% [markdown] id="solution-4-own-rows" tags=["solution"]
# **Solution 4.** With the label first every margin is $\ge 0$, so the label has the smallest weight $k$ and $q^*_y = k\,p_y/W \le p_y$: the label is lowered on both rows. The classes raised are those with $m_c > \sum_j p_j m_j$, the ones further below the label than the teacher's average margin. On the sure row the teacher puts almost all its mass on the label, so there is little for the weights to move: $q^*$ stays close to $p$. On the hesitant row the close class carries real mass but a small margin, while the far classes carry large margins; $q^*$ moves more mass. As β grows every weight tends to $k$, so $W \to k$, $q^* \to p$ and the distance to 0; the cell checks that it falls at every step of the grid below.

# %% id="solution-4-own-rows-code" tags=["solution"]
own = torch.tensor([[9.0, 3.0, 2.0, 1.0, 0.0], [4.0, 3.6, 1.0, 0.0, -2.0]], dtype=torch.float64)
own_label = torch.tensor([0, 0])
own_p = own.softmax(1)
betas_grid = [0.1, 0.3, 1.0, sample.beta, 3.0, 10.0, 30.0, 100.0]
distance = {}
for b in betas_grid:
    q_own = course.analysis.stationary_student(own, own, own_label, b)
    distance[b] = (0.5 * (q_own - own_p).abs().sum(1)).tolist()  # total variation, per row
    assert torch.all(q_own[:, 0] <= own_p[:, 0])  # the label is lowered on both rows
w_own = klloss.weight(klloss.margin(own, own_label), sample.beta, klloss.ARTICLE_OFFSET)
raised = course.analysis.stationary_student(own, own, own_label, sample.beta) > own_p
mean_margin = (own_p * klloss.margin(own, own_label)).sum(1, keepdim=True)
# raised exactly where m_c > mean margin
assert torch.equal(raised, klloss.margin(own, own_label) > mean_margin)
print("weights at the article's beta:\n", w_own.numpy().round(3))
print("classes q* raises above p:\n", raised.numpy())
print("total variation of q* from p, (sure row, hesitant row), by beta:")
for b, (sure, hesitant) in distance.items():
    print(f"  beta = {b:>6g}: {sure:.2e}  {hesitant:.2e}")
assert all(hesitant > sure for sure, hesitant in distance.values())
for row in (0, 1):
    by_beta = [distance[b][row] for b in betas_grid]
    assert np.all(np.diff(by_beta) < 0)  # falls as beta grows

# %% [markdown] id="names-symbols"
# <a id="glossary"></a>
# ## Names and symbols
#
# One glossary, shared by the code (`course.glossary`), every notebook and the README: first the symbols, then the terms the notebooks use (log-sum-exp, the Kronecker delta δ, the elementwise product ⊙, convexity, Jensen's inequality).

# %%
course.glossary.markdown()
