"""Time every notebook with the kernel pinned (course/nbenv.py) and with the CPU's own code paths,
interleaved round by round so that a busy machine slows both alike; store the best of each.

    python -m tools.time_notebooks            # make times; writes data/notebook-times.json

The README's notebook table (tools/readme.py) shows both times, with the machine they were
measured on: what pinning the code paths costs, measured, not guessed. The notebooks write their
figures as they run; the committed figures are put back afterwards, since an unpinned run may
draw them with other last bits.
"""

import datetime
import json
import os
import tempfile
import time
from pathlib import Path

from course import bench, nbenv
from tools import refresh

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "notebook-times.json"
PINS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")
ROUNDS = 2


def time_once(path, pinned):
    # unpinned, notebook 05's checks that its training reproduces the stored runs bit for bit
    # fail, as they should: every cell still runs, so the time is the whole notebook's
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        refresh.execute(path, scratch, allow_errors=not pinned)
        return time.perf_counter() - started


def measure(notebooks):
    """Best wall time of each notebook, pinned and native, rounds interleaved."""
    seconds = {"pinned": {}, "native": {}}
    for round_ in range(ROUNDS):
        for mode in seconds:
            nbenv.apply()
            if mode == "native":
                for name in PINS:
                    os.environ.pop(name, None)
            for path in notebooks:
                elapsed = time_once(path, pinned=mode == "pinned")
                seconds[mode][path.name] = min(seconds[mode].get(path.name, float("inf")), elapsed)
                print(f"round {round_ + 1}/{ROUNDS} {mode:>6} {path.name}: {elapsed:.1f} s", flush=True)
    return seconds


def main():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    figures = {path: path.read_bytes() for path in (ROOT / "figures").glob("*.png")}
    try:
        seconds = measure(notebooks)
    finally:
        for path in (ROOT / "figures").glob("*.png"):
            if path not in figures:
                path.unlink()
        for path, data in figures.items():
            path.write_bytes(data)
    record = {
        "processor": bench._cpu_info()["cpu_model"],
        "cores": os.cpu_count(),
        "date": datetime.date.today().isoformat(),
        "rounds": ROUNDS,
        "what": "wall time of one execution from a clean kernel, best of the rounds",
        "seconds": {mode: {k: round(v, 1) for k, v in times.items()} for mode, times in seconds.items()},
    }
    OUT.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print("wrote", OUT.relative_to(ROOT))


if __name__ == "__main__":
    main()
