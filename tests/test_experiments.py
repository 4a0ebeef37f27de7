"""klloss.experiments on a tiny configuration: learning happens, runs are reproducible, and the
pieces (losses, ECE, the split) do what they say."""

import dataclasses
import math

import pandas as pd
import pytest
import torch

from klloss import experiments as ex

TINY = dataclasses.replace(ex.Config(), epochs=3, teacher_epochs=5)


@pytest.fixture(scope="module")
def data():
    return ex.load_digits_split(TINY)


@pytest.fixture(scope="module")
def teacher(data):
    return ex.train_teacher(data, TINY)


def test_split_is_stratified_and_standardised(data):
    assert len(data.y_train) + len(data.y_test) == 1797
    assert data.classes == 10
    train_share = torch.bincount(data.y_train) / len(data.y_train)
    test_share = torch.bincount(data.y_test) / len(data.y_test)
    assert torch.allclose(train_share, test_share, atol=0.01)
    assert data.x_train.mean().abs() < 1e-5
    assert torch.isfinite(data.x_test).all()
    assert data.x_test.abs().max() <= 16  # a nearly blank pixel does not blow up


def test_students_learn_far_above_chance(data, teacher):
    results = ex.run(data, teacher, seeds=[0], betas=[1.5], config=TINY)
    assert set(results["loss"]) == {"CE only", "KD, T = 1", "KD, T = 4", "klloss_v2, beta = 1.5"}
    assert (results["accuracy"] > 0.6).all(), results  # chance is 0.1
    assert ex.evaluate(teacher, data.x_test, data.y_test)["accuracy"] > 0.8


def test_same_seed_same_numbers_other_seed_other_numbers(data, teacher):
    first = ex.run(data, teacher, seeds=[0, 1], betas=[0.5], config=TINY)
    again = ex.run(data, teacher, seeds=[0, 1], betas=[0.5], config=TINY)
    pd.testing.assert_frame_equal(first, again)
    by_seed = first.set_index(["loss", "seed"])["nll"].unstack()
    assert (by_seed[0] != by_seed[1]).all()


def test_klloss_term_at_infinite_beta_is_kd_at_temperature_one():
    gen = torch.Generator().manual_seed(0)
    s, z = (
        torch.randn(32, 10, generator=gen, dtype=torch.float64),
        torch.randn(32, 10, generator=gen, dtype=torch.float64),
    )
    y = torch.randint(0, 10, (32,), generator=gen)
    ours = ex.klloss_kd(0.7, math.inf)(s, z, y)
    kd = ex.plain_kd(0.7, 1.0)(s, z, y)
    assert ours.item() == pytest.approx(kd.item(), rel=1e-12)


def test_expected_calibration_error():
    labels = torch.tensor([0, 1, 0, 1])
    confident_right = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]])
    assert ex.expected_calibration_error(confident_right, labels) == pytest.approx(0.1)
    half_wrong = torch.tensor([[0.8, 0.2], [0.8, 0.2], [0.8, 0.2], [0.2, 0.8]])
    # one bin (0.8), accuracy 3/4: |0.8 - 0.75|
    assert ex.expected_calibration_error(half_wrong, labels) == pytest.approx(0.05)


def test_negative_weight_fraction():
    logits = torch.tensor([[0.0, 20.0, 1.0]])
    assert ex.negative_weight_fraction(logits, torch.tensor([0]), beta=1.0) == pytest.approx(1 / 3)
    assert ex.negative_weight_fraction(logits, torch.tensor([1]), beta=1.0) == 0.0


def test_summary_has_mean_and_spread(data, teacher):
    results = ex.run(data, teacher, seeds=[0, 1], betas=[5.0], config=TINY)
    summary = ex.summarise(results)
    assert list(summary.columns[:2]) == ["accuracy", "accuracy std"]
    row = summary.loc[(TINY.alpha, "CE only")]
    assert row["accuracy"] == pytest.approx(results[results["loss"] == "CE only"]["accuracy"].mean())
