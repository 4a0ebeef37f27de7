"""The heatmap helper: a shared colour scale when asked, clear errors when asked badly."""

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
