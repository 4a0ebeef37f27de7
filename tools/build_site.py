"""Build the teaching site: one HTML page per notebook and an index, readable with no network,
in English and, under ``zh/``, in Chinese.

    python -m tools.build_site NOTEBOOK_DIR SITE_DIR [--zh ZH_NOTEBOOK_DIR] [--student STUDENT_SITE_DIR]

Every ``*.ipynb`` in NOTEBOOK_DIR becomes a page (no list to maintain), rendered with the
``klloss`` template (tools/site/templates), which extends nbconvert's ``lab`` template without
any CDN script. MathJax comes from tools/site/node_modules (``npm ci --prefix tools/site``) and
is copied beside the pages. Plot PNGs are inlined by nbconvert as data URIs.

What the site reads from a notebook (the conventions the notebooks follow):

* the first cell: a ``# `` title line, a ``*one-line summary*`` line (``**...**`` in Chinese,
  which is never set in italics), and optionally the lines
  ``**You will learn:** ...`` and ``**You need first:** ...`` (shown on the index; a notebook
  without them still builds);
* the file name's number, what comes before its first ``-`` (``04``, or ``04a`` for a notebook
  placed after 04): notebooks numbered in :data:`CORE` form the core of the reading path, every
  other notebook is optional;
* links between notebooks, written ``[text](05b-name.ipynb#anchor)`` so that they work in
  JupyterLab, become links to the pages (``05b-name.html#anchor``); an anchor is an
  ``<a id="anchor"></a>`` in the target's Markdown, the same in both languages;
* cell tags: ``solution`` folds the whole cell (consecutive solution cells fold together behind
  one "Show solution"; the student edition removes them); ``hide-input`` folds a code cell's
  input; a code cell whose outputs include an image has its input folded too, so that prose and
  figures lead.

The Chinese edition (``--zh``, the notebooks ``tools/translate.py`` writes) is built the same
way into ``SITE_DIR/zh/``, its opening lines reading ``**你将学到：**`` and ``**预备知识：**`` (or the
older ``**你需要先读：**``), its
words set in a CJK font that ``make browser`` installs (Noto Sans CJK SC, named in the pages'
CSS). Every page links to its counterpart in the other language; an English notebook whose
translation is still pending is listed on the Chinese index as an English page.

Two editions: the teacher's (SITE_DIR), where each worked solution is folded under its
exercise, and, with ``--student``, the student's (STUDENT_SITE_DIR, its Chinese pages in ``zh/``),
where every solution cell is removed and a note stands in its place (tools/student.py, which
writes the student notebooks the same way). Both are built from the same executed notebooks:
nothing runs twice. Each index says which edition it is; the teacher's links to the student's,
and nothing in the student's links to a solution.

Markdown outputs (``text/markdown``, e.g. ``IPython.display.Markdown``) are rendered with
markdown-it-py, whose tables follow GitHub's rules as JupyterLab's renderer does: nbconvert's
own renderer (mistune) drops a whole table to a paragraph of raw pipes as soon as one row has
more cells than the header.
"""

import argparse
import concurrent.futures
import html
import math
import multiprocessing
import os
import re
import shutil
from pathlib import Path

import nbformat
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from nbconvert import HTMLExporter

from tools import student

ROOT = Path(__file__).resolve().parents[1]
SITE_SOURCES = ROOT / "tools" / "site"
MATHJAX = SITE_SOURCES / "node_modules" / "mathjax" / "es5" / "tex-svg-full.js"
PROJECT_TITLE = "klloss: klloss_v2, correct and explained"

