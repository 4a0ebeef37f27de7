"""course.experiments: on a tiny configuration, learning happens and runs are reproducible; the
pieces (losses, our softened extension, ECE, the split, flipped labels, the mixed optimum, paired
statistics) agree with independent references; the stored experiment (data/experiments/) is the
current plan, made under the pins, and a re-run subset reproduces it bit for bit."""

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

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


def test_paired_t_matches_scipy_ttest_rel():
    from scipy import stats

    rng = np.random.default_rng(0)
    a = rng.normal(0.95, 0.01, 30)
    b = a - rng.normal(0.002, 0.003, 30)
    result = ex.paired_test(a - b)
    reference = stats.ttest_rel(a, b)
    assert result["t"] == pytest.approx(reference.statistic, rel=1e-10)
    assert result["p"] == pytest.approx(reference.pvalue, rel=1e-8)
    assert result["mean"] == pytest.approx((a - b).mean(), rel=1e-12)
    assert result["n"] == 30


def test_bootstrap_interval_agrees_with_the_t_interval_on_a_large_sample():
    # for 400 normal differences the bootstrap interval of the mean and Student's t interval coincide closely
    from scipy import stats

    d = np.random.default_rng(1).normal(0.01, 0.02, 400)
    result = ex.paired_test(d, resamples=20_000)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert result["ci_low"] == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert result["ci_high"] == pytest.approx(d.mean() + half, abs=0.1 * half)
    assert result["ci_low"] < d.mean() < result["ci_high"]
    # the interval is reproducible (seeded) and depends on the seed
    assert ex.paired_test(d) == ex.paired_test(d)
    assert ex.paired_test(d, seed=1)["ci_low"] != ex.paired_test(d)["ci_low"]


def test_paired_test_verdicts_and_tolerance():
    # clearly above zero
    assert ex.paired_test([0.01, 0.012, 0.009, 0.011, 0.010])["verdict"] == "higher"
    lower = ex.paired_test([-0.001, -0.0012, -0.0009, -0.0011])
    assert lower["verdict"] == "lower"
    assert lower["within_margin"]
    assert lower["below"] == 4
    # straddles zero, narrow: equivalent within the margin
    assert ex.paired_test([0.001, -0.001, 0.0005, -0.0005, 0.0])["verdict"] == "equivalent"
    # straddles zero, wide: more seeds needed
    assert ex.paired_test([0.02, -0.02, 0.01, -0.015])["verdict"] == "not settled"
    # all equal: the interval is that value, t undefined, and no warning is raised
    same = ex.paired_test([0.0, 0.0, 0.0])
    assert (same["ci_low"], same["ci_high"], same["verdict"]) == (0.0, 0.0, "equivalent")
    assert math.isnan(same["t"])
    # an interval entirely at round-off level claims no sign, although it excludes zero
    tiny = ex.paired_test([-3e-6, -2e-6, -4e-6, -3e-6])
    assert tiny["ci_high"] < 0
    assert tiny["verdict"] == "equivalent"
    assert tiny["below"] == 0
    # differences within the tolerance are ties, whatever their sign
    ties = ex.paired_test([3e-5, -2e-5, 5e-5, 0.002])
    assert (ties["above"], ties["below"]) == (1, 0)


@pytest.mark.parametrize(
    ("bad", "match"), [([1.0], "at least 2"), ([[1.0, 2.0]], "1-d"), ([0.0, math.nan], "finite")]
)
def test_paired_test_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        ex.paired_test(bad)
    with pytest.raises(ValueError, match="confidence"):
        ex.paired_test([0.0, 1.0], confidence=1.5)


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
    assert len(per_loss) == 1 + len(plan.alphas) * (2 + len(plan.betas) + len(plan.soft_betas))
    assert [w["fraction"] for w in stored["wrong_teacher"]] == list(plan.noise)
    for wrong in stored["wrong_teacher"]:
        runs = ex.frame(wrong["runs"])
        assert len(runs) == len(plan.noise_seeds) * (1 + len(plan.alphas) * (2 + len(plan.betas)))
        assert all(len(h) == ex.Config().epochs for h in runs["history"])
        assert set(wrong["teacher"]["negative_weight_rows"]) == {f"{b:g}" for b in plan.betas}


def test_a_subset_rerun_reproduces_the_stored_numbers_exactly(stored):
    if not ex.bit_exact(stored):
        pytest.skip("stored results are bit-exact on x86-64 Linux, on the CPU model that stored them")
    # rerun under the pins (tools/run_experiments.py applies them before importing torch), from a caller
    # that asks for AVX2 kernels: the pins must win, and every number must come back bit for bit
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run(
        [sys.executable, "-m", "tools.run_experiments", "--subset"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rerun = json.loads(out.stdout)
    assert rerun["provenance"]["torch_cpu_capability"] == "DEFAULT"
    key = lambda r: (r["loss"], r["alpha"], r["seed"])  # noqa: E731
    stored_main = {key(r): r for r in stored["main"]["runs"]}
    compared = 0
    for row in rerun["main"]["runs"]:
        assert row == stored_main[key(row)], row["loss"]
        compared += 1
    assert rerun["main"]["teacher"]["test"] == stored["main"]["teacher"]["test"]
    for part in rerun["wrong_teacher"]:
        [twin] = [w for w in stored["wrong_teacher"] if w["fraction"] == part["fraction"]]
        stored_runs = {key(r): r for r in twin["runs"]}
        for row in part["runs"]:
            assert row == stored_runs[key(row)], (part["fraction"], row["loss"])  # histories included
            compared += 1
        for beta, fraction in part["teacher"]["negative_weight_rows"].items():
            assert twin["teacher"]["negative_weight_rows"][beta] == fraction
    assert compared >= 8
