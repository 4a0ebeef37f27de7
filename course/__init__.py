"""The course around klloss: what the notebooks, tools and benchmarks use, and the wheel does not ship.

It imports the library (:mod:`klloss`) and may know the checkout's folders (``figures/``,
``data/``, ``tools/site/``); the library never imports it. Modules:

* :mod:`course.glossary` -- the one table of names and symbols, with its Chinese column;
* :mod:`course.i18n` -- the Chinese edition's translation files, Markdown outputs in either language,
  and tables and figures rendered in both;
* :mod:`course.vocabulary` -- the Chinese of every label in the notebooks' tables and figures;
* :mod:`course.analysis` -- what the loss does to a student (gradient, q*, identities);
* :mod:`course.errata` -- the article's printed numbers against the correct ones;
* :mod:`course.experiments` -- students trained on real data (notebook 05);
* :mod:`course.realdata` -- the comparisons notebook 05 and its appendices read, and the tables they print;
* :mod:`course.explorer` -- the explorable page of notebook 07;
* :mod:`course.bench` -- benchmark helpers (notebook 06, ``make bench``);
* :mod:`course.plotting` -- saving figures to ``figures/``, and drawing them again in Chinese.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The checkout's root folder."""

_MODULES = (
    "analysis",
    "bench",
    "errata",
    "experiments",
    "explorer",
    "glossary",
    "i18n",
    "nbenv",
    "plotting",
    "realdata",
    "vocabulary",
)


def __getattr__(name):
    # `course.plotting` and the rest load on first use: `from course import nbenv` must not import
    # torch, since nbenv sets the environment torch reads when it loads
    if name in _MODULES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'course' has no attribute {name!r}")
