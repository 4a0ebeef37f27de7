"""The explorer (``course.explorer``, notebook 07): the loss it computes in the browser is a third
implementation, checked here against the float64 oracle.

The browser tests open the explorer's page of the built site in headless Chromium (Debian's) with
the network cut, as ``tests/test_site.py`` does (its fixtures are reused), move the sliders, and
compare what the page shows with :mod:`klloss.oracle`. For a person to look at, screenshots of
the explorer come from ``python -m tools.explorer_screenshots``.
"""

import dataclasses
import json
import math
import re
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from test_site import _open, browser, editions, site  # noqa: F401 -- the site test's fixtures, shared

import course
import klloss
from course import explorer
from klloss import oracle

ROOT = Path(__file__).resolve().parents[1]
# the explorer's page in each language of the site: the Chinese one shows the Chinese strings
PAGES = {"en": "07-explorer.html", "zh": "zh/07-explorer.html"}

# (beta, k): the article's setting, a negative loss, k = 0, both ends of the beta slider, and a
# setting just above the zero crossing at k = 8 where the loss is small
SETTINGS = [
    (1.5, 8.0),
    (0.5, 8.0),
    (1.5, 0.0),
    (0.01, 16.0),
    (1000.0, 0.0),
    (1000.0, 16.0),
    (0.8, 8.0),
    (0.2, 3.0),
]


def _oracle_loss(sample, beta, offset):
    return oracle.klloss_v2(sample.logits_t, sample.input, sample.target, sample.label, beta, offset=offset)


def test_settings_cover_both_ends_of_the_sliders_and_a_negative_loss(sample):
    losses = {setting: _oracle_loss(sample, *setting) for setting in SETTINGS}
    assert all(beta in explorer.BETAS and k in explorer.OFFSETS for beta, k in SETTINGS)
    assert (sample.beta, klloss.ARTICLE_OFFSET) in losses
    assert any(loss < 0 for loss in losses.values())
    assert {explorer.BETAS[0], explorer.BETAS[-1]} <= {beta for beta, _ in SETTINGS}
    assert {explorer.OFFSETS[0], explorer.OFFSETS[-1]} <= {k for _, k in SETTINGS}


# --- the page's building blocks, no browser -------------------------------------------------


def test_the_beta_slider_steps_finely_on_a_log_scale_through_the_articles_beta(sample):
    steps = np.diff(np.log10(explorer.BETAS))
    assert (steps > 0).all()
    assert steps.max() < 0.13  # at most a factor 1.35 between neighbours
    assert sample.beta in explorer.BETAS
    assert klloss.ARTICLE_OFFSET in explorer.OFFSETS
    # each beta is the double nearest the number printed beside the slider
    assert all(float(f"{beta:g}") == beta for beta in explorer.BETAS)


def test_the_fixed_colour_scales_hold_every_setting(sample):
    domains = explorer.colour_domains(sample)
    w_max = weighted_max = 0.0
    for row in explorer.rows(sample):
        for beta in explorer.BETAS:
            for offset in explorer.OFFSETS:
                it = explorer.row_intermediates(row, beta, offset)
                w_max = max(w_max, np.abs(it["weight"]).max())
                weighted_max = max(weighted_max, np.abs(it["weighted"]).max())
    assert math.isclose(domains["w"], w_max)
    assert math.isclose(domains["weighted"], weighted_max)


def test_the_extra_row_has_a_teacher_that_ranks_wrong_classes_above_the_label(sample):
    *batch, wrong = explorer.rows(sample)
    assert [row["in_batch"] for row in batch] == [True] * len(sample.label)
    assert not wrong["in_batch"]
    assert wrong["label"] == explorer.WRONG_LABEL
    assert np.argmax(wrong["logits_t"]) != wrong["label"]
    m = wrong["logits_t"][wrong["label"]] - wrong["logits_t"]
    # a weight turns negative somewhere on the sliders: m < -k beta for the smallest k beta
    assert m.min() < -explorer.OFFSETS[0] * explorer.BETAS[0]


