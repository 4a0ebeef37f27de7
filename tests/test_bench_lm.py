"""benchmarks/bench_lm.py on the CPU, at tiny sizes, the Triton column in the interpreter: so that
its logic has run before it meets a GPU. It times nothing that a test reads: only the record's
shape and the arithmetic of its columns are checked."""

import json

import pytest
import torch
import torch.nn.functional as F
from helpers import COMPILE_WARNINGS
from test_bench_hidden import _row

from benchmarks import bench_hidden, bench_lm
from klloss import _triton

pytestmark = pytest.mark.skipif(_triton.triton is None, reason="Triton is not installed here")


@COMPILE_WARNINGS[0]
@COMPILE_WARNINGS[1]
def test_runs_on_the_cpu_and_writes_its_record(tmp_path, inductor_cache, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", inductor_cache)
    monkeypatch.setenv("KLLOSS_COMMIT", "abc1234")
    argv = ["--device", "cpu", "--sizes", "6x40", "3x20:bfloat16", "--rounds", "2"]
    argv += ["--compile-backend", "aot_eager", "--copy-bytes", str(2**20), "--out", str(tmp_path)]
    assert bench_lm.main(argv) == 0
    (path,) = tmp_path.glob("cpu-*.json")
    record = json.loads(path.read_text(encoding="utf-8"))
    env = record["environment"]
    assert env["klloss"] == "abc1234"
    assert env["tree"] == "clean"
    assert env["triton"] == _triton.TRITON_VERSION
    assert [(r["N"], r["V"], r["dtype"]) for r in record["results"]] == [
        (6, 40, "float32"),
        (3, 20, "bfloat16"),
    ]
    names = ["plain KD eager", "plain KD compiled", "torch path eager", "torch path compiled", "Triton"]
    for row in record["results"]:
        assert list(row["median_seconds"]) == names  # no Liger-Kernel off CUDA
        element = 4 if row["dtype"] == "float32" else 2
        assert row["floor_seconds"] == pytest.approx(
            3 * row["N"] * row["V"] * element / record["copy_bandwidth"]
        )
        for name, seconds in row["median_seconds"].items():
            assert seconds > 0
            assert row["over_floor"][name] == pytest.approx(seconds / row["floor_seconds"])
            assert row["peak_bytes_above_inputs"][name] is None  # measured on CUDA only
    assert record["targets"] == []  # none of the targets' sizes was run


def test_verdicts_read_the_right_columns():
    row = {
        "N": 64,
        "V": 10,
        "dtype": "float32",
        "median_seconds": {"plain KD eager": 2.0, "Triton": 2.2},
        "over_floor": {"plain KD eager": 20.0, "Triton": 22.0},
        "peak_bytes_above_inputs": {"plain KD eager": None, "Triton": None},
        "gradient_bytes": 2560,
    }
    (verdict,) = bench_lm.verdicts([row])
    assert verdict["target"] == "Triton / plain KD eager"
    assert verdict["ratio"] == pytest.approx(1.1)
    assert verdict["met"]
    big = dict(row, N=8192, V=128256, dtype="bfloat16", gradient_bytes=8192 * 128256 * 2)
    big["median_seconds"] = {"plain KD compiled": 1.0, "Triton": 0.8}
    big["over_floor"] = {"plain KD compiled": 2.0, "Triton": 1.6}
    big["peak_bytes_above_inputs"] = {"plain KD compiled": 10, "Triton": 8192 * 128256 * 2 + 65 * 8192}
    found = {v["target"]: v for v in bench_lm.verdicts([big])}
    assert found["Triton time / floor"]["met"]
    assert not found["Triton / plain KD compiled"]["met"]  # 0.8 > 0.7
    assert not found["Triton peak / (gradient + 64 B a row)"]["met"]  # one byte a row too many


def test_sizes_parse():
    assert bench_lm.parse_size("8192x128256:bfloat16") == (8192, 128256, "bfloat16")
    assert bench_lm.parse_size("64x10") == (64, 10, "float32")


def test_the_hidden_comparison_runs_on_the_cpu_and_writes_its_record(tmp_path, monkeypatch):
    monkeypatch.setenv("KLLOSS_COMMIT", "abc1234")
    argv = ["--hidden", "--device", "cpu", "--hidden-sizes", "24x8x12x40:bfloat16", "16x4x6x30"]
    argv += ["--chunks", "8", "5", "--rounds", "2", "--out", str(tmp_path)]
    assert bench_lm.main(argv) == 0
    (path,) = tmp_path.glob("cpu-*.json")
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["environment"]["klloss"] == "abc1234"
    assert record["benchmark"] == "benchmarks/bench_lm.py --hidden"
    sizes = [(24, 8, 12, 40, "bfloat16"), (16, 4, 6, 30, "float32")]
    assert [tuple(r[k] for k in ("N", "H_s", "H_t", "V", "dtype")) for r in record["results"]] == sizes
    for row, size in zip(record["results"], sizes, strict=True):
        names = [bench_hidden.LOGITS, "from hidden, chunk 8", "from hidden, chunk 5"]  # no Liger off CUDA
        assert list(row["median_seconds"]) == names
        assert all(len(row["round_seconds"][name]) == 2 for name in names)
        assert row["logits_bytes"] == row["N"] * row["V"] * 4
        assert row["input_bytes"] == bench_hidden.make_inputs(*size).nbytes()
        assert all(row["peak_bytes_above_inputs"][name] is None for name in names)  # measured on CUDA only
    assert record["targets"] == []  # no peak measured, no Liger to compare with
    assert "liger_forward_kl_check" not in record


def _kl(h, w, h_t, w_t, y, *, reverse=False, skip_padding=True):
    kept = y != -100 if skip_padding else torch.ones_like(y, dtype=torch.bool)
    log_q, log_p = F.log_softmax((h @ w.T)[kept], -1), F.log_softmax((h_t @ w_t.T)[kept], -1)
    a, b = (log_q, log_p) if reverse else (log_p, log_q)
    return (a.exp() * (a - b)).sum() / kept.sum()


def test_the_forward_kl_check_tells_forward_kl_from_what_is_not():
    """The check run before Liger's fused linear JSD is timed: the forward KL over the rows kept
    passes, the reverse KL and a mean over every row (padding included) do not."""
    assert bench_lm.forward_kl_check(_kl, "cpu")["relative_difference"] < 1e-5
    assert bench_lm.forward_kl_check(lambda *a: _kl(*a, reverse=True), "cpu")["relative_difference"] > 1e-2
    assert (
        bench_lm.forward_kl_check(lambda *a: _kl(*a, skip_padding=False), "cpu")["relative_difference"] > 1e-3
    )


def test_gpu_verdicts_compare_with_liger_and_count_gigabytes():
    row = _row(
        median_seconds={
            bench_lm.LIGER_FUSED: 0.1,
            "from hidden, chunk 1024": 0.079,
            bench_hidden.LOGITS: 0.05,
        },
        peak_bytes_above_inputs={"from hidden, chunk 1024": 4_000_000_001, bench_lm.LIGER_FUSED: 1},
    )
    found = {t["measure"]: t for t in bench_hidden.verdicts([row], bench_lm.hidden_targets([1024]))}
    assert found["time"]["ratio"] == pytest.approx(0.79)
    assert found["time"]["met"]
    assert found["peak / GB"]["ratio"] == pytest.approx(4.000000001)
    assert not found["peak / GB"]["met"]
    no_liger = _row(median_seconds={"from hidden, chunk 1024": 1.0, bench_hidden.LOGITS: 1.0})
    assert [t["measure"] for t in bench_hidden.verdicts([no_liger], bench_lm.hidden_targets([1024]))] == [
        "peak / GB"
    ]
