"""Build the teaching site: one HTML page per notebook and an index, readable with no network.

    python -m tools.build_site NOTEBOOK_DIR SITE_DIR

Every ``*.ipynb`` in NOTEBOOK_DIR becomes a page (no list to maintain), rendered with the
``klloss`` template (tools/site/templates), which extends nbconvert's ``lab`` template without
any CDN script. MathJax comes from tools/site/node_modules (``npm ci --prefix tools/site``) and
is copied beside the pages. Plot PNGs are inlined by nbconvert as data URIs.

What the site reads from a notebook (the conventions the notebooks follow):

* the first cell: a ``# `` title line, a ``*one-line summary*`` line, and optionally the lines
  ``**You will learn:** ...`` and ``**You need first:** ...`` (shown on the index; a notebook
  without them still builds);
* the file name's number: notebooks numbered in :data:`CORE` form the core of the reading path,
  every other notebook is optional;
* cell tags: ``solution`` folds the whole cell (consecutive solution cells fold together behind
  one "Show solution"); ``hide-input`` folds a code cell's input; a code cell whose outputs
  include an image has its input folded too, so that prose and figures lead.

Markdown outputs (``text/markdown``, e.g. ``IPython.display.Markdown``) are rendered with
markdown-it-py, whose tables follow GitHub's rules as JupyterLab's renderer does: nbconvert's
own renderer (mistune) drops a whole table to a paragraph of raw pipes as soon as one row has
more cells than the header.
"""

import argparse
import html
import math
import re
import shutil
from pathlib import Path

import nbformat
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
SITE_SOURCES = ROOT / "tools" / "site"
MATHJAX = SITE_SOURCES / "node_modules" / "mathjax" / "es5" / "tex-svg-full.js"
PROJECT_TITLE = "klloss: klloss_v2, correct and explained"

# the reading path: notebooks whose file name starts with one of these numbers are the core, read
# in order; every other notebook (real data, performance, the cheat-sheet, ...) is optional
CORE = ("01", "02", "03", "04")
# reading time = words of the notebook's Markdown and code (outputs not counted) / this rate
WORDS_PER_MINUTE = 200
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
SOLUTION_TAG = "solution"
HIDE_INPUT_TAG = "hide-input"
OPENING = {
    "learn": re.compile(r"^\*\*You will learn:\*\*\s*(.*)$"),
    "need": re.compile(r"^\*\*You need first:\*\*\s*(.*)$"),
}


def _math(content, config):
    """Leave TeX in the HTML for MathJax, as nbconvert does for Markdown cells."""
    fence = "$$" if config.get("display_mode") else "$"
    return fence + html.escape(content, quote=False) + fence


def markdown_renderer():
    """CommonMark with GitHub's tables and strikethrough; $...$ and $$...$$ left to MathJax."""
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    dollarmath_plugin(md, double_inline=True, renderer=_math)
    return md


MARKDOWN = markdown_renderer()


def markdown_to_html(text):
    """A Markdown output (``text/markdown``) as HTML, tables included."""
    return MARKDOWN.render(text)


def inline_markdown(text):
    """One line of Markdown (a summary, a 'You will learn' line) as inline HTML."""
    return MARKDOWN.renderInline(text)


def first_cell_lines(nb):
    return nb.cells[0].source.splitlines() if nb.cells else []


def notebook_info(path):
    """(title, summary) from a notebook's first cell: its '# ' line and its '*...*' line."""
    lines = first_cell_lines(nbformat.read(path, as_version=4))
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), None)
    summary = next(
        (line.strip("*").strip() for line in lines if re.fullmatch(r"\*[^*].*[^*]\*", line.strip())), None
    )
    if title is None or summary is None:
        raise ValueError(
            f"{path}: the first cell needs a '# NN · Title' line and a '*one-line summary*' line"
        )
    return title, summary


def opening(nb):
    """The first cell's 'You will learn' and 'You need first' lines (Markdown), None if absent."""
    lines = [line.strip() for line in first_cell_lines(nb)]
    found = {}
    for key, pattern in OPENING.items():
        matches = [m.group(1).strip() for m in map(pattern.match, lines) if m]
        found[key] = matches[0] if matches and matches[0] else None
    return found


def word_count(nb):
    """Whitespace-separated words in the Markdown and code cells (outputs not counted)."""
    return sum(len(cell.source.split()) for cell in nb.cells if cell.cell_type in ("markdown", "code"))


def reading_minutes(nb):
    """Reading time in whole minutes (at least 1) at :data:`WORDS_PER_MINUTE`."""
    return max(1, math.ceil(word_count(nb) / WORDS_PER_MINUTE))


def is_core(path):
    return Path(path).name.startswith(CORE)


