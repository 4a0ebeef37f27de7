"""One table of names and symbols, used by the code, the notebooks, the figures, the docs and
both languages of the site.

``GLOSSARY``: one row per symbol, (symbol, name in code, shape, meaning). ``TERMS``: the words
and notations the notebooks use, each defined before it is used, (term, notation, meaning).
``ZH``: the Chinese column, by name in code or term: (Chinese term, meaning in Chinese, the
article's own words for it, the digest of the English meaning translated, see
:func:`course.i18n.digest`; tests/test_translation.py fails when the English meaning changes
and the Chinese does not). ``docs/glossary.md`` and the first notebook render the tables with
:func:`as_markdown`, in English with the Chinese term beside each row, or all in Chinese
(``lang="zh"``) for the Chinese edition, so there is exactly one copy of them.
"""

GLOSSARY = (
    ("N", "N", "", "batch size: number of samples"),
    ("C", "C", "", "number of classes"),
    ("s", "input", "(N, C)", "student logits (the article calls them `input`)"),
    ("z", "logits_t", "(N, C)", "teacher logits used for the margin (the article's `logits_t`)"),
    (
        "z",
        "target",
        "(N, C)",
        "teacher logits turned into the soft target (the article's `target`; "
        "the same tensor as `logits_t` in every use we know of)",
    ),
    (
        "y",
        "label",
        "(N,)",
        "true class of each sample, an integer in [0, C), or ignore_index (−100 by default) for a row to leave out",
    ),
    ("q", "exp(log_input)", "(N, C)", "student distribution, q = softmax(s)"),
    ("log q", "log_input", "(N, C)", "log-softmax of the student logits"),
    ("log p", "log_target", "(N, C)", "log-softmax of the teacher logits"),
    ("p", "target_prob", "(N, C)", "teacher distribution, p = softmax(z)"),
    (
        "p (log p − log q)",
        "output",
        "(N, C)",
        "per-class KL terms; they sum over c to KL(p ‖ q), though a single term is negative where q_c > p_c",
    ),
    ("m", "margin", "(N, C)", "teacher margin to the label, m_c = z_y − z_c (0 at the label)"),
    (
        "β",
        "beta",
        "a positive number (or ∞)",
        "margin scale: the margin is divided by β, so a larger β pulls every weight towards k. "
        "Not a temperature: p = softmax(z) and q = softmax(s) are the same for every β (compare T). "
        "DKD uses the letter β for something else, the weight of its non-target term",
    ),
    ("k", "offset", "scalar", "constant added to every weight; the article uses k = 8"),
    ("w", "weight", "(N, C)", "per-class weight, w_c = m_c / β + k"),
    ("w p (log p − log q)", "weighted", "(N, C)", "weighted per-class KL terms"),
    ("L_i", "per_sample", "(N,)", "per-sample loss, L_i = Σ_c w_ic p_ic (log p_ic − log q_ic)"),
    ("L", "loss", "scalar", "the loss, L = (1/N) Σ_i L_i (reduction='batchmean')"),
    ("W", "(w * p).sum(1)", "(N,)", "the weight averaged under the teacher, W_i = Σ_c w_ic p_ic"),
    (
        "M",
        "decompose(...).margin_term",
        "scalar",
        "margin term, the batch mean of Σ_c m_c p_c (log p_c − log q_c); the loss is L = k KL + M / β (notebook 03)",
    ),
    (
        "q*",
        "stationary_student(...)",
        "(N, C)",
        "the student distribution at which the loss is smallest, q* = w ⊙ p / W; the loss has a "
        "minimum when every weight is > 0 (with a zero weight it is bounded below but q*_c = 0 is "
        "only approached) (notebook 04)",
    ),
    (
        "L_min",
        "min_loss(...)",
        "scalar",
        "the loss at q*: per sample L_min,i = W_i log W_i − Σ_c p_ic w_ic log w_ic; L_min (min_loss) is "
        "their batch mean (notebook 04)",
    ),
    (
        "T",
        "temperature",
        "scalar > 0",
        "temperature of plain KD: p_T = softmax(z / T) and q_T = softmax(s / T); a larger T flattens both "
        "distributions (notebook 05). The article's klloss_v2 has none; margin_kd_loss takes one (our "
        "extension: p and q softened, the margin from the raw logits, the loss times T²)",
    ),
    (
        "α",
        "alpha",
        "scalar in [0, 1]",
        "mixing weight of a training loss, (1 − α) CE + α × distillation term (notebook 05)",
    ),
    ("CE", "F.cross_entropy", "scalar", "cross-entropy with the hard labels, −(1/N) Σ_i log q_i,y_i"),
    (
        "NLL",
        "nll",
        "scalar",
        "negative log-likelihood of the true class on test data: the CE formula used as a metric (notebook 05)",
    ),
    (
        "ECE",
        "ece",
        "scalar",
        "expected calibration error: test samples grouped into equal-width bins of confidence max_c q_c; "
        "the sum over bins of (share of samples in the bin) × |accuracy − mean confidence| in the bin (notebook 05)",
    ),
    (
        "p_true",
        "p_true",
        "scalar",
        "mean probability a model gives the true class on test data, (1/N) Σ_i q_i,y_i (notebook 05)",
    ),
)

