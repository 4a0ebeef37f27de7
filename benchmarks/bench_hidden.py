"""The loss from hidden states against the loss of the whole logits, on a CPU: one forward +
backward of ``klloss.margin_kd_loss_from_hidden`` and of the logits ``h W^T`` followed by
``klloss.margin_kd_loss``, side by side in one run.

    python -m benchmarks.bench_hidden          # make bench runs it, 1 thread: about 3 minutes
    python -m benchmarks.bench_hidden --size 512x64x64x1000 --rounds 2 --out /tmp/b --figures /tmp/b
    python -m benchmarks.bench_hidden --plot-only cpu-amd-epyc-avx512   # redraw from the stored file

Variants, on the same inputs (N rows of student hidden states h (N, H_s) and a student head
W (V, H_s), both trained; the teacher's h_t (N, H_t) and W_t (V, H_t); about 10 % of the labels
-100):

* ``logits + margin_kd_loss``: s = h W^T with autograd, z = h_t W_t^T without, then
  ``klloss.margin_kd_loss(s, z, y)`` (on a CPU its fused form) and backward through the product;
* ``from hidden, chunk C``: ``klloss.margin_kd_loss_from_hidden(h, W, h_t, W_t, y,
  chunk_size=C)`` and backward, for each C asked (1024 is its default).

Time: the median over interleaved rounds (each round one forward + backward of every variant in
turn, so that a slow spell of a shared machine hits them all alike), after a warm-up on tiny
inputs. Memory: the peak resident memory above the inputs, the weights and their gradients, in a
fresh process per variant (:func:`rss_peak_above`): there, after a warm-up on tiny inputs, the
inputs, weights and zeroed gradient buffers are allocated (backward adds into those buffers in
place), the process's high-water mark is reset to its resident size (``/proc/self/clear_refs``)
and that size is read (``VmRSS``); then one forward + backward runs, and the high-water mark
(``VmHWM``) is read. The difference is the most memory the step held at once beyond what was
there before it.

Prints each target's ratio and verdict (TARGETS), and writes data/bench/hidden/<machine>.json
(with its provenance: machine, torch, date, klloss commit) and figures/bench-hidden-<machine>.png.
The same comparison on a GPU, with Liger-Kernel's fused linear forward KL beside it, is
``benchmarks/bench_lm.py --hidden``. A timing goes here, never in a test.
"""

import argparse
import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import klloss
from course import bench, plotting

ROOT = Path(__file__).resolve().parents[1]
HIDDEN_DIR = bench.HIDDEN_DIR
SIZE = (4096, 512, 512, 32000, "float32")  # N, H_s, H_t, V, dtype
CHUNKS = (1024, 16)
PADDING = 0.1
LOGITS = "logits + margin_kd_loss"
MEASURES = ("time", "peak / float32 logits", "peak / GB")
"""How a target's ratio is formed: a variant's median time over another's (``versus``); its peak
memory above the inputs over the float32 logits' size N V 4 bytes; or over 10^9 bytes."""


def hidden_name(chunk):
    return f"from hidden, chunk {chunk}"


def targets(chunks):
    """The CPU targets, for each chunk size run: the peak above the inputs at most a quarter of
    one float32 (N, V) tensor, and the time at most 1.5 x the logits path's."""
    found = []
    for chunk in chunks:
        found.append(
            {"target": "peak above inputs / float32 logits (N V 4 B)", "variant": hidden_name(chunk)}
            | {"measure": "peak / float32 logits", "versus": None, "bound": 0.25}
        )
        found.append(
            {"target": f"time / {LOGITS}", "variant": hidden_name(chunk)}
            | {"measure": "time", "versus": LOGITS, "bound": 1.5}
        )
    return found


