# %% [markdown] id="title"
# # 06 · Training with klloss_v2, and what it costs
#
# *The loss in a training loop through its student-first call, `margin_kd_loss` (padding, language-model shapes, gradient accumulation, torch.compile, several processes), what it costs next to plain KD, and the measurements behind that, each with the machine it was measured on; then how to train a language model without its (N, V) logits.*
#
# **You will learn** which of the library's two calls to train with, and why; how to put `klloss.margin_kd_loss` where a training loop needs it; what its `batchmean` and its `num_items_in_batch` mean when rows are padding or spread over micro-batches and processes; what the loss costs; and how to train from hidden states or from a stored top K of the teacher instead of the (N, V) logits, and what each saves or loses (section 9). **You need** the loss itself ([notebook 01](01-walkthrough.ipynb)) and its gradient $\partial L_i/\partial s_j = q_j W_i - w_j p_j$ ([notebook 04](04-what-it-teaches.ipynb)). The README's table gives this notebook's run time (`make times`); compiling, in section 2, takes part of it.
#
# Two kinds of statement below, kept apart:
#
# - **what holds on every machine**: values, gradients, shapes, operator counts and memory. They are computed when this notebook runs, and each is asserted;
# - **what was measured on one machine**: timings. This notebook times nothing. `make bench` (`benchmarks/bench_loss.py`) measures and stores one file per machine configuration in `data/bench/`, with its provenance, and `tools/device_check.sh` does the same on a GPU, with the language-model benchmark of section 8 (`benchmarks/bench_lm.py`, `data/bench/lm/`); sections 6 and 8 show every stored file as it is, with the code it measured: a file measured on earlier code says so.

# %%

import inspect
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import display
from torch import nn

import course
import klloss
from benchmarks import bench_hidden
from course import bench
from course import experiments as ex
from klloss import _triton

torch.manual_seed(0)
pd.set_option("display.precision", 2)
course.i18n.translate_outputs()  # tables and figures in the reader's language, the Chinese kept for notebooks/zh/

# %% [markdown] id="1-which-call-train"
# ## 1. Which call to train with
#
# The library computes one loss through two calls:
#
# - **`klloss.margin_kd_loss(student_logits, teacher_logits, labels, *, margin_scale=1.5, ...)`**, and its module `klloss.MarginKDLoss`: the student first, every option by keyword, as in TRL's `generalized_jsd_loss` and torchtune's `ForwardKLLoss`. It has what a training loop needs: a `temperature`; `normalize=True` (the default), which divides by the offset $k$, so that at `margin_scale=inf` the loss is plain KD and a mixing weight `alpha` means what it means in KD; `num_items_in_batch` for gradient accumulation and several processes (section 4). **Train with this one.** Its `margin_scale` is the article's β; in TRL and Liger-Kernel `beta` is the mix of a generalised JSD, another thing.
# - **`klloss.klloss_v2(logits_t, input, target, label, beta)`**: the same loss in the article's argument order and at its scale. It exists so that notebooks [01](01-walkthrough.ipynb) to [05](05-real-data.ipynb) can follow the article line by line.
#
# The two agree (with `normalize=False`, at temperature 1), and a swapped student-first call fails loudly instead of training nothing: the teacher's logits are detached, so a student passed as the teacher would get no gradient.

# %%
B, T, V, FEATURES = 4, 6, 50, 16
lengths = torch.tensor([6, 4, 5, 2])
features = torch.randn(B, T, FEATURES)
teacher_logits = 2 * torch.randn(B, T, V)  # z, (B, T, V)
label = teacher_logits.argmax(-1)  # y, (B, T): the teacher's top class, as a well-trained teacher's would be
padding = torch.arange(T) >= lengths.unsqueeze(1)  # True after each sequence's end
label[padding] = -100
student = nn.Linear(FEATURES, V)
kd = klloss.MarginKDLoss(margin_scale=1.5)  # ignore_index=-100, reduction="batchmean", normalize=True
print(kd)

logits = student(features)  # s, (B, T, V)
article = klloss.klloss_v2(teacher_logits, logits, teacher_logits, label, 1.5)  # the article's order
assert torch.allclose(klloss.margin_kd_loss(logits, teacher_logits, label, normalize=False), article)
assert torch.allclose(kd(logits, teacher_logits, label), article / klloss.ARTICLE_OFFSET)  # normalize: / k
try:
    kd(teacher_logits, logits, label)  # swapped: the student's logits where the teacher's go
    raise AssertionError("a swapped call was accepted")
except ValueError as error:
    print("ValueError:", error)

# %% [markdown] id="1-language-model-batch"
# ### A language model's batch, with padding
#
# A language model gives logits of shape (batch, sequence, vocabulary) = (B, T, V), and its labels, (B, T), mark the padding after each sequence's end with −100, as `F.cross_entropy` expects. Both calls take the same:
#
# - **any leading shape**: (B, T, V) logits with (B, T) labels are the flattened (B T, V) call;
# - **`ignore_index=-100`** (the default): a row whose label equals it contributes nothing and gets a zero gradient;
# - **`batchmean`** divides by the number of rows *not* ignored: the mean over real tokens. (`F.kl_div`'s `batchmean` would divide by B.)
#
# Above, a toy student (one linear layer over random features) and a fixed teacher, four sequences of lengths 6, 4, 5 and 2.

# %%
loss = kd(logits, teacher_logits, label)
loss.backward()
per_position = kd(logits.detach(), teacher_logits, label, return_parts=True).per_row  # L_i, (B, T)
flat = kd(logits.detach().reshape(-1, V), teacher_logits.reshape(-1, V), label.reshape(-1))
kept = int((~padding).sum())

print(f"{B * T} positions, {int(padding.sum())} of them padding: batchmean divides by {kept}")
print(f"loss = {loss.item():.4f}; the rows' losses have shape {tuple(per_position.shape)}")
assert per_position.shape == (B, T) and torch.all(per_position[padding] == 0)
assert torch.allclose(loss, per_position.sum() / kept) and torch.allclose(loss, flat)

# the gradient w.r.t. the student's logits is zero at the padding
s = logits.detach().requires_grad_(True)
kd(s, teacher_logits, label).backward()
assert torch.all(s.grad[padding] == 0) and torch.all(s.grad[~padding].abs().sum(-1) > 0)

# %% [markdown] id="no-waiting-gpu-gpu"
# **No waiting for the GPU.** On a GPU, the loss never copies labels to the host: forward and backward run without a single synchronisation (`tests/test_cuda.py` checks it under `torch.cuda.set_sync_debug_mode("error")`). A label outside [0, V) that is not −100 then fails the device-side bounds check of the gather that reads $z_y$, as it does in `F.cross_entropy`. On the CPU the same gather refuses it before any other work, and only then are the labels read, to skip padding or to raise a `ValueError` that names the labels:

# %%
bad = label.clone()
bad[0, 0] = V
try:
    kd(logits, teacher_logits, bad)
except ValueError as error:
    print("ValueError:", error)


# %% [markdown] id="2-compiled"
# ## 2. Compiled, in a distillation step
#
# `torch.compile(..., fullgraph=True)` traces the loss into one graph: no host reads of labels while compiling (`torch.compiler.is_compiling()`), so no graph break. The compiled gather still checks its indices. The first call compiles (seconds: section 6 shows what the stored runs recorded); later calls with the same shapes reuse the result. The compiled loss and its gradient agree with eager mode to float32 rounding:


# %%
def distillation_loss(student_logits, teacher, label):
    return kd(student_logits, teacher, label)


# This kernel runs ATen's baseline code (course/nbenv.py), where torch 2.13's inductor emits vector
# code that does not compile; asking it for scalar code (simdlen 1) compiles, and keeps the digits
# the same on every CPU. Outside this pinned setting, torch.compile needs no such line.
torch._inductor.config.cpp.simdlen = 1
compiled_loss = torch.compile(distillation_loss, fullgraph=True)
results = []
for fn in (distillation_loss, compiled_loss):
    s = logits.detach().requires_grad_(True)
    value = fn(s, teacher_logits, label)
    value.backward()
    results.append((value.detach(), s.grad))
(eager_value, eager_grad), (compiled_value, compiled_grad) = results
value_gap = ((compiled_value - eager_value).abs() / eager_value.abs()).item()
grad_gap = ((compiled_grad - eager_grad).abs().max() / eager_grad.abs().max()).item()
assert value_gap < 1e-5 and grad_gap < 1e-5
print("compiled and eager agree: loss and gradient within 1e-5, relative")

# %% [markdown] id="few-steps-training-through"
# A few steps of training, in the form distillers write, $(1-\alpha)\,\mathrm{CE} + \alpha\,\mathrm{KD}$ with the compiled loss as the KD term. Because `normalize=True` makes the KD term plain KD at `margin_scale=inf`, `alpha` here means what it means in KD. The KD term is not a divergence: on these rows every weight is positive, so it is bounded below, by a number below zero (the rows' `lower_bound` from `return_parts=True`; `course.analysis.min_loss`, [notebook 04](04-what-it-teaches.ipynb), divided by $k$), not by zero.

# %%
alpha = 0.5
optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
history = []
for _ in range(30):
    optimizer.zero_grad()
    step_logits = student(features)
    ce = F.cross_entropy(step_logits.flatten(0, 1), label.flatten())  # ignores -100 too
    kd_term = compiled_loss(step_logits, teacher_logits, label)
    ((1 - alpha) * ce + alpha * kd_term).backward()
    optimizer.step()
    history.append((ce.item(), kd_term.item()))
real = ~padding
weights = klloss.weight(klloss.margin(teacher_logits[real], label[real]), 1.5)  # w, (kept rows, V)
assert torch.all(weights > 0)  # so every row is bounded below
parts = kd(student(features).detach(), teacher_logits, label, return_parts=True)
lowest = (parts.lower_bound[real].mean()).item()  # the lowest KD term any student can reach
reference_lowest = course.analysis.min_loss(teacher_logits[real], teacher_logits[real], label[real], 1.5)
assert abs(lowest - reference_lowest.item() / klloss.ARTICLE_OFFSET) < 1e-6
(ce_0, kd_0), (ce_n, kd_n) = history[0], history[-1]
print(f"over 30 steps: CE {ce_0:.3g} -> {ce_n:.3g}, KD term {kd_0:.3g} -> {kd_n:.3g}")
print(f"the lowest KD term any student can reach: {lowest:.3g}")
assert kd_n < kd_0 and ce_n < ce_0 and kd_n > lowest  # both terms fall; KD stays above its floor


# %% [markdown] id="3-torch-func"
# ## 3. torch.func
#
# Under a `torch.func` transform, on a CPU or on a GPU without Triton, the loss sees that its inputs are wrapped and computes with the reference form, plain tensor operations that `torch.func` differentiates and batches itself; on a GPU with Triton the Triton path runs, and its `autograd.Function`s carry their own vmap rule. Here, per-sequence gradients with `vmap(grad(...))`, checked against a loop of ordinary backward passes.


# %%
def sequence_loss(s, z, y):
    return klloss.margin_kd_loss(s, z, y)


per_sequence = torch.func.vmap(torch.func.grad(sequence_loss))(logits.detach(), teacher_logits, label)
for i in range(B):
    s = logits.detach()[i].clone().requires_grad_(True)
    sequence_loss(s, teacher_logits[i], label[i]).backward()
    assert torch.allclose(per_sequence[i], s.grad, atol=1e-7)
print("per-sequence gradients, shape", tuple(per_sequence.shape), "= a loop of backward passes")


# %% [markdown] id="4-several-processes-batchmean"
# ## 4. Gradient accumulation and several processes: `num_items_in_batch`
#
# Two ways of splitting a step's batch:
#
# - **gradient accumulation**: several micro-batches, one backward each; the gradients add up;
# - **`DistributedDataParallel`**: each of $P$ processes takes part of the batch, and after `backward()` DDP **averages** the gradients over the processes.
#
# With `batchmean`, each call divides by the rows *it* keeps. Then a row of a micro-batch (or a process) with few kept rows weighs more than a row of one with many, and the result is the gradient of the whole batch's mean only when every part keeps the same number of rows. With padding spread unevenly, it is not.
#
# The fix: pass `num_items_in_batch` $= K$, the number of rows kept in the **whole** batch (every micro-batch, every process), so that each call returns its sum over $K$. It may be a tensor, `(labels != -100).sum()` added over the micro-batches and all-reduced over the processes: the loss divides by it on the device, and nothing waits for the host. DDP leaves every process with $\frac1P \sum_{r} \sum_m \nabla \ell_{r,m}$; that is $\nabla \frac1K \sum_i L_i$ when every micro-batch returns $\ell_{r,m} = P \cdot$ `margin_kd_loss(..., num_items_in_batch=K)`: the factor $P$ undoes DDP's average.
#
# `tests/test_ddp.py` checks this with real DDP (two processes, gloo), and `tests/test_accumulation.py` against the oracle's gradient. Here the same arithmetic in one process: the batch split between two "processes" of two sequences each, each sequence a micro-batch.


# %%
def ddp_gradient(micro_batch_loss, processes):
    """What DDP leaves in every process: each process's gradient, accumulated over its
    micro-batches, then averaged over the processes."""
    grads = []
    for micro_batches in processes:
        s = logits.detach().clone().requires_grad_(True)
        for rows in micro_batches:
            micro_batch_loss(s[rows], teacher_logits[rows], label[rows]).backward()
        grads.append(s.grad)
    return sum(grads) / len(processes)


s = logits.detach().clone().requires_grad_(True)
kd(s, teacher_logits, label).backward()  # one process, the whole batch at once
processes = [[slice(0, 1), slice(1, 2)], [slice(2, 3), slice(3, 4)]]  # 2 processes x 2 micro-batches
world = len(processes)
kept_per_micro_batch = [[int((label[rows] != -100).sum()) for rows in p] for p in processes]
kept_per_process = [sum(kept) for kept in kept_per_micro_batch]
count = sum((label[rows] != -100).sum() for p in processes for rows in p)  # a tensor: all_reduce under DDP

own_mean = ddp_gradient(lambda s, z, y: kd(s, z, y), processes)
with_count = ddp_gradient(lambda s, z, y: world * kd(s, z, y, num_items_in_batch=count), processes)
print(f"rows kept by the two processes: {kept_per_process}; by their micro-batches: {kept_per_micro_batch}")
print(
    f"each micro-batch its own mean vs the whole batch's: largest gradient difference "
    f"{(own_mean - s.grad).abs().max():.2g}"
)
assert kept_per_process[0] != kept_per_process[1] and not torch.allclose(own_mean, s.grad)
assert torch.allclose(with_count, s.grad, atol=1e-8)
print("world x margin_kd_loss(..., num_items_in_batch=K) gives the whole batch's gradient")

# %% [markdown] id="5-holds-every-machine"
# ## 5. What holds on every machine
#
# ### Operators dispatched
#
# One forward + backward of each loss, counted by kind: operators that compute (on a GPU, each is a kernel launch), views (indexing a row, reshaping: a new tensor header, no work), and host reads (a number copied into Python; on a GPU that waits for the device, if the number lives there). Counts do not depend on the machine, unlike times.
#
# - **published**: the article's algorithm (`klloss.klloss_v2_published`);
# - **klloss_v2**: ours;
# - **reference**: klloss_v2's readable form (`klloss.reference`, `impl="reference"`), plain tensor operations differentiated by autograd, behind the same checks;
# - **plain KD**: `F.kl_div(log_softmax(s), log_softmax(z), log_target=True, reduction="batchmean")`, the loss klloss_v2 generalises.

# %%
counts = pd.DataFrame(
    {(name, n): bench.count_ops(fn, n, 10) for name, fn in bench.VARIANTS.items() for n in (8, 64, 512)}
).T
counts.index.names = ["loss", "batch size N"]
display(counts)
published = counts.loc["published"]
per_sample = (published.loc[512] - published.loc[64]) / (512 - 64)
print("the published loop, per extra sample:", per_sample.to_dict())
assert per_sample.to_dict() == {"compute": 1, "view": 1, "host read": 1}
for name in ("klloss_v2", "reference", "plain KD"):
    assert (counts.loc[name].nunique() == 1).all()  # independent of N

# %% [markdown] id="per-sample-published-loop"
# Per sample, the published loop indexes the teacher's row with the label (a view: no work), reads the label's value into Python (from a copy of the labels on the host, made once per call: on a GPU that copy is the synchronisation, and the reads after it wait for nothing), and subtracts (one operator, one kernel launch on a GPU). So its cost grows with the batch in *operators*; klloss_v2's does not.
#
# On a GPU, `klloss_v2` runs the Triton kernels when Triton is installed (section 8: one kernel forward, one backward), and otherwise the reference form. The meta device runs the reference's code path without a GPU (shapes, no data), so the counts of that GPU step can be taken here; its labels are checked on the device, with no host read. Where launching kernels is what costs, as it is for small batches on a fast GPU, time follows these counts:

# %%
gpu_path = pd.DataFrame(
    {
        (name, c): bench.count_ops(fn, 64, c, device="meta")
        for name, fn in [
            ("klloss_v2", klloss.klloss_v2),
            ("klloss_v2, ignore_index=None", bench.without_ignore_index),
            ("plain KD", bench.plain_kd),
        ]
        for c in (10, 1000)
    }
).T
gpu_path.index.names = ["loss", "classes C"]
display(gpu_path)
launches = gpu_path["compute"].groupby(level="loss").first()
print("operators that compute, over plain KD's:", (launches / launches["plain KD"]).round(2).to_dict())
assert (gpu_path["host read"] == 0).all()
ratio_to_kd = launches / launches["plain KD"]
saved_by_none = int(launches["klloss_v2"] - launches["klloss_v2, ignore_index=None"])
assert saved_by_none > 0  # ignore_index=None: no masking at all
print(f"ignore_index=None dispatches {saved_by_none} fewer operators that compute")
assert (ratio_to_kd.drop("plain KD") > 2).all()  # "several times"

# %% [markdown] id="masking-ignore_index-most-difference"
# Without Triton, then, a GPU step of klloss_v2 dispatches several times the operators of plain KD (the ratios printed above). With `ignore_index` set, the reference replaces each input's ignored rows by zeros before any arithmetic (a `where` per input, and one in the backward), so that whatever an ignored row holds reaches neither the loss nor the gradient; told that no row is padding (`ignore_index=None`), it skips them, and dispatches the few operators fewer printed above (asserted). The others are the weighting itself (the margin, the weight, the guards for $p_c = 0$) and autograd's backward of each. Where launches set the time, `torch.compile` (section 2) fuses them, and the Triton path has two.
#
# ### Memory kept for backward
#
# Between forward and backward the autograd graph keeps tensors alive: for a loss at the end of a network, that is the memory it adds to a training step. Counted from the saved tensors (each storage once, the inputs themselves excluded), which is exact:

# %%
SIZES = [(1024, 1000), (4096, 10)]
saved = {(n, c): {name: bench.saved_bytes(fn, n, c) for name, fn in bench.VARIANTS.items()} for n, c in SIZES}
memory = pd.DataFrame({f"N = {n}, C = {c}": saved[n, c] for n, c in SIZES}) / 2**20
display(memory.round(2).rename(index=lambda name: f"{name} (MiB)"))
ratio = memory.loc["klloss_v2"] / memory.loc["plain KD"]
print("klloss_v2 keeps", ratio.round(2).to_dict(), "times what plain KD keeps")
for n, c in SIZES:  # float32: 4 bytes a number
    assert saved[n, c]["klloss_v2"] == 4 * (n * c + n)  # G, (N, C), and W, one number per row
    assert saved[n, c]["plain KD"] == 4 * 2 * n * c  # two (N, C) tensors

# %% [markdown] id="klloss_v2-keeps-gradient-itself"
# klloss_v2 keeps the gradient $G = qW - wp$ itself, one (N, C) tensor computed in the forward where $p$ and $q$ are at hand ([notebook 04](04-what-it-teaches.ipynb)'s closed form), and $W$, one number per row (for double backward). Its backward only multiplies $G$ by the upstream gradient. Plain KD keeps two (N, C) tensors, for the backward of `kl_div` and of `log_softmax`.
#
# ## 6. What was measured, and where
#
# Each file in `data/bench/` is one machine configuration, measured by `make bench` (on a CPU: one thread, float32, the CPU as it is and capped at AVX2 with `ATEN_CPU_CAPABILITY=avx2`) or by `tools/device_check.sh` (on a GPU). Each size times one forward + backward of every loss in interleaved rounds, and keeps the fastest round of each (on a shared machine other work only ever adds time). The ratios below are to eager plain KD *measured in the same run*; they describe that machine, with that PyTorch, and no other.
#
# The **compiled** variants are `torch.compile(loss, fullgraph=True)` at fixed shapes; their first call, which compiles, is timed apart.

# %%
stored = {name: bench.load_results(name) for name in bench.stored_names()}
PROVENANCE = [
    "date",
    "klloss",
    "device",
    "gpu",
    "cpu_model",
    "cpu_capability",
    "ATEN_CPU_CAPABILITY",
    "torch_threads",
    "cpu_count",
    "torch",
    "python",
]
provenance = pd.DataFrame(
    {name: {k: r["environment"].get(k, "(not recorded)") for k in PROVENANCE} for name, r in stored.items()}
)
# which code each file measured, from git in this checkout (course.bench.code_state)
states = {name: bench.code_state(record) for name, record in stored.items()}
provenance.loc["code measured"] = {name: state for name, (state, _) in states.items()}
display(provenance)
for name, (state, sentence) in states.items():
    print(f"{name}: {state}: {sentence}")

# %% [markdown] id="targets-printed-under-each"
# The targets, printed under each table and drawn in red over the bar each bounds, are those of the drop-in-loss issue: eager klloss_v2 no slower than eager plain KD (with some slack at the smallest size, where a call's fixed costs dominate), and compiled klloss_v2 clearly faster than it; and the fused path's own, that it take at most 1/1.2 of the eager reference's time, the condition on which it stays in the library (`klloss/loss.py`). On a GPU that target was set at sizes where a GPU measures only launch overhead; section 8 replaces it with targets at a language model's sizes.

# %%
for name, record in stored.items():
    print(f"== data/bench/{name}.json ({states[name][0]})")
    # two decimals, and — where a form was not measured at that size
    display(bench.ratio_table(record).apply(lambda col: col.map(lambda x: "—" if pd.isna(x) else f"{x:.2f}")))
    for target in record["targets"]:
        bound = f"{target['bound']:.3g}" + ("" if "variant" in target else f" ({target['sense']})")
        print(
            f"target {target['target']} at N = {target['N']}, C = {target['C']}: {target['ratio']:.2f}, "
            f"bound {bound}: {'met' if target['met'] else 'missed'}"
        )
    for variant, seconds in record.get("compile_seconds", {}).items():
        if isinstance(seconds, float):
            print(f"{variant} (the process's first compilation, of a trivial function): {seconds:.1f} s")
        else:
            print(
                f"first call of {variant}, which compiles it: "
                + ", ".join(f"{k}: {v:.1f} s" for k, v in seconds.items())
            )
    bench.plot_ratios(record, f"data/bench/{name}.json: {states[name][1]}")
    plt.show()

# %% [markdown] id="reading-them"
# Reading them:
#
# - a file that is not **current** describes earlier code: **stale** when `klloss/` changed after the commit it measured, **uncommitted** when it was measured on a tree that differed from its commit (which code, is not recorded). Such numbers say what that code cost, not what the code in `klloss/` now costs; re-running its benchmark replaces the file;
# - klloss_v2 against plain KD, eager, and the **reference** (called the *autograd form* in older files) against klloss_v2, computed from each file:

# %%
for name, record in stored.items():
    table = bench.ratio_table(record).rename(columns={"autograd form": "reference"})
    cheaper = int((table["klloss_v2"] < 1).sum())
    reference_over_ours = table["reference"] / table["klloss_v2"]
    faster = int((reference_over_ours < 1).sum())
    print(
        f"{name} ({states[name][0]}): eager klloss_v2 costs less than eager plain KD at {cheaper} of "
        f"{len(table)} sizes; reference / klloss_v2 median {reference_over_ours.median():.2f}, range "
        f"{reference_over_ours.min():.2f} to {reference_over_ours.max():.2f}, the reference faster at "
        f"{faster} of {len(table)} sizes"
    )
gpu_files = [name for name, record in stored.items() if record["environment"]["device"].startswith("cuda")]
for name in gpu_files:
    assert (bench.ratio_table(stored[name])["klloss_v2"] > 1).all()  # the claim below, for these files

# %% [markdown] id="so-whether-writing-backward"
# So whether writing the backward by hand pays is itself a measurement, of one machine and one version of the code: the lines above say, file by file, at how many sizes it did. On the GPU files, eager klloss_v2 cost more than eager plain KD at every size (asserted above): at these sizes a GPU spends its time launching kernels, and klloss_v2 launches more of them (section 5). That those files were measured on earlier, uncommitted code (their state above) is one more reason not to read them as the code's cost now.
#
# One column of the GPU file: klloss_v2 told that no label is padding (`ignore_index=None`) took less time than klloss_v2 with its default. On the code here, section 5 counts fewer operators for it too (asserted there), so the two point the same way. They are still about different code: the file was measured on a tree that differed from its commit, which is recorded in its provenance (printed below, computed from it). Its times say what that code cost, not what the code here costs.

# %%
for name in gpu_files:
    table = bench.ratio_table(stored[name])
    if "klloss_v2, ignore_index=None" not in table:
        continue
    share = table["klloss_v2, ignore_index=None"] / table["klloss_v2"]
    state, sentence = states[name]
    print(
        f"data/bench/{name}.json: klloss_v2 with ignore_index=None took {share.min():.2f} to "
        f"{share.max():.2f} of the time of klloss_v2 with ignore_index=-100"
    )
    print(f"  the code it measured: {state}: {sentence}")
    # the paragraph above; a file measured on the code here would replace this one
    assert state != "current" and (share < 1).all()
print(f"the code here (section 5): {saved_by_none} fewer operators with ignore_index=None than without")
assert saved_by_none > 0

# %% [markdown] id="7-torch-path-where"
# ## 7. What the torch path does, and where it can cost less than plain KD
#
# What the fused torch implementation does (`klloss/_fused.py`, the path plain eager calls on a CPU take when the fused form covers their options: the dispatch point in `klloss/loss.py` says which); the counts and memory above are the parts of it that every machine shares. The savings below are a CPU's: the CPU files above say at which sizes eager klloss_v2 cost less than plain KD, the GPU files that it never did there.
#
# - **The gradient is computed in the forward.** [Notebook 04](04-what-it-teaches.ipynb)'s closed form $G = qW - wp$ needs $p$ and $q$, which the forward has anyway: one fused update of the weighted teacher's buffer, $-wp + q\,W$. The backward is then one multiplication by the upstream gradient, into a new tensor even for a plain `loss.backward()`: the caller owns what backward returns and may change it in place, while a retained graph needs $G$ unchanged. The only (N, C) tensor kept for it is $G$.
# - **The weighted teacher is kept negated, $-wp$, and the log-ratio as $\log q - \log p$**, so that a row's loss is the sum of their products, $\sum_{c} (-w_{ic} p_{ic})(\log q_{ic} - \log p_{ic})$, formed in place in the log-ratio's buffer; the batch mean then sums the rows' losses. (One dot product over all $N C$ terms would save a pass, but it lost digits at a language model's size: section 9.) The margin is formed first, $z'_y - z'_c$, and scaled after, and the log-probabilities are taken as they are, so a constant added to the logits changes no error (the reference does the same; `tests/test_edges.py`).
# - **Few fresh (N, C) tensors.** After the two log-softmaxes and $p$, every temporary is reused in place; on a CPU each fresh large tensor costs page faults.
# - **Exact zeros only where they are needed.** A class with $p_c = 0$ must add 0 even where its weight is infinite (a teacher logit of $-\infty$), which takes masks. The first pass runs without them; only when its loss is not finite (an infinite weight or log-probability met $p_c = 0$, or the loss is truly infinite) does a second pass apply them. On the CPU, reading that one number waits for nothing.
# - **Labels checked once, on the host, before any work**: one `aminmax` over the labels says both that each is a class or `ignore_index` and whether any row is ignored, so that a batch without padding builds no mask.
#
# How much each of these saves is a measurement, and differs from machine to machine (section 6). What every machine shares is the operator count: where fixed per-operator costs dominate (few classes, small batches, and on a GPU most of the sizes above), klloss_v2 cannot be cheaper than the operators it dispatches.
#
# ## 8. On a GPU at a language model's size: the Triton path
#
# Distilling a language model gives logits of shape (B T, V) with V from tens of thousands to hundreds of thousands, often in bfloat16. There, what a loss costs is memory traffic: every (N, V) tensor an eager loss writes and reads back costs as much as reading the logits. `klloss._triton` computes klloss_v2 in two Triton kernels:
#
# - **Forward, one pass.** One program per row reads $s$ and $z$ once, a block of classes at a time. It keeps the running maxima $M_z, M_s$ and, relative to them, the sums $S_z = \sum_c e^{z_c - M_z}$, $S_s = \sum_c e^{s_c - M_s}$, $A = \sum_c w_c e^{z_c - M_z}$ and $B = \sum_c w_c e^{z_c - M_z}\,[(z_c - M_z) - (s_c - M_s)]$, rescaled whenever a maximum grows. At the end $W = A / S_z$ and $L_i = (B - A(\log S_z - \log S_s)) / S_z$. Every accumulated number is relative to the maxima, so a constant added to a row of $s$ or $z$ leaves the error unchanged; a class with $p_c = 0$ adds nothing, whatever its weight.
# - **Backward, one pass.** With $M$, $\log S$ and $W$ kept per row, it writes $g\,(q_c W - w_c p_c)$ directly in the input's dtype.
# - **No host synchronisation**: the rows kept by `ignore_index` are counted on the device.
#
# The least traffic any implementation needs reads $s$ and $z$ once and writes the gradient once: that is the **floor**, in time at the device-to-device copy bandwidth. This design moves $s$ and $z$ twice and the gradient once:

# %%
passes = {"forward": ["s", "z"], "backward": ["s", "z", "gradient"]}
moved = sum(len(tensors) for tensors in passes.values())
least = len({"s", "z", "gradient"})
print(
    f"(N, V) transfers: {moved} (forward {passes['forward']}, backward {passes['backward']}); the floor: {least}"
)
print(f"so this design runs at {moved}/{least} = {moved / least:.2f} x the floor at best")
LM_SIZES = [(8192, 128256, torch.bfloat16), (8192, 32000, torch.bfloat16), (4096, 128256, torch.float32)]
tensor_gib = {(n, v, dtype): n * v * torch.finfo(dtype).bits / 8 / 2**30 for n, v, dtype in LM_SIZES}
floor_gib = pd.DataFrame(
    {
        f"{n} x {v}, {str(dtype).removeprefix('torch.')}": {
            "one (N, V) tensor (GiB)": gib,
            "the floor's traffic (GiB)": least * gib,
            "this design's (GiB)": moved * gib,
        }
        for (n, v, dtype), gib in tensor_gib.items()
    }
).T
display(floor_gib.round(2))

# %% [markdown] id="forward-kernel-as-library"
# The forward kernel, as the library runs it (`klloss/_triton.py`; `tests/test_triton.py` runs both kernels on the CPU in Triton's interpreter against the float64 oracle, and `tests/test_cuda.py` on a GPU):

# %%
print(inspect.getsource(_triton._forward_kernel.fn))

# %% [markdown] id="was-measured-gpu"
# ### What was measured on a GPU
#
# `benchmarks/bench_lm.py`, run by `tools/device_check.sh` (`docs/gpu.md` says how), times one forward + backward at the issue's sizes, side by side in one run: plain KD eager and compiled, klloss_v2's torch path eager and compiled, the Triton path, and Liger-Kernel's forward KL. It stores the median time, that time over the floor at the bandwidth measured in the same run, and the peak memory above the inputs, in `data/bench/lm/`, one file per machine:

# %%
lm_stored = {name: bench.load_lm_results(name) for name in bench.lm_names()}
if not lm_stored:
    print("No GPU measurement of the current code exists: data/bench/lm/ holds no file.")
    print("To make one, on a machine with a CUDA GPU (docs/gpu.md):")
    print("    OUT=build/device KLLOSS_COMMIT=$(git rev-parse --short HEAD) bash tools/device_check.sh")
