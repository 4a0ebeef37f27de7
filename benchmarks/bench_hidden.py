"""The loss from hidden states against the loss of the whole logits, on a CPU: one forward +
backward of ``klloss.margin_kd_loss_from_hidden`` and of the logits ``h W^T`` followed by
``klloss.margin_kd_loss``, side by side in one run.

    python -m benchmarks.bench_hidden          # make bench runs it, 1 thread: about 4 minutes
    python -m benchmarks.bench_hidden --size 512x64x64x1000 --rounds 2 --out /tmp/b --figures /tmp/b
    python -m benchmarks.bench_hidden --plot-only cpu-amd-epyc-avx512   # redraw from the stored file

Variants, on the same inputs (N rows of student hidden states h (N, H_s) and a student head
W (V, H_s), both trained; the teacher's h_t (N, H_t) and W_t (V, H_t); about 10 % of the labels
-100):

* ``logits + margin_kd_loss``: s = h W^T with autograd, z = h_t W_t^T without, then
  ``klloss.margin_kd_loss(s, z, y)`` (on a CPU its fused form) and backward through the product;
* ``from hidden, chunk C``: ``klloss.margin_kd_loss_from_hidden(h, W, h_t, W_t, y,
  chunk_size=C)`` and backward, for each C asked (:data:`CHUNKS`: the default,
  ``klloss.linear.CHUNK_SIZE``, beside larger ones, to show what a chunk's size trades).

Time: the median over interleaved rounds (each round one forward + backward of every variant in
turn, so that a slow spell of a shared machine hits them all alike), after a warm-up on tiny
inputs, the gradients set to None before each step.

Memory: the peak resident memory above the inputs, the weights and their gradients, in a fresh
process per variant (:func:`rss_peak_above`): there, after a warm-up on tiny inputs, the inputs
and weights are allocated, the process's high-water mark is reset to its resident size
(``/proc/self/clear_refs``) and that size is read (``VmRSS``); then one forward + backward runs,
and the high-water mark (``VmHWM``) is read. The difference is the most memory the step held at
once beyond what was there before it. Where the gradients go (:data:`GRADS`) changes it, so it is
measured twice, in separate processes:

* gradients None before the step, what ``optimizer.zero_grad()`` leaves by default: backward
  stores the gradients it gets as ``.grad``, and the bytes of those are subtracted, as they are
  what any step leaves behind (``peak_bytes_above_inputs``). The targets are read on this case:
  it is a training step as PyTorch runs it unless told otherwise;
* zeroed gradient buffers allocated before the step (in the baseline), as when gradients
  accumulate over micro-batches: backward adds into them, so a path that forms a gradient before
  backward holds it beside the buffer (``peak_bytes_above_inputs_accumulating``). The hidden path
  forms the head's (V, H) gradient in its forward pass: here it holds it twice at its peak. Shown
  beside the targets' case (hatched in the figure), never in its place.

Prints each target's ratio and verdict, the chunk sizes at which both targets hold together
(TARGETS), the pre-allocated case's ratios, and writes data/bench/hidden/<machine>.json
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
CHUNKS = tuple(dict.fromkeys((1024, 128, klloss.linear.CHUNK_SIZE)))  # the default last
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


GRADS = ("none", "zeros")
"""Where a step's gradients of h and W go. ``"none"``: no ``.grad`` before the step, what PyTorch's
``optimizer.zero_grad()`` leaves by default; backward stores the gradient it gets as ``.grad``
without a copy (when nothing else holds it). ``"zeros"``: zeroed ``.grad`` buffers made
beforehand, as when gradients accumulate over micro-batches; backward adds into them."""


@dataclasses.dataclass
class Inputs:
    """One step's arguments; ``h`` and ``w`` require grad (and may hold gradient buffers)."""

    h: torch.Tensor  # student hidden states (N, H_s)
    w: torch.Tensor  # student head (V, H_s)
    h_t: torch.Tensor  # teacher hidden states (N, H_t)
    w_t: torch.Tensor  # teacher head (V, H_t)
    y: torch.Tensor  # labels (N,), about 10 % -100

    def nbytes(self):
        """Bytes of the inputs, the weights and the gradients they hold now."""
        tensors = [self.h, self.w, self.h_t, self.w_t, self.y]
        return sum(t.numel() * t.element_size() for t in tensors) + self.grad_bytes()

    def grad_bytes(self):
        """Bytes of the gradients ``h`` and ``W`` hold now (``.grad``; none: 0)."""
        return sum(g.numel() * g.element_size() for g in (self.h.grad, self.w.grad) if g is not None)


def parse_size(text):
    """'NxH_sxH_txV' or 'NxH_sxH_txV:dtype' (float32 by default)."""
    shape, _, dtype = text.partition(":")
    n, h_s, h_t, v = (int(x) for x in shape.lower().split("x"))
    return n, h_s, h_t, v, dtype or "float32"


