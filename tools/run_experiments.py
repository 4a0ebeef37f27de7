"""Run notebook 05's experiment and store it with its provenance (``make experiments``).

    python -m tools.run_experiments              # the full plan: an hour or more on one core
    python -m tools.run_experiments --small      # the small plan (make experiments-small): a minute
    python -m tools.run_experiments --subset     # the small subset tests/test_experiments.py re-runs

Applies the pinned environment of course/nbenv.py (one thread, CPU-independent code paths) BEFORE
torch is imported (a re-run under the same pins gives the stored numbers bit for bit on the CPU
model that stored them, within course.experiments.REPRODUCTION on another), and writes
data/experiments/digits.json (--small: data/experiments/digits-small.json; --out: another file,
``-`` for standard output; --subset prints the JSON); its provenance records how long the run
took. What is trained is course.experiments.Plan (--small: course.experiments.SMALL; --subset:
course.experiments.SUBSET) with course.experiments.Config.

A student varies the small plan from the command line (course.experiments.small_plan); the
result goes to build/experiments/digits-small-varied.json unless --out says otherwise:

    python -m tools.run_experiments --small --seeds 0-9 --betas 0.5,1.5 --alphas 0.5 --flip 0.2
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from course import nbenv  # noqa: E402

nbenv.apply()

from course import experiments as ex  # noqa: E402  (imports torch: after the pins)

VARY = ("seeds", "betas", "alphas", "flip")


def seeds(text):
    """``0,1,2`` or ``0-9`` (both ends included), or both: ``0-4,10``."""
    out = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            out += list(range(int(low), int(high) + 1)) if dash else [int(low)]
        except ValueError:
            raise argparse.ArgumentTypeError(f"seeds are written 0,1,2 or 0-9, not {text!r}") from None
    return out


def numbers(text):
    """``1.5`` or ``0.5,1.5``."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"numbers are written 1.5 or 0.5,1.5, not {text!r}") from None


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--subset", action="store_true", help="run course.experiments.SUBSET, print JSON to stdout"
    )
    which.add_argument(
        "--small",
        action="store_true",
        help=f"run course.experiments.SMALL into {ex.STORED_SMALL}; varied by the options below, into "
        f"{ex.STORED_SMALL_VARIED} (never over the committed file)",
    )
    parser.add_argument("--seeds", type=seeds, help="with --small: the students' seeds, as 0,1,2 or 0-9")
    parser.add_argument("--betas", type=numbers, help="with --small: klloss_v2's betas, as 1.5 or 0.5,1.5")
    parser.add_argument("--alphas", type=numbers, help="with --small: the distillation term's weights")
    parser.add_argument(
        "--flip", type=numbers, help="with --small: the fractions of labels flipped for the wrong teachers"
    )
    parser.add_argument(
        "--out",
        help=f"where to write (- for stdout); default {ex.STORED}, --small's plan {ex.STORED_SMALL}, "
        f"a varied one {ex.STORED_SMALL_VARIED}",
    )
    args = parser.parse_args(argv)
    varied = {name: getattr(args, name) for name in VARY if getattr(args, name) is not None}
    if varied and not args.small:
        parser.error("--seeds, --betas, --alphas and --flip vary the small plan: add --small")
    if args.subset:
        return ex.SUBSET, args.out or "-"
    if not args.small:
        return ex.Plan(), args.out or ex.STORED
    try:
        plan = ex.small_plan(**varied)
    except ValueError as error:
        parser.error(str(error))
    return plan, args.out or (ex.STORED_SMALL if plan == ex.SMALL else ex.STORED_SMALL_VARIED)


def main(argv=None):
    plan, out = parse(argv)
    config = ex.Config()
    started = time.perf_counter()
    record = ex.run_plan(plan, config)
    record = {"provenance": ex.provenance(config, plan, time.perf_counter() - started), **record}
    text = ex.to_json(record)
    if str(out) == "-":
        sys.stdout.write(text)
        return
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    print(f"wrote {out} in {record['provenance']['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
