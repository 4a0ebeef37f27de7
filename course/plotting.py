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