# the reading path: notebooks whose number (the file name up to its first "-") is one of these
# are the core, read in order; every other notebook is optional (the appendices of 05, 05b and 05c,
# performance, the cheat-sheet, ...). The match is exact: "05b" is not "05"
CORE = ("01", "02", "03", "04", "04a", "05")
# reading time = words of the notebook's Markdown and code (outputs not counted) / this rate
WORDS_PER_MINUTE = 200
# Chinese text is read by characters: 255 a minute is the mean silent reading rate of adult
# native readers of Chinese in the IReST study (Trauzettel-Klosinski et al., 2012, Investigative
# Ophthalmology & Visual Science 53(9)); the Latin words of a Chinese page (code, formulas, names)
# still count at WORDS_PER_MINUTE
CJK_CHARACTERS_PER_MINUTE = 255
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
# the teacher's edition folds each worked solution, the student's removes it
EDITIONS = ("teacher", "student")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
SOLUTION_TAG = student.SOLUTION_TAG
HIDE_INPUT_TAG = "hide-input"
# what differs between the two editions' pages: the words of the site itself, where the opening
# lines of a notebook are found, and the other language's edition (the switch on every page)
UI = {
    "en": {
        "language_code": "en",
        "index": "index.html",
        "title": PROJECT_TITLE,
        "readme": "README.md",
        "all": "klloss: all notebooks",
        "solution": ("Show solution", "Hide solution"),
        "code": ("Show code", "Hide code"),
        "learn": "You will learn:",
        "need": "You need first:",
        "minutes": "{} min to read",
        "exercises": "{} exercises",
        "other": "zh",
        "switch": "中文",
        "untranslated": "中文版尚未翻译",
        "pending": "",
        "teacher": "Teacher's edition: under each exercise, its worked solution, folded.",
        "to_student": ("The student edition", " has the same pages without the solutions."),
        "student": "Student edition: the exercises without their worked solutions.",
        "student_badge": "Student edition",
    },
    "zh": {
        "language_code": "zh-CN",  # simplified Chinese, as written for readers in China
        "index": "index.zh.html",
        "title": "klloss：正确讲解 klloss_v2",
        "readme": "README.zh.md",
        "all": "klloss：全部笔记本",
        "solution": ("显示解答", "收起解答"),
        "code": ("显示代码", "收起代码"),
        "learn": "你将学到：",
        "need": "预备知识：",
        "minutes": "{} 分钟",
        "exercises": "{} 道练习",
        "other": "en",
        "switch": "English",
        "untranslated": "",
        "pending": "英文页面：中文翻译尚未完成",
        "teacher": "教师版：每道练习下方折叠着它的解答。",
        "to_student": ("学生版", "的页面相同，只是不含解答。"),
        "student": "学生版：只有练习，不含解答。",
        "student_badge": "学生版",
    },
}
# older wordings of an opening line that are still read (the index shows the UI's words)
OPENING_ALIASES = {"zh": {"need": ("你需要先读：",)}}
OPENING = {
    lang: {
        key: re.compile(
            r"^\*\*(?:"
            + "|".join(map(re.escape, (ui[key], *OPENING_ALIASES.get(lang, {}).get(key, ()))))
            + r")\*\*\s*(.*)$"
        )
        for key in ("learn", "need")
    }
    for lang, ui in UI.items()
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


# the summary line: the whole line in italics (English) or in bold (Chinese, which is never set in
# italics), with no other emphasis inside
SUMMARY = re.compile(r"\*[^*](?:[^*]*[^*])?\*|\*\*[^*](?:[^*]*[^*])?\*\*")
# a link to a notebook of the course, as the Markdown cells write it: (04-what-it-teaches.ipynb)
NOTEBOOK_LINK = re.compile(r'href="(\d\d[a-z]?-[\w-]+)\.ipynb(#[^"]*)?"')


def notebook_info(path):
    """(title, summary) from a notebook's first cell: its '# ' line and its '*...*' (or '**...**')
    line."""
    lines = first_cell_lines(nbformat.read(path, as_version=4))
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), None)
    summary = next(
        (line.strip().strip("*").strip() for line in lines if SUMMARY.fullmatch(line.strip())), None
    )
    if title is None or summary is None:
        raise ValueError(
            f"{path}: the first cell needs a '# NN · Title' line and a '*one-line summary*' "
            "(or '**...**') line"
        )
    return title, summary


def opening(nb, lang="en"):
    """The first cell's 'You will learn' and 'You need first' lines (Markdown), None if absent."""
    lines = [line.strip() for line in first_cell_lines(nb)]
    found = {}
    for key, pattern in OPENING[lang].items():
        matches = [m.group(1).strip() for m in map(pattern.match, lines) if m]
        found[key] = matches[0] if matches and matches[0] else None
    return found


def word_count(nb):
    """Whitespace-separated words in the Markdown and code cells (outputs not counted)."""
    return sum(len(cell.source.split()) for cell in nb.cells if cell.cell_type in ("markdown", "code"))


