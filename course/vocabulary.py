"""The words of tables and figures in Chinese: a label's English text, whole, and its Chinese.

The notebooks' DataFrames and figures are rendered in both languages by the kernel that runs
them (:func:`course.i18n.translate_outputs`); every label with an English word in it (a column,
an index, a verdict in a cell, a figure's title, axis label, legend entry or annotation) is looked
up here. A key may hold ``{name}`` fields: ``"class {c}"`` matches ``"class 3"`` and gives
``"类别 3"``, the value carried over as it was printed. A label whose only words are symbols, code
names or units (:data:`KEEP`, anything with ``_`` or ``.`` in it, ``$...$`` math) stays as it is.
A label with English words and no entry is listed in the output's metadata, and
``make zh`` stops, naming it. Terms follow :mod:`course.glossary`.

Chinese figure text is drawn in Noto Sans CJK SC (``make font``), so keep ``$...$`` math out of
a Chinese label that has Chinese characters in it: write the symbols in Unicode (β, ≥, −, ‖).
"""

import re

# words that stay as they are in a Chinese label: symbols' names, proper names, units, code
KEEP = frozenset(
    [
        "KL",
        "KD",
        "DKD",
        "TCKD",
        "NCKD",
        "klloss",
        "softmax",
        "log",
        "exp",
        "sum",
        "max",
        "min",
        "inf",
        "NaN",
        "True",
        "False",
        "GiB",
        "MiB",
        "KiB",
        "UTC",
        "CPU",
        "GPU",
        "cpu",
        "cuda",
        "gpu",
        "AVX2",
        "AVX512",
        "NumPy",
        "PyTorch",
        "torch",
        "python",
        "aten",
        "Holm",
        "Bonferroni",
        "TOST",
        "float32",
        "float64",
        "None",
        "beta",
        "mu",
        "noqa",
        "argmax",
        "logits",
        "bfloat16",
        "float16",
        "ms",
        "us",
        "AMD",
        "EPYC",
        "Intel",
        "Xeon",
        "Processor",
        "GHz",
        "NVIDIA",
        "H100",
        "H200",
        "batchmean",
        "autograd",
        "grad",
        "oracle",
    ]
)
WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")
# code, math, names with _ . / or digits in them (log_input, aten.add, data/bench/x.json, avx2, bd337d3)
CODE = re.compile(r"`[^`]*`|\$[^$]*\$|[\w./+-]*(?:[_./]|\(\))[\w./+-]*|[\w+-]*\d[\w.+-]*")

