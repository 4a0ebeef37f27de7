"""The one environment every notebook kernel runs in, when refreshed and when nbval checks it.

Float sums printed by torch differ between 1 and 2 threads, and warnings name the cell by
IPYKERNEL_CELL_NAME, so these must be identical in both places.
"""

import os

ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "IPYKERNEL_CELL_NAME": "<notebook-cell>",
    "PYTHONHASHSEED": "0",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


def apply():
    """Set :data:`ENV` in this process, so kernels started from it inherit it."""
    os.environ.update(ENV)
    # the kernel chooses its own (inline) matplotlib backend
    os.environ.pop("MPLBACKEND", None)
