"""The wheel is the library, and works outside the clone: build it, install it into a fresh
virtual environment with what pip pulls for it (torch at the lock's pin, NumPy), and use it from
another folder with the clone off the path.

Checked there: only klloss/ and its article_data/ are in the wheel; pip installs torch, NumPy and
what they need, no pandas and no matplotlib; ``import klloss``, a loss and its backward leave
pandas and matplotlib unimported, and read or write no file outside the installed packages and
the standard library (an audit hook records every open); the course is not importable;
``Trace.to_frames`` says it needs pandas.

Marked ``wheel``: it takes about a minute, most of it installing torch into the new environment.
`make test` runs it; `make check` leaves it out.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

import klloss.data
import klloss.oracle

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
PIP = ["-m", "pip", "--disable-pip-version-check"]

pytestmark = pytest.mark.wheel


def lock_pin(name):
    """The version constraints.txt pins ``name`` at for this Python (the new environment's)."""
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            req = Requirement(line)
            if req.name == name and (req.marker is None or req.marker.evaluate()):
                (spec,) = req.specifier
                return spec.version
    raise AssertionError(f"constraints.txt does not pin {name} for this Python")


# Runs in the new environment, from a folder outside the clone, under `python -I` (no PYTHONPATH,
# no user site, no current folder on the path). The audit hook is set before klloss is imported.
USE_THE_WHEEL = r"""
import json, os, sys

WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
CHANGES = {"os.mkdir", "os.remove", "os.rename", "os.rmdir", "os.truncate", "os.symlink", "os.link",
           "os.chmod", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}
seen = {"read": set(), "write": set()}
recording = True


def audit(event, args):
    if not recording:
        return
    if event == "open" and not isinstance(args[0], int):
        path, mode, flags = args
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & WRITES)
        seen["write" if writes else "read"].add(os.path.abspath(os.fsdecode(path)))
    elif event in ("os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes)):
        seen["read"].add(os.path.abspath(os.fsdecode(args[0])))
    elif event in CHANGES:
        seen["write"].add(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(audit)
import torch
import klloss

sample = klloss.data.load_sample()
args = sample.tensors(torch.float64)
student = args.pop("input").clone().requires_grad_(True)
loss = klloss.klloss_v2(input=student, **args)
loss.backward()
trace = klloss.trace(**sample.tensors())
recording = False

try:
    trace.to_frames()
    frames_error = None
except ImportError as error:
    frames_error = [type(error).__name__, error.name, str(error)]
try:
    import course
    course_error = None
except ImportError as error:
    course_error = [type(error).__name__, error.name]

print(json.dumps({
    "klloss": klloss.__file__,
    "path": sys.path,
    "torch": torch.__version__,
    "loss": loss.item(),
    "grad": student.grad.tolist(),
    "loss_float32": f"{klloss.klloss_v2(**sample.tensors()).item():.4f}",
    "printed_loss": klloss.data.load_article_printed()["loss"].text,
    "modules": sorted(sys.modules),
    "read": sorted(seen["read"]),
    "write": sorted(seen["write"]),
    "frames_error": frames_error,
    "course_error": course_error,
}))
"""

# What pip installed in the new environment, and what klloss's requirements pull, from the
# installed metadata (requirements behind an extra are not followed)
INSTALLED = r"""
import json, re, sysconfig
from importlib import metadata
from pip._vendor.packaging.requirements import Requirement  # a fresh venv has pip's copy alone

site = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()
dists = {norm(d.metadata["Name"]): d for d in metadata.distributions(path=site)}
pulled, todo = set(), ["klloss"]
while todo:
    name = todo.pop()
    if name in pulled:
        continue
    pulled.add(name)
    for line in dists[name].requires or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(norm(req.name))
print(json.dumps({"installed": {n: d.version for n, d in dists.items()}, "pulled": sorted(pulled)}))
"""


def run_in(python, script, cwd=None):
    """stdout of ``script`` run by ``python -I`` (isolated: no PYTHONPATH, user site or current
    folder on the path); a failure shows the script's stderr."""
    out = subprocess.run([python, "-I", "-c", script], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


# pip and venv run with none of the caller's PYTHON* settings: a PYTHONPATH holding the clone
# would make pip take its klloss for an installed one and skip the wheel
def clean_env():
    return {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel, built from a copy of what the build reads, so that nothing is written into the
    clone (setuptools' build/ folder can hold stale files), with the installed setuptools and no
    build isolation: no network needed."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "klloss", src / "klloss", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    build = [sys.executable, *PIP, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist, src]
    subprocess.run(build, check=True, env=clean_env())
    (built,) = dist.glob("klloss-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """The Python of a fresh virtual environment holding the wheel and what pip pulls for it, at
    the versions constraints.txt pins."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, env=clean_env())
    python = venv / "bin" / "python"
    install = [python, *PIP, "install", "--quiet", "-c", LOCK, wheel]
    plan = subprocess.run(
        [*install, "--dry-run", "--report", "-"], capture_output=True, text=True, check=True, env=clean_env()
    )
    names = [item["metadata"]["name"] for item in json.loads(plan.stdout)["install"]]
    cuda = [name for name in names if name.startswith("nvidia")]
    if cuda:
        pytest.skip(
            f"torch resolves to a CUDA build here ({len(cuda)} nvidia-* wheels, GBs); install its CPU build"
        )
    subprocess.run(install, check=True, env=clean_env())
    return python


@pytest.fixture(scope="module")
def used(installed, tmp_path_factory):
    """What :data:`USE_THE_WHEEL` saw, run from an empty folder outside the clone."""
    outside = tmp_path_factory.mktemp("outside")
    return json.loads(run_in(installed, USE_THE_WHEEL, cwd=outside))


def test_the_wheel_holds_the_library_and_its_data_only(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "klloss"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    shipped = {
        n
        for n in tracked
        if n.endswith(".py") or (n.startswith("klloss/article_data/") and n.endswith(".json"))
    }
    assert {"klloss/article_data/sample.json", "klloss/article_data/article_printed.json"} <= shipped
    info = {n for n in names if n.split("/")[0].endswith(".dist-info")}
    assert names - info == shipped
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in info)


def test_the_wheel_requires_torch_and_numpy_and_offers_the_rest_as_extras(wheel):
    archive = zipfile.ZipFile(wheel)
    (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    requires = [
        Requirement(r) for r in Parser().parsestr(archive.read(meta).decode()).get_all("Requires-Dist")
    ]
    always = {r.name for r in requires if r.marker is None}
    assert always == {"torch", "numpy"}
    frames = {r.name for r in requires if r.marker is not None and r.marker.evaluate({"extra": "frames"})}
    assert "pandas" in frames


def test_pip_installs_what_torch_and_numpy_need_and_no_more(installed):
    got = json.loads(run_in(installed, INSTALLED))
    installed_names = set(got["installed"])
    assert {"torch", "numpy"} <= set(got["pulled"])
    # pip comes with every venv (setuptools too, before Python 3.12)
    assert installed_names - set(got["pulled"]) <= {"pip", "setuptools"}
    assert not installed_names & {"pandas", "matplotlib", "scipy", "scikit-learn"}
    assert got["installed"]["torch"].split("+")[0] == lock_pin("torch")
    assert got["installed"]["numpy"] == lock_pin("numpy")


def test_the_installed_wheel_works_outside_the_clone(installed, used):
    # it ran the installed copy, with the clone nowhere on the path
    venv = installed.parent.parent
    assert Path(used["klloss"]).is_relative_to(venv)
    assert not [entry for entry in used["path"] if entry and Path(entry).resolve().is_relative_to(ROOT)]

    # the loss and its gradient, against the float64 oracle and its central differences
    sample = klloss.data.load_sample()
    args = (sample.logits_t, sample.input, sample.target, sample.label, sample.beta)
    expected = klloss.oracle.klloss_v2(*args)
    assert used["loss"] == pytest.approx(expected, rel=1e-12)
    assert used["loss_float32"] == f"{expected:.4f}"
    h = 1e-6
    numeric = np.zeros_like(sample.input)
    for i, c in np.ndindex(*sample.input.shape):
        step = np.zeros_like(sample.input)
        step[i, c] = h
        up = klloss.oracle.klloss_v2(args[0], sample.input + step, *args[2:])
        down = klloss.oracle.klloss_v2(args[0], sample.input - step, *args[2:])
        numeric[i, c] = (up - down) / (2 * h)
    np.testing.assert_allclose(used["grad"], numeric, rtol=0, atol=1e-9)
    assert np.abs(numeric).max() > 1e-3  # a gradient worth comparing

    # the package data: the article's printed loss, as the clone's copy has it
    assert used["printed_loss"] == klloss.data.load_article_printed()["loss"].text


def test_the_library_leaves_pandas_and_matplotlib_unimported(used):
    modules = {name.split(".")[0] for name in used["modules"]}
    assert "torch" in modules
    assert not modules & {"pandas", "matplotlib"}


def _allowed_roots(installed):
    """The installed packages (the venv's site-packages) and the standard library of the new
    environment's Python, and the kernel's pseudo-files (/proc, /sys, /dev)."""
    query = (
        "import json, sys, sysconfig; print(json.dumps([sysconfig.get_paths(), sys.path, sys.base_prefix]))"
    )
    paths, path, base = json.loads(run_in(installed, query))
    roots = [paths[key] for key in ("purelib", "platlib", "stdlib", "platstdlib")]
    # the standard library's entries of the import path (python3XX.zip is looked for, if absent)
    roots += [entry for entry in path if entry and Path(entry).is_relative_to(base)]
    return [Path(p).resolve() for p in roots] + [Path("/proc"), Path("/sys"), Path("/dev")]


def test_nothing_outside_the_installed_packages_is_read_or_written(installed, used):
    roots = _allowed_roots(installed)
    read = [Path(p) for p in used["read"]]
    assert any(p.is_relative_to(roots[0] / "klloss" / "article_data") for p in read), "the audit saw nothing"
    outside = [str(p) for p in read if not any(p.resolve().is_relative_to(root) for root in roots)]
    assert outside == []
    assert used["write"] == []


def test_the_course_is_not_installed(used):
    assert used["course_error"] == ["ModuleNotFoundError", "course"]


def test_trace_to_frames_names_the_missing_pandas(used):
    kind, name, message = used["frames_error"]
    assert kind == "ModuleNotFoundError"
    assert name == "pandas"
    assert "klloss[frames]" in message  # says how to get it
