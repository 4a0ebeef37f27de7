"""Student copies of the notebooks: every exercise's worked solution removed, not folded.

    python -m tools.student NOTEBOOK_DIR OUT_DIR [--zh ZH_NOTEBOOK_DIR]    # make student

A worked solution is a run of consecutive cells tagged ``solution`` (Markdown and code, a code
cell's outputs with it). Each run is replaced by one Markdown cell, the note (:data:`NOTE`, tag
``student-note``), which says in the notebook's language that this copy leaves the solution out:
an exercise's own text may say that its solution is below it, folded, and the note is what the
student finds there instead. Every other cell is kept as it is, outputs included, so a student
copy needs no second run of the notebooks: it is cut from executed ones (the committed notebooks
for `make student`, build/executed for the site's student edition, tools/build_site.py).

A copy is refused when a code cell outside the solutions reads a name that only solution cells
define: without them, it would not run. ``OUT_DIR`` (and ``OUT_DIR/zh``) gets a jupytext.toml
that pairs nothing, so that JupyterLab saves no script beside the copies.
"""

import argparse
import ast
import builtins
import copy
from pathlib import Path

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

SOLUTION_TAG = "solution"
NOTE_TAG = "student-note"
# what the student finds where a worked solution was (a Chinese label: its colon stays outside
# the bold, or CommonMark does not close the bold before a Chinese character)
NOTE = {
    "en": "> **Student edition**: the worked solution is left out of this copy. "
    "Work the exercise out yourself.",
    "zh": "> **学生版**：这一版不含解答，请自己完成这道练习。",
}
UNPAIRED = (
    "# Student copies (python -m tools.student): generated, not paired with a script, so that\n"
    "# JupyterLab saves no .py here. Edit the notebooks in notebooks/, never these.\n"
    'formats = "ipynb"\n'
)


def is_solution(cell):
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def is_note(cell):
    return NOTE_TAG in cell.get("metadata", {}).get("tags", [])


def strip_solutions(nb, lang="en"):
    """A copy of ``nb`` without its solution cells; each run of them becomes one note cell
    (:data:`NOTE` in ``lang``, the id ``student-note-N``, N counting the runs from 1)."""
    if lang not in NOTE:
        raise ValueError(f"lang must be one of {sorted(NOTE)}, not {lang!r}")
    student = copy.deepcopy(nb)
    cells, runs, previous = [], 0, False
    for cell in student.cells:
        solution = is_solution(cell)
        if solution and not previous:
            runs += 1
            note = nbformat.v4.new_markdown_cell(NOTE[lang], metadata={"tags": [NOTE_TAG]})
            note["id"] = f"student-note-{runs}"
            cells.append(note)
        elif not solution:
            cells.append(cell)
        previous = solution
    student.cells = cells
    return student


def _names(source):
    """(names a code cell binds, names it reads), its IPython syntax (magics) made Python first."""
    tree = ast.parse(TransformerManager().transform_cell(source))
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return bound, read


def names_only_solutions_define(nb):
    """The names that code cells outside the solutions read and only solution cells bind, sorted:
    the reasons a student copy of ``nb`` would fail to run (none: an empty list)."""
    kept_bound, kept_read, solution_bound = set(dir(builtins)), set(), set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        bound, read = _names(cell.source)
        if is_solution(cell):
            solution_bound |= bound
        else:
            kept_bound |= bound
            kept_read |= read
    return sorted(kept_read & (solution_bound - kept_bound))


def student_copy(path, lang="en"):
    """The student copy of the notebook at ``path``; ValueError if it would not run."""
    nb = nbformat.read(path, as_version=4)
    missing = names_only_solutions_define(nb)
    if missing:
        raise ValueError(
            f"{path}: cells outside the solutions read {missing}, which only solution cells define"
        )
    return strip_solutions(nb, lang)


def write(notebook_dir, out_dir, lang="en"):
    """The student copy of every notebook of ``notebook_dir`` into ``out_dir``; their paths."""
    out = Path(out_dir)
    paths = sorted(Path(notebook_dir).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no notebooks in {notebook_dir}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "jupytext.toml").write_text(UNPAIRED, encoding="utf-8")
    written = []
    for path in paths:
        nbformat.write(student_copy(path, lang), out / path.name)
        written.append(out / path.name)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--zh", help="the Chinese notebooks, copied into OUT_DIR/zh")
    args = parser.parse_args(argv)
    written = write(args.notebook_dir, args.out_dir)
    if args.zh:
        written += write(args.zh, Path(args.out_dir) / "zh", "zh")
    print(f"{len(written)} student notebooks in {Path(args.out_dir).resolve()}")


if __name__ == "__main__":
    main()
