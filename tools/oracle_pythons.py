"""The oracle's tests on every supported Python, with NumPy alone (no torch): `make test-oracle`.

    python -m tools.oracle_pythons              # Python 3.10, 3.11, 3.12 and 3.13
    python -m tools.oracle_pythons 3.10 3.13    # some of them

For each Python it keeps a virtual environment in build/oracle/py3.X holding only
ORACLE_REQUIREMENTS (NumPy, pytest, hypothesis) at the versions constraints.txt pins for that
Python, checks that torch cannot be imported there, and runs ORACLE_TESTS from the repository
root, so klloss is imported from the clone: klloss.oracle and klloss.data need NumPy alone.
Every Python is tried before the exit status reports the failures.

An interpreter is found as `python3.X` on PATH, or else through pyenv (`pyenv prefix 3.X`).
One that cannot be found fails the run under CI (CI=true) and is skipped, loudly, elsewhere.
Standard library only, so any Python 3 can run it.
"""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints.txt"
BUILD = ROOT / "build" / "oracle"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
ORACLE_REQUIREMENTS = ("numpy", "pytest", "hypothesis")
ORACLE_TESTS = ("tests/test_oracle.py",)
PIP = ("-m", "pip", "--disable-pip-version-check")


def _reports(exe, version):
    """Whether `exe` runs and is Python `version` (a pyenv shim can exist and fail)."""
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def find_python(version):
    """A working interpreter for ``version`` ("3.10"), or None."""
    candidates = [shutil.which(f"python{version}")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        prefix = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True)
        if prefix.returncode == 0 and prefix.stdout.strip():
            home = Path(prefix.stdout.split()[0])
            candidates.append(str(home / "bin" / f"python{version}"))
    return next((exe for exe in candidates if exe and _reports(exe, version)), None)


def venv(path, python, requirements, constraints):
    """A virtual environment at ``path``, made by ``python``, with ``requirements`` installed
    under the constraints file ``constraints``; its Python. Kept while the interpreter, the
    requirements and the constraints stay the same, rebuilt from scratch otherwise."""
    exe = path / "bin" / "python"
    stamp = path / ".ready"
    key = hashlib.sha256(
        "\n".join([str(python), *requirements, Path(constraints).read_text(encoding="utf-8")]).encode()
    ).hexdigest()
    if exe.is_file() and stamp.is_file() and stamp.read_text() == key:
        return exe
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(path)], check=True)
    subprocess.run([exe, *PIP, "install", "--quiet", "-c", str(constraints), *requirements], check=True)
    stamp.write_text(key)
    return exe


def run_one(version):
    """Build the environment for ``version`` and run the oracle's tests there:
    "passed", "failed", or "skipped" (no such Python here, outside CI)."""
    python = find_python(version)
    if python is None:
        print(f"oracle: no Python {version} found (python{version} on PATH, or pyenv)", flush=True)
        return "failed" if os.environ.get("CI") == "true" else "skipped"
    exe = venv(BUILD / f"py{version}", python, ORACLE_REQUIREMENTS, LOCK)
    no_torch = "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)"
    if subprocess.run([exe, "-c", no_torch]).returncode != 0:
        print(f"oracle: torch is importable in {exe}: this run would not test NumPy alone", flush=True)
        return "failed"
    versions = subprocess.run(
        [exe, "-c", "import sys, numpy; print(sys.version.split()[0], 'with NumPy', numpy.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print(f"oracle: Python {versions}, no torch", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    tests = subprocess.run([exe, "-m", "pytest", "-p", "no:cacheprovider", *ORACLE_TESTS], cwd=ROOT, env=env)
    return "passed" if tests.returncode == 0 else "failed"


def main(versions):
    results = {version: run_one(version) for version in versions or PYTHONS}
    for outcome in ("passed", "failed", "skipped"):
        names = [version for version, result in results.items() if result == outcome]
        if names:
            print(f"oracle: {outcome} on Python {', '.join(names)}")
    return 1 if "failed" in results.values() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
