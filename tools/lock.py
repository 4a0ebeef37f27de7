"""Write constraints.txt, the one lock that every `make` target installs from: `make lock`.

    make lock             # pin what pyproject.toml added, keep every other pin
    make lock UPGRADE=1   # the newest versions of everything but torch, which keeps its pin

No version is chosen by hand: the tool builds fresh virtual environments under build/lock/ (it
never touches .venv) and writes down what pip installed in them.

- On the Python that runs it (the one `make setup` uses): every requirement of pyproject.toml,
  every extra included, with torch at the version the lock pins. On this machine that is the CPU
  build on its disk; a local label such as ``+cpu`` is not written, so the pin matches the
  build pip finds elsewhere too.
- On every other Python that tools/oracle_pythons.py tests (3.10, 3.12, 3.13): the oracle's
  NumPy, pytest and hypothesis.

A package installed at one version on every Python gets one plain line; one whose version
differs between Pythons gets a line per version, with a marker naming its Pythons (pip ignores
the lines whose marker does not hold). A constraint only fixes the version of a package that
something requires: a package the lock does not name is resolved as usual, so a package needed
only on another platform still installs there.
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import tomllib
from packaging.utils import canonicalize_name
from packaging.version import Version

from tools import oracle_pythons as oracle

ROOT = oracle.ROOT
LOCK = oracle.LOCK
BUILD = ROOT / "build" / "lock"
SETUP_PYTHON = re.compile(r"^# setup-python: (\S+)$", re.M)
TORCH = re.compile(r"^torch==([^\s;]+)$", re.M)

HEADER = """\
# The exact version of every package the project installs. `make setup` installs from it with
# `pip install -c constraints.txt` on Python {setup}; `make test-oracle` on Python {oracle}.
# Written by `make lock` (tools/lock.py) from fresh environments: edit pyproject.toml, not this.
# A line with a marker holds on the Pythons it names, a plain line on every Python.
# setup-python: {setup}
"""


def pyproject_requirements():
    """Every requirement of pyproject.toml, its extras included, as written there."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return requirements


def installed(python, left_out):
    """{canonical name: public version} of what the environment of ``python`` holds."""
    listing = subprocess.run(
        [python, *oracle.PIP, "list", "--format=json"], capture_output=True, text=True, check=True
    ).stdout
    found = {canonicalize_name(d["name"]): Version(d["version"]).public for d in json.loads(listing)}
    return {name: version for name, version in found.items() if name not in left_out}


def _key(python_version):
    return tuple(int(part) for part in python_version.split("."))


def render(pins, setup_python):
    """The lock's text from ``pins``: {python version: {name: version}}."""
    by_name = defaultdict(dict)
    for python_version, packages in pins.items():
        for name, version in packages.items():
            by_name[name][python_version] = version
    oracle_pythons = ", ".join(sorted({*pins, *oracle.PYTHONS}, key=_key))
    lines = [HEADER.format(setup=setup_python, oracle=oracle_pythons).rstrip("\n")]
    for name in sorted(by_name):
        pythons_of = defaultdict(list)
        for python_version in sorted(by_name[name], key=_key):
            pythons_of[by_name[name][python_version]].append(python_version)
        if len(pythons_of) == 1:
            lines.append(f"{name}=={next(iter(pythons_of))}")
            continue
        for version, pythons in pythons_of.items():
            marker = " or ".join(f'python_version == "{p}"' for p in pythons)
            lines.append(f"{name}=={version} ; {marker}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="re-resolve every pin but torch's")
    args = parser.parse_args()

    current = LOCK.read_text(encoding="utf-8") if LOCK.is_file() else ""
    torch = TORCH.search(current)
    if not torch:
        sys.exit(f"{LOCK} must pin torch (a line torch==VERSION): the lock never chooses it")
    setup_python = "{}.{}".format(*sys.version_info[:2])
    stated = SETUP_PYTHON.search(current)
    if stated and stated[1] != setup_python:
        sys.exit(f"{LOCK} is written for Python {stated[1]}; run this with that Python, not {setup_python}")

    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text(f"torch=={torch[1]}\n" if args.upgrade else current, encoding="utf-8")
        setup = oracle.venv(
            BUILD / f"setup-py{setup_python}",
            sys.executable,
            [f"torch=={torch[1]}", *pyproject_requirements()],
            constraints,
        )
        # pip comes with every environment and is never required; klloss is never installed here
        pins = {setup_python: installed(setup, left_out={"pip", "klloss"})}
        for python_version in oracle.PYTHONS:
            if python_version == setup_python:
                continue  # make test-oracle installs the same pins there as make setup
            python = oracle.find_python(python_version)
            if python is None:
                sys.exit(f"no Python {python_version} found: the lock pins the oracle's packages for it")
            env = oracle.venv(
                BUILD / f"oracle-py{python_version}", python, oracle.ORACLE_REQUIREMENTS, constraints
            )
            # older venvs bundle setuptools (and wheel) unasked; the oracle requires neither
            pins[python_version] = installed(env, left_out={"pip", "setuptools", "wheel"})

    LOCK.write_text(render(pins, setup_python), encoding="utf-8")
    print(f"wrote {LOCK.relative_to(ROOT)}: {sum(map(len, pins.values()))} pins on {len(pins)} Pythons")


if __name__ == "__main__":
    main()
