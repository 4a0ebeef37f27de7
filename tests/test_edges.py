"""Numbers at the edges (issue 20): tied and huge logits, shifted logits, -inf entries, extreme beta
and k, empty batches, options changed after construction; every case against the float64 oracle,
on every form the library dispatches to.

The error model of a correct float32 computation (:func:`float32_bound`) is stated once, relative
to the size of the log-probabilities and the weights, never to the size of the logits: softmax does
not see a constant shift, and neither may the error.
"""

import math

import numpy as np
import pytest
import torch
from helpers import EPS, float32_bound
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import klloss
from klloss.options import BETA_MIN

FORMS = ["reference", "fused", "auto", "func"]
"""The forms every edge case runs on: the two eager implementations, the dispatcher, and
torch.func.grad (which the dispatcher sends to the reference). Compiled: test_compile.py."""


def loss_and_grad(form, logits_t, s, z, y, beta, **options):
    """(loss, d loss / d s) computed by ``form``; ``options`` go to klloss_v2."""
    if form == "func":

        def f(x):
            value = klloss.klloss_v2(logits_t, x, z, y, beta, **options)
            return value.sum(), value

        grad, value = torch.func.grad(f, has_aux=True)(s)
        return value, grad
    x = s.clone().requires_grad_(True)
    value = klloss.klloss_v2(logits_t, x, z, y, beta, impl=form, **options)
    (grad,) = torch.autograd.grad(value.sum(), x)
    return value.detach(), grad


def check_against_oracle(form, logits_t, s, z, y, beta, dtype, offset=8.0, ignore_index=-100):
    """The loss of ``form`` in ``dtype`` is the oracle's on the same rounded inputs, to the bound."""
    args = [torch.tensor(a, dtype=dtype) for a in (logits_t, s, z)]
    label = torch.tensor(y)
    got, grad = loss_and_grad(
        form, args[0], args[1], args[2], label, beta, offset=offset, ignore_index=ignore_index
    )
    rounded = [a.double().numpy() for a in args]
    parts = klloss.oracle.intermediates(rounded[0], rounded[1], rounded[2], y, beta, offset, ignore_index)
    expected = float(parts["loss"])
    kept = int((np.asarray(y) != ignore_index).sum())
    bound = float32_bound(parts, beta, offset, kept, EPS[dtype])
    assert math.isfinite(got.item()), (form, got)
    assert abs(got.item() - expected) <= bound, (form, got.item(), expected, bound)
    assert torch.isfinite(grad).all(), form
    return got, grad


# -- 1. tied and huge logits: the margin is formed before it is scaled ------------------------------


def tied_rows(magnitude, c, seed=0):
    """Teacher rows whose two top classes tie at +-magnitude (the label one of them), the rest
    lower by a multiple of the magnitude; a student of ordinary size."""
    rng = np.random.default_rng(seed)
    z = np.empty((4, c))
    for i, sign in enumerate((1, -1, 1, -1)):
        z[i] = sign * magnitude - magnitude * rng.uniform(0.5, 2.0, size=c)
        z[i, :2] = sign * magnitude  # the tie
    return z, rng.normal(0, 3, (4, c)), np.array([0, 1, 1, 0])


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("magnitude", [1e8, 1e9, 1e30])
@pytest.mark.parametrize("c", [5, 200])
@pytest.mark.parametrize("beta", [1.0, 1e-9])
def test_tied_huge_logits_match_the_oracle(form, dtype, magnitude, c, beta):
    z, s, y = tied_rows(magnitude, c)
    got, _ = check_against_oracle(form, z, s, z, y, beta, dtype)
    # every class the teacher gives mass to ties with the label: w = k there, and the loss is
    # k KL(p || q) whatever beta is
    at_inf, _ = loss_and_grad(
        form, *(torch.tensor(a, dtype=dtype) for a in (z, s, z)), torch.tensor(y), math.inf
    )
    assert torch.equal(got, at_inf)


@pytest.mark.parametrize("form", FORMS)
def test_equal_logits_and_tiny_beta_give_the_infinite_beta_loss(form):
    # every margin is 0, so every weight is k at any beta: L(beta = 1e-9) = L(inf) = k KL(p || q)
    z = torch.full((3, 6), 2.5)
    s = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 5])
    tiny, _ = loss_and_grad(form, z, s, z, y, 1e-9)
    inf, _ = loss_and_grad(form, z, s, z, y, math.inf)
    kl = torch.nn.functional.kl_div(
        s.log_softmax(1), z.log_softmax(1), log_target=True, reduction="batchmean"
    )
    assert torch.equal(tiny, inf)
    assert tiny.item() == pytest.approx(8 * kl.item(), rel=1e-6)
    assert tiny.item() > 0


