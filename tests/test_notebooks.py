"""The notebooks are fully checkable by nbval, fresh, and reproducible byte for byte.

nbval silently skips a code cell that was never executed, so every code cell must carry an
execution count, in order. Re-executing a notebook with ``tools/refresh.py`` must give back the
committed file byte for byte, and must rewrite the committed figures unchanged.
"""

import hashlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FIGURES = ROOT / "figures"

sys.path.insert(0, str(ROOT / "tools"))
import refresh  # noqa: E402


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_ran_in_order(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    counts = [c["execution_count"] for c in nb["cells"] if c["cell_type"] == "code"]
    assert counts, "no code cells"
    assert None not in counts, f"{counts.count(None)} code cells never executed"
    assert counts == list(range(1, len(counts) + 1))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "raises-exception" not in cell["metadata"].get("tags", []):
            assert all(o["output_type"] != "error" for o in cell["outputs"]), "a cell stored an error"
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", f"stderr stored: {output.get('text', '')[:200]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_with_title_and_summary(path):
    # the HTML index takes each notebook's title and one-line summary from its first cell
    nb = json.loads(path.read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"]).splitlines()
    assert first[0].startswith("# "), "first cell must start with a '# ' title"
    assert any(line.startswith("*") and line.endswith("*") for line in first), "no *summary* line"


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_refresh_reproduces_the_committed_notebook(path, tmp_path):
    figures_before = _digests(FIGURES)
    refresh.nbenv.apply()
    executed = refresh.execute(path, tmp_path)
    assert executed.read_bytes() == path.read_bytes(), "stale: run `make nb NB=...` and commit"
    after = _digests(FIGURES)
    changed = [name for name in figures_before if after.get(name) != figures_before[name]]
    assert not changed, f"figures changed on re-execution: {changed}"
