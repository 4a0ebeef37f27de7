# %% [markdown] id="title"
# # 04 · What the loss actually teaches a student
#
# *The gradient in closed form, the student the loss really pulls towards, one identity that explains both, when the loss is convex, negative or unbounded, its relation to KD, DKD and label smoothing, and the published code's teacher-gradient and label quirks.*
#
# **You will learn:** why `klloss_v2` does not pull the student towards the teacher's $p$ but towards $q^* = w \odot p / W$; the per-sample identity $L_i = W_i\,\mathrm{KL}(q^*_i\|q_i) + L_{\min,i}$ that explains the gradient, the optimum, the lost confidence and the negative values at once; when the loss is convex and when it is bounded below; how it relates to Hinton's KD, DKD and label smoothing; what the published loop costs per sample.
#
# **You need first:** [notebook 01](01-walkthrough.ipynb) (the loss and its symbols) and [notebook 03](03-beta-and-offset.ipynb) (the weight $w = m/\beta + k$, and where it turns negative); softmax, KL divergence, and the derivative of a log-softmax.
#
# Plain KD pulls the student's distribution $q$ towards the teacher's $p$: KL(p ‖ q) is zero exactly at $q = p$. Does `klloss_v2` do the same? Each claim below is derived, and checked on examples by code that runs, with `course.analysis` (tested against autograd, the NumPy oracle and numerical optimisation in `tests/test_analysis.py`).

# %%
import itertools
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import display
from torch import nn

import course
import klloss
from course import analysis, bench

torch.manual_seed(0)
np.random.seed(0)  # noqa: NPY002 (seeds NumPy's global generator, in the one visible seeding cell)
pd.set_option("display.precision", 4)
course.i18n.translate_outputs()  # tables and figures in the reader's language, the Chinese kept for notebooks/zh/

sample = klloss.data.load_sample()
args = sample.tensors(torch.float64)
z, s, y, beta, k = args["target"], args["input"], args["label"], args["beta"], klloss.ARTICLE_OFFSET
classes = [f"class {j}" for j in range(z.shape[1])]
samples = [f"sample {i}" for i in range(len(y))]
rows = torch.arange(len(y))

# %% [markdown] id="1-gradient-closed-form"
# ## 1 · The gradient in closed form
#
# For one sample, $L = \sum_c w_c p_c\log p_c - \sum_c w_c p_c \log q_c$, and only the second sum depends on the student. With $\partial \log q_c / \partial s_j = \delta_{cj} - q_j$ ($\delta_{cj}$ is 1 if $c = j$, else 0) and $W = \sum_c w_c p_c$:
#
# $$\frac{\partial L}{\partial s_j} = -\sum_c w_c p_c(\delta_{cj} - q_j) = q_j\,W - w_j\,p_j .$$
#
# (The batch mean divides by $N$.) Compare with autograd on the sample:

# %%
student = s.clone().requires_grad_(True)
(auto,) = torch.autograd.grad(klloss.klloss_v2(**{**args, "input": student}), student)
closed = analysis.grad_student(**args)
display(
    pd.concat(
        {
            "autograd": pd.DataFrame(auto.numpy(), columns=classes),
            "closed form": pd.DataFrame(closed.numpy(), columns=classes),
        },
        axis=1,
    )
)
torch.testing.assert_close(closed, auto, rtol=1e-12, atol=1e-15)
print("closed form equals autograd to 1e-12:", torch.allclose(closed, auto, rtol=1e-12, atol=1e-15))

# %% [markdown] id="2-at-gradient-not"
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
print(
    "largest |gradient| at q = p:",
    f"{at_teacher.abs().max().item():.4f}",
    " (plain KL's gradient there is exactly 0)",
)
assert at_teacher.abs().max() > 1e-3

# %% [markdown] id="3-when-convex-where"
# ## 3 · When it is convex, and where it pulls: $q^* = w \odot p / W$
#
# Write $\log q_c = s_c - \operatorname{lse}(s)$, with the log-sum-exp $\operatorname{lse}(s) = \log\sum_j e^{s_j}$. For one sample
#
# $$L = \text{const} - \sum_c w_c p_c\, s_c + W \operatorname{lse}(s).$$
#
# The middle sum is linear in $s$, hence convex whatever the signs of the $w_c$; lse is convex. So **the loss is convex in the student logits whenever $W \ge 0$** (a function is convex when its Hessian is positive semi-definite: no direction curves down). Its Hessian is $W(\operatorname{diag} q - q q^\top)$, and $\operatorname{diag} q - q q^\top$ is positive semi-definite and non-zero, so the loss is convex exactly when $W \ge 0$.
#
# Convex is not the same as bounded below. **$w \ge 0$ is what keeps the loss bounded below**: then $L \ge \sum_c w_c p_c \log p_c$, because every $-\log q_c \ge 0$. With one $w_c < 0$, sending $s_c \to -\infty$ (the other logits fixed) sends $-w_c p_c s_c$ to $-\infty$ while lse stays bounded. Below, a teacher that ranks class 1 above the label by 12.3 logits, more than $k\beta$ (printed): one negative weight, yet $W > 0$, so the loss is convex, and unbounded below.

# %%
unbounded_teacher = torch.tensor(  # W > 0 (convex) with one w_c < 0: the loss is unbounded below
    [[0.0, 12.3, 11.0, 11.0, 11.0, 11.0]], dtype=torch.float64
)
label0 = torch.tensor([0])
w_c = klloss.weight(klloss.margin(unbounded_teacher, label0), beta, k)  # w = m / beta + k
p_c = torch.softmax(unbounded_teacher, 1)  # p = softmax(z)
big_w_c = (w_c * p_c).sum().item()  # W = sum_c w_c p_c
print(f"k beta = {k * beta:g}; class 1 leads the label by {unbounded_teacher[0, 1].item():g}")
print("weights:", w_c.round(decimals=4).tolist(), f"  W = {big_w_c:.4f}")
assert w_c.min() < 0 < big_w_c


def hessian(teacher, label, student):
    """d^2 L / ds^2 of the one-sample loss at `student` (C,), by autograd through klloss_v2."""
    return torch.autograd.functional.hessian(
        lambda x: klloss.klloss_v2(teacher, x.unsqueeze(0), teacher, label, beta), student
    )


smallest = []
for _ in range(20):
    point = 5 * torch.randn(6, dtype=torch.float64)
    h = hessian(unbounded_teacher, label0, point)
    q_point = torch.softmax(point, 0)
    # Hessian = W (diag q - q q^T)
    torch.testing.assert_close(h, big_w_c * (torch.diag(q_point) - torch.outer(q_point, q_point)))
    smallest.append(torch.linalg.eigvalsh(h).min().item())
assert min(smallest) > -1e-12
print(
    "W > 0 with a negative weight: at 20 random students the Hessian is W (diag q - q q^T),"
    " smallest eigenvalue > -1e-12 (0 along s + const: the shift that leaves q unchanged)"
)

# ... and yet no lower bound: push the negative-weight class's logit down, the others fixed
pushed = {}
for t in (0, 10, 100, 1000):
    student_t = torch.zeros(1, 6, dtype=torch.float64)
    student_t[0, 1] = -t  # s_1 = -t
    pushed[t] = klloss.klloss_v2(unbounded_teacher, student_t, unbounded_teacher, label0, beta).item()
print("loss as s_1 = -t:", {t: round(v, 3) for t, v in pushed.items()})
slope = (pushed[1000] - pushed[100]) / 900
# dL/dt -> w_1 p_1 < 0 (lse no longer depends on s_1)
assert math.isclose(slope, (w_c[0, 1] * p_c[0, 1]).item(), rel_tol=1e-9)
print(f"it falls like w_1 p_1 t = {(w_c[0, 1] * p_c[0, 1]).item():.4f} t without limit")

