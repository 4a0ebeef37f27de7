# %% [markdown] id="title"
# # 00 · Cheat-sheet
#
# *klloss_v2 on one page: the formula, its gradient and optimum, the identity that explains it, its limits in β and k, and its pitfalls, each checked on the article's sample.*
#
# **You will learn:** the facts about klloss_v2 worth keeping at hand, and which notebook explains each.
#
# **You need first:** nothing to follow the page; notebooks [01](01-walkthrough.ipynb) to [04](04-what-it-teaches.ipynb) give the reasons.
#
# Under each block, folded, the code that checks it on the article's sample ($N = 2$, $C = 5$, $\beta = 1.5$, $k = 8$) in float64 against the NumPy oracle `klloss.oracle`, finite differences, or the published code.

# %% id="setup" tags=["hide-input"]
import itertools
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
# ## The loss ([notebook 01](01-walkthrough.ipynb))
#
# $$m_{ic} = z_{iy_i} - z_{ic}, \qquad w_{ic} = \frac{m_{ic}}{\beta} + k, \qquad
#   L = \frac1N\sum_{i=1}^N L_i, \quad L_i = \sum_{c=1}^C w_{ic}\,p_{ic}\log\frac{p_{ic}}{q_{ic}},$$
#
# with $p = \mathrm{softmax}(z)$, $q = \mathrm{softmax}(s)$. β scales the margin; it is not a temperature ($p$ is not softened). The label's weight is $k$; where the teacher ranks the label first, every $m \ge 0$ and every $w \ge k$. In code: `klloss.klloss_v2(logits_t, input, target, label, beta, offset=k)`.

# %% id="loss-code" tags=["hide-input"]
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
# ## Gradient and optimum ([notebook 04](04-what-it-teaches.ipynb))
#
# $$\frac{\partial L}{\partial s_{ic}} = \frac{q_{ic}W_i - w_{ic}\,p_{ic}}{N}, \qquad W_i = \sum_c w_{ic}\,p_{ic}.$$
#
# If every $w \ge 0$, the loss is smallest at $q^* = w \odot p / W$, not at $q = p$: $q^*_c / p_c = w_c / W$. So the optimal student puts **more** mass than the teacher exactly on the classes whose weight exceeds $W$, those whose margin is above the teacher-weighted average margin $\mu = \sum_j p_j m_j$ (not every class the teacher ranks below the label).
#
# **On the label** ($w_y = k$, so $q^*_y / p_y = k / W$) it puts less than the teacher exactly when $\mu > 0$, that is when $z_y > \sum_c p_c z_c$: on every row where the teacher ranks the label first (unless all its logits are equal), but not on every row whose weights are all $\ge 0$. With $z = (0, 1)$, $y = 0$, $\beta = 1.5$ both weights are positive and $q^*_y > p_y$.

