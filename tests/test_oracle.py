"""The float64 NumPy oracle against a plain-Python reference, and the properties its formula implies.

NumPy, pytest and hypothesis alone: `make test-oracle` (tools/oracle_pythons.py) runs this file on
Python 3.10, 3.11, 3.12 and 3.13 in environments without torch, and it runs with the rest of the
suite too. Nothing here may import torch.
"""

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy_helpers import batches, loss_scale

import klloss.data
import klloss.oracle as oracle

ROOT = Path(__file__).resolve().parents[1]


def loop_log_softmax(row):
    """log softmax of one row, from its definition, in plain Python floats."""
    top = max(row)
    log_norm = top + math.log(math.fsum(math.exp(x - top) for x in row))
    return [x - log_norm for x in row]


def loop_per_sample(logits_t, input, target, label, beta, offset=8.0):
    """L_i = sum_c (k + (z_iy - z_ic) / beta) p_ic (log p_ic - log q_ic), one sample and one class
    at a time, in plain Python (math.fsum): a reference that shares no code with the oracle."""
    rows = []
    for z_m, s, z, y in zip(logits_t.tolist(), input.tolist(), target.tolist(), label.tolist(), strict=True):
        log_q, log_p = loop_log_softmax(s), loop_log_softmax(z)
        terms = [
            (offset + (z_m[y] - z_m[c]) / beta) * math.exp(log_p[c]) * (log_p[c] - log_q[c])
            for c in range(len(s))
        ]
        rows.append(math.fsum(terms))
    return rows


@given(batch=batches())
def test_matches_a_plain_python_loop(batch):
    expected = loop_per_sample(*batch)
    tol = 1e-12 * loss_scale(batch) + 1e-300
    parts = oracle.intermediates(*batch)
    np.testing.assert_allclose(parts["per_sample"], expected, rtol=0, atol=tol * len(expected))
    assert abs(oracle.klloss_v2(*batch) - math.fsum(expected) / len(expected)) <= tol


@given(batch=batches())
def test_intermediates_are_consistent(batch):
    logits_t, _, _, label, beta = batch
    parts = oracle.intermediates(*batch)
    np.testing.assert_allclose(parts["target_prob"].sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(parts["log_input"]).sum(axis=1), 1.0, rtol=1e-12)
    rows = np.arange(len(label))
    assert np.all(parts["margin"][rows, label] == 0)  # m_y = z_y - z_y
    # w = k + m / beta at the label is the offset itself
    assert np.all(parts["weight"][rows, label] == 8.0)
    # KL(p || q) >= 0, up to the rounding of its terms
    size = parts["target_prob"] * (1.0 + np.abs(parts["log_target"]) + np.abs(parts["log_input"]))
    assert np.all(parts["output"].sum(axis=1) >= -1e-12 * size.sum(axis=1))
    assert np.all(parts["margin"] == logits_t[rows, label][:, None] - logits_t)
    np.testing.assert_array_equal(parts["weight"], 8.0 + parts["margin"] / beta)
    assert parts["loss"] == parts["per_sample"].mean()


@given(batch=batches(), seed=st.integers(0, 2**32 - 1))
def test_shifting_any_row_of_logits_changes_nothing(batch, seed):
    # softmax ignores a constant added to a row, and the margin z_y - z_c cancels it
    logits_t, s, z, y, beta = batch
    rng = np.random.default_rng(seed)
    shift = lambda x: x + rng.normal(0.0, 10.0, (x.shape[0], 1))  # noqa: E731
    before = oracle.klloss_v2(*batch)
    after = oracle.klloss_v2(shift(logits_t), shift(s), shift(z), y, beta)
    assert abs(after - before) <= 1e-10 * loss_scale(batch) + 1e-300


@given(batch=batches())
def test_zero_when_the_student_equals_the_teacher(batch):
    logits_t, _, z, y, beta = batch
    # log p - log q is exactly 0 for every class, whatever the weights
    assert oracle.klloss_v2(logits_t, z.copy(), z, y, beta) == 0


@given(batch=batches(), offset=st.floats(-10.0, 10.0))
def test_infinite_beta_leaves_offset_times_kl(batch, offset):
    logits_t, s, z, y, _ = batch
    kl = oracle.kl(z, s)
    got = oracle.klloss_v2(logits_t, s, z, y, math.inf, offset=offset)
    assert abs(got - offset * kl) <= 1e-12 * loss_scale((logits_t, s, z, y, 1.0), offset=1.0) * (
        1 + abs(offset)
    )


@given(batch=batches(), offset=st.floats(-10.0, 10.0))
def test_linear_in_the_offset(batch, offset):
    # L(k) = L(0) + k KL(p || q), since w = k + m / beta
    logits_t, s, z, y, beta = batch
    at_zero = oracle.klloss_v2(logits_t, s, z, y, beta, offset=0.0)
    got = oracle.klloss_v2(logits_t, s, z, y, beta, offset=offset)
    scale = loss_scale(batch, offset=0.0) + abs(offset) * loss_scale(batch, offset=1.0)
    assert abs(got - (at_zero + offset * oracle.kl(z, s))) <= 1e-12 * scale + 1e-300


