"""The student notebooks (tools/student.py, `make student`): every worked solution removed, not
folded; every other cell kept as it is; a note where each solution was.

First on a small synthetic notebook, then on the committed notebooks, English and Chinese. The
student edition of the site is checked in tests/test_site.py.
"""

import json
import re
from pathlib import Path

import nbformat
import pytest

from tools import build_site, student

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"en": ROOT / "notebooks", "zh": ROOT / "notebooks" / "zh"}
# every notebook but the cheat-sheet ends with exercises and their worked solutions (issue 26)
WITHOUT_EXERCISES = ("00",)


def _synthetic():
    v4 = nbformat.v4
    stream = v4.new_output("stream", name="stdout", text="rows sum to zero: True\n")
    cells = [
        v4.new_markdown_cell("# 09 · Exercises\n\n*A synthetic page.*"),
        v4.new_code_cell("x = 1", execution_count=1),
        v4.new_markdown_cell("**Exercise 1.** Each solution is below, folded."),
        v4.new_markdown_cell("The first worked solution, in words.", metadata={"tags": ["solution"]}),
        v4.new_code_cell(
            "answer = x + 41\nprint(answer)",
            execution_count=2,
            outputs=[v4.new_output("stream", name="stdout", text="42, the first solution's output\n")],
            metadata={"tags": ["solution"]},
        ),
        v4.new_markdown_cell("**Exercise 2.** Another."),
        v4.new_code_cell("check_the_second()", metadata={"tags": ["solution", "hide-input"]}),
        v4.new_code_cell("y = x + 1", execution_count=3, outputs=[stream]),
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    return v4.new_notebook(cells=cells)


def test_solution_runs_become_one_note_each_and_every_other_cell_stays():
    nb = _synthetic()
    before = json.dumps(nb, sort_keys=True)
    copy = student.strip_solutions(nb)
    assert json.dumps(nb, sort_keys=True) == before, "the teacher's notebook was changed"
    assert [c["id"] for c in copy.cells] == [
        "cell-0",
        "cell-1",
        "cell-2",
        "student-note-1",  # the first exercise's two solution cells: one note
        "cell-5",
        "student-note-2",
        "cell-7",  # a cell after a solution is kept, output and all
    ]
    kept = [c for c in copy.cells if not student.is_note(c)]
    assert kept == [nb.cells[i] for i in (0, 1, 2, 5, 7)]
    notes = [c for c in copy.cells if student.is_note(c)]
    assert [(c.cell_type, c.source) for c in notes] == [("markdown", student.NOTE["en"])] * 2
    text = json.dumps(copy)
    for gone in ("first worked solution", "answer = x + 41", "first solution's output", "check_the_second"):
        assert gone not in text
    nbformat.validate(copy)


def test_the_note_is_in_the_notebooks_language():
    copy = student.strip_solutions(_synthetic(), "zh")
    notes = [c.source for c in copy.cells if student.is_note(c)]
    assert notes == [student.NOTE["zh"]] * 2
    assert re.search(r"[\u4e00-\u9fff]", student.NOTE["zh"])
    # CommonMark closes the bold: its colon stays outside it
    assert "**学生版**：" in student.NOTE["zh"]


def test_an_unknown_language_is_refused_by_name():
    with pytest.raises(ValueError, match="lang"):
        student.strip_solutions(_synthetic(), "fr")


def test_a_copy_that_would_not_run_is_refused(tmp_path):
    nb = _synthetic()
    # a cell outside the solutions reads `answer`, which only the first solution defines
    nb.cells.append(nbformat.v4.new_code_cell("%matplotlib inline\nprint(answer, y)"))
    assert student.names_only_solutions_define(nb) == ["answer"]
    nbformat.write(nb, tmp_path / "09-x.ipynb")
    with pytest.raises(ValueError, match=r"09-x\.ipynb.*'answer'"):
        student.write(tmp_path, tmp_path / "student")
    # defined outside the solutions too (or a builtin): the copy runs
    nb.cells.insert(1, nbformat.v4.new_code_cell("answer = 0\nfor k in range(2):\n    pass"))
    assert student.names_only_solutions_define(nb) == []


def _runs(cells):
    """The runs of consecutive solution cells, counted here from the tags."""
    tags = [student.SOLUTION_TAG in c["metadata"].get("tags", []) for c in cells]
    return sum(t and (i == 0 or not tags[i - 1]) for i, t in enumerate(tags))


def _texts(cell):
    """A cell's source and the text of its outputs."""
    texts = ["".join(cell["source"])]
    for output in cell.get("outputs", []):
        texts.append("".join(output.get("text", "")))
        for kind, value in output.get("data", {}).items():
            if kind.startswith("text/"):
                texts.append("".join(value))
    return texts


def distinctive_lines(solution, others):
    """One line of each text of a solution cell (source, outputs) that no other cell has: the
    longest, stripped (None for a text with no such line)."""
    found = []
    for text in _texts(solution):
        lines = sorted({line.strip() for line in text.splitlines()}, key=len, reverse=True)
        found.append(next((line for line in lines if len(line) >= 8 and line not in others), None))
    return found


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """What `make student` writes: {lang: folder}."""
    out = tmp_path_factory.mktemp("student") / "notebooks"
    student.write(SOURCES["en"], out)
    student.write(SOURCES["zh"], out / "zh", "zh")
    return {"en": out, "zh": out / "zh"}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_student_notebooks_have_no_solution_and_every_other_cell(written, lang):
    teachers = sorted(SOURCES[lang].glob("*.ipynb"))
    assert sorted(p.name for p in written[lang].glob("*.ipynb")) == [p.name for p in teachers]
    with_solutions = []
    for path in teachers:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        copy = json.loads((written[lang] / path.name).read_text(encoding="utf-8"))["cells"]
        solutions = [c for c in cells if student.SOLUTION_TAG in c["metadata"].get("tags", [])]
        kept = [c for c in cells if c not in solutions]
        if solutions:
            with_solutions.append(build_site.number(path))
        # every other cell, in order and unchanged (outputs included); one note per solution
        assert [c for c in copy if not student.is_note(c)] == kept, path.name
        notes = [c for c in copy if student.is_note(c)]
        assert len(notes) == _runs(cells), path.name
        assert all("".join(c["source"]) == student.NOTE[lang] for c in notes), path.name
        # no solution's text, prose, code or output, is left anywhere in the copy
        others = "\n".join(t for c in kept for t in _texts(c))
        left = "\n".join(t for c in copy for t in _texts(c))
        for solution in solutions:
            lines = distinctive_lines(solution, others)
            assert lines[0], f"{path.name}: a solution cell with no line of its own: {solution['source'][:1]}"
            for line in filter(None, lines):
                assert line not in left, f"{path.name}: {line!r} is in the student copy"
        nbformat.validate(nbformat.read(written[lang] / path.name, as_version=4))
    numbers = sorted(build_site.number(p) for p in SOURCES[lang].glob("*.ipynb"))
    assert with_solutions == [n for n in numbers if n not in WITHOUT_EXERCISES]


def test_jupyterlab_pairs_no_script_with_a_student_notebook(written):
    for folder in written.values():
        assert (folder / "jupytext.toml").read_text(encoding="utf-8").splitlines()[-1] == 'formats = "ipynb"'


# an exercise opens a Markdown cell with its bold heading; an open-ended one says so in its heading
EXERCISE = {
    "en": re.compile(r"^\*\*Exercise \d+ ·(.*)$", re.M),
    "zh": re.compile(r"^\*\*练习 \d+ ·(.*)$", re.M),
}
OPEN_ENDED = {"en": "(open-ended)", "zh": "（开放题）"}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_notebook_but_the_cheat_sheet_has_two_exercises_one_open_ended(lang):
    for path in sorted(SOURCES[lang].glob("*.ipynb")):
        if build_site.number(path) in WITHOUT_EXERCISES:
            continue
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        headings = [
            line
            for c in cells
            if c["cell_type"] == "markdown" and student.SOLUTION_TAG not in c["metadata"].get("tags", [])
            for line in EXERCISE[lang].findall("".join(c["source"]))
        ]
        assert len(headings) >= 2, f"{path.name}: {len(headings)} exercise(s)"
        assert any(OPEN_ENDED[lang] in line for line in headings), f"{path.name}: no open-ended exercise"


# a worked solution opens with its bold heading, numbered as the exercise it answers
SOLUTION = {"en": re.compile(r"\*\*Solution( \d+)?\.\*\*"), "zh": re.compile(r"\*\*解答( \d+)?。\*\*")}
NUMBERED = {"en": re.compile(r"\*\*Exercise (\d+) ·"), "zh": re.compile(r"\*\*练习 (\d+) ·")}


def _solution_numbers(cells, lang):
    """(exercise number, the number its solution's heading gives or None), in the reading order."""
    exercise, found = None, []
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        for match in sorted(
            [*NUMBERED[lang].finditer(text), *SOLUTION[lang].finditer(text)], key=lambda m: m.start()
        ):
            if match.re is NUMBERED[lang]:
                exercise = int(match.group(1))
            else:
                found.append((exercise, int(match.group(1)) if match.group(1) else None))
    return found


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_solution_is_numbered_as_its_exercise(lang):
    for path in sorted(SOURCES[lang].glob("*.ipynb")):
        found = _solution_numbers(json.loads(path.read_text(encoding="utf-8"))["cells"], lang)
        assert all(exercise == number for exercise, number in found), f"{path.name}: {found}"


def test_the_numbering_check_can_fail():
    cells = [
        {"cell_type": "markdown", "source": ["**Exercise 1 · a**\n\n**Solution.** x\n\n**Exercise 2 · b**"]}
    ]
    cells.append({"cell_type": "markdown", "source": ["**Solution 1.** y"]})
    assert _solution_numbers(cells, "en") == [(1, None), (2, 1)]
