"""pyproject.toml, the lock (constraints.txt), environment.yml and the Makefile agree.

pyproject.toml states ranges for the library and names for its extras; constraints.txt pins the
exact version of everything `make` installs, on every Python it installs on; environment.yml (the
conda route) pins what pyproject.toml names, at the lock's versions.
"""

import importlib.metadata
import re
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


def test_torch_is_pinned_exactly_and_make_names_it():
    # 2.13.0 is the CPU build on this machine's disk; another version would be a download of GBs
    assert re.search(r"^torch==2\.13\.0$", LOCK, re.M), "constraints.txt must pin torch alone, unmarked"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "TORCH := $(shell sed -n 's/^torch==" in makefile, "the Makefile reads torch's pin from the lock"
    installs = re.findall(r"^\t\$\(PIP\) install .*$", makefile, re.M)
    assert installs, "the Makefile installs with $(PIP) install"
    assert all("-c $(LOCK)" in line for line in installs), "every install goes through the lock"
    assert any("'torch==$(TORCH)'" in line for line in installs), "make setup names torch at its pin"
