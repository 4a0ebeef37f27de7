"""One table of names and symbols, used by the code, the notebooks, the figures and the README.

Each row is (symbol, name in code, shape, meaning). The README and the first notebook render
this table with :func:`as_markdown`, so there is exactly one copy of it.
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
    ("y", "label", "(N,)", "true class of each sample, an integer in [0, C)"),
    ("q", "exp(log_input)", "(N, C)", "student distribution, q = softmax(s)"),
    ("log q", "log_input", "(N, C)", "log-softmax of the student logits"),
    ("log p", "log_target", "(N, C)", "log-softmax of the teacher logits"),
    ("p", "target_prob", "(N, C)", "teacher distribution, p = softmax(z)"),
    ("p (log p - log q)", "output", "(N, C)", "per-class KL terms; they sum over c to KL(p || q)"),
    ("m", "margin", "(N, C)", "teacher margin to the label, m_c = z_y - z_c (0 at the label)"),
    ("beta", "beta", "scalar > 0", "temperature of the margin: larger beta, flatter weights"),
    ("k", "offset", "scalar", "constant added to every weight; the article uses k = 8"),
    ("w", "weight", "(N, C)", "per-class weight, w_c = m_c / beta + k"),
    ("w p (log p - log q)", "weighted", "(N, C)", "weighted per-class KL terms"),
    ("L_i", "per_sample", "(N,)", "per-sample loss, L_i = sum_c w_ic p_ic (log p_ic - log q_ic)"),
    ("L", "loss", "scalar", "the loss, L = (1/N) sum_i L_i (reduction='batchmean')"),
)


def as_markdown():
    """The glossary as a Markdown table (README and ``notebooks/01-walkthrough.ipynb``)."""
    lines = ["| symbol | name in code | shape | meaning |", "|---|---|---|---|"]
    for symbol, name, shape, meaning in GLOSSARY:
        lines.append(f"| {symbol} | `{name}` | {shape} | {meaning} |")
    return "\n".join(lines)
