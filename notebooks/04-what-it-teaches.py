# %% [markdown]
# # 04 · What the loss actually teaches a student
#
# *The gradient in closed form, the student the loss really pulls towards, when the loss goes negative or unbounded, and the published code's teacher-gradient and label quirks.*
#
# Plain KD pulls the student's distribution $q$ towards the teacher's $p$: KL(p ‖ q) is zero exactly at $q = p$. Does `klloss_v2` do the same? Each claim below is settled by code that runs, with `klloss.analysis` (tested against autograd and numerical optimisation in `tests/test_analysis.py`).

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display
from torch import nn

import klloss
from klloss import analysis

torch.manual_seed(0)
np.random.seed(0)
pd.set_option("display.precision", 4)

sample = klloss.data.load_sample()
args = sample.tensors(torch.float64)
z, s, y, beta, k = args["target"], args["input"], args["label"], args["beta"], klloss.ARTICLE_OFFSET
classes = [f"class {j}" for j in range(z.shape[1])]

# %% [markdown]
# ## 1 · The gradient in closed form
#
# For one sample, $L = \sum_c w_c p_c\log p_c - \sum_c w_c p_c \log q_c$, and only the second sum depends on the student. With $\partial \log q_c / \partial s_j = \delta_{cj} - q_j$ and $W = \sum_c w_c p_c$:
#
# $$\frac{\partial L}{\partial s_j} = -\sum_c w_c p_c(\delta_{cj} - q_j) = q_j\,W - w_j\,p_j .$$
#
# (The batch mean divides by $N$.) Compare with autograd on the sample:

# %%
student = s.clone().requires_grad_(True)
(auto,) = torch.autograd.grad(klloss.klloss_v2(**{**args, "input": student}), student)
closed = analysis.grad_student(**args)
display(pd.concat({"autograd": pd.DataFrame(auto.numpy(), columns=classes),
                   "closed form": pd.DataFrame(closed.numpy(), columns=classes)}, axis=1))
torch.testing.assert_close(closed, auto, rtol=1e-12, atol=1e-15)
print("closed form equals autograd to 1e-12:", torch.allclose(closed, auto, rtol=1e-12, atol=1e-15))

# %% [markdown]
# ## 2 · At $q = p$ the gradient is not zero
#
# Put $q = p$ in the formula: $\partial L/\partial s_j = p_j(W - w_j)$. It vanishes only if every class with $p_j > 0$ has the same weight, i.e. when all margins are equal, which they are not. So a student that already matches the teacher is pushed *away* from it: **unlike plain KL, this loss does not pull the student towards the teacher.**

# %%
at_teacher = analysis.grad_student(**{**args, "input": z})
p = torch.softmax(z, 1)
w = klloss.trace(**args).weight
big_w = (w * p).sum(1, keepdim=True)
torch.testing.assert_close(at_teacher, p * (big_w - w) / len(y))
display(pd.DataFrame(at_teacher.numpy(), columns=classes))
print("largest |gradient| at q = p:", f"{at_teacher.abs().max().item():.4f}",
      " (plain KL's gradient there is exactly 0)")
assert at_teacher.abs().max() > 1e-3

# %% [markdown]
# ## 3 · Where it pulls instead: $q^* = w \odot p / W$
#
# When every weight is $\ge 0$, $L = \text{const} - \sum_c w_c p_c s_c + W \log\sum_j e^{s_j}$ is a non-negative combination of linear functions and log-sum-exp, hence **convex** in the student logits. The gradient vanishes where $q_j W = w_j p_j$, that is at
#
# $$q^*_j = \frac{w_j\, p_j}{\sum_c w_c p_c},$$
#
# the teacher's distribution re-weighted by $w$. Gradient descent on free student logits, started from zero, converges to it:

# %%
q_star = analysis.stationary_student(args["logits_t"], z, y, beta)
run = analysis.descend(args["logits_t"], z, y, beta, steps=2000, lr=0.5)
losses, q_final = run.losses, run.trajectory[-1]
torch.testing.assert_close(q_final, q_star, atol=1e-6, rtol=0)
assert np.all(np.diff(losses.numpy()) <= 1e-12)  # convex problem, small steps: monotone descent
# q - q* is zero up to round-off, whose size depends on the CPU: print the bound, not the value
assert (q_final - q_star).abs().max() < 1e-12
print(f"after {len(losses) - 1} steps: largest |q - q*| < 1e-12,"
      f" loss {losses[-1].item():.6f} vs the minimum {analysis.min_loss(args['logits_t'], z, y, beta).item():.6f}")