# W < 0 (a teacher wrong by far more than k beta): the Hessian has a negative eigenvalue, not convex
wrong_teacher = torch.tensor([[0.0, k * beta + 3.0, 1.0]], dtype=torch.float64)
w_wrong = klloss.weight(klloss.margin(wrong_teacher, label0), beta, k)
big_w_wrong = (w_wrong * torch.softmax(wrong_teacher, 1)).sum().item()
lowest = (
    torch.linalg.eigvalsh(hessian(wrong_teacher, label0, torch.zeros(3, dtype=torch.float64))).min().item()
)
print(
    f"teacher {wrong_teacher.tolist()}: W = {big_w_wrong:.4f} < 0, smallest Hessian eigenvalue {lowest:.4f}"
)
assert big_w_wrong < 0 and lowest < -1e-3

# %% [markdown] id="when-every-weight-gradient"
# When every weight is $\ge 0$, the gradient vanishes where $q_j W = w_j p_j$, that is at
#
# $$q^*_j = \frac{w_j\, p_j}{\sum_c w_c p_c},$$
#
# the teacher's distribution re-weighted by $w$, and this stationary point of a convex function is its minimum. (With a negative weight, $q^*$ would have a negative entry: there is no stationary point, and `analysis.stationary_student` refuses.) Gradient descent on free student logits, started from zero, converges to it:

# %%
q_star = analysis.stationary_student(args["logits_t"], z, y, beta)
run = analysis.descend(args["logits_t"], z, y, beta, steps=2000, lr=0.5)
losses, q_final = run.losses, run.trajectory[-1]
torch.testing.assert_close(q_final, q_star, atol=1e-6, rtol=0)
assert np.all(np.diff(losses.numpy()) <= 1e-12)  # convex problem, small steps: monotone descent
# q - q* is zero up to round-off, whose size depends on the CPU: print the bound, not the value
assert (q_final - q_star).abs().max() < 1e-12
print(
    f"after {len(losses) - 1} steps: largest |q - q*| < 1e-12,"
    f" loss {losses[-1].item():.6f} vs the minimum {analysis.min_loss(args['logits_t'], z, y, beta).item():.6f}"
)

# %% [markdown] id="loss-teaches-ratio-straight"
# What the loss teaches is the ratio $q^*_c / p_c = w_c / W = (k + m_c/\beta)/W$: a straight line in the margin. Classes the teacher ranks far below the label (large $m_c$) get **more** mass than the teacher gives them; the label ($m = 0$) gets less.

# %%
# the student's distribution along the way, over the first 300 steps
trajectory = run.trajectory[:301]  # (steps, N, C)
margins = klloss.margin(z, y)  # m = z_y - z

fig = plt.figure(figsize=(13, 8), constrained_layout=True)
grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.1])
for i in range(len(y)):
    ax = fig.add_subplot(grid[0, i])
    for j in range(z.shape[1]):
        (line,) = ax.plot(
            trajectory[:, i, j], linewidth=2, label=classes[j] + (" (label)" if j == y[i] else "")
        )
        ax.axhline(q_star[i, j], color=line.get_color(), linestyle="--", linewidth=1)
    ax.plot([], [], color="black", linestyle="--", linewidth=1, label="q* (where descent ends)")
    ax.set(
        title=f"sample {i}: student q during gradient descent",
        xlabel="step (symmetric log scale)",
        ylabel="q",
        xscale="symlog",
        xlim=(0, len(trajectory) - 1),
    )
    ax.legend(fontsize=7)
ax = fig.add_subplot(grid[1, :])
m_axis = np.linspace(0, margins.max().item() * 1.05, 50)
for i, colour in zip(range(len(y)), ["tab:blue", "tab:orange"], strict=False):
    ax.plot(
        m_axis,
        (k + m_axis / beta) / big_w[i].item(),
        color=colour,
        linewidth=1.5,
        label=f"sample {i}: w/W = (k + m/β)/W, W = {big_w[i].item():.3f}",
    )
    ratio = (q_star[i] / p[i]).numpy()
    ax.scatter(margins[i].numpy(), ratio, color=colour, s=45, zorder=3)
    for j in range(z.shape[1]):
        ax.annotate(
            f"class {j}" + (" (label)" if j == y[i] else ""),
            (margins[i, j].item(), ratio[j]),
            textcoords="offset points",
            xytext=(5, -12 if i else 5),
            fontsize=8,
            color=colour,
        )
ax.axhline(1, color="black", linestyle=":", linewidth=1, label="q* = p (what plain KD teaches)")
ax.text(
    m_axis[-1],
    1.005,
    "above: q* gives the class more than the teacher does",
    ha="right",
    va="bottom",
    fontsize=9,
)
ax.text(m_axis[-1], 0.995, "below: less than the teacher", ha="right", va="top", fontsize=9)
ax.margins(y=0.1)
ax.set(
    xlabel="teacher margin m_c = z_y − z_c",
    ylabel="q*_c / p_c",
    title="what the loss teaches: q*_c / p_c = w_c / W, a line in the margin (dots: the sample's classes)",
)
ax.legend(fontsize=8, loc="upper left")
print("saved", course.plotting.save(fig, "04-student-descent"))
plt.show()
torch.testing.assert_close(q_star / p, w / big_w)  # q*_c / p_c = w_c / W
assert ((q_star > p) == (w > big_w)).all()  # more mass than the teacher exactly where w_c > W

# %% [markdown] id="4-consequence-less-confidence"
# ## 4 · Consequence: less confidence on the label than the teacher
#
# Since $w_y = k$, $q^*_y / p_y = k / W$, and $W = k + \frac1\beta\sum_c p_c m_c$ with $\sum_c p_c m_c = z_y - \sum_c p_c z_c$. So $q^*_y < p_y$ exactly when the label's logit is above the teacher's average logit $\sum_c p_c z_c$, and **$q^*_y = p_y$ exactly when $z_y = \sum_c p_c z_c$** (or $\beta = \infty$).
#
# Where the teacher is right, every margin is $\ge 0$, and since a softmax gives every class $p_c > 0$, $\sum_c p_c m_c = 0$ needs every margin to be 0: a teacher whose logits are all equal (then $q^* = p$, uniform). **Any teacher that ranks the label first and some class strictly below it gives $q^*_y < p_y$: the optimal student puts less mass on the true label than the teacher does.** On the sample:

# %%
confidence = pd.DataFrame(
    {"teacher p_y": p[rows, y].numpy(), "optimum q*_y": q_star[rows, y].numpy()}, index=samples
)
confidence["q*_y / p_y"] = confidence["optimum q*_y"] / confidence["teacher p_y"]
confidence["k / W"] = (k / big_w[:, 0]).numpy()
display(confidence)
assert (q_star[rows, y] < p[rows, y]).all()
np.testing.assert_allclose(confidence["q*_y / p_y"], confidence["k / W"], rtol=1e-12)


# %% [markdown] id="equality-condition-checked-teacher"
# The equality condition, checked: a teacher with equal logits, one that prefers the label by a hair, a *wrong* teacher whose label logit equals its average logit (found by bisection), and random teachers: of 2000 drawn, those whose weights are all $\ge 0$ (their count is printed), where $q^*_y < p_y$ exactly when $z_y > \sum_c p_c z_c$.


# %%
def label_ratio(teacher, label):
    """q*_y / p_y for each row of `teacher`."""
    rows_t = torch.arange(len(label))
    q_opt = analysis.stationary_student(teacher, teacher, label, beta)
    return q_opt[rows_t, label] / torch.softmax(teacher, 1)[rows_t, label]


