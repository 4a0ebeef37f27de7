"""The README's example runs and prints what the README shows."""

import doctest
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_as_shown():
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, "the README should contain a runnable example"
    assert result.failed == 0


def test_readme_generated_parts_are_current():
    import sys

    sys.path.insert(0, str(README.parent / "tools"))
    import readme

    text = README.read_text(encoding="utf-8")
    assert readme.GLOSSARY.search(text), "README lost its glossary markers"
    assert readme.NOTEBOOKS.search(text), "README lost its notebook markers"
    assert readme.render(text) == text, "run `python tools/readme.py`"
    stated = readme.times_in(text)
    for name, _, _ in readme.notebook_rows():
        assert stated.get(name, "not measured").endswith(" s"), f"no measured run time for {name}"