TERMS = (
    (
        "logits",
        "s, z",
        "a network's unnormalised scores, one per class; softmax turns them into probabilities",
    ),
    ("softmax", "softmax(x)", "softmax(x)_c = exp(x_c) / Σ_j exp(x_j): positive numbers that sum to 1"),
    (
        "log-sum-exp",
        "lse(x)",
        "lse(x) = log Σ_j exp(x_j), so that log softmax(x)_c = x_c − lse(x); computed "
        "without overflow as max(x) + lse(x − max(x)) (`torch.logsumexp`)",
    ),
    ("KL divergence", "KL(p ‖ q)", "Σ_c p_c (log p_c − log q_c): ≥ 0, and 0 only when q = p"),
    (
        "knowledge distillation, KD",
        "",
        "training a student network on a teacher's class probabilities; "
        "plain KD (Hinton et al., 2015) minimises (1 − α) CE + α T² KL(p_T ‖ q_T)",
    ),
    ("Kronecker delta", "δ_jc", "1 when j = c, 0 otherwise; for example ∂q_c / ∂s_j = q_c (δ_jc − q_j)"),
    ("elementwise product", "w ⊙ p", "(w ⊙ p)_c = w_c p_c, `w * p` in PyTorch"),
    (
        "convexity",
        "",
        "f is convex when f(λx + (1 − λ)x′) ≤ λ f(x) + (1 − λ) f(x′) for every λ in [0, 1]: "
        "the chord lies above the graph. A point where the gradient of a convex f is zero is a global minimum",
    ),
    (
        "ignored row",
        "y_i = ignore_index",
        "a row whose label equals ignore_index (−100 by default), as padding in a batch of sequences: it adds 0 "
        "to the loss and gets a zero gradient; batchmean divides by the N′ rows kept, and with none kept "
        "(or no rows at all) the loss is 0",
    ),
    (
        "masked class",
        "z_c = −∞",
        "a class the teacher rules out, as a language model's padded vocabulary: p_c = 0, and its term adds 0 "
        "to the loss and to the gradient, although its weight is infinite. A student logit of −∞ where the "
        "teacher puts mass makes the loss +∞ (as for KL), with the finite gradient q W − w p",
    ),
    (
        "ruled-out label",
        "z_y = −∞",
        "a teacher that gives the label no probability: every other weight is −∞, the row has no finite loss "
        "(it comes out NaN or −∞: do not train on it). At β = ∞ the labels play no part and the loss is k KL",
    ),
    (
        "Jensen's inequality",
        "",
        "for a convex f and weights λ_c ≥ 0 that sum to 1, f(Σ_c λ_c x_c) ≤ Σ_c λ_c f(x_c); "
        "notebook 04 uses it with f(x) = x log x and λ = p",
    ),
    (
        "p-value",
        "P",
        "the probability, were the null hypothesis true, of a result at least as far from it as the one "
        "observed; a small p-value is evidence against the null hypothesis, not the probability that it is "
        "true. Written P in formulas, since p is the teacher's distribution (notebook 04a)",
    ),
    (
        "paired design",
        "d_i = b_i − a_i",
        "comparing two training losses run on the same seeds through their difference d_i on each seed i: "
        "what a seed does to both runs (initialisation, batch order) cancels, so the interval of the mean "
        "difference is narrower than one from two separate means (notebook 04a)",
    ),
    (
        "confidence interval",
        "[lo, hi]",
        "an interval computed from the data by a rule that covers the true value in the stated share of "
        "repetitions (95%); in notebook 05 it covers the mean difference over seeds, on a fixed split, "
        "teacher and test set, not the sampling of the test set",
    ),
    (
        "Student-t interval",
        "d̄ ± t_{n−1} sd / √n",
        "the confidence interval of the mean of n values, with t_{n−1} the quantile of Student's t "
        "distribution with n − 1 degrees of freedom and sd the values' standard deviation; exact for "
        "normal values, and wider than the normal distribution's interval when n is small "
        "(`course.experiments.paired_test`)",
    ),
    (
        "equivalence test (TOST)",
        "",
        "two one-sided t-tests of whether a mean difference lies within ± Δ: one tests 'mean ≤ −Δ', the "
        "other 'mean ≥ Δ'; equivalence is shown when both are rejected, that is when the larger of their "
        "p-values is below the level: at level 0.05, exactly when the 90% t-interval lies inside ± Δ",
    ),
    (
        "equivalence margin",
        "Δ",
        "the largest difference between two losses that counts as no difference, fixed per metric before "
        "the results are read, in the metric's own units (`course.experiments.MARGINS`; notebook 05 "
        "justifies each)",
    ),
    (
        "Holm's adjustment",
        "",
        "a step-down adjustment of a family of J p-values: the i-th smallest is multiplied by J − i + 1, "
        "made non-decreasing in that order and capped at 1. Rejecting where the adjusted p-value is below "
        "the level keeps the family-wise error rate at that level, and rejects everything Bonferroni's J × "
        "P rejects, and sometimes more (`course.experiments.holm`)",
    ),
    (
        "family-wise error rate, FWER",
        "",
        "the probability that a family of tests rejects at least one null hypothesis that is true: a "
        "verdict of a difference (or of equivalence) where there is none; for J independent tests each at "
        "level 0.05 it is 1 − 0.95^J",
    ),
    (
        "oracle",
        "klloss.oracle",
        "the float64 NumPy reference implementation of the loss, written straight from the formula and "
        "independent of torch; the tests and notebooks check every other form of the loss against it",
    ),
)