@pytest.mark.parametrize("form", FORMS)
def test_float64_with_no_offset_and_small_beta(form, sample):
    # the weight is then the scaled margin alone: k + z_y / beta - z / beta lost 16 % of it
    args = (sample.logits_t, sample.input, sample.target, sample.label)
    check_against_oracle(form, *args, 0.1, torch.float64, offset=0.0)


# -- 2. shift invariance: log-probabilities, whose size a constant shift does not change -----------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("c", [10, 1000])
@pytest.mark.parametrize(
    ("student_shift", "teacher_shift"), [(30, 0), (100, 0), (1e4, 0), (0, 1e3), (-1e4, 1e4)]
)
def test_a_constant_shift_changes_nothing_but_rounding(form, c, student_shift, teacher_shift):
    rng = np.random.default_rng(c)
    z, s = rng.normal(0, 3, (8, c)), rng.normal(0, 3, (8, c))
    y = rng.integers(0, c, 8)
    check_against_oracle(form, z + teacher_shift, s + student_shift, z + teacher_shift, y, 1.5, torch.float32)


# -- 3. -inf entries: a class with p = 0 contributes 0, even where its weight is infinite ----------


def masked_vocabulary(fill, c=12, masked=(7, 9, 11)):
    rng = np.random.default_rng(1)
    z, s = rng.normal(0, 2, (4, c)), rng.normal(0, 2, (4, c))
    z[:, list(masked)] = fill
    return z, s, np.array([0, 3, 5, 6])


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("beta", [0.1, 1.5, math.inf])
def test_teacher_classes_at_minus_infinity_add_nothing(form, dtype, beta):
    z, s, y = masked_vocabulary(-math.inf)
    check_against_oracle(form, z, s, z, y, beta, dtype)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_teacher_classes_at_the_lowest_float_with_small_beta(form, dtype):
    # the margin overflows the weight (w = inf) where p underflows to 0: the term is still 0
    z, s, y = masked_vocabulary(torch.finfo(dtype).min)
    check_against_oracle(form, z, s, z, y, 0.1, dtype)


@pytest.mark.parametrize("form", FORMS)
def test_student_at_minus_infinity(form):
    z, s, y = masked_vocabulary(-math.inf)
    # where the teacher has no mass either, nothing changes: a finite loss, a finite gradient
    check_against_oracle(form, z, np.where(np.isinf(z), -np.inf, s), z, y, 1.5, torch.float32)
    # where the teacher has mass, KL(p || q) is infinite (as F.kl_div says); the gradient, q W - w p,
    # stays finite
    s_hole = s.copy()
    s_hole[0, 1] = -np.inf
    args = [torch.tensor(a, dtype=torch.float64) for a in (z, s_hole, z)]
    value, grad = loss_and_grad(form, args[0], args[1], args[2], torch.tensor(y), 1.5)
    assert value.item() == math.inf
    assert torch.isfinite(grad).all()
    w = klloss.weight(klloss.margin(args[0], torch.tensor(y)), 1.5)
    p, q = args[2].softmax(1), args[1].softmax(1)
    wp = torch.where(p > 0, w * p, 0.0)
    expected = (q * wp.sum(1, keepdim=True) - wp) / len(y)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("form", FORMS)
def test_a_label_the_teacher_rules_out_has_no_finite_loss(form):
    # z_y = -inf: every other weight is -inf; the loss tends to -inf as z_y does, and is not a number
    # one could train on: it must not come out finite
    z, s, y = masked_vocabulary(-math.inf)
    y = np.array([7, 3, 5, 6])  # row 0's label is a masked class
    args = [torch.tensor(a) for a in (z, s, z)]
    value, _ = loss_and_grad(form, args[0], args[1], args[2], torch.tensor(y), 1.5, reduction="none")
    assert not math.isfinite(value[0].item())
    assert torch.isfinite(value[1:]).all()
    # at beta = inf the labels play no part, and the loss is k KL(p || q), finite
    at_inf, _ = loss_and_grad(form, args[0], args[1], args[2], torch.tensor(y), math.inf)
    assert math.isfinite(at_inf.item())


# -- 4. options: refused up front, with the argument's name ------------------------------------------


@pytest.mark.parametrize("make", [lambda o: klloss.Options(1.5, **o), lambda o: klloss.KLLossV2(1.5, **o)])
def test_ignore_index_outside_int64_is_refused(make):
    with pytest.raises(ValueError, match="ignore_index"):
        make({"ignore_index": 2**70})


def test_ignore_index_outside_int64_is_refused_by_the_function(sample):
    with pytest.raises(ValueError, match="ignore_index"):
        klloss.klloss_v2(**sample.tensors(), ignore_index=2**70)


@pytest.mark.parametrize("beta", [5e-324, 1e-40, BETA_MIN / 2])
def test_beta_below_float32s_smallest_normal_is_refused(beta, sample):
    with pytest.raises(ValueError, match="beta"):
        klloss.klloss_v2(**{**sample.tensors(), "beta": beta})


