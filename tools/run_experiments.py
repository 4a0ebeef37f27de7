"""Run notebook 05's full experiment and store it with its provenance (``make experiments``).

    python -m tools.run_experiments              # the full plan: an hour or more on one core
    python -m tools.run_experiments --subset     # the small subset tests/test_experiments.py re-runs

Applies the pinned environment of course/nbenv.py (one thread, CPU-independent code paths) BEFORE
torch is imported (a re-run under the same pins gives the stored numbers bit for bit on the CPU
model that stored them, within course.experiments.REPRODUCTION on another), and writes
data/experiments/digits.json (or, with --out, another file; with --subset, prints the JSON
instead); its provenance records how long the run took. What is trained is
course.experiments.Plan with course.experiments.Config.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from course import nbenv  # noqa: E402

nbenv.apply()

from course import experiments as ex  # noqa: E402  (imports torch: after the pins)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--subset", action="store_true", help="run course.experiments.SUBSET, print JSON to stdout"
    )
    parser.add_argument("--out", default=str(ex.STORED))
    args = parser.parse_args(argv)
    config, plan = ex.Config(), ex.SUBSET if args.subset else ex.Plan()
    started = time.perf_counter()
    record = ex.run_plan(plan, config)
    record = {"provenance": ex.provenance(config, plan, time.perf_counter() - started), **record}
    text = ex.to_json(record)
    if args.subset:
        sys.stdout.write(text)
        return
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out} in {record['provenance']['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
