# %% [markdown] id="title"
# # 00 · Cheat-sheet
#
# *klloss_v2 on one page: the formula, its gradient and optimum, the identity that explains it, its limits in β and k, and its pitfalls, each checked on the article's sample.*
#
# **You will learn:** the facts about klloss_v2 worth keeping at hand, and which notebook explains each.
#
# **You need first:** nothing to follow the page; notebooks 01 to 04 give the reasons.
#
# Under each block, folded, the code that checks it on the article's sample ($N = 2$, $C = 5$, $\beta = 1.5$, $k = 8$) in float64 against the NumPy oracle `klloss.oracle`, finite differences, or the published code.

# %% tags=["hide-input"]
import math

import numpy as np
import torch

import klloss
from course import analysis, errata
from klloss import oracle

sample = klloss.data.load_sample()
args = sample.tensors(torch.float64)  # logits_t (z), input (s), target (z), label (y), beta
z, s, y, beta, k = sample.target, sample.input, sample.label, sample.beta, klloss.ARTICLE_OFFSET
teacher = {key: args[key] for key in ("logits_t", "target", "label", "beta")}  # no student
ref = oracle.intermediates(sample.logits_t, s, z, y, beta, k)  # every intermediate, from the formula
p, q, w = ref["target_prob"], np.exp(ref["log_input"]), ref["weight"]
n = len(y)


def oracle_loss(student, label=y, b=beta, offset=k):
    return oracle.klloss_v2(z, student, z, label, b, offset)


# %% [markdown] id="loss"
# ## The loss (notebook 01)
#
# $$m_{ic} = z_{iy_i} - z_{ic}, \qquad w_{ic} = \frac{m_{ic}}{\beta} + k, \qquad
#   L = \frac1N\sum_{i=1}^N L_i, \quad L_i = \sum_{c=1}^C w_{ic}\,p_{ic}\log\frac{p_{ic}}{q_{ic}},$$
#
# with $p = \mathrm{softmax}(z)$, $q = \mathrm{softmax}(s)$. β scales the margin; it is not a temperature ($p$ is not softened). The label's weight is $k$; where the teacher ranks the label first, every $m \ge 0$ and every $w \ge k$. In code: `klloss.klloss_v2(logits_t, input, target, label, beta, offset=k)`.

# %% tags=["hide-input"]
loss = klloss.klloss_v2(**args).item()
assert abs(loss - oracle_loss(s)) < 1e-12
# w = m / beta + k, from klloss's margin and weight, against the oracle
weights = klloss.weight(klloss.margin(args["logits_t"], args["label"]), beta, k).numpy()
assert np.abs(weights - w).max() < 1e-12
assert np.all(w[np.arange(n), y] == k) and np.all(w >= k)  # the teacher ranks the label first on the sample
print(
    f"L = {loss:.6f}; klloss_v2 against the oracle: |difference| < 1e-12; w = k at the labels, w >= k elsewhere"
)

# %% [markdown] id="gradient-optimum"
# ## Gradient and optimum (notebook 04)
#
# $$\frac{\partial L}{\partial s_{ic}} = \frac{q_{ic}W_i - w_{ic}\,p_{ic}}{N}, \qquad W_i = \sum_c w_{ic}\,p_{ic}.$$
#
# If every $w \ge 0$, the loss is smallest at $q^* = w \odot p / W$, not at $q = p$: $q^*_c / p_c = w_c / W$, so the optimal student puts **more** mass than the teacher exactly on the classes whose weight exceeds $W$, those whose margin is above the teacher-weighted average margin $\sum_j p_j m_j$ (not every class the teacher ranks below the label), and less on the label.

# %% tags=["hide-input"]
big_w = (w * p).sum(axis=1, keepdims=True)  # W_i = sum_c w_ic p_ic
formula = (q * big_w - w * p) / n  # (q W - w p) / N
h, numeric = 1e-6, np.zeros_like(s)  # central differences of the oracle
for i, c in np.ndindex(s.shape):
    step = np.zeros_like(s)
    step[i, c] = h
    numeric[i, c] = (oracle_loss(s + step) - oracle_loss(s - step)) / (2 * h)
