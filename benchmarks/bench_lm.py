"""klloss_v2 at language-model scale: forward + backward of plain KD, the torch path, the Triton
path and Liger-Kernel's forward KL, side by side in one run, per size; with ``--hidden``, the loss
from hidden states against the logits path and Liger-Kernel's fused linear forward KL.

    python -m benchmarks.bench_lm                      # on a GPU (tools/device_check.sh runs it)
    python -m benchmarks.bench_lm --device cpu --sizes 8x40 --rounds 2 --compile-backend aot_eager
    python -m benchmarks.bench_lm --hidden             # on a GPU (tools/device_check.sh runs it)

Columns, per size and variant: the median time of one forward + backward; that time over the
floor, the least memory traffic (read s and z once, write the gradient once: 3 N V elements) at
the device-to-device copy bandwidth measured in the same run; and the peak memory above the
inputs during the step, the gradient included (CUDA only). About 10 % of the labels are -100.
Writes data/bench/lm/<machine>.json after every size, with its provenance (machine, torch,
Triton, Liger-Kernel, date, klloss commit and whether the tree was clean); notebook 06 and the
README read it. A timing goes here, never in a test; tests/test_bench_lm.py runs this on the CPU.

``--hidden`` (:func:`hidden_main`): at B T = 8192 positions, student hidden size 2048, teacher
4096, a 128256-token vocabulary, bfloat16 hidden states and heads, side by side in one run:
``logits + margin_kd_loss`` (the logits h W^T and h_t W_t^T in bfloat16, then
``klloss.margin_kd_loss``), ``klloss.margin_kd_loss_from_hidden`` at chunk sizes 1024 (its
default) and 256, and Liger-Kernel's ``LigerFusedLinearJSD(jsd_beta=0)``, which is the forward
KL(p || q) (its kernel's ``beta == 0`` branch; checked against ``F.kl_div`` at the start of the
run, the difference stored). Liger computes plain forward KL, klloss the margin-weighted loss: what
is compared is their cost. The machinery is ``benchmarks/bench_hidden.py``'s (the same comparison
on a CPU, without Liger): the median of interleaved rounds, and the peak memory above the inputs,
weights and zeroed gradient buffers (``torch.cuda.max_memory_allocated`` after a reset, less what
was allocated before the step). Writes data/bench/hidden/<machine>.json after every size.
"""

import argparse
import functools
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import klloss
from benchmarks import bench_hidden
from course import bench
from klloss import _triton
from klloss.options import Options

LM_DIR = bench.BENCH_DIR / "lm"
HIDDEN_SIZES = [(8192, 2048, 4096, 128256, "bfloat16")]  # N = B T, H_s, H_t, V, dtype
HIDDEN_CHUNKS = (1024, 256)
LIGER_FUSED = "Liger fused linear forward KL"
BETA = 1.5
PADDING = 0.1
SIZES = [
    # (N, V, dtype): the sizes, the largest first
    (8192, 128256, "bfloat16"),
    (8192, 32000, "bfloat16"),
    (4096, 128256, "float32"),
    (1024, 1000, "float32"),
    (64, 10, "float32"),
]
TARGETS = [
    # (what, N, V, dtype, variant, measure, over, bound)
    ("Triton time / floor", 8192, 128256, "bfloat16", "Triton", "floor", None, 2.5),
    ("Triton / plain KD compiled", 8192, 128256, "bfloat16", "Triton", "time", "plain KD compiled", 0.7),
    ("Triton peak / (gradient + 64 B a row)", 8192, 128256, "bfloat16", "Triton", "memory", None, 1.0),
    ("Triton time / floor", 4096, 128256, "float32", "Triton", "floor", None, 2.0),
    ("Triton / plain KD eager", 64, 10, "float32", "Triton", "time", "plain KD eager", 1.2),
    ("Triton / plain KD eager", 1024, 1000, "float32", "Triton", "time", "plain KD eager", 1.2),
]