# The Chinese column. Each Chinese page uses these terms and none of the variants in AVOID
# (tests/test_translation.py checks). "the article's words": what the post itself calls the
# quantity, quoted verbatim (tests/test_glossary.py finds each in a copy of the post, where one
# is at hand), so that a reader of the post can map it; "" where it has no word of its own.
ZH = {
    "N": ("批大小", "批大小：样本个数", "", "6cfe71d91d7b"),
    "C": ("类别数", "类别的个数", "", "7ed1800f96b4"),
    "input": ("学生 logits", "学生模型的 logits（原文称为 `input`）", "学生模型的logits", "45d5b7595712"),
    "logits_t": (
        "教师 logits（用于间隔）",
        "用来计算间隔的教师 logits（原文的 `logits_t`）",
        "教师模型的logits",
        "4ec98b85277e",
    ),
    "target": (
        "教师 logits（用于软标签）",
        "经 softmax 变成软标签的教师 logits（原文的 `target`；在我们见到的所有用法中，它与 `logits_t` 是同一个张量）",
        "教师模型的目标",
        "a1b7f27b3176",
    ),
    "label": (
        "真实标签",
        "每个样本的真实类别，[0, C) 中的整数；或为 ignore_index（默认 −100），表示不计入该行",
        "真实标签",
        "b5421a3e6049",
    ),
    "exp(log_input)": ("学生分布", "学生分布，q = softmax(s)", "", "17aca080a8f3"),
    "log_input": (
        "学生的 log-softmax",
        "学生 logits 的 log-softmax",
        "学生模型的log_softmax",
        "65a50dd50f0d",
    ),
    "log_target": (
        "教师的 log-softmax",
        "教师 logits 的 log-softmax",
        "教师模型的log_softmax",
        "ccc90f7bc153",
    ),
    "target_prob": ("教师分布（软标签）", "教师分布，p = softmax(z)", "教师模型的softmax", "dadf62cd4724"),
    "output": (
        "逐类 KL 项",
        "逐类的 KL 项；它们对 c 求和得到 KL(p ‖ q)，但在 q_c > p_c 处单个项为负",
        "softmax后的概率差异",
        "038f022be13b",
    ),
    "margin": ("间隔", "教师对标签的间隔，m_c = z_y − z_c（在标签处为 0）", "差异矩阵", "54ab2a0fdfa4"),
    "beta": (
        "间隔尺度",
        "间隔尺度：间隔除以 β，所以 β 越大，每个权重越靠近 k。它不是温度："
        "p = softmax(z) 与 q = softmax(s) 都不随 β 改变（与 T 对比）。DKD 用字母 β 表示另一个量，即其非目标项的权重",
        "调节参数",
        "f5f784ab98e1",
    ),
    "offset": ("偏移量", "加到每个权重上的常数；原文取 k = 8", "偏移", "dfd7de869377"),
    "weight": ("权重", "逐类权重，w_c = m_c / β + k", "缩放和偏移后的矩阵", "a01a4855ad5c"),
    "weighted": ("加权 KL 项", "加权后的逐类 KL 项", "", "3149ffd6db41"),
    "per_sample": (
        "单样本损失",
        "单个样本的损失，L_i = Σ_c w_ic p_ic (log p_ic − log q_ic)",
        "损失总和",
        "75246f23ac0d",
    ),
    "loss": ("损失", "损失，L = (1/N) Σ_i L_i（reduction='batchmean'）", "损失平均", "cce51cd8f05c"),
    "(w * p).sum(1)": ("平均权重", "教师分布下的平均权重，W_i = Σ_c w_ic p_ic", "", "7d54774f64bb"),
    "decompose(...).margin_term": (
        "间隔项",
        "间隔项，Σ_c m_c p_c (log p_c − log q_c) 的批平均；损失为 L = k KL + M / β（笔记本 03）",
        "",
        "8c2049c2c067",
    ),
    "stationary_student(...)": (
        "最优学生分布",
        "使损失最小的学生分布，q* = w ⊙ p / W；每个权重都 > 0 时损失有最小值（有权重为零时损失有下界，"
        "但 q*_c = 0 只能逼近）（笔记本 04）",
        "",
        "385f6057a3c5",
    ),
    "min_loss(...)": (
        "最小损失",
        "q* 处的损失：单样本为 L_min,i = W_i log W_i − Σ_c p_ic w_ic log w_ic；L_min（min_loss）是它们的批平均（笔记本 04）",
        "",
        "99ef5874b863",
    ),
    "temperature": (
        "温度",
        "普通 KD 的温度：p_T = softmax(z / T)，q_T = softmax(s / T)；T 越大，两个分布都越平（笔记本 05）。"
        "原文的 klloss_v2 没有温度；margin_kd_loss 有（我们的扩展：p 和 q 都按温度变平，间隔仍取原始 logits，损失乘以 T²）",
        "",
        "aab586f3e758",
    ),
    "alpha": ("混合系数", "训练损失的混合系数，(1 − α) CE + α × 蒸馏项（笔记本 05）", "", "40ed574f3743"),
    "F.cross_entropy": ("交叉熵", "与硬标签的交叉熵，−(1/N) Σ_i log q_i,y_i", "", "b651195bd710"),
    "nll": (
        "负对数似然",
        "测试数据上真实类别的负对数似然：把 CE 的公式当作指标（笔记本 05）",
        "",
        "7be1805da06f",
    ),
    "ece": (
        "期望校准误差",
        "期望校准误差：把测试样本按置信度 max_c q_c 分入等宽的区间，再对所有区间求"
        "（区间内样本的占比）×|区间内准确率 − 区间内平均置信度| 之和（笔记本 05）",
        "",
        "47ab719df381",
    ),
    "p_true": (
        "真实类别概率",
        "模型在测试数据上给真实类别的平均概率，(1/N) Σ_i q_i,y_i（笔记本 05）",
        "",
        "3ddffacb57a5",
    ),
    # the terms
    "logits": (
        "logits",
        "网络未归一化的得分，每个类别一个；softmax 把它们变成概率",
        "logits",
        "c6e5126281dc",
    ),
    "softmax": (
        "softmax",
        "softmax(x)_c = exp(x_c) / Σ_j exp(x_j)：和为 1 的正数",
        "softmax",
        "45c3d6885be2",
    ),
    "log-sum-exp": (
        "log-sum-exp",
        "lse(x) = log Σ_j exp(x_j)，所以 log softmax(x)_c = x_c − lse(x)；按 max(x) + lse(x − max(x)) "
        "计算，不会溢出（`torch.logsumexp`）",
        "",
        "05e7d899b0c3",
    ),
    "KL divergence": (
        "KL 散度",
        "Σ_c p_c (log p_c − log q_c)：≥ 0，仅当 q = p 时为 0",
        "",
        "d2b06b97fbca",
    ),
    "knowledge distillation, KD": (
        "知识蒸馏（KD）",
        "用教师网络的类别概率训练学生网络；普通 KD（Hinton 等，2015）最小化 (1 − α) CE + α T² KL(p_T ‖ q_T)",
        "",
        "cc285062fc4d",
    ),
    "Kronecker delta": (
        "克罗内克 δ",
        "j = c 时为 1，否则为 0；例如 ∂q_c / ∂s_j = q_c (δ_jc − q_j)",
        "",
        "b98cd38626b8",
    ),
    "elementwise product": ("逐元素乘积", "(w ⊙ p)_c = w_c p_c，即 PyTorch 中的 `w * p`", "", "511385c902e6"),
    "ignored row": (
        "被忽略的行",
        "标签等于 ignore_index（默认 −100）的行，例如一批序列中的填充：它对损失的贡献为 0，梯度为零；批平均除以保留下来的 N′ 行，一行都不保留（或根本没有行）时损失为 0",
        "",
        "14c6ae5dfa0a",
    ),
    "masked class": (
        "被屏蔽的类别",
        "教师排除的类别，例如语言模型中填充出来的词表项：p_c = 0，它的项对损失和梯度的贡献都是 0，尽管它的权重是无穷大。教师有概率质量的地方若学生 logit 为 −∞，损失为 +∞（与 KL 相同），梯度 q W − w p 仍是有限的",
        "",
        "e7e9f8789985",
    ),
    "ruled-out label": (
        "被排除的标签",
        "教师不给标签任何概率：这一行其余每个权重都是 −∞，这一行没有有限的损失（结果为 NaN 或 −∞：不要用它训练）。β = ∞ 时标签不起作用，损失为 k KL",
        "",
        "5e62fb1fed84",
    ),
    "convexity": (
        "凸性",
        "若对 [0, 1] 中的每个 λ 都有 f(λx + (1 − λ)x′) ≤ λ f(x) + (1 − λ) f(x′)，则 f 是凸函数：弦位于函数图像上方。"
        "凸函数梯度为零的点是全局最小点",
        "",
        "68580d99eb3b",
    ),
    "Jensen's inequality": (
        "Jensen 不等式",
        "对凸函数 f 和总和为 1 的权重 λ_c ≥ 0，f(Σ_c λ_c x_c) ≤ Σ_c λ_c f(x_c)；笔记本 04 取 f(x) = x log x、λ = p",
        "",
        "3bc7f63473d7",
    ),
    "p-value": (
        "p 值",
        "若零假设成立，得到至少与观察到的结果一样偏离它的结果的概率；p 值小是反对零假设的证据，而不是零假设成立的概率。p 已表示教师分布，所以公式中把 p 值写作 P（笔记本 04a）",
        "",
        "179e285c710e",
    ),
    "paired design": (
        "配对设计",
        "在相同的种子上运行两个训练损失，通过每个种子 i 上的差 d_i 来比较：种子对两次运行的共同影响（初始化、批的顺序）相互抵消，所以平均差的区间比分别由两个平均值得到的区间窄（笔记本 04a）",
        "",
        "a7b0f452e25e",
    ),
    "confidence interval": (
        "置信区间",
        "由数据按某个规则算出的区间，重复抽样时约 95% 的区间覆盖真值；在笔记本 05 中，它覆盖的是各种子上的平均差，划分、教师和测试集都固定，不包括测试集的抽样",
        "",
        "522413b668be",
    ),
    "Student-t interval": (
        "Student t 置信区间",
        "n 个值的平均值的置信区间，其中 t_{n−1} 是自由度为 n − 1 的 Student t 分布的分位数，sd 是这些值的标准差；值服从正态分布时它是精确的，n "
        "小时比按正态分布算的区间宽（`course.experiments.paired_test`）",
        "",
        "04de82294316",
    ),
    "equivalence test (TOST)": (
        "等价检验（TOST）",
        "双单侧检验：用两个单侧 t 检验判断平均差是否在 ± Δ 之内。一个检验“平均差 ≤ −Δ”，另一个检验“平均差 ≥ Δ”；两个都被拒绝，即两个 p 值中较大的一个低于检验水平时，等价成立。水平为 0.05 "
        "时，这恰好等于 90% t 置信区间落在 ± Δ 之内",
        "",
        "b8fe31762267",
    ),
    "equivalence margin": (
        "等价界值",
        "两个损失之间仍算作没有差别的最大差，看结果前为每个指标事先规定，单位与该指标相同（`course.experiments.MARGINS`；笔记本 05 说明每个界值的理由）",
        "",
        "2b3949cbe0dc",
    ),
    "Holm's adjustment": (
        "Holm 校正",
        "对 J 个 p 值组成的族所做的逐步向下的校正：第 i 小的 p 值乘以 J − i + 1，按这个顺序使之单调不减，并截断在 1。在校正后的 p "
        "值低于检验水平处拒绝，族错误率就保持在该水平之内；凡是 Bonferroni 校正（J × P）拒绝的它都拒绝，有时还拒绝更多（`course.experiments.holm`）",
        "",
        "d732974e5226",
    ),
    "family-wise error rate, FWER": (
        "族错误率（FWER）",
        "一族检验至少拒绝一个成立的零假设的概率，即在实际没有差别（或不等价）的地方给出差别（或等价）的结论；J 个独立检验各在 0.05 的水平下进行时，它等于 1 − 0.95^J",
        "",
        "74cdec7d8186",
    ),
    "oracle": (
        "oracle（参照实现）",
        "损失的 float64 NumPy 参照实现，直接按公式写成，不依赖 torch；测试和笔记本把损失的其他每种实现都与它对照",
        "",
        "709889e4a8c9",
    ),
}