def test_html_is_deterministic_self_contained_and_carries_the_contract_ids(sample):
    text = explorer.html(sample)
    assert text == explorer.html(sample)
    for element_id in ("explorer-beta", "explorer-offset", "explorer-loss"):
        assert text.count(f'id="{element_id}"') == 1
    assert not re.search(r'(?:src|href)\s*=\s*["\']?(?:https?:)?//', text)
    assert f"Vega {explorer.VEGA_VERSION}" in text
    spec = json.loads(re.search(r'class="klloss-explorer-spec">(.*?)</script>', text, re.S).group(1))
    assert spec == json.loads(json.dumps(explorer.spec(sample)))


def test_spec_json_is_safe_inside_a_script_element(sample):
    text = explorer.spec_json(sample)
    assert "<" not in text
    assert ">" not in text
    assert "&" not in text
    assert json.loads(text) == json.loads(json.dumps(explorer.spec(sample)))


def test_bad_sample_is_refused(sample):
    with pytest.raises(TypeError, match=r"sample must be a klloss\.data\.Sample"):
        explorer.html({"input": sample.input})
    one_class = klloss.data.Sample(
        sample.logits_t[:, :1],
        sample.input[:, :1],
        sample.target[:, :1],
        np.zeros(2, dtype=np.int64),
        sample.beta,
    )
    with pytest.raises(ValueError, match="sample must have more than 1 classes"):
        explorer.spec(one_class)
    with pytest.raises(ValueError, match=r"sample\.beta must be one of the β slider's values"):
        explorer.html(dataclasses.replace(sample, beta=1.7))


def _marked_language():
    """A language whose every text is its key in brackets, keeping the ``{fields}`` it formats."""
    fields = string.Formatter()
    return {
        key: f"⟨{key}⟩" + "".join(f"{{{f}}}" for _, f, _, _ in fields.parse(text) if f)
        for key, text in explorer.LABELS["en"].items()
    }


def _shown_texts(page, spec):
    """What a reader can see: the page's text outside tags, scripts and styles, its aria texts, the
    spec's texts, and every string literal with a space (a phrase, not a name) in the spec's
    expressions and the page's script."""
    body = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    texts = re.split(r"<[^>]*>", body) + re.findall(r'aria-valuetext="([^"]*)"', body)
    script = (explorer.page.HERE / "explorer.js").read_text(encoding="utf-8")
    texts += [t for t in re.findall(r'"([^"]*)"', script) if " " in t]

    def walk(node, key=None):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key in ("signal", "expr"):
            texts.extend(t for t in re.findall(r"'([^']*)'", node) if " " in t)
        elif isinstance(node, str) and key in ("text", "description", "row_name"):
            texts.append(node)

    walk(spec)
    return texts


def test_every_word_on_the_page_comes_from_the_strings(sample, monkeypatch):
    # a second language is one more dict: built in a language whose every text is a marker, the
    # page shows markers, numbers and symbols only, and every marker somewhere
    monkeypatch.setitem(explorer.LABELS, "marked", _marked_language())
    page = explorer.html(sample, lang="marked")
    spec = explorer.spec(sample, lang="marked")
    shown = _shown_texts(page, spec)
    words = {word for text in shown for word in re.findall(r"[A-Za-z]{4,}", re.sub(r"⟨\w+⟩", "", text))}
    assert words == set(), "words the strings do not hold"
    everything = page + json.dumps(spec, ensure_ascii=False)
    unused = [key for key in explorer.LABELS["en"] if f"⟨{key}⟩" not in everything + "".join(shown)]
    # keys Vega reads from its `text` signal appear as text.KEY in expressions and the script
    unused = [key for key in unused if f"text.{key}" not in everything + "".join(shown)]
    assert unused == []
    for lang, labels in explorer.LABELS.items():
        assert labels.keys() == explorer.LABELS["en"].keys(), lang


def test_an_unknown_language_is_refused(sample):
    with pytest.raises(ValueError, match="lang must be one of"):
        explorer.html(sample, lang="xx")
    with pytest.raises(ValueError, match="lang must be one of"):
        explorer.spec(sample, lang="xx")


