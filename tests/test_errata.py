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


# (printed tensor, an invariant its printed numbers break beyond their rounding)
ARTICLE_BREAKS = [
    ("log_input", "log-softmax <= 0"),
    ("log_target", "rows log-sum-exp to 0"),
    ("target_prob", "probabilities in [0, 1]"),
    ("target_prob", "p = exp(log p)"),
    ("output", "output = p (log p - log q)"),
    ("margin", "m = 0 at the label"),
    ("margin", "different inputs, different rows"),
    ("weight", "w = m / beta + 8"),
    ("per_sample", "entries = printed a * b"),
    ("loss", "loss = sum / N"),
]


@pytest.fixture(scope="module")
def article_table():
    return errata.table()


@pytest.mark.parametrize(("key", "invariant"), ARTICLE_BREAKS, ids=[f"{k}: {i}" for k, i in ARTICLE_BREAKS])
def test_the_articles_numbers_break_the_expected_invariants(article_table, key, invariant):
    assert invariant in article_table.loc[key, "broken"]


@pytest.mark.parametrize("key", ["logits_t", "input", "target", "label", "beta"])
def test_the_echoed_inputs_break_nothing_and_are_all_right(article_table, key):
    assert article_table.loc[key, "broken"] == ""
    assert article_table.loc[key, "right"] == article_table.loc[key, "printed"]


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


def _h(x):
    """Half a unit of the 4th decimal for every entry of ``x``, as the article prints."""
    return np.full(np.shape(x), 5e-5)


# small tensors that satisfy every invariant, and the pieces of the cases below
LOG_P = np.log(np.array([[0.2, 0.8]]))
P = np.exp(LOG_P)
LOG_Q = np.log(np.array([[0.5, 0.5]]))
OUT = P * (LOG_P - LOG_Q)
Z, Y = np.array([[1.0, 3.0, 2.0]]), np.array([1])
M = Z[:, [1]] - Z
W = M / 1.5 + 8
PAIRS = np.stack([W, OUT.repeat(2)[:3].reshape(1, 3)], axis=-1)
PRODUCTS = PAIRS[..., 0] * PAIRS[..., 1]
INPUTS = np.array([[0.0, 1.0], [5.0, 2.0]])

# (check, arguments it must pass, arguments it must refuse): each invariant on correct numbers
# and on numbers that break it by more than the printed rounding
PAIRWISE = {
    "p = exp(log p)": (
        errata.softmax_not_exp_of_log_softmax,
        (P, _h(P), LOG_P, _h(P)),
        (P + 0.01, _h(P), LOG_P, _h(P)),
    ),
    "output = p (log p - log q)": (
        errata.output_not_product,
        (OUT, _h(P), P, _h(P), LOG_P, _h(P), LOG_Q, _h(P)),
        (OUT + 0.01, _h(P), P, _h(P), LOG_P, _h(P), LOG_Q, _h(P)),
    ),
    "m = 0 at the label": (errata.margin_nonzero_at_label, (M, _h(M), Y), (M + 0.1, _h(M), Y)),
    "m >= 0 where the teacher is right": (
        errata.margin_negative_where_teacher_right,
        (M, _h(M), Y, Z),
        (-M, _h(M), Y, Z),
    ),
    "m = z_y - z": (errata.margin_not_difference, (M, _h(M), Y, Z), (-M, _h(M), Y, Z)),
    "w = m / beta + 8": (errata.weight_not_affine, (W, _h(W), M, _h(M), 1.5), (W / 2, _h(W), M, _h(M), 1.5)),
    "factors are the printed w and output": (
        errata.factors_not_printed,
        (PAIRS, _h(PAIRS), W, _h(W), PAIRS[..., 1], _h(W)),
        (PAIRS, _h(PAIRS), W + 1, _h(W), PAIRS[..., 1], _h(W)),
    ),
    "entries = printed a * b": (
        errata.product_not_equal_factors,
        (PRODUCTS, _h(PRODUCTS), PAIRS, _h(PAIRS)),
        (PRODUCTS + 0.01, _h(PRODUCTS), PAIRS, _h(PAIRS)),
    ),
    "one number per sample": (errata.per_sample_not_one_per_sample, (np.zeros(2), 2), (np.zeros((2, 5)), 2)),
    "loss = sum / N": (
        errata.mean_not_sum_over_n,
        (np.float64(1.5), 5e-5, np.array([1.0, 2.0]), _h([1, 2]), 2),
        (np.float64(3.0), 5e-5, np.array([1.0, 2.0]), _h([1, 2]), 2),
    ),
    "different inputs, different rows": (
        errata.identical_rows_for_different_inputs,
        ([[1, 2], [1, 3]], INPUTS),
        ([[1, 2], [1, 2]], INPUTS),
    ),
    "inputs a shift apart may give equal rows": (
        errata.identical_rows_for_different_inputs,
        ([[1, 2], [1, 2]], np.array([[0.0, 1.0], [5.0, 6.0]])),
        ([[1, 2], [1, 2]], INPUTS),
    ),
}


@pytest.mark.parametrize(("check", "good", "bad"), PAIRWISE.values(), ids=PAIRWISE.keys())
def test_pairwise_checks(check, good, bad):
    assert not check(*good)
    assert check(*bad)


def test_repeats_finds_whole_tensors_and_rows():
    values = {
        "a": np.array([[1, 2], [3, 4]]),
        "b": np.array([[1, 2], [3, 4]]),
        "c": np.array([[9, 9], [1, 2]]),
    }
    found = errata.repeats(values)
    assert found == {"a": [], "b": ["a"], "c": ["a[0] as row 1", "b[0] as row 1"]}
