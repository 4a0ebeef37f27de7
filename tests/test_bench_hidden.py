"""benchmarks/bench_hidden.py (and the stored data/bench/hidden/ results): the memory measurement
against allocations of known size, the benchmark's two paths against each other, the verdicts'
arithmetic, and every stored result's verdicts against its own numbers. Nothing here is timed."""

import json
from pathlib import Path

import pytest
import torch

from benchmarks import bench_hidden, bench_lm
from course import bench

MiB = 2**20
LINUX = Path("/proc/self/status").is_file() and Path("/proc/self/clear_refs").exists()


def _touch(nbytes):
    """A tensor of ``nbytes`` whose every page was written (resident)."""
    return torch.ones(nbytes // 4, dtype=torch.float32)


@pytest.mark.skipif(not LINUX, reason="reads /proc/self/status (Linux)")
def test_the_peak_is_what_the_step_held_at_once_above_what_was_there_before():
    if not bench_hidden._reset_high_water_mark():
        pytest.skip("this system refuses to reset the high-water mark")
    # every block above glibc's largest mmap threshold (32 MiB): mapped when allocated, returned
    # when freed, so that no freed memory stays resident for a later allocation to reuse
    held = _touch(96 * MiB)  # an earlier, higher mark: must not count
    del held

    def step():
        a = _touch(40 * MiB)
        b = _touch(36 * MiB)  # 76 MiB at once
        del a, b
        c = _touch(34 * MiB)  # less than the peak: does not raise it
        del c

    peak, how = bench_hidden.rss_peak_above(step)
    assert how["reset"]
    # within 1 MiB below (small pages resident before the step, freed during it) and 4 above (the
    # interpreter's own work during it)
    assert 75 * MiB <= peak <= 76 * MiB + 4 * MiB, peak / MiB
    inputs = _touch(48 * MiB)  # allocated before the step: in the baseline
    peak, _ = bench_hidden.rss_peak_above(lambda: _touch(40 * MiB).sum())
    assert 39 * MiB <= peak <= 40 * MiB + 4 * MiB, peak / MiB
    del inputs


def test_without_a_reset_a_peak_under_an_earlier_mark_is_unknown(monkeypatch):
    if not Path("/proc/self/status").is_file():
        pytest.skip("reads /proc/self/status (Linux)")
    monkeypatch.setattr(bench_hidden, "_reset_high_water_mark", lambda: False)
    big = _touch(64 * MiB)
    del big  # the mark now stands at least 64 MiB above the resident size
    peak, how = bench_hidden.rss_peak_above(lambda: _touch(MiB).sum())
    assert how["hwm_before"] > how["rss_before"]
    assert peak is None


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_both_paths_put_the_same_gradients_into_the_buffers_given(dtype):
    """The benchmark compares like with like: each step adds dL/dh and dL/dW into the zeroed
    buffers made beforehand (no new gradient tensor is allocated in their place), and the
    hidden-state path's gradients are the logits path's, up to float32 rounding (bfloat16 logits
    in the logits path: up to bfloat16's)."""
    grads = {}
    for name, step in bench_hidden.variants([7, 64]).items():
        x = bench_hidden.make_inputs(20, 8, 12, 30, dtype)
        buffers = (x.h.grad.data_ptr(), x.w.grad.data_ptr())
        assert not x.h.grad.any()
        assert not x.w.grad.any()
        step(x)
        assert (x.h.grad.data_ptr(), x.w.grad.data_ptr()) == buffers, name
        grads[name] = (x.h.grad.float(), x.w.grad.float())
    assert (bench_hidden.make_inputs(20, 8, 12, 30).y == -100).any()  # some rows are padding
    tol = {"float32": 1e-5, "bfloat16": 3e-2}[dtype]
    reference = grads.pop(bench_hidden.LOGITS)
    for name, (g_h, g_w) in grads.items():
        torch.testing.assert_close(g_h, reference[0], rtol=tol, atol=tol * reference[0].abs().max())
        torch.testing.assert_close(g_w, reference[1], rtol=tol, atol=tol * reference[1].abs().max())
        assert g_w.abs().sum() > 0, name


def test_without_gradient_buffers_backward_stores_the_gradients_it_gets():
    """With the gradients None before the step (``optimizer.zero_grad()``'s default), each path's
    gradients end up as ``.grad``, the same as with zeroed buffers."""
    for name, step in bench_hidden.variants([7, 64]).items():
        x, given = (bench_hidden.make_inputs(20, 8, 12, 30, grads=g) for g in ("none", "zeros"))
        assert x.h.grad is None
        assert x.w.grad is None
        step(x)
        step(given)
        assert torch.equal(x.h.grad, given.h.grad), name
        assert torch.equal(x.w.grad, given.w.grad), name
    with pytest.raises(ValueError, match="grads must be one of"):
        bench_hidden.make_inputs(4, 2, 2, 5, grads="ones")


def test_input_bytes_count_inputs_weights_and_gradients_held():
    x = bench_hidden.make_inputs(10, 4, 6, 50)
    floats = 10 * 4 + 50 * 4 + 10 * 6 + 50 * 6 + 10 * 4 + 50 * 4  # h, W, h_t, W_t, dL/dh, dL/dW
    assert x.nbytes() == 4 * floats + 8 * 10  # int64 labels
    assert x.grad_bytes() == 4 * (10 * 4 + 50 * 4)
    none = bench_hidden.make_inputs(10, 4, 6, 50, grads="none")
    assert none.grad_bytes() == 0
    assert none.nbytes() == x.nbytes() - x.grad_bytes()


def _row(**changes):
    row = {
        "N": 4096,
        "H_s": 512,
        "H_t": 512,
        "V": 32000,
        "dtype": "float32",
        "logits_bytes": 4096 * 32000 * 4,
        "median_seconds": {
            bench_hidden.LOGITS: 10.0,
            "from hidden, chunk 1024": 14.0,
            "from hidden, chunk 256": 16.0,
        },
        "peak_bytes_above_inputs": {
            bench_hidden.LOGITS: 3 * 2**30,
            "from hidden, chunk 1024": 4096 * 32000,  # exactly a quarter of N V 4 B
            "from hidden, chunk 256": None,  # not measured
        },
    }
    return row | changes


def test_cpu_verdicts_read_the_right_columns():
    found = {
        (t["variant"], t["measure"]): t
        for t in bench_hidden.verdicts([_row()], bench_hidden.targets([1024, 256]))
    }
    chunk = "from hidden, chunk 1024"
    assert found[(chunk, "time")]["ratio"] == pytest.approx(1.4)
    assert found[(chunk, "time")]["met"]  # 1.4 <= 1.5
    assert found[(chunk, "peak / float32 logits")]["ratio"] == pytest.approx(0.25)
    assert found[(chunk, "peak / float32 logits")]["met"]  # at the bound: met
    assert not found[("from hidden, chunk 256", "time")]["met"]  # 1.6 > 1.5
    assert ("from hidden, chunk 256", "peak / float32 logits") not in found  # nothing to judge
    one_more = _row(peak_bytes_above_inputs={"from hidden, chunk 1024": 4096 * 32000 + 1})
    (memory,) = [
        t for t in bench_hidden.verdicts([one_more], bench_hidden.targets([1024])) if t["measure"] != "time"
    ]
    assert not memory["met"]


def test_the_targets_hold_together_only_where_every_one_was_judged_and_met():
    wanted = bench_hidden.targets([1024, 256, 64])
    row = _row()
    row["median_seconds"]["from hidden, chunk 64"] = 12.0
    row["peak_bytes_above_inputs"]["from hidden, chunk 64"] = 4096 * 32000 * 2  # 0.5: missed
    found = bench_hidden.verdicts([row], wanted)
    assert bench_hidden.met_at(found, wanted) == ["from hidden, chunk 1024"]  # 256: memory not measured
    assert bench_hidden.met_at([t for t in found if t["measure"] == "time"], wanted) == []


def test_sizes_parse():
    assert bench_hidden.parse_size("8192x2048x4096x128256:bfloat16") == (8192, 2048, 4096, 128256, "bfloat16")
    assert bench_hidden.parse_size("64x8x8x100") == (64, 8, 8, 100, "float32")


def test_stored_results_exist_and_their_verdicts_follow_from_their_numbers():
    """Every file in data/bench/hidden/: measured on committed code, every target the benchmark
    sets judged where its columns were measured, each ratio recomputed here from the stored
    numbers and each verdict from its bound. At least one CPU result is stored (make bench)."""
    names = bench.hidden_names()
    assert any(name.startswith("cpu-") for name in names), (
        "no CPU result in data/bench/hidden/: run make bench"
    )
    for name in names:
        record = bench.load_hidden_results(name)
        env = record["environment"]
        assert not env["klloss"].endswith("+changes"), name
        assert env.get("tree", "clean") == "clean", name
        assert bench.code_state(record)[0] in ("current", "stale"), name
        for t in record["targets"]:
            (row,) = [
                r for r in record["results"] if (r["N"], r["V"], r["dtype"]) == (t["N"], t["V"], t["dtype"])
            ]
            assert row["logits_bytes"] == row["N"] * row["V"] * 4
            if t["measure"] == "time":
                ratio = row["median_seconds"][t["variant"]] / row["median_seconds"][t["versus"]]
            else:
                unit = {"peak / float32 logits": row["logits_bytes"], "peak / GB": 1e9}[t["measure"]]
                ratio = row["peak_bytes_above_inputs"][t["variant"]] / unit
            assert t["ratio"] == pytest.approx(ratio, rel=1e-12), (name, t)
            assert t["met"] == (ratio <= t["bound"]), (name, t)
        if "met_at" in record:
            wanted = [
                {k: t[k] for k in ("target", "variant", "measure", "versus", "bound")}
                for t in record["targets"]
            ]
            assert record["met_at"] == bench_hidden.met_at(record["targets"], wanted), name
        for row in record["results"]:
            assert row["median_seconds"].keys() == row["peak_bytes_above_inputs"].keys()
            if "peak_bytes_above_inputs_accumulating" in row:  # CPU results: both cases of the gradients
                assert row["peak_bytes_above_inputs_accumulating"].keys() == row["median_seconds"].keys()
            assert all(s > 0 for s in row["median_seconds"].values()), name
            assert all(p is None or p > 0 for p in row["peak_bytes_above_inputs"].values()), name
            versus = bench_hidden.LOGITS if name.startswith("cpu-") else bench_lm.LIGER_FUSED
            for variant in (v for v in row["median_seconds"] if v.startswith("from hidden")):
                measures = {
                    t["measure"] for t in record["targets"] if (t["variant"], t["N"]) == (variant, row["N"])
                }
                if row["peak_bytes_above_inputs"][variant] is not None:
                    assert measures - {"time"}, (name, variant, "memory not judged")
                if versus in row["median_seconds"]:
                    assert "time" in measures, (name, variant, "time not judged")


@pytest.mark.slow
def test_runs_and_writes_its_record_and_figure(tmp_path):
    """The whole benchmark at a tiny size: peaks measured in fresh processes, record and figure
    written, every target judged."""
    argv = ["--size", "64x16x16x500", "--chunks", "32", "16", "--rounds", "2"]
    bench_hidden.main([*argv, "--out", str(tmp_path), "--figures", str(tmp_path)])
    (path,) = tmp_path.glob("cpu-*.json")
    record = json.loads(path.read_text(encoding="utf-8"))
    (row,) = record["results"]
    assert list(row["median_seconds"]) == [
        bench_hidden.LOGITS,
        "from hidden, chunk 32",
        "from hidden, chunk 16",
    ]
    for variant, m in row["peak_measurement"].items():
        assert m["reset"]
        assert m["grads"] == "none"
        assert m["peak"] == row["peak_bytes_above_inputs"][variant] > 0
        assert m["input_bytes"] == row["input_bytes"]
        assert m["grad_bytes_stored"] == 4 * (64 * 16 + 500 * 16)  # dL/dh and dL/dW, stored as .grad
        kept = row["peak_measurement_accumulating"][variant]
        assert kept["grads"] == "zeros"
        assert kept["grad_bytes_stored"] == 0
        assert kept["peak"] == row["peak_bytes_above_inputs_accumulating"][variant] > 0
        assert kept["input_bytes"] == row["input_bytes"]
    assert len(record["targets"]) == 4
    assert set(record["met_at"]) <= {"from hidden, chunk 32", "from hidden, chunk 16"}
    assert (tmp_path / f"bench-hidden-{path.stem}.png").is_file()