def cjk_count(nb):
    """(CJK characters, words with none) in the Markdown and code cells (outputs not counted)."""
    text = " ".join(cell.source for cell in nb.cells if cell.cell_type in ("markdown", "code"))
    return len(CJK.findall(text)), sum(not CJK.search(word) for word in text.split())


def reading_minutes(nb, lang="en"):
    """Reading time in whole minutes (at least 1): words at :data:`WORDS_PER_MINUTE`; on a
    Chinese page, CJK characters at :data:`CJK_CHARACTERS_PER_MINUTE` and the other words at
    :data:`WORDS_PER_MINUTE`."""
    if lang == "en":
        return max(1, math.ceil(word_count(nb) / WORDS_PER_MINUTE))
    characters, words = cjk_count(nb)
    return max(1, math.ceil(characters / CJK_CHARACTERS_PER_MINUTE + words / WORDS_PER_MINUTE))


def number(path):
    """A notebook's number: its file name up to the first ``-`` ("04a" for ``04a-name.ipynb``)."""
    return Path(path).name.split("-", 1)[0]


def is_core(path):
    return number(path) in CORE


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


def link_pages(text, hrefs):
    """``text`` (HTML) with every link to a notebook, ``NN-name.ipynb`` as the Markdown cells write
    it (so that it works in JupyterLab, the Chinese notebook's beside the Chinese ones), pointing to
    that notebook's page on this site: ``hrefs`` maps ``NN-name.html`` to the page's href here
    (``../NN-name.html`` for an English page on the Chinese site). A link to no page is an error."""

    def page(match):
        name = match.group(1) + ".html"
        if name not in hrefs:
            raise ValueError(f"a link to {match.group(1)}.ipynb, which is no page of the site")
        return f'href="{hrefs[name]}{match.group(2) or ""}"'

    return NOTEBOOK_LINK.sub(page, text)


def project_paragraph(lang="en"):
    """The README's first paragraph (after the title), as HTML: the site's 'what is this'
    (README.zh.md's for the Chinese index)."""
    text = (ROOT / UI[lang]["readme"]).read_text(encoding="utf-8")
    paragraph = text.split("\n\n")[1].replace("\n", " ")
    escaped = html.escape(paragraph, quote=False)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def load(path, lang="en", edition="teacher"):
    """The notebook at ``path`` as the ``edition`` shows it: as it is (``teacher``), or with its
    solutions removed and a note in ``lang`` where each was (``student``, tools/student.py)."""
    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {EDITIONS}, not {edition!r}")
    return student.student_copy(path, lang) if edition == "student" else nbformat.read(path, as_version=4)


# an exercise opens a Markdown cell with its bold heading ("**Exercise 2 · ...**")
EXERCISE_HEADING = {
    "en": re.compile(r"^\*\*Exercise \d+ ·", re.M),
    "zh": re.compile(r"^\*\*练习 \d+ ·", re.M),
}


def exercise_count(nb, lang="en"):
    """How many exercises the notebook sets: the exercise headings of its Markdown cells."""
    return sum(
        len(EXERCISE_HEADING[lang].findall(cell.source)) for cell in nb.cells if cell.cell_type == "markdown"
    )


def read_pages(notebook_dir, lang="en", edition="teacher"):
    """Every notebook of ``notebook_dir`` as a page record, in reading-path order: the core
    notebooks by number, then the optional ones by number."""
    pages = []
    for path in sorted(Path(notebook_dir).glob("*.ipynb")):
        nb = load(path, lang, edition)
        title, summary = notebook_info(path)
        pages.append(
            {
                "path": path,
                "href": f"{path.stem}.html",
                "title": title,
                "summary": summary,
                "core": is_core(path),
                "minutes": reading_minutes(nb, lang),
                "exercises": exercise_count(nb, lang),
                "words": word_count(nb),
                **opening(nb, lang),
            }
        )
    return [p for p in pages if p["core"]] + [p for p in pages if not p["core"]]


