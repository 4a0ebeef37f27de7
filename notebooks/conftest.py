"""nbval runs each notebook in a kernel started from this process: give it the same
environment tools/refresh.py used when the stored outputs were written."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import nbenv

nbenv.apply()