def test_missing_or_wrong_vega_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(explorer.page, "VEGA_JS", tmp_path / "vega.min.js")
    with pytest.raises(FileNotFoundError, match="npm ci --prefix tools/site"):
        explorer.vega_js()
    package = tmp_path / "vega"
    (package / "build").mkdir(parents=True)
    (package / "build" / "vega.min.js").write_text("window.x = 1;", encoding="utf-8")
    (package / "package.json").write_text(json.dumps({"version": "5.0.0"}), encoding="utf-8")
    monkeypatch.setattr(explorer.page, "VEGA_PACKAGE", package)
    monkeypatch.setattr(explorer.page, "VEGA_JS", package / "build" / "vega.min.js")
    with pytest.raises(RuntimeError, match=r"vega 5\.0\.0, expected"):
        explorer.vega_js()
    (package / "package.json").write_text(json.dumps({"version": explorer.VEGA_VERSION}), encoding="utf-8")
    (package / "build" / "vega.min.js").write_text("s = '</script>';", encoding="utf-8")
    with pytest.raises(RuntimeError, match="cannot be inlined"):
        explorer.vega_js()


# --- in the browser ---------------------------------------------------------------------------


def _loss_pattern(text):
    return re.compile(re.escape(text["loss_value"]) + r"(-?\d+\.(\d+))")


@pytest.fixture(params=sorted(PAGES))
def lang(request):
    return request.param


@pytest.fixture
def page(browser, site, lang):  # noqa: F811 -- fixtures from test_site
    page, outside, failed = _open(browser, site, PAGES[lang])
    page.wait_for_selector(".klloss-explorer[data-ready]", timeout=30_000)
    yield page
    page.context.close()
    assert not outside, outside
    assert not failed, failed


def _set(page, beta, offset):
    """Move both sliders as an input event from the reader would, and wait for Vega's result."""
    page.eval_on_selector(
        "#explorer-beta",
        "(e, i) => { e.value = String(i); e.dispatchEvent(new Event('input')); }",
        explorer.BETAS.index(beta),
    )
    page.eval_on_selector(
        "#explorer-offset", "(e, k) => { e.value = String(k); e.dispatchEvent(new Event('input')); }", offset
    )
    _wait_for(page, beta, offset)


def _wait_for(page, beta, offset):
    page.wait_for_function(
        "([b, k]) => { const r = document.getElementById('explorer-loss');"
        " return +r.dataset.beta === b && +r.dataset.offset === k; }",
        arg=[beta, offset],
        timeout=10_000,
    )


def _shown_loss(page, lang="en"):
    text = page.inner_text("#explorer-loss")
    match = _loss_pattern(explorer.LABELS[lang]).search(text)
    assert match, f"no decimal number in the readout {text!r}"
    return float(match.group(1)), len(match.group(2)), text


def test_the_page_computes_the_oracle_loss_at_every_setting(page, lang, sample):
    words = explorer.LABELS[lang]
    for beta, offset in SETTINGS:
        _set(page, beta, offset)
        expected = _oracle_loss(sample, beta, offset)
        shown, decimals, text = _shown_loss(page, lang)
        # equal to the precision shown: within half a unit of the last digit (and 4 significant digits)
        assert abs(shown - expected) <= 0.5 * 10.0**-decimals * (1 + 1e-9), (beta, offset, text, expected)
        digits = _loss_pattern(words).search(text).group(1)
        assert len(digits.replace("-", "").replace(".", "").lstrip("0")) == 4, text
        # the sign is visible, in the page's words
        assert (words["negative"].strip() in text) == (expected < 0), text
        assert page.evaluate("document.getElementById('explorer-loss').classList.contains('negative')") == (
            expected < 0
        )
        # the beta in use is in the slider's aria-valuetext and on its visible label
        assert page.get_attribute("#explorer-beta", "aria-valuetext") == f"{words['beta_value']}{beta:g}"
        assert page.inner_text(".klloss-explorer-beta-value") == f"{words['beta_value']}{beta:g}"
        offset_text = page.get_attribute("#explorer-offset", "aria-valuetext")
        assert offset_text == f"{words['offset_value']}{offset:g}"


