"""The examples of the READMEs (English and Chinese) and docs/ run and print what they show; the
generated parts of the README and of docs/ are current; the README stays short, and every file it
links to exists."""

import doctest
import re
from pathlib import Path

import pytest

from tools import readme

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 150


EXAMPLES = [README] + [
    p
    for p in [ROOT / "README.zh.md", *sorted((ROOT / "docs").glob("*.md"))]
    if ">>> " in p.read_text(encoding="utf-8")
]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_run_as_shown(path):
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{path.name} should contain a runnable example"
    assert result.failed == 0


@pytest.mark.parametrize("path", list(readme.GENERATED), ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_parts_are_current(path):
    text = path.read_text(encoding="utf-8")
    for marker, _ in readme.GENERATED[path]:
        assert len(marker.findall(text)) == 1, f"{path.name} lost its markers: {marker.pattern}"
    assert readme.render(path, text) == text, "run `python -m tools.readme`"


def test_every_notebook_has_its_run_times():
    record = readme.measured_times()
    assert record, "no data/notebook-times.json: run `make times`"
    for name, _, _ in readme.notebook_rows():
        for mode in ("pinned", "native"):
            assert name in record["seconds"][mode], f"no {mode} run time for {name}: run `make times`"


def test_the_readme_is_short():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= MAX_README_LINES


@pytest.mark.parametrize(
    "path", [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_every_relative_link_reaches_a_file(path):
    text = path.read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    missing = [link for link in relative if not (path.parent / link).exists()]
    assert missing == []
