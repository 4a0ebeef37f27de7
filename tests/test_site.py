"""The HTML site, as a reader sees it: built from the committed notebooks and opened in headless
Chromium (Debian's) with the network cut off.

Every page must load, request nothing outside the site folder, show every image and render every
formula (no raw ``$...$`` or ``\\frac`` left in the text). Screenshots of the index and the first
notebook go to ``build/screenshots/`` for a person to look at.
"""

import html
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
RAW_TEX = re.compile(r"\$|\\(frac|beta|sum|log|mathrm|qquad|partial|underbrace)\b")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site_dir = tmp_path_factory.mktemp("site")
    build_site.build(ROOT / "notebooks", site_dir)
    return site_dir


def test_site_has_every_notebook(site):
    pages = sorted(p.name for p in site.glob("*.html"))
    expected = [*sorted(f"{p.stem}.html" for p in (ROOT / "notebooks").glob("*.ipynb")), "index.html"]
    assert pages == sorted(expected)
    index = (site / "index.html").read_text(encoding="utf-8")
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        title, summary = build_site.notebook_info(notebook)
        assert f'<a href="{notebook.stem}.html">{html.escape(title)}</a>' in index
        assert html.escape(summary, quote=False) in index


def test_no_page_references_anything_outside_the_site(site):
    # static check: no src/href to another host (comments in the inlined CSS are not loads)
    for page in site.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        external = re.findall(r'(?:src|href)\s*=\s*["\'](?:https?:)?//[^"\']*', text)
        assert not external, f"{page.name}: {external[:3]}"
        assert "@import" not in text or "url(http" not in text


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


PAGES = ["index.html"] + [f"{p.stem}.html" for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]


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
        formulas = page.evaluate("document.querySelectorAll('mjx-container').length")
        if name != "index.html":
            assert formulas > 0, f"{name}: no rendered formula"
            assert (
                page.evaluate("document.querySelectorAll('nav.klloss-nav a[href=\"index.html\"]').length")
                == 2
            )
            images = page.evaluate("document.images.length")
            assert images > 0, f"{name}: no figure"
        errors = page.evaluate("document.querySelectorAll('mjx-merror').length")
        assert errors == 0, f"{name}: {errors} formulas failed to typeset"
        if name in ("index.html", "01-walkthrough.html"):
            shots = ROOT / "build" / "screenshots"
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / name.replace(".html", ".png")), full_page=name == "index.html")
    finally:
        page.context.close()