ZH = {
    # ---- figures' alt text (course.plotting.describe) ----
    "Figure: ": "图：",
    "; ": "；",
    "{y} against {x}": "{y}随{x}的变化",
    # ---- shared by several notebooks ----
    "class": "类别",
    "class {c}": "类别 {c}",
    "class {c} (label)": "类别 {c}（标签）",
    "sample": "样本",
    "sample {i}": "样本 {i}",
    "teacher": "教师",
    "teacher p": "教师 p",
    "teacher p_y": "教师 p_y",
    "optimum q*": "最优学生分布 q*",
    "optimum q*_y": "最优学生分布 q*_y",
    "loss": "损失",
    "printed": "原文打印",
    "correct": "正确值",
    "right": "正确",
    "all": "合计",
    "step": "步骤",
    "offset": "偏移量",
    "offset k": "偏移量 k",
    "beta = {b}": "β = {b}",
    "margin m = z_y − z_c": "间隔 m = z_y − z_c",
    "teacher margin m_c = z_y − z_c": "教师间隔 m_c = z_y − z_c",
    "weight w": "权重 w",
    "article's β = 1.5": "原文的 β = 1.5",
    "article": "原文",
    # the article's steps keep their names in code (the article's variables)
    "input": "input",
    "target": "target",
    "label": "label",
    "beta": "beta",
    "output": "output",
    "margin": "margin",
    "weight": "weight",
    "weighted": "weighted",
    # ---- 01 ----
    "teacher z (logits_t = target)": "教师 z（logits_t = target）",
    "student s (input)": "学生 s（input）",
    "largest p in the batch": "批中最大的 p",
    "entropy of p, sample 0": "样本 0 的 p 的熵",
    "weights from": "权重下限",
    "weights to": "权重上限",
    "published (article's algorithm)": "原文发布的代码（按原文算法）",
    "klloss_v2 (for training)": "klloss_v2（训练用）",
    "trace(...).loss": "trace(...).loss",
    "oracle (NumPy float64)": "oracle（NumPy float64）",
    "echoed inputs": "原样打印的输入",
    "computed intermediates and loss": "算出的中间量与损失",
    "weight $w = m/\\beta + k$": "权重 w = m/β + k",
    "KL terms $p(\\log p - \\log q)$": "KL 项 p(log p − log q)",
    "weighted terms $w\\,p(\\log p - \\log q)$": "加权项 w·p(log p − log q)",
    "term (one scale for both panels)": "项（两幅图同一色标）",
    "outline: the label's cell (margin 0, weight k)": "黑框：标签所在的格（间隔为 0，权重为 k）",
    "blue: negative term, the student gives the class more than the teacher ($q > p$)": (
        "蓝色：负项，学生给该类别的概率多于教师（q > p）"
    ),
    "red: positive term ($q < p$)": "红色：正项（q < p）",
    # ---- 02 ----
    "compared with": "与之比较的正确值",
    "max_abs_error": "最大绝对误差",
    "same step": "同一步骤的正确值",
    "pairs (w, output)": "(w, output) 对",
    "per-class w p (log p - log q)": "逐类的 w p (log p − log q)",
    "broken": "违反的不变量",
    "repeats": "重复了",
    "log-softmax <= 0": "log-softmax ≤ 0",
    "rows log-sum-exp to 0": "每行的 log-sum-exp 为 0",
    "probabilities in [0, 1]": "概率在 [0, 1] 内",
    "rows sum to 1": "每行之和为 1",
    "p = exp(log p)": "p = exp(log p)",
    "m = 0 at the label": "标签处 m = 0",
    "m >= 0 where the teacher is right": "教师判对处 m ≥ 0",
    "different inputs": "输入不同",
    "different rows": "行也不同",
    "one number per sample": "每个样本一个数",
    "entries = printed a * b": "各项 = 原文打印的 a * b",
    "loss = sum / N": "损失 = 总和 / N",
    "output = p (log p - log q)": "output = p (log p − log q)",
    "m = z_y - z": "m = z_y − z",
    "w = m / beta + 8": "w = m / β + 8",
    "{step} as row {r}": "{step}（作为第 {r} 行）",
    "{step}: {check}": "{step}：{check}",
    "checks the printed steps break": "原文打印的步骤违反的检验",
    "no longer broken": "不再违反的检验",
    "decimals": "小数位数",
    "printed {step}": "原文打印的 {step}",
    "{step} row {r}": "{step} 样本 {r}",
    "printed value": "原文打印的值",
    "the printed target_prob and output are the printed log_input; row 1 of the printed log_target is row 0 "
    "of the printed log_input (one colour scale)": (
        "原文打印的 target_prob 和 output 就是原文打印的 log_input；原文打印的 log_target 中样本 1 的那一行，"
        "就是原文打印的 log_input 中样本 0 的那一行（同一色标）"
    ),
    "which printed rows are digit-for-digit copies of an earlier printed row": "哪些打印的行与前面打印的某一行逐位相同",
    "printed earlier": "先打印的",
    "printed later": "后打印的",
    "identical, digit for digit": "逐位相同",
    "different": "不同",
    "output: per-class KL terms": "output：逐类 KL 项",
    "margin m": "间隔 m",
    "'final loss': factors w and\np(log p - log q) of each product": "“最终计算的损失”：每个乘积的因子 w\n与 p(log p − log q)",
    "'loss sum' (printed 2 x 5) vs\nper-class weighted terms w p (log p - log q)": (
        "“损失总和”（打印成 2 × 5）对照\n逐类加权项 w p (log p − log q)"
    ),
    "'loss mean' vs the loss L": "“损失平均”对照损失 L",
    "printed = correct": "打印值 = 正确值",
    "printed against correct: a correct printing lies on the grey diagonal": "打印值对照正确值：打印正确的点落在灰色对角线上",
    # ---- 03 ----
    "rows with a negative weight": "带负权重的样本",
    "k beta by the rule": "按规则取的 kβ",
    "sigma": "σ",
    "relative weight w / k = 1 + m/(kβ)": "相对权重 w / k = 1 + m/(kβ)",
    "w = 2k: the class counts double": "w = 2k：该类别的分量加倍",
    "w = k: the label's weight (plain KL × k)": "w = k：标签的权重（普通 KL × k）",
    "article's β: w = 0 at m = −kβ = −{a}, w = 2k at m = kβ = {b}": "原文的 β：m = −kβ = −{a} 处 w = 0，m = kβ = {b} 处 w = 2k",
    "w = m/β + k, β = 1.5 (the article's k = 8 in crimson, as on the left)": (
        "w = m/β + k，β = 1.5（原文的 k = 8 为深红色，与左图相同）"
    ),
    "weight w (one scale for all panels)": "权重 w（各图同一色标）",
    "the sample's weights w = m/β + k (k = 8) flatten to k as β grows": "样本的权重 w = m/β + k（k = 8）随 β 增大趋于 k",
    "negative weights (k = 8): classes that beat the label by more than kβ": "负权重（k = 8）：比标签高出 kβ 以上的类别",
    "shaded: w < 0 for k = 8 (m < −8β)": "阴影：k = 8 时 w < 0（m < −8β）",
    "m = −kβ for k = 1 and 4 (not shaded)": "k = 1 和 4 时的 m = −kβ（无阴影）",
    "loss against 1/β (k = 8): a straight line": "损失随 1/β 的变化（k = 8）：一条直线",
    "k·KL + M/β: intercept (β = ∞) k·KL = {a}": "k·KL + M/β：截距（β = ∞）k·KL = {a}",
    "slope M = {m}": "斜率 M = {m}",
    "klloss_v2 on the sample": "样本上的 klloss_v2",
    "loss against the offset: straight lines of slope KL": "损失随偏移量的变化：斜率为 KL 的直线",
    # ---- 04 ----
    "closed form": "闭式解",
    "step (symmetric log scale)": "步数（对称对数刻度）",
    "sample {i}: student q during gradient descent": "样本 {i}：梯度下降中的学生分布 q",
    "q* (where descent ends)": "q*（下降的终点）",
    "above: q* gives the class more than the teacher does": "上方：q* 给该类别的概率多于教师",
    "below: less than the teacher": "下方：少于教师",
    "what the loss teaches: q*_c / p_c = w_c / W, a line in the margin (dots: the sample's classes)": (
        "损失教给学生的：q*_c / p_c = w_c / W，是间隔的一次函数（点：样本的各类别）"
    ),
    "q* = p (what plain KD teaches)": "q* = p（普通 KD 教的）",
    "the optimal student's confidence on the label, relative to the teacher's": "最优学生分布在标签上的置信度，相对于教师",
    "q*_y = p_y (plain KL)": "q*_y = p_y（普通 KL）",
    "gradient step": "梯度步数",
    "one negative weight, W = {w} > 0 (convex): the loss falls without limit": "一个负权重，W = {w} > 0（凸）：损失无限下降",
    "|T² grad - limit| / |limit|": "|T² grad − 极限| / |极限|",
    "label smoothing (1-ε) onehot + ε/C": "标签平滑 (1−ε) onehot + ε/C",
    "per extra sample": "每多一个样本",
    "operator": "算子",
    # ---- 04a ----
    "seed": "种子",
    "mean": "均值",
    "sd": "标准差",
    "above": "上方",
    "below": "下方",
    "mean d": "d 的均值",
    "95% low": "95% 下限",
    "95% high": "95% 上限",
    "90% low": "90% 下限",
    "90% high": "90% 上限",
    "p (difference)": "p（差异）",
    "{pair} difference": "{pair} 差异",
    "difference in test accuracy": "测试准确率之差",
    "± Δ, the equivalence margin": "± Δ，等价界值",
    "one seed": "每点一个种子",
    "95% t-interval": "95% t 置信区间",
    "90% t-interval": "90% t 置信区间",
    "B − A unpaired, 95%": "B − A 不配对，95%",
    "correlation over seeds": "种子间的相关系数",
    "unpaired 95% ±": "不配对 95% ±",
    "paired 95% ±": "配对 95% ±",
    "unpaired / paired": "不配对 / 配对",
    "test": "检验",
    "Holm rejects": "Holm 拒绝",
    "Bonferroni rejects": "Bonferroni 拒绝",
    "rank i": "秩 i",
    # ---- 06 ----
    "published": "原文的实现",
    "reference": "参考实现",
    "plain KD": "普通 KD",
    "eager plain KD": "普通 KD（eager）",
    "{name} compiled": "{name}（编译）",
    "compute": "计算",
    "view": "视图",
    "host read": "主机读取",
    "batch size N": "批大小 N",
    "classes C": "类别数 C",
    "{name} (MiB)": "{name}（MiB）",
    "{name} (GiB)": "{name}（GiB）",
    "date": "日期",
    "device": "设备",
    "code measured": "所测代码",
    "(not recorded)": "（未记录）",
    "gpu": "GPU",
    "cpu_model": "CPU 型号",
    "cpu_capability": "CPU 指令集",
    "torch_threads": "torch 线程数",
    "cpu_count": "CPU 核数",
    "(not set)": "（未设置）",
    "current": "当前",
    "stale": "过时",
    "uncommitted": "未提交",
    "≤ {b} of {name}'s": "≤ {name}的 {b} 倍",
    "batch size N (above) and classes C (below)": "批大小 N（上）与类别数 C（下）",
    "time / eager plain KD's": "时间 / 普通 KD（eager）的时间",
    "target: its bar at most this": "目标：柱不高于此线",
    "{path}: measured at {commit}": "{path}：测于 {commit}",
    "klloss/ has changed since only in comments": "此后 klloss/ 只改了注释",
    "klloss/ has not changed since": "此后 klloss/ 没有改动",
    "klloss/ has changed since: it describes earlier code": "此后 klloss/ 有改动：它描述的是较早的代码",
    "{path}: measured on a tree that differed from {commit}: which code, is not recorded": (
        "{path}：所测的代码与 {commit} 不同，具体是什么代码没有记录"
    ),
    "autograd form": "autograd 形式",
    "one (N, V) tensor": "一个 (N, V) 张量",
    "the floor's traffic": "下限的数据量",
    "this design's": "本设计的数据量",
    "untrained student": "未训练的学生",
    "trained student": "训练好的学生",
    "{name}, mean": "{name}，均值",
    "bucket": "桶",
    "renormalize": "重新归一化",
    "full term": "完整项",
    "store, K = {k}": "存储，K = {k}",
    "test accuracy, mean (%)": "测试准确率，均值（%）",
    "minus the full term's, mean (points)": "与完整项之差的均值（百分点）",
    "per seed (test images)": "每个种子（测试图像数）",
    # ---- 07 (the figure under the explorer says what the Chinese prose says) ----
    "sample 0 relabelled · y = {y}": "样本 0（改了标签）· y = {y}",
    "weight w = k + m/β (symmetric log scale)": "权重 w = k + m/β（对称对数刻度）",
    "weights w of the article's two samples and of sample 0 relabelled (third row, not in L); "
    "red titles: the loss on the batch is negative": (
        "原文两个样本的权重 w，以及样本 0 改了标签后的权重（第三行，不属于这个批次，不计入 L）；"
        "标题为红色：批次上的损失为负"
    ),
    "loss L on the sample": "示例批次上的损失 L",
    "L = k·KL + M/β: one straight line per offset": "L = k·KL + M/β：每个偏移量一条直线",
    "L = 0 at β = {b} (k = {k})": "β = {b} 时 L = 0（k = {k}）",
    # ---- 05 (the comparisons' tables and the wrong teachers) ----
    "alpha": "α",
    "baseline": "基线（被减的损失）",
    "metric": "指标",
    "first − second": "前者 − 后者",
    "accuracy": "准确率",
    "test accuracy": "测试准确率",
    "nll": "NLL",
    "ece": "ECE",
    "{name} (nats)": "{name}（nats）",
    "95% CI": "95% 置信区间",
    "seeds above": "差 > 0 的种子数",
    "seeds below": "差 < 0 的种子数",
    "within the margin": "在界值内",
    "{n} paired seeds": "{n} 个配对种子",
    "{metric}: {n} paired seeds": "{metric}：{n} 个配对种子",
    "paired difference in {metric} (pp): first loss minus second": "{metric}的配对差（百分点）：前者减后者",
    "paired difference in {metric} (pp)": "{metric}的配对差（百分点）",
    "± the metric's equivalence margin": "± 该指标的等价界值",
    "mean, 95 % t-interval": "均值与 95% t 置信区间",
    "fits its labels": "与自身训练标签一致",
    "right on true labels": "在真实标签上判对",
    "rows with w < 0": "有 w < 0 的样本占比",
    "labels flipped": "标签翻转比例",
    "flipped": "翻转比例",
    "{p} % flipped": "{p}% 翻转",
    "{p}% flipped": "{p}% 翻转",
    "clean": "干净的教师",
    "CE only": "只用交叉熵",
    "CE only − {other}": "只用交叉熵 − {other}",
    # ---- 05b ----
    "clean teacher": "干净的教师",
    "train rows": "训练样本",
    "test rows": "测试样本",
    "wrong": "错误",
    "rows": "样本集",
    "mean W/k": "W/k 的均值",
    "min W/k": "W/k 的最小值",
    "max W/k": "W/k 的最大值",
    "share with mu < 0": "μ < 0 的占比",
    "mean q*_y / p_y": "q*_y / p_y 的均值",
    "p_y: the teacher's probability on the true label (at T)": "p_y：教师给真实标签的概率（温度 T 下）",
    "W_i / k: the row's weight against KD's (log scale)": "W_i / k：该样本的权重是 KD 的几倍（对数刻度）",
    "teacher right ({n} rows)": "教师判对（{n} 个样本）",
    "teacher wrong ({n} rows)": "教师判错（{n} 个样本）",
    "W/k = 1: the row weighs as in KD": "W/k = 1：该样本的权重与 KD 相同",
    "{setting} (our softened extension)": "{setting}（我们的软化扩展）",
    "teacher on {p} % flipped labels": "用 {p}% 翻转标签训练的教师",
    "ours: {what}": "我们的变体：{what}",
    "klloss_v2 at T = {t}": "T = {t} 下的 klloss_v2",
    "target only": "只用目标",
    "scale only": "只用缩放",
    "target and scale": "两者都用",
    "accuracy std": "准确率标准差",
    "p_true std": "p_true 标准差",
    "mean p(true class), test": "真实类别概率（测试）",
    "test ECE": "测试 ECE",
    "paired difference in test ECE (pp)": "测试 ECE 的配对差（百分点）",
    "training set": "训练集",
    "test set": "测试集",
    "split": "划分",
    "predicted, pure": "纯 klloss 的预测",
    "predicted, mixed": "混合损失的预测",
    "observed": "实测",
    "observed CI": "实测的置信区间",
    "observed / pure": "实测 / 纯 klloss 的预测",
    "observed / mixed": "实测 / 混合损失的预测",
    "{metric}: ours minus KD, T = {t}": "{metric}：我们的 − KD（T = {t}）",
    "OUR EXTENSION (not the article's loss): klloss_v2's weights on p and q softened by T = {t}": (
        "我们的扩展（不是原文的损失）：klloss_v2 的权重作用在按 T = {t} 软化的 p 和 q 上"
    ),
    "{metric}: variant minus KD at its T": "{metric}：变体减去同一 T 下的 KD",
    "OUR ABLATION: the target q* alone, the row weight W/k alone, and both, each minus KD (95 % t-intervals)": (
        "我们的消融：只用目标 q*、只用行权重 W/k、两者都用，各减去 KD（95% t 置信区间）"
    ),
    "verdicts changed": "改变的结论数",
    "margin (pp)": "等价界值（百分点）",
    # ---- 05c ----
    "fits its (flipped) labels": "与自身（翻转后的）训练标签一致",
    "right on true labels (train)": "在真实标签上判对（训练集）",
    "at β = {b}: {share}": "β = {b} 时：{share}",
    "fraction of training rows": "训练样本的占比",
    "rows where some weight is negative (teacher vs true label)": "有负权重的样本（教师对照真实标签）",
    "{p}% of labels flipped": "{p}% 的标签被翻转",
    "epoch": "epoch",
    "mean training loss (symlog)": "平均训练损失（对称对数刻度）",
    "training loss": "训练损失",
    "{setting} (median over seeds)": "{setting}（各种子的中位数）",
    "training labels flipped for the teacher (%)": "教师训练标签的翻转比例（%）",
    "students against KD at T = {t}": "各学生减去 T = {t} 的 KD",
    "{setting}: mean and 95 % t-interval over {n} seeds": "{setting}：{n} 个种子的均值与 95% t 置信区间",
    "{name} (zero difference)": "{name}（差为零）",
    "test NLL in nats (log scale; lower is better)": "测试 NLL，单位 nats（对数刻度；越低越好）",
    "students' test NLL": "各学生的测试 NLL",
    "rows the teacher gets wrong": "教师判错的样本",
    "of them with mu < 0 and every w >= 0": "其中 μ < 0 且每个 w ≥ 0 的",
    "with a negative weight (no q*)": "其中有负权重的（没有 q*）",
    "mean W/k there": "这些样本上 W/k 的均值",
    "mean q*_y / p_y there": "这些样本上 q*_y / p_y 的均值",
    "largest": "最大值",
    "k beta": "kβ",
    "beta at k = 8": "k = 8 时的 β",
    "quantile of the lead": "领先量的分位数",
    "t-test p": "t 检验的 p 值",
    "sign-flip p": "符号翻转检验的 p 值",
    # ---- verdicts and statistics (04a, 05) ----
    "verdict": "结论",
    "higher": "更高",
    "lower": "更低",
    "equivalent": "等价",
    "not settled": "未定",
    "both": "两者皆是",
    "seeds": "种子数",
    "{name} (pp)": "{name}（百分点）",
}


