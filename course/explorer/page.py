"""The explorer's page: the HTML fragment (``explorer.html``) with its style (``explorer.css``),
Vega inlined (``vega-loader.js``), the spec (:mod:`.vega_spec`) and its script (``explorer.js``)."""

import html as _html
import json
import math
from pathlib import Path
from string import Template

import klloss
from klloss import ARTICLE_OFFSET

from .. import ROOT
from .data import BETAS, OFFSETS, check_sample
from .strings import LABELS
from .vega_spec import spec

HERE = Path(__file__).resolve().parent
VEGA_VERSION = "6.4.0"
"""The Vega release embedded in the page (the version ``tools/site/package-lock.json`` pins)."""
VEGA_PACKAGE = ROOT / "tools" / "site" / "node_modules" / "vega"
VEGA_JS = VEGA_PACKAGE / "build" / "vega.min.js"


def _read(name):
    return (HERE / name).read_text(encoding="utf-8")


def vega_js():
    """The minified Vega build (text) from the pinned npm package, checked for its version."""
    if not VEGA_JS.is_file():
        raise FileNotFoundError(
            f"{VEGA_JS} is missing: run `npm ci --prefix tools/site` (make lab, make nb and make test do)"
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


def spec_json(sample, lang="en"):
    """:func:`~course.explorer.vega_spec.spec` as the JSON the page embeds: compact, keys sorted, and
    safe inside a ``<script>`` element (no '<', '>' or '&' left as such)."""
    text = json.dumps(spec(sample, lang), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _number(value):
    return f"{value:g}"


def _ticks(values, labelled, marked, article, thumb_px=16):
    """Labels under a range slider, each at its step's position (the thumb's centre)."""
    n = len(values) - 1
    spans = []
    for i, value in enumerate(values):
        if value not in labelled and value != marked:
            continue
        fraction = i / n
        left = f"calc({100 * fraction:.4g}% + {(0.5 - fraction) * thumb_px:.4g}px)"
        text = article.format(value=_number(value)) if value == marked else _number(value)
        css = ' class="marked"' if value == marked else ""
        spans.append(f'<span{css} style="left: {left}">{_html.escape(text)}</span>')
    # spaces between the labels keep them apart where the styles are stripped (untrusted JupyterLab)
    return '<div class="klloss-explorer-ticks" aria-hidden="true">' + " ".join(spans) + "</div>"


def _controls(sample, text):
    """The template's fields for the two sliders and the readout, in the words of ``text``."""
    beta_value = text["beta_value"] + _number(sample.beta)
    offset_value = text["offset_value"] + _number(ARTICLE_OFFSET)
    decades = [b for b in BETAS if math.log10(b).is_integer()]

    def control(key, cls, value):
        span = f'<span class="klloss-explorer-{cls}-value">{_html.escape(value)}</span>'
        return _html.escape(text[key]).format(value=span)

    return {
        "fallback": _html.escape(text["fallback"]),
        "beta_control": control("beta_control", "beta", beta_value),
        "beta_max": len(BETAS) - 1,
        "beta_index": BETAS.index(sample.beta),
        "beta_value": _html.escape(beta_value),
        "beta_ticks": _ticks(BETAS, decades, sample.beta, text["article_tick"]),
        "offset_control": control("offset_control", "offset", offset_value),
        "offset_min": _number(OFFSETS[0]),
        "offset_max": _number(OFFSETS[-1]),
        "offset": _number(OFFSETS[OFFSETS.index(ARTICLE_OFFSET)]),
        "offset_value": _html.escape(offset_value),
        "offset_ticks": _ticks(OFFSETS, (0.0, 4.0, 12.0, 16.0), ARTICLE_OFFSET, text["article_tick"]),
        "readout": _html.escape(text["readout"]),
        "readout_without_js": _html.escape(text["readout_without_js"]),
    }


def html(sample, lang="en"):
    """The explorer as one self-contained HTML fragment, Vega inlined (notebook 07 prints its size).
    The sliders start at, and mark, the sample's β (one of :data:`BETAS`) and the article's offset.

    Display it in a notebook with ``IPython.display.HTML(course.explorer.html(sample))``.
    """
    sample = check_sample(sample)
    if lang not in LABELS:
        raise ValueError(f"lang must be one of {sorted(LABELS)}, got {lang!r}")
    loader = Template(_read("vega-loader.js")).substitute(version=VEGA_VERSION, vega=vega_js())
    return Template(_read("explorer.html")).substitute(
        lang=lang,
        css=_read("explorer.css"),
        **_controls(sample, LABELS[lang]),
        vega_version=VEGA_VERSION,
        loader=loader,
        spec=spec_json(sample, lang),
        script=_read("explorer.js"),
    )


def article_html(lang="en"):
    """:func:`html` of the article's sample in ``lang`` (notebook 07's explorer, both editions)."""
    return html(klloss.data.load_sample(), lang)


def output():
    """The article's explorer as a notebook output in the reader's language: its metadata names
    the renderer, so that the Chinese edition (tools/translate.py) writes it again in Chinese."""
    from .. import i18n

    return i18n.rendered("explorer")
