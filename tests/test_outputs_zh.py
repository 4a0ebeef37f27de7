"""Tables, figures and code comments in Chinese on the Chinese pages, from the same run.

The kernel renders every DataFrame and figure twice (course.i18n.translate_outputs): in the
reader's language and in Chinese, from one object, so the numbers are computed once; the
Chinese rendering rides in the output's metadata and tools/translate.py puts it in place. These
tests fail when an English word that carries the argument (a table's header, a verdict, a
figure's title, axis or legend, its alt text) is left on a Chinese page, when a figure has no alt
text, and when a Chinese code cell differs from its English one in more than its comments.
"""

import base64
import html
import io
import re
import tokenize
from pathlib import Path

import matplotlib
import nbformat
import pandas as pd
import pytest

from course import i18n, plotting, vocabulary
from tools import translate

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
CHINESE = sorted((ROOT / "notebooks" / "zh").glob("*.ipynb"))
# notebook 05 is being split into a core and an appendix; its tables and figures go through
# course.i18n.translate_outputs once that lands (the lead's step, listed in the report)
NOT_YET = set()
# words that carry the argument and must not be left in English on a Chinese page's tables,
# figures or alt text
FORBIDDEN = (
    "verdict",
    "printed",
    "correct",
    "higher",
    "equivalent",
    "not settled",
    "lower",
    "broken",
    "repeats",
    "mean",
    "accuracy",
    "teacher",
    "student",
    "against",
    "sample",
    "class",
    "figure",
)
CELL = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", re.S)
TAG = re.compile(r"<[^>]+>")
QUOTED = re.compile(r"“[^”]*”")
GLOSS = re.compile(r"（[ -~]+）")
CODE_OR_FORMULA = re.compile(r"`[^`]*`|\$\$.*?\$\$|\$[^$]*\$", re.S)
CJK = re.compile(r"[\u4e00-\u9fff]")
COMMENTED = ("00-cheat-sheet", "01-walkthrough")  # their code comments are in Chinese, as in d2l-zh


def _read(path):
    return nbformat.read(path, as_version=4)


def english_left(texts):
    """The words of FORBIDDEN found in ``texts`` (whole words, any case), with where."""
    found = []
    for where, text in texts:
        text = QUOTED.sub(" ", text)  # the article's own words, quoted
        for word in FORBIDDEN:
            if re.search(rf"(?<![\w`]){re.escape(word)}(?![\w`])", text, re.I):
                found.append(f"{where}: {word!r} in {text[:100]!r}")
    return found