def plain_kd(teacher, student, label):
    """KL(softmax(z) || softmax(s)) in float32, batch mean over all rows: kl_div of two log_softmax."""
    log_q, log_p = F.log_softmax(student.float(), -1), F.log_softmax(teacher.float(), -1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


def _impl_call(impl):
    """klloss_v2 with ``impl=`` where the library's dispatch takes it, else None."""
    if "impl" not in inspect.signature(klloss.klloss_v2).parameters:
        return None
    return functools.partial(klloss.klloss_v2, impl=impl)


def torch_path():
    """klloss_v2's torch path on a GPU, its reference (plain torch, autograd), which is also what
    torch.compile compiles; klloss_v2 itself where the library has no ``impl=``."""
    call = _impl_call("reference") or klloss.klloss_v2

    def loss(teacher, student, label):
        return call(teacher, student, teacher, label, BETA)

    return loss


def triton_path():
    """klloss_v2 by the Triton kernels: through the library's dispatch where it takes
    ``impl="triton"``, else klloss._triton.loss with the options checked on every call."""
    call = _impl_call("triton")

    def loss(teacher, student, label):
        if call is not None:
            return call(teacher, student, teacher, label, BETA)
        return _triton.loss(student, teacher, None, label, Options(BETA))

    return loss


def liger_forward_kl():
    """Liger-Kernel's forward KL, ``LigerJSD(beta=0)`` on log_softmax outputs, or None where it
    is not installed."""
    try:
        from liger_kernel.transformers import LigerJSD
    except Exception as error:  # not installed, or it does not import here: say why, go on
        print(f"Liger-Kernel's forward KL left out: {error!r}", flush=True)
        return None
    jsd = LigerJSD(beta=0.0, ignore_index=-100)

    def loss(teacher, student, label):
        return jsd(F.log_softmax(student.float(), -1), F.log_softmax(teacher.float(), -1), label)

    return loss


def variants(device, compile_backend):
    """{name: loss(teacher, student, label)}, in the order of the table."""
    found = {"plain KD eager": plain_kd}
    if compile_backend:
        found["plain KD compiled"] = torch.compile(
            plain_kd, fullgraph=True, dynamic=False, backend=compile_backend
        )
    found["torch path eager"] = torch_path()
    if compile_backend:
        found["torch path compiled"] = torch.compile(
            torch_path(), fullgraph=True, dynamic=False, backend=compile_backend
        )
    if _triton.available(device):
        found["Triton"] = triton_path()
    liger = liger_forward_kl() if device.startswith("cuda") else None
    if liger is not None:
        found["Liger forward KL"] = liger
    return found


def make_inputs(n, v, dtype, device, seed=0):
    """Teacher and student logits (N, V) of ``dtype``, labels with about 10 % -100."""
    gen = torch.Generator(device=device).manual_seed(seed)
    teacher = torch.randn(n, v, generator=gen, device=device, dtype=dtype).mul_(3)
    student = torch.randn(n, v, generator=gen, device=device, dtype=dtype).requires_grad_(True)
    label = torch.randint(0, v, (n,), generator=gen, device=device)
    label[torch.rand(n, generator=gen, device=device) < PADDING] = -100
    return teacher, student, label


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def step(loss_fn, teacher, student, label):
    """One forward + backward into the student."""
    student.grad = None
    loss_fn(teacher, student, label).backward()


def copy_bandwidth(device, nbytes=2**30, repeats=10):
    """Bytes a second of a device-to-device copy (read + write), the best of ``repeats``."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * nbytes / best


def peak_above_inputs(loss_fn, teacher, student, label, device):
    """Bytes allocated at the step's peak beyond what was allocated before it (the inputs), the
    gradient included; None off CUDA."""
    if not device.startswith("cuda"):
        return None
    student.grad = None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step(loss_fn, teacher, student, label)
    _sync(device)
    return torch.cuda.max_memory_allocated(device) - before


def time_size(fns, teacher, student, label, device, rounds, block_seconds=0.02):
    """Median seconds of one step per variant, over interleaved rounds; each round times a block
    of steps lasting about ``block_seconds``."""
    repeats = {}
    for name, fn in fns.items():
        step(fn, teacher, student, label)  # warm-up (compiled variants: compiled already)
        _sync(device)
        start = time.perf_counter()
        step(fn, teacher, student, label)
        _sync(device)
        repeats[name] = max(1, int(block_seconds / max(time.perf_counter() - start, 1e-6)))
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(repeats[name]):
                step(fn, teacher, student, label)
            _sync(device)
            samples[name].append((time.perf_counter() - start) / repeats[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def measure(n, v, dtype_name, device, fns, rounds, bandwidth):
    """One size: every variant's median time, its ratio to the floor, its peak memory."""
    dtype = getattr(torch, dtype_name)
    teacher, student, label = make_inputs(n, v, dtype, device)
    first_call = {}
    for name, fn in fns.items():
        _sync(device)
        start = time.perf_counter()
        step(fn, teacher, student, label)  # compiles the compiled variants, JITs the kernels
        _sync(device)
        first_call[name] = time.perf_counter() - start
    memory = {name: peak_above_inputs(fn, teacher, student, label, device) for name, fn in fns.items()}
    seconds = time_size(fns, teacher, student, label, device, rounds)
    floor = 3 * n * v * teacher.element_size() / bandwidth
    return {
        "N": n,
        "V": v,
        "dtype": dtype_name,
        "floor_seconds": floor,
        "gradient_bytes": student.numel() * student.element_size(),
        "median_seconds": seconds,
        "over_floor": {name: s / floor for name, s in seconds.items()},
        "peak_bytes_above_inputs": memory,
        "first_call_seconds": first_call,
    }


def verdicts(results):
    """Each target's measured ratio, its bound and whether it was met, where the size was run."""
    out = []
    for what, n, v, dtype, variant, measure_, over, bound in TARGETS:
        row = next((r for r in results if (r["N"], r["V"], r["dtype"]) == (n, v, dtype)), None)
        if row is None or variant not in row["median_seconds"]:
            continue
        if measure_ == "floor":
            ratio = row["over_floor"][variant]
        elif measure_ == "memory":
            peak = row["peak_bytes_above_inputs"][variant]
            if peak is None:
                continue
            ratio = peak / (row["gradient_bytes"] + 64 * n)
        else:
            if over not in row["median_seconds"]:
                continue
            ratio = row["median_seconds"][variant] / row["median_seconds"][over]
        out.append({"target": what, "N": n, "V": v, "dtype": dtype, "ratio": ratio, "bound": bound})
        out[-1]["met"] = ratio <= bound
    return out


def environment(device):
    """bench.environment plus Triton's and Liger-Kernel's versions and the tree's state; the
    commit and state can be given (KLLOSS_COMMIT, KLLOSS_TREE) where the checkout has no .git."""
    import importlib.metadata

    env = bench.environment(device)
    for package in ("triton", "liger-kernel"):
        try:
            env[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            env[package] = "not installed"
    version = os.environ.get("KLLOSS_COMMIT") or env["klloss"]
    env["klloss"] = version
    env["tree"] = os.environ.get("KLLOSS_TREE") or (
        "unknown" if version == "unknown" else "changed" if version.endswith("+changes") else "clean"
    )
    return env


def parse_size(text):
    """'NxV' or 'NxV:dtype' (float32 by default)."""
    shape, _, dtype = text.partition(":")
    n, v = (int(x) for x in shape.lower().split("x"))
    return n, v, dtype or "float32"


def hidden_targets(chunks):
    """The GPU targets of the hidden-state path, for each chunk size run: the peak above the
    inputs, weights and gradients at most 4 GB, the time at most 0.8 x Liger-Kernel's."""
    found = []
    for chunk in chunks:
        variant = bench_hidden.hidden_name(chunk)
        found.append(
            {"target": "peak above inputs / GB", "variant": variant}
            | {"measure": "peak / GB", "versus": None, "bound": 4.0}
        )
        found.append(
            {"target": f"time / {LIGER_FUSED}", "variant": variant}
            | {"measure": "time", "versus": LIGER_FUSED, "bound": 0.8}
        )
    return found


def liger_fused_forward_kl():
    """Liger-Kernel's ``LigerFusedLinearJSD(jsd_beta=0)`` (forward KL from hidden states and heads),
    or None where it is not installed."""
    try:
        from liger_kernel.transformers import LigerFusedLinearJSD
    except Exception as error:  # not installed, or it does not import here: say why, go on
        print(f"Liger-Kernel's fused linear forward KL left out: {error!r}", flush=True)
        return None
    # generalized JSD; its kernel computes the forward KL(p || q), p the teacher's, at beta = 0
    return LigerFusedLinearJSD(jsd_beta=0.0, ignore_index=-100)


def forward_kl_check(loss, device, seed=0):
    """How far ``loss(h, W, h_t, W_t, y)`` is from the forward KL of the logits (``F.kl_div`` of
    log_softmax, summed over the rows kept, over their number), in float32 on small inputs:
    {"loss", "forward_kl", "relative_difference"}."""
    x = bench_hidden.make_inputs(64, 32, 48, 1000, "float32", device, seed)
    value = loss(x.h, x.w, x.h_t, x.w_t, x.y)
    with torch.no_grad():
        kept = x.y != -100
        log_q = F.log_softmax((x.h @ x.w.T)[kept].double(), -1)  # student
        log_p = F.log_softmax((x.h_t @ x.w_t.T)[kept].double(), -1)  # teacher
        forward = F.kl_div(log_q, log_p, reduction="sum", log_target=True) / kept.sum()
    value, forward = float(value.detach()), float(forward)
    return {"loss": value, "forward_kl": forward, "relative_difference": abs(value - forward) / forward}


def hidden_variants(device, chunks):
    """({name: step(inputs)}, Liger's loss or None): the logits path and the hidden-state path at
    each chunk size, and on CUDA Liger-Kernel's fused linear forward KL where it is installed."""
    found = bench_hidden.variants(chunks)
    liger = liger_fused_forward_kl() if device.startswith("cuda") else None
    if liger is not None:
        found[LIGER_FUSED] = lambda x: liger(x.h, x.w, x.h_t, x.w_t, x.y).backward()
    return found, liger


def cuda_peak_above(step, x, device):
    """Bytes allocated at the step's peak beyond what was allocated before it (the inputs, the
    weights and their zeroed gradient buffers); None off CUDA."""
    if not device.startswith("cuda"):
        return None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step(x)
    _sync(device)
    return torch.cuda.max_memory_allocated(device) - before


def measure_hidden(size, steps, device, rounds):
    """One size: every variant's first call (JIT), its peak above the inputs, the timed rounds."""
    n, h_s, h_t, v, dtype = size
    x = bench_hidden.make_inputs(*size, device=device)
    first_call = {}
    for name, step in steps.items():
        _sync(device)
        start = time.perf_counter()
        step(x)  # compiles the Triton kernels for these shapes
        _sync(device)
        first_call[name] = time.perf_counter() - start
    memory = {name: cuda_peak_above(step, x, device) for name, step in steps.items()}
    timed = bench_hidden.time_rounds(steps, x, rounds, device)
    return {
        "N": n,
        "H_s": h_s,
        "H_t": h_t,
        "V": v,
        "dtype": dtype,
        "logits_bytes": n * v * 4,
        "input_bytes": x.nbytes(),
        "median_seconds": timed["median"],
        "round_seconds": timed["rounds"],
        "peak_bytes_above_inputs": memory,
        "first_call_seconds": first_call,
    }


def hidden_main(args):
    """The hidden-state comparison (``--hidden``): writes ``<out>/<machine>.json`` after every size."""
    env = environment(args.device)
    print("environment:", json.dumps(env), flush=True)
    steps, liger = hidden_variants(args.device, args.chunks)
    record = {"environment": env, "benchmark": "benchmarks/bench_lm.py --hidden", "rounds": args.rounds}
    record["memory"] = "torch.cuda.max_memory_allocated during one step less memory_allocated before it"
    if liger is not None:
        record["liger_forward_kl_check"] = check = forward_kl_check(liger, args.device)
        print(f"Liger's fused linear JSD at beta = 0 against the forward KL: {check}", flush=True)
    out = Path(args.out or bench.HIDDEN_DIR)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{bench.machine_name(env)}.json"
    record["results"] = []
    for size in args.hidden_sizes:
        row = measure_hidden(size, steps, args.device, args.rounds)
        record["results"].append(row)
        record["targets"] = bench_hidden.verdicts(record["results"], hidden_targets(args.chunks))
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")  # after every size
        print(f"N = {row['N']}, H = {row['H_s']} (teacher {row['H_t']}), V = {row['V']}, {row['dtype']}:")
        for name, seconds in row["median_seconds"].items():
            peak = row["peak_bytes_above_inputs"][name]
            memory = "" if peak is None else f", peak above inputs {peak / 1e9:.2f} GB"
            print(f"  {name:30s} {seconds * 1e3:9.3f} ms{memory}", flush=True)
    bench_hidden.print_verdicts(record.get("targets", []))
    print("wrote", path)
    return 0


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", nargs="*", type=parse_size, default=SIZES, help="NxV[:dtype] ...")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per size")
    parser.add_argument("--out", default=None, help="folder for <machine>.json (default: data/bench/lm/)")
    parser.add_argument(
        "--compile-backend", default="inductor", help="torch.compile backend; 'none' leaves compiled out"
    )
    parser.add_argument("--copy-bytes", type=int, default=2**30, help="buffer of the bandwidth measurement")
    hidden = parser.add_argument_group("the hidden-state comparison (default out: data/bench/hidden/)")
    hidden.add_argument("--hidden", action="store_true", help="run it instead of the logits' sizes")
    hidden.add_argument(
        "--hidden-sizes",
        nargs="*",
        type=bench_hidden.parse_size,
        default=HIDDEN_SIZES,
        help="NxH_sxH_txV[:dtype]",
    )
    hidden.add_argument("--chunks", nargs="+", type=int, default=list(HIDDEN_CHUNKS), help="chunk sizes")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.hidden:
        return hidden_main(args)
    # the first call of a compiled function is timed cold: an empty Inductor cache for this run
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="klloss-bench-lm-inductor-"))
    backend = None if args.compile_backend == "none" else args.compile_backend
    env = environment(args.device)
    print("environment:", json.dumps(env), flush=True)
    bandwidth = copy_bandwidth(args.device, args.copy_bytes)
    record = {"environment": env, "rounds": args.rounds, "copy_bandwidth": bandwidth, "results": []}
    out = Path(args.out or LM_DIR)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{bench.machine_name(env)}.json"
    print(f"device-to-device copy: {bandwidth / 1e12:.2f} TB/s", flush=True)
    for n, v, dtype in args.sizes:
        fns = variants(args.device, backend)
        row = measure(n, v, dtype, args.device, fns, args.rounds, bandwidth)
        record["results"].append(row)
        record["targets"] = verdicts(record["results"])
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")  # after every size
        print(f"N = {n}, V = {v}, {dtype}: floor {row['floor_seconds'] * 1e3:.3f} ms", flush=True)
        for name, seconds in row["median_seconds"].items():
            peak = row["peak_bytes_above_inputs"][name]
            memory = "" if peak is None else f", peak above inputs {peak / 2**30:.2f} GiB"
            print(f"  {name:22s} {seconds * 1e3:9.3f} ms, {row['over_floor'][name]:6.2f} x floor{memory}")
        del fns
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
    for target in record.get("targets", []):
        verdict = "met" if target["met"] else "MISSED"
        print(f"target {target['target']} at {target['N']} x {target['V']} {target['dtype']}: ", end="")
        print(f"{target['ratio']:.2f} (at most {target['bound']}) -> {verdict}")
    print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
