"""The glossary renders as tables whose every cell keeps its whole text.

A ``|`` inside a Markdown table cell ends the cell unless it is escaped: the row for ``output``
once read "they sum over c to KL(p". Render the tables with markdown-it-py's table rule (as
JupyterLab and GitHub parse them) and compare every cell with the text it came from.
"""

import pytest
import torch
from markdown_it import MarkdownIt

import klloss
from course import glossary


def rendered_rows(markdown):
    """Each table row of ``markdown`` as the list of its cells' rendered plain text."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    rows, row = [], None
    for token in tokens:
        if token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            rows.append(row)
        elif token.type == "inline" and row is not None:
            kinds = {child.type for child in token.children}
            # plain text and code only: an emphasis or a link would mean the cell was misread
            assert kinds <= {"text", "code_inline"}, f"unexpected markup {kinds} in {token.content!r}"
            row.append("".join(child.content for child in token.children))
    return rows


def test_every_row_renders_with_its_full_text():
    rows = rendered_rows(glossary.as_markdown())
    expected = [
        ["symbol", "name in code", "shape", "meaning"],
        *map(list, glossary.GLOSSARY),
        ["term", "notation", "meaning"],
        *map(list, glossary.TERMS),
    ]
    # backticks delimit code spans; the rendered text is what is inside them
    expected = [[cell.replace("`", "") for cell in row] for row in expected]
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=False):
        assert got == want


def test_a_pipe_in_a_cell_is_escaped_and_survives():
    # what the test above guards against: unescaped, the cell is cut at the pipe
    table = "| a | b |\n|---|---|\n| x | {} |"
    assert rendered_rows(table.format("KL(p || q)"))[1] == ["x", "KL(p"]
    assert rendered_rows(table.format(glossary._cell("KL(p || q)")))[1] == ["x", "KL(p || q)"]
    assert any("|" in meaning for *_, meaning in glossary.GLOSSARY), "no row exercises the escape any more"


@pytest.mark.parametrize(
    "symbol",
    ["W", "M", "q*", "L_min", "T", "\N{GREEK SMALL LETTER ALPHA}", "CE", "NLL", "ECE", "p_true", "β"],
)
def test_the_symbols_the_notebooks_use_are_defined(symbol):
    assert symbol in {row[0] for row in glossary.GLOSSARY}


@pytest.mark.parametrize(
    "term", ["log-sum-exp", "Kronecker delta", "elementwise product", "convexity", "Jensen's inequality"]
)
def test_the_terms_the_notebooks_use_are_defined(term):
    assert term in {row[0] for row in glossary.TERMS}


def test_what_the_glossary_says_of_beta_holds(sample):
    # "not a temperature: p and q are the same for every beta"; "a larger beta pulls every weight
    # towards k": checked on the loss, not on the wording
    args = sample.tensors(torch.float64)
    traces = [klloss.trace(**{**args, "beta": beta}) for beta in (0.5, sample.beta, 40.0)]
    for trace in traces[1:]:
        assert torch.equal(trace.target_prob, traces[0].target_prob)
        assert torch.equal(trace.log_input, traces[0].log_input)
    distance = [(trace.weight - klloss.ARTICLE_OFFSET).abs().max().item() for trace in traces]
    assert distance == sorted(distance, reverse=True)
    assert distance[-1] < distance[0]