def make_inputs(n, h_s, h_t, v, dtype="float32", device="cpu", seed=0, grads="zeros"):
    """Random hidden states and heads (logits of about unit size for the student, three for the
    teacher), labels with about 10 % -100, and for ``h`` and ``w`` zeroed gradient buffers, or
    none (``grads``, :data:`GRADS`). Made in place, so that no temporary raises the process's
    high-water mark above its final size."""
    if grads not in GRADS:
        raise ValueError(f"grads must be one of {GRADS}, got {grads!r}")
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
    if grads == "zeros":
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


def from_no_grads(step):
    """``step`` with the gradients of h and W set to None first, as ``optimizer.zero_grad()`` does."""

    def run(x):
        x.h.grad = x.w.grad = None
        step(x)

    return run


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


def _peak_main(variant, size, chunks, grads):
    """In a fresh process: one variant's peak above the inputs, the weights and their gradients,
    as one line of JSON. With ``grads="none"``, the gradients that backward stored as ``.grad``
    during the step are subtracted from the peak: the caller holds them after the step, as it
    holds buffers made beforehand (``"zeros"``)."""
    steps = variants(chunks)
    step = steps[variant]
    step(make_inputs(8, 8, 8, 16, grads=grads))  # warm-up on tiny inputs: imports, thread pools, lazy state
    x = make_inputs(*size, grads=grads)
    held = x.grad_bytes()  # buffers made beforehand: in the baseline
    peak, how = rss_peak_above(lambda: step(x))
    stored = x.grad_bytes() - held  # gradients stored as .grad by the step
    peak = None if peak is None else peak - stored
    record = {"variant": variant, "grads": grads, "peak": peak, "input_bytes": x.nbytes()}
    print(json.dumps(record | {"grad_bytes_stored": stored, **how}))


def peak_in_fresh_process(variant, size, chunks, grads="zeros"):
    """Run :func:`_peak_main` for ``variant`` in a new Python process with this one's environment
    (the thread count included); returns its record."""
    n, h_s, h_t, v, dtype = size
    argv = [sys.executable, "-m", "benchmarks.bench_hidden", "--peak", variant, "--grads", grads]
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


def met_at(found, wanted):
    """The variants of ``wanted`` (targets) at which every target set for them was judged in
    ``found`` (verdicts) and met: where the targets hold together, at one chunk size."""
    out = []
    for variant in dict.fromkeys(t["variant"] for t in wanted):
        asked = [t["measure"] for t in wanted if t["variant"] == variant]
        judged = [t for t in found if t["variant"] == variant]
        if sorted(t["measure"] for t in judged) == sorted(asked) and all(t["met"] for t in judged):
            out.append(variant)
    return out


def accumulating(row):
    """{variant: peak above the inputs, weights and gradients / float32 logits} with the gradients
    pre-allocated (``"zeros"``), where measured: not the targets' case, shown beside it."""
    peaks = row.get("peak_bytes_above_inputs_accumulating", {})
    return {v: p / row["logits_bytes"] for v, p in peaks.items() if p is not None}


def _title(record):
    env = record["environment"]
    where = f"{env.get('cpu_model')} ({env.get('cpu_capability', '?')}), {env['torch_threads']} thread(s)"
    return (
        f"forward + backward on {where}, torch {env['torch']}, klloss {env['klloss']}, {env['date']}\n"
        f"{bench.code_state(record)[1]}"
    )


def _draw_bound(ax, at, height, label, half=0.4):
    """A target's bound as a red line across the bar centred at ``at``, ``2 half`` wide, labelled
    unless ``label`` is None."""
    ax.plot([at - half, at + half], [height] * 2, color="red", linewidth=2)
    if label is None:
        return
    ax.annotate(label, (at, height), xytext=(0, 2), textcoords="offset points", ha="center")
    ax.texts[-1].set(
        fontsize=6,
        color="red",
        bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none"},
    )