first = torch.tensor([0])
flat = torch.zeros(1, 4, dtype=torch.float64)
assert (label_ratio(flat, first) - 1).abs().max() < 1e-12
hair = torch.tensor([[0.0, -1e-3, -1e-3, -1e-3]], dtype=torch.float64)
assert label_ratio(hair, first).item() < 1
# a wrong teacher: logits (a, 1, 0, -1) with label 0; find a with a = sum_c p_c z_c by bisection
low, high = -10.0, 1.0
for _ in range(100):
    a = (low + high) / 2
    logits_a = torch.tensor([[a, 1.0, 0.0, -1.0]], dtype=torch.float64)
    gap = a - (torch.softmax(logits_a, 1) * logits_a).sum().item()  # z_y - sum_c p_c z_c
    low, high = (a, high) if gap < 0 else (low, a)
q_opt = analysis.stationary_student(logits_a, logits_a, first, beta)
assert (
    abs(label_ratio(logits_a, first).item() - 1) < 1e-12
    and (q_opt - torch.softmax(logits_a, 1)).abs().max() > 1e-3
)
print(
    f"equal logits: q*_y / p_y = 1 (to 1e-12);  label ahead by 1e-3: q*_y / p_y = {label_ratio(hair, first).item():.6f} < 1"
)
print(
    f"wrong teacher (a, 1, 0, -1) with a = {a:.4f} = its average logit: q*_y / p_y = 1 (to 1e-12),"
    " yet q* differs from p on the other classes"
)

random_teachers = 3 * torch.randn(2000, 6, dtype=torch.float64)
random_labels = torch.randint(0, 6, (2000,))
keep = (klloss.weight(klloss.margin(random_teachers, random_labels), beta, k) >= 0).all(1)
random_teachers, random_labels = random_teachers[keep], random_labels[keep]
above_mean = random_teachers[torch.arange(len(random_labels)), random_labels] - (
    torch.softmax(random_teachers, 1) * random_teachers
).sum(1)  # z_y - sum_c p_c z_c
ratio_random = label_ratio(random_teachers, random_labels)
assert ((ratio_random < 1) == (above_mean > 0)).all()
print(
    f"{int(keep.sum())} of the {len(keep)} random teachers drawn have all w >= 0; on each,"
    " q*_y < p_y exactly when z_y > sum_c p_c z_c"
)

# %% [markdown] id="much-depends-with-small"
# How much depends on β: with small β the margins dominate the weights and the optimum moves far from the teacher; as β → ∞ all weights equal $k$ and $q^* \to p$.

# %%
beta_axis = np.logspace(-2, 3, 60)
ratios = np.stack(
    [
        (analysis.stationary_student(args["logits_t"], z, y, float(b))[rows, y] / p[rows, y]).numpy()
        for b in beta_axis
    ]
)
fig, ax = plt.subplots(figsize=(7, 4), constrained_layout=True)
for i in range(len(y)):
    ax.plot(beta_axis, ratios[:, i], label=f"sample {i}")
ax.axhline(1, color="black", linestyle="--", linewidth=0.8, label="q*_y = p_y (plain KL)")
ax.axvline(beta, color="black", linestyle=":", linewidth=0.8, label=f"article's β = {beta:g}")
ax.set(
    xscale="log",
    xlabel="β",
    ylabel="q*_y / p_y",
    ylim=(0, 1.05),
    title="the optimal student's confidence on the label, relative to the teacher's",
)
ax.legend(fontsize=8)
print("saved", course.plotting.save(fig, "04-label-confidence-vs-beta"))
plt.show()
assert np.all(ratios < 1) and np.all(np.diff(ratios, axis=0) > 0)  # always below 1, rising with beta
print(
    "q*_y / p_y at the smallest and largest beta:", ratios[0].round(4).tolist(), ratios[-1].round(4).tolist()
)

# %% [markdown] id="5-loss-can-be"
# ## 5 · The loss can be negative, and with a negative weight it has no lower bound
#
# **All weights $\ge 0$.** At $q^*$ the loss reaches its minimum
#
# $$L_{\min} = \sum_c w_c p_c \log p_c - \sum_c w_c p_c \log\frac{w_c p_c}{W} = W\log W - \sum_c p_c\, w_c \log w_c .$$
#
# Jensen's inequality says that for a convex $f$ and weights $p_c \ge 0$ summing to 1, $\sum_c p_c f(x_c) \ge f(\sum_c p_c x_c)$, with equality only if the $x_c$ with $p_c > 0$ are all equal (for a strictly convex $f$). With $f(x) = x\log x$ and $x_c = w_c$ it gives $\sum_c p_c w_c\log w_c \ge W\log W$: the minimum is $\le 0$, and $< 0$ whenever a row's weights are not all equal. A "distance" that goes below zero: the loss value is not a measure of how far the student is from the teacher.

# %%
bound = analysis.min_loss(args["logits_t"], z, y, beta)
at_q_star = klloss.klloss_v2(**{**args, "input": q_star.log()})
print(
    f"loss at q* = {at_q_star.item():.6f}, closed-form minimum (batch mean of L_min,i) = {bound.item():.6f}"
)
assert at_q_star.item() < 0 and math.isclose(at_q_star.item(), bound.item(), rel_tol=1e-10)
assert (w >= 0).all()

# %% [markdown] id="negative-weight-take-teacher"
# **A negative weight.** Take the convex but unbounded teacher of §3: logits $(0,\ 12.3,\ 11,\ 11,\ 11,\ 11)$ with label 0, where class 1 leads the label by more than $k\beta$. Its weight on class 1 is negative while $W > 0$: the loss is convex in the student logits, and yet pushing $q_1 \to 0$ sends the term $-w_1 p_1 \log q_1$ to $-\infty$. Gradient descent on the student never stops descending. (§3's other teacher, with $W < 0$, fails in a second way as well: its loss is not even convex.)

# %%
print("weights:", w_c.round(decimals=4).tolist(), f" W = {big_w_c:.4f} > 0")
losses_neg = analysis.descend(unbounded_teacher, unbounded_teacher, label0, beta, steps=2000, lr=1.0).losses
for step in (0, 10, 100, 1000, 2000):
    print(f"step {step:>4}: loss {losses_neg[step].item():9.3f}")
assert np.all(np.diff(losses_neg.numpy()) < 0) and losses_neg[-1] < losses_neg[0] - 10
try:
    analysis.min_loss(unbounded_teacher, unbounded_teacher, label0, beta)
    raise AssertionError("min_loss accepted a negative weight")
except ValueError as error:
    print("min_loss:", error)

fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
ax.plot(losses_neg.numpy(), color="crimson")
ax.set(
    xlabel="gradient step",
    ylabel="loss",
    title=f"one negative weight, W = {big_w_c:.3f} > 0 (convex): the loss falls without limit",
)
print("saved", course.plotting.save(fig, "04-unbounded-loss"))
plt.show()