def test_the_page_shows_the_words_of_its_language(page, lang):
    # labels and readouts (the controls, the chart's SVG text) come from the page's language, and
    # on the Chinese page no English string is left where the Chinese one differs
    words, english = explorer.LABELS[lang], explorer.LABELS["en"]
    root = ".klloss-explorer"
    assert page.get_attribute(root, "lang") == lang
    shown = page.evaluate(f"document.querySelector('{root}').textContent")
    svg = page.evaluate(f"Array.from(document.querySelectorAll('{root} svg text')).map(t => t.textContent)")
    for key in ("readout", "weights_title", "weighted_title", "teacher", "pulled_to"):
        assert words[key] in shown + "".join(svg), key
    assert words["beta_control"].split("{")[0] in page.inner_text("label[for=explorer-beta]")
    if lang != "en":
        left = [key for key, text in english.items() if text.strip() and text != words[key] and text in shown]
        assert left == [], left


def test_every_intermediate_in_the_page_matches_the_oracle(page, sample):
    rows = explorer.rows(sample)
    for beta, offset in SETTINGS:
        _set(page, beta, offset)
        cells = page.evaluate("document.querySelector('.klloss-explorer').kllossView.data('cells')")
        assert len(cells) == sum(len(row["input"]) for row in rows)
        for r, row in enumerate(rows):
            it = explorer.row_intermediates(row, beta, offset)
            mine = sorted((c for c in cells if c["row"] == r), key=lambda c: c["cls"])
            for key, field in [
                ("log_input", "log_q"),
                ("log_target", "log_p"),
                ("target_prob", "p"),
                ("output", "kl_term"),
                ("margin", "m"),
                ("weight", "w"),
                ("weighted", "weighted"),
            ]:
                np.testing.assert_allclose(
                    [c[field] for c in mine],
                    it[key][0],
                    rtol=1e-12,
                    atol=1e-12,
                    err_msg=f"{field} at beta={beta}, k={offset}, row {r}",
                )
            assert math.isclose(mine[0]["L_i"], it["per_sample"][0], rel_tol=1e-12, abs_tol=1e-12)
            # q* = w p / W where every weight is >= 0, and none where one is negative
            w, p = it["weight"][0], it["target_prob"][0]
            if (w >= 0).all():
                np.testing.assert_allclose(
                    [c["q_star"] for c in mine], w * p / (w * p).sum(), rtol=1e-12, atol=1e-15
                )
            else:
                assert all(c["q_star"] is None for c in mine)


def test_the_decomposition_line_matches_the_analysis(page, lang, sample):
    args = sample.tensors(torch.float64)
    parts = course.analysis.decompose(**args)
    words = explorer.LABELS[lang]
    number = r"(-?[\d.]+)"
    kl_and_m = re.compile(re.escape(words["why_parts"]) + number + re.escape(words["why_m"]) + number)
    zero_at = re.compile(re.escape(words["why_negative_below"]) + number + re.escape(words["why_at_offset"]))
    for beta, offset in [(1.5, 8.0), (1.5, 0.0), (0.5, 3.0)]:
        _set(page, beta, offset)
        why = page.inner_text(".klloss-explorer-why")
        kl, big_m = (float(x) for x in kl_and_m.search(why).groups())
        assert math.isclose(kl, parts.kl.item(), rel_tol=5e-4)
        assert math.isclose(big_m, parts.margin_term.item(), rel_tol=5e-4)
        if offset > 0:
            zero = float(zero_at.search(why).group(1))
            assert math.isclose(zero, -parts.margin_term.item() / (offset * parts.kl.item()), rel_tol=5e-3), (
                why
            )
            assert why.endswith(f"{offset:g}{words['why_end']}"), why
        else:
            assert why.endswith(words["why_never_positive"]), why


