"""Keep README.md's generated parts current: the glossary (from klloss.glossary) and the
notebook list (titles and summaries from the notebooks, run times as measured by
tools/refresh.py in build/notebook-times.json).

    python tools/readme.py

tests/test_readme.py checks that both parts are current.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import klloss  # noqa: E402

README = ROOT / "README.md"
TIMES = ROOT / "build" / "notebook-times.json"
GLOSSARY = re.compile(r"(<!-- glossary:[^\n]*-->\n).*?(<!-- /glossary -->)", re.S)
NOTEBOOKS = re.compile(r"(<!-- notebooks:[^\n]*-->\n).*?(<!-- /notebooks -->)", re.S)
TIME_CELL = re.compile(r"^\| \[`([^`]+)`\].*\| ([^|]+) \|$", re.M)


def notebook_rows():
    """(file name, title, summary) of every notebook, in order."""
    sys.path.insert(0, str(ROOT / "tools"))
    from build_site import notebook_info

    return [(p.name, *notebook_info(p)) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]


def times_in(text):
    """The run times the README states now, by notebook file name."""
    block = NOTEBOOKS.search(text)
    return dict(TIME_CELL.findall(block.group(0))) if block else {}


def notebook_table(times):
    lines = ["| notebook | what it shows | run time, measured on 2 cores |", "|---|---|---|"]
    for name, title, summary in notebook_rows():
        lines.append(
            f"| [`{name}`](notebooks/{name}) {title} | {summary} | {times.get(name, 'not measured')} |"
        )
    return "\n".join(lines)


def render(text, times=None):
    """README text with both generated parts rewritten; ``times`` default to those it states."""
    times = times_in(text) if times is None else times
    text = GLOSSARY.sub(lambda m: m[1] + klloss.glossary.as_markdown() + "\n" + m[2], text)
    return NOTEBOOKS.sub(lambda m: m[1] + notebook_table(times) + "\n" + m[2], text)


def measured_times():
    """Times recorded by the last refresh, formatted, merged over those the README states."""
    text = README.read_text(encoding="utf-8")
    times = times_in(text)
    if TIMES.is_file():
        for name, seconds in json.loads(TIMES.read_text(encoding="utf-8")).items():
            times[name] = f"{seconds:.0f} s"
    return times


if __name__ == "__main__":
    README.write_text(render(README.read_text(encoding="utf-8"), measured_times()), encoding="utf-8")