def _pattern(key):
    parts = re.split(r"\{(\w+)\}", key)
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    return re.compile(regex + r"\Z", re.S)


PATTERNS = [(_pattern(key), chinese) for key, chinese in ZH.items() if "{" in key]


def english_words(text):
    """The words of ``text`` that a Chinese reader would need translated: not symbols, code
    names, math or the words of :data:`KEEP`."""
    return [word for word in WORD.findall(CODE.sub(" ", text)) if word not in KEEP and len(word) > 1]


def _split(text, separator):
    """``text`` split at ``separator`` where no bracket is open."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "([{") - (char in ")]}")
        if depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            start = i + len(separator)
    return [*parts, text[start:]]


# a loss's name and its setting, "klloss_v2, beta = 0.5" or "KD, T = 1": written the Chinese way
# ("klloss_v2，β = 0.5", "KD，T = 1") even in a label with no English word in it
SETTINGS = re.compile(r"(, )?\b(beta|β|T) = (?=[\d.∞])")
SETTING_ZH = {"beta": "β", "β": "β", "T": "T"}


def _settings(text):
    """``text`` with each "beta = 0.5" written "β = 0.5", and the comma before a setting
    (", beta = 0.5", ", T = 1") full width."""
    return SETTINGS.sub(lambda m: f"{'，' if m.group(1) else ''}{SETTING_ZH[m.group(2)]} = ", text)


# a list in a label: its items are translated one by one and joined the Chinese way
SEPARATORS = {"; ": "；", ", ": "，"}


def say(text, lang="zh"):
    """``text`` (a label, whole) in ``lang``; None when it has English words and no entry. Tried
    in turn: an entry for the whole text; a list (``; ``, ``, ``) whose items all translate; an
    entry with fields, whose values are translated too."""
    if lang == "en" or not isinstance(text, str):
        return text
    if text in ZH:
        return ZH[text]
    if not english_words(text):
        return _settings(text)
    for separator, chinese in SEPARATORS.items():
        parts = _split(text, separator)
        if len(parts) > 1:
            said = [say(part) for part in parts]
            if None not in said:
                return chinese.join(said)
    for pattern, chinese in PATTERNS:
        match = pattern.match(text)
        if match:
            values = {name: say(value) for name, value in match.groupdict().items()}
            if None not in values.values():
                return chinese.format(**values)
    return None
