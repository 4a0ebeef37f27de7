"""Screenshots of the explorer (notebook 07) at a few slider settings, for a person to look at.

    python -m tools.explorer_screenshots                 # build/screenshots/explorer-*.png
    python -m tools.explorer_screenshots --lang en 1.5,8 0.2,1

Writes the explorer's HTML fragment into a page of its own, opens it in headless Chromium
(Debian's, as tests/test_site.py does; `make browser` installs it) with the network cut, moves
the sliders as a reader would and photographs the explorer. Nothing is checked here:
tests/test_explorer.py compares the page with the oracle.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import klloss
from course import explorer

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "screenshots"
SETTINGS = ("1.5,8", "0.2,1")
MOVE = "(e, v) => { e.value = String(v); e.dispatchEvent(new Event('input')); }"
SHOWN = (
    "([b, k]) => { const r = document.getElementById('explorer-loss');"
    " return +r.dataset.beta === b && +r.dataset.offset === k; }"
)


def shoot(page_file, settings, out, lang):
    """Open ``page_file`` and save one screenshot per (beta, k) in ``settings`` into ``out``."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("Debian's chromium is needed: `make browser` installs it")
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
        page = context.new_page()
        page.goto(page_file.as_uri(), wait_until="load")
        page.wait_for_selector(".klloss-explorer[data-ready]", timeout=30_000)
        for beta, offset in settings:
            page.eval_on_selector("#explorer-beta", MOVE, explorer.BETAS.index(beta))
            page.eval_on_selector("#explorer-offset", MOVE, offset)
            page.wait_for_function(SHOWN, arg=[beta, offset], timeout=10_000)
            path = out / f"explorer-{lang}-beta{beta:g}-k{offset:g}.png"
            page.locator(".klloss-explorer").screenshot(path=str(path))
            written.append(path)
        browser.close()
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", default=SETTINGS, help="beta,k pairs (default: %(default)s)")
    parser.add_argument("--lang", default="en", choices=sorted(explorer.LABELS))
    parser.add_argument("--out", default=str(SHOTS))
    args = parser.parse_args(argv)
    settings = [tuple(float(x) for x in pair.split(",")) for pair in args.settings]
    for beta, offset in settings:
        if beta not in explorer.BETAS or offset not in explorer.OFFSETS:
            parser.error(f"{beta:g},{offset:g} is not a slider setting (course.explorer.BETAS, OFFSETS)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fragment = explorer.html(klloss.data.load_sample(), lang=args.lang)
    with tempfile.TemporaryDirectory() as folder:
        page_file = Path(folder) / "explorer.html"
        document = f'<!DOCTYPE html><meta charset="utf-8"><body>{fragment}</body>'
        page_file.write_text(document, encoding="utf-8")
        for path in shoot(page_file, settings, out, args.lang):
            print("wrote", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
