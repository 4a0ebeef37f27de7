"""course.experiments: on a tiny configuration, learning happens and runs are reproducible; the
pieces (losses, our softened extension, ECE, the split, flipped labels, the mixed optimum, paired
statistics) agree with independent references; the stored experiment (data/experiments/) is the
current plan, made under the pins, and a re-run subset reproduces it bit for bit. The small
configuration students vary is a part of the full plan, stored within its budget, and holds the
full run's numbers for the same students."""

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

import course
import klloss
from course import experiments as ex

ROOT = Path(__file__).resolve().parents[1]

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


# ---------------------------------------------------------------- a stored top K of the teacher


@pytest.mark.parametrize("tail", ["bucket", "renormalize"])
@pytest.mark.parametrize("beta", [0.5, 1.5])
def test_topk_term_with_every_class_stored_is_the_klloss_term(tail, beta):
    # K = C leaves no tail: both tails give klloss_kd's loss and gradient
    s, z, y = _batch(n=24, c=10, seed=3)
    store = klloss.topk_store(z, y, k=10)
    s_topk, s_full = s.clone().requires_grad_(True), s.clone().requires_grad_(True)
    topk = ex.klloss_kd_topk(0.4, beta, tail)(s_topk, store, y)
    full = ex.klloss_kd(0.4, beta)(s_full, z, y)
    topk.backward()
    full.backward()
    assert topk.item() == pytest.approx(full.item(), rel=1e-12)
    assert torch.allclose(s_topk.grad, s_full.grad, rtol=1e-10, atol=1e-14)


def test_topk_term_at_one_class_renormalized_is_cross_entropy_where_the_label_is_the_top():
    # S = {y}: the renormalised teacher is one-hot at y, w_y = k and normalize divides by k
    s, z, y = _batch(n=24, c=10, seed=4)
    y = z.argmax(1)
    store = klloss.topk_store(z, y, k=1)
    topk = ex.klloss_kd_topk(0.3, 1.5, "renormalize")(s, store, y)
    assert topk.item() == pytest.approx(F.cross_entropy(s, y).item(), rel=1e-12)
    bucket = ex.klloss_kd_topk(0.3, 1.5, "bucket")(s, store, y)
    assert bucket.item() != pytest.approx(topk.item(), rel=1e-3)  # the bucket keeps the tail's mass


def test_teacher_rows_index_logits_and_stores():
    z = torch.arange(12.0).reshape(4, 3)
    rows = torch.tensor([2, 0])
    assert torch.equal(ex.teacher_rows(z, rows), z[rows])
    store = klloss.topk_store(z, torch.tensor([0, 1, 2, 0]), k=2)
    picked = ex.teacher_rows(store, rows)
    assert isinstance(picked, klloss.TopKStore)
    for got, full in zip(picked, store, strict=True):
        assert torch.equal(got, full[rows])


def test_students_taught_by_a_full_store_train_as_with_the_logits(data, teacher):
    # train() must hand each batch its own rows of the store: a store of every class trains the
    # student as the logits do, up to float32 rounding
    with torch.no_grad():
        z = teacher(data.x_train)
    store = klloss.topk_store(z, data.y_train, k=data.classes)
    by_store = ex.train_student(data, ex.klloss_kd_topk(0.5, 1.5, "bucket"), store, TINY, seed=1)
    by_logits = ex.train_student(data, ex.klloss_kd(0.5, 1.5), z, TINY, seed=1)
    for a, b in zip(by_store.parameters(), by_logits.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-4)
    # each row given its neighbour's: the store then contradicts the labels, and is refused by name
    shuffled = klloss.TopKStore(*(x.roll(1, 0) for x in store))
    with pytest.raises(ValueError, match="label_logprob disagrees with topk_logprobs"):
        ex.train_student(data, ex.klloss_kd_topk(0.5, 1.5, "bucket"), shuffled, TINY, seed=1)


def test_train_student_is_the_student_run_trains(data, teacher):
    results = ex.run(data, teacher, seeds=[2], betas=[1.5], config=TINY, names=["klloss_v2, beta = 1.5"])
    with torch.no_grad():
        z = teacher(data.x_train)
    student = ex.train_student(data, ex.klloss_kd(TINY.alpha, 1.5), z, TINY, seed=2)
    assert ex.evaluate(student, data.x_test, data.y_test) == {
        name: results.iloc[0][name] for name in ("accuracy", "nll", "ece", "p_true")
    }


# ---------------------------------------------------------------- our softened extension


