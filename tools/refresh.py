"""Re-execute notebooks from a clean kernel and store them deterministically.

    python -m tools.refresh notebooks/*.ipynb            # refresh in place
    python -m tools.refresh --out build/x notebooks/*.ipynb  # write executed copies elsewhere

Each notebook ``NN-name.ipynb`` is paired with the percent-format script ``NN-name.py`` beside it
(jupytext, configured in ``jupytext.toml``). The script is the source: its cells are read,
executed, and written to the ``.ipynb`` with their outputs; refreshing in place also rewrites
the script in jupytext's canonical form, so the pair cannot drift. A notebook without a script
gets one.

nbclient with record_timing off, only the kernelspec and cell tags kept as metadata, written
with nbformat: refreshing twice with no code change gives byte-identical files. Every notebook
is run; all failures are reported, then the exit status is 1 if any failed.

A cell may carry a stable id in the script (``# %% [markdown] id="loss"``; every Markdown cell
does, since it keys the cell's Chinese translation, see course/i18n.py): it becomes the
notebook cell's id and is written back to the script. Other cells get a positional id
(``cell-07``), which changes when a cell is inserted before them.
"""

import argparse
import copy
import subprocess
import sys
import time
import traceback
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

from course import i18n, nbenv

ROOT = Path(__file__).resolve().parents[1]
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
TIMEOUT_S = 900
# the pairing format and filters, as in jupytext.toml (read here so that every caller agrees)
JUPYTEXT = jupytext.config.load_jupytext_configuration_file(
    str(Path(__file__).resolve().parents[1] / "jupytext.toml")
)
FORMAT = "py:percent"


def twin(path):
    """The percent-format script paired with notebook ``path``."""
    return Path(path).with_suffix(".py")


def script_text(nb):
    """The paired script's text for notebook ``nb``: jupytext's percent form, then ruff's format
    (the project's linter checks the scripts; jupytext alone leaves one blank line, not two,
    before a cell that starts with a ``def``). Reading it back gives the same cells."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:  # a stable id goes back into the script's cell metadata
        if cell.get("id") and not i18n.POSITIONAL.fullmatch(cell.id):
            cell.metadata = nbformat.NotebookNode({"id": cell.id, **cell.metadata})
    text = jupytext.writes(nb, fmt=FORMAT, config=JUPYTEXT)
    ruff = [sys.executable, "-m", "ruff", "format", "--quiet", "--stdin-filename", "notebooks/script.py", "-"]
    return subprocess.run(ruff, input=text, capture_output=True, text=True, check=True, cwd=ROOT).stdout


def source(path):
    """The notebook to execute: the cells of the paired script, or the notebook if it has none."""
    path = Path(path)
    if twin(path).is_file():
        return jupytext.read(twin(path), fmt=FORMAT, config=JUPYTEXT)
    return nbformat.read(path, as_version=4)


# cells tagged "solution" (worked solutions of exercises) open collapsed in JupyterLab, input and
# output; the site folds them too (tools/build_site.py). The tag in the script is the only source.
COLLAPSED_TAG = "solution"


def stable_id(cell, seen):
    """The cell's stable id from its metadata (checked, unique in the notebook), or None."""
    key = cell.metadata.get("id")
    if key is None:
        return None
    if not isinstance(key, str) or not i18n.KEY.fullmatch(key) or i18n.POSITIONAL.fullmatch(key):
        raise ValueError(f"cell id {key!r}: use letters, digits, - and _, and not the positional cell-NN")
    if key in seen:
        raise ValueError(f"cell id {key!r} is used twice in one notebook")
    seen.add(key)
    return key


def normalise(nb):
    """Keep only what a reader needs and what does not change from run to run."""
    nb.metadata = nbformat.NotebookNode({"kernelspec": KERNELSPEC})
    seen = set()
    for index, cell in enumerate(nb.cells):
        key = stable_id(cell, seen)
        tags = list(cell.metadata.get("tags", []))
        metadata = {"tags": tags} if tags else {}
        if COLLAPSED_TAG in tags:
            hidden = {"source_hidden": True}
            if cell.cell_type == "code":
                hidden["outputs_hidden"] = True
            metadata["jupyter"] = hidden
        cell.metadata = nbformat.NotebookNode(metadata)
        cell.id = key or f"cell-{index:02d}"
    return nb


def execute(path, out_dir=None, allow_errors=False):
    """Execute one notebook in its own folder; write it in place or into ``out_dir``.
    ``allow_errors``: run every cell even after one fails (for timing only)."""
    path = Path(path)
    nb = source(path)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        record_timing=False,
        # one stdout output per cell however the kernel's buffer happened to flush (nbval
        # compares coalesced streams too)
        coalesce_streams=True,
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    normalise(nb)
    target = Path(out_dir) / path.name if out_dir else path
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    if out_dir is None:
        twin(path).write_text(script_text(nb), encoding="utf-8")
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--out", help="write executed copies here instead of in place")
    args = parser.parse_args(argv)
    nbenv.apply()
    failed = []
    for name in args.notebooks:
        print(f"executing {name}", flush=True)
        started = time.perf_counter()
        try:
            execute(name, args.out)
        except Exception:  # report every failing notebook before failing
            traceback.print_exc()
            failed.append(name)
            continue
        print(f"  {time.perf_counter() - started:.1f} s", flush=True)
    if failed:
        print("FAILED: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
