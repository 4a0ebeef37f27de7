# klloss: `make report` builds the teaching site, `make test` runs every check.
# Both set up what they need on first use: a virtual environment in .venv with pinned versions.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready
PIP := $(PY) -m pip --disable-pip-version-check

# The one lock: the exact version of every package any target installs (tools/lock.py writes it).
# torch is always named at its pinned version, so pip never picks a build from the range in
# pyproject.toml (on Linux, PyPI's default torch is a CUDA build of several GB).
LOCK := constraints.txt
TORCH := $(shell sed -n 's/^torch==\([^ ;]*\)$$/\1/p' $(LOCK))
LOCK_PYTHON := $(shell sed -n 's/^\# setup-python: //p' $(LOCK))

# What `make lint` checks; notebooks/*.py holds the notebooks' paired scripts (and conftest.py).
LINTED := klloss tests tools benchmarks $(wildcard notebooks/*.py)

# Notebooks run with the environment pinned in tools/nbenv.py, both when refreshed
# (tools/refresh.py) and when nbval re-runs them (notebooks/conftest.py).

# MathJax for the offline site, pinned by tools/site/package-lock.json
SITE_JS := tools/site/node_modules/mathjax/es5/tex-svg-full.js

.PHONY: all setup browser test lint test-oracle test-oldest lock report refresh nb lab bench clean

all: report

$(READY): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; v == "$(LOCK_PYTHON)" or sys.exit(f"$(LOCK) pins Python $(LOCK_PYTHON)'"'"'s packages; $(PYTHON) is {v}: make PYTHON=python$(LOCK_PYTHON)")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c $(LOCK) 'torch==$(TORCH)' -e '.[notebooks,test]'
	touch $@

setup: $(READY)

$(SITE_JS): tools/site/package-lock.json
	npm ci --prefix tools/site --no-audit --no-fund
	touch $@

## browser: Debian's Chromium, for the test that opens the site as a reader would
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

## test: lint, the oracle on every Python, the library on its oldest dependencies, then the unit,
## property, wheel and browser tests and nbval on every notebook; every part runs, all failures reported
test: $(READY) $(SITE_JS) browser
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory test-oracle || status=1; \
	$(MAKE) --no-print-directory test-oldest || status=1; \
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env -p no:cacheprovider || status=1; \
	exit $$status

## lint: ruff's checks and its formatter, over the package, tests, tools, benchmarks and paired scripts
lint: $(READY)
	@status=0; \
	$(PY) -m ruff check $(LINTED) || status=1; \
	$(PY) -m ruff format --check $(LINTED) || status=1; \
	exit $$status

## test-oracle: the oracle's tests with NumPy alone (no torch) on Python 3.10 to 3.13
ORACLE_PYTHONS ?= 3.10 3.11 3.12 3.13
test-oracle:
	$(PYTHON) tools/oracle.py $(ORACLE_PYTHONS)

## test-oldest: the library's tests on the oldest numpy and pandas that pyproject.toml allows
test-oldest: $(READY)
	$(PY) tools/oldest.py

## lock: rewrite constraints.txt from fresh environments: pins what pyproject.toml added and keeps
## the rest; `make lock UPGRADE=1` takes the newest version of everything but torch
lock: $(READY)
	$(PY) tools/lock.py $(if $(UPGRADE),--upgrade)

## refresh: re-execute every notebook in place from a clean kernel (deterministic)
refresh: $(READY)
	$(PY) tools/refresh.py notebooks/*.ipynb

## nb NB=01: refresh one notebook, by number or name pattern
nb: $(READY)
	$(PY) tools/refresh.py notebooks/$(NB)*.ipynb

## report: execute every notebook (regenerating figures/), write the HTML site to build/site/
report: $(READY) $(SITE_JS)
	$(PY) tools/refresh.py --out build/executed notebooks/*.ipynb
	rm -rf build/site
	$(PY) tools/build_site.py build/executed build/site

## bench: forward + backward timings side by side; writes data/bench/ and figures/
bench: $(READY)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) benchmarks/bench_loss.py

## lab: open JupyterLab on notebooks/ in the project's environment
lab: $(READY)
	$(PIP) install --quiet -c $(LOCK) -e '.[lab]'
	$(PY) -m jupyter lab notebooks

clean:
	rm -rf build
