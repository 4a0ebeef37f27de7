"""Distributed data parallel: two CPU processes (gloo, 127.0.0.1), each given half the batch, end up
with the gradients one process computes on the whole batch.

What ``batchmean`` means across processes: each process divides by its own count of rows not
ignored, and DDP averages the gradients over processes. That is the gradient of the global mean
only when every process keeps the same number of rows; ``ddp_worker.local_loss(recipe="global")``
gives the global mean in every case, and so does the recipe of docs/training.md
(``ddp_worker.accumulate``): ``margin_kd_loss`` with ``num_items_in_batch`` the global count of rows
kept, times the number of processes, over one micro-batch or several per process.
"""

import multiprocessing
import socket

import pytest
import torch
from ddp_worker import KD_OPTIONS, batch, local_loss, run, student

import klloss

TIMEOUT_S = 120


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _labels(ignored_rows):
    _, _, labels = batch()
    labels = labels.clone()
    labels[list(ignored_rows)] = -100
    return labels


# name: (rows ignored, recipe); rows 0-3 go to process 0, rows 4-7 to process 1; with two
# micro-batches, rows 0-1 and 2-3 on process 0 (here one row kept, then none), 4-5 and 6-7 on 1
JOBS = {
    "none ignored": ((), "batchmean"),
    "one ignored per process": ((1, 6), "batchmean"),
    "unequal, batchmean": ((1, 2), "batchmean"),
    "unequal, global recipe": ((1, 2), "global"),
    "unequal, the count": ((1, 2), "count"),
    "unequal, the count, micro-batches": ((1, 2, 3), "count, micro-batches"),
}


@pytest.fixture(scope="module")
def ddp_gradients(tmp_path_factory):
    """Gradients after one DDP step, for every job, from one pair of processes (spawning costs)."""
    out = tmp_path_factory.mktemp("ddp")
    world_size = 2
    jobs = [(name, _labels(rows), recipe) for name, (rows, recipe) in JOBS.items()]
    context = multiprocessing.get_context("spawn")
    port = _free_port()
    processes = [
        context.Process(target=run, args=(rank, world_size, port, jobs, str(out)))
        for rank in range(world_size)
    ]
    for p in processes:
        p.start()
    for p in processes:
        p.join(TIMEOUT_S)
    alive = [p for p in processes if p.is_alive()]
    for p in alive:
        p.kill()
        p.join()
    assert not alive, f"DDP processes did not finish within {TIMEOUT_S} s"
    assert all(p.exitcode == 0 for p in processes), [p.exitcode for p in processes]
    grads = {}
    for name in JOBS:
        per_rank = [torch.load(out / f"{name}-rank{rank}.pt") for rank in range(world_size)]
        for other in per_rank[1:]:  # DDP leaves every process with the same averaged gradients
            for a, b in zip(per_rank[0], other, strict=False):
                assert torch.equal(a, b)
        grads[name] = per_rank[0]
    return grads


def _single_process_gradients(ignored_rows, loss="klloss_v2"):
    """The whole batch's mean in one process: the article's call, or the student-first call with
    the count recipes' options."""
    model = student()
    x, teacher, _ = batch()
    labels = _labels(ignored_rows)
    if loss == "klloss_v2":
        local_loss(model, x, teacher, labels, "batchmean").backward()
    else:
        klloss.margin_kd_loss(model(x), teacher, labels, **KD_OPTIONS).backward()
    return [p.grad for p in model.parameters()]


@pytest.mark.parametrize("name", ["none ignored", "one ignored per process"])
def test_ddp_batchmean_equals_one_process_when_processes_keep_equal_counts(name, ddp_gradients):
    expected = _single_process_gradients(JOBS[name][0])
    for g, e in zip(ddp_gradients[name], expected, strict=False):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-15)


def test_unequal_counts_need_the_global_recipe(ddp_gradients):
    # both ignored rows in the first half: 2 rows kept there, 4 in the other
    expected = _single_process_gradients(JOBS["unequal, batchmean"][0])
    per_process = ddp_gradients["unequal, batchmean"]
    difference = max((g - e).abs().max().item() for g, e in zip(per_process, expected, strict=False))
    assert difference > 1e-6, "per-process batchmean should differ from the global mean here"
    for g, e in zip(ddp_gradients["unequal, global recipe"], expected, strict=False):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["unequal, the count", "unequal, the count, micro-batches"])
def test_the_global_count_times_the_processes_gives_the_global_mean(name, ddp_gradients):
    # uneven padding (and, with micro-batches, one that keeps no row): margin_kd_loss with
    # num_items_in_batch = the rows kept in the whole batch, times world_size, gives the gradient
    # one process computes on the whole batch; float64, so only rounding separates them
    expected = _single_process_gradients(JOBS[name][0], loss="margin_kd_loss")
    for g, e in zip(ddp_gradients[name], expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-15)