def test_the_sliders_work_from_the_keyboard(page, lang, sample):
    start = explorer.BETAS.index(sample.beta)
    page.focus("#explorer-beta")
    page.keyboard.press("ArrowLeft")
    _wait_for(page, explorer.BETAS[start - 1], klloss.ARTICLE_OFFSET)
    page.keyboard.press("End")
    _wait_for(page, explorer.BETAS[-1], klloss.ARTICLE_OFFSET)
    page.focus("#explorer-offset")
    page.keyboard.press("Home")
    _wait_for(page, explorer.BETAS[-1], 0.0)
    shown, _, _ = _shown_loss(page, lang)
    assert math.isclose(shown, _oracle_loss(sample, explorer.BETAS[-1], 0.0), rel_tol=1e-3)


# a formula of the readout lines: an operand, then one or more " op operand" (op one of = < > + and U+2212),
# operands ending at a space or at punctuation, Chinese or English
FORMULA = re.compile(r"[^\s，：；（）,:;()]+(?: [=<>+\u2212] [^\s，：；（）,:;()]+)+")
# for each element of the readout lines: its text, whether it sits in a span that does not wrap,
# and how many line boxes it takes
LINE_BOXES = """() => Array.from(document.querySelectorAll(
    '.klloss-explorer-why .klloss-nowrap, .klloss-explorer-why, #explorer-loss')).map(e => {
  const range = document.createRange(); range.selectNodeContents(e);
  const rects = Array.from(range.getClientRects()).filter(r => r.width > 0);
  const tops = new Set(rects.map(r => Math.round(r.top)));
  return {text: e.textContent, nowrap: e.classList.contains('klloss-nowrap'), lines: tops.size,
          whole: e.classList.contains('klloss-explorer-why')};
})"""


def test_no_formula_of_the_readout_breaks_across_lines_on_a_narrow_screen(page, lang):
    # on a phone-wide page the readout lines wrap, but never inside a formula (β < 0.775, KL = ...)
    page.set_viewport_size({"width": 320, "height": 900})
    for beta, offset in SETTINGS:
        _set(page, beta, offset)
        boxes = page.evaluate(LINE_BOXES)
        whole = next(b for b in boxes if b["whole"])
        spans = [b for b in boxes if b["nowrap"]]
        formulas = FORMULA.findall(whole["text"])
        assert formulas, whole["text"]
        assert [b["text"] for b in spans] == formulas, (beta, offset, whole["text"])
        assert all(b["lines"] == 1 for b in spans), (beta, offset, spans)
        assert whole["lines"] > 1, "the line did not wrap at this width, so the test shows nothing"
        readout = next(b for b in boxes if not b["whole"] and not b["nowrap"])
        assert readout["lines"] == 1, (beta, offset, readout)
    # the measure sees a break: with the spans allowed to wrap, a narrow enough line breaks one
    page.add_style_tag(
        content=".klloss-nowrap { white-space: normal !important; }"
        " .klloss-explorer-why { display: block; width: 40px; }"
    )
    _set(page, 1.5, 8.0)
    after = page.evaluate(LINE_BOXES)
    assert any(b["lines"] > 1 for b in after if b["nowrap"]), after


@pytest.mark.parametrize("lang", sorted(PAGES))
def test_without_javascript_the_page_says_so_and_shows_the_static_figure(browser, site, lang):  # noqa: F811
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    context.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort()
    )
    try:
        page = context.new_page()
        page.goto((site / PAGES[lang]).resolve().as_uri(), wait_until="load")
        assert page.is_visible(".klloss-explorer-fallback")
        assert page.inner_text(".klloss-explorer-fallback") == explorer.LABELS[lang]["fallback"]
        assert explorer.LABELS[lang]["readout_without_js"] in page.inner_text("#explorer-loss")
        # the next output down is the static figure
        figure = page.evaluate(
            "(() => { const cells = Array.from(document.querySelectorAll('.jp-Cell'));"
            " const i = cells.findIndex(c => c.querySelector('.klloss-explorer'));"
            " return cells.slice(i + 1).find(c => c.querySelector('.jp-OutputArea img')) ? 1 : 0; })()"
        )
        assert figure == 1
    finally:
        context.close()