@dataclasses.dataclass
class Inputs:
    """One step's arguments; ``h`` and ``w`` require grad and hold zeroed gradient buffers."""

    h: torch.Tensor  # student hidden states (N, H_s)
    w: torch.Tensor  # student head (V, H_s)
    h_t: torch.Tensor  # teacher hidden states (N, H_t)
    w_t: torch.Tensor  # teacher head (V, H_t)
    y: torch.Tensor  # labels (N,), about 10 % -100

    def nbytes(self):
        """Bytes of the inputs, the weights and the gradient buffers."""
        tensors = [self.h, self.w, self.h_t, self.w_t, self.y, self.h.grad, self.w.grad]
        return sum(t.numel() * t.element_size() for t in tensors)


def parse_size(text):
    """'NxH_sxH_txV' or 'NxH_sxH_txV:dtype' (float32 by default)."""
    shape, _, dtype = text.partition(":")
    n, h_s, h_t, v = (int(x) for x in shape.lower().split("x"))
    return n, h_s, h_t, v, dtype or "float32"


def make_inputs(n, h_s, h_t, v, dtype="float32", device="cpu", seed=0):
    """Random hidden states and heads (logits of about unit size for the student, three for the
    teacher), labels with about 10 % -100, and zeroed gradient buffers for ``h`` and ``w``. Made
    in place, so that no temporary raises the process's high-water mark above its final size."""
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    gen = torch.Generator(device=device).manual_seed(seed)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=gen, device=device, dtype=dtype).mul_(scale)

    x = Inputs(
        h=randn(n, h_s).requires_grad_(True),
        w=randn(v, h_s, scale=h_s**-0.5).requires_grad_(True),
        h_t=randn(n, h_t),
        w_t=randn(v, h_t, scale=3 * h_t**-0.5),
        y=torch.randint(0, v, (n,), generator=gen, device=device),
    )
    x.y[torch.rand(n, generator=gen, device=device) < PADDING] = -100
    x.h.grad, x.w.grad = torch.zeros_like(x.h), torch.zeros_like(x.w)  # backward adds into these
    return x


def logits_step(x):
    """Forward + backward through the whole logits: s = h W^T, z = h_t W_t^T, margin_kd_loss."""
    s = x.h @ x.w.T  # (N, V) student logits, differentiable in h and W
    with torch.no_grad():
        z = x.h_t @ x.w_t.T  # (N, V) teacher logits
    klloss.margin_kd_loss(s, z, x.y).backward()


def hidden_step(chunk):
    """Forward + backward of margin_kd_loss_from_hidden at ``chunk_size=chunk``."""

    def step(x):
        klloss.margin_kd_loss_from_hidden(x.h, x.w, x.h_t, x.w_t, x.y, chunk_size=chunk).backward()

    return step


def variants(chunks):
    """{name: step(inputs)}, in the order of the table."""
    return {LOGITS: logits_step} | {hidden_name(c): hidden_step(c) for c in chunks}


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def time_rounds(steps, x, rounds, device="cpu"):
    """Seconds of one step of each variant in ``rounds`` interleaved rounds: {"median": {name: s},
    "rounds": {name: [s, ...]}}."""
    samples = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            step(x)
            _sync(device)
            samples[name].append(time.perf_counter() - start)
    return {"median": {n: statistics.median(s) for n, s in samples.items()}, "rounds": samples}


def _status(field):
    """``field`` of /proc/self/status in bytes (VmRSS: resident now; VmHWM: its high-water mark)."""
    text = Path("/proc/self/status").read_text(encoding="utf-8")
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M)[1]) * 1024


def _reset_high_water_mark():
    """Set VmHWM to VmRSS (Linux: writing 5 to /proc/self/clear_refs); False where refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def rss_peak_above(step):
    """(bytes, how): the peak resident memory while ``step()`` runs above the resident memory
    before it, from VmHWM after it less VmRSS before it, the high-water mark first reset to the
    resident size. Where the reset is refused, the high-water mark left by earlier work may hide
    the step's peak: then the answer is None unless the step raised the mark. Memory that the
    allocator freed earlier but kept resident, and that the step reuses, is not counted: hence
    one fresh process a variant, with only a tiny warm-up before the inputs are made. Resident
    pages, not bytes asked for: code first run during the step counts too (a few MiB at most)."""
    reset = _reset_high_water_mark()
    before, mark = _status("VmRSS"), _status("VmHWM")
    step()
    after = _status("VmHWM")
    how = {"reset": reset, "rss_before": before, "hwm_before": mark, "hwm_after": after}
    if not reset and after <= mark:
        return None, how  # the step's peak stayed under an earlier one: unknown
    return after - before, how


def _peak_main(variant, size, chunks):
    """In a fresh process: one variant's peak above the inputs, as one line of JSON."""
    steps = variants(chunks)
    step = steps[variant]
    step(make_inputs(8, 8, 8, 16))  # warm-up on tiny inputs: imports, thread pools, lazy state
    x = make_inputs(*size)
    peak, how = rss_peak_above(lambda: step(x))
    print(json.dumps({"variant": variant, "peak": peak, "input_bytes": x.nbytes(), **how}))


