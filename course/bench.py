"""Benchmark helpers: time forward + backward of the published loop, ``klloss_v2`` and plain KD
side by side, count what each dispatches, and plot stored results.

Timings are measured by ``benchmarks/bench_loss.py`` (``make bench``) and stored in
``data/bench/``, one file per machine configuration (:func:`machine_name`) with its provenance
(:func:`environment`); ``notebooks/06-performance.ipynb`` reads them. No test times anything.
"""

import datetime
import json
import os
import platform
import re
import subprocess
from pathlib import Path

import torch
import torch.nn.functional as F

from klloss import klloss_v2, klloss_v2_published

from . import ROOT

BENCH_DIR = ROOT / "data" / "bench"
BETA = 1.5


def plain_kd(logits_t, input, target, label, beta):
    """Plain KD, the loss klloss_v2 generalises: KL(softmax(target) || softmax(input)), batch mean."""
    return F.kl_div(F.log_softmax(input, 1), F.log_softmax(target, 1), reduction="batchmean", log_target=True)


def without_ignore_index(logits_t, input, target, label, beta):
    """klloss_v2 told that no label is padding (``ignore_index=None``): no masking at all."""
    return klloss_v2(logits_t, input, target, label, beta, ignore_index=None)


def compiled(loss_fn):
    """``torch.compile(loss_fn, fullgraph=True)`` for fixed shapes: the documented compiled path."""
    return torch.compile(loss_fn, fullgraph=True, dynamic=False)


def reference(logits_t, input, target, label, beta):
    """klloss_v2 through its readable reference (``impl="reference"``): plain tensor operations and
    autograd, behind the same checks, so that only the form differs."""
    return klloss_v2(logits_t, input, target, label, beta, impl="reference")


VARIANTS = {
    "published": klloss_v2_published,
    "klloss_v2": klloss_v2,
    "reference": reference,
    "plain KD": plain_kd,
}
"""What `make bench` times: the article's loop, klloss_v2 as dispatched ("auto": the fused path on
a CPU in eager mode), its reference, and plain KD."""


def make_inputs(n, c, device="cpu", dtype=torch.float32, seed=0):
    """Random logits (N, C) for teacher and student, and labels, on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    teacher = torch.randn(n, c, generator=generator, dtype=dtype).to(device)
    student = torch.randn(n, c, generator=generator, dtype=dtype).to(device).requires_grad_(True)
    label = torch.randint(0, c, (n,), generator=generator).to(device)
    return teacher, student, label


def forward_backward(loss_fn, teacher, student, label):
    """One training step's worth of the loss: forward, then backward into the student."""
    student.grad = None
    loss_fn(teacher, student, teacher, label, BETA).backward()


def first_call_seconds(loss_fn, n, c, device="cpu"):
    """Wall time of the first forward + backward: for a compiled function, what compiling costs."""
    import time

    teacher, student, label = make_inputs(n, c, device)
    start = time.perf_counter()
    forward_backward(loss_fn, teacher, student, label)
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def time_variants(n, c, device="cpu", rounds=30, block_time=0.005, variants=VARIANTS):
    """Seconds of one forward + backward for each variant, on the same inputs, as
    ``({"fastest": ..., "median": ...})`` over the rounds.

    The variants are measured in interleaved rounds (A B C D, A B C D, ...), each a block that
    repeats the step for about ``block_time``, so that a slow spell of a shared machine hits them
    all alike. Other work on the machine only ever adds time, so the fastest block of each
    variant is its least disturbed measurement: the ratios are taken between those.
    """
    import statistics

    from torch.utils import benchmark

    teacher, student, label = make_inputs(n, c, device)
    timers = {
        name: benchmark.Timer(
            stmt="step(loss_fn, teacher, student, label)",
            globals={
                "step": forward_backward,
                "loss_fn": loss_fn,
                "teacher": teacher,
                "student": student,
                "label": label,
            },
            num_threads=torch.get_num_threads(),
        )
        for name, loss_fn in variants.items()
    }
    # warm up, then repeat the step often enough for a block to last about block_time
    numbers = {}
    for name, timer in timers.items():
        timer.timeit(3)
        numbers[name] = max(1, int(block_time / max(min(timer.timeit(1).mean for _ in range(3)), 1e-7)))
    samples = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(numbers[name]).mean)
    return {
        "fastest": {name: min(values) for name, values in samples.items()},
        "median": {name: statistics.median(values) for name, values in samples.items()},
    }


