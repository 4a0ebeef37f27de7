"""The glossary renders as tables whose every cell keeps its whole text, in both languages.

A ``|`` inside a Markdown table cell ends the cell unless it is escaped: the row for ``output``
once read "they sum over c to KL(p". Render the tables with markdown-it-py's table rule (as
JupyterLab and GitHub parse them) and compare every cell with the text it came from.

The Chinese column (``glossary.ZH``) covers every row, translates the English meaning it
records the digest of, and quotes the article's own words exactly.
"""

import re
from pathlib import Path

import pytest
import torch
from markdown_it import MarkdownIt

import klloss
from course import glossary, i18n

# the article, where a copy is at hand (beside the clone, as for tests/test_data.py)
ARTICLE = next(
    (
        folder / "shared" / "source" / "klloss_v2-article.txt"
        for folder in Path(__file__).resolve().parents
        if (folder / "shared" / "source" / "klloss_v2-article.txt").is_file()
    ),
    None,
)


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
        ["symbol", "name in code", "shape", "meaning", "中文"],
        *([*row, glossary.ZH[row[1]][0]] for row in glossary.GLOSSARY),
        ["term", "notation", "meaning", "中文"],
        *([*row, glossary.ZH[row[0]][0]] for row in glossary.TERMS),
    ]
    # backticks delimit code spans; the rendered text is what is inside them
    expected = [[cell.replace("`", "") for cell in row] for row in expected]
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        assert got == want


def test_the_chinese_tables_render_with_their_full_text():
    rows = rendered_rows(glossary.as_markdown(lang="zh"))
    quoted = lambda words: f"“{words}”" if words else ""  # noqa: E731
    expected = [
        ["符号", "代码中的名称", "形状", "中文术语", "含义", "原文的说法"],
        *(
            [
                symbol,
                name,
                glossary.SHAPES_ZH.get(shape, shape),
                glossary.ZH[name][0],
                glossary.ZH[name][1],
                quoted(glossary.ZH[name][2]),
            ]
            for symbol, name, shape, _ in glossary.GLOSSARY
        ),
        ["英文术语", "记号", "中文术语", "含义", "原文的说法"],
        *(
            [term, notation, glossary.ZH[term][0], glossary.ZH[term][1], quoted(glossary.ZH[term][2])]
            for term, notation, _ in glossary.TERMS
        ),
    ]
    expected = [[cell.replace("`", "") for cell in row] for row in expected]
    assert rows == expected


def test_every_row_has_a_current_chinese_column():
    # the Chinese meaning records the digest of the English meaning it translates: change the
    # English and this fails, naming the row, until the Chinese is brought up to date
    english = {name: meaning for _, name, _, meaning in glossary.GLOSSARY}
    english |= {term: meaning for term, _, meaning in glossary.TERMS}
    assert set(glossary.ZH) == set(english), "a row lacks its Chinese column, or has no English row"
    stale = [key for key, meaning in english.items() if glossary.ZH[key][3] != i18n.digest(meaning)]
    assert not stale, f"English meaning changed since the Chinese was written: {stale}"
    for key, (term, meaning, _, _) in glossary.ZH.items():
        assert term, key
        assert meaning, key
        # the Chinese types no number the English does not
        assert sorted(re.findall(r"\d+", meaning)) == sorted(re.findall(r"\d+", english[key])), key


def test_a_missing_chinese_column_is_an_error_not_a_fall_back(monkeypatch):
    monkeypatch.delitem(glossary.ZH, "beta")
    with pytest.raises(KeyError, match="beta"):
        glossary.as_markdown(lang="zh")
    with pytest.raises(KeyError, match="beta"):
        glossary.as_markdown()
    with pytest.raises(ValueError, match="lang"):
        glossary.as_markdown(lang="fr")


@pytest.mark.skipif(ARTICLE is None, reason="the article lives in shared/source beside the clone")
def test_the_articles_own_words_are_quoted_exactly():
    article = ARTICLE.read_text(encoding="utf-8")
    words = [entry[2] for entry in glossary.ZH.values() if entry[2]]
    assert len(words) >= 10
    missing = [w for w in words if w not in article]
    assert not missing, f"not in the article: {missing}"


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
    "term",
    [
        "log-sum-exp",
        "Kronecker delta",
        "elementwise product",
        "convexity",
        "Jensen's inequality",
        # notebook 04a's statistics, used by notebook 05
        "p-value",
        "paired design",
        "confidence interval",
        "Student-t interval",
        "equivalence test (TOST)",
        "equivalence margin",
        "Holm's adjustment",
        "family-wise error rate, FWER",
        "oracle",
    ],
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
