"""The explorer's Vega specification: the loss as a chain of Vega transforms, and the panels that
show it. Every word comes from the signal ``text`` (:data:`course.explorer.strings.LABELS`)."""

import math

from klloss import ARTICLE_OFFSET

from .data import BETAS, cells, check_sample, colour_domains, rows
from .strings import LABELS

_CELL_W, _CELL_H = 54, 34
_BARS_W, _BARS_H = 230, 110
_TOP = 62

# The loss, as Vega transforms over one datum per (sample i, class c). Each formula is the line of
#   L = (1/N) sum_i sum_c w_ic p_ic (log p_ic - log q_ic),  w = k + m / beta,  m_c = z_y - z_c
# it computes, in the same order as klloss.oracle.intermediates. `beta` and `offset` are signals
# (the sliders): Vega re-runs every transform that reads one when a slider moves.
LOSS_TRANSFORMS = [
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

# L = (1/N) sum_i L_i over the article's batch (the extra row is not part of it), and its two
# parts L = k KL + M / beta: KL = (1/N) sum_i KL(p_i || q_i), M = (1/N) sum_ic m p log(p/q)
BATCH_TRANSFORMS = [
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
            "text.why_parts + format(datum.KL, '.4r') + text.why_m + format(datum.M, '.4r')"
            " + (datum.beta_zero == null ? (datum.M < 0 ? text.why_never_positive : '')"
            " : text.why_negative_below + format(datum.beta_zero, '.3r') + text.why_at_offset + offset"
            " + text.why_end)"
        ),
    },
]


def layout(sample):
    """Sizes and positions (pixels) of the panels, from the numbers of classes and rows."""
    n_rows, n_classes = len(rows(sample)), sample.input.shape[1]
    heat_w, heat_h = n_classes * _CELL_W, n_rows * _CELL_H
    return {"heat_w": heat_w, "heat_h": heat_h, "top": _TOP, "bars_top": _TOP + heat_h + 95}


def nice_ticks(limit, smallest):
    """Symmetric legend ticks at powers of ten from ``smallest`` up to ``limit``, and 0."""
    powers = [10.0**e for e in range(math.floor(math.log10(smallest)), math.floor(math.log10(limit)) + 1)]
    return [-p for p in reversed(powers)] + [0.0] + powers


def _heatmap_guides(name, colour, ticks, size, legend_offset):
    """The row and class axes and the colour legend of one heatmap panel."""
    axes = [
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
            "encode": {"labels": {"update": {"text": {"signal": "text.class_axis + datum.value"}}}},
        },
    ]
    legend = {
        "fill": colour,
        "type": "gradient",
        "direction": "vertical",
        "gradientLength": size["heat_h"],
        "labelFontSize": 10,
        "offset": legend_offset,
        "values": ticks,
        "labelOverlap": False,
        "encode": {"labels": {"update": {"text": {"signal": "format(datum.value, '~g')"}}}},
    }
    return axes, [legend]


def _heatmap_cells(field, colour, fmt):
    """One coloured rectangle per (row, class), the label's class outlined, and its value."""
    label = "datum.cls === datum.y"
    rect = {
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
                "stroke": {"signal": f"{label} ? '#111827' : 'white'"},
                "strokeWidth": {"signal": f"{label} ? 2 : 1"},
                "zindex": {"signal": f"{label} ? 1 : 0"},
            }
        },
    }
    value = {
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
                "fill": {"signal": f"luminance(scale('{colour}', datum.{field})) < 0.35 ? 'white' : 'black'"},
            }
        },
    }
    return [rect, value]


def heatmap(size, name, x, field, colour, fmt, title, ticks, extra_marks=(), legend_offset=14):
    """One heatmap panel: ``field`` of every (row, class) on the colour scale ``colour``."""
    axes, legends = _heatmap_guides(name, colour, ticks, size, legend_offset)
    return {
        "type": "group",
        "name": name,
        "encode": {
            "enter": {
                "x": {"value": x},
                "y": {"value": size["top"]},
                "width": {"value": size["heat_w"]},
                "height": {"value": size["heat_h"]},
            }
        },
        "title": {"text": {"signal": f"text.{title}"}, "anchor": "start", "fontSize": 13, "offset": 24},
        "axes": axes,
        "legends": legends,
        "marks": [*_heatmap_cells(field, colour, fmt), *extra_marks],
    }


def per_sample_marks(size):
    """L_i beside each row of the weighted terms, red when negative; 'not in L' for the extra row."""
    return [
        {
            "type": "text",
            "from": {"data": "per_sample"},
            "encode": {
                "update": {
                    "x": {"value": size["heat_w"] + 8},
                    "y": {"scale": "row", "field": "row_name", "band": 0.5},
                    "baseline": {"value": "middle"},
                    "fontSize": {"value": 11},
                    "text": {
                        "signal": "datum.in_batch ? text.per_sample + format(datum.L_i, '.3~r') : text.not_in_loss"
                    },
                    "fill": {"signal": "datum.L_i < 0 && datum.in_batch ? '#b91c1c' : 'black'"},
                }
            },
        },
    ]


