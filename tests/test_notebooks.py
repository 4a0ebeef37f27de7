"""The notebooks are fully checkable by nbval, fresh, and reproducible byte for byte.

nbval silently skips a code cell that was never executed, so every code cell must carry an
execution count, in order. Re-executing a notebook with ``tools/refresh.py`` must give back the
committed file byte for byte, and must rewrite the committed figures unchanged. Each notebook
is paired with a percent-format script (jupytext), and the two must say the same.

The stored outputs are exact on x86-64 Linux, where course/nbenv.py pins every CPU-dependent code
path; elsewhere (aarch64, macOS) the notebooks still run and assert what they claim, but their
printed digits are not compared (the Makefile runs nbval in lax mode there).
"""

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tools import refresh

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FIGURES = ROOT / "figures"


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


def test_every_notebook_has_its_script_and_the_pair_agrees():
    scripts = sorted(p for p in (ROOT / "notebooks").glob("*.py") if p.name != "conftest.py")
    assert [p.stem for p in scripts] == [p.stem for p in NOTEBOOKS], "a notebook or a script lacks its twin"
    for path in NOTEBOOKS:
        nb = refresh.nbformat.read(path, as_version=4)
        expected = refresh.script_text(nb)
        actual = refresh.twin(path).read_text(encoding="utf-8")
        assert actual == expected, f"{path.name} and its script differ: edit the .py, then `make nb NB=...`"


@pytest.fixture
def pinned(monkeypatch):
    """The notebooks' environment (course/nbenv.py), for this test only: a kernel started from
    here inherits it, and it goes when the test ends (nbenv.apply() would leave PYTHONPATH set for
    every later test, and pip in test_wheel would then take the clone for an installed klloss)."""
    for name, value in refresh.nbenv.ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MPLBACKEND", raising=False)


@pytest.mark.slow  # starts a kernel
def test_a_script_edit_reaches_the_notebook(tmp_path, pinned):
    # the script is the source: refresh executes the script's cells, not the notebook's
    nb = refresh.nbformat.v4.new_notebook(cells=[refresh.nbformat.v4.new_code_cell("print('old')")])
    path = tmp_path / "x.ipynb"
    refresh.nbformat.write(nb, path)
    refresh.twin(path).write_text("# %%\nprint('new')\n", encoding="utf-8")
    refresh.execute(path)
    executed = refresh.nbformat.read(path, as_version=4)
    assert executed.cells[0].source == "print('new')"
    assert executed.cells[0].outputs[0]["text"] == "new\n"
    assert refresh.twin(path).read_text(encoding="utf-8") == refresh.script_text(executed)


CALLER_SETTINGS = [
    {"ATEN_CPU_CAPABILITY": "avx512"},
    {"ATEN_CPU_CAPABILITY": "avx2"},
    {"ATEN_CPU_CAPABILITY": "default"},
    {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
]
PROBE = (
    "import os, torch; "
    "print(torch.backends.cpu.get_cpu_capability(), os.environ['MKL_CBWR'], "
    "os.environ['ONEDNN_MAX_CPU_ISA'], "
    "torch.get_num_threads())"
)


@pytest.mark.slow  # imports torch in a new process, once per setting
@pytest.mark.parametrize("caller", CALLER_SETTINGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_kernels_run_on_the_pinned_code_paths_whatever_the_caller_sets(caller):
    # a kernel inherits the environment of the process that applied nbenv; whatever the caller
    # asked for, the notebooks' arithmetic runs on the same code on every x86-64 CPU
    env = {**os.environ, **caller}
    script = "from course import nbenv; import subprocess, sys; nbenv.apply(); "
    script += f"subprocess.run([sys.executable, '-c', {PROBE!r}], check=True)"
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["DEFAULT", "COMPATIBLE", "SSE41", "1"], out.stdout + out.stderr


EXACT = platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")


@pytest.mark.slow  # executes every notebook
@pytest.mark.skipif(
    not EXACT, reason="stored outputs are bit-exact on x86-64 Linux only (docs/reproducibility.md)"
)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_refresh_reproduces_the_committed_notebook(path, tmp_path, pinned):
    figures_before = _digests(FIGURES)
    executed = refresh.execute(path, tmp_path)
    assert executed.read_bytes() == path.read_bytes(), "stale: run `make nb NB=...` and commit"
    after = _digests(FIGURES)
    changed = [name for name in figures_before if after.get(name) != figures_before[name]]
    assert not changed, f"figures changed on re-execution: {changed}"


def test_solution_cells_open_collapsed_in_jupyterlab():
    nb = refresh.nbformat.v4.new_notebook(
        cells=[
            refresh.nbformat.v4.new_code_cell("1 + 1", metadata={"tags": ["solution"]}),
            refresh.nbformat.v4.new_markdown_cell("**Solution.**", metadata={"tags": ["solution"]}),
            refresh.nbformat.v4.new_code_cell("2 + 2"),
        ]
    )
    cells = refresh.normalise(nb).cells
    assert cells[0].metadata["jupyter"] == {"source_hidden": True, "outputs_hidden": True}
    assert cells[1].metadata["jupyter"] == {"source_hidden": True}
    assert "jupyter" not in cells[2].metadata