@pytest.mark.parametrize("form", FORMS)
def test_the_smallest_beta_accepted_matches_the_oracle_in_float64(form, sample):
    check_against_oracle(
        form, sample.logits_t, sample.input, sample.target, sample.label, BETA_MIN, torch.float64
    )


def test_module_options_are_checked_when_set(sample):
    t = sample.tensors(torch.float64)
    module = klloss.KLLossV2(1.5)
    with pytest.raises(ValueError, match="reduction"):
        module.reduction = "typo"
    with pytest.raises(ValueError, match="beta"):
        module.beta = 0
    with pytest.raises(ValueError, match="impl"):
        module.impl = "fast"
    assert module.reduction == "batchmean"
    assert module.beta == 1.5
    module.beta = 4.0  # a valid change takes effect
    args = (t["logits_t"], t["input"], t["target"], t["label"])
    assert torch.equal(module(*args), klloss.klloss_v2(*args, 4.0))
    assert module.options == klloss.Options(4.0)


# -- 5. no rows ------------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("shape", [(0, 5), (2, 0, 5)])
def test_an_empty_batch_gives_zero_or_an_empty_tensor(form, shape):
    z, s = torch.randn(shape), torch.randn(shape)
    y = torch.zeros(shape[:-1], dtype=torch.long)
    for reduction, expected in (
        ("none", torch.zeros(shape[:-1])),
        ("sum", torch.tensor(0.0)),
        ("batchmean", torch.tensor(0.0)),
    ):
        value, grad = loss_and_grad(form, z, s, z, y, 1.5, reduction=reduction)
        assert torch.equal(value, expected), (reduction, value)
        assert grad.shape == s.shape


# -- 6. hypothesis: the hard cases, generated ------------------------------------------------------


@st.composite
def hard_batches(draw):
    """Batches built to break arithmetic: ties, huge magnitudes, constant shifts of either argument,
    teacher entries at -inf (off the label), extreme beta and offset."""
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 20.0]))
    z, s = rng.normal(0, scale, (n, c)), rng.normal(0, scale, (n, c))
    y = rng.integers(0, c, n)
    if draw(st.booleans()):  # ties: copy the label's logit to other classes
        z[:, rng.integers(0, c)] = z[np.arange(n), y]
    magnitude = draw(st.sampled_from([0.0, 1e4, 1e8, 1e30]))
    if magnitude and draw(st.booleans()):  # huge logits, tied at the top
        z = np.round(z) * magnitude
    z = z + draw(st.sampled_from([0.0, 1e3, -1e4]))  # a constant shift of the teacher
    s = s + draw(st.sampled_from([0.0, 30.0, 1e4]))  # and of the student
    if c > 1 and draw(st.booleans()):  # a masked class, never a label
        masked = int(rng.integers(0, c))
        z[:, masked] = -np.inf
        y = np.where(y == masked, (masked + 1) % c, y)
    beta = draw(st.sampled_from([BETA_MIN, 1e-9, 0.1, 1.5, 1e6, 1e30, math.inf]))
    offset = draw(st.sampled_from([-100.0, -8.0, 0.0, 8.0, 100.0]))
    return z, s, y, beta, offset


@settings(max_examples=200, deadline=None)
@given(batch=hard_batches(), form=st.sampled_from(["reference", "fused"]))
def test_hard_cases_match_the_oracle_in_float32(batch, form):
    z, s, y, beta, offset = batch
    z32, s32 = (np.asarray(a, np.float32).astype(np.float64) for a in (z, s))
    parts = klloss.oracle.intermediates(z32, s32, z32, y, beta, offset)
    # the float32 range: a term whose true size a float32 cannot hold is overflow, not rounding
    with np.errstate(invalid="ignore"):
        assume(np.all(np.where(parts["target_prob"] > 0, np.abs(parts["weight"]), 0.0) < 1e30))
    assume(np.isfinite(parts["loss"]))
    check_against_oracle(form, z, s, z, y, beta, torch.float32, offset=offset)


# -- 7. ignored rows and rows with no teacher distribution (issue 25) -------------------------------


def filled_rows(teacher, student):
    """The article's sample in float64 with a third row, whose teacher and student logits are set
    by ``teacher`` and ``student``: ``{"all": value}`` or ``{"class0": value}`` (None: as drawn)."""
    rng = np.random.default_rng(3)
    z, s = rng.normal(0, 2, (3, 5)), rng.normal(0, 2, (3, 5))
    for x, fill in ((z, teacher), (s, student)):
        for where, value in (fill or {}).items():
            x[2, slice(None) if where == "all" else 0] = value
    return z, s