def plot(record, title):
    """Per variant, the median time and the peak memory above the inputs, weights and gradients
    (with gradients None before the step; beside it, hatched, pre-allocated, where measured), each
    target's bound as a red line across the bar it applies to; returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    row = record["results"][0]
    names = list(row["median_seconds"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    colours = ["C7"] + [f"C{i}" for i in range(len(names) - 1)]
    at = range(len(names))
    bars = left.bar(at, [row["median_seconds"][n] for n in names], color=colours)
    ratios = [row["median_seconds"][n] / row["median_seconds"][names[0]] for n in names]
    left.bar_label(bars, [f"x {r:.2f}" for r in ratios], fontsize=6)  # over the logits path's time
    peaks = [(row["peak_bytes_above_inputs"][n] or 0) / 2**20 for n in names]
    kept = row.get("peak_bytes_above_inputs_accumulating")
    shift, half = (0.0, 0.4) if kept is None else (-0.2, 0.2)  # the targets' bar: alone, or the left one
    in_logits = lambda mib: [f"{m * 2**20 / row['logits_bytes']:.2f}" for m in mib]  # noqa: E731  (x N V 4 B)
    bars = right.bar([i + shift for i in at], peaks, width=2 * half, color=colours)
    right.bar_label(bars, in_logits(peaks), fontsize=6)
    if kept is not None:
        accumulated = [(kept[n] or 0) / 2**20 for n in names]
        bars = right.bar(
            [i + 0.2 for i in at], accumulated, width=0.4, color=colours, alpha=0.45, hatch="///"
        )
        right.bar_label(bars, in_logits(accumulated), fontsize=6)
    memory_bounds = []
    for t in record["targets"]:
        if t["measure"] == "time":
            ax, height = left, t["bound"] * row["median_seconds"][t["versus"]]
            label = f"target ≤ {t['bound']:.3g} x\n" + (
                "logits path" if t["versus"] == LOGITS else t["versus"]
            )
            _draw_bound(ax, names.index(t["variant"]), height, label)
            continue
        logits = t["measure"] == "peak / float32 logits"
        height = t["bound"] * (row["logits_bytes"] if logits else 1e9) / 2**20
        label = f"target ≤ {t['bound']:.3g} x " + ("N V 4 B" if logits else "GB")
        memory_bounds.append(label)
        _draw_bound(right, names.index(t["variant"]) + shift, height, label if kept is None else None, half)
    if kept is not None:  # the bounds named once, in the legend: a label per bar would hide the small bars
        cases = [("gradients None before the step", {}), ("pre-allocated", {"hatch": "///", "alpha": 0.45})]
        handles = [Patch(facecolor="white", edgecolor="black", label=c, **style) for c, style in cases]
        bounds = [f"{b}, on the solid bars" for b in dict.fromkeys(memory_bounds)]
        handles += [Line2D([], [], color="red", linewidth=2, label=b) for b in bounds]
        right.legend(handles=handles, fontsize=7, loc="upper right")
    memory = "peak above inputs, weights, gradients (MiB;\nlabels: x N V 4 B)"
    for ax, label in ((left, "median seconds of forward + backward"), (right, memory)):
        ax.set_xticks(at, [n.replace(", ", ",\n") for n in names], fontsize=8)
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
    parser.add_argument("--grads", choices=GRADS, default="none", help=argparse.SUPPRESS)
    return parser


def measure(size, chunks, rounds):
    """One size: every variant's peak above the inputs, weights and gradients in fresh processes,
    gradients None before the step and pre-allocated (:data:`GRADS`); then the timed rounds, the
    gradients set to None before each step."""
    n, h_s, h_t, v, dtype = size
    memory = {
        g: {name: peak_in_fresh_process(name, size, chunks, g) for name in variants(chunks)} for g in GRADS
    }
    for name in variants(chunks):
        peaks = {g: memory[g][name]["peak"] for g in GRADS}
        shown = {g: "not measured" if p is None else f"{p / 2**20:.0f} MiB" for g, p in peaks.items()}
        print(
            f"{name}: peak above inputs, weights and gradients {shown['none']} (gradients None before the "
            f"step), {shown['zeros']} (pre-allocated); fresh processes",
            flush=True,
        )
    steps = {name: from_no_grads(step) for name, step in variants(chunks).items()}
    for step in steps.values():
        step(make_inputs(8, 8, 8, 16, grads="none"))  # warm-up on tiny inputs
    timed = time_rounds(steps, make_inputs(*size, grads="none"), rounds)
    return {
        "N": n,
        "H_s": h_s,
        "H_t": h_t,
        "V": v,
        "dtype": dtype,
        "logits_bytes": n * v * 4,
        "input_bytes": memory["none"][LOGITS]["input_bytes"],
        "median_seconds": timed["median"],
        "round_seconds": timed["rounds"],
        "peak_bytes_above_inputs": {name: m["peak"] for name, m in memory["none"].items()},
        "peak_bytes_above_inputs_accumulating": {name: m["peak"] for name, m in memory["zeros"].items()},
        "peak_measurement": memory["none"],
        "peak_measurement_accumulating": memory["zeros"],
    }


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.peak:
        return _peak_main(args.peak, args.size, args.chunks, args.grads)
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
        "memory": "peak resident memory above the inputs, weights and their gradients (VmHWM after "
        "one step less VmRSS before it, the mark reset, less the gradients the step stored as .grad), "
        "in one fresh process a variant; peak_bytes_above_inputs with the gradients None before the "
        "step (the targets' case), peak_bytes_above_inputs_accumulating with them pre-allocated",
        "time": "gradients set to None before each step",
    }
    row = measure(args.size, args.chunks, args.rounds)
    record["results"] = [row]
    wanted = targets(args.chunks)
    record["targets"] = verdicts(record["results"], wanted)
    record["met_at"] = met_at(record["targets"], wanted)
    for variant, seconds in row["median_seconds"].items():
        ratio = seconds / row["median_seconds"][LOGITS]
        print(f"{variant:28s} {seconds:8.3f} s (median of {args.rounds}), x {ratio:.2f} the logits path")
    print_verdicts(record["targets"])
    print("TARGETS: both met at", ", ".join(record["met_at"]) or "no chunk size measured")
    for variant, ratio in accumulating(row).items():
        print(f"not a target: {variant}, gradients pre-allocated: peak / float32 logits {ratio:.3g}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    figure = plotting.save(plot(record, _title(record)), f"bench-hidden-{name}", args.figures)
    print("wrote", out / f"{name}.json", "and", figure)


if __name__ == "__main__":
    main()