assert np.abs(formula - numeric).max() < 1e-8
assert np.abs(analysis.grad_student(**args).numpy() - formula).max() < 1e-12
# q* = w p / W: the gradient vanishes there, and no nearby student does better
q_star = analysis.stationary_student(**teacher).numpy()
assert np.abs(q_star - w * p / big_w).max() < 1e-12
assert np.abs((q_star * big_w - w * p) / n).max() < 1e-12
rng = np.random.default_rng(0)
nearby = [oracle_loss(np.log(q_star) + rng.normal(scale=0.3, size=s.shape)) for _ in range(1000)]
assert min(nearby) > oracle_loss(np.log(q_star))
# more mass than the teacher exactly where the margin exceeds the teacher-weighted average margin
margin = ref["margin"]
above_average = margin > (p * margin).sum(axis=1, keepdims=True)
assert np.array_equal(q_star > p, above_average)
assert np.any((margin > 0) & ~(q_star > p))  # a class ranked below the label can still get less
print("(q W - w p)/N against central differences: max |difference| < 1e-8; zero at q* (< 1e-12);")
print(
    "1000 random students near q* all have a larger loss;",
    f"largest q*/p on the sample: {(q_star / p).max():.4f}",
)

# %% [markdown] id="identity-behind"
# ## The identity behind it (notebook 04)
#
# If every $w \ge 0$: $\quad L_i = W_i\,\mathrm{KL}(q^*_i \,\|\, q_i) + L_{\min,i}, \qquad L_{\min,i} = W_i\log W_i - \sum_c p_{ic}\,w_{ic}\log w_{ic} \;\le 0.$
#
# So klloss_v2 is KD towards a re-weighted teacher $q^*$, scaled per sample by $W_i$, plus a constant that is never positive.

# %% tags=["hide-input"]
per_sample = klloss.klloss_v2(**args, reduction="none").numpy()
kl_to_optimum = (q_star * (np.log(q_star) - np.log(q))).sum(axis=1)  # KL(q* || q)
l_min = big_w[:, 0] * np.log(big_w[:, 0]) - (p * w * np.log(w)).sum(axis=1)  # W log W - sum p w log w
right_side = big_w[:, 0] * kl_to_optimum + l_min
assert np.abs(per_sample - right_side).max() < 1e-12
assert np.all(l_min <= 0) and abs(l_min.mean() - analysis.min_loss(**teacher).item()) < 1e-12
# the library's decomposition (course.analysis.reweighted_kd) agrees with this one, built from the oracle
parts = analysis.reweighted_kd(**args)
assert (
    np.abs(parts.min_loss.numpy() - l_min).max() < 1e-12
    and np.abs(parts.kl.numpy() - kl_to_optimum).max() < 1e-12
)
for i in range(n):
    print(
        f"sample {i}: L_i = {per_sample[i]:.6f} = W_i KL(q*||q) + L_min,i = {right_side[i]:.6f}, L_min,i = {l_min[i]:.6f}"
    )

# %% [markdown] id="limits-k"
# ## Limits in β and k (notebook 03)
#
# Exactly, $L = k\,\mathrm{KL}(p\|q) + M/\beta$ with $M = \frac1N\sum_{i,c} m_{ic}\,p_{ic}\log\frac{p_{ic}}{q_{ic}}$. Hence:
#
# - $\beta \to \infty$: every $w \to k$ and $L \to k\,\mathrm{KL}(p\|q)$, plain KD times $k$;
# - $\beta \to 0$: the margin term dominates, $\beta L \to M$ (negative on the sample, so $L \to -\infty$); weights turn negative where $m < -k\beta$;
# - $k \to \infty$: $L / k \to \mathrm{KL}(p\|q)$; $k = 0$: $L = M/\beta$, the label's term has weight 0 and every class ranked above the label a negative weight.

# %% tags=["hide-input"]
parts = analysis.decompose(**args)
kl, big_m = oracle.kl(z, s), parts.margin_term.item()
assert abs(parts.kl.item() - kl) < 1e-12
for b in (0.01, beta, 100.0):
    for offset in (0.0, k, 1e3):
        assert math.isclose(oracle_loss(s, b=b, offset=offset), offset * kl + big_m / b, rel_tol=1e-10)
assert abs(oracle_loss(s, b=1e12) - k * kl) < 1e-10 and abs(1e-12 * oracle_loss(s, b=1e-12) - big_m) < 1e-10
assert abs(oracle_loss(s, offset=1e12) / 1e12 - kl) < 1e-10 and big_m < 0
print(
    f"KL(p||q) = {kl:.6f}, M = {big_m:.6f}: L = k KL + M/beta for every beta and k tried, and both limits hold"
)

