r"""An explorable of klloss_v2 that runs in the reader's browser: two sliders (β and the offset k)
and, for the article's sample batch, the weights, the weighted terms, the loss and the student
the loss pulls towards. No kernel and no network: the page carries everything it needs.

How it is built, one file per part:

* :mod:`.data`: what Python computes (the slider values, the rows, the oracle's numbers);
* :mod:`.vega_spec`: the Vega specification. The numbers are computed in the browser by
  `Vega <https://vega.github.io/vega/>`_ 6.4.0 (npm package ``vega``, pinned in
  ``tools/site/package-lock.json``), whose minified build is embedded in the page. Vega is a
  declarative dataflow: the loss is a list of named transforms (softmax, margin, weight, weighted
  terms, batch mean), each a line of the formula, and Vega re-runs the ones a slider change
  reaches. It is a third implementation of the loss, next to :mod:`klloss.loss` and
  :mod:`klloss.oracle`; ``tests/test_explorer.py`` moves the sliders in Chromium and compares
  the page with the oracle;
* :mod:`.page`: the HTML fragment, from ``explorer.html``, ``explorer.css``, ``vega-loader.js``
  and ``explorer.js``. The sliders are native ``<input type="range">`` elements (keyboard-operable,
  labelled), with the ids ``explorer-beta`` and ``explorer-offset``; the loss is written into
  ``explorer-loss``;
* :mod:`.strings`: every word the page shows, one dict per language (English and Chinese);
  :func:`output` shows the article's explorer in a notebook in the reader's language
  (:mod:`course.i18n`), so that the Chinese notebook and page show a Chinese explorer.

The output is deterministic: no random ids, no dates. A second run gives the same HTML. Why Vega
and not Plotly, Bokeh or Altair is said in ``notebooks/07-explorer.ipynb``, which shows it.
"""

from .data import BETAS, OFFSETS, WRONG_LABEL, cells, check_sample, colour_domains, row_intermediates, rows
from .page import VEGA_VERSION, article_html, html, output, spec_json, vega_js
from .strings import LABELS
from .vega_spec import spec

__all__ = [
    "BETAS",
    "LABELS",
    "OFFSETS",
    "VEGA_VERSION",
    "WRONG_LABEL",
    "article_html",
    "cells",
    "check_sample",
    "colour_domains",
    "html",
    "output",
    "row_intermediates",
    "rows",
    "spec",
    "spec_json",
    "vega_js",
]
