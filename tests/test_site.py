"""The HTML site, as a reader sees it: built from the committed notebooks (English, and the
Chinese edition in notebooks/zh/) and opened in headless Chromium (Debian's) with the network cut
off.

Every page must load, request nothing outside the site folder, show every figure, render every
formula (no raw ``$...$`` or ``\\frac`` left in the text) and every Markdown output (no raw table
rows or ``**`` left in the text). Code that draws a figure, cells tagged ``hide-input`` and
exercise solutions (tag ``solution``) are folded, and unfold from the keyboard. The index gives a
reading path with computed reading times. Every page links to its counterpart in the other
language, and the Chinese pages' glyphs come from the CJK font that ``make browser`` installs.
Screenshots go to ``build/screenshots/`` for a person to look at.
"""

import base64
import html
import json
import math
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup  # nbconvert's dependency

import course
from tools import build_site

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CHINESE = sorted((ROOT / "notebooks" / "zh").glob("*.ipynb"))
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
RAW_TEX = re.compile(r"\$|\\(frac|beta|sum|log|mathrm|qquad|partial|underbrace)\b")
# raw Markdown left in rendered text: a table's delimiter row, bold markers, a heading marker, and
# outside rendered table cells (where |x| may be an absolute value in a column name) a table row
RAW_MARKDOWN = re.compile(r"\|[ \t]*:?-{3,}|\*\*|^[ \t]*#{1,6}[ \t]", re.M)
RAW_TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$", re.M)
CJK = re.compile(r"[\u4e00-\u9fff]")
IMAGE_OUTPUTS = ("image/png", "image/jpeg", "image/gif")


def _cells(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))["cells"]


def _source(cell):
    return "".join(cell["source"])


def _image_outputs(path):
    return sum(
        any(kind in output.get("data", {}) for kind in IMAGE_OUTPUTS)
        for cell in _cells(path)
        for output in cell.get("outputs", [])
    )


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    """The teacher's site and the student edition, built as `make report` builds them, from the
    committed (executed) notebooks: (teacher's folder, student's folder)."""
    site_dir, student_dir = tmp_path_factory.mktemp("site"), tmp_path_factory.mktemp("site-student")
    build_site.build_editions(ROOT / "notebooks", site_dir, ROOT / "notebooks" / "zh", student_dir)
    return site_dir, student_dir


@pytest.fixture(scope="module")
def site(editions):
    return editions[0]


@pytest.fixture(scope="module")
def student_site(editions):
    return editions[1]


# ---- the Markdown renderer, on its own ----


def test_markdown_outputs_render_tables_as_github_does():
    # a row with more cells than the header (an unescaped | in a cell) keeps the table a table,
    # extra cells dropped, as in JupyterLab; nbconvert's own renderer makes it a paragraph of pipes
    text = "| a | b |\n|---|---|\n| `x` | **y** |\n| p || q | z |\n| r \\| s | $x_1 < y$ |"
    rendered = build_site.markdown_to_html(text)
    assert rendered.count("<tr>") == 4
    assert "<table>" in rendered
    assert "<strong>y</strong>" in rendered
    assert "<code>x</code>" in rendered
    assert "<td>r | s</td>" in rendered  # an escaped pipe stays in its cell
    assert "$x_1 &lt; y$" in rendered  # math left for MathJax, HTML-escaped, not emphasised
    assert "|" not in re.sub(r"<td>r \| s</td>", "", rendered)


# ---- what the build reads from a notebook ----


def test_opening_lines_are_read_and_may_be_missing():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "# 09 · T\n\n*summary*\n\n**You will learn:** the `gradient` of $L$."
                "\n\n**You need first:** 01."
            )
        ]
    )
    assert build_site.opening(nb) == {"learn": "the `gradient` of $L$.", "need": "01."}
    nb.cells[0].source = "# 09 · T\n\n*summary*\n\n**You will learn:**"
    assert build_site.opening(nb) == {"learn": None, "need": None}
    assert build_site.opening(nbformat.v4.new_notebook()) == {"learn": None, "need": None}


def test_the_chinese_opening_lines_are_read_in_either_wording():
    # issue 27's wording (预备知识) and the older one (你需要先读) both give the 'need' line; the
    # index shows the new wording
    for need in ("预备知识：", "你需要先读："):
        nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_markdown_cell(
                    f"# 09 · T\n\n*s*\n\n**你将学到：** 甲。\n\n**{need}** 笔记本 01。"
                )
            ]
        )
        assert build_site.opening(nb, "zh") == {"learn": "甲。", "need": "笔记本 01。"}
        assert build_site.opening(nb, "en") == {"learn": None, "need": None}
    nb.cells[0].source = "# 09 · T\n\n*s*\n\n**需要：** 笔记本 01。"
    assert build_site.opening(nb, "zh") == {"learn": None, "need": None}
    page = {
        "href": "x.html",
        "title": "T",
        "summary": "s",
        "minutes": 1,
        "learn": None,
        "need": "笔记本 01。",
    }
    assert "<strong>预备知识：</strong> 笔记本 01。" in build_site.index_item(page, "zh")


