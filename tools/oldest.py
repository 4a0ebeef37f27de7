"""The library's tests on the oldest numpy and pandas that pyproject.toml allows: `make test-oldest`.

pyproject.toml gives numpy and pandas lower bounds (``numpy>=1.26``). This keeps a virtual
environment in build/oldest with the last patch release of each bound (``numpy~=1.26.0``),
torch at the lock's pin and everything else at the lock's versions, and runs the library's tests
there: every test file but LEFT_OUT, which check the pinned environment, the notebooks and the
site rather than the library. Run it with the Python of .venv (it needs `packaging`).
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools import oracle_pythons as oracle

ROOT = oracle.ROOT
FLOORED = ("numpy", "pandas")
# what the library's tests import beyond klloss's own dependencies (scikit-learn: the digits
# experiment, course.experiments)
TEST_REQUIREMENTS = ("pytest", "hypothesis", "scikit-learn")
LEFT_OUT = (
    "test_course_shape.py",
    "test_notebooks.py",
    "test_packaging.py",
    "test_readme.py",
    "test_site.py",
    "test_student.py",
    "test_translation.py",
    "test_wheel.py",
    # these check what the notebooks and the site use (matplotlib, markdown-it, the explorer page)
    "test_bench_hidden.py",
    "test_explorer.py",
    "test_glossary.py",
    "test_outputs_zh.py",
    "test_plotting.py",
)


def floors():
    """``name~=X.Y.0`` for each FLOORED dependency ``name>=X.Y`` of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = {}
    # the library's own dependencies and its `frames` extra (pandas, for Trace.to_frames)
    for req in map(Requirement, project["dependencies"] + project["optional-dependencies"]["frames"]):
        name = canonicalize_name(req.name)
        if name in FLOORED:
            (spec,) = req.specifier
            assert spec.operator == ">=", f"{req}: want a lower bound, name>=X.Y"
            assert spec.version.count(".") == 1, f"{req}: want a bound on a minor release, name>=X.Y"
            found[name] = f"{name}~={spec.version}.0"
    return [found[name] for name in FLOORED]


def main():
    lock = oracle.LOCK.read_text(encoding="utf-8")
    torch = re.search(r"^torch==([^\s;]+)$", lock, re.M)[1]
    # the lock's pins, less those of the floored packages and what only they would hold back
    kept = [
        line
        for line in lock.splitlines()
        if not re.match(rf"({'|'.join(FLOORED)})==", line) and not line.startswith("#")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(kept) + "\n", encoding="utf-8")
        python = oracle.venv(
            ROOT / "build" / "oldest",
            sys.executable,
            [f"torch=={torch}", *floors(), *TEST_REQUIREMENTS],
            constraints,
        )
    report = (
        "import sys, numpy, pandas, torch\n"
        "print(sys.version.split()[0], numpy.__version__, pandas.__version__, torch.__version__)"
    )
    found = subprocess.run([python, "-c", report], capture_output=True, text=True, check=True).stdout.split()
    print("oldest: Python {} with numpy {}, pandas {}, torch {}".format(*found), flush=True)
    ignore = [f"--ignore=tests/{name}" for name in LEFT_OUT]
    # the question here is whether the API works on these versions, not a deeper search: fewer
    # hypothesis examples than the main run (KLLOSS_EXAMPLES set by the caller still wins)
    env = {"KLLOSS_EXAMPLES": "30", **os.environ}
    pytest = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests", *ignore]
    tests = subprocess.run(pytest, cwd=ROOT, env=env)
    return tests.returncode


if __name__ == "__main__":
    sys.exit(main())
