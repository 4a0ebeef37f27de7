"""The data files: the sample inputs, and a faithful transcription of the article's numbers."""

import re
from pathlib import Path

import numpy as np
import pytest

import klloss

ARTICLE = Path(__file__).resolve().parents[2] / "shared" / "source" / "klloss_v2-article.txt"


def test_sample_has_the_article_shapes(sample):
    assert sample.input.shape == sample.target.shape == sample.logits_t.shape == (2, 5)
    assert sample.label.tolist() == [3, 2]
    assert sample.beta == 1.5


def test_printed_steps_are_in_the_article_order():
    steps = klloss.data.load_article_printed()
    assert list(steps) == [
        "logits_t",
        "input",
        "target",
        "label",
        "beta",
        "log_input",
        "log_target",
        "target_prob",
        "output",
        "margin",
        "weight",
        "weighted",
        "per_sample",
        "loss",
    ]
    assert steps["weighted"].values.shape == (2, 5, 2)
    assert steps["margin"].text[0][4] == "-0.0000"
    assert np.signbit(steps["margin"].values[0, 4])


def test_printed_inputs_equal_the_sample(sample):
    steps = klloss.data.load_article_printed()
    for key in ("logits_t", "input", "target", "label"):
        np.testing.assert_array_equal(steps[key].values, getattr(sample, key))
    assert steps["beta"].values == sample.beta


@pytest.mark.skipif(not ARTICLE.exists(), reason="the article lives in ../shared/source beside the clone")
def test_transcription_matches_the_article_number_for_number():
    text = ARTICLE.read_text(encoding="utf-8")
    run = text[text.index("输入参数:") : text.index("函数返回值")]
    # every number the article prints in its run-through, in order, as written
    in_article = re.findall(r"-?\d+\.\d+|(?<![\w.])\d+(?![\w.])", run)
    ours = []
    for step in klloss.data.load_article_printed().values():
        ours.extend(np.array(step.text, dtype=object).ravel().tolist())
    assert in_article == ours