def test_a_link_to_a_notebook_points_to_its_page_on_this_site():
    hrefs = {
        "04-what-it-teaches.html": "04-what-it-teaches.html",
        "05-real-data.html": "../05-real-data.html",
    }
    html_text = (
        '<a href="04-what-it-teaches.ipynb#6">4</a> <a href="05-real-data.ipynb">5</a> '
        '<a href="x.ipynb">x</a>'
    )
    assert build_site.link_pages(html_text, hrefs) == (
        '<a href="04-what-it-teaches.html#6">4</a> <a href="../05-real-data.html">5</a> '
        '<a href="x.ipynb">x</a>'
    )
    with pytest.raises(ValueError, match="09-gone"):
        build_site.link_pages('<a href="09-gone.ipynb">', hrefs)


def test_the_summary_is_italic_in_english_and_bold_in_chinese(tmp_path):
    for line, summary in (("*One line.*", "One line."), ("**一行摘要。**", "一行摘要。")):
        path = tmp_path / "09-x.ipynb"
        nbformat.write(
            nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# 09 · T\n\n{line}")]), path
        )
        assert build_site.notebook_info(path) == ("09 · T", summary)
    # an opening line in bold is no summary
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 09 · T\n\n**你将学到：** 甲。")]),
        path,
    )
    with pytest.raises(ValueError, match="summary"):
        build_site.notebook_info(path)


def test_a_notebook_number_may_carry_a_letter_and_only_the_core_numbers_are_core():
    assert build_site.number("notebooks/04a-statistics-primer.ipynb") == "04a"
    assert build_site.number(Path("04-what-it-teaches.ipynb")) == "04"
    assert build_site.is_core("04-what-it-teaches.ipynb")
    # the primer placed after 04 is read before 05, on the core path; 05's appendices are not
    assert build_site.is_core("04a-statistics-primer.ipynb")
    assert build_site.is_core("05-real-data.ipynb")
    assert not build_site.is_core("05b-real-data-appendix.ipynb")
    assert not build_site.is_core("05c-real-data-wrong-teachers.ipynb")
    assert not build_site.is_core("06-performance.ipynb")


def test_links_between_notebooks_become_links_between_pages():
    body = '<a href="05b-real-data-appendix.ipynb#mass">x</a> <a href="04a-x.ipynb">y</a> <a href="https://a.b/c.ipynb">z</a>'
    pages = {"05b-real-data-appendix.html": "05b-real-data-appendix.html", "04a-x.html": "04a-x.html"}
    assert build_site.link_pages(body, pages) == (
        '<a href="05b-real-data-appendix.html#mass">x</a> <a href="04a-x.html">y</a> <a href="https://a.b/c.ipynb">z</a>'
    )


def test_a_notebook_without_title_or_summary_is_named_in_the_error(tmp_path):
    path = tmp_path / "09-x.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("no title")]), path)
    with pytest.raises(ValueError, match=r"09-x\.ipynb.*Title"):
        build_site.notebook_info(path)


# each notebook's own link on an index: the first link of its item
TITLE_LINK = r'<li[^>]*><a href="([^"]+)"'


