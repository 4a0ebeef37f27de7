"""The shape of the course (issue 26): a long experiment is a short core and appendices.

The core of notebook 05 reads in one sitting (the site's own reading estimate, at most 30
minutes) and shows few, short tables (at most 8, each of at most 12 rows, counted in the executed
notebook's outputs: DataFrames' HTML tables and Markdown tables). Every section of the
appendices that the core names is reached by a link that resolves, in both languages.
"""

import re
from pathlib import Path

import nbformat
import pytest

from tools import build_site

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CORE_05 = NOTEBOOKS / "05-real-data.ipynb"
MAX_MINUTES, MAX_TABLES, MAX_ROWS = 30, 8, 12
MARKDOWN_SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def _html_tables(text):
    """Body rows of each HTML table in ``text`` (a DataFrame's: header rows in <thead>)."""
    rows = []
    for table in re.findall(r"<table.*?</table>", text, re.S):
        body = re.search(r"<tbody>(.*?)</tbody>", table, re.S)
        rows.append(len(re.findall(r"<tr", body.group(1) if body else table)))
    return rows


def _markdown_tables(text):
    """Body rows of each Markdown table in ``text``: the lines under a header's separator line."""
    rows, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if i and MARKDOWN_SEPARATOR.match(line) and "|" in lines[i - 1]:
            body = 0
            for following in lines[i + 1 :]:
                if "|" not in following or not following.strip():
                    break
                body += 1
            rows.append(body)
    return rows


def tables(nb):
    """Rows of every table a reader sees in the notebook ``nb``: in its Markdown cells and in
    the HTML or Markdown outputs of its code cells (an output with both shows one table)."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            found += _markdown_tables(cell.source)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data:
                found += _html_tables(data["text/html"])
            elif "text/markdown" in data:
                found += _markdown_tables(data["text/markdown"])
    return found


def test_the_core_of_notebook_05_reads_in_one_sitting():
    nb = nbformat.read(CORE_05, as_version=4)
    minutes = build_site.reading_minutes(nb)
    assert minutes <= MAX_MINUTES, f"the core reads in {minutes} minutes: move a part to an appendix"


def test_the_core_of_notebook_05_shows_few_short_tables():
    found = tables(nbformat.read(CORE_05, as_version=4))
    assert found, "no table found: the counter is broken"
    assert len(found) <= MAX_TABLES, f"{len(found)} tables"
    assert max(found) <= MAX_ROWS, f"rows per table: {found}"


def test_the_table_counter_counts_dataframes_and_markdown_tables():
    import pandas as pd

    v4 = nbformat.v4
    frame = pd.DataFrame({"a": range(13), "b": range(13)})
    html = v4.new_output("display_data", data={"text/html": frame.to_html(), "text/plain": "x"})
    markdown = v4.new_output(
        "display_data", data={"text/markdown": "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n"}
    )
    nb = v4.new_notebook(
        cells=[
            v4.new_markdown_cell("text\n\n| x | y |\n|:--|--:|\n| 1 | 2 |\n\nmore"),
            v4.new_code_cell("", outputs=[html, markdown]),
        ]
    )
    assert tables(nb) == [1, 13, 2]


LINK = re.compile(r"\]\((0[^)#\s]*\.ipynb)(?:#([^)\s]+))?\)")


@pytest.mark.parametrize("folder", [NOTEBOOKS, NOTEBOOKS / "zh"], ids=["en", "zh"])
def test_every_link_between_notebooks_reaches_its_anchor(folder):
    checked = 0
    for path in sorted(folder.glob("*.ipynb")):
        text = "\n".join(
            cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown"
        )
        for target, anchor in LINK.findall(text):
            assert (folder / target).is_file(), f"{path.name} links to {target}, which is not there"
            if anchor:
                cells = nbformat.read(folder / target, as_version=4).cells
                ids = {m for cell in cells for m in re.findall(r'<a id="([^"]+)"></a>', cell.source)}
                assert anchor in ids, f"{path.name} links to {target}#{anchor}, which has no such anchor"
            checked += 1
    assert checked, "no link between notebooks found"
