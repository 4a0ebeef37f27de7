"""Small plotting helpers the notebooks share: annotated heatmaps and saving to ``figures/``.

matplotlib is imported lazily, so ``import klloss`` does not need it.
"""

from pathlib import Path

from . import ROOT

FIGURES_DIR = ROOT / "figures"


def save(fig, name, directory=None):
    """Save ``fig`` as ``figures/<name>.png`` (no version or date metadata, so the file depends
    only on what is drawn) and return the path, relative to the repository (or in ``directory``,
    when given, and return that path)."""
    folder = FIGURES_DIR if directory is None else Path(directory)
    folder.mkdir(exist_ok=True, parents=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    return path.relative_to(FIGURES_DIR.parent) if directory is None else path


def heatmap(ax, frame, title, fmt="{:.3f}", cmap="RdBu_r", center=0.0, vmin=None, vmax=None):
    """Draw a samples x classes DataFrame as a heatmap with every value written in its cell.

    With ``center`` set, the colour scale is symmetric around it (diverging colours). Panels to
    be compared pass one ``vmin``/``vmax`` (shared colour scale; the returned image feeds
    ``fig.colorbar``); then ``center`` is ignored.
    """
    import numpy as np

    values = frame.to_numpy(dtype=float)
    if (vmin is None) != (vmax is None):
        raise ValueError("vmin and vmax: give both (a shared colour scale) or neither")
    if vmin is not None:
        if not vmin < vmax:
            raise ValueError(f"vmin must be below vmax, got vmin={vmin}, vmax={vmax}")
    elif center is None:
        vmin, vmax = values.min(), values.max()
    else:
        span = max(abs(values.max() - center), abs(values.min() - center)) or 1.0
        vmin, vmax = center - span, center + span
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(values.shape[1]), [str(c) for c in frame.columns], fontsize=8)
    ax.set_yticks(range(values.shape[0]), [str(i) for i in frame.index], fontsize=8)
    ax.set_title(title, fontsize=10)
    for (i, j), v in np.ndenumerate(values):
        red, green, blue, _ = image.cmap(image.norm(v))
        light = 0.299 * red + 0.587 * green + 0.114 * blue > 0.5  # perceived brightness
        ax.text(
            j, i, fmt.format(v), ha="center", va="center", fontsize=8, color="black" if light else "white"
        )
    return image


# ---- figures in both languages (course.i18n.translate_outputs) ----

CJK_FONT = "Noto Sans CJK SC"  # Debian's fonts-noto-cjk: `make font` installs it
LATIN_FONT = "DejaVu Sans"  # matplotlib's own, for the Latin and Greek letters and the digits


def cjk_font():
    """Make sure matplotlib knows :data:`CJK_FONT` (a font cache written before the font was
    installed does not list it); raise RuntimeError, saying how to install it, if it is absent."""
    from matplotlib import font_manager

    def known():
        return any(entry.name == CJK_FONT for entry in font_manager.fontManager.ttflist)

    if not known():
        for path in font_manager.findSystemFonts():
            if "NotoSansCJK" in Path(path).name:
                font_manager.fontManager.addfont(path)
    if not known():
        raise RuntimeError(
            f"the Chinese figures need the font {CJK_FONT!r}: `make font` installs Debian's fonts-noto-cjk"
        )
    return CJK_FONT


def _texts(fig):
    """Every non-empty text of ``fig`` that is drawn (titles, labels, legends, annotations, ticks)."""
    from matplotlib.text import Text

    return [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]


def describe(fig, say=lambda text: text):
    """Alt text for ``fig``: its titles (the figure's and its sub-figures', or else its panels'),
    or else its first panel's axis labels; ``say`` gives the words in the reader's language."""
    from matplotlib.figure import SubFigure

    titles = [f._suptitle.get_text() for f in [fig, *fig.findobj(SubFigure)] if f._suptitle]
    for ax in fig.axes if not titles else ():  # the panels' titles where the figure has none
        titles += [ax.get_title(loc) for loc in ("left", "center", "right") if ax.get_title(loc)]
    if not titles and fig.axes:
        ax = fig.axes[0]
        labels = [label for label in (ax.get_ylabel(), ax.get_xlabel()) if label]
        titles = [
            say("{y} against {x}").format(y=labels[0], x=labels[1]) if len(labels) == 2 else " ".join(labels)
        ]
    titles = [" ".join(t.split()) for t in titles if t.strip()]
    return say("Figure: ") + say("; ").join(dict.fromkeys(titles))


def _said(formatter, say):
    """A tick formatter whose labels go through ``say`` (the Chinese of ``class 0``), and that
    otherwise is ``formatter`` (its offset text, its locations)."""
    from matplotlib.ticker import Formatter

    class Said(Formatter):
        def __getattr__(self, name):
            return getattr(formatter, name)

        def __call__(self, x, pos=None):
            return say(formatter(x, pos))

        def format_ticks(self, values):
            return [say(label) for label in formatter.format_ticks(values)]

        def set_locs(self, locs):
            formatter.set_locs(locs)

        def get_offset(self):
            return formatter.get_offset()

    said = Said()
    said.axis = formatter.axis
    return said


def _tickers(fig):
    """The major and minor tickers of every axis of ``fig`` (each holds its formatter)."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            yield axis.major
            yield axis.minor


def in_chinese(fig, render):
    """Draw ``fig`` with its words in Chinese (:func:`course.vocabulary.say`) and the Chinese
    font, call ``render()``, put the English back; return (its result, the Chinese alt text, the
    figure's Chinese texts, the texts with no Chinese). A glyph the font lacks is an error."""
    import warnings

    from .vocabulary import say

    font = cjk_font()
    fig.canvas.draw()  # every text in place, tick labels included
    texts, tickers = _texts(fig), list(_tickers(fig))
    saved = [(t, t.get_text(), t.get_fontproperties().get_family()) for t in texts]
    formatters = [(ticker, ticker.formatter) for ticker in tickers]
    missing = []

    def chinese(text):
        said = say(text)
        if said is None:
            missing.append(text)
        return text if said is None else said

    try:
        for text, english, _ in saved:
            text.set_text(chinese(english))
            text.get_fontproperties().set_family([LATIN_FONT, font])
        for ticker, formatter in formatters:
            ticker.formatter = _said(formatter, chinese)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = render()
        tofu = [str(w.message) for w in caught if "missing from font" in str(w.message)]
        if tofu:
            raise RuntimeError(f"a Chinese figure text has glyphs the font lacks: {tofu[:3]}")
        words = [t.get_text() for t in _texts(fig)]
        alt = describe(fig, lambda text: say(text) or text)
    finally:
        for text, english, family in saved:
            text.set_text(english)
            text.get_fontproperties().set_family(family)
        for ticker, formatter in formatters:
            ticker.formatter = formatter
    return result, alt, list(dict.fromkeys(words)), list(dict.fromkeys(missing))


def figure_bundle(fig, png):
    """IPython's rendering of ``fig`` in the reader's language: its PNG (``png(fig)``, the inline
    backend's) and alt text, the Chinese ones in the metadata."""
    from . import i18n

    english = {"image/png": png(fig), "text/plain": describe(fig)}
    image, alt, words, missing = in_chinese(fig, lambda: png(fig))
    return i18n.both(english, {"image/png": image, "text/plain": alt}, missing, texts=words)
