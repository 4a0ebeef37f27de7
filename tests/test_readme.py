"""The README's example runs and prints what the README shows."""

import doctest
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_as_shown():
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, "the README should contain a runnable example"
    assert result.failed == 0


def test_readme_generated_parts_are_current():

    from tools import readme

    text = README.read_text(encoding="utf-8")
    for marker in (readme.GLOSSARY, readme.NOTEBOOKS, readme.BENCH):
        assert marker.search(text), f"README lost its markers: {marker.pattern}"
    assert readme.render(text) == text, "run `python -m tools.readme`"
    record = readme.measured_times()
    assert record, "no data/notebook-times.json: run `make times`"
    for name, _, _ in readme.notebook_rows():
        for mode in ("pinned", "native"):
            assert name in record["seconds"][mode], f"no {mode} run time for {name}: run `make times`"
