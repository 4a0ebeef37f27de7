"""environment.yml (conda) and pyproject.toml (pip) name the same packages at the same versions."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pip_pins(requirements):
    pins = {}
    for req in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([0-9][A-Za-z0-9.+]*)", req.strip())
        assert match, f"pyproject requirement {req!r} is not pinned exactly (name==version)"
        pins[match[1].lower()] = match[2]
    return pins


def pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return _pip_pins(requirements)


def environment_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins, python = {}, None
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip = [r for r in dep["pip"] if not r.startswith("-")]
            pins.update(_pip_pins(pip))
            continue
        name, _, version = dep.partition("=")
        if name == "python":
            python = version
        elif name != "pip":
            assert version, f"environment.yml: {dep!r} has no version"
            pins[name.lower()] = version
    return pins, python


def test_same_packages_and_versions():
    pins, _ = environment_pins()
    assert pins == pyproject_pins()


def test_same_python():
    _, python = environment_pins()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={python},<3.{int(python.split('.')[1]) + 1}"


def test_environment_installs_the_project_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip


def test_torch_is_pinned_exactly():
    # a range would let pip pull a newer multi-GB CUDA build
    assert pyproject_pins()["torch"] == "2.13.0"
