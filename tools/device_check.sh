#!/usr/bin/env bash
# The GPU checks of klloss, in one run of at most 6 minutes on a machine with one CUDA GPU
# (written for a machine with its own python3 with torch, Triton, pytest and hypothesis, and no
# network). From the repository root (docs/gpu.md says what to prepare):
#
#     OUT=/some/folder KLLOSS_COMMIT=$(git rev-parse --short HEAD) bash tools/device_check.sh
#
# 0. Liger-Kernel, for the benchmark's comparison, from the wheel in build/wheels/ (no network:
#    `pip download liger-kernel --no-deps -d build/wheels` beforehand), into a folder of its own;
# 1. the CUDA tests: tests/test_cuda.py (no host synchronisation under
#    torch.cuda.set_sync_debug_mode("error"), CPU values, bad labels, torch.compile, and for the
#    Triton path memory, a language model's vocabulary and Inductor), tests/test_triton.py (the
#    kernels compiled, against the float64 oracle) and the CUDA test of tests/test_gradients.py;
# 2. the loss from hidden states: benchmarks/bench_lm.py --hidden (margin_kd_loss_from_hidden
#    against the logits and margin_kd_loss, and Liger's fused linear forward KL; time, peak
#    memory above the inputs, weights and gradients);
# 3. the language-model benchmark: benchmarks/bench_lm.py (plain KD, the torch path eager and
#    compiled, the Triton path, Liger's forward KL; time, x the floor, peak memory);
# 4. the earlier benchmark, benchmarks/bench_loss.py --device cuda, if time is left.
# Everything goes to "$OUT", flat: device-env.txt, device-tests.log, device-bench-hidden.log,
# hidden-cuda-<gpu>.json (copy to data/bench/hidden/cuda-<gpu>.json), device-bench-lm.log,
# lm-cuda-<gpu>.json (copy to data/bench/lm/cuda-<gpu>.json), and from step 4
# cuda-<gpu>.json and bench-cuda-<gpu>.png (data/bench/ and figures/). Then refresh notebook 06
# and the README (make nb NB=06; python -m tools.readme). Each step has its own time limit;
# a step that fails does not stop the next one.
set -u
OUT="${OUT:?set OUT to the folder for the results}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
export KLLOSS_COMMIT="${KLLOSS_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
PY="${PYTHON:-python3}"
start=$SECONDS
left() { echo $(("$1" - (SECONDS - start))); }

wheel=$(ls build/wheels/liger_kernel-*.whl 2>/dev/null | head -1)
if [ -n "$wheel" ]; then
  liger=$(mktemp -d)
  "$PY" -m pip install --quiet --no-deps --no-index --target "$liger" "$wheel" && export PYTHONPATH="$PYTHONPATH:$liger"
fi

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $KLLOSS_COMMIT (tree: ${KLLOSS_TREE:-not said})"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | head -3
  "$PY" -c 'import sys, torch; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available()); print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")'
  "$PY" -c 'import triton; print("triton", triton.__version__)' 2>&1 | tail -1
  "$PY" -c 'import liger_kernel, importlib.metadata as m; print("liger-kernel", m.version("liger-kernel"))' 2>&1 | tail -1
  "$PY" -m pytest --version
} > "$OUT/device-env.txt" 2>&1
cat "$OUT/device-env.txt"

TESTS="tests/test_cuda.py tests/test_triton.py tests/test_gradients.py::test_runs_on_cuda"
echo "== CUDA tests (limit 150 s)"
timeout 150 "$PY" -m pytest -p no:cacheprovider -q -rs $TESTS > "$OUT/device-tests.log" 2>&1
status=$?
echo "pytest exit status: $status" | tee -a "$OUT/device-tests.log"
if [ "$status" -ne 0 ] && [ "$status" -ne 124 ]; then
  # the project turns every warning into an error; this GPU's torch may warn where ours does not:
  # run the failures again with warnings shown, not raised, to tell such failures from real ones
  echo "== failures again, warnings not raised (limit 45 s)" | tee -a "$OUT/device-tests.log"
  timeout 45 "$PY" -m pytest -p no:cacheprovider -q -rs --lf -W default -o filterwarnings=default \
    $TESTS >> "$OUT/device-tests.log" 2>&1
  echo "pytest exit status, warnings not raised: $?" | tee -a "$OUT/device-tests.log"
fi
tail -15 "$OUT/device-tests.log"

echo "== the loss from hidden states (limit 80 s; writes after every size)"
mkdir -p "$OUT/hidden"
timeout 80 "$PY" -m benchmarks.bench_lm --hidden --device cuda --rounds 10 --out "$OUT/hidden" \
  > "$OUT/device-bench-hidden.log" 2>&1
echo "benchmark exit status: $?" | tee -a "$OUT/device-bench-hidden.log"
tail -20 "$OUT/device-bench-hidden.log"
for f in "$OUT"/hidden/*.json; do [ -e "$f" ] && cp "$f" "$OUT/hidden-$(basename "$f")"; done

limit=$(left 330)
echo "== language-model benchmark (limit $limit s; writes after every size)"
mkdir -p "$OUT/lm"
timeout "$limit" "$PY" -m benchmarks.bench_lm --device cuda --rounds 10 --out "$OUT/lm" \
  > "$OUT/device-bench-lm.log" 2>&1
echo "benchmark exit status: $?" | tee -a "$OUT/device-bench-lm.log"
tail -45 "$OUT/device-bench-lm.log"
for f in "$OUT"/lm/*.json; do [ -e "$f" ] && cp "$f" "$OUT/lm-$(basename "$f")"; done

limit=$(left 350)
if [ "$limit" -gt 60 ]; then
  echo "== the earlier CUDA benchmark (limit $limit s)"
  timeout "$limit" "$PY" benchmarks/bench_loss.py --device cuda --out "$OUT" --figures "$OUT" \
    > "$OUT/device-bench.log" 2>&1
  echo "benchmark exit status: $?" | tee -a "$OUT/device-bench.log"
fi
echo "== done in $((SECONDS - start)) s; files in $OUT:"
ls -l "$OUT"
