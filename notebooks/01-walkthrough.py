# %% [markdown]
# # 01 · klloss_v2, step by step
#
# *Every intermediate tensor of the loss on the article's sample batch, each with the check that proves it right.*
#
# **What the loss is.** In knowledge distillation a small *student* network learns from a large *teacher* by matching the teacher's class probabilities, usually through the Kullback–Leibler divergence
#
# $$\mathrm{KL}(p \,\|\, q) = \sum_c p_c \,(\log p_c - \log q_c), \qquad p = \mathrm{softmax}(z),\; q = \mathrm{softmax}(s).$$
#
# `klloss_v2` changes one thing: each class's term gets its own weight. The weight grows with how far the teacher ranks that class *below* the true label $y$ (the teacher's *margin* $m_c = z_y - z_c$), scaled by a temperature $\beta$ and lifted by a constant offset $k = 8$:
#
# $$w_c = \frac{m_c}{\beta} + k, \qquad L = \frac{1}{N} \sum_{i=1}^{N} \sum_{c=1}^{C} w_{ic}\, p_{ic} \,(\log p_{ic} - \log q_{ic}).$$
#
# **Why someone would want it.** Classes the teacher confidently rejects get a larger weight, so the student is pushed harder to agree with the teacher *there*; classes the teacher finds nearly as likely as the label (small margin) are weighted less. With $\beta \to \infty$ every weight becomes $k$ and the loss is plain KL times $k$. Notebooks 03 and 04 examine what this actually does.
#
# The article that publishes the loss prints every intermediate tensor of a worked example, and every printed number is wrong. This notebook computes each one correctly, shows it as a table, and runs a check that it must pass. Notebook 02 puts the article's numbers beside these.

# %% [markdown]
# ## Names and symbols
#
# One glossary, shared by the code (`klloss.glossary`), every notebook and the README.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

import klloss

# one visible place for every source of randomness and every display setting
torch.manual_seed(0)
np.random.seed(0)
pd.set_option("display.precision", 4)
torch.set_printoptions(precision=4)

Markdown(klloss.glossary.as_markdown())

# %% [markdown]
# ## The sample batch
#
# The article's batch has two samples and five classes, in float32 as in the article. The teacher's logits are passed twice: as `logits_t` (for the margin) and as `target` (for the soft target $p$). They are the same numbers.

# %%
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

# %% [markdown]
# `klloss.trace` runs the loss once and keeps every intermediate, in the order the article prints them. `to_frames()` labels each as samples × classes.

# %%
tr = klloss.trace(**args)
frames = tr.to_frames()
N, C = tr.log_input.shape
print(tr.names())

# %% [markdown]
# ## Step 1 · log-softmax of the student, $\log q = \log\mathrm{softmax}(s)$
#
# $$\log q_c = s_c - \log \sum_j e^{s_j}.$$
#
# A log-probability is never positive, and the probabilities of each row sum to one: $\log\sum_c e^{\log q_c} = 0$.

# %%
display(frames["log_input"])
# log q <= 0  and  logsumexp_c(log q_c) = 0 on every row
assert (tr.log_input <= 0).all()
row_lse = torch.logsumexp(tr.log_input, dim=1)
assert torch.allclose(row_lse, torch.zeros(N), atol=1e-6)
print("largest |logsumexp| of a row:", f"{row_lse.abs().max().item():.1e}")

# %% [markdown]
# ## Step 2 · log-softmax and softmax of the teacher, $\log p$ and $p$
#
# $$\log p_c = z_c - \log \sum_j e^{z_j}, \qquad p_c = e^{\log p_c}.$$
#
# The article names the softmax of `target` `target` again; we call it `target_prob`. Each $p_c$ lies in $[0, 1]$ and each row sums to one.

# %%
display(pd.concat({"log p (log_target)": frames["log_target"], "p (target_prob)": frames["target_prob"]}, axis=1))
# 0 <= p <= 1,  sum_c p_c = 1,  p = exp(log p)
assert (tr.target_prob >= 0).all() and (tr.target_prob <= 1).all()
assert torch.allclose(tr.target_prob.sum(1), torch.ones(N), atol=1e-6)
assert torch.allclose(tr.target_prob, F.softmax(args["target"], dim=1), atol=1e-7)
print("row sums of p:", [round(v, 6) for v in tr.target_prob.sum(1).tolist()])

# %% [markdown]
# ## Step 3 · the per-class KL terms, `output` $= p_c(\log p_c - \log q_c)$
#
# These are the summands of KL(p ‖ q). A single term can be negative (wherever the student gives a class *more* probability than the teacher), but each row sums to KL(p ‖ q) ≥ 0, which is what `torch.nn.functional.kl_div` computes.

