# klloss: `make report` builds the teaching site, `make test` runs every check.
# Both set up what they need on first use: a virtual environment in .venv with pinned versions.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

# Notebooks run with the environment pinned in tools/nbenv.py, both when refreshed
# (tools/refresh.py) and when nbval re-runs them (notebooks/conftest.py).
.PHONY: all setup test report refresh nb lab bench clean

all: report

$(READY): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[notebooks,test]'
	touch $@

setup: $(READY)

## test: unit and property tests, then nbval on every notebook (all failures reported)
test: $(READY)
	$(PY) -m pytest tests notebooks --nbval --nbval-current-env -p no:cacheprovider

## refresh: re-execute every notebook in place from a clean kernel (deterministic)
refresh: $(READY)
	$(PY) tools/refresh.py notebooks/*.ipynb

## nb NB=01: refresh one notebook, by number or name pattern
nb: $(READY)
	$(PY) tools/refresh.py notebooks/$(NB)*.ipynb

## report: execute every notebook, regenerate figures/, write the HTML site to build/site/
report: $(READY)
	$(PY) tools/refresh.py --out build/executed notebooks/*.ipynb

## lab: open JupyterLab on notebooks/ in the project's environment
lab: $(READY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[lab]'
	$(PY) -m jupyter lab notebooks

clean:
	rm -rf build
