"""The heatmap helper: a shared colour scale when asked, clear errors when asked badly."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from klloss import plotting

FRAME = pd.DataFrame([[-0.5, 0.25], [1.0, 0.0]], index=["sample 0", "sample 1"], columns=["class 0", "class 1"])


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
