"""course.bench.op_counts: what it counts, checked on calls whose operators are known."""

import torch

import klloss
from course import bench


def test_op_counts_names_each_dispatched_operator():
    x = torch.ones(3, 4)
    counts = bench.op_counts(lambda a: (a - 1).sum() + a[0].sum(), x)
    assert counts["aten.sub"] == 1
    assert counts["aten.select"] == 1
    assert counts["aten.sum"] == 2
    assert counts["aten.add"] == 1
    assert sum(counts.values()) == 5


def test_published_loop_dispatches_three_operators_per_sample():
    per_n = {}
    for n in (4, 9):
        teacher, student, label = bench.make_inputs(n, 6, dtype=torch.float64)
        per_n[n] = bench.op_counts(klloss.klloss_v2_published, teacher, student, teacher, label, 1.5)
    extra = per_n[9] - per_n[4]  # Counter difference: what 5 more samples add
    assert dict(extra) == {"aten._local_scalar_dense": 5, "aten.select": 5, "aten.sub": 5}
    assert per_n[4]["aten.cat"] == per_n[9]["aten.cat"] == 1