# Variants a Chinese page must not use, each with the term it uses instead: one word per idea. The
# article's own words ("调节参数", "差异矩阵", ...) may appear only quoted, in “...”.
AVOID = {
    "老师": "教师",
    "边距": "间隔",
    "边际": "间隔",
    "裕度": "间隔",
    "差异矩阵": "间隔（原文的说法只在引号中出现）",
    "调节参数": "间隔尺度（原文的说法只在引号中出现）",
    "温度系数": "温度（T）或间隔尺度（β）",
    "偏置": "偏移量",
    "偏移值": "偏移量",
    "软目标": "软标签",
    "逻辑值": "logits",
    "对数几率": "logits",
    "相对熵": "KL 散度",
    "KL 距离": "KL 散度",
    "散失": "KL 散度、损失",
    "权值": "权重",
    "类目": "类别",
    "批量": "批",
    "笔记簿": "笔记本",
    "备忘单": "速查表",
    "小抄": "速查表",
    "琴生": "Jensen 不等式（数学教材的常见译名，不算错，只是本项目不用）",
    "校正误差": "校准误差",
    "最佳学生": "最优学生分布",
    "原文的形式": "原文的实现（published form）",
    "原样回显": "原样打印（echoed inputs：原样打印的输入）",
    "怪异之处": "问题、缺陷（quirks）",
    "教师加权平均": "按教师分布加权的平均（间隔 μ = Σ_j p_j m_j）",
    "词汇表": "术语表",
    "詹森": "Jensen 不等式",
    "来历": "出处信息（provenance）",
    "没有下限": "没有下界（bounded below：有下界）",
    "减权": "调低……的权重（加权只指施加权重）",
    "界限": "等价界值（equivalence margin），简称界值",
    # issue 27: wordings a native teacher read as translation, or as a wrong meaning
    "去除": "除以（“把间隔除以 β”；去除读作“去掉”）",
    "升向": "趋近（熵趋近 log C）",
    "你需要先读": "预备知识（开篇一行写作 **预备知识：**）",
    "打印出的数": "打印的数值",
    "已打印": "见代码输出",
    "最优解": "最优学生分布（q*）",
    "最优的学生": "最优学生分布（q*）",
    "t 区间": "置信区间；需要指明种类时写 t 置信区间",
    "「": "“”（中文引号）",
    "」": "“”（中文引号）",
    # a second native reader's report: one term per idea
    "只用 CE": "只用交叉熵（基线损失的名字；“不用教师”只作白话解释）",
    "只用CE": "只用交叉熵",
    "干净教师": "干净的教师（笔记本 05 定义一次：用真实标签训练的教师）",
    "训练行": "训练样本（“行”只指表格的行）",
    "测试行": "测试样本（“行”只指表格的行）",
}