def test_index_gives_the_reading_path_with_computed_reading_times(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    core_block = index.split('<ol class="core">')[1].split("</ol>")[0]
    optional_block = index.split('<ul class="optional">')[1].split("</ul>")[0]
    core = [p for p in NOTEBOOKS if build_site.number(p) in build_site.CORE]
    optional = [p for p in NOTEBOOKS if p not in core]
    assert [build_site.number(p) for p in core] == list(build_site.CORE), "a core notebook is missing"
    assert re.findall(TITLE_LINK, core_block) == [f"{p.stem}.html" for p in core]
    assert re.findall(TITLE_LINK, optional_block) == [f"{p.stem}.html" for p in optional]
    # the links of the opening lines ("You need first: notebook 01") lead to pages of the site too
    assert not re.findall(r'href="[^"]*\.ipynb', index)
    assert f"at {build_site.WORDS_PER_MINUTE} words per minute" in index
    total = 0
    for path in NOTEBOOKS:
        cells = _cells(path)
        title, _summary = build_site.notebook_info(path)
        assert f'<a href="{path.stem}.html">{html.escape(title)}</a>' in index
        # reading time counted here independently: words of the Markdown and code cells
        words = sum(
            len(re.findall(r"\S+", _source(c))) for c in cells if c["cell_type"] in ("markdown", "code")
        )
        minutes = max(1, math.ceil(words / build_site.WORDS_PER_MINUTE))
        item = re.search(
            rf'<li class="notebook" data-minutes="(\d+)"><a href="{path.stem}.html">.*?</li>', index
        )
        assert item, path.name
        assert int(item[1]) == minutes, path.name
        assert f"{minutes} min" in item[0], path.name
        total += minutes if path in core else 0
        first = _source(cells[0])
        for cls, marker in (("learn", "**You will learn:**"), ("need", "**You need first:**")):
            assert (f'class="{cls}"' in item[0]) == (marker in first), f"{path.name}: {marker}"
    assert f"about {total} min" in index
    assert "](" not in index, "a Markdown link left unrendered on the index (a title or summary line)"


def _chinese_minutes(cells):
    # counted here independently: CJK characters at 255 a minute, the other words at 200
    text = " ".join(_source(c) for c in cells if c["cell_type"] in ("markdown", "code"))
    characters = len(re.findall(r"[\u3400-\u4dbf\u4e00-\u9fff]", text))
    words = sum(not CJK.search(word) for word in text.split())
    return max(1, math.ceil(characters / 255 + words / 200))


def test_the_chinese_index_gives_the_reading_path_in_chinese(site):
    index = (site / "zh" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in index
    assert build_site.CJK_CHARACTERS_PER_MINUTE == 255
    core_block = index.split('<ol class="core">')[1].split("</ol>")[0]
    optional_block = index.split('<ul class="optional">')[1].split("</ul>")[0]
    chinese = {p.name: p for p in CHINESE}
    # the same reading path as the English index; a page not yet translated is the English one,
    # linked as such and marked
    expected = []
    for path in NOTEBOOKS:
        translated = path.name in chinese
        expected.append(f"{path.stem}.html" if translated else f"../{path.stem}.html")
    core = [e for e, p in zip(expected, NOTEBOOKS, strict=True) if build_site.number(p) in build_site.CORE]
    optional = [
        e for e, p in zip(expected, NOTEBOOKS, strict=True) if build_site.number(p) not in build_site.CORE
    ]
    assert re.findall(TITLE_LINK, core_block) == core
    assert re.findall(TITLE_LINK, optional_block) == optional
    assert not re.findall(r'href="[^"]*\.ipynb', index)
    total = 0
    for path in NOTEBOOKS:
        href = f"{path.stem}.html" if path.name in chinese else f"../{path.stem}.html"
        item = re.search(
            rf'<li class="notebook[^"]*" data-minutes="(\d+)"><a href="{re.escape(href)}".*?</li>', index
        )
        assert item, path.name
        if path.name in chinese:
            cells = _cells(chinese[path.name])
            title, _ = build_site.notebook_info(chinese[path.name])
            assert CJK.search(title), f"{path.name}: the Chinese title is not Chinese"
            minutes = _chinese_minutes(cells)
            assert "untranslated" not in item[0]
            assert ('class="learn"' in item[0]) == ("**你将学到：**" in _source(cells[0])), path.name
        else:
            minutes = max(
                1,
                math.ceil(
                    sum(
                        len(_source(c).split())
                        for c in _cells(path)
                        if c["cell_type"] in ("markdown", "code")
                    )
                    / 200
                ),
            )
            assert 'class="notebook untranslated"' in item[0]
            assert "中文翻译尚未完成" in item[0]
            assert 'hreflang="en"' in item[0]
        assert int(item[1]) == minutes, path.name
        assert f"{minutes} 分钟" in item[0], path.name
        total += minutes if build_site.number(path) in build_site.CORE else 0
    assert f"阅读约 {total} 分钟" in index
    assert "](" not in index, "a Markdown link left unrendered on the Chinese index (a title or summary line)"
    assert "每分钟 255 字" in index
    assert "每分钟 200 词" in index
    assert '<a class="klloss-lang" href="../index.html" hreflang="en" lang="en">English</a>' in index
    english = (site / "index.html").read_text(encoding="utf-8")
    assert '<a class="klloss-lang" href="zh/index.html" hreflang="zh-CN" lang="zh-CN">中文</a>' in english


# ---- every page in Chromium ----


def test_static_pages_reference_nothing_outside_the_site(site):
    # static check: no src/href to another host (comments in the inlined CSS are not loads)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        external = re.findall(r'(?:src|href)\s*=\s*["\'](?:https?:)?//[^"\']*', text)
        assert not external, f"{page.name}: {external[:3]}"
        assert "@import" not in text or "url(http" not in text


def test_site_has_every_notebook(site):
    pages = sorted(p.name for p in site.glob("*.html"))
    assert pages == sorted([f"{p.stem}.html" for p in NOTEBOOKS] + ["index.html"])
    chinese = sorted(p.name for p in (site / "zh").glob("*.html"))
    assert chinese == sorted([f"{p.stem}.html" for p in CHINESE] + ["index.html"])
    assert CHINESE, "no Chinese notebooks: run `make zh`"


def test_every_image_has_alt_text_in_its_pages_language(site):
    # the alt text is the figure's plain-text part (course.plotting.describe), never nbconvert's
    # "No description has been provided for this image"; on a Chinese page, in Chinese
    images = 0
    for page in [*site.glob("*.html"), *(site / "zh").glob("*.html")]:
        text = page.read_text(encoding="utf-8")
        assert "No description has been provided" not in text, page.name
        for image in re.findall(r"<img\b[^>]*>", text):
            if "data:image/png" not in image:
                continue
            images += 1
            alt = html.unescape(re.search(r'\salt="([^"]*)"', image).group(1))
            chinese = page.parent.name == "zh"
            assert alt.startswith("图：" if chinese else "Figure: "), f"{page.name}: {alt[:80]!r}"
    assert images >= 2 * 10  # the figures of notebooks 01 to 07 (05 aside), in both languages


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is required for the site test: `make test` installs it"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _open(browser, site, name):
    """Open one page offline; return (page, outside requests, failed requests)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside, failed = [], []
    site_url = site.resolve().as_uri()

    def route(route):
        url = route.request.url
        if url.startswith((site_url + "/", "data:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("requestfailed", lambda request: failed.append(request.url))
    response = page.goto((site / name).resolve().as_uri(), wait_until="load")
    assert response is None or response.ok, f"{name} did not load"
    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=30_000)
    page.evaluate("MathJax.startup.promise")
    return page, outside, failed


# every text node of rendered prose and rendered outputs (folded ones too), not code or formulas
PROSE_TEXT = """() => {
  const roots = document.querySelectorAll('.jp-RenderedMarkdown, .jp-RenderedHTMLCommon, body > p, body li');
  const skip = 'pre, code, mjx-container, script, style';
  const texts = [];
  for (const root of roots) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement.closest(skip))
        texts.push({text: node.textContent, cell: !!node.parentElement.closest('th, td')});
    }
  }
  return texts;
}"""

# code cells showing a figure outside a solution: is their code visible, are their figures visible?
FIGURE_CELLS = """() => Array.from(document.querySelectorAll('.jp-CodeCell'))
  .filter(c => c.querySelector('.jp-OutputArea img') && !c.closest('details.klloss-solution'))
  .map(c => ({code: c.querySelector('.jp-InputArea').checkVisibility(),
              folded: !!c.querySelector('details.klloss-code .jp-InputArea'),
              figures: Array.from(c.querySelectorAll('.jp-OutputArea img'))
                .every(i => i.checkVisibility())}))"""

PAGES = ["index.html"] + [f"{p.stem}.html" for p in NOTEBOOKS]
PAGES += ["zh/index.html"] + [f"zh/{p.stem}.html" for p in CHINESE]
# looked at by a person: the Chinese cheat-sheet and the explorer above all
SCREENSHOTS = {
    "index.html",
    "01-walkthrough.html",
    "00-cheat-sheet.html",
    "07-explorer.html",
    "zh/index.html",
    "zh/00-cheat-sheet.html",
    "zh/02-errata.html",
    "zh/07-explorer.html",
}


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_offline(browser, site, name):
    page, outside, failed = _open(browser, site, name)
    try:
        assert page.title(), f"{name} has no title"
        assert not outside, f"{name} asked for {outside[:3]}"
        assert not failed, f"{name}: failed requests {failed[:3]}"
        # every image decoded
        broken = page.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length"
        )
        assert broken == 0, f"{name}: {broken} images did not load"
        # every formula rendered: no TeX left as visible text in prose, and MathJax output present
        prose = page.evaluate(
            "Array.from(document.querySelectorAll('.jp-RenderedMarkdown, body > p, li .summary'))"
            ".map(e => e.innerText).join('\\n')"
        )
        leftovers = RAW_TEX.findall(prose)
        assert not leftovers, f"{name}: raw TeX left in the text: {leftovers[:5]}"
        # every Markdown output and cell rendered: no table rows, ** or # markers left as text
        raw = [
            t["text"].strip()[:80]
            for t in page.evaluate(PROSE_TEXT)
            if RAW_MARKDOWN.search(t["text"]) or (not t["cell"] and RAW_TABLE_ROW.search(t["text"]))
        ]
        assert not raw, f"{name}: raw Markdown left in the text: {raw[:3]}"
        errors = page.evaluate("document.querySelectorAll('mjx-merror').length")
        assert errors == 0, f"{name}: {errors} formulas failed to typeset"
        if not name.endswith("index.html"):
            notebook = ROOT / "notebooks" / name.replace(".html", ".ipynb")
            if any("$" in _source(c) for c in _cells(notebook) if c["cell_type"] == "markdown"):
                assert page.evaluate("document.querySelectorAll('mjx-container').length") > 0, (
                    f"{name}: no formula"
                )
            assert (
                page.evaluate("document.querySelectorAll('nav.klloss-nav a[href=\"index.html\"]').length")
                == 2
            )
            # every figure the notebook made is on the page, and its drawing code is folded
            assert page.evaluate("document.images.length") == _image_outputs(notebook)
            for cell in page.evaluate(FIGURE_CELLS):
                assert cell == {"code": False, "folded": True, "figures": True}, f"{name}: {cell}"
            # every worked solution (tag "solution") is on the page, folded
            solutions = sum("solution" in c["metadata"].get("tags", []) for c in _cells(notebook))
            assert (
                page.evaluate("document.querySelectorAll('details.klloss-solution .jp-Cell').length")
                == solutions
            )
            assert page.evaluate("document.querySelectorAll('details.klloss-solution[open]').length") == 0
        if name in SCREENSHOTS:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(SHOTS / name.replace("/", "-").replace(".html", ".png")),
                full_page=name != "01-walkthrough.html",
            )
    finally:
        page.context.close()


def test_glossary_is_a_table_on_the_site(browser, site):
    page, _, _ = _open(browser, site, "01-walkthrough.html")
    try:
        table = page.locator(".jp-OutputArea-output[data-mime-type='text/markdown'] table").first
        rows = table.evaluate(
            "t => Array.from(t.querySelectorAll('tbody tr'))"
            ".map(r => Array.from(r.cells).map(c => c.innerText))"
        )
        assert len(rows) == len(course.glossary.GLOSSARY), "a glossary row is missing or split"
        assert all(len(row) == 5 for row in rows)
        assert [row[1] for row in rows] == [entry[1] for entry in course.glossary.GLOSSARY]
        SHOTS.mkdir(parents=True, exist_ok=True)
        table.screenshot(path=str(SHOTS / "01-glossary.png"))
    finally:
        page.context.close()


def _counterpart(name):
    """The page a language switch on page ``name`` must lead to."""
    return name[len("zh/") :] if name.startswith("zh/") else f"zh/{name}"


def test_every_language_switch_resolves_to_its_counterpart(browser, site):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    site_url = site.resolve().as_uri()
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(site_url) else r.abort())
    page = context.new_page()
    chinese = {p.name for p in CHINESE}
    try:
        for name in PAGES:
            page.goto((site / name).resolve().as_uri(), wait_until="load")
            switches = page.locator("a.klloss-lang")
            if not switches.count():
                # only an English page whose translation is pending, and it says so
                assert not name.startswith("zh/"), name
                assert name.replace(".html", ".ipynb") not in chinese, name
                assert page.locator(".klloss-lang-missing").first.inner_text() == "中文版尚未翻译"
                continue
            hrefs = {switches.nth(i).get_attribute("href") for i in range(switches.count())}
            assert len(hrefs) == 1, f"{name}: {hrefs}"
            other = "en" if name.startswith("zh/") else "zh-CN"
            assert switches.first.get_attribute("hreflang") == other
            switches.first.click()
            page.wait_for_load_state("load")
            landed = page.url[len(site_url) + 1 :]
            assert landed == _counterpart(name), f"{name} links to {landed}"
            assert page.evaluate("document.documentElement.lang") == other
            # and back again
            page.locator("a.klloss-lang").first.click()
            page.wait_for_load_state("load")
            assert page.url[len(site_url) + 1 :] == name
    finally:
        context.close()


FONT_PACKAGE = "fonts-noto-cjk"
CJK_FONT = "Noto Sans CJK SC"


def _platform_fonts(page, selector):
    """The fonts Chromium drew the text of the first ``selector`` element with (DevTools)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    assert node, f"no {selector}"
    return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]


