"""klloss.plotting.heatmap: the colour scale it is given is the one it draws."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from klloss import plotting


def test_heatmap_uses_a_shared_scale_when_given():
    frame = pd.DataFrame([[8.0, 8.1], [8.05, 8.0]])
    fig, ax = plt.subplots()
    image = plotting.heatmap(ax, frame, "flat", vmin=8.0, vmax=38.0, center=None)
    assert image.get_clim() == (8.0, 38.0)
    # without a shared scale the same frame spans its own range, which hides how flat it is
    own = plotting.heatmap(ax, frame, "flat", center=None)
    assert own.get_clim() == (8.0, 8.1)
    plt.close(fig)


def test_heatmap_wants_both_ends_of_a_scale():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="vmin and vmax must be given together"):
        plotting.heatmap(ax, pd.DataFrame([[1.0]]), "x", vmin=0.0)
    plt.close(fig)