def peak_in_fresh_process(variant, size, chunks):
    """Run :func:`_peak_main` for ``variant`` in a new Python process with this one's environment
    (the thread count included); returns its record."""
    n, h_s, h_t, v, dtype = size
    argv = [sys.executable, "-m", "benchmarks.bench_hidden", "--peak", variant]
    argv += ["--size", f"{n}x{h_s}x{h_t}x{v}:{dtype}", "--chunks", *map(str, chunks)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"the peak of {variant!r} was not measured:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdicts(results, wanted):
    """Each target of ``wanted`` (dicts: target, variant, measure, versus, bound) evaluated on each
    size of ``results`` where its columns were measured: the dict with the size, ``ratio`` and
    ``met`` (ratio <= bound) added."""
    out = []
    for row in results:
        seconds, peaks = row["median_seconds"], row["peak_bytes_above_inputs"]
        for t in wanted:
            if t["measure"] not in MEASURES:
                raise ValueError(f"unknown measure {t['measure']!r}")
            if t["measure"] == "time":
                if t["variant"] not in seconds or t["versus"] not in seconds:
                    continue
                ratio = seconds[t["variant"]] / seconds[t["versus"]]
            else:
                if peaks.get(t["variant"]) is None:
                    continue
                unit = row["logits_bytes"] if t["measure"] == "peak / float32 logits" else 1e9
                ratio = peaks[t["variant"]] / unit
            size = {k: row[k] for k in ("N", "H_s", "H_t", "V", "dtype")}
            out.append(t | size | {"ratio": ratio, "met": ratio <= t["bound"]})
    return out


def print_verdicts(found):
    for t in found:
        where = f"N = {t['N']}, V = {t['V']}, {t['dtype']}"
        verdict = "met" if t["met"] else "MISSED"
        print(f"target {t['variant']}: {t['target']} at {where}: ", end="")
        print(f"{t['ratio']:.3g} (at most {t['bound']}) -> {verdict}")


def _title(record):
    env = record["environment"]
    where = f"{env.get('cpu_model')} ({env.get('cpu_capability', '?')}), {env['torch_threads']} thread(s)"
    return (
        f"forward + backward on {where}, torch {env['torch']}, klloss {env['klloss']}, {env['date']}\n"
        f"{bench.code_state(record)[1]}"
    )


def plot(record, title):
    """Per variant, the median time and the peak memory above the inputs, each target's bound as a
    red line across the bar it applies to; returns the figure."""
    import matplotlib.pyplot as plt

    row = record["results"][0]
    names = list(row["median_seconds"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    seconds = [row["median_seconds"][n] for n in names]
    peaks = [(row["peak_bytes_above_inputs"][n] or 0) / 2**20 for n in names]
    colours = ["C7"] + [f"C{i}" for i in range(len(names) - 1)]
    left.bar(range(len(names)), seconds, color=colours)
    right.bar(range(len(names)), peaks, color=colours)
    for t in record["targets"]:
        at = names.index(t["variant"])
        if t["measure"] == "time":
            ax, height = left, t["bound"] * row["median_seconds"][t["versus"]]
            label = f"target ≤ {t['bound']:.3g} x\n{t['versus']}"
        else:
            logits = t["measure"] == "peak / float32 logits"
            ax, height = right, t["bound"] * (row["logits_bytes"] if logits else 1e9) / 2**20
            label = f"target ≤ {t['bound']:.3g} x\n" + ("N V 4 B" if logits else "GB")
        ax.plot([at - 0.4, at + 0.4], [height] * 2, color="red", linewidth=2)
        ax.annotate(label, (at, height), xytext=(0, 2), textcoords="offset points", ha="center")
        ax.texts[-1].set(
            fontsize=6,
            color="red",
            bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none"},
        )
    for ax, label in ((left, "median seconds of forward + backward"), (right, "peak above inputs (MiB)")):
        ax.set_xticks(range(len(names)), [n.replace(", ", ",\n") for n in names], fontsize=8)
        ax.set_ylabel(label)
        ax.grid(True, axis="y", alpha=0.3)
    size = f"N = {row['N']}, H = {row['H_s']}, V = {row['V']}, {row['dtype']}"
    fig.suptitle(f"{size}; {title}", fontsize=9)
    return fig


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=SIZE, help="NxH_sxH_txV[:dtype]")
    parser.add_argument("--chunks", nargs="+", type=int, default=list(CHUNKS), help="chunk sizes")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--out", default=str(HIDDEN_DIR), help="folder for <machine>.json")
    parser.add_argument("--figures", default=None, help="folder for the figure (default: figures/)")
    parser.add_argument(
        "--plot-only",
        metavar="NAME",
        help="redraw figures/bench-hidden-NAME.png from data/bench/hidden/NAME.json",
    )
    parser.add_argument("--peak", metavar="VARIANT", help=argparse.SUPPRESS)  # the fresh process
    return parser


def measure(size, chunks, rounds):
    """One size: every variant's peak above the inputs (fresh processes), then the timed rounds."""
    n, h_s, h_t, v, dtype = size
    memory = {name: peak_in_fresh_process(name, size, chunks) for name in variants(chunks)}
    for name, m in memory.items():
        peak = "not measured" if m["peak"] is None else f"{m['peak'] / 2**20:.0f} MiB"
        print(f"{name}: peak above inputs {peak} (fresh process)", flush=True)
    steps = variants(chunks)
    for step in steps.values():
        step(make_inputs(8, 8, 8, 16))  # warm-up on tiny inputs
    timed = time_rounds(steps, make_inputs(*size), rounds)
    return {
        "N": n,
        "H_s": h_s,
        "H_t": h_t,
        "V": v,
        "dtype": dtype,
        "logits_bytes": n * v * 4,
        "input_bytes": memory[LOGITS]["input_bytes"],
        "median_seconds": timed["median"],
        "round_seconds": timed["rounds"],
        "peak_bytes_above_inputs": {name: m["peak"] for name, m in memory.items()},
        "peak_measurement": memory,
    }


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.peak:
        return _peak_main(args.peak, args.size, args.chunks)
    if args.plot_only:
        record = bench.load_hidden_results(args.plot_only)
        print(
            "wrote",
            plotting.save(plot(record, _title(record)), f"bench-hidden-{args.plot_only}", args.figures),
        )
        return
    env = bench.environment("cpu")
    name = bench.machine_name(env)
    print("environment:", json.dumps(env), flush=True)
    record = {
        "environment": env,
        "benchmark": "benchmarks/bench_hidden.py",
        "rounds": args.rounds,
        "memory": "peak resident memory above the inputs, weights and gradient buffers (VmHWM after "
        "one step less VmRSS before it, the mark reset), in one fresh process a variant",
    }
    row = measure(args.size, args.chunks, args.rounds)
    record["results"] = [row]
    record["targets"] = verdicts(record["results"], targets(args.chunks))
    for variant, seconds in row["median_seconds"].items():
        ratio = seconds / row["median_seconds"][LOGITS]
        print(f"{variant:28s} {seconds:8.3f} s (median of {args.rounds}), x {ratio:.2f} the logits path")
    print_verdicts(record["targets"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    figure = plotting.save(plot(record, _title(record)), f"bench-hidden-{name}", args.figures)
    print("wrote", out / f"{name}.json", "and", figure)


if __name__ == "__main__":
    main()
