# klloss: `make report` builds the teaching site, `make test` runs every check, `make help` lists
# the rest. Each sets up what it needs on first use: a virtual environment in .venv with pinned
# versions. A target's line `## name: what it does` is what `make help` prints.

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
LINTED := klloss course tests tools benchmarks $(wildcard notebooks/*.py)

# Notebooks run with the environment pinned in course/nbenv.py, both when refreshed
# (tools/refresh.py) and when nbval re-runs them (notebooks/conftest.py). Their stored outputs
# are exact on x86-64 Linux; elsewhere nbval runs in lax mode: every notebook must run and pass
# its own assertions, but printed digits are not compared (docs/reproducibility.md).
NBVAL ?= $(if $(filter Linux-x86_64,$(shell uname -s)-$(shell uname -m)),--nbval,--nbval-lax)

# MathJax for the offline site and Vega for the explorer (notebook 07), pinned by
# tools/site/package-lock.json (npm ci installs both; this file stands for the install)
SITE_JS := tools/site/node_modules/mathjax/es5/tex-svg-full.js

# notebooks named by their paired scripts, so that a new notebook needs only its script:
# $(call notebooks,01) is notebooks/01-walkthrough.ipynb, $(call notebooks,) every notebook
notebooks = $(patsubst %.py,%.ipynb,$(filter-out notebooks/conftest.py,$(wildcard notebooks/$(1)*.py)))

.PHONY: all help setup check font browser cxx test lint test-oracle test-oldest lock report student refresh nb times zh lab lab-zh lab-student lab-check screenshots docs bench experiments clean experiments-small

all: report

## help: list the targets and what each does
help:
	@sed -n 's/^## \([^:]*\): \(.*\)/\1\t\2/p' $(MAKEFILE_LIST) | awk -F '\t' '{ printf "  make %-18s %s\n", $$1, $$2 }'

$(READY): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; v == "$(LOCK_PYTHON)" or sys.exit(f"$(LOCK) pins Python $(LOCK_PYTHON)'"'"'s packages; $(PYTHON) is {v}: make PYTHON=python$(LOCK_PYTHON)")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c $(LOCK) 'torch==$(TORCH)' -e '.[notebooks,test]'
	touch $@

## setup: build .venv, every package at the lock's version (make does it first where needed)
setup: $(READY)

$(SITE_JS): tools/site/package-lock.json
	npm ci --prefix tools/site --no-audit --no-fund
	touch $@

## font: install Debian's CJK font, which the Chinese figures and pages are drawn in (if missing)
# the notebooks draw every figure twice, the second time with its words in Chinese, in Noto Sans
# CJK SC (course/plotting.py); Chromium shows the Chinese pages in it. Installs as root, or
# through sudo.
font:
	@dpkg-query -W -f='$${Status}' fonts-noto-cjk 2>/dev/null | grep -q 'install ok installed' || { \
	  echo "installing Debian's fonts-noto-cjk"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q fonts-noto-cjk; }

## browser: install Debian's Chromium and the CJK font, for the browser tests (only what is missing)
# Chromium opens the site as a reader would. Installs as root, or through sudo.
browser: font
	@command -v chromium >/dev/null || dpkg-query -W -f='$${Status}' chromium 2>/dev/null \
	  | grep -q 'install ok installed' || { \
	  echo "installing Debian's chromium"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium; }

## cxx: install g++ if there is no C++ compiler (torch.compile needs one on the CPU: notebook 06)
cxx:
	@command -v g++ >/dev/null || { \
	  echo "installing Debian's g++"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q g++; }

## test: every check (lint, oracle on every Python, oldest versions, all tests, nbval, the Chinese
## notebooks in notebooks/zh/ included); all failures reported
test: $(READY) $(SITE_JS) browser cxx
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory test-oracle || status=1; \
	$(MAKE) --no-print-directory test-oldest || status=1; \
	$(PY) -m pytest tests notebooks $(NBVAL) --nbval-current-env -p no:cacheprovider || status=1; \
	exit $$status

## lint: ruff's checks and formatter over the library, course, tests, tools, benchmarks and paired scripts
lint: $(READY)
	@status=0; \
	$(PY) -m ruff check $(LINTED) || status=1; \
	$(PY) -m ruff format --check $(LINTED) || status=1; \
	exit $$status

## check: the inner loop, under a minute: lint, then the tests not marked slow, wheel or browser
# Hypothesis draws CHECK_EXAMPLES examples per property here (make test: 150).
CHECK_EXAMPLES ?= 10
check: $(READY) $(SITE_JS)
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	KLLOSS_EXAMPLES=$(CHECK_EXAMPLES) $(PY) -m pytest tests -m "not slow and not wheel and not browser" -q -p no:cacheprovider || status=1; \
	exit $$status

## test-oracle: the oracle's tests with NumPy alone (no torch) on Python 3.10 to 3.13
ORACLE_PYTHONS ?= 3.10 3.11 3.12 3.13
test-oracle:
	$(PYTHON) -m tools.oracle_pythons $(ORACLE_PYTHONS)

## test-oldest: the library's tests on the oldest numpy and pandas that pyproject.toml allows
test-oldest: $(READY)
	$(PY) -m tools.oldest

## lock: rewrite constraints.txt (pins what pyproject.toml added; UPGRADE=1: newest of all but torch)
# from fresh environments under build/lock/; every other pin is kept unless UPGRADE=1.
lock: $(READY)
	$(PY) -m tools.lock $(if $(UPGRADE),--upgrade)

## refresh: re-execute every notebook from its paired script, in place (byte-identical if nothing changed)
# from a clean kernel in the pinned environment (course/nbenv.py); writes figures/ too.
refresh: $(READY) $(SITE_JS) cxx font
	$(PY) -m tools.refresh $(call notebooks,)

## nb NB=01: refresh one notebook, by number or name pattern
nb: $(READY) $(SITE_JS) cxx font
	$(PY) -m tools.refresh $(call notebooks,$(NB))

## zh: write the Chinese notebooks, notebooks/zh/, from the English notebooks and their translation
## files (notebooks/NN-name.zh.md): the same code and outputs, the prose in Chinese. Stops, naming
## each, at a cell or Markdown output whose translation is missing or older than its English
## (`python -m tools.translate status` shows them with their English text). Run it after `make nb`.
zh: $(READY)
	$(PY) -m tools.translate build

## times: time every notebook, pinned and with the CPU's own code paths, for the README's table
times: $(READY) $(SITE_JS) cxx font
	$(PY) -m tools.time_notebooks
	$(PY) -m tools.readme

## docs: rewrite the generated parts of the README and docs/ (notebook table, glossary, benchmarks, imports)
docs: $(READY)
	$(PY) -m tools.readme

## report: execute every notebook (regenerating figures/), write the HTML site to build/site/, its
## Chinese edition (from the same executed notebooks and the translation files) to build/site/zh/,
## and the student edition (every worked solution removed, not folded) to build/site-student/
report: $(READY) $(SITE_JS) cxx font
	$(PY) -m tools.refresh --out build/executed $(call notebooks,)
	$(PY) -m tools.translate build --src build/executed --out build/executed-zh
	rm -rf build/site build/site-student
	$(PY) -m tools.build_site build/executed build/site --zh build/executed-zh --student build/site-student

## student: write the student notebooks (every worked solution removed) to build/student/notebooks/,
## the Chinese ones to build/student/notebooks/zh/, cut from the committed notebooks (nothing runs)
student: $(READY)
	rm -rf build/student
	$(PY) -m tools.student notebooks build/student/notebooks --zh notebooks/zh

## bench: time the loss against plain KD on this CPU, as it is and capped at AVX2, and the loss
## from hidden states against the whole logits (data/bench/, data/bench/hidden/)
# forward + backward, side by side, 1 thread; writes data/bench/cpu-<model>-<capability>.json
# and figures/bench-<same>.png for each capability; then, once, on the CPU as it is (about 3
# minutes), data/bench/hidden/cpu-<model>-<capability>.json and figures/bench-hidden-<same>.png.
BENCH_CAPABILITIES ?= native avx2
bench: $(READY)
	@for cap in $(BENCH_CAPABILITIES); do \
	  echo "== ATEN_CPU_CAPABILITY=$$cap"; \
	  if [ "$$cap" = native ]; then unset ATEN_CPU_CAPABILITY; else export ATEN_CPU_CAPABILITY=$$cap; fi; \
	  export TORCHINDUCTOR_CACHE_DIR=$(CURDIR)/build/inductor-bench-$$cap; \
	  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m benchmarks.bench_loss || exit 1; \
	done
	@echo "== the loss from hidden states against the whole logits"
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m benchmarks.bench_hidden

## experiments: re-train every student notebook 05 reads (minutes), into data/experiments/digits.json
# all seeds, the teachers trained on flipped labels, in the notebooks' pinned environment, with
# their provenance; the notebook itself re-runs only a few of them.
experiments: $(READY)
	$(PY) -m tools.run_experiments

## experiments-small: the same made small, for students to vary (a minute), into data/experiments/digits-small.json
# course.experiments.SMALL: the same code, the same record and one thread, as `make experiments`;
# a student varies it with `.venv/bin/python -m tools.run_experiments --small --seeds 0-9 --betas
# 0.5,1.5 --alphas 0.5 --flip 0.2` (written to build/experiments/digits-small-varied.json).
experiments-small: $(READY)
	$(PY) -m tools.run_experiments --small

## lab: open JupyterLab on notebook 01, with what every notebook needs to re-run (Vega, MathJax, g++)
# The server runs from the repository root, where jupytext.toml is (jupytext looks for it from a
# notebook's folder up to the server root): jupytext, in the lab extra, then pairs each notebook
# with its script. PYTHONPATH lets the kernels, which start in notebooks/, import the course.
# JupyterLab refuses to run as root (as in a container) unless told --allow-root. LAB_ARGS adds
# options (tools/lab_check.py runs it headless).
lab: $(READY) $(SITE_JS) cxx font
	$(PIP) install --quiet -c $(LOCK) -e '.[lab]'
	PYTHONPATH=$(CURDIR) $(PY) -m jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) --ServerApp.root_dir=. $(LAB_ARGS) notebooks/01-walkthrough.ipynb

## lab-zh: the same, on the Chinese cheat-sheet (notebooks/zh/: generated by `make zh`, not paired
## with a script, and re-run there its Markdown outputs come out in Chinese)
lab-zh: $(READY) $(SITE_JS) cxx font
	$(PIP) install --quiet -c $(LOCK) -e '.[lab]'
	PYTHONPATH=$(CURDIR) $(PY) -m jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) --ServerApp.root_dir=. $(LAB_ARGS) notebooks/zh/00-cheat-sheet.ipynb

## lab-student: the same, on the student notebooks (`make student` writes them first)
lab-student: student $(SITE_JS) cxx font
	$(PIP) install --quiet -c $(LOCK) -e '.[lab]'
	PYTHONPATH=$(CURDIR) $(PY) -m jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) --ServerApp.root_dir=. $(LAB_ARGS) build/student/notebooks/01-walkthrough.ipynb

## lab-check: start `make lab` headless and run every notebook's cells there, as a reader would
lab-check: $(READY) font
	$(PY) -m tools.lab_check

## screenshots: photograph the explorer (notebook 07) at two settings, into build/screenshots/
screenshots: $(READY) $(SITE_JS) browser
	$(PY) -m tools.explorer_screenshots

## clean: remove build/ (the site, executed copies, caches, screenshots)
clean:
	rm -rf build
