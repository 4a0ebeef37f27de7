"""pyproject.toml, the lock (constraints.txt), environment.yml and the Makefile agree.

pyproject.toml states ranges for the library and names for its extras; constraints.txt pins the
exact version of everything `make` installs, on every Python it installs on; environment.yml (the
conda route) pins what pyproject.toml names, at the lock's versions.
"""

import importlib.metadata
import re
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tools import lock
from tools import oracle_pythons as oracle

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCK = (ROOT / "constraints.txt").read_text(encoding="utf-8")
SETUP_PYTHON = re.search(r"^# setup-python: (\S+)$", LOCK, re.M)[1]


def lock_pins(python_version):
    """{name: version} that constraints.txt pins on Python ``python_version`` ("3.11")."""
    env = {
        **default_environment(),
        "python_version": python_version,
        "python_full_version": f"{python_version}.0",
    }
    pins = {}
    for line in LOCK.splitlines():
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        (spec,) = req.specifier
        assert spec.operator == "==", f"constraints.txt: {line!r} is not an exact pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"constraints.txt pins {name} twice for Python {python_version}"
        pins[name] = spec.version
    return pins


def requirements():
    """Every requirement of pyproject.toml, its extras included."""
    written = list(PROJECT["dependencies"])
    for extra in PROJECT["optional-dependencies"].values():
        written += extra
    return [Requirement(r) for r in written]


def test_library_dependencies_are_lower_bounds():
    # whoever wants the loss keeps their own versions: no pins, no caps
    for req in map(Requirement, PROJECT["dependencies"]):
        assert [s.operator for s in req.specifier] == [">="], f"{req}: want a lower bound alone"


def test_requires_python_admits_3_10_to_3_13():
    spec = SpecifierSet(PROJECT["requires-python"])
    assert [v for v in ("3.9", "3.10", "3.11", "3.12", "3.13") if spec.contains(f"{v}.0")] == list(
        oracle.PYTHONS
    )
    classifiers = {c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"] if re.search(r":: 3\.\d+$", c)}
    assert classifiers == set(oracle.PYTHONS)


def test_lock_pins_every_requirement_inside_its_range():
    pins = lock_pins(SETUP_PYTHON)
    for req in requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"constraints.txt does not pin {name}: run make lock"
        assert req.specifier.contains(pins[name]), f"constraints.txt pins {name}=={pins[name]}, outside {req}"


def test_lock_is_as_make_lock_writes_it():
    # the pins read back, per Python, and written again give the file: nothing was edited by hand
    pins = {python: lock_pins(python) for python in oracle.PYTHONS}
    assert lock.render(pins, SETUP_PYTHON) == LOCK, "edit pyproject.toml and run make lock"


@pytest.mark.parametrize("python", oracle.PYTHONS)
def test_lock_pins_the_oracle_packages_on_every_python(python):
    pins = lock_pins(python)
    assert {canonicalize_name(r) for r in oracle.ORACLE_REQUIREMENTS} <= set(pins)


@pytest.mark.skipif(
    Path(sys.prefix).resolve() != (ROOT / ".venv").resolve(), reason="checks the .venv that make setup builds"
)
def test_lock_pins_everything_installed_here():
    # a package installed but not pinned means pyproject.toml gained it and `make lock` was not run
    pins = lock_pins(f"{sys.version_info[0]}.{sys.version_info[1]}")
    # only what is installed in the venv: once torch.compile has imported setuptools, its vendored
    # packages (autocommand, ...) are on sys.path too, but nobody installed them
    site = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    for dist in importlib.metadata.distributions(path=site):
        name = canonicalize_name(dist.metadata["Name"])
        if name in {"pip", "klloss"}:  # pip comes with the venv; klloss is this project
            continue
        assert name in pins, f"{name} is installed but constraints.txt does not pin it: run make lock"
        assert Version(dist.version).public == pins[name], f"{name} {dist.version}: rebuild .venv"


def environment_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pins, python = {}, None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                if line.startswith("-"):
                    continue
                req = Requirement(line)
                (spec,) = req.specifier
                assert spec.operator == "==", f"environment.yml: {line!r} is not an exact pin"
                pins[canonicalize_name(req.name)] = spec.version
            continue
        name, _, version = dep.partition("=")
        if name == "python":
            python = version
        elif name != "pip":
            assert version, f"environment.yml: {dep!r} has no version"
            pins[canonicalize_name(name)] = version
    return pins, python


def test_environment_yml_pins_what_pyproject_names_at_the_lock_versions():
    pins, python = environment_pins()
    assert python == SETUP_PYTHON
    assert set(pins) == {canonicalize_name(r.name) for r in requirements()}
    lock = lock_pins(python)
    assert pins == {name: lock[name] for name in pins}


def test_environment_installs_the_project_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip


def test_torch_is_pinned_once_and_for_every_python():
    # one unmarked exact pin: torch is the same build (the CPU wheel on this machine's disk) for
    # every Python and every target
    lines = [Requirement(line) for line in LOCK.splitlines() if re.match(r"torch\b", line)]
    assert len(lines) == 1
    assert lines[0].marker is None
    assert [spec.operator for spec in lines[0].specifier] == ["=="]


def pip_installs(*targets):
    """The pip install commands `make` would run for ``targets``, each as its list of words
    (make -n -B: printed, not run, as if nothing had been built)."""
    out = subprocess.run(
        ["make", "-n", "-B", "--no-print-directory", *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    commands = [shlex.split(line) for line in out.splitlines() if " pip " in line]
    return [words for words in commands if "install" in words]


def test_make_installs_through_the_lock_and_names_torch_at_its_pin():
    installs = pip_installs("setup", "lab")
    assert len(installs) == 2, installs  # the environment, then JupyterLab
    for words in installs:
        assert words[words.index("-c") + 1] == "constraints.txt", words
    torch = lock_pins(SETUP_PYTHON)["torch"]
    (setup,) = pip_installs("setup")
    assert f"torch=={torch}" in setup, "make setup names torch at the lock's pin"