UNDEFINED = [{"class0": math.nan}, {"class0": math.inf}, {"all": -math.inf}, {"all": math.nan}]
"""Teacher rows with no distribution: a NaN logit, a logit at +inf, every logit at -inf."""


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("teacher", [None, {"class0": -math.inf}, *UNDEFINED])
@pytest.mark.parametrize("student", [None, {"class0": math.nan}, {"all": math.inf}, {"class0": -math.inf}])
def test_an_ignored_row_gives_exactly_zero_whatever_it_holds(form, teacher, student):
    # the ignored row reads class 0, which the teacher may mask at -inf: 0 * (-inf) must not reach
    # the gradient; the loss is the oracle's over the two rows kept
    z, s = filled_rows(teacher, student)
    y = np.array([2, 4, -100])
    args = [torch.tensor(a) for a in (z, s, z)]
    for reduction in ("batchmean", "sum", "none"):
        value, grad = loss_and_grad(form, *args, torch.tensor(y), 1.5, reduction=reduction)
        assert torch.equal(grad[2], torch.zeros(5)), (reduction, grad[2])
        assert torch.isfinite(grad[:2]).all()
        parts = klloss.oracle.intermediates(z[:2], s[:2], z[:2], y[:2], 1.5)
        expected = {"batchmean": parts["loss"], "sum": parts["per_sample"].sum()}.get(reduction)
        if reduction == "none":
            assert value[2].item() == 0
            np.testing.assert_allclose(value[:2].numpy(), parts["per_sample"], rtol=1e-12)
        else:
            assert value.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("teacher", UNDEFINED)
def test_a_kept_row_with_no_teacher_distribution_is_nan(form, teacher):
    # a NaN or +inf teacher logit, or a teacher row at -inf throughout: no p, so no loss; the loss
    # must say so (NaN), in the row and in the reductions, never come out finite
    z, s = filled_rows(teacher, None)
    args = [torch.tensor(a) for a in (z, s, z)]
    y = torch.tensor([2, 4, 1])
    assert np.isnan(klloss.oracle.intermediates(z, s, z, y.numpy(), 1.5)["per_sample"][2])
    rows, _ = loss_and_grad(form, *args, y, 1.5, reduction="none")
    assert math.isnan(rows[2].item())
    parts = klloss.oracle.intermediates(z[:2], s[:2], z[:2], y[:2].numpy(), 1.5)
    np.testing.assert_allclose(rows[:2].numpy(), parts["per_sample"], rtol=1e-12)
    for reduction in ("batchmean", "sum"):
        value, _ = loss_and_grad(form, *args, y, 1.5, reduction=reduction)
        assert math.isnan(value.item()), reduction


# -- 8. narrow label dtypes: compared with ignore_index without wrapping (issue 25) ----------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("dtype", "label", "ignore_index"),
    [
        (torch.uint8, [156, 1, 255], -100),  # -100 wraps to 156 in uint8: row 0 is a class, kept
        (torch.uint8, [156, 1, 255], 255),  # in range: row 2 ignored
        (torch.int32, [0, 1, 2], 2**40),  # 2**40 wraps to 0 in int32: row 0 kept
        (torch.int8, [-100, 1, 127], -100),  # in range: row 0 ignored
        (torch.int16, [200, -100, 3], -100),
    ],
)
def test_narrow_label_dtypes_match_the_oracle_in_int64(form, dtype, label, ignore_index):
    rng = np.random.default_rng(5)
    z, s = rng.normal(0, 2, (3, 260)), rng.normal(0, 2, (3, 260))
    args = [torch.tensor(a) for a in (z, s, z)]
    y = torch.tensor(label, dtype=dtype)
    parts = klloss.oracle.intermediates(
        z, s, z, np.array(label, dtype=np.int64), 1.5, ignore_index=ignore_index
    )
    for reduction in ("batchmean", "none"):
        value, grad = loss_and_grad(form, *args, y, 1.5, reduction=reduction, ignore_index=ignore_index)
        expected = parts["loss"] if reduction == "batchmean" else parts["per_sample"]
        np.testing.assert_allclose(value.numpy(), expected, rtol=1e-12, atol=0)
        assert torch.isfinite(grad).all()
    # the diagnostic counts the same rows: at beta = 0.3 every kept row but the last one has a
    # negative weight
    kept = np.array(label) != ignore_index
    last = np.flatnonzero(kept)[-1]
    z[last, label[last]] = z.max() + 1
    share = klloss.negative_weight_share(torch.tensor(z), y, 0.3, ignore_index=ignore_index)
    weight = klloss.oracle.intermediates(z, s, z, np.array(label), 0.3, ignore_index=ignore_index)["weight"]
    negative = (weight < 0).any(-1) & kept
    assert negative.sum() == kept.sum() - 1
    assert share.item() == pytest.approx(negative.sum() / kept.sum(), rel=1e-6)
