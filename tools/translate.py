"""The Chinese edition: notebooks/zh/ from the English notebooks and the translation files.

    python -m tools.translate build                      # notebooks/*.ipynb -> notebooks/zh/ (make zh)
    python -m tools.translate build --src build/executed --out build/executed-zh
    python -m tools.translate status                     # what is missing or stale, with the English
    python -m tools.translate keys notebooks/03-*.py     # give new Markdown cells a stable id
    python -m tools.translate stub notebooks/03-*.py     # add an entry to translate for each missing cell

A Chinese notebook is its English notebook with every Markdown cell replaced by its translation
(``notebooks/NN-name.zh.md``, keyed by the cell's stable id, see course/i18n.py), every
Markdown output written again from the Chinese template with the values the English run stored,
every output a renderer wrote (the glossary, the explorer's HTML) written again in Chinese, and
every table and figure that the kernel rendered in both languages (``translate_outputs``) taken
in its Chinese rendering. Code cells (their comments in Chinese where the translation file has an
entry ``code KEY`` for the cell, the code the same) and every other output are the English ones,
unchanged: both editions show the same numbers because they are the same run. Nothing falls
back to English: a Markdown cell or output without a current translation, or a table's or
figure's label without Chinese in course/vocabulary.py, stops the build, which names every one.

The notebooks in :data:`PENDING` are not in the edition yet (the reason is given); the Chinese
site lists them as English pages, marked as such.
"""

import argparse
import copy
import re
import sys
from pathlib import Path

import jupytext
import nbformat

from course import i18n
from tools import refresh

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ZH = NOTEBOOKS / "zh"
# notebooks not translated yet, each with the reason; tests/test_translation.py checks that none of
# them has a translation file and that every other notebook has a complete one
PENDING = {}
TODO = "TODO translate"
STOPWORDS = {"the", "a", "an", "of", "and", "to", "in", "is", "its", "it", "on", "for", "what", "how"}


class TranslationError(ValueError):
    """Some cells or outputs of the edition have no current translation (all of them listed)."""


def english_notebooks(folder=NOTEBOOKS):
    return sorted(Path(folder).glob("*.ipynb"))


def markdown_outputs(nb):
    """(cell, output) for every Markdown output of a code cell."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text/markdown" in output.get("data", {}):
                yield cell, output


def output_spec(output, mime="text/markdown"):
    """The ``klloss_i18n`` metadata IPython stored with an output's ``mime`` part, or None."""
    return output.get("metadata", {}).get(mime, {}).get(i18n.METADATA_KEY)


def html_outputs(nb):
    """(cell, output) for every HTML output that :mod:`course.i18n` made (the explorer); other
    HTML (a DataFrame's table) is the same numbers in both editions and stays as it is."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text/html" in output.get("data", {}) and output_spec(output, "text/html") is not None:
                yield cell, output


def both_outputs(nb):
    """(cell, output) for every output rendered in both languages by the kernel (a DataFrame, a
    figure: course.i18n.translate_outputs): its metadata holds the Chinese data."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            spec = output.get("metadata", {}).get(i18n.METADATA_KEY)
            if isinstance(spec, dict) and (i18n.BOTH in spec or "missing" in spec):
                yield cell, output


def code_problems(nb, entries, name, used):
    """Every reason a code cell's Chinese comments (entry ``code KEY``) cannot be used: the cell is
    gone or changed since, or the entry changes its code, not only its comments."""
    found = []
    for cell in nb.cells:
        entry = entries.get(("code", cell.get("id")))
        if cell.cell_type != "code" or entry is None:
            continue
        used.add(("code", cell.id))
        if entry.source_digest != i18n.digest(cell.source):
            found.append(
                f"{name}: code cell {cell.id!r} changed since its comments were translated "
                f"(en:{entry.source_digest}, now en:{i18n.digest(cell.source)})"
            )
        elif i18n.without_comments(entry.text) != i18n.without_comments(cell.source):
            found.append(
                f"{name}: code cell {cell.id!r}: its translation changes the code, not only comments"
            )
    return found


