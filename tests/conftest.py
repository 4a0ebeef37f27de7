"""Shared fixtures and the hypothesis profile for the klloss tests."""

import os

import pytest
from hypothesis import HealthCheck, settings

try:
    import torch
except ModuleNotFoundError:
    pass  # `make test-oracle`: NumPy alone
else:
    # Without a GPU, Triton's kernels run in its CPU interpreter (tests/test_triton.py). Triton
    # reads this when klloss._triton defines them, so it is set before klloss is imported.
    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")

import klloss

try:
    import matplotlib
except ModuleNotFoundError:
    pass  # `make test-oracle` runs tests/test_oracle.py with NumPy, pytest and hypothesis alone
else:
    matplotlib.use("Agg")

settings.register_profile(
    "klloss",
    deadline=None,
    # KLLOSS_EXAMPLES=5000 for a long search; the default keeps `make test` quick
    max_examples=int(os.environ.get("KLLOSS_EXAMPLES", "150")),
    # CI draws the same examples every run, so a submission's result does not depend on luck;
    # local runs keep exploring (and KLLOSS_EXAMPLES=5000 explores much further)
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("klloss")


@pytest.fixture(scope="session")
def inductor_cache(tmp_path_factory):
    """A torch.compile cache of this test session's own. The default on-disk cache
    (/tmp/torchinductor_<user>) does not tell apart code built under different
    ATEN_CPU_CAPABILITY settings: after a run under one, compiled code under another gave a loss
    1.7 % off (seen here with torch 2.13)."""
    return str(tmp_path_factory.mktemp("inductor"))


@pytest.fixture
def sample():
    return klloss.data.load_sample()


# Tests marked by what they use, so that `make check` (-m "not slow and not wheel and not
# browser") leaves them out and `make test` runs them: {fixture: marker}.
MARKED_BY_FIXTURE = {
    "browser": "browser",  # starts Chromium
    "site": "browser",  # builds the HTML site from every notebook
    "editions": "browser",  # the same, both editions (teacher's and student's)
    "student_site": "browser",
    "synthetic_site": "browser",
    "inductor_cache": "slow",  # torch.compile: seconds per test
    "ddp_gradients": "slow",  # spawns two processes
    "teacher": "slow",  # trains networks on the digits (test_experiments)
}


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture, marker in MARKED_BY_FIXTURE.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
