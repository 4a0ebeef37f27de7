"""The README's example runs and prints what the README shows."""

import doctest
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_as_shown():
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, "the README should contain a runnable example"
    assert result.failed == 0


def test_readme_glossary_is_the_package_glossary():
    import sys

    sys.path.insert(0, str(README.parent / "tools"))
    import readme_glossary

    text = README.read_text(encoding="utf-8")
    assert readme_glossary.PATTERN.search(text), "README lost its glossary markers"
    assert readme_glossary.render(text) == text, "run `python tools/readme_glossary.py`"
