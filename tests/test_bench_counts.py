"""course.bench.op_counts: what it counts, checked on calls whose operators are known."""

import inspect
import json

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


def test_a_stored_measurement_stays_current_through_comment_only_changes():
    """code_state reads a diff of klloss/: comment or blank lines leave a measurement current, any
    other line makes it stale."""
    comment_only = [
        "diff --git a/klloss/loss.py b/klloss/loss.py",
        "@@ -38 +38 @@",
        "-#   fused (1.4x)",
        "+#   fused (2.4x)",
        "+",
    ]
    assert all(bench._comment_only(line) for line in comment_only)
    for code in ["+    return impl", "-    x = 1  # a comment after code", '+    """A docstring."""']:
        assert not bench._comment_only(code)


def test_code_state_of_the_current_commit_is_current():
    head = bench._git("rev-parse", "--short", "HEAD").strip()
    assert bench.code_version().removesuffix("+changes") == head  # what a benchmark records
    state, sentence = bench.code_state({"environment": {"klloss": head}})
    assert state == "current", sentence
    assert bench.code_state({"environment": {"klloss": head + "+changes"}})[0] == "uncommitted"
    assert bench.code_state({"environment": {}})[0] == "not recorded"


def test_a_plain_backward_of_klloss_v2_takes_the_saved_gradient_itself():
    """Notebook 06, section 7: the fused path's backward is one multiplication of G by the upstream
    gradient, a plain ``loss.backward()`` (upstream gradient 1) too: the saved G is never handed
    out, since the caller may change what it gets in place (issue 25)."""
    teacher, student, label = bench.make_inputs(8, 5, dtype=torch.float32)
    student.requires_grad_(True)
    for upstream, multiplications in ((None, 1), (torch.tensor(2.0), 1)):
        loss = klloss.klloss_v2(teacher, student, teacher, label, 1.5)
        counts = bench.op_counts(loss.backward, upstream)
        assert counts["aten.mul"] == multiplications, counts


def test_stored_results_are_named_by_machine_and_capability():
    def name(model, capability="AVX2"):
        return bench.machine_name({"device": "cpu", "cpu_model": model, "cpu_capability": capability})

    assert name("Intel(R) Xeon(R) Processor @ 2.00GHz", "AVX512") == "cpu-intel-xeon-2-00ghz-avx512"
    assert name("AMD EPYC 7B13 64-Core Processor") == "cpu-amd-epyc-7b13-64-core-avx2"
    assert bench.machine_name({"device": "cuda", "gpu": "NVIDIA H200"}) == "cuda-nvidia-h200"


def _current_cpu_results():
    for path in sorted(bench.BENCH_DIR.glob("cpu-*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if bench.code_state(record)[0] == "current":
            yield path.name, record


def test_the_fast_paths_earn_their_place_in_the_stored_cpu_results():
    """The record beside klloss.loss._path, checked against every stored CPU result that measured
    the current code: eager, fused beats the eager reference by 1.2x at every size; under
    torch.compile, the compiled reference beats it by 1.2x wherever it was compiled."""
    source = inspect.getsource(klloss.loss)
    checked = 0
    for name, record in _current_cpu_results():
        assert record["environment"]["klloss"] in source, f"klloss/loss.py does not cite {name}'s commit"
        for row in record["results"]:
            t = row["seconds"]
            assert t["reference"] / t["klloss_v2"] >= 1.2, (name, row["N"], row["C"])
            if "klloss_v2 compiled" in t:
                assert t["reference"] / t["klloss_v2 compiled"] >= 1.2, (name, row["N"], row["C"])
        checked += 1
    assert checked >= 1, "no stored CPU result measured the current code: run make bench"