# Variants that a substring cannot name, as regular expressions, each with the wording to use
# (tests/test_translation.py checks them beside AVOID, in the same prose: code, formulas and
# quotations left out)
AVOID_PATTERNS = {
    r"\bpp\b": "个百分点",
    r"\d\s+%": "95%（数字与 % 之间不空格）",
    r"\d%\s*区间": "95% 置信区间",
    r"最优学生(?!分布)": "最优学生分布（q* 只有这一个名字）",
    r"解答 \d+\.": "解答 N。（全角句号）",
    r"\(开放题\)|(?<![。\uff1f\uff01]\*\*)（开放题）": "**练习 N · 标题。**（开放题）：紧跟加粗标题之后，在加粗之外，不空格",
    r"(?:更高|更低)，在界值之内": "更高，在界值内（与表中的结论同一写法）",
}


def _cell(text):
    """A table cell's text: ``|`` would end the cell (GitHub, JupyterLab, markdown-it), so escape it."""
    return text.replace("|", "\\|")


# the shape column in Chinese, where it has words ("(N, C)" and the like read the same)
SHAPES_ZH = {
    "scalar": "标量",
    "scalar > 0": "标量 > 0",
    "a positive number (or ∞)": "正数（或 ∞）",
    "scalar in [0, 1]": "[0, 1] 中的标量",
}

