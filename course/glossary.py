"""One table of names and symbols, used by the code, the notebooks, the figures and the README.

``GLOSSARY``: one row per symbol, (symbol, name in code, shape, meaning). ``TERMS``: the words
and notations the notebooks use, each defined before it is used, (term, notation, meaning).
The README and the first notebook render both with :func:`as_markdown`, so there is exactly one
copy of them.
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
        "scalar in [2⁻¹²⁶, ∞]",
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
        "distributions (notebook 05). klloss_v2 has no temperature",
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
)


def _cell(text):
    """A table cell's text: ``|`` would end the cell (GitHub, JupyterLab, markdown-it), so escape it."""
    return text.replace("|", "\\|")


def as_markdown():
    """The glossary and the terms as two Markdown tables (README and ``notebooks/01-walkthrough.ipynb``).

    Every ``|`` inside a cell is escaped, so a cell's whole text survives rendering
    (``tests/test_glossary.py`` renders the tables and checks each row).
    """
    lines = ["| symbol | name in code | shape | meaning |", "|---|---|---|---|"]
    for symbol, name, shape, meaning in GLOSSARY:
        lines.append(f"| {_cell(symbol)} | `{name}` | {_cell(shape)} | {_cell(meaning)} |")
    lines += ["", "| term | notation | meaning |", "|---|---|---|"]
    for term, notation, meaning in TERMS:
        lines.append(f"| {_cell(term)} | {_cell(notation)} | {_cell(meaning)} |")
    return "\n".join(lines)