# %% id="gradient-optimum-code" tags=["hide-input"]
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
# on the label: less than the teacher exactly when mu = z_y - sum_c p_c z_c > 0
rows = np.arange(n)
mu = (p * margin).sum(axis=1)  # sum_c p_c m_c = z_y - sum_c p_c z_c
assert np.all(mu > 0) and np.all(q_star[rows, y] < p[rows, y])
wrong_row, label0 = torch.tensor([[0.0, 1.0]], dtype=torch.float64), torch.tensor([0])
assert (klloss.weight(klloss.margin(wrong_row, label0), beta, k) > 0).all()
label_ratio = (
    analysis.stationary_student(wrong_row, wrong_row, label0, beta)[0, 0] / wrong_row.softmax(1)[0, 0]
)
assert label_ratio > 1  # every w > 0, yet q*_y > p_y: here mu = -p_1 < 0
random_z = 3 * torch.randn(2000, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
random_y = torch.randint(0, 5, (2000,), generator=torch.Generator().manual_seed(2))
keep = (klloss.weight(klloss.margin(random_z, random_y), beta, k) >= 0).all(1)
random_z, random_y = random_z[keep], random_y[keep]
at_label = torch.arange(len(random_y)), random_y
ratio_y = (
    analysis.stationary_student(random_z, random_z, random_y, beta)[at_label] / random_z.softmax(1)[at_label]
)
mu_random = random_z[at_label] - (random_z.softmax(1) * random_z).sum(1)
assert torch.equal(ratio_y < 1, mu_random > 0)
print("(q W - w p)/N against central differences: max |difference| < 1e-8; zero at q* (< 1e-12);")
print(
    "1000 random students near q* all have a larger loss;",
    f"largest q*/p on the sample: {(q_star / p).max():.4f}",
)
print(
    f"q*_y < p_y exactly where z_y > sum_c p_c z_c: on the sample, and on {int(keep.sum())} random teachers with all w >= 0;"
)
print(f"z = (0, 1), y = 0, beta = {beta:g}: every w > 0 and q*_y / p_y = {label_ratio.item():.4f} > 1")

# %% [markdown] id="identity-behind"
# ## The identity behind it ([notebook 04](04-what-it-teaches.ipynb))
#
# If every $w \ge 0$: $\quad L_i = W_i\,\mathrm{KL}(q^*_i \,\|\, q_i) + L_{\min,i}, \qquad L_{\min,i} = W_i\log W_i - \sum_c p_{ic}\,w_{ic}\log w_{ic} \;\le 0.$
#
# So klloss_v2 is KD towards a re-weighted teacher $q^*$, scaled per sample by $W_i$, plus a constant that is never positive. Against $k$ times KD two things change at once: the target ($q^*_i$ instead of $p_i$) and each row's weight ($W_i$ instead of $k$). In a mix $(1-\alpha)\,\mathrm{CE} + \alpha\,\mathrm{klloss\_v2}/k$ row $i$'s distillation term is in effect weighted by $\alpha W_i / k$: more than $\alpha$ where $\mu_i > 0$ (wherever the teacher ranks the label first, short of a row of ties, and more so the more mass it puts on classes far below the label), less where $\mu_i < 0$ (which needs a wrong teacher; [notebook 05](05-real-data.ipynb) measures both parts).

# %% id="identity-behind-code" tags=["hide-input"]
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
# ## Limits in β and k ([notebook 03](03-beta-and-offset.ipynb))
#
# Exactly, $L = k\,\mathrm{KL}(p\|q) + M/\beta$, where $\mathrm{KL}(p\|q) = \frac1N\sum_i \mathrm{KL}(p_i\|q_i)$ is the batch mean of the per-sample divergences (as `F.kl_div(..., reduction="batchmean")` computes it) and $M = \frac1N\sum_{i,c} m_{ic}\,p_{ic}\log\frac{p_{ic}}{q_{ic}}$. Hence:
#
# - $\beta \to \infty$: every $w \to k$ and $L \to k\,\mathrm{KL}(p\|q)$, plain KD times $k$;
# - $\beta \to 0$: the margin term dominates, $\beta L \to M$ (negative on the sample, so $L \to -\infty$); weights turn negative where $m < -k\beta$;
# - $k \to \infty$: $L / k \to \mathrm{KL}(p\|q)$; $k = 0$: $L = M/\beta$, the label's term has weight 0 and every class ranked above the label a negative weight.

# %% id="limits-k-code" tags=["hide-input"]
parts = analysis.decompose(**args)
kl, big_m = oracle.kl(z, s), parts.margin_term.item()
assert abs(parts.kl.item() - kl) < 1e-12
# KL(p || q) is the batch mean of the per-sample divergences, as F.kl_div's "batchmean"
log_p_t, log_q_t = torch.log_softmax(args["target"], 1), torch.log_softmax(args["input"], 1)
batchmean = torch.nn.functional.kl_div(log_q_t, log_p_t, reduction="batchmean", log_target=True)
assert abs(batchmean.item() - kl) < 1e-12
assert abs((p * (np.log(p) - np.log(q))).sum(axis=1).mean() - kl) < 1e-12
for b in (0.01, beta, 100.0):
    for offset in (0.0, k, 1e3):
        assert math.isclose(oracle_loss(s, b=b, offset=offset), offset * kl + big_m / b, rel_tol=1e-10)
assert abs(oracle_loss(s, b=1e12) - k * kl) < 1e-10 and abs(1e-12 * oracle_loss(s, b=1e-12) - big_m) < 1e-10
assert abs(oracle_loss(s, offset=1e12) / 1e12 - kl) < 1e-10 and big_m < 0
print(
    f"KL(p||q) = {kl:.6f}, M = {big_m:.6f}: L = k KL + M/beta for every beta and k tried, and both limits hold"
)

# %% [markdown] id="relations"
# ## Relations: KD with a temperature, label smoothing, DKD ([notebook 04](04-what-it-teaches.ipynb))
#
# - **Hinton's KD** is $T^2\,\mathrm{KL}(p_T\|q_T)$ with $p_T = \mathrm{softmax}(z/T)$, $q_T = \mathrm{softmax}(s/T)$. The gradient of $\mathrm{KL}(p_T\|q_T)$ in $s$ falls like $1/T^2$; times $T^2$ it tends to a fixed limit, $\big((s - \bar s) - (z - \bar z)\big)/C$ per sample (bars: means over classes), so the term keeps its weight against cross-entropy as $T$ changes. klloss_v2 has no temperature: its β → ∞ limit is $k$ times KD at $T = 1$.
# - **Label smoothing, teacher-shaped.** Where the teacher ranks the label first ($\mu > 0$): $q^* = (1 - \varepsilon)\,p + \varepsilon\,r$ with $r_c = m_c p_c / \mu$ (no mass on the label) and $\varepsilon = \mu / (k\beta + \mu)$, in place of $(1-\varepsilon)\,\mathrm{onehot}(y) + \varepsilon/C$.
#
# **DKD.** With $\hat p_c = p_c/(1-p_y)$ and $\hat q_c = q_c/(1-q_y)$ over the classes $c \ne y$, for every β,
#
# $$L_i = k\,p_y\log\frac{p_y}{q_y} + (W_i - k\,p_y)\log\frac{1-p_y}{1-q_y} + (1-p_y)\sum_{c\ne y} w_c\,\hat p_c\log\frac{\hat p_c}{\hat q_c}.$$
#
# At β = ∞ ($w = k$) that is $k\,\mathrm{TCKD} + k(1-p_y)\,\mathrm{NCKD}$; at finite β the binary part changes too (its non-target side is weighted by $W_i - k p_y$, not $k(1 - p_y)$), and the non-target part is a $w$-weighted sum, no longer a KL divergence.

# %% id="relations-code" tags=["hide-input"]
s_t, z_t = torch.tensor(s), torch.tensor(z)
limit = ((s_t - s_t.mean(1, keepdim=True)) - (z_t - z_t.mean(1, keepdim=True))) / (z.shape[1] * n)
gaps, sizes = [], []
for temperature in (1.0, 4.0, 16.0, 64.0):
    student_t = s_t.clone().requires_grad_(True)
    kd_t = torch.nn.functional.kl_div(
        torch.log_softmax(student_t / temperature, 1),
        torch.log_softmax(z_t / temperature, 1),
        reduction="batchmean",
        log_target=True,
    )
    (grad_t,) = torch.autograd.grad(kd_t, student_t)
    sizes.append(grad_t.norm().item())
    gaps.append(((temperature**2 * grad_t - limit).norm() / limit.norm()).item())
assert sizes[-2] / sizes[-1] > 15.9 and all(a > b for a, b in itertools.pairwise(gaps)) and gaps[-1] < 0.02
# label smoothing form of q*
mu_col = mu[:, None]
r = p * margin / mu_col  # r_c = m_c p_c / mu
epsilon = mu_col / (k * beta + mu_col)  # epsilon = mu / (k beta + mu)
assert np.abs((1 - epsilon) * p + epsilon * r - q_star).max() < 1e-12 and np.all(r[rows, y] == 0)
# the finite-beta DKD decomposition, per sample, against klloss_v2 (and DKD's parts at beta = inf)
other = np.ones_like(p, dtype=bool)
other[rows, y] = False
p_y, q_y = p[rows, y], q[rows, y]
p_hat, q_hat = p * other / (1 - p_y)[:, None], q * other / (1 - q_y)[:, None]
for b in (beta, math.inf):
    w_b = oracle.intermediates(sample.logits_t, s, z, y, b, k)["weight"]
    binary = k * p_y * np.log(p_y / q_y) + ((w_b * p).sum(1) - k * p_y) * np.log((1 - p_y) / (1 - q_y))
    rest = (1 - p_y) * (w_b * p_hat * np.log(np.where(other, p_hat / np.where(other, q_hat, 1), 1))).sum(1)
    per_row = klloss.klloss_v2(**{**args, "beta": b}, reduction="none").numpy()
    assert np.abs(binary + rest - per_row).max() < 1e-12
print(
    f"T^2 KL(p_T || q_T): gradient size falls {sizes[-2] / sizes[-1]:.2f}-fold from T = 16 to 64 (1/T^2),"
    f" T^2 times it within {gaps[-1]:.1%} of its limit at T = 64"
)
print("q* = (1 - eps) p + eps r on the sample, eps =", np.round(epsilon[:, 0], 4).tolist())
print("the DKD decomposition equals klloss_v2 per sample (< 1e-12), at beta = 1.5 and beta = inf")

# %% [markdown] id="pitfalls"
# ## Pitfalls (notebooks [02](02-errata.ipynb), [03](03-beta-and-offset.ipynb), [04](04-what-it-teaches.ipynb))
#
# - **A negative weight makes the loss unbounded below.** Where the teacher ranks a class above the label by more than $k\beta$, its weight is negative, and a student that gives that class ever less mass lowers $L$ without limit. Never on a sample the teacher gets right. Before training, `klloss.negative_weight_share(teacher_logits, labels, beta)` gives the share of rows that have one; [notebook 05](05-real-data.ipynb) shows what it does to training and how to choose β from the teacher's margins.
# - **Labels −1 and −100.** The published code indexes the label's logit with Python indexing: an "ignore" label −1 silently reads class $C-1$, and −100 reads class $C-100$ when $C \ge 100$. `klloss.klloss_v2` raises `ValueError` for −1; −100 is its default `ignore_index` (as in `F.cross_entropy`): that row adds nothing and does not count in the batch mean, and with `ignore_index=None` −100 raises `ValueError` too.
# - **The teacher is not detached** in the published code: gradient flows into `target`, the teacher's logits.
# - **The article's printed numbers.** Only the echoed inputs are right; every number it prints after them is wrong, the loss included ([notebook 02](02-errata.ipynb)).

# %% id="pitfalls-code" tags=["hide-input"]
wrong = np.array([0, 2])  # relabel sample 0 as class 0: the teacher prefers class 3 by 0.5 > k * 0.05
away = np.zeros_like(s)
away[0, 3] = -1.0  # less and less student mass on class 3
assert klloss.weight(klloss.margin(args["logits_t"], torch.tensor(wrong)), 0.05, k)[0, 3] < 0
falls = [oracle_loss(s + t * away, label=wrong, b=0.05) for t in (10, 100, 1000)]
assert falls[0] > falls[1] > falls[2] < -100
share = klloss.negative_weight_share(args["logits_t"], torch.tensor(wrong), 0.05, offset=k).item()
assert share == 0.5 and klloss.negative_weight_share(args["logits_t"], args["label"], beta).item() == 0
print(
    f"negative weight: L = {falls[0]:.1f}, {falls[1]:.1f}, {falls[2]:.1f} as the student moves away from the class;"
    f" negative_weight_share: {share:g} of the rows (0 with the true labels)"
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