# %% [markdown] id="6-one-identity-ties"
# ## 6 · One identity ties it together: KD towards $q^*$
#
# Take one sample $i$ whose weights are all $\ge 0$, and add and subtract $\sum_c w_{ic} p_{ic} \log q^*_{ic}$ in $L_i = \sum_c w_{ic} p_{ic} \log p_{ic} - \sum_c w_{ic} p_{ic} \log q_{ic}$. Since $w_{ic} p_{ic} = W_i q^*_{ic}$:
#
# $$L_i = \underbrace{W_i \sum_c q^*_{ic} \log\frac{q^*_{ic}}{q_{ic}}}_{W_i\,\mathrm{KL}(q^*_i\|q_i)} \;+\; \underbrace{\sum_c w_{ic} p_{ic} \log\frac{p_{ic}}{q^*_{ic}}}_{=\,W_i\log W_i - \sum_c p_{ic} w_{ic} \log w_{ic}\,=\,L_{\min,i}} .$$
#
# The identity holds sample by sample. For the batch, the loss `klloss_v2` returns is the mean over the $N$ samples:
#
# $$L = \frac1N\sum_{i=1}^N L_i = \frac1N\sum_{i=1}^N W_i\,\mathrm{KL}(q^*_i\|q_i) + L_{\min}, \qquad L_{\min} = \frac1N\sum_{i=1}^N L_{\min,i},$$
#
# each sample's divergence weighted by its own $W_i$ (not one $W$ times a batch-mean KL).
#
# **klloss_v2 is KD towards a re-weighted teacher $q^*_i$, scaled per sample by $W_i$, plus a constant $L_{\min} \le 0$.** Everything above follows (per sample; drop the index $i$):
# - §1: the gradient of $\mathrm{KL}(q^*\|q)$ in $s$ is $q - q^*$, so $\partial L/\partial s = W(q - q^*)$;
# - §2: at $q = p$ the loss is 0 (every term $\log(p_c/p_c)$ vanishes), which is $W\,\mathrm{KL}(q^*\|p)$ above the minimum: $p$ is not the minimiser unless $q^* = p$;
# - §3: $W \ge 0$ times a convex function of $s$ is convex; the minimum is where $\mathrm{KL}(q^*\|q) = 0$, $q = q^*$;
# - §4: $q^*_y / p_y = w_y/W = k/W$;
# - §5: the minimum is $L_{\min}$, and the loss measures the student's distance to $q^*$ (not to $p$) only after subtracting $L_{\min}$ and dividing by $W$.
#
# `analysis.reweighted_kd` computes the parts; on the sample both sides agree per sample:

# %%
parts = analysis.reweighted_kd(**args)
per_sample = klloss.klloss_v2(**args, reduction="none")  # L_i
torch.testing.assert_close(parts.per_sample, per_sample, rtol=1e-12, atol=1e-15)
for i in range(len(y)):
    print(
        f"sample {i}: L_i = {per_sample[i].item():.6f};  W_i KL(q*_i || q_i) + L_min,i = "
        f"{parts.big_w[i].item():.4f} * {parts.kl[i].item():.6f} + ({parts.min_loss[i].item():.6f})"
        f" = {parts.per_sample[i].item():.6f}"
    )
# the batch: L = mean_i W_i KL(q*_i || q_i) + L_min, each sample with its own W_i
batch_loss = klloss.klloss_v2(**args)
batch_form = (parts.big_w * parts.kl).mean() + parts.min_loss.mean()
one_w = parts.big_w.mean() * parts.kl.mean() + parts.min_loss.mean()  # one W for the batch: wrong
torch.testing.assert_close(batch_loss, batch_form, rtol=1e-12, atol=1e-15)
assert abs(one_w - batch_loss) > 1e-6
print(
    f"batch: L = {batch_loss.item():.6f} = mean_i W_i KL(q*_i || q_i) + L_min;"
    f" mean(W) * mean(KL) + L_min would give {one_w.item():.6f}"
)

# section 1: dL/ds = W (q - q*) / N
q = torch.softmax(s, 1)
torch.testing.assert_close(analysis.grad_student(**args), parts.big_w[:, None] * (q - parts.q_star) / len(y))
# section 2: at q = p the loss is 0, and W KL(q* || p) = -L_min
at_p = analysis.reweighted_kd(**{**args, "input": z})
assert at_p.per_sample.abs().max() < 1e-12
torch.testing.assert_close(at_p.big_w * at_p.kl, -at_p.min_loss)
print(
    "at q = p: loss < 1e-12 in size, and W KL(q* || p) = -L_min =", (-at_p.min_loss).numpy().round(6).tolist()
)
# sections 3 and 4: the minimiser is q*, and q*_y / p_y = k / W
torch.testing.assert_close(parts.q_star, q_star)
torch.testing.assert_close(parts.q_star[rows, y] / p[rows, y], k / parts.big_w)
# section 5: the constant is the minimum
assert math.isclose(parts.min_loss.mean().item(), bound.item(), rel_tol=1e-12)

# %% [markdown] id="7-relation-well-known"
# ## 7 · Relation to well-known losses
#
# **Hinton's KD with a temperature $T$** (Hinton, Vinyals and Dean, 2015) is $T^2\,\mathrm{KL}(\mathrm{softmax}(z/T)\,\|\,\mathrm{softmax}(s/T))$. `klloss_v2` has no temperature: $p = \mathrm{softmax}(z)$ whatever β. Its β → ∞ limit is $k$ times KD at $T = 1$. Feeding it logits divided by $T$ would divide the margins by $T$ as well, which changes the weights exactly as $\beta \to T\beta$ does, and softens $p$ besides: β scales the margin, it is not a temperature.

# %%
# KL(p || q), batch mean, by torch
kd = F.kl_div(F.log_softmax(s, 1), F.log_softmax(z, 1), reduction="batchmean", log_target=True)
at_infinity = klloss.klloss_v2(**{**args, "beta": math.inf})
assert math.isclose(at_infinity.item(), k * kd.item(), rel_tol=1e-12)
print(f"beta = inf: klloss_v2 = {at_infinity.item():.6f} = k * F.kl_div = {k:g} * {kd.item():.6f}")
for temperature in (2.0, 4.0):
    # w(z / T, beta) = m / (T beta) + k = w(z, T beta)
    torch.testing.assert_close(
        klloss.weight(klloss.margin(z / temperature, y), beta, k),
        klloss.weight(klloss.margin(z, y), temperature * beta, k),
    )
print("margins of z / T with beta = margins of z with T * beta (T = 2, 4)")

# %% [markdown] id="why-hinton-multiplies-by"
# Why Hinton multiplies by $T^2$: the gradient of $\mathrm{KL}(p_T\|q_T)$ in $s$ is $(q_T - p_T)/T$ (per sample), and $q_T - p_T$ itself shrinks like $1/T$, so the gradient falls like $1/T^2$. Multiplied by $T^2$ it tends to a fixed limit, $\big((s - \bar s) - (z - \bar z)\big)/C$ per sample (bars: means over classes; the gap to it falls like $1/T$), so the distillation term keeps its weight against a cross-entropy term as $T$ changes:

# %%
limit = ((s - s.mean(1, keepdim=True)) - (z - z.mean(1, keepdim=True))) / (z.shape[1] * len(y))
temperature_rows = []
for temperature in (1, 2, 4, 8, 16, 32, 64):
    x = s.clone().requires_grad_(True)
    kd_t = F.kl_div(
        F.log_softmax(x / temperature, 1),
        F.log_softmax(z / temperature, 1),
        reduction="batchmean",
        log_target=True,
    )  # KL(p_T || q_T)
    (grad_t,) = torch.autograd.grad(kd_t, x)
    temperature_rows.append(
        {
            "T": temperature,
            "|grad KL_T|": grad_t.norm().item(),
            "|grad T² KL_T|": temperature**2 * grad_t.norm().item(),
            "|T² grad - limit| / |limit|": ((temperature**2 * grad_t - limit).norm() / limit.norm()).item(),
        }
    )