def weight_note(size):
    """The line under the weights: what the outline means, and where a weight turns negative."""
    return {
        "type": "text",
        "encode": {
            "update": {
                "x": {"value": 0},
                "y": {"value": size["heat_h"] + 18},
                "fontSize": {"value": 11},
                "fill": {"value": "#374151"},
                "text": {"signal": "text.weight_note + format(offset * beta, '.3~r')"},
            }
        },
    }


def _bars(r):
    """Row ``r``'s teacher p beside the student q* it is pulled towards, and a note when q* is
    missing (a weight is negative)."""
    bars = {
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
    }
    note = {
        "type": "text",
        "from": {"data": "unbounded"},
        "encode": {
            "update": {
                "x": {"value": 4},
                "y": {"value": 14},
                "fontSize": {"value": 11},
                "fill": {"value": "#b91c1c"},
                "text": {"signal": f"datum.row === {r} ? text.no_minimum : ''"},
            }
        },
    }
    return [bars, note]


def bars_panel(size, r, row):
    """The small bar chart of row ``r`` (one of :func:`course.explorer.rows`)."""
    y_mark = f"datum.value === {row['label']} ? datum.value + text.label_mark : datum.value"
    return {
        "type": "group",
        "name": f"dist_panel_{r}",
        "encode": {
            "enter": {
                "x": {"value": r * (_BARS_W + 40)},
                "y": {"value": size["bars_top"]},
                "width": {"value": _BARS_W},
                "height": {"value": _BARS_H},
            }
        },
        "title": {"text": row["name"], "anchor": "start", "fontSize": 12},
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
                "encode": {"labels": {"update": {"text": {"signal": y_mark}}}},
            },
        ],
        "marks": _bars(r),
    }


def signals(sample, lang):
    """The words, the β values and the two slider positions; β and k follow the sliders."""
    return [
        {"name": "text", "value": LABELS[lang]},
        {"name": "betas", "value": list(BETAS)},
        # the slider positions; the page binds them to its two <input type="range"> elements
        {"name": "beta_position", "value": BETAS.index(sample.beta)},
        {"name": "offset_position", "value": ARTICLE_OFFSET},
        {"name": "beta", "update": "betas[toNumber(beta_position)]"},
        {"name": "offset", "update": "toNumber(offset_position)"},
    ]


def data(sample, lang):
    """The data sets: the cells and the loss transforms, then what the panels read from them."""
    return [
        {"name": "cells", "values": cells(sample, lang), "transform": LOSS_TRANSFORMS},
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
        {"name": "loss", "source": "per_sample", "transform": BATCH_TRANSFORMS},
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
    ]


def scales(sample, size, lang):
    """Classes and rows as bands; one fixed colour scale each for w and the weighted terms."""
    domains = colour_domains(sample)
    n_classes = sample.input.shape[1]
    names = [row["name"] for row in rows(sample, lang)]
    return [
        {"name": "cls", "type": "band", "domain": list(range(n_classes)), "range": [0, size["heat_w"]]},
        {"name": "row", "type": "band", "domain": names, "range": [0, size["heat_h"]]},
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
            "range": [0, _BARS_W],
            "padding": 0.2,
        },
        {"name": "prob", "type": "linear", "domain": [0, 1], "range": [_BARS_H, 0]},
        {"name": "series", "type": "ordinal", "domain": ["p", "q_star"], "range": ["#9ca3af", "#ea580c"]},
    ]


def legends(size):
    """The key to the bars: the teacher p and the student q*."""
    return [
        {
            "fill": "series",
            "orient": "none",
            "legendX": 0,
            "legendY": size["bars_top"] + _BARS_H + 30,
            "direction": "horizontal",
            "labelFontSize": 11,
            "labelLimit": 400,
            "encode": {
                "labels": {
                    "update": {"text": {"signal": "datum.value === 'p' ? text.teacher : text.pulled_to"}}
                }
            },
        }
    ]


def marks(sample, size, lang):
    """The two heatmaps (weights, weighted terms) and one bar chart per row."""
    domains = colour_domains(sample)
    w_ticks = nice_ticks(domains["w"], 10.0)
    weighted_ticks = nice_ticks(domains["weighted"], 0.1)
    weights = heatmap(
        size, "weights_panel", 0, "w", "w_colour", ".3~r", "weights_title", w_ticks, [weight_note(size)]
    )
    weighted = heatmap(
        size,
        "weighted_panel",
        size["heat_w"] + 110,
        "weighted",
        "weighted_colour",
        ".2~r",
        "weighted_title",
        weighted_ticks,
        per_sample_marks(size),
        legend_offset=80,
    )
    return [weights, weighted, *(bars_panel(size, r, row) for r, row in enumerate(rows(sample, lang)))]


def spec(sample, lang="en"):
    """The Vega specification (a JSON-ready dict) of the explorer for ``sample``, its words in
    ``lang`` (a key of :data:`course.explorer.strings.LABELS`)."""
    sample = check_sample(sample)
    if lang not in LABELS:
        raise ValueError(f"lang must be one of {sorted(LABELS)}, got {lang!r}")
    size = layout(sample)
    return {
        "description": LABELS[lang]["description"],
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
        "signals": signals(sample, lang),
        "data": data(sample, lang),
        "scales": scales(sample, size, lang),
        "legends": legends(size),
        "marks": marks(sample, size, lang),
    }
