"""The invariant checks: silent on correct tensors rounded as the article rounds, loud on the
article's printed tensors and on hand-made broken ones."""

import numpy as np
import pytest

import klloss
from course import errata


@pytest.fixture
def rounded(sample):
    """The true intermediates printed to 4 decimals, as the article prints: (values, halves)."""
    truth = errata.correct_values(sample)
    printed = klloss.data.load_article_printed()
    values, halves = {}, {}
    for key, step in printed.items():
        if step.group == "inputs":
            values[key], halves[key] = step.values, errata.half_unit(step.text)
            continue
        v = np.round(np.asarray(truth[key], dtype=float), 4)
        values[key], halves[key] = v, np.full(np.shape(v), 5e-5)
    # a correct run-through would print the weighted terms' row values for per_sample
    values["per_sample"] = np.round(values["weighted"][..., 0] * values["weighted"][..., 1], 4)
    return values, halves


def test_half_unit():
    np.testing.assert_allclose(errata.half_unit(["0.7415", "3.0", "3", "-0.0000"]), [5e-5, 0.05, 0.5, 5e-5])


def test_correct_values_break_nothing_but_the_per_sample_shape(sample, rounded):
    values, halves = rounded
    for key in values:
        broken = errata.broken_invariants(key, values, halves, sample)
        expected = ["one number per sample"] if key == "per_sample" else []
        assert broken == expected, key


def test_the_articles_numbers_break_the_expected_invariants():
    table = errata.table()
    broken = table["broken"].to_dict()
    assert "log-softmax <= 0" in broken["log_input"]
    assert "rows log-sum-exp to 0" in broken["log_target"]
    assert "probabilities in [0, 1]" in broken["target_prob"]
    assert "p = exp(log p)" in broken["target_prob"]
    assert "output = p (log p - log q)" in broken["output"]
    assert "m = 0 at the label" in broken["margin"]
    assert "w = m / beta + 8" in broken["weight"]
    assert "entries = printed a * b" in broken["per_sample"]
    assert "loss = sum / N" in broken["loss"]
    assert "different inputs, different rows" in broken["margin"]
    for key in ("logits_t", "input", "target", "label", "beta"):
        assert broken[key] == ""
        assert table.loc[key, "right"] == table.loc[key, "printed"]


def test_every_printed_number_is_accounted_for():
    table = errata.table()
    printed = klloss.data.load_article_printed()
    assert table["printed"].sum() == sum(s.count for s in printed.values())
    assert list(table.index) == list(printed)
    summary = errata.summary(table)
    assert summary["right intermediates"] == 0
    assert summary["factor off"] == pytest.approx(
        3.1765
        / klloss.oracle.klloss_v2(
            *(getattr(klloss.data.load_sample(), k) for k in ("logits_t", "input", "target", "label", "beta"))
        )
    )


@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (errata.log_softmax_positive, [[-0.1, -2.4]], [[0.2, -1.0]]),
        (errata.log_softmax_not_normalised, [np.log([0.25, 0.75])], [[-0.1, -0.2]]),
        (errata.probability_out_of_range, [[0.0, 1.0]], [[1.2, -0.2]]),
        (errata.probability_not_normalised, [[0.25, 0.75]], [[0.5, 0.6]]),
    ],
)
def test_single_tensor_checks(check, good, bad):
    h = lambda x: np.full(np.shape(x), 5e-5)  # noqa: E731
    assert not check(np.array(good), h(good))
    assert check(np.array(bad), h(bad))


def test_pairwise_checks():
    h = lambda x: np.full(np.shape(x), 5e-5)  # noqa: E731
    log_p = np.log(np.array([[0.2, 0.8]]))
    p = np.exp(log_p)
    assert not errata.softmax_not_exp_of_log_softmax(p, h(p), log_p, h(p))
    assert errata.softmax_not_exp_of_log_softmax(p + 0.01, h(p), log_p, h(p))
    log_q = np.log(np.array([[0.5, 0.5]]))
    out = p * (log_p - log_q)
    assert not errata.output_not_product(out, h(p), p, h(p), log_p, h(p), log_q, h(p))
    assert errata.output_not_product(out + 0.01, h(p), p, h(p), log_p, h(p), log_q, h(p))
    z, y = np.array([[1.0, 3.0, 2.0]]), np.array([1])
    m = z[:, [1]] - z
    assert not errata.margin_nonzero_at_label(m, h(m), y)
    assert errata.margin_nonzero_at_label(m + 0.1, h(m), y)
    assert not errata.margin_negative_where_teacher_right(m, h(m), y, z)
    assert errata.margin_negative_where_teacher_right(-m, h(m), y, z)
    assert not errata.margin_not_difference(m, h(m), y, z)
    assert errata.margin_not_difference(-m, h(m), y, z)
    w = m / 1.5 + 8
    assert not errata.weight_not_affine(w, h(w), m, h(m), 1.5)
    assert errata.weight_not_affine(w / 2, h(w), m, h(m), 1.5)
    pairs = np.stack([w, out.repeat(2)[:3].reshape(1, 3)], axis=-1)
    assert not errata.factors_not_printed(pairs, h(pairs), w, h(w), pairs[..., 1], h(w))
    assert errata.factors_not_printed(pairs, h(pairs), w + 1, h(w), pairs[..., 1], h(w))
    products = pairs[..., 0] * pairs[..., 1]
    assert not errata.product_not_equal_factors(products, h(products), pairs, h(pairs))
    assert errata.product_not_equal_factors(products + 0.01, h(products), pairs, h(pairs))
    assert not errata.per_sample_not_one_per_sample(np.zeros(2), 2)
    assert errata.per_sample_not_one_per_sample(np.zeros((2, 5)), 2)
    assert not errata.mean_not_sum_over_n(np.float64(1.5), 5e-5, np.array([1.0, 2.0]), h([1, 2]), 2)
    assert errata.mean_not_sum_over_n(np.float64(3.0), 5e-5, np.array([1.0, 2.0]), h([1, 2]), 2)
    inputs = np.array([[0.0, 1.0], [5.0, 2.0]])
    assert errata.identical_rows_for_different_inputs([[1, 2], [1, 2]], inputs)
    assert not errata.identical_rows_for_different_inputs([[1, 2], [1, 3]], inputs)
    assert not errata.identical_rows_for_different_inputs(
        [[1, 2], [1, 2]], np.array([[0.0, 1.0], [5.0, 6.0]])
    )


def test_repeats_finds_whole_tensors_and_rows():
    values = {
        "a": np.array([[1, 2], [3, 4]]),
        "b": np.array([[1, 2], [3, 4]]),
        "c": np.array([[9, 9], [1, 2]]),
    }
    found = errata.repeats(values)
    assert found == {"a": [], "b": ["a"], "c": ["a[0] as row 1", "b[0] as row 1"]}
