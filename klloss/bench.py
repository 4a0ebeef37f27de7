"""Benchmark helpers: time forward + backward of the published loop, ``klloss_v2`` and plain KD
side by side, count what the published loop does per sample, and plot stored results.

Timings are measured by ``benchmarks/bench_loss.py`` (``make bench``) and stored in
``data/bench/``; ``notebooks/06-performance.ipynb`` reads them. No test times anything.
"""

import datetime
import json
import os
import platform
from pathlib import Path

import torch
import torch.nn.functional as F

from . import _checks
from .loss import _per_sample_autograd, klloss_v2, klloss_v2_published

BENCH_DIR = Path(__file__).resolve().parent.parent / "data" / "bench"
BETA = 1.5


def plain_kd(logits_t, input, target, label, beta):
    """Plain KD, the loss klloss_v2 generalises: KL(softmax(target) || softmax(input)), batch mean."""
    return F.kl_div(F.log_softmax(input, 1), F.log_softmax(target, 1), reduction="batchmean", log_target=True)


def autograd_form(logits_t, input, target, label, beta):
    """klloss_v2 as plain tensor operations differentiated by autograd (before the custom backward),
    with the same argument checks, so that only the implementation differs."""
    beta, offset, _ = _checks.check_all(logits_t, input, target, label, beta, 8.0)
    return _per_sample_autograd(logits_t, input, target, label, beta, offset).sum() / input.shape[0]


VARIANTS = {
    "published": klloss_v2_published,
    "klloss_v2": klloss_v2,
    "autograd form": autograd_form,
    "plain KD": plain_kd,
}


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


def time_variants(n, c, device="cpu", rounds=9, min_time=0.04, variants=VARIANTS):
    """Median seconds of one forward + backward for each variant, on the same inputs.

    The variants are measured in interleaved rounds (A B C D, A B C D, ...), so a slow spell of a
    shared machine hits them all alike and the ratios stay meaningful.
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
    # each measurement repeats the step often enough to last about min_time
    numbers = {
        name: max(1, int(min_time / max(timer.timeit(2).mean, 1e-7))) for name, timer in timers.items()
    }
    samples = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(numbers[name]).mean)
    return {name: statistics.median(values) for name, values in samples.items()}


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


def count_ops(loss_fn, n, c):
    """How many ATen operators one forward + backward dispatches (deterministic, unlike time)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.calls += 1
            return func(*args, **(kwargs or {}))

    teacher, student, label = make_inputs(n, c)
    with Count():
        forward_backward(loss_fn, teacher, student, label)
    return Count.calls


def environment(device="cpu"):
    """Where and with what a benchmark ran: stored with every result."""
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def load_results(name="cpu"):
    """Stored results ``data/bench/<name>.json``: {"environment": ..., "results": [...]}.
    Shown in ``notebooks/06-performance.ipynb``."""
    return json.loads((BENCH_DIR / f"{name}.json").read_text(encoding="utf-8"))


def plot_scaling(results, title):
    """Forward + backward time against batch size, one panel per class count, one line per
    variant; returns the figure."""
    import matplotlib.pyplot as plt

    rows = results["results"]
    classes = sorted({r["C"] for r in rows})
    fig, axes = plt.subplots(
        1, len(classes), figsize=(5 * len(classes), 4), constrained_layout=True, sharey=True
    )
    styles = {"published": "o-", "klloss_v2": "s-", "autograd form": "^--", "plain KD": "d-"}
    for ax, c in zip(axes, classes, strict=True):
        for variant, style in styles.items():
            points = sorted(
                (r["N"], r["seconds"][variant]) for r in rows if r["C"] == c and variant in r["seconds"]
            )
            if points:
                ax.plot(*zip(*points, strict=True), style, label=variant)
        ax.set(xscale="log", yscale="log", xlabel="batch size N", title=f"C = {c}")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("forward + backward, median seconds")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig
