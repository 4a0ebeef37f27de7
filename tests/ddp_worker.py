"""One process of the DDP test (tests/test_ddp.py): a student wrapped in DistributedDataParallel on
CPU (gloo), given its part of the batch, writes its parameter gradients to a file.

Kept apart from the test module so that the spawned processes import only this and klloss.
"""

import contextlib
import datetime
import gc

import torch
import torch.distributed as dist
from torch import nn

import klloss

FEATURES, CLASSES, BETA = 6, 5, 1.5


def student(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(FEATURES, 8), nn.Tanh(), nn.Linear(8, CLASSES)).double()


def batch(n=8, seed=1):
    """Features, teacher logits and labels; rows 1 and 2 of the first half are padding (-100)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, FEATURES, generator=gen, dtype=torch.float64)
    teacher = 2 * torch.randn(n, CLASSES, generator=gen, dtype=torch.float64)
    label = torch.randint(0, CLASSES, (n,), generator=gen)
    return x, teacher, label


KD_OPTIONS = {"margin_scale": BETA, "temperature": 2.0}
"""The student-first recipes' options (not the article's scale, so that T and f are exercised)."""


def local_loss(model, x, teacher, label, recipe, world_size=1):
    """The loss one process back-propagates, for the article-order recipes.

    ``"batchmean"``: each process's own mean over its rows not ignored; DDP then averages the
    gradients over processes. ``"global"``: the recipe for the mean over every row not ignored in
    the whole batch: the local sum, times the number of processes (to undo DDP's average), divided
    by the global count of rows kept (one all_reduce).
    """
    logits = model(x)
    if recipe == "batchmean":
        return klloss.klloss_v2(teacher, logits, teacher, label, BETA)
    kept = (label != -100).sum()
    if dist.is_initialized():
        dist.all_reduce(kept)
    local_sum = klloss.klloss_v2(teacher, logits, teacher, label, BETA, reduction="sum")
    return local_sum * world_size / kept.clamp(min=1)


def accumulate(model, micro_batches, world_size=1):
    """The recipe of docs/training.md: every micro-batch of this process divided by the rows kept
    in the whole batch (every micro-batch, every process: one all_reduce of a tensor, no host
    read), times the number of processes, which undoes DDP's average over them. DDP's all_reduce
    of the gradients runs once, after the last micro-batch (``no_sync`` before it)."""
    count = sum((label != -100).sum() for _, _, label in micro_batches)
    if dist.is_initialized():
        dist.all_reduce(count)
    for i, (x, teacher, label) in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        with contextlib.nullcontext() if last or not dist.is_initialized() else model.no_sync():
            loss = klloss.margin_kd_loss(model(x), teacher, label, num_items_in_batch=count, **KD_OPTIONS)
            (world_size * loss).backward()


def backward(model, x, teacher, label, recipe, world_size=1):
    """One step's backward of ``recipe`` on this process's rows: the article-order recipes in one
    pass; ``"count"`` as one micro-batch, ``"count, micro-batches"`` as two."""
    if recipe.startswith("count"):
        parts = 2 if recipe == "count, micro-batches" else 1
        rows = [slice(i * len(x) // parts, (i + 1) * len(x) // parts) for i in range(parts)]
        accumulate(model, [(x[r], teacher[r], label[r]) for r in rows], world_size)
    else:
        local_loss(model, x, teacher, label, recipe, world_size).backward()


def run(rank, world_size, port, jobs, out):
    """Each job (name, labels, recipe): a fresh DDP student, its part of the batch, one backward."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        x, teacher, _ = batch()
        rows = slice(rank * len(x) // world_size, (rank + 1) * len(x) // world_size)
        for name, labels, recipe in jobs:
            model = nn.parallel.DistributedDataParallel(student())
            backward(model, x[rows], teacher[rows], labels[rows], recipe, world_size)
            torch.save([p.grad for p in model.parameters()], f"{out}/{name}-rank{rank}.pt")
            # DDP's reducer holds gloo work: drop it before the group goes, on every rank alike,
            # or a rank can abort at exit ("terminate called without an active exception")
            del model
            gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()
