#!/usr/bin/env bash
# The GPU checks of klloss, in one run on a machine with one CUDA GPU (written for a lent H200:
# its own python3 with torch, pytest and hypothesis, and no network). From the repository root:
#
#     OUT=/some/folder bash tools/device_check.sh
#
# 1. the CUDA tests: tests/test_cuda.py (no host synchronisation in forward + backward, under
#    torch.cuda.set_sync_debug_mode("error"); CPU values; bad labels stopped on the device;
#    torch.compile on the GPU) and the CUDA test of tests/test_gradients.py;
# 2. the CUDA benchmark: benchmarks/bench_loss.py --device cuda.
# Everything goes to "$OUT", flat: device-env.txt, device-tests.log, device-bench.log,
# cuda-<gpu>.json and bench-cuda-<gpu>.png. Copy the .json to data/bench/ and the .png to
# figures/, then refresh notebook 06 (make nb NB=06). Each step has its own time limit, so the
# whole stays under 6 minutes; a step that fails does not stop the next one.
set -u
OUT="${OUT:?set OUT to the folder for the results}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONDONTWRITEBYTECODE=1
PY="${PYTHON:-python3}"
start=$SECONDS

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | head -3
  "$PY" -c 'import sys, torch; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available()); print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")'
  "$PY" -m pytest --version
} > "$OUT/device-env.txt" 2>&1
cat "$OUT/device-env.txt"

echo "== CUDA tests (limit 150 s)"
timeout 150 "$PY" -m pytest -p no:cacheprovider -v -rs \
  tests/test_cuda.py tests/test_gradients.py::test_runs_on_cuda > "$OUT/device-tests.log" 2>&1
status=$?
echo "pytest exit status: $status" | tee -a "$OUT/device-tests.log"
if [ "$status" -ne 0 ]; then
  # the project turns every warning into an error; this GPU's torch may warn where ours does not:
  # run again with warnings shown, not raised, to tell such failures from real ones
  echo "== again, warnings not raised (limit 90 s)" | tee -a "$OUT/device-tests.log"
  timeout 90 "$PY" -m pytest -p no:cacheprovider -rs -W default -o filterwarnings=default \
    tests/test_cuda.py tests/test_gradients.py::test_runs_on_cuda >> "$OUT/device-tests.log" 2>&1
  echo "pytest exit status, warnings not raised: $?" | tee -a "$OUT/device-tests.log"
fi
tail -15 "$OUT/device-tests.log"

echo "== CUDA benchmark (limit $((330 - (SECONDS - start))) s; writes after every size)"
timeout $((330 - (SECONDS - start))) "$PY" benchmarks/bench_loss.py --device cuda --out "$OUT" --figures "$OUT" \
  > "$OUT/device-bench.log" 2>&1
echo "benchmark exit status: $?" | tee -a "$OUT/device-bench.log"
tail -25 "$OUT/device-bench.log"
echo "== done in $((SECONDS - start)) s; files in $OUT:"
ls -l "$OUT"