def index_item(page, lang="en"):
    """One notebook on the index: link, reading time, summary, what it teaches and needs. A page
    of the other language (a translation still pending) is marked as such."""
    ui, words = UI[lang], UI[page.get("lang", lang)]  # the site's words, the page's
    foreign = page.get("lang", lang) != lang
    code = UI[page.get("lang", lang)]["language_code"]
    attributes = f' hreflang="{code}" lang="{code}"' if foreign else ""
    parts = [
        f'<li class="notebook{" untranslated" if foreign else ""}" data-minutes="{page["minutes"]}">',
        f'<a href="{page["href"]}"{attributes}>{html.escape(page["title"])}</a>',
        f'<span class="minutes">{ui["minutes"].format(page["minutes"])}</span>',
    ]
    if page.get("exercises"):
        parts.append(f'<span class="exercises">{ui["exercises"].format(page["exercises"])}</span>')
    if foreign:
        parts.append(f'<span class="pending">{ui["pending"]}</span><span lang="{code}">')
    parts.append(f'<span class="summary">{inline_markdown(page["summary"])}</span>')
    for key in ("learn", "need"):
        if page[key]:
            line = inline_markdown(page[key])
            parts.append(f'<span class="{key}"><strong>{words[key]}</strong> {line}</span>')
    parts.append("</span></li>" if foreign else "</li>")
    return "".join(parts)


def edition_note(lang="en", edition="teacher", student_href=None):
    """The index's line that says which edition it is; the teacher's links to the student
    edition's index (``student_href``) if there is one, the student's links to no solution."""
    ui = UI[lang]
    text = html.escape(ui[edition])
    if edition == "teacher" and student_href:
        link, rest = ui["to_student"]
        space = "" if lang == "zh" else " "  # no space after a Chinese full stop
        anchor = f'<a class="klloss-student" href="{student_href}">{html.escape(link)}</a>'
        text += space + anchor + html.escape(rest)
    return f'<p class="edition {edition}" id="edition">{text}</p>'


def index_page(pages, lang="en", switch=None, edition="teacher", student_href=None):
    """The index: which edition it is, the reading path (core, then optional) with reading times;
    ``switch`` is the href of the other language's index, or None."""
    ui = UI[lang]
    core = [p for p in pages if p["core"]]
    optional = [p for p in pages if not p["core"]]
    other = UI[ui["other"]]
    link = (
        f'<a class="klloss-lang" href="{switch}" hreflang="{other["language_code"]}" '
        f'lang="{other["language_code"]}">{ui["switch"]}</a>'
        if switch
        else ""
    )
    return (
        (SITE_SOURCES / ui["index"])
        .read_text(encoding="utf-8")
        .format(
            title=html.escape(ui["title"]),
            about=project_paragraph(lang),
            core="\n".join(index_item(p, lang) for p in core),
            optional="\n".join(index_item(p, lang) for p in optional),
            core_minutes=sum(p["minutes"] for p in core),
            core_exercises=sum(p.get("exercises", 0) for p in core),
            wpm=WORDS_PER_MINUTE,
            cpm=CJK_CHARACTERS_PER_MINUTE,
            switch=link,
            edition=edition_note(lang, edition, student_href),
        )
    )


def exporter(lang="en"):
    html_exporter = HTMLExporter(
        template_name="klloss",
        extra_template_basedirs=[str(SITE_SOURCES / "templates")],
        # nbconvert takes an ISO 639-1 code alone ("zh"); write_pages makes it "zh-CN"
        language_code=UI[lang]["language_code"].split("-")[0],
    )
    html_exporter.register_filter("klloss_markdown", markdown_to_html)
    return html_exporter


def write_pages(pages, folder, lang, counterparts, assets="", edition="teacher", linked=None):
    """One HTML page per record of ``pages`` into ``folder``; ``counterparts``: the href of each
    page's counterpart in the other language, by file name; ``assets``: the way to mathjax/;
    ``linked``: the pages a link to a notebook may reach (``pages`` if None: on the Chinese site,
    the English pages still pending too)."""
    html_exporter = exporter(lang)
    ui = UI[lang]
    for i, page in enumerate(pages):
        other = UI[ui["other"]]
        site = {
            "previous": pages[i - 1] if i > 0 else None,
            "next": pages[i + 1] if i + 1 < len(pages) else None,
            "ui": ui,
            "assets": assets,
            "switch": counterparts.get(page["href"]),
            "switch_lang": other["language_code"],
            "edition": edition,
        }
        resources = {"metadata": {"name": page["title"]}, "klloss": site}
        nb = mark_folds(load(page["path"], lang, edition))
        body, _ = html_exporter.from_notebook_node(nb, resources=resources)
        code = ui["language_code"]
        body = body.replace(f'<html lang="{code.split("-")[0]}">', f'<html lang="{code}">', 1)
        (folder / page["href"]).write_text(link_pages(body, hrefs(linked or pages)), encoding="utf-8")