def test_cjk_glyphs_come_from_the_font_the_set_up_installs(browser, site):
    # the font the pages' CSS names is installed by make browser's package, not found by chance
    path = subprocess.run(
        ["fc-match", "-f", "%{file}", f"{CJK_FONT}:lang=zh-cn"], capture_output=True, text=True, check=True
    ).stdout
    owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, check=False).stdout
    assert owner.startswith(FONT_PACKAGE + ":"), f"{CJK_FONT} is {path!r}, from {owner!r}: run `make browser`"
    # Chinese pages: title, prose and the site's own words; an English page: the article's words
    cases = [
        ("zh/00-cheat-sheet.html", "h1"),
        ("zh/00-cheat-sheet.html", ".jp-RenderedMarkdown p"),
        ("zh/00-cheat-sheet.html", "nav.klloss-nav a"),
        ("zh/index.html", "h1"),
        ("zh/01-walkthrough.html", ".jp-OutputArea-output[data-mime-type='text/markdown'] td:nth-child(4)"),
        ("zh/07-explorer.html", "label[for=explorer-beta]"),
        ("index.html", "a.klloss-lang"),
    ]
    for name, selector in cases:
        page, _, _ = _open(browser, site, name)
        try:
            fonts = _platform_fonts(page, selector)
            text = page.locator(selector).first.inner_text()
            assert CJK.search(text), f"{name} {selector}: no Chinese in {text!r}"
            drawn = {f["familyName"]: f["glyphCount"] for f in fonts}
            assert drawn.get(CJK_FONT, 0) >= len(CJK.findall(text)) > 0, f"{name} {selector}: {fonts}"
            assert not any(f["isCustomFont"] for f in fonts)
            if name.startswith("zh/"):  # named first by the page's CSS, not found by fallback
                family = page.locator(selector).first.evaluate("e => getComputedStyle(e).fontFamily")
                assert family.startswith(f'"{CJK_FONT}"'), f"{name} {selector}: {family}"
        finally:
            page.context.close()
    # Chinese words on an English page, among English text: the glossary's Chinese column in 01
    words = course.glossary.ZH["output"][0]
    page, _, _ = _open(browser, site, "01-walkthrough.html")
    try:
        element = page.locator("td", has_text=words).first
        element.evaluate("e => e.setAttribute('data-probe', 'chinese-words')")
        fonts = {f["familyName"]: f["glyphCount"] for f in _platform_fonts(page, "[data-probe]")}
        assert fonts.get(CJK_FONT, 0) >= len(CJK.findall(words)) > 0, fonts
        element.scroll_into_view_if_needed()
        SHOTS.mkdir(parents=True, exist_ok=True)
        element.screenshot(path=str(SHOTS / "chinese-words.png"))
    finally:
        page.context.close()


