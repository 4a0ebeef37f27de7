"""Keep README.md's generated parts current: the glossary (from klloss.glossary) and the
notebook list (titles and summaries from the notebooks, run times as measured by
tools/time_notebooks.py in data/notebook-times.json).

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
TIMES = ROOT / "data" / "notebook-times.json"
GLOSSARY = re.compile(r"(<!-- glossary:[^\n]*-->\n).*?(<!-- /glossary -->)", re.S)
NOTEBOOKS = re.compile(r"(<!-- notebooks:[^\n]*-->\n).*?(<!-- /notebooks -->)", re.S)


def notebook_rows():
    """(file name, title, summary) of every notebook, in order."""
    sys.path.insert(0, str(ROOT / "tools"))
    from build_site import notebook_info

    return [(p.name, *notebook_info(p)) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]


def measured_times():
    """The stored notebook timings (tools/time_notebooks.py), or None before the first run."""
    return json.loads(TIMES.read_text(encoding="utf-8")) if TIMES.is_file() else None


def notebook_table(record):
    seconds = record["seconds"] if record else {"pinned": {}, "native": {}}

    def cell(mode, name):
        return f"{seconds[mode][name]:.0f} s" if name in seconds[mode] else "not measured"

    where = f"{record['processor']} ({record['cores']} cores), {record['date']}" if record else "no machine yet"
    lines = [
        f"Run times measured on {where} (`make times`): as the notebooks run, with the code paths",
        "pinned (`tools/nbenv.py`), and with the CPU's own code paths, for comparison.",
        "",
        "| notebook | what it shows | run time, pinned | CPU's own paths |",
        "|---|---|---|---|",
    ]
    for name, title, summary in notebook_rows():
        lines.append(
            f"| [`{name}`](notebooks/{name}) {title} | {summary} | {cell('pinned', name)} | {cell('native', name)} |"
        )
    return "\n".join(lines)


def render(text, record=None):
    """README text with both generated parts rewritten from the stored timings."""
    record = measured_times() if record is None else record
    text = GLOSSARY.sub(lambda m: m[1] + klloss.glossary.as_markdown() + "\n" + m[2], text)
    return NOTEBOOKS.sub(lambda m: m[1] + notebook_table(record) + "\n" + m[2], text)


if __name__ == "__main__":
    README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")