def saved_bytes(loss_fn, n, c):
    """Bytes the autograd graph keeps alive between forward and backward (saved tensors, each
    storage counted once, the inputs themselves excluded): the memory a loss adds to training."""
    teacher, student, label = make_inputs(n, c)
    inputs = {student.untyped_storage().data_ptr(), teacher.untyped_storage().data_ptr()}
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in inputs:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = loss_fn(teacher, student, teacher, label, BETA)
    loss.backward()
    return sum(storages.values())


def count_ops(loss_fn, n, c, device="cpu"):
    """What one forward + backward dispatches, by kind (deterministic, unlike a time):

    * ``"compute"``: operators that read or write tensor data; on a GPU, each is a kernel launch;
    * ``"view"``: views (indexing a row, reshaping), which only make a new tensor header;
    * ``"host read"``: a number copied into Python (``.item()``, iterating over a tensor); on a
      GPU, when the tensor lives there, the host waits for the device.

    ``device="meta"`` runs the code path a GPU runs, without one: shapes only, no data.
    """
    import collections

    from torch.utils._python_dispatch import TorchDispatchMode

    counts = collections.Counter({"compute": 0, "view": 0, "host read": 0})

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.is_view:
                counts["view"] += 1
            elif func is torch.ops.aten._local_scalar_dense.default:
                counts["host read"] += 1
            else:
                counts["compute"] += 1
            return func(*args, **(kwargs or {}))

    teacher, student, label = make_inputs(n, c, device)
    with Count():
        forward_backward(loss_fn, teacher, student, label)
    return dict(counts)


def _cpu_info():
    """Model name, family/model/stepping and the vector-instruction flags, from /proc/cpuinfo."""
    info = {"cpu_model": platform.processor() or platform.machine()}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    fields = dict(re.findall(r"^(model name|cpu family|model|stepping|flags)\s*:\s*(.*)$", text, re.M))
    if "model name" in fields:
        info["cpu_model"] = fields["model name"].strip()
    info["cpu_family_model_stepping"] = "/".join(
        fields.get(k, "?").strip() for k in ("cpu family", "model", "stepping")
    )
    vector = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_tile")
    info["cpu_vector_flags"] = [f for f in vector if f in fields.get("flags", "").split()]
    return info


def code_version():
    """The klloss commit measured, ``+changes`` when the code measured (``klloss/``,
    ``benchmarks/``) differed from it; ``unknown`` outside a git checkout."""
    try:
        commit = _git("rev-parse", "--short", "HEAD").strip()
        changed = _git("status", "--porcelain", "--untracked-files=no", "--", "klloss", "benchmarks").strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+changes" if changed else "")) or "unknown"