def test_the_glossary_is_in_chinese_on_the_chinese_page(browser, site):
    page, _, _ = _open(browser, site, "zh/01-walkthrough.html")
    try:
        table = page.locator(".jp-OutputArea-output[data-mime-type='text/markdown'] table").first
        header = table.evaluate("t => Array.from(t.querySelectorAll('thead th')).map(c => c.innerText)")
        assert header == list(course.glossary.HEADERS["zh"][0])
        rows = table.evaluate(
            "t => Array.from(t.querySelectorAll('tbody tr'))"
            ".map(r => Array.from(r.cells).map(c => c.innerText))"
        )
        assert [row[1] for row in rows] == [entry[1] for entry in course.glossary.GLOSSARY]
        assert [row[3] for row in rows] == [
            course.glossary.ZH[entry[1]][0] for entry in course.glossary.GLOSSARY
        ]
        SHOTS.mkdir(parents=True, exist_ok=True)
        table.screenshot(path=str(SHOTS / "zh-01-glossary.png"))
    finally:
        page.context.close()


# ---- folding, on a small synthetic notebook ----


def _png(width=120, height=60, rgb=(31, 119, 180)):
    """A solid-colour PNG, as a figure output would carry it."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def _synthetic_notebook():
    v4 = nbformat.v4
    stream = v4.new_output("stream", name="stdout", text="rows sum to zero: True\n")
    figure = v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})
    return v4.new_notebook(
        cells=[
            v4.new_markdown_cell("# 09 · Folding\n\n*A page with a figure, hidden code and an exercise.*"),
            v4.new_code_cell("visible_code = 1", execution_count=1),
            v4.new_code_cell("draw_the_figure()", execution_count=2, outputs=[figure]),
            v4.new_code_cell(
                "hidden_code = 2", execution_count=3, outputs=[stream], metadata={"tags": ["hide-input"]}
            ),
            v4.new_markdown_cell(
                "**Exercise 1.** Show that each row of $\\partial L/\\partial s$ sums to zero."
            ),
            v4.new_markdown_cell(
                "Summing $q_c W - w_c p_c$ over $c$ gives $W - W = 0$, because $q$ sums to one.",
                metadata={"tags": ["solution"]},
            ),
            v4.new_code_cell(
                "check_the_solution()", execution_count=4, outputs=[stream], metadata={"tags": ["solution"]}
            ),
            v4.new_markdown_cell("**Exercise 2.** The next exercise."),
            v4.new_markdown_cell("Its worked solution.", metadata={"tags": ["solution"]}),
        ]
    )


@pytest.fixture(scope="module")
def synthetic_site(tmp_path_factory):
    notebooks = tmp_path_factory.mktemp("synthetic")
    nbformat.write(_synthetic_notebook(), notebooks / "09-folding.ipynb")
    site_dir = tmp_path_factory.mktemp("synthetic-site")
    build_site.build(notebooks, site_dir)
    return site_dir


def test_a_notebook_without_opening_lines_still_builds(synthetic_site):
    index = (synthetic_site / "index.html").read_text(encoding="utf-8")
    assert '<a href="09-folding.html">09 · Folding</a>' in index
    assert 'class="learn"' not in index
    assert 'class="need"' not in index


def test_figures_code_and_solutions_fold_and_unfold_from_the_keyboard(browser, synthetic_site):
    page, outside, failed = _open(browser, synthetic_site, "09-folding.html")
    try:
        assert not outside
        assert not failed
        visible = {
            needle: page.get_by_text(needle, exact=False).first.is_visible()
            for needle in (
                "visible_code",
                "draw_the_figure",
                "hidden_code",
                "rows sum to zero",
                "Exercise 1.",
                "because",
                "check_the_solution",
                "Its worked solution",
            )
        }
        assert visible == {
            "visible_code": True,  # a plain code cell stays open
            "draw_the_figure": False,  # a figure's code is folded ...
            "hidden_code": False,  # ... and so is a cell tagged hide-input,
            "rows sum to zero": True,  # whose output stays visible
            "Exercise 1.": True,
            "because": False,  # the solution, prose and code, is folded
            "check_the_solution": False,
            "Its worked solution": False,
        }, visible
        assert page.locator("img").first.is_visible()
        solutions = page.locator("details.klloss-solution")
        assert solutions.count() == 2, "consecutive solution cells fold together, one fold per exercise"
        assert solutions.first.locator(".jp-Cell").count() == 2
        assert page.locator("details.klloss-code").count() == 2
        assert solutions.first.locator("summary").inner_text() == "Show solution"
        exercise = page.locator(".jp-Cell", has_text="Exercise 1.")
        region = exercise.bounding_box()
        SHOTS.mkdir(parents=True, exist_ok=True)
        clip = {"x": 0, "y": region["y"] - 2, "width": 1280, "height": 180}
        page.screenshot(path=str(SHOTS / "exercise-folded.png"), clip=clip)

        # keyboard: Tab reaches the first solution's summary, Enter unfolds it
        summary = solutions.first.locator("summary")
        summary.evaluate("s => s.setAttribute('data-probe', '1')")
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.getAttribute('data-probe') === '1'"):
                break
        else:
            pytest.fail("Tab never reaches the solution's summary")
        page.keyboard.press("Enter")
        assert solutions.first.evaluate("d => d.open")
        assert page.get_by_text("because").first.is_visible()
        assert page.get_by_text("check_the_solution").first.is_visible()
        assert summary.inner_text() == "Hide solution"
        assert not page.get_by_text("Its worked solution").first.is_visible()  # the other one stays folded
        assert page.evaluate("document.querySelectorAll('mjx-container').length") >= 3
        clip["height"] = (
            solutions.first.bounding_box()["y"] + solutions.first.bounding_box()["height"] - clip["y"] + 8
        )
        page.screenshot(path=str(SHOTS / "exercise-unfolded.png"), clip=clip)
        # Space folds it again, and a figure's code unfolds the same way
        page.keyboard.press("Space")
        assert not solutions.first.evaluate("d => d.open")
        code = page.locator("details.klloss-code").first
        code.locator("summary").focus()
        page.keyboard.press("Enter")
        assert page.get_by_text("draw_the_figure").first.is_visible()
    finally:
        page.context.close()


# ---- the student edition: every worked solution removed, in both languages ----

NOTEBOOK_PAGES = [f"{p.stem}.html" for p in NOTEBOOKS] + [f"zh/{p.stem}.html" for p in CHINESE]


def _soup(path):
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _words(text):
    return " ".join(text.split())


def _cell_texts(soup):
    """(the text of each cell outside a solution, of each cell inside one), in page order."""
    kept, solutions = [], []
    for cell in soup.select(".jp-Cell"):
        inside = cell.find_parent("details", class_="klloss-solution")
        (solutions if inside else kept).append(cell.get_text())
    return kept, solutions


def _solution_runs(notebook):
    tags = ["solution" in c["metadata"].get("tags", []) for c in _cells(notebook)]
    return sum(t and (i == 0 or not tags[i - 1]) for i, t in enumerate(tags))


# what a student finds where a solution was, as the page shows it
NOTE_WORDS = {
    "en": "Student edition: the worked solution is left out of this copy. Work the exercise out yourself.",
    "zh": "学生版：这一版不含解答，请自己完成这道练习。",
}


@pytest.mark.parametrize("name", NOTEBOOK_PAGES)
def test_the_student_edition_has_every_cell_but_the_solutions(site, student_site, name):
    teacher, pupil = _soup(site / name), _soup(student_site / name)
    notebook = ROOT / "notebooks" / name.replace(".html", ".ipynb")
    kept, solutions = _cell_texts(teacher)
    cells, folded = _cell_texts(pupil)
    # the teacher's page has every solution cell, folded (closed)
    assert len(solutions) == sum("solution" in c["metadata"].get("tags", []) for c in _cells(notebook))
    assert all(not d.has_attr("open") for d in teacher.select("details.klloss-solution"))
    # the student's page: no fold, every other cell as on the teacher's page, a note per solution
    assert not folded
    assert not pupil.select("details.klloss-solution")
    note = NOTE_WORDS["zh" if name.startswith("zh/") else "en"]
    assert [c for c in cells if _words(c) != note] == kept
    assert sum(_words(c) == note for c in cells) == _solution_runs(notebook)
    # no line of any solution (its prose, code or printed output) is on the student's page
    others, left = "\n".join(kept), pupil.get_text()
    for solution in solutions:
        lines = sorted({line.strip() for line in solution.splitlines()}, key=len, reverse=True)
        own = [line for line in lines if len(line) >= 8 and line not in others]
        assert own, f"{name}: a solution cell with no line of its own: {_words(solution)[:80]}"
        assert not [line for line in own if line in left], f"{name}: solution text on the student's page"


def test_the_student_edition_links_only_to_itself(student_site):
    root = student_site.resolve()
    pages = sorted(student_site.rglob("*.html"))
    assert sorted(p.relative_to(student_site).as_posix() for p in pages) == sorted(
        ["index.html", "zh/index.html", *NOTEBOOK_PAGES]
    )
    for page in pages:
        soup = _soup(page)
        text = soup.get_text()
        for words in ("Show solution", "Hide solution", "显示解答", "收起解答", "Teacher", "教师版"):
            assert words not in text, f"{page.name}: {words}"
        for element in soup.select("[href], [src]"):
            link = element.get("href") or element.get("src")
            if link.startswith(("data:", "#")):
                continue
            target = (page.parent / link.split("#")[0]).resolve()
            assert target.is_relative_to(root), f"{page.name} links outside the student edition: {link}"
            assert target.is_file(), f"{page.name}: {link} does not resolve"


def test_each_index_says_its_edition_and_the_teachers_links_to_the_students(site, student_site):
    for folder, teacher_words, student_words, link_words in (
        ("", "Teacher's edition", "Student edition", "The student edition"),
        ("zh", "教师版", "学生版", "学生版"),
    ):
        teacher = _soup(site / folder / "index.html").select_one("#edition")
        pupil = _soup(student_site / folder / "index.html").select_one("#edition")
        assert teacher.get_text().startswith(teacher_words)
        assert pupil.get_text().startswith(student_words)
        assert not pupil.select("a")
        link = teacher.select_one("a.klloss-student")
        assert link.get_text() == link_words
        target = (site / folder / link["href"]).resolve()
        assert target == (student_site / folder / "index.html").resolve()
    # every student page says so beside the index link, top and bottom; a teacher's page does not
    for name in NOTEBOOK_PAGES:
        badge = "学生版" if name.startswith("zh/") else "Student edition"
        assert [e.get_text() for e in _soup(student_site / name).select("nav .klloss-edition")] == [badge] * 2
        assert not _soup(site / name).select(".klloss-edition")


@pytest.mark.parametrize("name", ["01-walkthrough.html", "zh/07-explorer.html"])
def test_a_student_page_with_exercises_renders_offline(browser, student_site, name):
    page, outside, failed = _open(browser, student_site, name)
    try:
        assert not outside
        assert not failed
        assert page.evaluate("document.querySelectorAll('mjx-merror').length") == 0
        assert page.locator("details.klloss-solution").count() == 0
        note = page.locator(".jp-MarkdownCell blockquote").last
        assert _words(note.inner_text()) == NOTE_WORDS["zh" if name.startswith("zh/") else "en"]
        assert note.is_visible()
        note.scroll_into_view_if_needed()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"student-{name.replace('/', '-').replace('.html', '.png')}"))
    finally:
        page.context.close()