# %% [markdown] id="pitfalls"
# ## Pitfalls (notebooks 02, 03, 04)
#
# - **A negative weight makes the loss unbounded below.** Where the teacher ranks a class above the label by more than $k\beta$, its weight is negative, and a student that gives that class ever less mass lowers $L$ without limit. Never on a sample the teacher gets right.
# - **Labels −1 and −100.** The published code indexes the label's logit with Python indexing: an "ignore" label −1 silently reads class $C-1$, and −100 reads class $C-100$ when $C \ge 100$. `klloss.klloss_v2` raises `ValueError` for −1; −100 is its default `ignore_index` (as in `F.cross_entropy`): that row adds nothing and does not count in the batch mean, and with `ignore_index=None` −100 raises `ValueError` too.
# - **The teacher is not detached** in the published code: gradient flows into `target`, the teacher's logits.
# - **The article's printed numbers.** Only the echoed inputs are right; every number it prints after them is wrong, the loss included (notebook 02).

# %% tags=["hide-input"]
wrong = np.array([0, 2])  # relabel sample 0 as class 0: the teacher prefers class 3 by 0.5 > k * 0.05
away = np.zeros_like(s)
away[0, 3] = -1.0  # less and less student mass on class 3
assert klloss.weight(klloss.margin(args["logits_t"], torch.tensor(wrong)), 0.05, k)[0, 3] < 0
falls = [oracle_loss(s + t * away, label=wrong, b=0.05) for t in (10, 100, 1000)]
assert falls[0] > falls[1] > falls[2] < -100
print(
    f"negative weight: L = {falls[0]:.1f}, {falls[1]:.1f}, {falls[2]:.1f} as the student moves away from the class"
)
ignore, last = args["label"].clone(), args["label"].clone()
ignore[0], last[0] = -1, s.shape[1] - 1
assert klloss.klloss_v2_published(**{**args, "label": ignore}) == klloss.klloss_v2_published(
    **{**args, "label": last}
)
try:
    klloss.klloss_v2(**{**args, "label": ignore})
    raise AssertionError("klloss_v2 accepted label -1")
except ValueError:
    print(
        "label -1: the published code reads class C - 1 (and -100 reads class 0 when C = 100); klloss_v2 raises ValueError"
    )
wide = torch.randn(2, 100, dtype=torch.float64, generator=torch.Generator().manual_seed(0))  # C = 100
hundred = klloss.klloss_v2_published(wide, wide.flip(1), wide, torch.tensor([-100, 5]), beta)
assert hundred == klloss.klloss_v2_published(wide, wide.flip(1), wide, torch.tensor([0, 5]), beta)
# klloss_v2 ignores a -100 row: the loss is the other row's alone
ignored = klloss.klloss_v2(wide, wide.flip(1), wide, torch.tensor([-100, 5]), beta)
alone = klloss.klloss_v2(wide[1:], wide.flip(1)[1:], wide[1:], torch.tensor([5]), beta)
assert torch.allclose(ignored, alone, rtol=1e-12, atol=0)
try:
    klloss.klloss_v2(wide, wide.flip(1), wide, torch.tensor([-100, 5]), beta, ignore_index=None)
    raise AssertionError("klloss_v2 accepted label -100 with ignore_index=None")
except ValueError:
    print("label -100: klloss_v2 ignores that row by default; with ignore_index=None it raises ValueError")
student = args["input"].clone().requires_grad_(True)
for loss_fn in (klloss.klloss_v2_published, klloss.klloss_v2):
    target = args["target"].clone().requires_grad_(True)
    loss_fn(**{**args, "input": student, "target": target}).backward()
    assert (target.grad is not None) == (loss_fn is klloss.klloss_v2_published)
    print(f"{loss_fn.__name__}: gradient into the teacher: {target.grad is not None}")
summary = errata.summary()
assert (
    summary["right intermediates"] == 0
    and summary["right"] == summary["printed numbers"] - summary["printed intermediates"]
)
print(
    f"article: {summary['right']} of {summary['printed numbers']} printed numbers right (the inputs), "
    f"0 of {summary['printed intermediates']} computed ones; loss printed {summary['loss printed']}, "
    f"true {summary['loss correct']:.4f}"
)
