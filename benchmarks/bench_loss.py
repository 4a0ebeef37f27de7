"""Forward + backward of the published loop, klloss_v2 and plain KD, side by side in one run.

    python benchmarks/bench_loss.py                 # CPU, the full grid (make bench)
    python benchmarks/bench_loss.py --device cuda   # on a GPU, where there is one

Prints medians and ratios, checks the targets, and writes data/bench/<device>.json (with the
machine, versions and date) and figures/bench-scaling-<device>.png. Ratios, not absolute times,
are what carry from one machine to another.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from klloss import bench, plotting  # noqa: E402

BATCHES = [64, 256, 1024, 4096, 8192]
CLASSES = [10, 100, 1000]
TARGETS = [
    # (what, N, C, numerator, denominator, bound, "at most" or "at least")
    ("klloss_v2 / plain KD", 1024, 1000, "klloss_v2", "plain KD", 1.25, "at most"),
    ("published / klloss_v2", 4096, 10, "published", "klloss_v2", 10.0, "at least"),
    ("stretch: klloss_v2 / plain KD", 1024, 1000, "klloss_v2", "plain KD", 1.0, "at most"),
]


def _title(env):
    where = env.get("gpu") or f"{env['processor']} CPU, {env['torch_threads']} thread(s)"
    return f"forward + backward on {where}, torch {env['torch']}, {env['date']}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per size")
    parser.add_argument("--out", default=str(bench.BENCH_DIR))
    parser.add_argument(
        "--plot-only", metavar="NAME", help="redraw figures/bench-scaling-NAME.png from data/bench/NAME.json"
    )
    args = parser.parse_args(argv)
    if args.plot_only:
        record = bench.load_results(args.plot_only)
        print(
            "wrote",
            plotting.save(
                bench.plot_scaling(record, _title(record["environment"])), f"bench-scaling-{args.plot_only}"
            ),
        )
        return

    env = bench.environment(args.device)
    print("environment:", json.dumps(env))
    results = []
    header = (
        f"{'N':>5} {'C':>5} " + " ".join(f"{v:>14}" for v in bench.VARIANTS) + "  published/ours  ours/KD"
    )
    print(header)
    for c in CLASSES:
        for n in BATCHES:
            seconds = bench.time_variants(n, c, args.device, rounds=args.rounds)
            ratios = {
                "published / klloss_v2": seconds["published"] / seconds["klloss_v2"],
                "klloss_v2 / plain KD": seconds["klloss_v2"] / seconds["plain KD"],
                "autograd form / klloss_v2": seconds["autograd form"] / seconds["klloss_v2"],
            }
            results.append({"N": n, "C": c, "seconds": seconds, "ratios": ratios})
            print(
                f"{n:>5} {c:>5} "
                + " ".join(f"{seconds[v] * 1e3:>11.3f} ms" for v in bench.VARIANTS)
                + f"  {ratios['published / klloss_v2']:>14.1f} {ratios['klloss_v2 / plain KD']:>8.2f}",
                flush=True,
            )

    memory = {}
    if args.device == "cpu":
        for variant, loss_fn in bench.VARIANTS.items():
            memory[variant] = bench.saved_bytes(loss_fn, 1024, 1000)
        print(
            "bytes kept for backward at N = 1024, C = 1000:",
            ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in memory.items()),
        )

    verdicts = []
    for what, n, c, top, bottom, bound, sense in TARGETS:
        row = next(r for r in results if r["N"] == n and r["C"] == c)
        ratio = row["seconds"][top] / row["seconds"][bottom]
        met = ratio <= bound if sense == "at most" else ratio >= bound
        verdicts.append(
            {"target": what, "N": n, "C": c, "ratio": ratio, "bound": bound, "sense": sense, "met": met}
        )
        verdict = "met" if met else "MISSED"
        print(f"target {what} at N = {n}, C = {c}: {ratio:.2f} ({sense} {bound}) -> {verdict}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "cpu" if args.device == "cpu" else "cuda"
    record = {"environment": env, "results": results, "saved_bytes_1024x1000": memory, "targets": verdicts}
    (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    fig = bench.plot_scaling(record, _title(env))
    print("wrote", out / f"{name}.json", "and", plotting.save(fig, f"bench-scaling-{name}"))


if __name__ == "__main__":
    main()