for name, record in lm_stored.items():
    env = record["environment"]
    state, sentence = bench.code_state(record)
    print(f"== data/bench/lm/{name}.json: {env.get('gpu', env['device'])}, torch {env['torch']}, ", end="")
    print(f"Triton {env['triton']}, Liger-Kernel {env['liger-kernel']}, {env['date']}; {state}: {sentence}")
    print(
        f"device-to-device copy bandwidth measured in the same run: {record['copy_bandwidth'] / 1e12:.2f} TB/s"
    )
    display(bench.lm_table(record).round(2))
    for target in record.get("targets", []):
        print(
            f"target {target['target']} at {target['N']} x {target['V']}, {target['dtype']}: "
            f"{target['ratio']:.2f}, bound {target['bound']:.3g}: {'met' if target['met'] else 'missed'}"
        )

# %% [markdown] id="9-without-logits"
# ## 9. Without the (N, V) logits
#
# A language model's logits have one row per position and one column per token of the vocabulary: at its sizes one copy is gigabytes (section 8's table), and a loss with its gradient holds several. Two entry points do without them (`docs/training.md`, "Without the (N, V) logits", says more):
#
# - **from hidden states**: `klloss.margin_kd_loss_from_hidden(h, W, h_t, W_t, labels, *, chunk_size=64, ...)` takes both models' last hidden states and output layers (`lm_head.weight`, shape (V, H)). It walks over the positions `chunk_size` rows at a time: for each chunk it forms both logits in float32, computes the loss and its gradient $G$ with the library's own forms, and turns $G$ at once into the gradients of the hidden states and of the head, $GW$ and $G^\top h$. Only those are kept for the backward pass;
# - **from a stored top K**: `klloss.topk_store(teacher_logits, labels, k)`, built once, keeps the teacher's $K$ most probable classes per row, their log-probabilities and the label's; `klloss.margin_kd_loss_topk(student_logits, *store, labels, tail=...)` computes the loss from them. The margins to the stored classes are exact, $z_y - z_c = \log p_y - \log p_c$, and so are their weights. The other classes, the tail, are either one class that holds the teacher's remaining mass $p_B$, weighted as the $K$-th class is (`tail="bucket"`: its error is proportional to $p_B$), or left out, the teacher renormalised over the stored classes (`tail="renormalize"`). `tail` has no default: the two approximate different things.
#
# Below: both in a training loop on a toy language model; the memory the first saves, measured; and what the second loses on [notebook 05](05-real-data.ipynb)'s digits, in the loss and in the students.
#
# ### A toy language model
#
# An embedding and one linear layer give the hidden states, `lm_head` the logits. The teacher has its own hidden size and its own head, over the same vocabulary of a few thousand tokens (the cell prints the sizes). The toy sees one token and predicts the next, so the corpus is drawn from the teacher itself, token after token; each sequence is cut at a random length, and the rest is padding, with label −100. The teacher is not trained: what matters here is the arithmetic, not what the teacher knows.
#
# At the first step, the loss from hidden states must be the loss of the whole logits: the same value, and the same gradient for every parameter of the student (embedding, body and head), up to float32 rounding. The bound asserted: the value within $10^{-3}$, relative, and each gradient within $10^{-5}$ of its largest entry. The value is a sum of about $N V$ float32 terms of both signs, added in another order on each path, which can move its fourth digit; each gradient entry is formed on its own, from far fewer terms.

# %%
V_LM, H_STUDENT, H_TEACHER = 4000, 64, 96  # vocabulary V, the student's and the teacher's hidden sizes
SEQUENCES, LENGTH, PER_BATCH, CHUNK = 16, 64, 4, 256


class ToyLM(nn.Module):
    """An embedding and one linear layer give the hidden states h; lm_head the logits h W^T."""

    def __init__(self, hidden, vocab):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.body = nn.Linear(hidden, hidden)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)  # W, (V, H)

    def hidden(self, tokens):  # h, (B, T, H)
        return torch.tanh(self.body(self.embed(tokens)))

    def forward(self, tokens):  # s = h W^T, (B, T, V)
        return self.lm_head(self.hidden(tokens))


torch.manual_seed(0)
lm_teacher = ToyLM(H_TEACHER, V_LM).requires_grad_(False)
with torch.no_grad():
    lm_teacher.lm_head.weight.mul_(20)  # a teacher sure enough of itself to have a top K
lm_gen = torch.Generator().manual_seed(0)
tokens = torch.randint(0, V_LM, (SEQUENCES, 1), generator=lm_gen)
with torch.no_grad():  # the corpus, drawn from the teacher token after token
    for _ in range(LENGTH):
        drawn = torch.multinomial(lm_teacher(tokens[:, -1]).softmax(-1), 1, generator=lm_gen)
        tokens = torch.cat([tokens, drawn], 1)