def _batch(n=16, c=7, seed=0, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    s = scale * torch.randn(n, c, generator=gen, dtype=torch.float64)
    z = scale * torch.randn(n, c, generator=gen, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=gen)
    return s, z, y


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_softened_extension_at_infinite_beta_is_kd_at_that_temperature(temperature):
    s, z, y = _batch()
    ours = ex.klloss_kd_soft(0.6, math.inf, temperature)(s, z, y)
    kd = ex.plain_kd(0.6, temperature)(s, z, y)
    assert ours.item() == pytest.approx(kd.item(), rel=1e-12)


@pytest.mark.parametrize("beta", [0.3, 1.5, 40.0])
def test_softened_extension_against_the_oracle(beta):
    # (1 - alpha) CE + alpha T^2 klloss_v2(z, s/T, z/T, y, beta) / k, each piece computed in NumPy
    s, z, y = _batch(seed=1)
    alpha, temperature = 0.7, 4.0
    s_np, z_np, y_np = s.numpy(), z.numpy(), y.numpy()
    ce = -klloss.oracle.log_softmax(s_np)[np.arange(len(y_np)), y_np].mean()
    distill = klloss.oracle.klloss_v2(z_np, s_np / temperature, z_np / temperature, y_np, beta)
    expected = (1 - alpha) * ce + alpha * temperature**2 * distill / klloss.ARTICLE_OFFSET
    ours = ex.klloss_kd_soft(alpha, beta, temperature)(s, z, y)
    assert ours.item() == pytest.approx(expected, rel=1e-12)
    # at T = 1 the extension is the article's combination, klloss_kd
    assert ex.klloss_kd_soft(alpha, beta, 1.0)(s, z, y).item() == pytest.approx(
        ex.klloss_kd(alpha, beta)(s, z, y).item(), rel=1e-12
    )


def test_softened_extension_gradient_reaches_the_student_only():
    s, z, y = _batch(n=5, c=4, seed=2)
    s.requires_grad_(True)
    z.requires_grad_(True)
    loss_fn = ex.klloss_kd_soft(0.5, 1.5, 4.0)
    assert torch.autograd.gradcheck(lambda s_: loss_fn(s_, z, y), (s,))
    loss_fn(s, z, y).backward()
    assert z.grad is None or torch.count_nonzero(z.grad) == 0


# ---------------------------------------------------------------- our ablation and clamped variant


def _teacher_batch(n=16, c=7, seed=0, scale=3.0, label_on_top=False):
    s, z, y = _batch(n, c, seed, scale)
    if label_on_top:  # the label first by 1: every weight >= k
        z = z.clone()
        z[torch.arange(n), y] = z.max(1).values + 1.0
    return s, z, y


@pytest.mark.parametrize("temperature", [1.0, 4.0])
@pytest.mark.parametrize("beta", [0.5, 1.5, 40.0])
def test_clamped_variant_is_klloss_where_no_weight_is_negative(temperature, beta):
    s, z, y = _teacher_batch(label_on_top=True)
    reference = ex.klloss_kd(0.7, beta) if temperature == 1 else ex.klloss_kd_soft(0.7, beta, temperature)
    ours = ex.klloss_kd_part(0.7, beta, "clamped", temperature)
    assert ours(s, z, y).item() == pytest.approx(reference(s, z, y).item(), rel=1e-12)


def test_clamped_variant_against_the_oracle_with_negative_weights():
    # (1 - alpha) CE + alpha (1/k) mean_i sum_c max(w, 0) p (log p - log q), in NumPy
    s, z, y = _teacher_batch(seed=3)
    alpha, beta, k = 0.6, 0.5, klloss.ARTICLE_OFFSET
    s_np, z_np, y_np = s.numpy(), z.numpy(), y.numpy()
    rows = np.arange(len(y_np))
    w = np.maximum((z_np[rows, y_np][:, None] - z_np) / beta + k, 0)
    assert (w == 0).any()  # the batch has negative weights, clamped
    log_p, log_q = klloss.oracle.log_softmax(z_np), klloss.oracle.log_softmax(s_np)
    distill = (w * np.exp(log_p) * (log_p - log_q)).sum(1).mean() / k
    expected = (1 - alpha) * -log_q[rows, y_np].mean() + alpha * distill
    assert ex.klloss_kd_part(alpha, beta, "clamped")(s, z, y).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_the_two_parts_recompose_klloss(temperature):
    # per row, klloss / k = (W / k) KL(q* || q) + L_min / k: the scale times the target-only term;
    # the scale-only term is (W / k) KL(p || q), which at beta = inf is plain KD
    s, z, y = _teacher_batch(seed=4, label_on_top=True)
    beta, k = 1.5, klloss.ARTICLE_OFFSET
    scale, q_star = ex.reweighting(z, y, beta, temperature)
    t2 = temperature**2
    per_row = klloss.klloss_v2(z, s / temperature, z / temperature, y, beta, reduction="none") / k
    parts = course.analysis.reweighted_kd(z, s / temperature, z / temperature, y, beta)
    torch.testing.assert_close(scale, parts.big_w / k, rtol=1e-12, atol=0)
    torch.testing.assert_close(q_star, parts.q_star, rtol=1e-12, atol=1e-15)
    target = ex.klloss_kd_part(1.0, beta, "target", temperature)(s, z, y)  # alpha = 1: the term alone
    assert target.item() == pytest.approx(t2 * parts.kl.mean().item(), rel=1e-12)
    assert (scale * parts.kl + parts.min_loss / k).numpy() == pytest.approx(per_row.numpy(), rel=1e-12)
    kl_p = (z / temperature).softmax(1) * (
        (z / temperature).log_softmax(1) - (s / temperature).log_softmax(1)
    )
    scaled = ex.klloss_kd_part(1.0, beta, "scale", temperature)(s, z, y)
    assert scaled.item() == pytest.approx(t2 * (scale * kl_p.sum(1)).mean().item(), rel=1e-12)
    for part in ("target", "scale"):
        at_infinity = ex.klloss_kd_part(0.7, math.inf, part, temperature)(s, z, y)
        assert at_infinity.item() == pytest.approx(ex.plain_kd(0.7, temperature)(s, z, y).item(), rel=1e-12)


def test_parts_reach_the_student_only_and_refuse_a_bad_part():
    s, z, y = _teacher_batch(n=5, c=4, seed=2)
    s.requires_grad_(True)
    z.requires_grad_(True)
    for part in ex.PARTS:
        loss_fn = ex.klloss_kd_part(0.5, 0.5, part, 4.0)
        assert torch.autograd.gradcheck(lambda s_, f=loss_fn: f(s_, z, y), (s,))
        loss_fn(s, z, y).backward()
        assert z.grad is None
    with pytest.raises(ValueError, match="part"):
        ex.klloss_kd_part(0.5, 1.5, "both")
    assert ex.part_name("clamped", 1.0, 0.5) == "ours: max(w, 0), T = 1, beta = 0.5"


def test_reweighting_on_a_wrong_row():
    # z = (0, 10, 1), y = 0, beta = 1.5: every weight > 0, W < k, and the class ranked above the
    # label but below sum_c p_c z_c gets more than the teacher gives it (q*/p = w / W = 5.5)
    z, y = torch.tensor([[0.0, 10.0, 1.0]], dtype=torch.float64), torch.tensor([0])
    scale, q_star = ex.reweighting(z, y, 1.5)
    p = z.softmax(1)
    assert scale.item() < 1
    assert (q_star[0, 0] / p[0, 0]).item() == pytest.approx(1 / scale.item(), rel=1e-12)
    assert (q_star[0, 2] / p[0, 2]).item() == pytest.approx((8 - 1 / 1.5) / (8 * scale.item()), rel=1e-12)
    assert (q_star[0, 2] / p[0, 2]).item() > 5


def test_sampling_se():
    # the batched ECE of every resample equals expected_calibration_error on that resample
    gen = torch.Generator().manual_seed(0)
    probs = torch.randn(200, 10, generator=gen).mul(2).softmax(1).double()
    labels = torch.randint(0, 10, (200,), generator=gen)
    confidence, prediction = probs.max(1)
    draws = torch.randint(0, 200, (5, 200), generator=gen)
    batched = ex.resampled_ece(confidence, (prediction == labels).double(), draws)
    for r in range(5):
        reference = ex.expected_calibration_error(probs[draws[r]], labels[draws[r]])
        assert batched[r].item() == pytest.approx(reference, rel=1e-12, abs=1e-15)
    # the standard error of an accuracy is close to the binomial sqrt(a (1 - a) / n)
    model = torch.nn.Linear(64, 10)
    data = ex.load_digits_split(TINY)
    se = ex.sampling_se(model, data.x_test, data.y_test)
    accuracy = ex.evaluate(model, data.x_test, data.y_test)["accuracy"]
    binomial = math.sqrt(accuracy * (1 - accuracy) / len(data.y_test))
    assert se["se_accuracy"] == pytest.approx(binomial, rel=0.1)
    assert se == ex.sampling_se(model, data.x_test, data.y_test)  # seeded
    assert all(v > 0 for v in se.values())


# ---------------------------------------------------------------- the wrong teacher's pieces


def test_flip_labels_changes_exactly_the_requested_share():
    labels = torch.arange(1000) % 10
    flipped = ex.flip_labels(labels, 0.2, seed=3, classes=10)
    changed = flipped != labels
    assert int(changed.sum()) == 200
    assert flipped.min() >= 0
    assert flipped.max() < 10
    assert torch.equal(flipped, ex.flip_labels(labels, 0.2, seed=3, classes=10))
    assert not torch.equal(flipped, ex.flip_labels(labels, 0.2, seed=4, classes=10))
    assert torch.equal(ex.flip_labels(labels, 0.0, seed=3), labels)
    # every wrong class is reachable: the new labels of the flipped rows use all ten classes
    assert len(torch.unique(flipped[changed])) == 10


@pytest.mark.parametrize("fraction", [-0.1, 1.5, "0.2", None])
def test_flip_labels_rejects_a_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        ex.flip_labels(torch.tensor([0, 1]), fraction, seed=0)


def test_negative_weight_rows():
    # row 0: class 1 beats the label 0 by 20 > k * beta = 8, so w_1 = -20/1 + 8 < 0;
    # row 1: label is the top class
    logits = torch.tensor([[0.0, 20.0, 1.0], [0.0, 20.0, 1.0]])
    labels = torch.tensor([0, 1])
    assert ex.negative_weight_rows(logits, labels, beta=1.0) == 0.5
    assert ex.negative_weight_rows(logits, labels, beta=2.5) == 0.0  # 20 / 2.5 = 8: w = 0, not negative
    assert ex.negative_weight_rows(logits, labels, beta=2.4) == 0.5
    # a row counts once, however many of its weights are negative
    assert ex.negative_weight_rows(torch.tensor([[0.0, 20.0, 30.0]]), torch.tensor([0]), beta=1.0) == 1.0


# ---------------------------------------------------------------- the optimum of the mixed loss


@pytest.mark.parametrize(("alpha", "beta"), [(0.5, 0.5), (0.9, 1.5), (0.3, 5.0)])
def test_mixed_optimum_minimises_the_combined_loss(alpha, beta):
    # independent reference: minimise (1 - alpha) CE + alpha klloss_v2 / k over free student logits
    _s, z, y = _batch(n=6, c=5, seed=5, scale=1.0)
    z = z.abs().neg() + 3.0 * torch.nn.functional.one_hot(y, 5)  # the label on top: every weight >= 0
    student = torch.zeros_like(z, requires_grad=True)
    loss_fn = ex.klloss_kd(alpha, beta)
    optimiser = torch.optim.LBFGS(
        [student],
        lr=1,
        max_iter=500,
        tolerance_grad=1e-13,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimiser.zero_grad()
        loss = loss_fn(student, z, y)
        loss.backward()
        return loss

    optimiser.step(closure)
    q = ex.mixed_optimum(z, y, beta, alpha)
    assert torch.allclose(student.detach().softmax(1), q, atol=1e-7)
    assert torch.allclose(q.sum(1), torch.ones(6, dtype=torch.float64))


def test_mixed_optimum_limits():
    _s, z, y = _batch(n=8, c=6, seed=6)
    z = z.abs().neg() + 20.0 * torch.nn.functional.one_hot(y, 6)
    p = z.softmax(1)
    onehot = torch.nn.functional.one_hot(y, 6).double()
    # beta -> inf: plain KD at T = 1, whose optimum is (1 - alpha) e_y + alpha p
    assert torch.allclose(ex.mixed_optimum(z, y, math.inf, 0.3), 0.7 * onehot + 0.3 * p, atol=1e-15)
    # alpha = 1: the pure-klloss optimum of notebook 04
    assert torch.allclose(
        ex.mixed_optimum(z, y, 1.5, 1.0), course.analysis.stationary_student(z, z, y, 1.5), atol=1e-15
    )
    # alpha = 0: cross-entropy alone wants the label with certainty
    assert torch.equal(ex.mixed_optimum(z, y, 1.5, 0.0), onehot)


def test_mixed_optimum_refuses_negative_weights_and_bad_alpha():
    logits, labels = torch.tensor([[0.0, 20.0]]), torch.tensor([0])
    with pytest.raises(ValueError, match="weights must all be >= 0"):
        ex.mixed_optimum(logits, labels, 1.0, 0.5)
    with pytest.raises(ValueError, match="alpha"):
        ex.mixed_optimum(logits, labels, 100.0, 1.5)


# ---------------------------------------------------------------- paired statistics


def test_paired_test_matches_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    a = rng.normal(0.95, 0.01, 10)
    b = a - rng.normal(0.002, 0.003, 10)
    result = ex.paired_test(a - b, margin=0.005)
    reference = stats.ttest_rel(a, b)
    assert result["t"] == pytest.approx(reference.statistic, rel=1e-10)
    assert result["p"] == pytest.approx(reference.pvalue, rel=1e-8)
    interval = reference.confidence_interval(0.95)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((interval.low, interval.high), rel=1e-10)
    assert result["mean"] == pytest.approx((a - b).mean(), rel=1e-12)
    assert result["n"] == 10
    # equivalence (TOST): the larger of the two one-sided p-values against -margin and +margin
    above = stats.ttest_1samp(a - b, -0.005, alternative="greater").pvalue
    below = stats.ttest_1samp(a - b, 0.005, alternative="less").pvalue
    assert result["p_equivalence"] == pytest.approx(max(above, below), rel=1e-8)


@pytest.mark.slow  # thousands of simulated samples
def test_the_t_interval_covers_as_stated_where_the_percentile_bootstrap_does_not():
    # 2000 samples of n = 10 normal differences: the 95 % t-interval covers the true mean about
    # 95 % of the time, the percentile bootstrap of the mean clearly less (it is too narrow)
    rng = np.random.default_rng(2)
    samples = rng.normal(1.0, 2.0, size=(2000, 10))
    t_covers = [
        (lambda r: r["ci_low"] <= 1.0 <= r["ci_high"])(ex.paired_test(d, margin=1.0)) for d in samples
    ]
    draws = rng.integers(0, 10, size=(1000, 10))  # the resamples of the seeds, shared by every sample
    bootstrap_covers = []
    for chunk in np.split(samples, 4):
        low, high = np.quantile(chunk[:, draws].mean(axis=2), [0.025, 0.975], axis=1)
        bootstrap_covers.extend((low <= 1.0) & (high >= 1.0))
    assert 0.935 < np.mean(t_covers) < 0.965
    assert np.mean(bootstrap_covers) < 0.925


def test_paired_test_degenerate_and_counts():
    same = ex.paired_test([0.0, 0.0, 0.0], margin=0.01)
    assert (same["ci_low"], same["ci_high"], same["p"], same["p_equivalence"]) == (0.0, 0.0, 1.0, 0.0)
    assert math.isnan(same["t"])
    constant = ex.paired_test([0.02, 0.02], margin=0.01)
    assert (constant["p"], constant["p_equivalence"]) == (0.0, 1.0)
    counts = ex.paired_test([3e-5, -2e-5, 0.0, 0.002], margin=0.01)
    assert (counts["above"], counts["below"]) == (2, 1)


@pytest.mark.parametrize(
    ("bad", "match"), [([1.0], "at least 2"), ([[1.0, 2.0]], "1-d"), ([0.0, math.nan], "finite")]
)
def test_paired_test_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        ex.paired_test(bad, margin=0.01)
    with pytest.raises(ValueError, match="confidence"):
        ex.paired_test([0.0, 1.0], margin=0.01, confidence=1.5)
    with pytest.raises(ValueError, match="margin"):
        ex.paired_test([0.0, 1.0], margin=0.0)


def test_holm_by_hand():
    # m = 4: sorted 0.01, 0.02, 0.03, 0.04 -> 0.04, 0.06, 0.06 (running maximum of 0.06), 0.06;
    # returned in the input's order
    assert ex.holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert ex.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert ex.holm([0.001]) == pytest.approx([0.001])
    with pytest.raises(ValueError, match="p_values"):
        ex.holm([0.5, 1.5])


def test_holm_against_its_definition():
    # Holm: in increasing order, reject while p_(j) < level / (m - j + 1); stop at the first that is not
    rng = np.random.default_rng(3)
    for _ in range(200):
        p = rng.uniform(0, 0.05, size=8) ** rng.uniform(0.5, 2)
        rejected = np.zeros(8, dtype=bool)
        for j, i in enumerate(np.argsort(p)):
            if p[i] >= 0.05 / (8 - j):
                break
            rejected[i] = True
        assert np.array_equal(ex.holm(p) < 0.05, rejected)


def _toy_results():
    rows = []
    for seed, (a, b, ce) in enumerate([(0.90, 0.91, 0.80), (0.92, 0.92, 0.81), (0.95, 0.93, 0.82)]):
        for alpha in (0.5, 0.9):
            rows += [
                {"loss": "A", "alpha": alpha, "seed": seed, "accuracy": a + alpha / 100},
                {"loss": "B", "alpha": alpha, "seed": seed, "accuracy": b},
            ]
        rows.append({"loss": "CE only", "alpha": 0.5, "seed": seed, "accuracy": ce})
    return pd.DataFrame(rows)


def test_paired_differences_pair_seed_with_seed():
    results = _toy_results()
    d = ex.paired_differences(results, "accuracy", "A", "B")
    assert d.loc[(0.5, 0)] == pytest.approx(0.90 + 0.005 - 0.91)
    assert d.loc[(0.9, 2)] == pytest.approx(0.95 + 0.009 - 0.93)
    # CE only, trained once, is the baseline of every alpha
    ce = ex.paired_differences(results, "accuracy", "B", "CE only")
    assert list(ce.loc[0.9]) == pytest.approx([0.11, 0.11, 0.11])
    with pytest.raises(ValueError, match="no results for loss 'C'"):
        ex.paired_differences(results, "accuracy", "C", "B")
    missing = results.drop(index=results.index[(results["loss"] == "B") & (results["seed"] == 2)])
    with pytest.raises(ValueError, match="same seeds"):
        ex.paired_differences(missing, "accuracy", "A", "B")
    table = ex.compare(results, "accuracy", [("A", "B")])
    assert list(table.index) == [(0.5, "A", "B"), (0.9, "A", "B")]
    assert (table["n"] == 3).all()


def _family(means, sd=0.001, n=10, margin=0.005):
    """A compare()-like table of one comparison per mean, normal differences of that mean."""
    rng = np.random.default_rng(5)
    rows = []
    for i, mean in enumerate(means):
        d = mean + sd * rng.standard_normal(n)
        rows.append({"alpha": 0.5, "loss": f"L{i}", "baseline": "B", **ex.paired_test(d, margin=margin)})
    return pd.DataFrame(rows).set_index(["alpha", "loss", "baseline"])


def test_settle_adjusts_over_the_whole_family():
    # a clear difference, a clear equivalence, a real difference inside the margin, and one that
    # is significant alone (p between 0.05 / family size and 0.05) but not after adjustment
    table = _family([0.02, 0.0, -0.002])
    d = np.array([0.0020, -0.0005, 0.0031, 0.0009, 0.0040, -0.0012, 0.0026, 0.0001, 0.0017, 0.0033]) * 2
    borderline = ex.paired_test(d, margin=0.001)
    assert 0.0005 < borderline["p"] < 0.05
    alone = pd.DataFrame([{"alpha": 0.5, "loss": "M", "baseline": "B", **borderline}]).set_index(
        ["alpha", "loss", "baseline"]
    )
    settled = ex.settle({"accuracy": table, "nll": alone})
    verdicts = list(settled["accuracy"]["verdict"]) + list(settled["nll"]["verdict"])
    assert verdicts == ["higher", "equivalent", "lower", "not settled"]
    assert list(settled["accuracy"]["within_margin"]) == [False, True, True]
    # the adjusted p-values are Holm's over all 8 tests (4 differences, 4 equivalences)
    raw = np.concatenate(
        [np.r_[table["p"], alone["p"]], np.r_[table["p_equivalence"], alone["p_equivalence"]]]
    )
    adjusted = ex.holm(raw)
    assert list(settled["accuracy"]["p_holm"]) == pytest.approx(list(adjusted[:3]))
    assert settled["nll"]["p_equivalence_holm"].iloc[0] == pytest.approx(adjusted[7])
    # alone (a family of one), the borderline difference is settled
    assert ex.settle({"nll": alone})["nll"]["verdict"].iloc[0] == "higher"


def test_to_json_is_exact_and_writes_one_row_per_line():
    record = {
        "provenance": {"date": "x", "plan": {"seeds": [0, 1]}},
        "runs": [
            {"loss": "A", "accuracy": 0.1 + 0.2, "history": [1 / 3, 2 / 3]},
            {"loss": "B", "beta": None},
        ],
    }
    text = ex.to_json(record)
    assert json.loads(text) == record  # floats round-trip exactly
    assert (
        '{"loss": "A", "accuracy": 0.30000000000000004, "history": [0.3333333333333333, 0.6666666666666666]}'
        in text.splitlines()[-4]
    )
    with pytest.raises(ValueError, match="not JSON compliant"):
        ex.to_json({"x": math.nan})  # JSON has no NaN


# ---------------------------------------------------------------- the stored experiment


@pytest.fixture(scope="module")
def stored():
    return ex.load_stored()


def test_stored_experiment_is_the_current_plan_under_the_pins(stored):
    from course import nbenv

    provenance = stored["provenance"]
    assert provenance["config"] == dataclasses.asdict(ex.Config()), "Config changed: run `make experiments`"
    assert provenance["plan"] == json.loads(json.dumps(dataclasses.asdict(ex.Plan()))), (
        "Plan changed: run `make experiments`"
    )
    assert provenance["torch_cpu_capability"] == "DEFAULT"
    assert provenance["torch_threads"] == 1
    assert all(nbenv.ENV[name] == value for name, value in provenance["environment"].items())
    for key in ("date", "wall_seconds", "python", "torch", "numpy", "scikit-learn", "cpu"):
        assert provenance[key], key


def test_stored_experiment_is_complete(stored):
    plan = ex.Plan()
    main = ex.frame(stored["main"]["runs"])
    per_loss = main.groupby(["alpha", "loss"])["seed"].apply(sorted)
    assert all(seeds == list(plan.seeds) for seeds in per_loss)
    per_alpha = 2 + len(plan.betas) + len(plan.soft_betas) + 2 * len(plan.ablation)
    assert len(per_loss) == 1 + len(plan.alphas) * per_alpha
    for temperature, beta in plan.ablation:
        assert ex.part_name("target", temperature, beta) in set(main["loss"])
    teacher = stored["main"]["teacher"]
    assert ex.stored_logits(teacher, "train").shape == (1257, 10)
    assert ex.stored_logits(teacher, "test").shape == (540, 10)
    assert [w["fraction"] for w in stored["wrong_teacher"]] == list(plan.noise)
    for wrong in stored["wrong_teacher"]:
        runs = ex.frame(wrong["runs"])
        ours = len(ex.PARTS) * len(plan.wrong_ours) if wrong["fraction"] > 0 else 0
        assert len(runs) == len(plan.noise_seeds) * (1 + len(plan.alphas) * (2 + len(plan.betas) + ours))
        assert all(len(h) == ex.Config().epochs for h in runs["history"])
        assert set(wrong["teacher"]["negative_weight_rows"]) == {f"{b:g}" for b in plan.betas}
        z = ex.stored_logits(wrong["teacher"])
        for beta, share in wrong["teacher"]["negative_weight_rows"].items():
            assert (
                klloss.negative_weight_share(z, ex.load_digits_split().y_train, float(beta)).item() == share
            )
    for row in stored["main"]["runs"]:
        assert all(row[f"se_{m}"] > 0 for m in ("accuracy", "nll", "ece", "p_true"))


def test_stored_logits_read_back_exactly():
    logits = torch.randn(20, 10, generator=torch.Generator().manual_seed(0)) * 30
    summary = {"logits_train": json.loads(json.dumps(ex._stored_logits(logits)))}
    assert torch.equal(ex.stored_logits(summary), logits)


def test_mismatches():
    row = {"loss": "A", "seed": 0, "accuracy": 0.95, "nll": 0.2, "history": [1.0, 0.5], "se_nll": 0.03}
    assert ex.mismatches(row, dict(row), "main", exact=True) == []
    near = {**row, "nll": 0.2 + 1e-4, "se_nll": 0.0301}
    assert ex.mismatches(near, row, "main", exact=False) == []
    assert [m.split(":")[0] for m in ex.mismatches(near, row, "main", exact=True)] == ["nll", "se_nll"]
    far = {**row, "accuracy": 0.95 + 2 / 540, "seed": 1}
    assert [m.split(":")[0] for m in ex.mismatches(far, row, "main", exact=False)] == ["seed", "accuracy"]
    nested = {"test": {"accuracy": 0.9}, "logits_train": [[1.0, 2.0]]}
    moved = {"test": {"accuracy": 0.9}, "logits_train": [[1.0, 2.05]]}
    assert ex.mismatches(moved, nested, "main", exact=False) == ["logits_train: 2.05 vs 2.0"]
    assert (
        ex.mismatches(moved, nested, "wrong_teacher", exact=False) == []
    )  # a wrong teacher's logits may move


def _as_rerun(summary, rerun):
    """A stored teacher summary cut to what the subset re-runs (its fields, its betas)."""
    cut = {k: summary[k] for k in rerun}
    cut["negative_weight_rows"] = {
        b: summary["negative_weight_rows"][b] for b in rerun["negative_weight_rows"]
    }
    return cut


@pytest.fixture(scope="module")
def subset_rerun():
    # rerun under the pins (tools/run_experiments.py applies them before importing torch), from a caller
    # that asks for AVX2 kernels: the pins must win
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run(
        [sys.executable, "-m", "tools.run_experiments", "--subset"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.slow
def test_a_subset_rerun_reproduces_the_stored_numbers(stored, subset_rerun):
    # every number must come back, bit for bit on the CPU model that stored the file and within
    # ex.REPRODUCTION on another
    rerun = subset_rerun
    exact = ex.bit_exact(stored)
    assert rerun["provenance"]["torch_cpu_capability"] == "DEFAULT"
    key = lambda r: (r["loss"], r["alpha"], r["seed"])  # noqa: E731
    stored_main = {key(r): r for r in stored["main"]["runs"]}
    problems, compared = [], 0
    for row in rerun["main"]["runs"]:
        problems += ex.mismatches(row, stored_main[key(row)], "main", exact)
        compared += 1
    problems += ex.mismatches(
        rerun["main"]["teacher"],
        _as_rerun(stored["main"]["teacher"], rerun["main"]["teacher"]),
        "main",
        exact,
    )
    for part in rerun["wrong_teacher"]:
        [twin] = [w for w in stored["wrong_teacher"] if w["fraction"] == part["fraction"]]
        stored_runs = {key(r): r for r in twin["runs"]}
        for row in part["runs"]:
            problems += ex.mismatches(
                row, stored_runs[key(row)], "wrong_teacher", exact
            )  # histories included
            compared += 1
        summary = _as_rerun(twin["teacher"], part["teacher"])
        problems += ex.mismatches(part["teacher"], summary, "wrong_teacher", exact)
    assert not problems, problems[:10]
    assert compared >= 14


# ---------------------------------------------------------------- the small configuration


@pytest.fixture(scope="module")
def small():
    return ex.load_stored(ex.STORED_SMALL)


def test_the_small_plan_is_a_part_of_the_full_plan():
    # every seed, beta, alpha, fraction flipped... of SMALL is one of Plan's, and the teachers' seeds
    # and the flipped labels' are the same: each small student is a student of the full run
    full, small = ex.Plan(), ex.SMALL
    for field in dataclasses.fields(ex.Plan):
        mine, theirs = getattr(small, field.name), getattr(full, field.name)
        if isinstance(theirs, tuple):
            assert set(mine) <= set(theirs), field.name
        else:
            assert mine == theirs, field.name
    # the core of notebook 05: CE only, KD at T = 1 and 4, klloss_v2 at beta = 1.5; one wrong teacher
    losses = ex.settings(ex.Config().alpha, ex.Config().temperature, small.betas)
    assert set(losses) == {"CE only", "KD, T = 1", "KD, T = 4", "klloss_v2, beta = 1.5"}
    assert len(small.noise) == 1
    assert small.noise[0] > 0
    assert small.seeds == small.noise_seeds
    assert len(small.seeds) >= 2


def test_small_plan_varies_the_small_plan():
    assert ex.small_plan() == ex.SMALL
    varied = ex.small_plan(seeds=range(3), betas=[0.5, 1.5], alphas=[0.9], flip=[0.2])
    assert (varied.seeds, varied.noise_seeds, varied.betas) == ((0, 1, 2), (0, 1, 2), (0.5, 1.5))
    assert (varied.alphas, varied.noise) == ((0.9,), (0.2,))
    assert dataclasses.replace(varied, seeds=(), noise_seeds=(), betas=(), alphas=(), noise=()) == (
        dataclasses.replace(ex.SMALL, seeds=(), noise_seeds=(), betas=(), alphas=(), noise=())
    )
    for bad in ({"seeds": [0, 0]}, {"seeds": [-1]}, {"seeds": [1.0]}, {"seeds": []}, {"betas": [0.0]}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ex.small_plan(**bad)
    for bad in ({"alphas": [1.5]}, {"flip": [-0.1]}, {"flip": [True]}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ex.small_plan(**bad)
    for bad in ({"seeds": 5}, {"betas": "1.5"}):
        with pytest.raises(TypeError, match=next(iter(bad))):
            ex.small_plan(**bad)


@pytest.fixture
def tool():
    """tools.run_experiments, whose import applies the notebooks' pins to this process's
    environment: restored when the test ends, so that no later test inherits them."""
    saved = dict(os.environ)
    from tools import run_experiments

    yield run_experiments
    os.environ.clear()
    os.environ.update(saved)


def test_the_command_line_varies_the_small_plan(tool, capsys):
    assert tool.parse(["--small"]) == (ex.SMALL, ex.STORED_SMALL)
    plan, out = tool.parse(["--small", "--seeds", "0-2,7", "--beta", "1.5", "--flip", "0.4"])
    assert plan == ex.small_plan(seeds=[0, 1, 2, 7])
    assert out == ex.STORED_SMALL_VARIED
    assert tool.parse(["--small", "--alphas", "0.5", "--out", "x.json"]) == (
        ex.small_plan(alphas=[0.5]),
        "x.json",
    )
    assert tool.parse([]) == (ex.Plan(), ex.STORED)
    assert tool.parse(["--subset"]) == (ex.SUBSET, "-")
    for argv, message in [
        (["--seeds", "1"], "add --small"),
        (["--small", "--seeds", "a-b"], "seeds are written"),
        (["--small", "--seeds", "1,1"], "seeds must be distinct"),
        (["--small", "--subset"], "not allowed with"),
    ]:
        with pytest.raises(SystemExit):
            tool.parse(argv)
        assert message in capsys.readouterr().err


def test_the_stored_small_run_is_the_small_plan_under_the_pins_in_five_minutes(small):
    from course import nbenv

    provenance = small["provenance"]
    assert provenance["config"] == dataclasses.asdict(ex.Config()), "Config changed: make experiments-small"
    assert provenance["plan"] == json.loads(json.dumps(dataclasses.asdict(ex.SMALL))), (
        "SMALL changed: make experiments-small"
    )
    assert (provenance["torch_cpu_capability"], provenance["torch_threads"]) == ("DEFAULT", 1)
    assert all(nbenv.ENV[name] == value for name, value in provenance["environment"].items())
    assert 0 < provenance["wall_seconds"] <= 300  # the students' budget: five minutes
    for key in ("date", "python", "torch", "numpy", "scikit-learn", "machine", "cpu"):
        assert provenance[key], key
    # the same record as the full run's: the same parts, and each row and teacher the same keys
    full = ex.load_stored()
    assert set(small) == set(full)
    assert set(small["main"]["teacher"]) == set(full["main"]["teacher"])
    assert [w["fraction"] for w in small["wrong_teacher"]] == list(ex.SMALL.noise)
    per_part = len(ex.SMALL.seeds) * (1 + len(ex.SMALL.alphas) * (2 + len(ex.SMALL.betas)))
    for runs, twin in [(small["main"]["runs"], full["main"]["runs"][0])] + [
        (w["runs"], full["wrong_teacher"][0]["runs"][0]) for w in small["wrong_teacher"]
    ]:
        assert len(runs) == per_part
        assert all(set(row) == set(twin) for row in runs)


def _common(summary, other):
    """A teacher's summary cut to the fields and betas it shares with ``other``."""
    cut = {k: summary[k] for k in summary if k in other}
    cut["negative_weight_rows"] = {
        b: v for b, v in summary["negative_weight_rows"].items() if b in other["negative_weight_rows"]
    }
    return cut


def _disagreements(record, reference, exact):
    """Where the teachers and students of ``record`` differ from the same ones in ``reference``
    (students of the same loss, alpha and seed; only those both have): bit for bit if ``exact``,
    else within ex.REPRODUCTION. Returns (the differences, how many students were compared).

    Between CPU models the students of the teacher trained on flipped labels are left out:
    ex.REPRODUCTION["wrong_teacher"] was measured on the subset's students (seed 0, beta = 0.5),
    and the small run on an AMD EPYC against the full run on an Intel Xeon put 3 of its 35 such
    students outside it (up to 14 test images of accuracy, a third of the largest logit), as
    students of a slightly different teacher. Their teacher is compared."""
    parts = [("main", record["main"], reference["main"])]
    for part in record["wrong_teacher"]:
        [twin] = [w for w in reference["wrong_teacher"] if w["fraction"] == part["fraction"]]
        parts.append(("wrong_teacher", part, twin))
    problems, compared = [], 0
    key = lambda r: (r["loss"], r["alpha"], r["seed"])  # noqa: E731
    for name, part, twin in parts:
        mine, theirs = _common(part["teacher"], twin["teacher"]), _common(twin["teacher"], part["teacher"])
        problems += ex.mismatches(mine, theirs, name, exact)
        if name == "wrong_teacher" and not exact:
            continue
        runs = {key(r): r for r in twin["runs"]}
        for row in part["runs"]:
            if key(row) in runs:
                problems += ex.mismatches(row, runs[key(row)], name, exact)
                compared += 1
    return problems, compared


def test_the_stored_small_run_holds_the_full_runs_numbers(small, stored):
    # each small student is the full run's student of the same loss, alpha and seed: bit for bit
    # where both files come from one CPU model, else within ex.REPRODUCTION
    exact = small["provenance"]["cpu"] == stored["provenance"]["cpu"]
    problems, compared = _disagreements(small, stored, exact)
    assert not problems, problems[:10]
    main = len(small["main"]["runs"])
    assert compared == (main + sum(len(w["runs"]) for w in small["wrong_teacher"]) if exact else main)


@pytest.mark.slow
def test_a_small_rerun_reproduces_the_stored_small_numbers(small):
    # one seed of the small plan re-run under the pins (from a caller asking for AVX2 kernels), and
    # written to standard output: the stored small run's numbers for that seed, bit for bit on the
    # CPU model that stored them, and within ex.REPRODUCTION on another
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    seed = ex.SMALL.seeds[-1]
    out = subprocess.run(
        [sys.executable, "-m", "tools.run_experiments", "--small", "--seeds", str(seed), "--out", "-"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rerun = json.loads(out.stdout)
    assert rerun["provenance"]["torch_cpu_capability"] == "DEFAULT"
    exact = ex.bit_exact(small)
    problems, compared = _disagreements(rerun, small, exact)
    assert not problems, problems[:10]
    per_part = 1 + len(ex.SMALL.alphas) * (2 + len(ex.SMALL.betas))
    assert compared == (2 * per_part if exact else per_part)


def test_the_small_example_prints_the_table(capsys):
    # the example in course.experiments' docstring runs on the stored small run and prints the
    # paired comparison of klloss_v2 at beta = 1.5 with KD at T = 4, one row per alpha
    code = textwrap.dedent(ex.__doc__.split("::\n")[-1])
    assert "ex.STORED_SMALL" in code
    exec(code, {})
    printed = capsys.readouterr().out.splitlines()
    assert "verdict" in printed[0]
    assert len(printed) == 2 + len(ex.SMALL.alphas)
    for alpha, line in zip(ex.SMALL.alphas, printed[2:], strict=True):
        assert line.startswith(f"{alpha} ")
        assert "klloss_v2, beta = 1.5 KD, T = 4" in line


@pytest.mark.slow
def test_the_small_runs_students_are_the_full_plans(small, subset_rerun):
    # the subset trains other losses, betas and fractions around the students it shares with the
    # small run (CE only and KD at alpha = 0.5, seed 0, of both teachers): they do not depend on
    # what else a plan trains, bit for bit on the CPU model that stored the small run
    exact = ex.bit_exact(small)
    problems, compared = _disagreements(subset_rerun, small, exact)
    assert not problems, problems[:10]
    assert compared == (6 if exact else 3)
