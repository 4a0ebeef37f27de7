"""nbval runs each notebook in a kernel started from this process: give it the same
environment tools/refresh.py used when the stored outputs were written."""

from course import nbenv

nbenv.apply()