def hrefs(pages):
    """For :func:`link_pages`: each page's file name and its href from the folder of ``pages``."""
    return {Path(page["href"]).name: page["href"] for page in pages}


def build(notebook_dir, site_dir, zh_dir=None, edition="teacher", student_dir=None):
    """Write ``index.html``, one page per notebook and ``mathjax/`` into ``site_dir``; with
    ``zh_dir`` (the Chinese notebooks) the Chinese pages and their index into ``site_dir/zh/``.
    ``edition``: ``teacher`` (solutions folded) or ``student`` (solutions removed); a teacher's
    index links to the student edition built in ``student_dir``, if given."""
    if not MATHJAX.is_file():
        raise FileNotFoundError(f"{MATHJAX} is missing: run `npm ci --prefix tools/site` (make report does)")
    pages = read_pages(notebook_dir, "en", edition)
    if not pages:
        raise FileNotFoundError(f"no notebooks in {notebook_dir}")
    zh_pages = read_pages(zh_dir, "zh", edition) if zh_dir else []
    if zh_dir and not zh_pages:
        raise FileNotFoundError(f"no notebooks in {zh_dir}")
    site = Path(site_dir)
    site.mkdir(parents=True, exist_ok=True)
    (site / "mathjax").mkdir(exist_ok=True)
    shutil.copyfile(MATHJAX, site / "mathjax" / MATHJAX.name)

    def student_index(folder):  # the student edition's index, seen from ``folder`` of this site
        if student_dir is None:
            return None
        target = Path(student_dir) / folder.relative_to(site)
        return Path(os.path.relpath(target, folder), "index.html").as_posix()

    translated = {p["href"] for p in zh_pages}
    write_pages(pages, site, "en", {href: f"zh/{href}" for href in translated}, "", edition)
    index = index_page(pages, "en", "zh/index.html" if zh_pages else None, edition, student_index(site))
    (site / "index.html").write_text(link_pages(index, hrefs(pages)), encoding="utf-8")
    if zh_pages:
        (site / "zh").mkdir(exist_ok=True)
        counterparts = {p["href"]: f"../{p['href']}" for p in pages}
        # an English page whose translation is pending keeps its place on the Chinese reading path
        chinese = {p["href"]: p for p in zh_pages}
        listed = [chinese.get(p["href"]) or {**p, "href": f"../{p['href']}", "lang": "en"} for p in pages]
        write_pages(zh_pages, site / "zh", "zh", counterparts, "../", edition, listed)
        index = index_page(listed, "zh", "../index.html", edition, student_index(site / "zh"))
        (site / "zh" / "index.html").write_text(link_pages(index, hrefs(listed)), encoding="utf-8")
    return site / "index.html"


def build_editions(notebook_dir, site_dir, zh_dir=None, student_dir=None):
    """The teacher's site into ``site_dir`` and, with ``student_dir``, the student edition there,
    both from the same (executed) notebooks; the teacher's index links to the student's. The
    student edition is built in a second process meanwhile, so that it adds little to the time."""
    if student_dir is None:
        return build(notebook_dir, site_dir, zh_dir)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no fork of this one's threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        student_edition = pool.submit(build, notebook_dir, student_dir, zh_dir, "student")
        index = build(notebook_dir, site_dir, zh_dir, "teacher", student_dir)
        student_edition.result()
    return index


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook_dir")
    parser.add_argument("site_dir")
    parser.add_argument("--zh", help="the Chinese notebooks (python -m tools.translate build writes them)")
    parser.add_argument("--student", metavar="STUDENT_SITE_DIR", help="also build the student edition there")
    args = parser.parse_args(argv)
    index = build_editions(args.notebook_dir, args.site_dir, args.zh, args.student)
    print(f"open {index.resolve()}")
    if args.student:
        print(f"student edition: {(Path(args.student) / 'index.html').resolve()}")


if __name__ == "__main__":
    main()