def _has_image(cell):
    return any(
        any(kind in output.get("data", {}) for kind in IMAGE_TYPES) for output in cell.get("outputs", [])
    )


def mark_folds(nb):
    """Tell the template what to fold, in ``cell.metadata.klloss_site`` (the page's copy only).

    * ``solution``: the cell is part of a worked solution; ``solution_start`` / ``solution_end``
      open and close one ``<details>`` around a run of consecutive solution cells;
    * ``fold_input``: a code cell's input is folded (tag ``hide-input``, or an image among its
      outputs, unless the cell belongs to a solution, which is folded as a whole).
    """
    tags = [set(cell.metadata.get("tags", [])) for cell in nb.cells]
    for i, cell in enumerate(nb.cells):
        solution = SOLUTION_TAG in tags[i]
        fold_input = cell.cell_type == "code" and (
            HIDE_INPUT_TAG in tags[i] or (_has_image(cell) and not solution)
        )
        cell.metadata["klloss_site"] = {
            "solution": solution,
            "solution_start": solution and (i == 0 or SOLUTION_TAG not in tags[i - 1]),
            "solution_end": solution and (i + 1 == len(nb.cells) or SOLUTION_TAG not in tags[i + 1]),
            "fold_input": fold_input,
            "image": _has_image(cell),
        }
    return nb


def project_paragraph():
    """The README's first paragraph (after the title), as HTML: the site's 'what is this'."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = text.split("\n\n")[1].replace("\n", " ")
    escaped = html.escape(paragraph, quote=False)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def read_pages(notebook_dir):
    """Every notebook of ``notebook_dir`` as a page record, in reading-path order: the core
    notebooks by number, then the optional ones by number."""
    pages = []
    for path in sorted(Path(notebook_dir).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        title, summary = notebook_info(path)
        pages.append(
            {
                "path": path,
                "href": f"{path.stem}.html",
                "title": title,
                "summary": summary,
                "core": is_core(path),
                "minutes": reading_minutes(nb),
                "words": word_count(nb),
                **opening(nb),
            }
        )
    return [p for p in pages if p["core"]] + [p for p in pages if not p["core"]]


def index_item(page):
    """One notebook on the index: link, reading time, summary, what it teaches and needs."""
    parts = [
        f'<li class="notebook" data-minutes="{page["minutes"]}">',
        f'<a href="{page["href"]}">{html.escape(page["title"])}</a>',
        f'<span class="minutes">{page["minutes"]} min</span>',
        f'<span class="summary">{inline_markdown(page["summary"])}</span>',
    ]
    for key, label in (("learn", "You will learn:"), ("need", "You need first:")):
        if page[key]:
            parts.append(f'<span class="{key}"><strong>{label}</strong> {inline_markdown(page[key])}</span>')
    parts.append("</li>")
    return "".join(parts)


def index_page(pages):
    core = [p for p in pages if p["core"]]
    optional = [p for p in pages if not p["core"]]
    return (
        (SITE_SOURCES / "index.html")
        .read_text(encoding="utf-8")
        .format(
            title=html.escape(PROJECT_TITLE),
            about=project_paragraph(),
            core="\n".join(map(index_item, core)),
            optional="\n".join(map(index_item, optional)),
            core_minutes=sum(p["minutes"] for p in core),
            wpm=WORDS_PER_MINUTE,
        )
    )


def exporter():
    html_exporter = HTMLExporter(
        template_name="klloss", extra_template_basedirs=[str(SITE_SOURCES / "templates")]
    )
    html_exporter.register_filter("klloss_markdown", markdown_to_html)
    return html_exporter


def build(notebook_dir, site_dir):
    """Write ``index.html``, one page per notebook and ``mathjax/`` into ``site_dir``."""
    if not MATHJAX.is_file():
        raise FileNotFoundError(f"{MATHJAX} is missing: run `npm ci --prefix tools/site` (make report does)")
    pages = read_pages(notebook_dir)
    if not pages:
        raise FileNotFoundError(f"no notebooks in {notebook_dir}")
    site = Path(site_dir)
    site.mkdir(parents=True, exist_ok=True)
    (site / "mathjax").mkdir(exist_ok=True)
    shutil.copyfile(MATHJAX, site / "mathjax" / MATHJAX.name)

    html_exporter = exporter()
    for i, page in enumerate(pages):
        neighbours = {
            "previous": pages[i - 1] if i > 0 else None,
            "next": pages[i + 1] if i + 1 < len(pages) else None,
        }
        resources = {"metadata": {"name": page["title"]}, "klloss": neighbours}
        nb = mark_folds(nbformat.read(page["path"], as_version=4))
        body, _ = html_exporter.from_notebook_node(nb, resources=resources)
        (site / page["href"]).write_text(body, encoding="utf-8")

    (site / "index.html").write_text(index_page(pages), encoding="utf-8")
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