HEADERS = {
    "en": (("symbol", "name in code", "shape", "meaning", "中文"), ("term", "notation", "meaning", "中文")),
    "zh": (
        ("符号", "代码中的名称", "形状", "中文术语", "含义", "原文的说法"),
        ("英文术语", "记号", "中文术语", "含义", "原文的说法"),
    ),
}


def _rows(lang):
    """The two tables' rows in ``lang``; a row without its Chinese column is an error."""
    missing = [row[1] for row in GLOSSARY if row[1] not in ZH] + [row[0] for row in TERMS if row[0] not in ZH]
    if missing:
        raise KeyError(f"no Chinese column for {missing}: add them to course.glossary.ZH")
    symbols, terms = [], []
    for symbol, name, shape, meaning in GLOSSARY:
        term, meaning_zh, article, _ = ZH[name]
        if lang == "en":
            symbols.append((symbol, f"`{name}`", shape, meaning, term))
        else:
            shape_zh = SHAPES_ZH.get(shape, shape)
            if any("a" <= ch <= "z" for ch in shape_zh):
                raise KeyError(f"no Chinese for the shape {shape!r}: add it to course.glossary.SHAPES_ZH")
            symbols.append((symbol, f"`{name}`", shape_zh, term, meaning_zh, article and f"“{article}”"))
    for term_en, notation, meaning in TERMS:
        term, meaning_zh, article, _ = ZH[term_en]
        if lang == "en":
            terms.append((term_en, notation, meaning, term))
        else:
            terms.append((term_en, notation, term, meaning_zh, article and f"“{article}”"))
    return symbols, terms


def as_markdown(lang="en"):
    """The glossary and the terms as two Markdown tables (``docs/glossary.md`` and ``notebooks/01-walkthrough.ipynb``):
    in English with a Chinese column (``lang="en"``), or in Chinese with the article's own words
    (``lang="zh"``, the Chinese edition).

    Every ``|`` inside a cell is escaped, so a cell's whole text survives rendering
    (``tests/test_glossary.py`` renders the tables and checks each row).
    """
    if lang not in HEADERS:
        raise ValueError(f"lang must be one of {sorted(HEADERS)}, got {lang!r}")
    lines = []
    for header, rows in zip(HEADERS[lang], _rows(lang), strict=True):
        if lines:
            lines.append("")
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_cell(text) for text in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown():
    """The tables as a notebook output, in the reader's language (:mod:`course.i18n`)."""
    from . import i18n

    return i18n.rendered("glossary")
