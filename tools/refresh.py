"""Re-execute notebooks from a clean kernel and store them deterministically.

    python tools/refresh.py notebooks/*.ipynb            # refresh in place
    python tools/refresh.py --out build/x notebooks/*.ipynb  # write executed copies elsewhere

nbclient with record_timing off, only the kernelspec and cell tags kept as metadata, written
with nbformat: refreshing twice with no code change gives byte-identical files. Every notebook
is run; all failures are reported, then the exit status is 1 if any failed.
"""

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbenv  # noqa: E402

TIMES = Path(__file__).resolve().parents[1] / "build" / "notebook-times.json"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
TIMEOUT_S = 900


def normalise(nb):
    """Keep only what a reader needs and what does not change from run to run."""
    nb.metadata = nbformat.NotebookNode({"kernelspec": KERNELSPEC})
    for index, cell in enumerate(nb.cells):
        tags = cell.metadata.get("tags", [])
        cell.metadata = nbformat.NotebookNode({"tags": tags} if tags else {})
        cell.id = f"cell-{index:02d}"
    return nb


def execute(path, out_dir=None):
    """Execute one notebook in its own folder; write it in place or into ``out_dir``."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name="python3",
        record_timing=False,
        # one stdout output per cell however the kernel's buffer happened to flush (nbval
        # compares coalesced streams too)
        coalesce_streams=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    normalise(nb)
    target = Path(out_dir) / path.name if out_dir else path
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--out", help="write executed copies here instead of in place")
    args = parser.parse_args(argv)
    nbenv.apply()
    failed = []
    times = json.loads(TIMES.read_text()) if TIMES.is_file() else {}
    for name in args.notebooks:
        print(f"executing {name}", flush=True)
        started = time.perf_counter()
        try:
            execute(name, args.out)
        except Exception:  # report every failing notebook before failing
            traceback.print_exc()
            failed.append(name)
            continue
        times[Path(name).name] = round(time.perf_counter() - started, 1)
        print(f"  {times[Path(name).name]:.1f} s", flush=True)
    # wall times, for the README's notebook list (tools/readme.py)
    TIMES.parent.mkdir(exist_ok=True)
    TIMES.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n")
    if failed:
        print("FAILED: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
