"""The wheel works outside the clone: build it, install it into a fresh virtual environment with
the lock's torch, NumPy and pandas, and use it from another folder with the clone off the path.

Marked ``wheel``: it takes about a minute, most of it installing torch into the new environment.
`make test` runs it; ``pytest -m "not wheel"`` leaves it out.
"""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import klloss.data
import klloss.oracle

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
PIP = ["-m", "pip", "--disable-pip-version-check"]

pytestmark = pytest.mark.wheel

# Runs in the new environment, from a folder outside the clone, under `python -I` (no PYTHONPATH,
# no user site, no current folder on the path).
USE_THE_WHEEL = """
import json, sys
import torch
import klloss

sample = klloss.data.load_sample()
args = sample.tensors(torch.float64)
student = args.pop("input").clone().requires_grad_(True)
loss = klloss.klloss_v2(input=student, **args)
loss.backward()
print(json.dumps({
    "klloss": klloss.__file__,
    "path": sys.path,
    "torch": torch.__version__,
    "loss": loss.item(),
    "grad": student.grad.tolist(),
    "loss_float32": f"{klloss.klloss_v2(**sample.tensors()).item():.4f}",
    "printed_loss": klloss.data.load_article_printed()["loss"].text,
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel, built from a copy of what the build reads, so that nothing is written into the
    clone (setuptools' build/ folder can hold stale files), with the installed setuptools and no
    build isolation: no network needed."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "klloss", src / "klloss", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    build = [sys.executable, *PIP, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist, src]
    subprocess.run(build, check=True)
    (built,) = dist.glob("klloss-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The Python of a fresh virtual environment holding the wheel and its dependencies, at the
    versions constraints.txt pins."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python = venv / "bin" / "python"
    install = [python, *PIP, "install", "--quiet", "-c", LOCK, wheel]
    plan = subprocess.run(
        [*install, "--dry-run", "--report", "-"], capture_output=True, text=True, check=True
    )
    names = [item["metadata"]["name"] for item in json.loads(plan.stdout)["install"]]
    cuda = [name for name in names if name.startswith("nvidia")]
    if cuda:
        pytest.skip(
            f"torch resolves to a CUDA build here ({len(cuda)} nvidia-* wheels, GBs); install its CPU build"
        )
    subprocess.run(install, check=True)
    return python


def test_the_wheel_holds_the_package_and_its_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"klloss/{p.name}" for p in (ROOT / "klloss").glob("*.py")} <= names
    assert {"klloss/article_data/sample.json", "klloss/article_data/article_printed.json"} <= names
    assert not [name for name in names if name.startswith(("tests/", "data/", "notebooks/", "tools/"))]


def test_the_installed_wheel_works_outside_the_clone(installed, tmp_path):
    out = subprocess.run(
        [installed, "-I", "-c", USE_THE_WHEEL], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout)

    # it ran the installed copy, with the clone nowhere on the path
    venv = installed.parent.parent
    assert Path(got["klloss"]).is_relative_to(venv)
    assert not [entry for entry in got["path"] if entry and Path(entry).resolve().is_relative_to(ROOT)]
    assert got["torch"].split("+")[0] == "2.13.0"

    # the loss and its gradient, against the float64 oracle and its central differences
    sample = klloss.data.load_sample()
    args = (sample.logits_t, sample.input, sample.target, sample.label, sample.beta)
    expected = klloss.oracle.klloss_v2(*args)
    assert got["loss"] == pytest.approx(expected, rel=1e-12)
    assert got["loss_float32"] == f"{expected:.4f}" == "0.0413"
    h = 1e-6
    numeric = np.zeros_like(sample.input)
    for i, c in np.ndindex(*sample.input.shape):
        step = np.zeros_like(sample.input)
        step[i, c] = h
        up = klloss.oracle.klloss_v2(args[0], sample.input + step, *args[2:])
        down = klloss.oracle.klloss_v2(args[0], sample.input - step, *args[2:])
        numeric[i, c] = (up - down) / (2 * h)
    np.testing.assert_allclose(got["grad"], numeric, rtol=0, atol=1e-9)
    assert np.abs(numeric).max() > 1e-3  # a gradient worth comparing

    # the package data: the article's printed loss, as printed
    assert got["printed_loss"] == "3.1765"