def problems(nb, entries, name, messages):
    """Every reason the notebook ``nb`` (named ``name``) cannot be translated with ``entries``
    (its translation file, by (kind, key)) and ``messages`` (every message, by key)."""
    found, used = [], set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        key = cell.get("id")
        if not key or i18n.POSITIONAL.fullmatch(key):
            found.append(f"{name}: Markdown cell {index} has no stable id: python -m tools.translate keys")
            continue
        used.add(("cell", key))
        entry = entries.get(("cell", key))
        if entry is None:
            found.append(f"{name}: cell {key!r} has no Chinese translation")
        elif entry.source_digest != i18n.digest(cell.source):
            found.append(
                f"{name}: cell {key!r} changed in English since it was translated "
                f"(en:{entry.source_digest}, now en:{i18n.digest(cell.source)})"
            )
        elif not i18n.COMMENT.sub("", entry.text).strip() or TODO in entry.text:
            found.append(f"{name}: cell {key!r} is still to be translated")
    found += code_problems(nb, entries, name, used)
    for cell, output in markdown_outputs(nb):
        spec = output_spec(output)
        if spec is None:
            found.append(f"{name}: cell {cell.id} has a Markdown output not made by course.i18n")
            continue
        if "message" in spec:
            used.add(("message", spec["message"]))
        try:
            english = i18n.render_output(spec, "en")
            if english != output.data["text/markdown"]:
                found.append(f"{name}: cell {cell.id}: the stored output is not its template's rendering")
            i18n.render_output(spec, "zh", messages)
        except (KeyError, ValueError, IndexError) as error:
            found.append(f"{name}: cell {cell.id}: {error}")
    for cell, output in html_outputs(nb):
        try:
            if i18n.render_output(output_spec(output, "text/html"), "en") != output.data["text/html"]:
                found.append(f"{name}: cell {cell.id}: the stored output is not its renderer's output")
        except (KeyError, ValueError) as error:
            found.append(f"{name}: cell {cell.id}: {error}")
    for cell, output in both_outputs(nb):
        spec = output.metadata[i18n.METADATA_KEY]
        if spec.get("missing"):
            words = ", ".join(repr(text) for text in spec["missing"])
            found.append(f"{name}: cell {cell.id}: no Chinese in course/vocabulary.py for {words}")
        if set(spec.get(i18n.BOTH, {})) != set(output.data):
            found.append(f"{name}: cell {cell.id}: the Chinese rendering has not the English one's parts")
    for kind, key in sorted(set(entries) - used):
        found.append(f"{name}: the translation of {kind} {key!r} matches nothing in the English notebook")
    return found


def translate(nb, entries, messages):
    """The Chinese notebook: ``nb`` with its Markdown cells and outputs in Chinese."""
    zh = copy.deepcopy(nb)
    for cell in zh.cells:
        if cell.cell_type == "markdown":
            cell.source = entries[("cell", cell.id)].text
        elif ("code", cell.id) in entries:  # the same code, its comments in Chinese
            cell.source = entries[("code", cell.id)].text
    for _, output in markdown_outputs(zh):
        output.data["text/markdown"] = i18n.render_output(output_spec(output), "zh", messages)
    for _, output in html_outputs(zh):
        output.data["text/html"] = i18n.render_output(output_spec(output, "text/html"), "zh")
    for _, output in list(both_outputs(zh)):  # the Chinese that the kernel rendered beside the English
        output.data = nbformat.NotebookNode(output.metadata[i18n.METADATA_KEY].pop(i18n.BOTH))
    return zh


def build(src=NOTEBOOKS, out=ZH, names=None):
    """Write the Chinese notebook of every English notebook in ``src`` (or of ``names``) that is
    not :data:`PENDING` into ``out``; remove any other notebook there. Raise
    :class:`TranslationError` listing every problem, writing nothing, if any."""
    paths = [p for p in english_notebooks(src) if p.stem not in PENDING]
    if names:
        paths = [p for p in paths if any(p.name.startswith(n) for n in names)]
    messages = i18n.messages()
    results, found = [], []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        entries = i18n.read(i18n.translation_path(path))
        trouble = problems(nb, entries, path.stem, messages)
        found += trouble
        if not trouble:
            results.append((path.name, translate(nb, entries, messages)))
    if found:
        raise TranslationError("\n".join(found))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not names:
        for stale in set(out.glob("*.ipynb")) - {out / name for name, _ in results}:
            stale.unlink()
    for name, nb in results:
        nbformat.write(nb, out / name)
    return [out / name for name, _ in results]