lm_inputs, lm_labels = tokens[:, :-1], tokens[:, 1:].clone()  # y: the next token
lm_lengths = torch.randint(LENGTH // 2, LENGTH + 1, (SEQUENCES,), generator=lm_gen)
lm_labels[torch.arange(LENGTH) >= lm_lengths.unsqueeze(1)] = -100  # padding after each end
lm_kept = lm_labels != -100
with torch.no_grad():
    lm_teacher_hidden = lm_teacher.hidden(lm_inputs)  # h_t, (B, T, H_t)
    lm_teacher_logits = lm_teacher.lm_head(lm_teacher_hidden)  # z, (B, T, V): here only to compare

torch.manual_seed(1)
lm_student = ToyLM(H_STUDENT, V_LM)
lm_params = list(lm_student.parameters())  # embedding, body (weight, bias), head
from_hidden = klloss.margin_kd_loss_from_hidden(
    lm_student.hidden(lm_inputs),
    lm_student.lm_head.weight,
    lm_teacher_hidden,
    lm_teacher.lm_head.weight,
    lm_labels,
    chunk_size=CHUNK,
)
grads_hidden = torch.autograd.grad(from_hidden, lm_params)
from_logits = klloss.margin_kd_loss(lm_student(lm_inputs), lm_teacher_logits, lm_labels)
grads_logits = torch.autograd.grad(from_logits, lm_params)
value_gap = (abs(from_hidden - from_logits) / abs(from_logits)).item()
grad_gap = max(
    ((a - b).abs().max() / b.abs().max()).item() for a, b in zip(grads_hidden, grads_logits, strict=True)
)
print(
    f"V = {V_LM}, H = {H_STUDENT}, the teacher's H = {H_TEACHER}; {int(lm_kept.sum())} positions, chunk_size = {CHUNK}"
)
print(
    f"first step: loss {from_hidden.item():.4f} from hidden states, {from_logits.item():.4f} from the whole logits"
)
assert value_gap < 1e-3 and grad_gap < 1e-5
print(
    f"the value within 1e-3, relative; each of the {len(lm_params)} gradients within 1e-5 of its largest entry"
)
with torch.no_grad():  # the same loss in float64, from the same inputs
    s_64 = lm_student.hidden(lm_inputs).double() @ lm_student.lm_head.weight.double().T
    z_64 = lm_teacher_hidden.double() @ lm_teacher.lm_head.weight.double().T
    in_float64 = klloss.margin_kd_loss(s_64, z_64, lm_labels)
off = {
    name: (abs(value - in_float64) / in_float64).item()
    for name, value in [("hidden", from_hidden), ("logits", from_logits)]
}
assert max(off.values()) < 1e-5
print("against float64: both values within 1e-5, relative")

# %% [markdown] id="against-loss-computed-float64"
# Against the loss computed in float64 from the same inputs, both float32 values are within 1e-5, relative (asserted): each form sums its $N V$ terms row by row, then the rows, so neither loses digits to one long float32 sum. (An earlier fused form added every term in one dot product, and lost about a hundred times more at this size; `tests/test_fused.py` now holds it to the pairwise sum's error.)
#
# Now a few steps of Adam on batches of four sequences, three times from the same start: with the loss from hidden states; with the loss from a top-32 store, built once by `topk_store` (`tail="bucket"`); and with the loss of the whole logits, for comparison. In a real run the store is built as the teacher runs over the corpus, batch by batch, and saved: per position it holds $K$ indices and $K + 1$ log-probabilities instead of $V$ logits. `ex.teacher_rows` (`course/experiments.py`) takes a batch's rows of it. Each student is then scored by the loss of the whole logits on the whole corpus.

# %%
K_LM, STEPS_LM = 32, 12
lm_store = klloss.topk_store(lm_teacher_logits, lm_labels, k=K_LM)  # built once
lm_p_b = -torch.expm1(lm_store.logprobs.logsumexp(-1))[lm_kept]  # p_B = 1 - sum_S p_c, the mass left out


def hidden_loss(model, rows):
    h_rows = model.hidden(lm_inputs[rows])  # h, (PER_BATCH, T, H): no (N, V) tensor is formed
    weight = model.lm_head.weight
    return klloss.margin_kd_loss_from_hidden(
        h_rows, weight, lm_teacher_hidden[rows], lm_teacher.lm_head.weight, lm_labels[rows], chunk_size=CHUNK
    )


def topk_loss(model, rows):
    store = ex.teacher_rows(lm_store, rows)  # the batch's rows of the store
    return klloss.margin_kd_loss_topk(model(lm_inputs[rows]), *store, lm_labels[rows], tail="bucket")


def logits_loss(model, rows):
    return klloss.margin_kd_loss(model(lm_inputs[rows]), lm_teacher_logits[rows], lm_labels[rows])


def lm_train(batch_loss):
    """STEPS_LM steps of Adam, a batch of PER_BATCH sequences each; the whole-logit loss on the corpus after."""
    torch.manual_seed(1)  # the start of lm_student above
    model = ToyLM(H_STUDENT, V_LM)
    optimizer_lm = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(STEPS_LM):
        first = PER_BATCH * (step % (SEQUENCES // PER_BATCH))
        optimizer_lm.zero_grad()
        batch_loss(model, slice(first, first + PER_BATCH)).backward()
        optimizer_lm.step()
    with torch.no_grad():
        return klloss.margin_kd_loss(model(lm_inputs), lm_teacher_logits, lm_labels).item()


lm_after = {
    name: lm_train(fn)
    for name, fn in [("hidden states", hidden_loss), ("top-k", topk_loss), ("whole logits", logits_loss)]
}
store_share = sum(x.nbytes for x in lm_store) / lm_teacher_logits.nbytes
print(
    f"the top-{K_LM} store: {store_share:.1%} of the logits' bytes; the teacher's mass left out, mean p_B = {lm_p_b.mean().item():.1%}"
)
print(
    f"the loss of the whole logits on the corpus: {from_logits.item():.4f} at the start; after {STEPS_LM} steps"
)
for name, value in lm_after.items():
    print(f"  trained with the loss from the {f'top-{K_LM} store' if name == 'top-k' else name}: {value:.4f}")
assert max(lm_after.values()) < from_logits.item()
assert abs(lm_after["hidden states"] / lm_after["whole logits"] - 1) < 1e-3
assert abs(lm_after["top-k"] / lm_after["whole logits"] - 1) < 0.01

# %% [markdown] id="trained-from-hidden-states"
# Trained from hidden states, the student follows the whole-logit training (within $10^{-3}$, asserted); trained from the top-32 store, it ends within 1 % of it (asserted), on a teacher that leaves the mass $p_B$ printed above outside its top 32.
#
# ### The memory it saves, measured
#
# What one forward and backward needs beyond the inputs, the weights and their gradients, measured on this machine as `make bench` measures it (`benchmarks/bench_hidden.py`; `docs/performance.md` shows its stored results): a fresh Python process for each path builds the inputs, the weights and zeroed gradient buffers, resets its peak resident memory (Linux's `VmHWM`) to its resident size, runs one forward and backward, and reads the peak. Memory that the allocator keeps for reuse after a tensor is freed counts too: it is what the process held. What to expect: from the whole logits, $s$, $z$ and the loss's gradient are alive together, with the loss's temporaries: several (N, V) tensors. From hidden states: a few `chunk_size` × V tensors, and the gradients of $h$ and $W$, formed in the forward pass and held until the backward adds them into the buffers. Bytes vary from machine to machine and from run to run, so the cell prints only the band each measurement falls in, in units of one (N, V) float32 tensor, $4NV$ bytes. On a system without Linux's `/proc`, nothing is measured.

# %%
SIZE_MEM, CHUNK_MEM = (8192, 64, 96, 4000, "float32"), 32  # (N, H, H_t, V, dtype), chunk_size
BANDS = (0.25, 0.5, 1, 2, 4, 8, 16)  # in units of one (N, V) float32 tensor, 4 N V bytes


def in_band(ratio):
    low = max((e for e in BANDS if e <= ratio), default=None)
    high = min((e for e in BANDS if e > ratio), default=None)
    if low is None:
        return f"below {high:g} x 4 N V bytes"
    return f"above {low:g} x 4 N V bytes" if high is None else f"between {low:g} and {high:g} x 4 N V bytes"


n_mem, h_mem, h_t_mem, v_mem, _ = SIZE_MEM
print(f"N = {n_mem}, H = {h_mem} (the teacher's {h_t_mem}), V = {v_mem}, float32; chunk_size = {CHUNK_MEM}")
print(f"a chunk holds 1/{n_mem // CHUNK_MEM} of the rows")
paths = {"the whole logits": bench_hidden.LOGITS, "hidden states": bench_hidden.hidden_name(CHUNK_MEM)}
if not Path("/proc/self/status").is_file():
    print("not measured: the peak resident memory is read from /proc/self/status, which only Linux has")
else:
    peaks = {
        name: bench_hidden.peak_in_fresh_process(v, SIZE_MEM, (CHUNK_MEM,))["peak"]
        for name, v in paths.items()
    }
    assert None not in peaks.values(), "this system refused to reset the peak resident memory"
    in_logits = {name: peak / (4 * n_mem * v_mem) for name, peak in peaks.items()}  # over 4 N V bytes
    print("one forward + backward needed, beyond the inputs, the weights and their gradients:")
    for name, ratio in in_logits.items():
        print(f"  from {name}: {in_band(ratio)}")
    assert in_logits["the whole logits"] > 1 and in_logits["hidden states"] < 0.25
    print("from the whole logits more than one (N, V) tensor, from hidden states less than a quarter of one")

# %% [markdown] id="at-this-size-loss"
# At this size the loss from hidden states needed less than a quarter of one (N, V) float32 tensor, the whole logits more than one (both asserted; the bands printed). The hidden path holds a few chunks of rows and the gradients, never the whole logits, so its share of one (N, V) tensor grows with `chunk_size` / N, small here (printed): `docs/performance.md` shows `make bench`'s measurements at a larger size with larger chunks, where that share is larger. The (V, H) gradient of the head stays: at a language model's size it is as large as the logits of H positions.
#
# ### On [notebook 05](05-real-data.ipynb)'s data: what a stored top K loses
#
# [Notebook 05](05-real-data.ipynb)'s teacher, through its logits on the training rows as `data/experiments/digits.json` stores them, over 10 classes, stored at K = 1, 2, 3 and 5; β = 1.5 and $T = 1$. First the loss: the share $(L - L_K)/L$ of the full distillation term, on the training rows, that each store loses, at two students: untrained, and trained for [notebook 05](05-real-data.ipynb)'s 30 epochs with the full loss. This teacher is right on every training row and puts almost all its mass on the label ([notebook 05](05-real-data.ipynb)), so the store leaves little out (first column):

# %%
config_05 = ex.Config()  # notebook 05's configuration
digits = ex.load_digits_split(config_05)
z_digits = ex.stored_logits(ex.load_stored()["main"]["teacher"], "train")  # z, (N, 10), as stored
y_digits = digits.y_train
BETA_05, KS, SEEDS_TOPK = 1.5, (1, 2, 3, 5), (0, 1, 2)
assert torch.equal(z_digits.argmax(1), y_digits)  # the label is the teacher's top class on every row
digit_stores = {k: klloss.topk_store(z_digits, y_digits, k) for k in KS}
full_term = ex.klloss_kd(config_05.alpha, BETA_05)  # notebook 05's loss, (1 - alpha) CE + alpha klloss_v2 / k
digit_students = {
    ("full", seed): ex.train_student(digits, full_term, z_digits, config_05, seed) for seed in SEEDS_TOPK
}

torch.manual_seed(0)
untrained = ex.mlp(digits.x_train.shape[1], config_05.student_hidden, digits.classes)
at = {"untrained": untrained, "trained": digit_students["full", 0]}
lost = {}
for k, store in digit_stores.items():
    p_b = -torch.expm1(store.logprobs.logsumexp(-1))  # p_B = 1 - sum_S p_c
    row = {("teacher", "p_B, mean"): 100 * p_b.mean().item()}
    for when, model in at.items():
        with torch.no_grad():
            s_digits = model(digits.x_train)
        full = klloss.margin_kd_loss(s_digits, z_digits, y_digits, margin_scale=BETA_05)  # L
        for tail in ("bucket", "renormalize"):
            part = klloss.margin_kd_loss_topk(s_digits, *store, y_digits, tail=tail, margin_scale=BETA_05)
            row[f"{when} student", tail] = 100 * ((full - part) / full).item()  # (L - L_K) / L
    lost[f"K = {k}"] = row
lost = pd.DataFrame(lost).T
print("in %: the teacher's mass left out, and the share of the distillation term lost, (L - L_K) / L")
with pd.option_context("display.precision", 3):
    display(lost.round({c: 1 if c[0] == "trained student" else 3 for c in lost.columns}))
assert (lost["untrained student"].abs() < 2).all().all() and (
    lost["untrained student", "bucket"].abs() < 0.1
).all()
trained_bucket = lost["trained student", "bucket"]
assert trained_bucket.is_monotonic_decreasing and trained_bucket.min() > 1 and trained_bucket.max() > 20
assert (lost["trained student", "renormalize"] < 0).any() and (
    lost["trained student", "renormalize"] > 0
).any()

# %% [markdown] id="untrained-student-both-stores"
# - On the untrained student, both stores are within 2 % of the full term at every K, the bucket within 0.1 % (asserted): almost all of the term is the student's mismatch on the label, which every store holds exactly.
# - On the trained student the label is learnt, and much of what is left of the term is about the other classes: the bucket loses from over 20 % of it at K = 1 to a few % at K = 5, less at each K (asserted). The renormalised teacher, which teaches the student to put no mass on the tail at all, misses it by other amounts, of either sign (asserted).
#
# Does that change the students? Three seeds, each student trained as [notebook 05](05-real-data.ipynb) trains its students (`ex.train_student`: the same MLP, Adam, 30 epochs, $\alpha = 0.5$) with $(1-\alpha)\,\mathrm{CE} + \alpha D$: $D$ the full term (the students above, [notebook 05](05-real-data.ipynb)'s klloss_v2 at β = 1.5), or the bucket's term from each store (`ex.klloss_kd_topk`). Each student taught by a store is paired with the one of the same seed taught by the full term: the same start, the same batches. The paired differences are printed per seed in test images, and their mean in percentage points of the test set.

# %%
topk_term = ex.klloss_kd_topk(config_05.alpha, BETA_05, "bucket")  # (1 - alpha) CE + alpha D from a store
for seed in SEEDS_TOPK:
    for k in KS:
        digit_students[k, seed] = ex.train_student(digits, topk_term, digit_stores[k], config_05, seed)
n_test = len(digits.y_test)
correct = {  # test images right, per student
    key: round(ex.evaluate(m, digits.x_test, digits.y_test)["accuracy"] * n_test)
    for key, m in digit_students.items()
}
results = {}
for k in ("full", *KS):
    row = {
        "test accuracy, mean (%)": f"{100 * sum(correct[k, s] for s in SEEDS_TOPK) / (len(SEEDS_TOPK) * n_test):.2f}"
    }
    if k != "full":
        paired = [correct[k, s] - correct["full", s] for s in SEEDS_TOPK]  # in test images
        row["minus the full term's, mean (points)"] = f"{100 * sum(paired) / (len(paired) * n_test):+.2f}"
        row["per seed (test images)"] = ", ".join(f"{d:+d}" for d in paired)
    results["full term" if k == "full" else f"store, K = {k}"] = row
print(f"{len(SEEDS_TOPK)} seeds; {n_test} test images")
display(pd.DataFrame(results).T.fillna(""))
largest = max(abs(correct[k, s] - correct["full", s]) for k in KS for s in SEEDS_TOPK)
assert largest <= 0.01 * n_test  # within 1 percentage point, every K and seed
print(f"the largest paired difference: {largest} test images, {100 * largest / n_test:.2f} percentage points")

# %% [markdown] id="these-runs-no-student"
# In these runs no student taught by a store ended more than 1 percentage point from its twin taught by the full term, at any K (asserted; the largest difference printed). With three seeds that is all these runs say: a smaller difference would need [notebook 05](05-real-data.ipynb)'s paired comparisons, over many more seeds. And this teacher, nearly one-hot, leaves its stores little to lose. How much a store loses depends on the mass the teacher leaves outside it: measure $p_B$ on your own teacher before choosing K (the toy language model above left the share printed there outside its top 32).

# %% [markdown] id="exercises"
# ## Exercises
#
# Each exercise has a worked solution below it, folded: try it first. The solutions run, and check themselves.
#
# **Exercise 1 · what a micro-batch's own mean does to its rows.** A training loop splits each step's batch into $M$ micro-batches and, without `num_items_in_batch`, back-propagates each micro-batch's own `batchmean` divided by $M$ (the usual way to average over micro-batches). Micro-batch $m$ keeps $K_m$ rows, the whole batch $K = \sum_m K_m$. Derive by what factor the gradient at a kept row of micro-batch $m$ differs from the gradient of the whole batch's mean. Which rows are weighed too much? Check your formula on section 1's batch, one sequence per micro-batch.

# %% [markdown] id="solution-1-whole-batch" tags=["solution"]
# **Solution 1.** In the whole batch's mean a kept row $i$ enters as $L_i / K$, so its gradient is $\nabla L_i / K$. In micro-batch $m$'s own mean divided by $M$ it enters as $L_i / (M K_m)$. The factor is
#
# $$\frac{1/(M K_m)}{1/K} = \frac{K}{M\,K_m},$$
#
# above 1 exactly for the micro-batches that keep fewer rows than the average $K/M$: the short sequences, the ones with the most padding, are weighed too much. With the count, every micro-batch divides by $K$ and the factor is 1.

# %% tags=["solution"]
micro_batches = [slice(i, i + 1) for i in range(B)]  # one sequence each
M = len(micro_batches)
K_m = [int((label[rows] != -100).sum()) for rows in micro_batches]
K = sum(K_m)
whole = logits.detach().clone().requires_grad_(True)
kd(whole, teacher_logits, label).backward()  # the whole batch's mean
own = logits.detach().clone().requires_grad_(True)
for rows in micro_batches:
    (kd(own[rows], teacher_logits[rows], label[rows]) / M).backward()
for rows, k_m in zip(micro_batches, K_m, strict=True):
    kept_rows = label[rows] != -100
    factor = K / (M * k_m)
    assert torch.allclose(
        own.grad[rows][kept_rows], factor * whole.grad[rows][kept_rows], rtol=1e-5, atol=1e-9
    )
print("rows kept per micro-batch:", K_m, "of", K)
print("the factor K / (M K_m):", [round(K / (M * k_m), 2) for k_m in K_m])

# %% [markdown] id="exercise-2-port-own"
# **Exercise 2 · port your own distillation loop (open-ended).** Take a distillation loop you know, yours or the short one in the solution, whose KD term is Hinton's $T^2\,\mathrm{KL}(p_T \| q_T)$ computed with `F.kl_div`. Replace that term by `klloss.margin_kd_loss` at `margin_scale=float("inf")` with the same temperature, and check that the loop trains exactly as before: same losses, same parameters. Then pass the teacher's logits where the student's go, and see what happens. Last, set `margin_scale=1.5`: by how much does the KD term change at the first step, and why does `alpha` keep its meaning only thanks to `normalize=True`?

# %% [markdown] id="solution-2-same-loop" tags=["solution"]
# **Solution 2.** The same loop, run twice from the same start, once with each KD term, gives the same losses and parameters (to float32 rounding): at `margin_scale=inf` every weight is $k$, and `normalize=True` divides by $k$, which leaves $T^2\,\mathrm{KL}$. The swapped call raises a `ValueError` naming the order expected. At `margin_scale=1.5` every weight $w_c/k$ is at least 1 on this batch (the label is the teacher's top class, so every margin is $\ge 0$; asserted), and yet the KD term need not grow: a class term $p_c(\log p_c - \log q_c)$ is negative where the student puts more mass than the teacher, and the largest weights fall on the classes far below the label, where the teacher has little mass. The cell prints the ratio. What `normalize=True` fixes is the scale: at `margin_scale=inf` the term is KD exactly, and near it for a large `margin_scale`. Without it the term would be $k$ times larger (asserted), and so would be the effective `alpha`.

# %% tags=["solution"]
temperature_2 = 2.0


def plain_kd_term(student_logits, teacher, labels):  # Hinton's KD, as loops write it
    rows = labels != -100
    log_q = F.log_softmax(student_logits[rows] / temperature_2, -1)
    log_p = F.log_softmax(teacher[rows] / temperature_2, -1)
    return temperature_2**2 * F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


def train(kd_term, steps=10):
    torch.manual_seed(1)
    model = nn.Linear(FEATURES, V)
    optimizer_2 = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(steps):
        optimizer_2.zero_grad()
        step_logits = model(features)
        ce = F.cross_entropy(step_logits.flatten(0, 1), label.flatten())
        step_loss = (1 - alpha) * ce + alpha * kd_term(step_logits, teacher_logits, label)
        step_loss.backward()
        optimizer_2.step()
        losses.append(step_loss.item())
    return losses, model


kd_inf = klloss.MarginKDLoss(margin_scale=float("inf"), temperature=temperature_2)
(losses_kd, model_kd), (losses_ours, model_ours) = train(plain_kd_term), train(kd_inf)
assert max(abs(a - b) for a, b in zip(losses_kd, losses_ours, strict=True)) < 1e-5
assert all(
    torch.allclose(a, b, atol=1e-6)
    for a, b in zip(model_kd.parameters(), model_ours.parameters(), strict=True)
)
print(f"10 steps, both loops: loss {losses_kd[0]:.4f} -> {losses_kd[-1]:.4f}, the same parameters")
try:
    kd_inf(teacher_logits, model_ours(features), label)  # swapped
    raise AssertionError("a swapped call was accepted")
except ValueError as error:
    print("swapped:", str(error).split(":")[0])
start = nn.Linear(FEATURES, V)
first_logits = start(features).detach()
kd_margin = klloss.margin_kd_loss(first_logits, teacher_logits, label, temperature=temperature_2)
kd_plain = kd_inf(first_logits, teacher_logits, label)
print(f"first step, KD term: margin_scale=inf {kd_plain.item():.4f}, margin_scale=1.5 {kd_margin.item():.4f}")
unnormalized = klloss.margin_kd_loss(
    first_logits, teacher_logits, label, temperature=temperature_2, normalize=False
)
assert torch.allclose(unnormalized, klloss.ARTICLE_OFFSET * kd_margin)
large_scale = klloss.margin_kd_loss(
    first_logits, teacher_logits, label, temperature=temperature_2, margin_scale=1e6
)
assert torch.allclose(large_scale, kd_plain, rtol=1e-4)  # near KD for a large margin_scale
assert torch.all(weights >= klloss.ARTICLE_OFFSET)  # w_c / k >= 1: every margin >= 0 (section 2's weights)
print(f"so margin_scale=1.5 weighs this batch {kd_margin.item() / kd_plain.item():.2f} times as much as KD")

# %% [markdown] id="exercise-3-memory-kept"
# **Exercise 3 · the memory kept for backward (open-ended).** Section 5 counted the bytes the autograd graph keeps between forward and backward at two sizes. Measure them for the reference form and for `klloss_v2` as dispatched (the fused path on a CPU) at another size, for instance N = 2048, C = 500, or your own model's (B T, V) if it fits in memory. Predict the ratio before you run it, then explain it: how many (N, C) float32 tensors does each keep? Does the ratio depend on the size?

# %% [markdown] id="solution-3-fused-path" tags=["solution"]
# **Solution 3.** The fused path keeps $G = qW - wp$, one (N, C) tensor, and $W$, one number per row: $4(NC + N)$ bytes in float32. The reference lets autograd keep what the backward of each of its operations needs: the student's log-probabilities, the teacher's $p$ and the weights $w$ in float32, and masks of $p > 0$ in bytes. The cell prints how many (N, C) float32 tensors' worth each keeps. Both counts grow as $NC$, so the ratio hardly depends on the size: between section 5's size and this one it moves by less than 5% (asserted).

# %% tags=["solution"]
n_3, c_3 = 2048, 500
kept_3 = {name: bench.saved_bytes(bench.VARIANTS[name], n_3, c_3) for name in ("klloss_v2", "reference")}
one_tensor = 4 * n_3 * c_3  # one (N, C) float32 tensor
for name, nbytes in kept_3.items():
    print(f"{name}: {nbytes / 2**20:.2f} MiB, {nbytes / one_tensor:.2f} (N, C) tensors' worth")
assert kept_3["klloss_v2"] == 4 * (n_3 * c_3 + n_3)  # G and W
ratio_3 = kept_3["reference"] / kept_3["klloss_v2"]
ratio_5 = saved[1024, 1000]["reference"] / saved[1024, 1000]["klloss_v2"]  # section 5's size
print(f"reference / klloss_v2: {ratio_3:.2f} at N = {n_3}, C = {c_3}; {ratio_5:.2f} at N = 1024, C = 1000")
assert ratio_3 > 1 and abs(ratio_3 / ratio_5 - 1) < 0.05

# %% [markdown] id="exercise-4-one-stored"
# **Exercise 4 · one stored class.** On [notebook 05](05-real-data.ipynb)'s training rows the label is the teacher's top class (section 9 asserts it), so the store at K = 1 holds the label alone. Show that there, at $T = 1$ and with `normalize=True`, `tail="renormalize"` gives exactly the cross-entropy $-\log q_y$, whatever the student: a student trained with $(1-\alpha)\,\mathrm{CE} + \alpha D$ on this store is trained with cross-entropy alone. What does `tail="bucket"` give at K = 1 instead? Derive it, then check both on section 9's untrained student, value and gradient.

# %% [markdown] id="solution-4-with-s" tags=["solution"]
# **Solution 4.** With S = {y}, the renormalised teacher is $\tilde p_y = 1$; the label's margin is 0, so its weight is $w_y = k$, and $f = 1/k$: $L_i = \frac1k \cdot k \cdot 1 \cdot (\log 1 - \log q_y) = -\log q_y$. The bucket keeps the rest as one class with the teacher's mass $p_B = 1 - p_y$ and the student's $q_B = 1 - q_y$, weighted as the K-th stored class, here the label: $w_B = k$ too. So $L^b_i = p_y \log\frac{p_y}{q_y} + p_B \log\frac{p_B}{q_B}$, the KL divergence between two distributions over two classes, the label and everything else: plain KD on "right or not". It keeps what the teacher says about how sure it is, and nothing about which other class. Both checked below.

# %% tags=["solution"]
store_1 = digit_stores[1]
s_4 = untrained(digits.x_train).detach().requires_grad_(True)
renormalized_4 = klloss.margin_kd_loss_topk(s_4, *store_1, y_digits, tail="renormalize", margin_scale=BETA_05)
cross_entropy_4 = F.cross_entropy(s_4, y_digits)
(grad_r,) = torch.autograd.grad(renormalized_4, s_4)
(grad_ce,) = torch.autograd.grad(cross_entropy_4, s_4)
assert torch.allclose(renormalized_4, cross_entropy_4, rtol=1e-6) and torch.allclose(
    grad_r, grad_ce, atol=1e-8
)
print(f"K = 1, renormalize: {renormalized_4.item():.5f}; cross-entropy: {cross_entropy_4.item():.5f}")

bucket_4 = klloss.margin_kd_loss_topk(s_4, *store_1, y_digits, tail="bucket", margin_scale=BETA_05)
rows_4 = torch.arange(len(y_digits))
log_p_y = store_1.label_logprob  # log p_y
log_q_y = F.log_softmax(s_4, 1)[rows_4, y_digits]  # log q_y
p_y, p_rest = log_p_y.exp(), -torch.expm1(log_p_y)  # p_y, p_B = 1 - p_y
q_rest = -torch.expm1(log_q_y)  # q_B = 1 - q_y
binary_kl = (
    p_y * (log_p_y - log_q_y) + torch.xlogy(p_rest, p_rest) - p_rest * q_rest.log()
).mean()  # KL, {y, rest}
(grad_b,) = torch.autograd.grad(bucket_4, s_4)
(grad_kl,) = torch.autograd.grad(binary_kl, s_4)
assert torch.allclose(bucket_4, binary_kl, rtol=1e-5) and torch.allclose(grad_b, grad_kl, atol=1e-7)
print(
    f"K = 1, bucket: {bucket_4.item():.5f}; KL over two classes, the label and the rest: {binary_kl.item():.5f}"
)