temperature_table = pd.DataFrame(temperature_rows).set_index("T")
display(temperature_table)
plain, scaled = temperature_table["|grad KL_T|"], temperature_table["|grad T² KL_T|"]
assert plain.max() / plain.min() > 1000 and scaled.max() / scaled.min() < 1.1  # T^2 keeps the size
assert abs(plain.iloc[-2] / plain.iloc[-1] - 4) < 0.02  # doubling T divides the gradient by 4: 1 / T^2
gap = temperature_table["|T² grad - limit| / |limit|"]
assert np.all(np.diff(gap) < 0) and gap.iloc[-1] < 0.02  # T^2 grad -> the limit (the gap falls like 1/T)
print(
    f"T from 1 to 64: the plain gradient shrinks {plain.max() / plain.min():.0f}-fold,"
    f" the T²-scaled one stays within {100 * (scaled.max() / scaled.min() - 1):.0f}%"
)


# %% [markdown] id="dkd-splits-kd-into"
# **DKD** *(optional: this part, up to label smoothing, and exercise 5 can be skipped on a first reading; nothing else depends on them)*. DKD (decoupled KD, Zhao et al. 2022) splits KD into a target-class part and a non-target part,
#
# $$\mathrm{KL}(p\|q) = \mathrm{TCKD} + (1 - p_y)\,\mathrm{NCKD},$$
#
# with TCKD the KL between the binary distributions $(p_y, 1 - p_y)$ and $(q_y, 1 - q_y)$, and NCKD the KL between $p$ and $q$ restricted to the classes $c \ne y$ and renormalised. DKD then weights the two parts freely: $\alpha_{\mathrm{DKD}}\,\mathrm{TCKD} + \beta_{\mathrm{DKD}}\,\mathrm{NCKD}$. The paper calls these weights α and β; neither is our α or β (DKD's β is a constant weight on NCKD, unrelated to our margin scale).
#
# At β = ∞ `klloss_v2` is DKD with $\alpha_{\mathrm{DKD}} = k$ and a per-sample $\beta_{\mathrm{DKD}} = k(1 - p_y)$, coupled as in plain KD.
#
# At finite β **both parts change**. With $\hat p_c = p_c / (1 - p_y)$ and $\hat q_c = q_c / (1 - q_y)$ for $c \ne y$ (the distributions NCKD compares), each sample's loss splits as
#
# $$L_i = k\,p_y \log\frac{p_y}{q_y} + (W - k\,p_y)\log\frac{1 - p_y}{1 - q_y} + (1 - p_y)\sum_{c \ne y} w_c\,\hat p_c \log\frac{\hat p_c}{\hat q_c}$$
#
# (exercise 5 derives it). The first two terms are the binary part, but with its non-target side weighted by $W - k p_y = \sum_{c \ne y} w_c p_c$ instead of $k(1 - p_y)$: unless $W = k$ they are no longer $k$ times TCKD.
#
# The last term is a $w$-weighted sum over the non-target classes, which is not a KL divergence: with unequal weights the sum as a whole can be negative, and it is smallest not at $\hat q = \hat p$ but at $\hat q \propto w \odot \hat p$ (the weighted sum is the loss of §3 on these classes).
#
# For example, two non-target classes, the first tied with the label ($m = 0$, $w = k$) and the second $\ln 9$ below it, so $\hat p = (0.9, 0.1)$ and, at β = 1.5, $w = (8, 8 + \ln 9/1.5)$: at $\hat q = (0.88, 0.12)$ the sum is about $-0.01$ (checked below). The difference shows at $q = p$: DKD is a sum of two KL divergences with non-negative weights, minimised at $q = p$ (value and gradient 0), while `klloss_v2`'s gradient there is not 0 (§2).


# %%
def dkd_parts(student_logits):
    """(TCKD, NCKD) per sample for the sample's teacher z and labels y."""
    q_s = torch.softmax(student_logits, 1)
    target = F.one_hot(y, z.shape[1]).bool()
    p_y, q_y = p[rows, y], q_s[rows, y]
    # TCKD = KL((p_y, 1 - p_y) || (q_y, 1 - q_y))
    tckd = p_y * (p_y / q_y).log() + (1 - p_y) * ((1 - p_y) / (1 - q_y)).log()
    # NCKD = KL(p_rest || q_rest), p_rest_c = p_c / (1 - p_y) for c != y
    p_rest = p.masked_fill(target, 0) / (1 - p_y)[:, None]
    q_rest = q_s.masked_fill(target, 0) / (1 - q_y)[:, None]
    # (the label's column holds 0 * log 1 = 0, so that no log 0 reaches the gradient)
    nckd = (p_rest * (p_rest.masked_fill(target, 1).log() - q_rest.masked_fill(target, 1).log())).sum(1)
    return tckd, nckd


tckd, nckd = dkd_parts(s)
kl_per_sample = (p * (p.log() - torch.log_softmax(s, 1))).sum(1)  # KL(p || q) per sample
torch.testing.assert_close(tckd + (1 - p[rows, y]) * nckd, kl_per_sample)
torch.testing.assert_close(
    klloss.klloss_v2(**{**args, "beta": math.inf}, reduction="none"), k * tckd + k * (1 - p[rows, y]) * nckd
)
display(
    pd.DataFrame(
        {"TCKD": tckd.numpy(), "NCKD": nckd.numpy(), "KL(p || q)": kl_per_sample.numpy()}, index=samples
    )
)
x = z.clone().requires_grad_(True)
tckd_p, nckd_p = dkd_parts(x)
dkd_at_p = (1.0 * tckd_p + 8.0 * nckd_p).mean()  # DKD with alpha_DKD = 1, beta_DKD = 8
(dkd_grad,) = torch.autograd.grad(dkd_at_p, x)
assert abs(dkd_at_p.item()) < 1e-12 and dkd_grad.abs().max() < 1e-12
# a w-weighted sum like the non-target part can be negative: p_hat = (.9, .1) from logits 0 and ln 9 below
# the label, w = (8, 8 + ln 9 / 1.5) at beta = 1.5, q_hat = (.88, .12); its minimum is at q_hat ~ w p_hat
w_hat, p_hat = (8.0, 8.0 + math.log(9) / 1.5), (0.9, 0.1)


def weighted_sum(q_hat):
    return sum(w_c * p_c * math.log(p_c / q_c) for w_c, p_c, q_c in zip(w_hat, p_hat, q_hat, strict=True))


q_lowest = [
    w_c * p_c / sum(w * p for w, p in zip(w_hat, p_hat, strict=True))
    for w_c, p_c in zip(w_hat, p_hat, strict=True)
]
assert -0.02 < weighted_sum((0.88, 0.12)) < -0.005 and weighted_sum(q_lowest) < weighted_sum((0.88, 0.12))
assert weighted_sum(p_hat) == 0.0
print(
    f"at q_hat = (0.88, 0.12): {weighted_sum((0.88, 0.12)):.4f} < 0; lowest, at q_hat ~ w p_hat: {weighted_sum(q_lowest):.4f}"
)
print(
    "KL = TCKD + (1 - p_y) NCKD on the sample; at q = p: DKD = 0 with gradient < 1e-12 in size,"
    f" klloss_v2's gradient up to {at_teacher.abs().max().item():.4f}"
)

# %% [markdown] id="label-smoothing-trains-against"
# **Label smoothing** trains against $(1 - \varepsilon)\,\mathrm{onehot}(y) + \varepsilon\,u$, a mix of the hard label and the uniform distribution $u$. The target of `klloss_v2`, $q^*$, is a mix of the same shape, with the teacher in place of the hard label: write $\mu = \sum_c p_c m_c$ (so $W = k + \mu/\beta$); when the teacher ranks the label first ($m_c \ge 0$, $\mu > 0$),
#
# $$q^* = (1 - \varepsilon)\,p + \varepsilon\, r, \qquad r_c = \frac{m_c\,p_c}{\mu}, \qquad \varepsilon = \frac{\mu}{k\beta + \mu}.$$
#
# $r$ is a distribution with no mass on the label, and the most on classes that the teacher ranks far below the label yet still gives some probability. So $q^*$ is a **teacher-dependent smoothing**: the amount ε depends on the sample (it grows with $\mu = z_y - \sum_c p_c z_c$, the label's lead over the teacher's average logit, and falls to 0 as $k\beta \to \infty$), and the mass goes to the classes $r$ picks rather than evenly to all.

