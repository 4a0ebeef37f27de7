# klloss: `make report` builds the teaching site, `make test` runs every check.
# Both set up what they need on first use: a virtual environment in .venv with pinned versions.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

# Notebooks run with the environment pinned in tools/nbenv.py, both when refreshed
# (tools/refresh.py) and when nbval re-runs them (notebooks/conftest.py).

# MathJax for the offline site, pinned by tools/site/package-lock.json
SITE_JS := tools/site/node_modules/mathjax/es5/tex-svg-full.js

.PHONY: all setup browser cxx test report refresh nb lab bench clean

all: report

$(READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[notebooks,test]'
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

## test: unit and property tests, then nbval on every notebook (all failures reported)
## cxx: a C++ compiler, which torch.compile needs on the CPU (tests/test_compile.py, notebook 06)
cxx:
	@command -v g++ >/dev/null || { \
	  echo "installing Debian's g++"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q g++; }

test: $(READY) $(SITE_JS) browser cxx
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env -p no:cacheprovider

## refresh: re-execute every notebook in place from a clean kernel (deterministic)
refresh: $(READY) cxx
	$(PY) tools/refresh.py notebooks/*.ipynb

## nb NB=01: refresh one notebook, by number or name pattern
nb: $(READY) cxx
	$(PY) tools/refresh.py notebooks/$(NB)*.ipynb

## report: execute every notebook (regenerating figures/), write the HTML site to build/site/
report: $(READY) $(SITE_JS) cxx
	$(PY) tools/refresh.py --out build/executed notebooks/*.ipynb
	rm -rf build/site
	$(PY) tools/build_site.py build/executed build/site

## bench: forward + backward timings side by side, 1 thread, on this CPU as it is and capped at
## AVX2; writes data/bench/cpu-<model>-<capability>.json and figures/bench-<same>.png for each
BENCH_CAPABILITIES ?= native avx2
bench: $(READY)
	@for cap in $(BENCH_CAPABILITIES); do \
	  echo "== ATEN_CPU_CAPABILITY=$$cap"; \
	  if [ "$$cap" = native ]; then unset ATEN_CPU_CAPABILITY; else export ATEN_CPU_CAPABILITY=$$cap; fi; \
	  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) benchmarks/bench_loss.py || exit 1; \
	done

## lab: open JupyterLab on notebooks/ in the project's environment
lab: $(READY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[lab]'
	$(PY) -m jupyter lab notebooks

clean:
	rm -rf build
