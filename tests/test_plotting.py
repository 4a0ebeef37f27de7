"""The heatmap helper: a shared colour scale when asked, clear errors when asked badly."""

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from course import plotting

FRAME = pd.DataFrame(
    [[-0.5, 0.25], [1.0, 0.0]], index=["sample 0", "sample 1"], columns=["class 0", "class 1"]
)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_default_scale_is_symmetric_around_the_centre(ax):
    image = plotting.heatmap(ax, FRAME, "t")
    assert (image.norm.vmin, image.norm.vmax) == (-1.0, 1.0)


def test_a_shared_scale_is_used_as_given(ax):
    image = plotting.heatmap(ax, FRAME, "t", vmin=-3.0, vmax=2.0)
    assert (image.norm.vmin, image.norm.vmax) == (-3.0, 2.0)
    assert [t.get_text() for t in ax.texts] == ["-0.500", "0.250", "1.000", "0.000"]


def test_vmin_without_vmax_is_refused(ax):
    with pytest.raises(ValueError, match="vmin and vmax"):
        plotting.heatmap(ax, FRAME, "t", vmin=0.0)


def test_an_empty_scale_is_refused(ax):
    with pytest.raises(ValueError, match="vmin must be below vmax"):
        plotting.heatmap(ax, FRAME, "t", vmin=1.0, vmax=1.0)


def test_a_flat_frame_looks_flat_on_a_shared_scale(ax):
    frame = pd.DataFrame([[8.0, 8.1], [8.05, 8.0]])
    image = plotting.heatmap(ax, frame, "flat", vmin=8.0, vmax=38.0, center=None)
    assert image.get_clim() == (8.0, 38.0)
    # without a shared scale the same frame spans its own range, which hides how flat it is
    assert plotting.heatmap(ax, frame, "flat", center=None).get_clim() == (8.0, 8.1)


def test_save_writes_the_same_bytes_for_the_same_figure(tmp_path):
    # no version or date in the file: a refresh that draws the same figure leaves it unchanged
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    first = plotting.save(fig, "f", tmp_path).read_bytes()
    again = plotting.save(fig, "f", tmp_path).read_bytes()
    plt.close(fig)
    assert first == again
    assert first.startswith(b"\x89PNG")
    assert b"Software" not in first
    assert b"matplotlib" not in first.lower()


def test_save_without_a_folder_writes_into_the_checkouts_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(plotting, "FIGURES_DIR", tmp_path / "figures")
    fig, _ = plt.subplots()
    path = plotting.save(fig, "g")
    plt.close(fig)
    assert path == Path("figures") / "g.png"
    assert (tmp_path / "figures" / "g.png").is_file()