# %%
display(frames["output"])
# sum_c p_c (log p_c - log q_c) = KL(p || q) >= 0, as F.kl_div computes it
kl_rows = F.kl_div(tr.log_input, tr.target_prob, reduction="none").sum(1)
assert torch.allclose(tr.output.sum(1), kl_rows, atol=1e-7)
assert (kl_rows >= 0).all() and (tr.output < 0).any()
print("KL(p || q) per sample:", [round(v, 4) for v in kl_rows.tolist()])

# %% [markdown]
# ## Step 4 · the margin, $m_c = z_y - z_c$
#
# How far the teacher ranks class $c$ below the true label. It is zero at the label; it is negative only for classes the teacher ranks *above* the label, i.e. where the teacher is wrong. The article builds it one sample at a time; `klloss.margin` gathers the label's logit for the whole batch at once.

# %%
display(frames["margin"])
rows = torch.arange(N)
teacher_right = tr.margin.new_tensor(sample.logits_t.argmax(1) == sample.label, dtype=torch.bool)
# m_y = 0, and m >= 0 on rows where argmax z = y
assert torch.all(tr.margin[rows, args["label"]] == 0)
assert torch.all(tr.margin[teacher_right] >= 0)
print("teacher's top class:", sample.logits_t.argmax(1).tolist(), " labels:", sample.label.tolist(),
      " teacher right on every sample:", bool(teacher_right.all()))

# %% [markdown]
# ## Step 5 · the weights, $w_c = m_c / \beta + k$
#
# At the label the margin is zero, so the weight there is exactly the offset $k$; every other class the teacher ranks below the label gets more.

# %%
display(frames["weight"])
# w_y = k,  w = m / beta + k
assert torch.all(tr.weight[rows, args["label"]] == klloss.ARTICLE_OFFSET)
assert torch.allclose(tr.weight, tr.margin / sample.beta + klloss.ARTICLE_OFFSET)
print("weight range:", round(tr.weight.min().item(), 4), "to", round(tr.weight.max().item(), 4))

# %% [markdown]
# ## Step 6 · the weighted terms, $w_c\, p_c (\log p_c - \log q_c)$, and the per-sample losses
#
# $$L_i = \sum_c w_{ic}\, p_{ic} (\log p_{ic} - \log q_{ic}).$$

# %%
display(pd.concat({"weighted": frames["weighted"], "": frames["per_sample"]}, axis=1))
# weighted = w * output,  L_i = sum_c weighted_ic
assert torch.equal(tr.weighted, tr.weight * tr.output)
assert torch.allclose(tr.per_sample, tr.weighted.sum(1))

# %% [markdown]
# ## Step 7 · the loss, $L = \frac{1}{N}\sum_i L_i$
#
# The article divides the sum over everything by the batch size (`reduction="batchmean"`), so the per-sample values sum to $N \times L$.

# %%
print(f"L = {tr.loss.item():.6f}")
# sum_i L_i = N L
assert torch.allclose(tr.per_sample.sum(), N * tr.loss)
print(f"sum of per-sample losses = {tr.per_sample.sum().item():.6f} = N x L with N = {N}")

# %% [markdown]
# ## Three implementations, one number
#
# `klloss_v2_published` follows the article's code line by line (its loop, its host copy, its undetached `target`); `klloss_v2` is the vectorized, checked form; `klloss.oracle` is a float64 NumPy implementation written from the formula alone. They agree, in float32 and float64.

# %%
oracle_loss = klloss.oracle.klloss_v2(sample.logits_t, sample.input, sample.target, sample.label, sample.beta)
agreement = pd.DataFrame(
    {
        dtype_name: {
            "published (article's algorithm)": klloss.klloss_v2_published(**sample.tensors(dtype)).item(),
            "klloss_v2 (vectorized)": klloss.klloss_v2(**sample.tensors(dtype)).item(),
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
print("largest difference from the oracle, float32:",
      f"{(agreement['float32'] - oracle_loss).abs().max():.1e},",
      "float64:", f"{(agreement['float64'] - oracle_loss).abs().max():.1e}")

# %% [markdown]
# ## The weights and the terms they multiply, as pictures
#
# Left, the weights: the label's cell sits at the offset $k$, the rest above it. Middle, the KL terms: blue where the student gives a class more probability than the teacher. Right, their product, whose sum over both rows (divided by $N$) is the loss.

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 2.8), constrained_layout=True)
klloss.plotting.heatmap(axes[0], frames["weight"], r"weight $w = m/\beta + k$", fmt="{:.2f}",
                        cmap="viridis", center=None)
klloss.plotting.heatmap(axes[1], frames["output"], r"KL terms $p(\log p - \log q)$", fmt="{:.4f}")
klloss.plotting.heatmap(axes[2], frames["weighted"], r"weighted terms $w\,p(\log p - \log q)$", fmt="{:.4f}")
for ax in axes:
    for i, y in enumerate(sample.label):  # outline the label's cell
        ax.add_patch(plt.Rectangle((y - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
print("saved", klloss.plotting.save(fig, "01-weights-and-terms"))
plt.show()