# %%
mu = (p * margins).sum(1, keepdim=True)  # mu = sum_c p_c m_c = z_y - sum_c p_c z_c
r = p * margins / mu  # r_c = m_c p_c / mu
epsilon = mu / (k * beta + mu)  # epsilon = mu / (k beta + mu)
torch.testing.assert_close((1 - epsilon) * p + epsilon * r, q_star)  # q* = (1 - eps) p + eps r
torch.testing.assert_close(r.sum(1), torch.ones(len(y), dtype=torch.float64))
assert (r[rows, y] == 0).all() and (r >= 0).all()
smoothed_label = (1 - epsilon) * F.one_hot(y, z.shape[1]) + epsilon / z.shape[1]  # label smoothing, same eps
for i in range(len(y)):
    print(f"sample {i} (label {y[i].item()}): epsilon = {epsilon[i, 0].item():.4f}")
    display(
        pd.DataFrame(
            {
                "teacher p": p[i],
                "r": r[i],
                "q* = (1-ε) p + ε r": q_star[i],
                "label smoothing (1-ε) onehot + ε/C": smoothed_label[i],
            },
            index=classes,
        ).T
    )
epsilons = [(mu / (k * b + mu)).squeeze(1) for b in (beta, 10 * beta, 100 * beta)]
assert all((e1 > e2).all() for e1, e2 in itertools.pairwise(epsilons))  # epsilon falls as beta grows

# %% [markdown] id="8-published-form-sends"
# ## 8 · The published form sends gradient into the teacher
#
# The article detaches `logits_t` but not `target`, and takes $p$ from `target`. When the teacher's logits still carry autograd history (its forward pass not under `torch.no_grad()`, its logits not detached), the loss sends gradient into the teacher's parameters, and it trains the teacher if those parameters are also in the optimiser. A small teacher shows it, and both conditions; `klloss_v2` detaches both arguments.

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
    print(
        f"{name:>10}: teacher weight gradient is",
        "None" if grad is None else f"non-zero, norm {grad.norm().item():.4f}",
    )
    if name == "published":
        assert grad is not None and grad.norm() > 0
    else:
        assert grad is None
    assert student_net.weight.grad is not None
# the conditions: an optimiser over the student's parameters alone leaves the teacher as it is,
# and a teacher run under torch.no_grad() gets no gradient at all
teacher_before = teacher_net.weight.detach().clone()
torch.optim.SGD(student_net.parameters(), lr=0.1).step()
assert torch.equal(teacher_net.weight, teacher_before)
teacher_net.zero_grad()
with torch.no_grad():
    frozen_logits = teacher_net(features)
klloss.klloss_v2_published(frozen_logits, student_net(features), frozen_logits, labels, beta).backward()
assert teacher_net.weight.grad is None
print("published, teacher not in the optimiser: unchanged; teacher under torch.no_grad(): no gradient")

# %% [markdown] id="9-labels-python-loop"
# ## 9 · Labels: a Python loop over samples, and ignore indices that do not fail *(optional, for implementers)*
#
# What a reader who skips this section needs: the article's per-sample loop costs time, not correctness (its values agree with `klloss_v2`'s, [notebook 01](01-walkthrough.ipynb)), but it does not understand an ignore index: a label of −1 or −100 silently reads some class, or fails with an index error, where `klloss_v2` leaves out a row labelled −100 (its default ignore index) and refuses −1.
#
# The published form copies `label` to the host once (`label.cpu()`: on a GPU, one synchronisation per batch). Then, per sample, it runs one Python iteration that reads that sample's label from host memory (no synchronisation: the value is already on the host), indexes the teacher's row with it (a view: no copy, no kernel) and subtracts (one kernel); finally it concatenates the N rows (one `cat`). Counting the operators dispatched by the forward at two batch sizes shows exactly that (`_local_scalar_dense` reads a one-element CPU tensor into Python; `benchmarks/check_published_syncs.py` counts the synchronisations on a GPU):

# %%
counts = {}
for n in (8, 64):
    teacher_n, student_n, label_n = bench.make_inputs(n, 10)
    counts[n] = bench.op_counts(klloss.klloss_v2_published, teacher_n, student_n, teacher_n, label_n, beta)
operators = sorted(set(counts[8]) | set(counts[64]))
op_table = pd.DataFrame(
    {"N = 8": [counts[8][o] for o in operators], "N = 64": [counts[64][o] for o in operators]},
    index=pd.Index(operators, name="operator"),
)
op_table["per extra sample"] = (op_table["N = 64"] - op_table["N = 8"]) / (64 - 8)
display(op_table)
per_sample_ops = op_table.loc[op_table["per extra sample"] > 0, "per extra sample"].to_dict()
assert per_sample_ops == {"aten._local_scalar_dense": 1, "aten.select": 1, "aten.sub": 1}
assert counts[8]["aten.cat"] == counts[64]["aten.cat"] == 1

# %% [markdown] id="python-style-negative-indexing"
# Python-style negative indexing means a label of −1 silently reads the **last** class. The common ignore index −100 reads class $C - 100$ whenever $C \ge 100$ (class 0 at $C = 100$, class 900 for ImageNet's 1000 classes), and raises an index error when $C < 100$. `klloss_v2` refuses −1 with a clear message, and reads −100 as training code means it: with `ignore_index=-100` (its default, as in `F.cross_entropy`) that row adds nothing to the loss and does not count in the batch mean; with `ignore_index=None` it refuses −100 as well.

# %%
torch.manual_seed(0)
for n_classes in (5, 100, 1000):
    logits = torch.randn(2, n_classes, dtype=torch.float64)
    student_logits = torch.randn(2, n_classes, dtype=torch.float64)
    for bad in (-1, -100):
        labels = torch.tensor([bad, 0])
        try:
            value = klloss.klloss_v2_published(logits, student_logits, logits, labels, beta)
            same_as = bad % n_classes
            reference = klloss.klloss_v2_published(
                logits, student_logits, logits, torch.tensor([same_as, 0]), beta
            )
            assert torch.equal(value, reference)
            outcome = f"silently used class {same_as} (loss {value.item():.4f})"
        except IndexError as error:
            assert n_classes < -bad
            outcome = f"IndexError: {error}"
        try:
            ours = klloss.klloss_v2(logits, student_logits, logits, labels, beta)
            # an ignored row: the loss is the kept row's alone
            kept = klloss.klloss_v2(logits[1:], student_logits[1:], logits[1:], labels[1:], beta)
            assert bad == -100 and torch.allclose(ours, kept, rtol=1e-12, atol=0)
            corrected = "ignored that row (ignore_index=-100): the loss is the other row's alone"
        except ValueError as error:
            assert bad == -1
            corrected = f"ValueError: {error}"
        print(f"C = {n_classes:>4}, label {bad:>4}: published {outcome}\n{'':22}klloss_v2 {corrected}")
try:
    klloss.klloss_v2(logits, student_logits, logits, torch.tensor([-100, 0]), beta, ignore_index=None)
    raise AssertionError("-100 accepted with ignore_index=None")
except ValueError as error:
    print(f"with ignore_index=None, label -100: ValueError: {error}")