def op_counts(fn, *args, **kwargs):
    """How many times ``fn(*args, **kwargs)`` dispatches each ATen operator, as a
    ``collections.Counter`` keyed by name (``"aten.sub"``). Forward only, nothing timed.
    ``notebooks/04-what-it-teaches.ipynb`` uses it to show what the published loop costs per sample.
    """
    import collections

    from torch.utils._python_dispatch import TorchDispatchMode

    counts = collections.Counter()

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            counts[str(func.overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn(*args, **kwargs)
    return counts


def environment(device="cpu"):
    """Where and with what a benchmark ran: stored with every result."""
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "klloss": code_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        **_cpu_info(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY", "(not set)"),
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
        info["gpu_capability"] = ".".join(map(str, torch.cuda.get_device_capability(device)))
        info["cuda"] = torch.version.cuda
    return info


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_name(env):
    """File name (without .json) for a machine configuration: ``cpu-<model>-<capability>`` or
    ``cuda-<gpu>``, so that results from different machines sit side by side."""
    if env["device"].startswith("cuda"):
        return f"cuda-{_slug(env['gpu'])}"
    model = _slug(re.sub(r"\((r|tm)\)|\b(processor|cpu)\b", " ", env["cpu_model"].lower()))
    return f"cpu-{model}-{_slug(env['cpu_capability'])}"


def code_state(record):
    """Which code a stored result describes, as (state, sentence): ``"current"`` (no commit since
    the one measured changed ``klloss/``, or changed only comment lines), ``"stale"`` (some
    changed its code), ``"uncommitted"`` (measured on a tree that differed from its commit: which
    code, is not recorded), ``"not recorded"`` or ``"unknown"`` (no git history here). Computed
    with git from this checkout."""
    version = record["environment"].get("klloss")
    if version in (None, "unknown"):
        return "not recorded", "the benchmark did not record which klloss commit it measured"
    commit = version.removesuffix("+changes")
    if version.endswith("+changes"):
        return "uncommitted", f"measured on a tree that differed from {commit}: which code, is not recorded"
    try:
        diff = _git("diff", "--unified=0", f"{commit}..HEAD", "--", "klloss")
    except (OSError, subprocess.SubprocessError):
        return "unknown", f"measured at {commit}; this checkout has no git history to compare with"
    if any(not _comment_only(line) for line in diff.splitlines()):
        return "stale", f"measured at {commit}; klloss/ has changed since: it describes earlier code"
    if diff:
        return "current", f"measured at {commit}; klloss/ has changed since only in comments"
    return "current", f"measured at {commit}; klloss/ has not changed since"


def _git(*args):
    """The output of ``git *args`` in this checkout; raises where git fails or is missing."""
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
    ).stdout


def _comment_only(line):
    """Whether one line of a unified diff leaves the code as it was: a header, or an added or
    removed line that is blank or a ``#`` comment (the record of a measurement, for example)."""
    if line.startswith(("diff ", "index ", "--- ", "+++ ", "@@", "new file", "deleted file")):
        return True
    body = line[1:].strip() if line[:1] in "+-" else line.strip()
    return body == "" or body.startswith("#")


LM_DIR = BENCH_DIR / "lm"


def lm_names():
    """Names of the stored language-model results, ``data/bench/lm/<name>.json``
    (``benchmarks/bench_lm.py``)."""
    return sorted(p.stem for p in LM_DIR.glob("*.json"))


def load_lm_results(name):
    """Stored language-model results ``data/bench/lm/<name>.json``."""
    return json.loads((LM_DIR / f"{name}.json").read_text(encoding="utf-8"))


def lm_table(record):
    """The language-model results as a pandas table: one row per size and variant, with the
    median time (ms), the time over the floor and the peak memory above the inputs (GiB)."""
    import pandas as pd

    rows = []
    for r in record["results"]:
        for variant, seconds in r["median_seconds"].items():
            peak = r["peak_bytes_above_inputs"][variant]
            rows.append(
                {
                    "size": f"{r['N']} x {r['V']}, {r['dtype']}",
                    "variant": variant,
                    "ms": seconds * 1e3,
                    "x floor": r["over_floor"][variant],
                    "peak above inputs (GiB)": None if peak is None else peak / 2**30,
                }
            )
    return pd.DataFrame(rows).set_index(["size", "variant"])


HIDDEN_DIR = BENCH_DIR / "hidden"


def hidden_names():
    """Names of the stored hidden-state results, ``data/bench/hidden/<name>.json``
    (``benchmarks/bench_hidden.py`` on a CPU, ``benchmarks/bench_lm.py --hidden`` on a GPU)."""
    return sorted(p.stem for p in HIDDEN_DIR.glob("*.json"))


def load_hidden_results(name):
    """Stored hidden-state results ``data/bench/hidden/<name>.json``."""
    return json.loads((HIDDEN_DIR / f"{name}.json").read_text(encoding="utf-8"))


def hidden_table(record, reference="logits + margin_kd_loss"):
    """The hidden-state results as a pandas table: one row per size and variant, with the median
    time (s), that time over ``reference``'s in the same run, the peak memory above the inputs,
    weights and gradients (MiB) and that peak over one float32 (N, V) tensor; for a CPU result,
    also that ratio with the gradients pre-allocated (``benchmarks/bench_hidden.py``, ``GRADS``)."""
    import pandas as pd

    rows = []
    for r in record["results"]:
        accumulating = r.get("peak_bytes_above_inputs_accumulating")
        for variant, seconds in r["median_seconds"].items():
            peak = r["peak_bytes_above_inputs"][variant]
            row = {
                "size": f"N {r['N']}, H {r['H_s']} (teacher {r['H_t']}), V {r['V']}, {r['dtype']}",
                "variant": variant,
                "s": seconds,
                "x " + reference: seconds / r["median_seconds"][reference],
                "peak above inputs (MiB)": None if peak is None else peak / 2**20,
                "peak / float32 logits": None if peak is None else peak / r["logits_bytes"],
            }
            if accumulating is not None:
                kept = accumulating[variant]
                row["pre-allocated: peak / float32 logits"] = (
                    None if kept is None else kept / r["logits_bytes"]
                )
            rows.append(row)
    return pd.DataFrame(rows).set_index(["size", "variant"])


def stored_names():
    """Names of every stored result in ``data/bench/``, CPUs first."""
    return sorted(
        (p.stem for p in BENCH_DIR.glob("*.json")), key=lambda name: (not name.startswith("cpu"), name)
    )


def load_results(name):
    """Stored results ``data/bench/<name>.json``: {"environment": ..., "results": [...], ...}.
    Shown in ``notebooks/06-performance.ipynb``."""
    return json.loads((BENCH_DIR / f"{name}.json").read_text(encoding="utf-8"))


def ratio_table(results, reference="plain KD"):
    """Time of every variant divided by ``reference``'s, measured side by side: a pandas table,
    one row per size (N, C), one column per variant."""
    import pandas as pd

    rows = {
        (r["N"], r["C"]): {k: v / r["seconds"][reference] for k, v in r["seconds"].items() if k != reference}
        for r in results["results"]
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.names = ["N", "C"]
    return table.sort_index(level=["C", "N"])


COLOURS = {
    "klloss_v2": "C0",
    "klloss_v2, ignore_index=None": "C9",
    "klloss_v2 compiled": "C2",
    "reference": "C1",
    "plain KD compiled": "C4",
    "published": "C5",
}
"""One colour per variant in every figure; red is kept for the targets."""


def _draw_target(ax, target, sizes, variants, width, table, first):
    """A target's bound as a red line across the bar it applies to, in the figure's unit (eager
    plain KD's time): a bound relative to another variant is drawn at that variant's height."""
    at = (
        sizes.index((target["N"], target["C"]))
        + (variants.index(target["variant"]) - (len(variants) - 1) / 2) * width
    )
    versus = target.get("versus", "plain KD")
    height = target["bound"] * (
        1.0 if versus == "plain KD" else table.loc[(target["N"], target["C"]), versus]
    )
    label = f"≤ {target['bound']:.3g}" + ("" if versus == "plain KD" else f" of {versus}'s")
    ax.plot(
        [at - width * 0.7, at + width * 0.7],
        [height] * 2,
        color="red",
        linewidth=2,
        label="target: its bar at most this" if first else None,
    )
    ax.annotate(
        label,
        (at, height),
        xytext=(0, 2),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=7,
        color="red",
        bbox={"boxstyle": "square,pad=0.05", "facecolor": "white", "edgecolor": "none"},
    )


def plot_ratios(results, title):
    """Forward + backward time of each variant over eager plain KD's, per size: bars from the line
    of parity (above it: slower than plain KD), log scale, with each target's bound; returns the
    figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    table = ratio_table(results)
    order = (
        "klloss_v2",
        "klloss_v2, ignore_index=None",
        "klloss_v2 compiled",
        "reference",
        "plain KD compiled",
        "published",
    )
    variants = [v for v in order if v in table]
    fig, ax = plt.subplots(figsize=(10, 4), constrained_layout=True)
    x = np.arange(len(table))
    width = 0.8 / len(variants)
    for i, variant in enumerate(variants):
        ratios = table[variant].to_numpy()
        ax.bar(
            x + (i - (len(variants) - 1) / 2) * width,
            ratios - 1,
            width,
            bottom=1,
            label=variant,
            color=COLOURS[variant],
        )
    ax.axhline(1.0, color="black", linewidth=1, label="eager plain KD")
    sizes = list(table.index)
    first = True
    for target in results.get("targets", []):
        if (target["N"], target["C"]) in sizes and target.get("variant") in variants:
            _draw_target(ax, target, sizes, variants, width, table, first)
            first = False
    ax.set(
        yscale="log",
        xticks=x,
        xticklabels=[f"{n}\n{c}" for n, c in sizes],
        xlabel="batch size N (above) and classes C (below)",
        ylabel="time / eager plain KD's",
    )
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, ncols=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    fig.suptitle(title, fontsize=10)
    return fig
