"""Build the teaching site: one HTML page per notebook and an index, readable with no network.

    python tools/build_site.py NOTEBOOK_DIR SITE_DIR

Every ``*.ipynb`` in NOTEBOOK_DIR becomes a page (no list to maintain), rendered with the
``klloss`` template (tools/site/templates), which extends nbconvert's ``lab`` template without
any CDN script. MathJax comes from tools/site/node_modules (``npm ci --prefix tools/site``) and
is copied beside the pages. Plot PNGs are inlined by nbconvert as data URIs.
"""

import argparse
import html
import re
import shutil
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
SITE_SOURCES = ROOT / "tools" / "site"
MATHJAX = SITE_SOURCES / "node_modules" / "mathjax" / "es5" / "tex-svg-full.js"
PROJECT_TITLE = "klloss: klloss_v2, correct and explained"


def notebook_info(path):
    """(title, summary) from a notebook's first cell: its '# ' line and its '*...*' line."""
    nb = nbformat.read(path, as_version=4)
    lines = nb.cells[0].source.splitlines()
    title = next(line[2:].strip() for line in lines if line.startswith("# "))
    summary = next(line.strip("*").strip() for line in lines if line.startswith("*") and line.endswith("*"))
    return title, summary


def project_paragraph():
    """The README's first paragraph (after the title), as HTML: the site's 'what is this'."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = text.split("\n\n")[1].replace("\n", " ")
    escaped = html.escape(paragraph, quote=False)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def build(notebook_dir, site_dir):
    """Write ``index.html``, one page per notebook and ``mathjax/`` into ``site_dir``."""
    if not MATHJAX.is_file():
        raise FileNotFoundError(f"{MATHJAX} is missing: run `npm ci --prefix tools/site` (make report does)")
    notebooks = sorted(Path(notebook_dir).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks in {notebook_dir}")
    site = Path(site_dir)
    site.mkdir(parents=True, exist_ok=True)
    (site / "mathjax").mkdir(exist_ok=True)
    shutil.copyfile(MATHJAX, site / "mathjax" / MATHJAX.name)

    pages = [
        {"path": path, "href": f"{path.stem}.html", "title": title, "summary": summary}
        for path in notebooks
        for title, summary in [notebook_info(path)]
    ]
    exporter = HTMLExporter(template_name="klloss", extra_template_basedirs=[str(SITE_SOURCES / "templates")])
    for i, page in enumerate(pages):
        neighbours = {
            "previous": pages[i - 1] if i > 0 else None,
            "next": pages[i + 1] if i + 1 < len(pages) else None,
        }
        resources = {"metadata": {"name": page["title"]}, "klloss": neighbours}
        body, _ = exporter.from_notebook_node(nbformat.read(page["path"], as_version=4), resources=resources)
        (site / page["href"]).write_text(body, encoding="utf-8")

    items = "\n".join(
        f'<li><a href="{p["href"]}">{html.escape(p["title"])}</a>'
        f'<span class="summary">{html.escape(p["summary"], quote=False)}</span></li>'
        for p in pages
    )
    index = (
        (SITE_SOURCES / "index.html")
        .read_text(encoding="utf-8")
        .format(title=html.escape(PROJECT_TITLE), about=project_paragraph(), items=items)
    )
    (site / "index.html").write_text(index, encoding="utf-8")
    return site / "index.html"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook_dir")
    parser.add_argument("site_dir")
    args = parser.parse_args(argv)
    index = build(args.notebook_dir, args.site_dir)
    print(f"open {index.resolve()}")


if __name__ == "__main__":
    main()