# ---- keys and stubs, for whoever adds or translates a cell ----


def slug(text):
    """A short id from a cell's first words: lower-case ASCII words, math and stop words left out."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = re.sub(r"\$[^$]*\$|\([^)]*\)|['\u2019]s\b", " ", first)  # math, (asides), 's
    words = [w for w in re.findall(r"[a-z0-9_]+", first.lower()) if w not in STOPWORDS]
    return "-".join(words[:4]).strip("-_") or "text"


def add_keys(script):
    """Give every Markdown cell of ``script`` without one a stable id (``title`` for the first
    cell, else from its first words, made unique); rewrite the script; return the new ids."""
    nb = jupytext.read(script, fmt=refresh.FORMAT, config=refresh.JUPYTEXT)
    taken = {c.metadata["id"] for c in nb.cells if "id" in c.metadata}
    added = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or "id" in cell.metadata:
            continue
        base = "title" if index == 0 and "title" not in taken else slug(cell.source)
        key, n = base, 2
        while key in taken:
            key, n = f"{base}-{n}", n + 1
        taken.add(key)
        cell.metadata = nbformat.NotebookNode({"id": key, **cell.metadata})
        added.append(key)
    for index, cell in enumerate(nb.cells):
        cell.id = cell.metadata.get("id", f"cell-{index:02d}")
    if added:
        Path(script).write_text(refresh.script_text(nb), encoding="utf-8")
    return added


def stub(notebook):
    """Append an entry to translate (the English text in a comment, marked TODO) for every
    Markdown cell of ``notebook`` that has none; return their ids."""
    nb = nbformat.read(notebook, as_version=4)
    path = i18n.translation_path(notebook)
    entries = i18n.read(path)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    added = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and ("cell", cell.id) not in entries:
            english = cell.source.replace("-->", "-- >")
            text += f"\n<!-- cell {cell.id} en:{i18n.digest(cell.source)} -->\n<!-- {TODO}:\n{english}\n-->\n"
            added.append(cell.id)
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return added


def status():
    """Every problem of every notebook in the edition, each stale or missing cell with its
    current English text; the number of problems."""
    messages = i18n.messages()
    count = 0
    for path in english_notebooks():
        if path.stem in PENDING:
            print(f"{path.stem}: pending ({PENDING[path.stem]})")
            continue
        nb = nbformat.read(path, as_version=4)
        trouble = problems(nb, i18n.read(i18n.translation_path(path)), path.stem, messages)
        count += len(trouble)
        by_id = {cell.get("id"): cell for cell in nb.cells}
        for line in trouble:
            print(line)
            key = re.search(r"cell '([^']+)'", line)
            if key and key[1] in by_id:
                print("    English, en:" + i18n.digest(by_id[key[1]].source))
                print("    " + by_id[key[1]].source.replace("\n", "\n    "))
        if not trouble:
            print(f"{path.stem}: translated")
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="write the Chinese notebooks")
    build_parser.add_argument("--src", default=str(NOTEBOOKS), help="folder of English .ipynb")
    build_parser.add_argument("--out", default=str(ZH), help="folder to write the Chinese .ipynb to")
    commands.add_parser("status", help="list missing and stale translations")
    for name in ("keys", "stub"):
        sub = commands.add_parser(name)
        sub.add_argument("files", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "build":
        try:
            written = build(args.src, args.out)
        except TranslationError as error:
            print(error, file=sys.stderr)
            print("FAILED: python -m tools.translate status shows the English of each", file=sys.stderr)
            return 1
        print(f"wrote {len(written)} Chinese notebooks to {args.out}")
    elif args.command == "status":
        return 1 if status() else 0
    elif args.command == "keys":
        for script in args.files:
            print(script, add_keys(Path(script).with_suffix(".py")))
    else:
        for notebook in args.files:
            print(notebook, stub(Path(notebook).with_suffix(".ipynb")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
