"""How many times the published loop synchronises the host with a CUDA device, per batch size.

    python -m benchmarks.check_published_syncs      # needs a CUDA GPU; exits 2 without one

torch's sync debug mode warns on every operation that makes the host wait for the device. The
published loop copies ``label`` to the host once (``label.cpu()``), then reads each label from
host memory and indexes a device row with it (a view): the count must be 1 whatever N is.
Prints one line per N and exits 1 if a count differs from 1.
"""

import sys
import warnings

import torch

from course import bench
from klloss import klloss_v2_published


def syncs(n, c=10, device="cuda"):
    """Synchronising operations in one forward of the published loss on ``device``."""
    teacher, student, label = bench.make_inputs(n, c, device)
    klloss_v2_published(teacher, student, teacher, label, bench.BETA)  # warm-up, outside the count
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            klloss_v2_published(teacher, student, teacher, label, bench.BETA)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(w.message) for w in caught)


def main():
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    counts = {n: syncs(n) for n in (1, 8, 64, 512)}
    for n, count in counts.items():
        print(f"N = {n:>4}: {count} synchronising operation(s) in one forward of klloss_v2_published")
    ok = all(count == 1 for count in counts.values())
    print("one synchronisation per batch (label.cpu()), none per sample:", "yes" if ok else "NO")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