# %%
# the student's distribution along the way, over the first 300 steps
trajectory = run.trajectory[:301]  # (steps, N, C)

fig, axes = plt.subplots(2, 2, figsize=(13, 6.5), constrained_layout=True)
for i in range(len(y)):
    ax = axes[0, i]
    for j in range(z.shape[1]):
        line, = ax.plot(trajectory[:, i, j], label=classes[j] + (" (label)" if j == y[i] else ""))
        ax.axhline(q_star[i, j], color=line.get_color(), linestyle="--", linewidth=0.8)
        ax.axhline(p[i, j], color=line.get_color(), linestyle=":", linewidth=0.8)
    ax.set(title=f"sample {i}: student q during descent (dashed q*, dotted p)", xlabel="step (symmetric log scale)",
           ylabel="q", xscale="symlog", xlim=(0, len(trajectory) - 1))
    ax.legend(fontsize=7)
    ax = axes[1, i]
    width = 0.38
    pos = np.arange(z.shape[1])
    ax.bar(pos - width / 2, p[i], width, label="teacher p", color="grey")
    ax.bar(pos + width / 2, q_star[i], width, label="optimum q* = w p / W", color="crimson")
    ax.set_xticks(pos, [c + ("\n(label)" if j == y[i] else "") for j, c in enumerate(classes)], fontsize=8)
    ax.set(title=f"sample {i}: what the loss teaches", ylabel="probability")
    ax.legend(fontsize=8)
print("saved", klloss.plotting.save(fig, "04-student-descent"))
plt.show()

# %% [markdown]
# ## 4 · Consequence: less confidence on the label than the teacher
#
# Where the teacher is right, every margin is $\ge 0$, so every weight is $\ge w_y = k$ and $W \ge k$. Then $q^*_y = k\,p_y/W \le p_y$: **the optimal student puts less mass on the true label than the teacher does**, strictly unless the teacher puts all its mass on the label. On the sample:

# %%
rows = torch.arange(len(y))
confidence = pd.DataFrame({"teacher p_y": p[rows, y].numpy(), "optimum q*_y": q_star[rows, y].numpy()},
                          index=[f"sample {i}" for i in range(len(y))])
confidence["q*_y / p_y"] = confidence["optimum q*_y"] / confidence["teacher p_y"]
display(confidence)
assert (q_star[rows, y] < p[rows, y]).all()

# %% [markdown]
# How much depends on β: with small β the margins dominate the weights and the optimum moves far from the teacher; as β → ∞ all weights equal $k$ and $q^* \to p$.

# %%
beta_axis = np.logspace(-2, 3, 60)
ratios = np.stack([
    (analysis.stationary_student(args["logits_t"], z, y, float(b))[rows, y] / p[rows, y]).numpy()
    for b in beta_axis
])
fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
for i in range(len(y)):
    ax.plot(beta_axis, ratios[:, i], label=f"sample {i}")
ax.axhline(1, color="black", linestyle="--", linewidth=0.8, label="q*_y = p_y (plain KL)")
ax.axvline(beta, color="black", linestyle=":", linewidth=0.8, label=f"article's β = {beta:g}")
ax.set(xscale="log", xlabel="β", ylabel="q*_y / p_y", ylim=(0, 1.05),
       title="the optimal student's confidence on the label, relative to the teacher's")
ax.legend(fontsize=8)
print("saved", klloss.plotting.save(fig, "04-label-confidence-vs-beta"))
plt.show()
assert np.all(ratios < 1) and np.all(np.diff(ratios, axis=0) > 0)  # always below 1, rising with beta
print("q*_y / p_y at the smallest and largest beta:", ratios[0].round(4).tolist(), ratios[-1].round(4).tolist())

# %% [markdown]
# ## 5 · The loss can be negative, and with a negative weight it has no lower bound
#
# **All weights positive.** At $q^*$ the loss reaches its minimum
#
# $$L_{\min} = \sum_c w_c p_c \log p_c - \sum_c w_c p_c \log\frac{w_c p_c}{W} = W\log W - \sum_c p_c\, w_c \log w_c ,$$
#
# and since $x \log x$ is convex, Jensen's inequality gives $\sum_c p_c w_c\log w_c \ge W\log W$: the minimum is $\le 0$, and $< 0$ whenever a row's weights are not all equal. A "distance" that goes below zero: the loss value is not a measure of how far the student is from the teacher.