# %% [markdown] id="exercises"
# ## Exercises
#
# Each has a worked solution below it, folded: try first, then unfold.
#
# **Exercise 1 · The gradient into the teacher.** The published form lets gradient reach `target` (§8). With the weights held fixed (they come from the detached `logits_t`), derive $\partial L/\partial z_j$ for one sample through $p = \mathrm{softmax}(z)$, and check it against autograd on the sample.

# %% [markdown] id="solution-with" tags=["solution"]
# **Solution 1.** $L = \sum_c w_c p_c(\log p_c - \log q_c)$ and $\partial p_c/\partial z_j = p_c(\delta_{cj} - p_j)$. With $d_c = \partial L/\partial p_c = w_c(\log p_c - \log q_c + 1)$,
#
# $$\frac{\partial L}{\partial z_j} = \sum_c d_c\, p_c(\delta_{cj} - p_j) = p_j\Big(d_j - \sum_c p_c d_c\Big).$$
#
# It sums to 0 over $j$ (softmax ignores a shift of $z$), and it is not 0 at $q = p$: there $d_c = w_c$ and $\partial L/\partial z_j = p_j (w_j - W)$, the opposite of the student's gradient of §2.

# %% tags=["solution"]
teacher_logits = z.clone().requires_grad_(True)
loss_z = klloss.klloss_v2_published(args["logits_t"], s, teacher_logits, y, beta)
(auto_z,) = torch.autograd.grad(loss_z, teacher_logits)
log_q = torch.log_softmax(s, 1)
d = w * (p.log() - log_q + 1)  # d_c = w_c (log p_c - log q_c + 1)
closed_z = p * (d - (p * d).sum(1, keepdim=True)) / len(y)  # p_j (d_j - sum_c p_c d_c) / N
torch.testing.assert_close(closed_z, auto_z, rtol=1e-12, atol=1e-15)
assert closed_z.sum(1).abs().max() < 1e-15
print("dL/dz_j = p_j (d_j - sum_c p_c d_c) / N matches autograd (1e-12); rows sum to 0")

# %% [markdown] id="exercise-2-derive-minimise"
# **Exercise 2 · $q^*$ a second way.** §3 found $q^*$ where the gradient in the student's logits vanishes. Derive it without logits: minimise $L(q) = \sum_c w_c p_c\log p_c - \sum_c w_c p_c \log q_c$ over distributions $q$ (all $w_c \ge 0$), with a Lagrange multiplier for $\sum_c q_c = 1$, and say why the point you find is the *global* minimum. Then illustrate it on the sample: no student among 2000 random ones near $q^*$, nor among 2000 far from it, does better. (Samples illustrate a global claim; the proof is what carries it.)

# %% [markdown] id="solution-set-derivative-zero" tags=["solution"]
# **Solution 2.** Set the derivative of $L(q) + \lambda(\sum_c q_c - 1)$ in $q_c$ to zero: $-w_c p_c / q_c + \lambda = 0$, so $q_c = w_c p_c/\lambda$; summing over $c$ gives $\lambda = \sum_c w_c p_c = W$, hence $q^*_c = w_c p_c / W$. It is the global minimum: $L(q)$ is a sum of $-w_c p_c \log q_c$ with $w_c p_c \ge 0$, convex on the convex set of distributions, so a stationary point is a global minimiser; or, by the identity of §6, $L - L_{\min} = W\,\mathrm{KL}(q^*\|q) \ge 0$ for every $q$, with equality only at $q = q^*$. The random students below only illustrate this: however many, they cannot prove it.

# %% tags=["solution"]
best = klloss.klloss_v2(**{**args, "input": q_star.log()})
for name, spread in [("near q* (log q* plus logits of size 0.05)", 0.05), ("far from it (size 5)", 5.0)]:
    random_students = q_star.log() + spread * torch.randn(2000, *s.shape, dtype=torch.float64)
    random_losses = torch.stack(
        [klloss.klloss_v2(**{**args, "input": student_r}) for student_r in random_students]
    )
    assert (random_losses > best).all()
    print(f"loss at q* = {best.item():.6f}; best of 2000 students {name} = {random_losses.min().item():.6f}")

# %% [markdown] id="exercise-3-prove-with"
# **Exercise 3 · How far below zero can $L_{\min}$ go?** §5 showed $L_{\min} \le 0$. For a row whose weights are all $\ge 0$, show the lower bound $L_{\min} \ge -W \log(w_{\max}/W)$, with $w_{\max} = \max_c w_c$, and check it on random teachers: draw 1000 and keep those whose weights are all $\ge 0$ (the cell prints how many). (Hint: the identity of §6 at $q = p$.)

# %% [markdown] id="solution-strictly-convex-jensen" tags=["solution"]
# **Solution 3.** At $q = p$ the loss is 0, so the identity of §6 gives $L_{\min} = -W\,\mathrm{KL}(q^*\|p)$. With $q^*_c/p_c = w_c/W$, $\mathrm{KL}(q^*\|p) = \sum_c q^*_c \log(w_c/W) \le \log(w_{\max}/W)$, an average of logarithms being at most the largest (a class with $w_c = 0$ has $q^*_c = 0$ and adds nothing). Multiplying by $-W < 0$ turns it round: $L_{\min} \ge -W\log(w_{\max}/W)$. The bound is 0, and tight, when all weights are equal.

# %% tags=["solution"]
teachers = 3 * torch.randn(1000, 5, dtype=torch.float64)
teacher_labels = torch.randint(0, 5, (1000,))
w_t = klloss.weight(klloss.margin(teachers, teacher_labels), beta, k)
nonnegative = (w_t >= 0).all(1)
teachers, teacher_labels, w_t = teachers[nonnegative], teacher_labels[nonnegative], w_t[nonnegative]
l_min = analysis.reweighted_kd(teachers, teachers, teachers, teacher_labels, beta).min_loss
big_w = (w_t * teachers.softmax(1)).sum(1)  # W = sum_c w_c p_c
lower = -big_w * (w_t.max(1).values / big_w).log()  # -W log(w_max / W)
assert (lower <= l_min + 1e-12).all() and (l_min <= 0).all()
assert 0 < len(l_min) <= len(nonnegative)
print(
    f"{len(l_min)} of the {len(nonnegative)} random teachers drawn have every w >= 0 (the others are dropped);"
    " on each, -W log(w_max / W) <= L_min <= 0"
)

# %% [markdown] id="exercise-4-much-confidence"
# **Exercise 4 · How much confidence is lost, at most?** On a sample the teacher classifies correctly, show that
# $$\frac{k}{k + \max_c m_c/\beta} \;\le\; \frac{q^*_y}{p_y} \;\le\; 1,$$
# and check both bounds on the sample and across β.

# %% [markdown] id="solution-average-weights-so" tags=["solution"]
# **Solution 4.** $q^*_y/p_y = k/W$ (§4) and $W = \sum_c p_c w_c$ is an average of the weights, so $k = \min_c w_c \le W \le \max_c w_c = k + \max_c m_c/\beta$ (all $m_c \ge 0$, and the label's $m_y = 0$). Dividing $k$ by these bounds gives the result.

# %% tags=["solution"]
for b in (0.1, beta, 10.0, 100.0):
    ratio_b = analysis.stationary_student(args["logits_t"], z, y, b)[rows, y] / p[rows, y]
    lower = k / (k + margins.max(1).values / b)  # k / (k + max_c m_c / beta)
    assert (lower <= ratio_b).all() and (ratio_b <= 1).all()
    print(
        f"beta = {b:>5g}: lower bound {lower.numpy().round(4).tolist()} <= q*_y / p_y = "
        f"{ratio_b.numpy().round(4).tolist()} <= 1"
    )


