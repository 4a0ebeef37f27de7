"""Every word the explorer shows, in one dict per language.

The page (:mod:`.page`), the Vega spec (:mod:`.vega_spec`, as the signal ``text``) and the page's
script (``explorer.js``, through that signal) all read their words from here, so a second
language is one more dict with the same keys. ``{name}`` fields are filled with
:meth:`str.format` in Python; the Vega expressions join the pieces with the numbers.
"""

LABELS = {
    "en": {
        # the rows of the heatmaps (course.explorer.rows)
        "row": "sample {i} · y = {y}",
        "row_relabelled": "sample 0 relabelled · y = {y}",
        # the controls, above the chart
        "fallback": (
            "The explorer needs JavaScript, which is not running here (in JupyterLab: the notebook "
            "is not trusted; run the notebook, or trust it). The static figure below shows the same."
        ),
        "beta_control": "margin scale {value} (log scale)",
        "offset_control": "offset {value}",
        "beta_value": "β = ",
        "offset_value": "k = ",
        "article_tick": "▲ {value} (article)",
        "readout": "loss on the article's batch",
        "readout_without_js": "L = ? (needs JavaScript)",
        "loss_value": "L = ",
        "negative": "  (negative)",
        # the chart
        "description": "klloss_v2 explorer: weights, weighted terms, loss and q* as beta and the offset move",
        "weights_title": "weight w = k + m/β (one fixed colour scale)",
        "weighted_title": "weighted terms w·p·(log p − log q)",
        "class_axis": "c = ",
        "per_sample": "Lᵢ = ",
        "not_in_loss": "not in L",
        "weight_note": "outlined: the label (m = 0, w = k).  w < 0 where a class beats the label by more than kβ = ",
        "label_mark": " (y)",
        "no_minimum": "no q*: a weight is < 0, the loss has no minimum",
        "teacher": "p = softmax(z), the teacher",
        "pulled_to": "q* = w ⊙ p / W, the student the loss pulls towards",
        # the line under the loss: L = k KL + M / beta and where it turns negative
        "why_parts": "L = k·KL + M/β with KL = ",
        "why_m": ", M = ",
        "why_never_positive": ": negative for every β at k = 0",
        "why_negative_below": ": negative for β < ",
        "why_at_offset": " at k = ",
        "why_end": "",
    },
    "zh": {
        "row": "样本 {i} · y = {y}",
        "row_relabelled": "样本 0（改了标签）· y = {y}",
        "fallback": (
            "探索器需要 JavaScript，但这里 JavaScript 没有运行（在 JupyterLab 中，原因是笔记本未被信任："
            "请运行或信任这个笔记本）。下方的静态图展示了同样的内容。"
        ),
        "beta_control": "间隔尺度 {value}（对数刻度）",
        "offset_control": "偏移量 {value}",
        "beta_value": "β = ",
        "offset_value": "k = ",
        "article_tick": "▲ {value}（原文）",
        "readout": "原文示例批次上的损失",
        "readout_without_js": "L = ?（需要 JavaScript）",
        "loss_value": "L = ",
        "negative": "（为负）",
        "description": "klloss_v2 探索器：随 β 和偏移量变化的权重、加权 KL 项、损失和 q*",
        "weights_title": "权重 w = k + m/β（色阶固定）",
        "weighted_title": "加权 KL 项 w·p·(log p − log q)",
        "class_axis": "c = ",
        "per_sample": "Lᵢ = ",
        "not_in_loss": "不计入 L",
        "weight_note": "加框的是标签（m = 0，w = k）。某个类别比标签领先超过 kβ 时 w < 0；kβ = ",
        "label_mark": "（y）",
        "no_minimum": "没有 q*：某个权重 < 0，损失没有最小值",
        "teacher": "p = softmax(z)：教师分布",
        "pulled_to": "q* = w ⊙ p / W：损失把学生拉向的分布",
        "why_parts": "L = k·KL + M/β，其中 KL = ",
        "why_m": "，M = ",
        "why_never_positive": "：k = 0 时对每个 β 都为负",
        "why_negative_below": "：β < ",
        "why_at_offset": " 时为负（k = ",
        "why_end": "）",
    },
}
"""{language: {key: text}}; every language has the keys of ``"en"``."""