def shown_texts(nb, name):
    """What a reader of ``nb`` reads in its tables, its figures and their alt text, and in its Markdown
    outputs outside code and formulas: (where, text)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data, where = output.get("data", {}), f"{name} cell {cell.id}"
            for cell_html in CELL.findall(
                data.get("text/html", "") if "<table" in data.get("text/html", "") else ""
            ):
                yield where + " table", html.unescape(TAG.sub("", cell_html)).strip()
            # a table's title, a verdict written out; not the glossary, whose column of English terms
            # is its point, nor an English gloss in full-width brackets after a Chinese term
            made_by = output.get("metadata", {}).get("text/markdown", {}).get(i18n.METADATA_KEY, {})
            if "text/markdown" in data and made_by.get("render") != "glossary":
                yield (
                    where + " Markdown output",
                    GLOSS.sub(" ", CODE_OR_FORMULA.sub(" ", data["text/markdown"])),
                )
            if "image/png" in data:
                yield where + " alt text", data.get("text/plain", "")
                spec = output.get("metadata", {}).get(i18n.METADATA_KEY, {})
                for text in spec.get("texts", []):
                    yield where + " figure text", text


def _translated(paths):
    return [p for p in paths if p.stem not in NOT_YET]


@pytest.mark.parametrize("path", _translated(CHINESE), ids=lambda p: p.stem)
def test_no_english_word_in_a_chinese_pages_tables_figures_or_alt_text(path):
    found = english_left(shown_texts(_read(path), path.stem))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", _translated(CHINESE), ids=lambda p: p.stem)
def test_every_figure_has_alt_text_in_its_language(path):
    english = _read(ROOT / "notebooks" / path.name)
    for en, zh in zip(english.cells, _read(path).cells, strict=True):
        for out_en, out_zh in zip(en.get("outputs", []), zh.get("outputs", []), strict=True):
            if "image/png" not in out_en.get("data", {}):
                continue
            alt_en, alt_zh = out_en.data["text/plain"], out_zh.data["text/plain"]
            assert alt_en.startswith("Figure: "), (
                path.stem,
                en.id,
                alt_en,
            )
            assert len(alt_en) > len("Figure: ") + 10, (
                path.stem,
                en.id,
                alt_en,
            )
            assert alt_zh.startswith("图："), (path.stem, en.id, alt_zh)
            assert CJK.search(alt_zh[2:]), (path.stem, en.id, alt_zh)
            assert out_zh.data["image/png"] != out_en.data["image/png"], (path.stem, en.id)
            assert not out_zh.metadata[i18n.METADATA_KEY].get("missing")


def test_the_check_finds_the_english_it_looks_for():
    # the pages as they were before their tables and figures were rendered in Chinese
    nb = nbformat.v4.new_notebook()
    frame = pd.DataFrame({"mean (pp)": [1.5], "verdict": ["not settled"]}, index=["printed"])
    cell = nbformat.v4.new_code_cell("display(frame)", id="t")
    cell.outputs = [
        nbformat.v4.new_output("display_data", {"text/html": frame._repr_html_(), "text/plain": "x"})
    ]
    image = nbformat.v4.new_output(
        "display_data", {"image/png": "", "text/plain": "Figure: weight against margin"}
    )
    cell.outputs.append(image)
    nb.cells = [cell]
    found = english_left(shown_texts(nb, "synthetic"))
    assert {f.split("'")[1] for f in found} == {
        "mean",
        "verdict",
        "not settled",
        "printed",
        "against",
        "figure",
    }
    zh, missing = i18n.frame_in(frame, "zh")
    assert not missing
    table = nbformat.v4.new_output("display_data", {"text/html": zh._repr_html_(), "text/plain": "x"})
    cell.outputs = [table]
    assert not english_left(shown_texts(nb, "synthetic"))
    # a table's title made by code with the metric's code name in it (05b's ablation, once); an
    # English gloss in brackets, code and formulas are let through
    title = nbformat.v4.new_output("display_data", {"text/markdown": "**accuracy：前者减后者**"})
    cell.outputs = [title]
    assert [f.split("'")[1] for f in english_left(shown_texts(nb, "synthetic"))] == ["accuracy"]
    title.data["text/markdown"] = (
        "**测试准确率：前者减后者**，结论“未定”（not settled），`accuracy`，$p_{\\text{mean}}$"
    )
    assert not english_left(shown_texts(nb, "synthetic"))


def test_the_vocabulary_itself_is_chinese_where_it_translates():
    for english, chinese in vocabulary.ZH.items():
        if vocabulary.english_words(english) and chinese != english:
            assert not english_left([("course/vocabulary.py", chinese)]), english
            assert "$" not in chinese or not CJK.search(chinese), (
                f"{english!r}: no $math$ beside Chinese (its font)"
            )


# ---- the mechanism ----


def test_a_label_is_translated_whole_by_list_or_by_pattern_and_its_numbers_are_kept():
    say = vocabulary.say
    assert say("verdict") == "结论"
    assert say("class 3") == "类别 3"
    assert say("class 3 (label)") == "类别 3（标签）"
    assert say("log-softmax <= 0, rows log-sum-exp to 0") == "log-softmax ≤ 0，每行的 log-sum-exp 为 0"
    assert say("probabilities in [0, 1]") == "概率在 [0, 1] 内"  # a comma inside brackets splits nothing
    assert say("k·KL + M/β: intercept (β = ∞) k·KL = 0.0855, slope M = -0.0663") == (
        "k·KL + M/β：截距（β = ∞）k·KL = 0.0855，斜率 M = -0.0663"
    )
    assert say("β = 1.5, k = 8") == "β = 1.5, k = 8"  # no English word: as it is
    assert say("log_input[0] as row 1") == "log_input[0]（作为第 1 行）"
    assert say("an English label nobody translated") is None
    assert say("class of its own") is None  # a field's value must translate too
    assert say("verdict", "en") == "verdict"


def test_a_frame_is_rendered_in_chinese_with_the_same_numbers():
    frame = pd.DataFrame(
        {"mean": [0.123456, -2.0], "verdict": ["higher", "not settled"], "n": [3, 4]},
        index=pd.Index(["class 0", "class 1"], name="class"),
    )
    zh, missing = i18n.frame_in(frame, "zh")
    assert missing == []
    assert list(zh.columns) == ["均值", "结论", "n"]
    assert zh.index.name == "类别"
    assert list(zh.index) == ["类别 0", "类别 1"]
    assert list(zh["结论"]) == ["更高", "未定"]
    assert (zh["均值"].to_numpy() == frame["mean"].to_numpy()).all()
    assert zh["n"].dtype == frame["n"].dtype
    unknown = frame.rename(columns={"n": "an unknown header"})
    assert i18n.frame_in(unknown, "zh")[1] == ["an unknown header"]


def test_a_frame_without_english_keeps_ipythons_own_rendering_and_one_with_it_carries_its_chinese():
    assert i18n.frame_bundle(pd.DataFrame({"p": [0.5]}, index=["β = 1"])) is None
    data, metadata = i18n.frame_bundle(pd.DataFrame({"verdict": ["lower"]}))
    assert "verdict" in data["text/html"]
    chinese = metadata[i18n.METADATA_KEY][i18n.BOTH]
    assert "结论" in chinese["text/html"]
    assert "更低" in chinese["text/plain"]


def test_a_missing_word_stops_the_chinese_edition_and_is_named():
    nb = _read(ROOT / "notebooks" / "02-errata.ipynb")
    _, output = next(translate.both_outputs(nb))
    output.metadata[i18n.METADATA_KEY]["missing"] = ["an unknown header"]
    found = translate.problems(nb, i18n.read(i18n.translation_path("02-errata")), "02", i18n.messages())
    assert len(found) == 1
    assert "'an unknown header'" in found[0]
    assert "course/vocabulary.py" in found[0]


def _png_size(png):
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(png))).size


def test_a_figure_is_drawn_again_in_chinese_and_given_back_in_english():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="teacher p")
    ax.set(title="loss", xlabel="margin m = z_y − z_c", ylabel="weight w", xticks=[0, 1])
    ax.set_xticklabels(["class 0", "class 1"])
    ax.legend()
    png = lambda figure: plotting_png(figure)  # noqa: E731
    data, metadata = plotting.figure_bundle(fig, png)
    spec = metadata[i18n.METADATA_KEY]
    assert data["text/plain"] == "Figure: loss"
    assert spec[i18n.BOTH]["text/plain"] == "图：损失"
    assert {"损失", "间隔 m = z_y − z_c", "权重 w", "教师 p", "类别 0", "类别 1"} <= set(spec["texts"])
    assert spec[i18n.BOTH]["image/png"] != data["image/png"]
    assert "missing" not in spec
    # the figure is English again, as it was drawn
    assert ax.get_title() == "loss"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["class 0", "class 1"]
    assert plotting_png(fig) == data["image/png"]
    ax.set_title("an untranslated title")
    assert plotting.figure_bundle(fig, png)[1][i18n.METADATA_KEY]["missing"] == ["an untranslated title"]
    plt.close(fig)


def plotting_png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode()


def test_a_chinese_glyph_the_font_lacks_is_an_error(monkeypatch):
    monkeypatch.setattr(plotting, "LATIN_FONT", "DejaVu Sans")
    monkeypatch.setattr(plotting, "cjk_font", lambda: "DejaVu Sans")  # no CJK glyphs: tofu
    fig, ax = plt.subplots()
    ax.set_title("loss")
    with pytest.raises(RuntimeError, match="glyphs the font lacks"):
        plotting.in_chinese(fig, lambda: plotting_png(fig))
    assert ax.get_title() == "loss"
    plt.close(fig)


# ---- code comments ----


def _names(source):
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.string for t in tokens if t.type == tokenize.NAME}


def _comments(source):
    return [
        t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT
    ]


@pytest.mark.parametrize("stem", COMMENTED)
def test_the_first_notebooks_code_comments_are_in_chinese_and_their_code_is_the_same(stem):
    english, chinese = (
        _read(ROOT / "notebooks" / f"{stem}.ipynb"),
        _read(ROOT / "notebooks" / "zh" / f"{stem}.ipynb"),
    )
    entries = i18n.read(i18n.translation_path(stem))
    for en, zh in zip(english.cells, chinese.cells, strict=True):
        if en.cell_type != "code":
            continue
        assert i18n.without_comments(zh.source) == i18n.without_comments(en.source), en.id
        names = _names(en.source)  # a comment may name the code's variables (input, label, ...)
        for comment in _comments(zh.source):
            english = [word for word in vocabulary.english_words(comment) if word not in names]
            assert not english, f"{stem} {en.id}: {comment}"
        if _comments(en.source):
            assert ("code", en.id) in entries, (
                f"{stem}: code cell {en.id} has comments and no Chinese for them"
            )


def test_a_translation_that_changes_code_is_refused():
    nb = _read(ROOT / "notebooks" / "00-cheat-sheet.ipynb")
    entries = i18n.read(i18n.translation_path("00-cheat-sheet"))
    key = ("code", "loss-code")
    entry = entries[key]
    entries[key] = i18n.Entry(
        "code", "loss-code", entry.source_digest, entry.text.replace("1e-12", "1e-11"), 0
    )
    found = translate.problems(nb, entries, "00", i18n.messages())
    assert found == ["00: code cell 'loss-code': its translation changes the code, not only comments"]


def test_comments_are_taken_out_and_nothing_else():
    source = 'x = 1  # one\n# two\nif x:\n    y = "# not a comment"  # three\n'
    assert i18n.without_comments(source) == 'x = 1\nif x:\n    y = "# not a comment"'
    assert i18n.without_comments(source.replace("x = 1", "x = 2")) != i18n.without_comments(source)