# %% [markdown] id="exercise-5-dkd-every-beta"
# **Exercise 5 · klloss_v2 in DKD's terms, at every β.** Show the decomposition of §7,
# $$L_i = k\,p_y \log\frac{p_y}{q_y} + (W - k\,p_y)\log\frac{1 - p_y}{1 - q_y} + (1 - p_y)\sum_{c \ne y} w_c\,\hat p_c \log\frac{\hat p_c}{\hat q_c},$$
# check it against `klloss_v2` per sample at several β, and find the β at which its binary part is exactly $k$ times TCKD.

# %% [markdown] id="solution-split-label-rest" tags=["solution"]
# **Solution 5.** Split $L_i = \sum_c w_c p_c \log(p_c/q_c)$ into the label's term, $w_y = k$: $k\,p_y\log(p_y/q_y)$, and the rest. For $c \ne y$, $p_c = (1 - p_y)\hat p_c$ and $q_c = (1 - q_y)\hat q_c$, so $\log(p_c/q_c) = \log\frac{1-p_y}{1-q_y} + \log\frac{\hat p_c}{\hat q_c}$. The first piece does not depend on $c$: summed with the weights $w_c p_c$ over $c \ne y$ it gives $(W - k p_y)\log\frac{1-p_y}{1-q_y}$. The second gives $\sum_{c\ne y} w_c (1 - p_y)\hat p_c \log(\hat p_c/\hat q_c)$.
#
# The binary part is $k\,\mathrm{TCKD} = k\,p_y\log\frac{p_y}{q_y} + k(1-p_y)\log\frac{1-p_y}{1-q_y}$ exactly when $W - k p_y = k(1 - p_y)$, that is $W = k$: as β → ∞ (all $w = k$), or on a row whose teacher-weighted mean margin $\mu = \sum_c p_c m_c$ is 0. At every finite β on the sample $\mu > 0$, so $W > k$: the non-target side of the binary part gets the weight $W - k p_y$, more than KD's $k(1 - p_y)$, and the binary part differs from $k\,\mathrm{TCKD}$ by $(W - k)\log\frac{1-p_y}{1-q_y}$ (negative on the sample, where the student gives the label less than the teacher does).


# %% tags=["solution"]
def finite_beta_dkd(b):
    """(binary part, non-target part) of klloss_v2 per sample at beta = b, by the decomposition."""
    w_b = klloss.weight(klloss.margin(z, y), b, k)  # w = m / b + k
    q_s = torch.softmax(s, 1)
    p_y, q_y = p[rows, y], q_s[rows, y]
    big_w_b = (w_b * p).sum(1)  # W = sum_c w_c p_c
    binary = k * p_y * (p_y / q_y).log() + (big_w_b - k * p_y) * ((1 - p_y) / (1 - q_y)).log()
    target = F.one_hot(y, z.shape[1]).bool()
    p_hat = p.masked_fill(target, 0) / (1 - p_y)[:, None]  # p_c / (1 - p_y) for c != y, 0 at y
    q_hat = q_s.masked_fill(target, 0) / (1 - q_y)[:, None]
    ratio = (p_hat / q_hat.masked_fill(target, 1)).masked_fill(target, 1)  # 1 at y: log 1 = 0
    return binary, (1 - p_y) * (w_b * p_hat * ratio.log()).sum(1)


for b in (0.1, beta, 10.0, math.inf):
    binary, rest = finite_beta_dkd(b)
    per_row = klloss.klloss_v2(**{**args, "beta": b}, reduction="none")
    torch.testing.assert_close(binary + rest, per_row, rtol=1e-12, atol=1e-15)
    gap = binary - k * tckd  # binary part minus k TCKD = (W - k) log((1 - p_y) / (1 - q_y))
    big_w_b = (klloss.weight(klloss.margin(z, y), b, k) * p).sum(1)
    torch.testing.assert_close(
        gap, (big_w_b - k) * ((1 - p[rows, y]) / (1 - torch.softmax(s, 1)[rows, y])).log()
    )
    shown = "< 1e-12 in size" if b == math.inf else f"= {gap.numpy().round(6).tolist()}"
    print(f"beta = {b:>4g}: binary + non-target = klloss_v2 per sample (1e-12); binary part - k TCKD {shown}")
assert (finite_beta_dkd(math.inf)[0] - k * tckd).abs().max() < 1e-12  # W = k: the binary part is k TCKD
torch.testing.assert_close(finite_beta_dkd(math.inf)[1], k * (1 - p[rows, y]) * nckd)  # and k (1 - p_y) NCKD

# %% [markdown] id="exercise-6-sharper-softer"
# **Exercise 6 · A sharper or a softer teacher.** *(open-ended)* Multiply the sample teacher's logits by a factor $a > 0$: the same ranking, held with more ($a > 1$) or less ($a < 1$) certainty. At the article's β, how does the optimum's confidence on the label relative to the teacher's, $q^*_y/p_y = k/W$, behave as $a \to 0$ and as $a \to \infty$? Predict first, then compute it for $a$ from 0.001 to 1000. Where does the optimum lose the most confidence, and what does that say about a teacher that is right and almost certain on every training row, as in [notebook 05](05-real-data.ipynb)?

# %% [markdown] id="solution-sharper-softer" tags=["solution"]
# **Solution 6.** $q^*_y/p_y = k/W$ with $W = k + \mu/\beta$ and $\mu = \sum_c p_c m_c$, and scaling the logits by $a$ scales every margin by $a$. As $a \to 0$ the margins vanish and $\mu \to 0$: the ratio tends to 1 (a flat teacher, uniform $p$, equal weights). As $a \to \infty$ the teacher (which ranks the label first on both samples) puts all its mass on the label, whose margin is 0; each other class's $p_c$ falls like $e^{-a m_c}$ while its margin grows only like $a$, so $\mu \to 0$ again, and the ratio tends to 1. In between, $\mu > 0$ and the optimum puts less on the label than the teacher does: the loss of confidence is largest at an intermediate sharpness (printed below), where the teacher is neither flat nor certain. A teacher that is right and almost certain on every row sits at the sharp end: there is almost no mass off the label for the weights to move, so the loss can do little but what KD does. [Notebook 05](05-real-data.ipynb) measures exactly that on real data.

# %% tags=["solution"]
scales = np.logspace(-3, 3, 61)  # a from 0.001 to 1000
label_share = []  # q*_y / p_y per scale, one column per sample
for a_scale in scales:
    sharp = a_scale * z  # the same ranking, held with more or less certainty
    q_sharp = analysis.stationary_student(sharp, sharp, y, beta)
    label_share.append((q_sharp[rows, y] / torch.softmax(sharp, 1)[rows, y]).numpy())
label_share = np.array(label_share)
deepest = scales[label_share.argmin(0)]
for i in range(len(y)):
    print(
        f"sample {i}: q*_y / p_y = {label_share[0, i]:.6f} at a = {scales[0]:g}, "
        f"lowest {label_share[:, i].min():.4f} at a = {deepest[i]:.3g}, {label_share[-1, i]:.6f} at a = {scales[-1]:g}"
    )
assert (z.argmax(1) == y).all()  # the teacher ranks the label first on both samples
assert (label_share <= 1 + 1e-12).all()  # never more than the teacher, at any sharpness
assert (np.abs(label_share[[0, -1]] - 1) < 1e-3).all()  # both ends: q*_y = p_y, to 1e-3
assert (label_share.min(0) < label_share[[0, -1]].min(0) - 0.01).all()  # a dip in between
assert ((scales[0] < deepest) & (deepest < scales[-1])).all()
