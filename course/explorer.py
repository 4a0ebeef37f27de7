r"""An explorable of klloss_v2 that runs in the reader's browser: two sliders (β and the offset k)
and, for the article's sample batch, the weights, the weighted terms, the loss and the student
the loss pulls towards. No kernel and no network: the page carries everything it needs.

How it is built:

* The sliders are native ``<input type="range">`` elements (keyboard-operable, labelled), with
  the ids ``explorer-beta`` and ``explorer-offset``; the loss is written into ``explorer-loss``.
* The numbers are computed in the browser by `Vega <https://vega.github.io/vega/>`_ 6.4.0 (npm
  package ``vega``, pinned in ``tools/site/package-lock.json``), whose minified build
  (``vega/build/vega.min.js``) is embedded in the HTML. Vega is a declarative dataflow: the loss
  below is a list of named transforms (softmax, margin, weight, weighted terms, batch mean),
  each a line of the formula, and Vega re-runs the ones a slider change reaches. It is a third
  implementation of the loss, next to :mod:`klloss.loss` and :mod:`klloss.oracle`;
  ``tests/test_explorer.py`` moves the sliders in Chromium and compares the page with the oracle.
* The output is deterministic: no random ids, no dates. A second run gives the same HTML.

Why Vega and not Plotly, Bokeh or Altair is said in ``notebooks/07-explorer.ipynb``, which
shows the explorer.
"""

import html as _html
import json
import math

import numpy as np

from klloss import ARTICLE_OFFSET, oracle
from klloss.data import Sample

from . import ROOT

VEGA_VERSION = "6.4.0"
"""The Vega release embedded in the page (the version ``tools/site/package-lock.json`` pins)."""
VEGA_PACKAGE = ROOT / "tools" / "site" / "node_modules" / "vega"
VEGA_JS = VEGA_PACKAGE / "build" / "vega.min.js"

# β on a log scale, 0.01 ... 1000: ten steps per decade, the article's 1.5 among them. Written as
# decimal strings, so each β is the double nearest to the number printed beside the slider.
_MANTISSAS = ("1", "1.2", "1.5", "2", "2.5", "3", "4", "5", "6", "8")
BETAS = (*tuple(float(f"{m}e{e}") for e in range(-2, 3) for m in _MANTISSAS), 1000.0)
"""The β values the β slider steps through, smallest first."""
OFFSETS = tuple(float(k) for k in range(17))
"""The offsets k the offset slider steps through: 0, 1, ..., 16."""
WRONG_LABEL = 1
"""The third row relabels sample 0 as this class: its teacher ranks classes 0, 3 and 4 above it."""

_CELL_W, _CELL_H = 54, 34


def _check_sample(sample):
    if not isinstance(sample, Sample):
        raise TypeError(f"sample must be a klloss.data.Sample, got {type(sample).__name__}")
    if sample.input.shape[1] <= WRONG_LABEL:
        raise ValueError(f"sample must have more than {WRONG_LABEL} classes, got {sample.input.shape[1]}")
    if sample.beta not in BETAS:
        raise ValueError(
            f"sample.beta must be one of the β slider's values (course.explorer.BETAS), got {sample.beta}"
        )
    return sample


def rows(sample):
    """The rows the explorer shows: the sample's own (``in_batch`` True; the loss is their mean)
    and one extra row, sample 0 relabelled as :data:`WRONG_LABEL`, whose teacher ranks wrong
    classes above the label (``in_batch`` False). A list of dicts of NumPy arrays and names."""
    sample = _check_sample(sample)
    out = []
    for i, y in enumerate(sample.label):
        out.append(
            {
                "name": f"sample {i} · y = {int(y)}",
                "logits_t": sample.logits_t[i],
                "input": sample.input[i],
                "target": sample.target[i],
                "label": int(y),
                "in_batch": True,
            }
        )
    out.append(
        {
            "name": f"sample 0 relabelled · y = {WRONG_LABEL}",
            "logits_t": sample.logits_t[0],
            "input": sample.input[0],
            "target": sample.target[0],
            "label": WRONG_LABEL,
            "in_batch": False,
        }
    )
    return out


def row_intermediates(row, beta, offset):
    """The oracle's intermediates (float64) for one row of :func:`rows` at ``(beta, offset)``."""
    return oracle.intermediates(
        row["logits_t"][None], row["input"][None], row["target"][None], np.array([row["label"]]), beta, offset
    )