# %%
bound = analysis.min_loss(args["logits_t"], z, y, beta)
at_q_star = klloss.klloss_v2(**{**args, "input": q_star.log()})
print(f"loss at q* = {at_q_star.item():.6f}, closed-form minimum = {bound.item():.6f}")
assert at_q_star.item() < 0 and math.isclose(at_q_star.item(), bound.item(), rel_tol=1e-10)
assert (w >= 0).all()

# %% [markdown]
# **A negative weight.** Take one sample whose teacher ranks class 1 above the label by more than $k\beta$ (notebook 03). Its weight is negative, and pushing $q_1 \to 0$ sends the term $-w_1 p_1 \log q_1$ to $-\infty$. Gradient descent on the student never stops descending:

# %%
teacher = torch.tensor([[0.0, k * beta + 3.0, 1.0]], dtype=torch.float64)
label = torch.tensor([0])
print("weights:", klloss.weight(klloss.margin(teacher, label), beta, k).round(decimals=4).tolist())
losses_neg = analysis.descend(teacher, teacher, label, beta, steps=2000, lr=1.0).losses
for step in (0, 10, 100, 1000, 2000):
    print(f"step {step:>4}: loss {losses_neg[step].item():9.3f}")
assert np.all(np.diff(losses_neg.numpy()) < 0) and losses_neg[-1] < losses_neg[0] - 10
try:
    analysis.min_loss(teacher, teacher, label, beta)
except ValueError as error:
    print("min_loss:", error)

fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
ax.plot(losses_neg.numpy(), color="crimson")
ax.set(xlabel="gradient step", ylabel="loss", title="one negative weight: the loss falls without limit")
print("saved", klloss.plotting.save(fig, "04-unbounded-loss"))
plt.show()

# %% [markdown]
# ## 6 · The published form sends gradient into the teacher
#
# The article detaches `logits_t` but not `target`, and takes $p$ from `target`. When the teacher's logits come from a network that is itself trainable (or simply still has `requires_grad`), the loss trains the teacher too. A small trainable teacher shows it; `klloss_v2` detaches both.

# %%
torch.manual_seed(0)
features = torch.randn(8, 4, dtype=torch.float64)
labels = torch.randint(0, 3, (8,))
teacher_net = nn.Linear(4, 3).double()
student_net = nn.Linear(4, 3).double()
for name, loss_fn in [("published", klloss.klloss_v2_published), ("klloss_v2", klloss.klloss_v2)]:
    teacher_net.zero_grad()
    student_net.zero_grad()
    teacher_logits = teacher_net(features)  # not detached, as in a careless training loop
    loss_fn(teacher_logits, student_net(features), teacher_logits, labels, beta).backward()
    grad = teacher_net.weight.grad
    print(f"{name:>10}: teacher weight gradient is",
          "None" if grad is None else f"non-zero, norm {grad.norm().item():.4f}")
    if name == "published":
        assert grad is not None and grad.norm() > 0
    else:
        assert grad is None
    assert student_net.weight.grad is not None

# %% [markdown]
# ## 7 · Labels: one host copy per sample, and ignore indices that do not fail
#
# The published loop copies `label` to the CPU and indexes each teacher row with it. Python-style negative indexing means a label of −1 silently reads the **last** class. The common ignore index −100 reads class $C - 100$ when there are more than 100 classes (for example ImageNet's 1000), and fails with an index error only when $C < 100$, so the claim that −100 "silently selects another class" holds for large $C$ only. `klloss_v2` rejects both with a clear message.

# %%
torch.manual_seed(0)
for n_classes in (5, 1000):
    logits = torch.randn(2, n_classes, dtype=torch.float64)
    student_logits = torch.randn(2, n_classes, dtype=torch.float64)
    for bad in (-1, -100):
        labels = torch.tensor([bad, 0])
        try:
            value = klloss.klloss_v2_published(logits, student_logits, logits, labels, beta)
            same_as = bad % n_classes
            reference = klloss.klloss_v2_published(logits, student_logits, logits, torch.tensor([same_as, 0]), beta)
            assert torch.equal(value, reference)
            outcome = f"silently used class {same_as} (loss {value.item():.4f})"
        except IndexError as error:
            outcome = f"IndexError: {error}"
        try:
            klloss.klloss_v2(logits, student_logits, logits, labels, beta)
            corrected = "accepted"
        except ValueError as error:
            corrected = f"ValueError: {error}"
        print(f"C = {n_classes:>4}, label {bad:>4}: published {outcome}\n{'':22}klloss_v2 {corrected}")
