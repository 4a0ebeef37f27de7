"""Shared fixtures and the hypothesis profile for the klloss tests."""

import os

import matplotlib
import pytest
from hypothesis import HealthCheck, settings

import klloss

matplotlib.use("Agg")

settings.register_profile(
    "klloss",
    deadline=None,
    # KLLOSS_EXAMPLES=5000 for a long search; the default keeps `make test` quick
    max_examples=int(os.environ.get("KLLOSS_EXAMPLES", "150")),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("klloss")


@pytest.fixture
def sample():
    return klloss.data.load_sample()