def colour_domains(sample):
    """Half-widths of the two fixed, symmetric colour scales: the largest |w| and the largest
    |w p (log p - log q)| over every row and every slider setting, from the oracle.

    Both are linear in k and in 1/β, so their extremes lie at the corners of the slider ranges.
    """
    corners = [(b, k) for b in (BETAS[0], BETAS[-1]) for k in (OFFSETS[0], OFFSETS[-1])]
    w_max = weighted_max = 0.0
    for row in rows(sample):
        for beta, offset in corners:
            it = row_intermediates(row, beta, offset)
            w_max = max(w_max, float(np.abs(it["weight"]).max()))
            weighted_max = max(weighted_max, float(np.abs(it["weighted"]).max()))
    return {"w": w_max, "weighted": weighted_max}


def _nice_ticks(limit, smallest):
    """Symmetric legend ticks at powers of ten from ``smallest`` up to ``limit``, and 0."""
    powers = [10.0**e for e in range(math.floor(math.log10(smallest)), math.floor(math.log10(limit)) + 1)]
    return [-p for p in reversed(powers)] + [0.0] + powers


def _data_values(sample):
    values = []
    for r, row in enumerate(rows(sample)):
        for c in range(len(row["input"])):
            values.append(
                {
                    "row": r,
                    "row_name": row["name"],
                    "y": row["label"],
                    "cls": c,
                    "in_batch": row["in_batch"],
                    "s": float(row["input"][c]),
                    "z": float(row["target"][c]),
                    "zt": float(row["logits_t"][c]),
                }
            )
    return values


# The loss, as Vega transforms over one datum per (sample i, class c). Each formula is the line of
#   L = (1/N) sum_i sum_c w_ic p_ic (log p_ic - log q_ic),  w = k + m / beta,  m_c = z_y - z_c
# it computes, in the same order as klloss.oracle.intermediates. `beta` and `offset` are signals
# (the sliders): Vega re-runs every transform that reads one when a slider moves.
_LOSS_TRANSFORMS = [
    # z_{y}: the teacher's (margin) logit at the label, carried to every class of the row
    {"type": "formula", "as": "zt_at_label", "expr": "datum.cls === datum.y ? datum.zt : 0"},
    # max_c s_c, max_c z_c (for a stable log-softmax) and z_y
    {
        "type": "joinaggregate",
        "groupby": ["row"],
        "fields": ["s", "z", "zt_at_label"],
        "ops": ["max", "max", "sum"],
        "as": ["s_max", "z_max", "zt_y"],
    },
    # exp(s_c - max s), exp(z_c - max z)
    {"type": "formula", "as": "exp_s", "expr": "exp(datum.s - datum.s_max)"},
    {"type": "formula", "as": "exp_z", "expr": "exp(datum.z - datum.z_max)"},
    {
        "type": "joinaggregate",
        "groupby": ["row"],
        "fields": ["exp_s", "exp_z"],
        "ops": ["sum", "sum"],
        "as": ["sum_exp_s", "sum_exp_z"],
    },
    # log q_c = s_c - max s - log sum_j exp(s_j - max s); log p likewise from z
    {"type": "formula", "as": "log_q", "expr": "datum.s - datum.s_max - log(datum.sum_exp_s)"},
    {"type": "formula", "as": "log_p", "expr": "datum.z - datum.z_max - log(datum.sum_exp_z)"},
    # p_c = exp(log p_c)
    {"type": "formula", "as": "p", "expr": "exp(datum.log_p)"},
    # KL term p_c (log p_c - log q_c)
    {"type": "formula", "as": "kl_term", "expr": "datum.p * (datum.log_p - datum.log_q)"},
    # margin m_c = z_y - z_c
    {"type": "formula", "as": "m", "expr": "datum.zt_y - datum.zt"},
    # weight w_c = k + m_c / beta
    {"type": "formula", "as": "w", "expr": "offset + datum.m / beta"},
    # weighted term w_c p_c (log p_c - log q_c)
    {"type": "formula", "as": "weighted", "expr": "datum.w * datum.kl_term"},
    # w_c p_c, for W = sum_c w_c p_c
    {"type": "formula", "as": "wp", "expr": "datum.w * datum.p"},
    # m_c p_c (log p_c - log q_c), for the margin part M of L = k KL + M / beta
    {"type": "formula", "as": "m_kl_term", "expr": "datum.m * datum.kl_term"},
    # per row: W, L_i = sum_c w_c p_c (log p_c - log q_c), and the smallest weight
    {
        "type": "joinaggregate",
        "groupby": ["row"],
        "fields": ["wp", "weighted", "w"],
        "ops": ["sum", "sum", "min"],
        "as": ["W", "L_i", "w_min"],
    },
    # q*_c = w_c p_c / W, the student that minimises the loss; none if a weight is negative
    {
        "type": "formula",
        "as": "q_star",
        "expr": "datum.w_min >= 0 && datum.W > 0 ? datum.wp / datum.W : null",
    },
]