def test_the_article_sample(sample):
    args = (sample.logits_t, sample.input, sample.target, sample.label, sample.beta)
    assert [a.shape for a in args[:4]] == [(2, 5), (2, 5), (2, 5), (2,)]
    loss = oracle.klloss_v2(*args)
    expected = loop_per_sample(*args)
    assert loss == pytest.approx(math.fsum(expected) / 2, rel=1e-14)
    assert f"{loss:.4f}" == "0.0413"  # the README's value
    printed = float(klloss.data.load_article_printed()["loss"].text)
    assert not math.isclose(printed, loss, rel_tol=0.5)  # the article's 3.1765 is not the loss


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input": np.float64(0.0)}, "input must have shape (..., C), got a 0-d array"),
        ({"logits_t": np.zeros((2, 4))}, "logits_t must have the shape of input"),
        ({"target": np.zeros((3, 5))}, "target must have the shape of input"),
        ({"label": np.array([0, 1, 2])}, "label must have shape input.shape[:-1] = (2,)"),
        ({"label": np.array([0, 5])}, "label values must lie in [0, C) = [0, 5)"),
        ({"label": np.array([-1, 0])}, "label values must lie in [0, C) = [0, 5)"),
    ],
)
def test_bad_arguments_are_named(sample, change, message):
    args = {
        "logits_t": sample.logits_t,
        "input": sample.input,
        "target": sample.target,
        "label": sample.label,
        "beta": sample.beta,
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        oracle.klloss_v2(**{**args, **change})


@given(batch=batches(), seed=st.integers(0, 2**32 - 1))
def test_leading_dimensions_are_rows(batch, seed):
    # logits (B, T, C) and labels (B, T) are the rows of (B * T, C): the same losses, per_sample of
    # shape (B, T); a single row (C,) with a 0-d label is one row
    logits_t, s, z, y, beta = batch
    rng = np.random.default_rng(seed)
    n, c = s.shape
    y = np.where(rng.random(n) < 0.3, -100, y)  # some rows ignored, as padding is
    flat = oracle.intermediates(logits_t, s, z, y, beta)
    shaped = oracle.intermediates(*(x.reshape(1, n, c) for x in (logits_t, s, z)), y.reshape(1, n), beta)
    assert shaped["per_sample"].shape == (1, n)
    assert shaped["weight"].shape == (1, n, c)
    np.testing.assert_array_equal(shaped["per_sample"].reshape(n), flat["per_sample"])
    assert shaped["loss"] == flat["loss"]
    one = oracle.intermediates(logits_t[0], s[0], z[0], np.int64(y[0]), beta)
    assert one["per_sample"].shape == ()
    assert one["per_sample"] == flat["per_sample"][0]


def test_ignore_index_defaults_to_minus_100_as_the_loss(sample):
    args = [np.concatenate([x, x[:1]]) for x in (sample.logits_t, sample.input, sample.target)]
    label = np.append(sample.label, -100)
    parts = oracle.intermediates(*args, label, sample.beta)
    assert parts["per_sample"][-1] == 0
    # the mean over the two rows kept: the sample's own loss
    own = oracle.klloss_v2(sample.logits_t, sample.input, sample.target, sample.label, sample.beta)
    assert parts["loss"] == pytest.approx(own, rel=1e-15)
    with pytest.raises(ValueError, match=re.escape("label values must lie in [0, C)")):
        oracle.klloss_v2(*args, label, sample.beta, ignore_index=None)


@pytest.mark.parametrize(
    "fill",
    [{"at": (0, 2), "value": math.nan}, {"at": (0, 2), "value": math.inf}, {"at": 0, "value": -math.inf}],
    ids=["a NaN logit", "a logit at +inf", "every logit at -inf"],
)
def test_a_row_with_no_teacher_distribution_is_nan(sample, fill):
    z = sample.target.copy()
    z[fill["at"]] = fill["value"]
    args = (z, sample.input, z, sample.label, sample.beta)
    parts = oracle.intermediates(*args)
    assert np.isnan(parts["per_sample"][0])
    assert np.isfinite(parts["per_sample"][1])
    assert math.isnan(oracle.klloss_v2(*args))
    # the same row ignored counts for nothing, whatever it holds
    ignored = oracle.intermediates(z, sample.input, z, np.array([-100, sample.label[1]]), sample.beta)
    assert ignored["per_sample"][0] == 0
    assert ignored["loss"] == parts["per_sample"][1]


def test_klloss_imports_without_torch():
    # hide torch even where it is installed: the oracle and the data must not need it, and the
    # parts that do must say so
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "import klloss\n"
        "s = klloss.data.load_sample()\n"
        "print(round(klloss.oracle.klloss_v2(s.logits_t, s.input, s.target, s.label, s.beta), 4))\n"
        "try:\n"
        "    klloss.klloss_v2\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error.name, 'needs torch' in str(error))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0.0413", "torch", "True"]


@pytest.mark.parametrize("path", sorted((ROOT / "klloss").glob("*.py")), ids=lambda p: p.name)
def test_every_module_compiles_on_this_python(path):
    # the modules that need torch are not imported here, but their syntax must suit this Python
    compile(path.read_text(encoding="utf-8"), str(path), "exec")
