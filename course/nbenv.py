"""The one environment every notebook kernel runs in, when refreshed and when nbval checks it.

Float sums printed by torch differ between 1 and 2 threads, and warnings name the cell by
IPYKERNEL_CELL_NAME, so these must be identical in both places.

The same torch wheel also computes with different code on different x86-64 CPUs, and the last
bits of a result change with it; a training run (notebook 05) amplifies a last-bit difference
into a different test prediction. So the kernel is pinned to code paths that every x86-64 CPU
runs alike, whatever the calling environment says:

* ``ATEN_CPU_CAPABILITY=default``: ATen's vectorised kernels in their baseline build, not the
  AVX2 or AVX-512 versions chosen by CPU detection;
* ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility mode, the same results on
  every x86-64 CPU (matrix products in ``nn.Linear``);
* ``ONEDNN_MAX_CPU_ISA=SSE41``: oneDNN capped to the instruction set every x86-64 CPU of the
  last fifteen years has;
* ``OPENBLAS_CORETYPE=Prescott``: NumPy's OpenBLAS on its generic x86-64 kernels.

These override the caller's settings: ``make test`` under ``ATEN_CPU_CAPABILITY=avx2`` still
runs the notebooks on the pinned paths (tests/test_notebooks.py checks that a kernel reports
them). A caller's ``MKL_ENABLE_INSTRUCTIONS`` is left alone on purpose: it simulates an older CPU,
and ``MKL_CBWR=COMPATIBLE`` must give the same numbers under it (``.ci/run`` checks that).
What the pins cost in run time is in the README's notebook table.
"""

import os

from . import ROOT

ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    # NumPy's OpenBLAS picks its kernels by CPU (SkylakeX, Zen, ...): np.polyfit's last bits, and
    # with them a figure's pixels, differed between an Intel Xeon and an AMD EPYC; its generic
    # kernels run alike on every x86-64 CPU
    "OPENBLAS_CORETYPE": "Prescott",
    "IPYKERNEL_CELL_NAME": "<notebook-cell>",
    "PYTHONHASHSEED": "0",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    # the kernel starts in notebooks/: the checkout's root makes `course` importable there
    "PYTHONPATH": str(ROOT),
    # torch.compile's cache does not tell apart code built under other ATEN_CPU_CAPABILITY
    # settings, so the pinned kernels keep one of their own (tests/conftest.py says more)
    "TORCHINDUCTOR_CACHE_DIR": str(ROOT / "build" / "inductor-notebooks"),
}


def apply():
    """Set :data:`ENV` in this process, so kernels started from it inherit it."""
    os.environ.update(ENV)
    # a kernel writes Markdown outputs in its notebook's language, which its folder gives
    # (notebooks/zh/ is Chinese, course/i18n.py), not in the language a caller's shell asks for
    os.environ.pop("KLLOSS_LANG", None)
    # the kernel chooses its own (inline) matplotlib backend
    os.environ.pop("MPLBACKEND", None)