def spec(sample):
    """The Vega specification (a JSON-ready dict) of the explorer for ``sample``."""
    sample = _check_sample(sample)
    domains = colour_domains(sample)
    names = [row["name"] for row in rows(sample)]
    n_classes = sample.input.shape[1]
    heat_w, heat_h = n_classes * _CELL_W, len(names) * _CELL_H
    bars_w, bars_h = 230, 110
    top = 62
    bars_top = top + heat_h + 95

    def heatmap(name, x, field, colour, fmt, title, extra_marks=(), legend_offset=14):
        return {
            "type": "group",
            "name": name,
            "encode": {
                "enter": {
                    "x": {"value": x},
                    "y": {"value": top},
                    "width": {"value": heat_w},
                    "height": {"value": heat_h},
                }
            },
            "title": {"text": title, "anchor": "start", "fontSize": 13, "offset": 24},
            "axes": [
                {
                    "orient": "left",
                    "scale": "row",
                    "domain": False,
                    "ticks": False,
                    "labelFontSize": 11,
                    "labels": name == "weights_panel",
                },
                {
                    "orient": "top",
                    "scale": "cls",
                    "domain": False,
                    "ticks": False,
                    "labelFontSize": 11,
                    "encode": {"labels": {"update": {"text": {"signal": "'c = ' + datum.value"}}}},
                },
            ],
            "legends": [
                {
                    "fill": colour,
                    "type": "gradient",
                    "direction": "vertical",
                    "gradientLength": heat_h,
                    "labelFontSize": 10,
                    "offset": legend_offset,
                    "values": _nice_ticks(domains[field], 0.1 if field == "weighted" else 10.0),
                    "labelOverlap": False,
                    "encode": {"labels": {"update": {"text": {"signal": "format(datum.value, '~g')"}}}},
                }
            ],
            "marks": [
                {
                    "type": "rect",
                    "from": {"data": "cells"},
                    "encode": {
                        "update": {
                            "x": {"scale": "cls", "field": "cls"},
                            "width": {"scale": "cls", "band": 1},
                            "y": {"scale": "row", "field": "row_name"},
                            "height": {"scale": "row", "band": 1},
                            "fill": {"scale": colour, "field": field},
                            # the label's own class (m = 0, so w = k) outlined
                            "stroke": {"signal": "datum.cls === datum.y ? '#111827' : 'white'"},
                            "strokeWidth": {"signal": "datum.cls === datum.y ? 2 : 1"},
                            "zindex": {"signal": "datum.cls === datum.y ? 1 : 0"},
                        }
                    },
                },
                {
                    "type": "text",
                    "from": {"data": "cells"},
                    "encode": {
                        "update": {
                            "x": {"scale": "cls", "field": "cls", "band": 0.5},
                            "y": {"scale": "row", "field": "row_name", "band": 0.5},
                            "align": {"value": "center"},
                            "baseline": {"value": "middle"},
                            "fontSize": {"value": 11},
                            "text": {"signal": f"format(datum.{field}, '{fmt}')"},
                            "fill": {
                                "signal": f"luminance(scale('{colour}', datum.{field})) < 0.35 ? 'white' : 'black'"
                            },
                        }
                    },
                },
                *extra_marks,
            ],
        }

    per_sample_marks = [
        {
            "type": "text",
            "from": {"data": "per_sample"},
            "encode": {
                "update": {
                    "x": {"value": heat_w + 8},
                    "y": {"scale": "row", "field": "row_name", "band": 0.5},
                    "baseline": {"value": "middle"},
                    "fontSize": {"value": 11},
                    "text": {"signal": "datum.in_batch ? 'Lᵢ = ' + format(datum.L_i, '.3~r') : 'not in L'"},
                    "fill": {"signal": "datum.L_i < 0 && datum.in_batch ? '#b91c1c' : 'black'"},
                }
            },
        },
    ]
    weight_note = {
        "type": "text",
        "encode": {
            "update": {
                "x": {"value": 0},
                "y": {"value": heat_h + 18},
                "fontSize": {"value": 11},
                "fill": {"value": "#374151"},
                "text": {
                    "signal": "'outlined: the label (m = 0, w = k).  w < 0 where a class beats the label by more than kβ = '"
                    " + format(offset * beta, '.3~r')"
                },
            }
        },
    }

    def bars_panel(r, name):
        return {
            "type": "group",
            "name": f"dist_panel_{r}",
            "encode": {
                "enter": {
                    "x": {"value": r * (bars_w + 40)},
                    "y": {"value": bars_top},
                    "width": {"value": bars_w},
                    "height": {"value": bars_h},
                }
            },
            "title": {"text": name, "anchor": "start", "fontSize": 12},
            "axes": [
                {
                    "orient": "left",
                    "scale": "prob",
                    "tickCount": 3,
                    "labelFontSize": 10,
                    "grid": True,
                    "gridOpacity": 0.3,
                },
                {
                    "orient": "bottom",
                    "scale": "bar_cls",
                    "labelFontSize": 10,
                    "encode": {
                        "labels": {
                            "update": {
                                "text": {
                                    "signal": f"datum.value === {rows(sample)[r]['label']} ? datum.value + ' (y)' : datum.value"
                                }
                            }
                        }
                    },
                },
            ],
            "marks": [
                {
                    "type": "rect",
                    "from": {"data": "dists"},
                    "encode": {
                        "update": {
                            "x": {
                                "scale": "bar_cls",
                                "field": "cls",
                                "offset": {"signal": "datum.key === 'q_star' ? bandwidth('bar_cls') / 2 : 0"},
                            },
                            "width": {"signal": "bandwidth('bar_cls') / 2 - 1"},
                            "y": {"scale": "prob", "field": "value"},
                            "y2": {"scale": "prob", "value": 0},
                            "fill": {"scale": "series", "field": "key"},
                            "opacity": {"signal": f"datum.row === {r} ? 1 : 0"},
                        }
                    },
                },
                {
                    "type": "text",
                    "from": {"data": "unbounded"},
                    "encode": {
                        "update": {
                            "x": {"value": 4},
                            "y": {"value": 14},
                            "fontSize": {"value": 11},
                            "fill": {"value": "#b91c1c"},
                            "text": {
                                "signal": f"datum.row === {r} ? 'no q*: a weight is < 0, the loss has no minimum' : ''"
                            },
                        }
                    },
                },
            ],
        }

    return {
        "description": "klloss_v2 explorer: weights, weighted terms, loss and q* as beta and the offset move",
        "background": "white",
        "padding": 10,
        "autosize": "pad",
        "config": {
            # an ASCII minus sign in every number, so the readout parses as a decimal
            "locale": {
                "number": {
                    "decimal": ".",
                    "thousands": ",",
                    "grouping": [3],
                    "currency": ["", ""],
                    "minus": "-",
                }
            },
            "title": {"fontWeight": "normal"},
        },
        "signals": [
            {"name": "betas", "value": list(BETAS)},
            # the slider positions; the page binds them to its two <input type="range"> elements
            {"name": "beta_position", "value": BETAS.index(sample.beta)},
            {"name": "offset_position", "value": ARTICLE_OFFSET},
            {"name": "beta", "update": "betas[toNumber(beta_position)]"},
            {"name": "offset", "update": "toNumber(offset_position)"},
        ],
        "data": [
            {"name": "cells", "values": _data_values(sample), "transform": _LOSS_TRANSFORMS},
            {
                "name": "per_sample",
                "source": "cells",
                "transform": [
                    {
                        "type": "aggregate",
                        "groupby": ["row", "row_name", "in_batch"],
                        "fields": ["weighted", "kl_term", "m_kl_term"],
                        "ops": ["sum", "sum", "sum"],
                        "as": ["L_i", "KL_i", "M_i"],
                    }
                ],
            },
            # L = (1/N) sum_i L_i over the article's batch (the extra row is not part of it), and
            # its two parts L = k KL + M / beta: KL = (1/N) sum_i KL(p_i || q_i), M = (1/N) sum_ic m p log(p/q)
            {
                "name": "loss",
                "source": "per_sample",
                "transform": [
                    {"type": "filter", "expr": "datum.in_batch"},
                    {
                        "type": "aggregate",
                        "fields": ["L_i", "KL_i", "M_i", "L_i"],
                        "ops": ["sum", "sum", "sum", "count"],
                        "as": ["sum_L", "sum_KL", "sum_M", "N"],
                    },
                    {"type": "formula", "as": "loss", "expr": "datum.sum_L / datum.N"},
                    {"type": "formula", "as": "KL", "expr": "datum.sum_KL / datum.N"},
                    {"type": "formula", "as": "M", "expr": "datum.sum_M / datum.N"},
                    # L = 0 at beta = -M / (k KL); below it L < 0 when M < 0 and k > 0
                    {
                        "type": "formula",
                        "as": "beta_zero",
                        "expr": "datum.M < 0 && offset > 0 ? -datum.M / (offset * datum.KL) : null",
                    },
                    {"type": "formula", "as": "text", "expr": "format(datum.loss, '.4r')"},
                    {
                        "type": "formula",
                        "as": "why",
                        "expr": (
                            "'L = k·KL + M/β with KL = ' + format(datum.KL, '.4r') + ', M = ' + format(datum.M, '.4r')"
                            " + (datum.beta_zero == null ? (datum.M < 0 ? ': negative for every β at k = 0' : '')"
                            " : ': negative for β < ' + format(datum.beta_zero, '.3r') + ' at k = ' + offset)"
                        ),
                    },
                ],
            },
            {
                "name": "dists",
                "source": "cells",
                "transform": [
                    {"type": "fold", "fields": ["p", "q_star"]},
                    {"type": "filter", "expr": "datum.value != null"},
                ],
            },
            {
                "name": "unbounded",
                "source": "per_sample",
                "transform": [
                    {"type": "lookup", "from": "cells", "key": "row", "fields": ["row"], "values": ["w_min"]},
                    {"type": "filter", "expr": "datum.w_min < 0"},
                ],
            },
        ],
        "scales": [
            {"name": "cls", "type": "band", "domain": list(range(n_classes)), "range": [0, heat_w]},
            {"name": "row", "type": "band", "domain": names, "range": [0, heat_h]},
            # one fixed colour scale for the weights, whatever the sliders say; symmetric log,
            # because w spans k ... k + max(m)/0.01 while the interesting values are near k
            {
                "name": "w_colour",
                "type": "symlog",
                "constant": 1,
                "domain": [-domains["w"], domains["w"]],
                "range": {"scheme": "redblue"},
                "zero": True,
            },
            {
                "name": "weighted_colour",
                "type": "symlog",
                "constant": 0.01,
                "domain": [-domains["weighted"], domains["weighted"]],
                "range": {"scheme": "redblue"},
            },
            {
                "name": "bar_cls",
                "type": "band",
                "domain": list(range(n_classes)),
                "range": [0, bars_w],
                "padding": 0.2,
            },
            {"name": "prob", "type": "linear", "domain": [0, 1], "range": [bars_h, 0]},
            {"name": "series", "type": "ordinal", "domain": ["p", "q_star"], "range": ["#9ca3af", "#ea580c"]},
        ],
        "legends": [
            {
                "fill": "series",
                "orient": "none",
                "legendX": 0,
                "legendY": bars_top + bars_h + 30,
                "direction": "horizontal",
                "labelFontSize": 11,
                "labelLimit": 400,
                "encode": {
                    "labels": {
                        "update": {
                            "text": {
                                "signal": "datum.value === 'p' ? 'p = softmax(z), the teacher' "
                                ": 'q* = w ⊙ p / W, the student the loss pulls towards'"
                            }
                        }
                    }
                },
            }
        ],
        "marks": [
            heatmap(
                "weights_panel",
                0,
                "w",
                "w_colour",
                ".3~r",
                "weight w = k + m/β (one fixed colour scale)",
                [weight_note],
            ),
            heatmap(
                "weighted_panel",
                heat_w + 110,
                "weighted",
                "weighted_colour",
                ".2~r",
                "weighted terms w·p·(log p − log q)",
                per_sample_marks,
                legend_offset=80,
            ),
            *(bars_panel(r, name) for r, name in enumerate(names)),
        ],
    }


def vega_js():
    """The minified Vega build (text) from the pinned npm package, checked for its version."""
    if not VEGA_JS.is_file():
        raise FileNotFoundError(
            f"{VEGA_JS} is missing: run `npm ci --prefix tools/site` (make nb and make test do)"
        )
    version = json.loads((VEGA_PACKAGE / "package.json").read_text(encoding="utf-8"))["version"]
    if version != VEGA_VERSION:
        raise RuntimeError(
            f"tools/site/node_modules has vega {version}, expected {VEGA_VERSION}: run `npm ci --prefix tools/site`"
        )
    text = VEGA_JS.read_text(encoding="utf-8")
    # inlined in a <script> element: these would end it early or change how it is parsed
    for bad in ("</script", "<!--"):
        if bad in text.lower():
            raise RuntimeError(f"{VEGA_JS} contains {bad!r} and cannot be inlined")
    return text


def spec_json(sample):
    """:func:`spec` as the JSON the page embeds: compact, keys sorted, and safe inside a
    ``<script>`` element (no '<', '>' or '&' left as such)."""
    text = json.dumps(spec(sample), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _number(value):
    return f"{value:g}"


# Loads Vega once per page, privately: the UMD build is given its own `module`/`exports`, so it
# neither needs nor touches a global `define` (require.js) or another copy of Vega on the page.
_LOADER = """(function () {{
if (window.kllossVega && window.kllossVega.version === "{version}") return;
var module = {{exports: {{}}}}, exports = module.exports, define;
{vega}
window.kllossVega = module.exports;
}}).call(window);"""

# Connects the page to the Vega view: binds the two sliders to their signals, and writes the
# β label, the slider's aria-valuetext and the loss readout whenever Vega recomputes.
_GLUE = """(function () {
var root = document.currentScript.closest(".klloss-explorer");
var vega = window.kllossVega;
var spec = JSON.parse(root.querySelector(".klloss-explorer-spec").textContent);
var betaInput = root.querySelector("#explorer-beta"), offsetInput = root.querySelector("#explorer-offset");
var readout = root.querySelector("#explorer-loss");
spec.signals.forEach(function (s) {
  if (s.name === "beta_position") s.bind = {element: betaInput};
  if (s.name === "offset_position") s.bind = {element: offsetInput};
});
var view = new vega.View(vega.parse(spec), {renderer: "svg", container: root.querySelector(".klloss-explorer-view"), hover: false});
root.kllossView = view;  // for the curious, and for tests/test_explorer.py: view.data("cells")
function show() {
  var beta = view.signal("beta"), offset = view.signal("offset"), loss = view.data("loss")[0];
  var betaText = "β = " + beta;
  betaInput.setAttribute("aria-valuetext", betaText);
  root.querySelector(".klloss-explorer-beta-value").textContent = betaText;
  offsetInput.setAttribute("aria-valuetext", "k = " + offset);
  root.querySelector(".klloss-explorer-offset-value").textContent = "k = " + offset;
  readout.textContent = "L = " + loss.text + (loss.loss < 0 ? "  (negative)" : "");
  readout.classList.toggle("negative", loss.loss < 0);
  readout.setAttribute("data-beta", String(beta));
  readout.setAttribute("data-offset", String(offset));
  root.querySelector(".klloss-explorer-why").textContent = loss.why;
}
view.addDataListener("loss", show);
view.runAsync().then(function () {
  show();
  root.querySelector(".klloss-explorer-fallback").hidden = true;
  root.setAttribute("data-ready", "true");
});
})();"""

_STYLE = """<style>
.klloss-explorer { font-family: sans-serif; font-size: 14px; color: #111827; background: white; padding: 6px 0; }
.klloss-explorer-fallback { background: #fef3c7; border: 1px solid #d97706; padding: 6px 10px; }
.klloss-explorer-controls { display: flex; flex-wrap: wrap; gap: 12px 40px; align-items: flex-start; margin: 4px 0 8px 10px; }
.klloss-explorer-control { display: flex; flex-direction: column; width: 340px; }
.klloss-explorer-control input[type=range] { width: 100%; margin: 4px 0 0 0; }
.klloss-explorer-ticks { position: relative; height: 2.6em; font-size: 11px; color: #4b5563; }
.klloss-explorer-ticks span { position: absolute; transform: translateX(-50%); white-space: nowrap; }
.klloss-explorer-ticks span.marked { top: 1.3em; color: #b91c1c; font-weight: bold; }
.klloss-explorer-readout { font-size: 18px; max-width: 300px; }
#explorer-loss { font-variant-numeric: tabular-nums; font-weight: bold; }
#explorer-loss.negative { color: #b91c1c; }
.klloss-explorer-why { font-size: 12px; color: #374151; }
</style>"""


def _ticks(values, labelled, marked, thumb_px=16):
    """Labels under a range slider, each at its step's position (the thumb's centre)."""
    n = len(values) - 1
    spans = []
    for i, value in enumerate(values):
        if value not in labelled and value != marked:
            continue
        fraction = i / n
        left = f"calc({100 * fraction:.4g}% + {(0.5 - fraction) * thumb_px:.4g}px)"
        text = f"▲ {_number(value)} (article)" if value == marked else _number(value)
        css = ' class="marked"' if value == marked else ""
        spans.append(f'<span{css} style="left: {left}">{_html.escape(text)}</span>')
    # spaces between the labels keep them apart where the styles are stripped (untrusted JupyterLab)
    return '<div class="klloss-explorer-ticks" aria-hidden="true">' + " ".join(spans) + "</div>"


def html(sample):
    """The explorer as one self-contained HTML fragment, Vega inlined (notebook 07 prints its size).
    The sliders start at, and mark, the sample's β (one of :data:`BETAS`) and the article's offset.

    Display it in a notebook with ``IPython.display.HTML(course.explorer.html(sample))``.
    """
    sample = _check_sample(sample)
    beta_index = BETAS.index(sample.beta)
    offset_index = OFFSETS.index(ARTICLE_OFFSET)
    beta_label = f"β = {_number(sample.beta)}"
    offset_label = f"k = {_number(ARTICLE_OFFSET)}"
    decades = [b for b in BETAS if math.log10(b).is_integer()]
    parts = [
        '<div class="klloss-explorer">',
        _STYLE,
        '<p class="klloss-explorer-fallback">The explorer needs JavaScript, which is not running here '
        "(in JupyterLab: the notebook is not trusted; run the notebook, or trust it). "
        "The static figure below shows the same.</p>",
        '<div class="klloss-explorer-controls">',
        '<div class="klloss-explorer-control">',
        f'<label for="explorer-beta">margin scale <span class="klloss-explorer-beta-value">{beta_label}</span> '
        "(log scale)</label>",
        f'<input type="range" id="explorer-beta" min="0" max="{len(BETAS) - 1}" step="1" value="{beta_index}" '
        f'list="explorer-beta-marks" aria-valuetext="{beta_label}">',
        f'<datalist id="explorer-beta-marks"><option value="{beta_index}"></option></datalist>',
        _ticks(BETAS, decades, sample.beta),
        "</div>",
        '<div class="klloss-explorer-control">',
        f'<label for="explorer-offset">offset <span class="klloss-explorer-offset-value">{offset_label}</span></label>',
        f'<input type="range" id="explorer-offset" min="{OFFSETS[0]:g}" max="{OFFSETS[-1]:g}" step="1" '
        f'value="{OFFSETS[offset_index]:g}" list="explorer-offset-marks" aria-valuetext="{offset_label}">',
        f'<datalist id="explorer-offset-marks"><option value="{ARTICLE_OFFSET:g}"></option></datalist>',
        _ticks(OFFSETS, (0.0, 4.0, 12.0, 16.0), ARTICLE_OFFSET),
        "</div>",
        '<div class="klloss-explorer-readout">loss on the article\'s batch<br>'
        '<output id="explorer-loss" for="explorer-beta explorer-offset" aria-live="polite">'
        'L = ? (needs JavaScript)</output><br><span class="klloss-explorer-why"></span></div>',
        "</div>",
        '<div class="klloss-explorer-view"></div>',
        f"<script>/* Vega {VEGA_VERSION}, BSD-3-Clause, npm package vega: build/vega.min.js */\n"
        + _LOADER.format(version=VEGA_VERSION, vega=vega_js())
        + "</script>",
        f'<script type="application/json" class="klloss-explorer-spec">{spec_json(sample)}</script>',
        f"<script>{_GLUE}</script>",
        "</div>",
    ]
    return "\n".join(parts)
