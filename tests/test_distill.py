"""The student-first entry point, klloss.margin_kd_loss / MarginKDLoss: every option against the
float64 oracle and, in its limits, against F.kl_div; the count for the batch mean; the parts of
the identity; the guards against a wrong order."""

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import EPS, batches
from hypothesis import given
from hypothesis import strategies as st

import klloss

OPTIONS = st.fixed_dictionaries(
    {
        "temperature": st.sampled_from([0.5, 1.0, 4.0]),
        "normalize": st.booleans(),
        "clamp": st.booleans(),
    }
)


def _oracle(teacher, student, label, beta, **options):
    return klloss.oracle.intermediates(teacher, student, teacher, label, beta, ignore_index=-100, **options)


def _scale(parts, factor):
    """The size rounding errors live on (as helpers.loss_scale), for the options' p, q, w and f."""
    size = np.abs(parts["weight"]) * parts["target_prob"]
    size = size * (1 + np.abs(parts["log_target"]) + np.abs(parts["log_input"]))
    return abs(factor) * float(size.sum()) / size.shape[0]


def _tensors(teacher, student, label, dtype=torch.float64):
    z = torch.tensor(teacher, dtype=dtype)
    s = torch.tensor(student, dtype=dtype, requires_grad=True)
    return s, z, torch.tensor(label)


@pytest.mark.parametrize("impl", ["auto", "reference"])
@given(batch=batches(), options=OPTIONS)
def test_every_option_matches_the_oracle(impl, batch, options):
    teacher, student, _, label, beta = batch
    parts = _oracle(teacher, student, label, beta, **options)
    factor = options["temperature"] ** 2 / (8.0 if options["normalize"] else 1.0)
    s, z, y = _tensors(teacher, student, label)
    got = klloss.margin_kd_loss(s, z, y, margin_scale=beta, impl=impl, **options).item()
    assert abs(got - parts["loss"]) <= 1e-12 * _scale(parts, factor) + 1e-300


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_at_infinite_margin_scale_it_is_plain_kd(temperature, impl):
    # normalize=True: f = T^2 / k and every weight is k, so L = T^2 KL(p_T || q_T), as KD
    gen = torch.Generator().manual_seed(1)
    z = 4 * torch.randn(2, 7, 11, generator=gen, dtype=torch.float64)
    s = 4 * torch.randn(2, 7, 11, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 11, (2, 7), generator=gen)
    got = klloss.margin_kd_loss(s, z, y, margin_scale=math.inf, temperature=temperature, impl=impl)
    t = temperature
    log_q, log_p = F.log_softmax(s / t, -1).reshape(-1, 11), F.log_softmax(z / t, -1).reshape(-1, 11)
    kd = t * t * F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    torch.testing.assert_close(got, kd, rtol=1e-13, atol=0)
    (g_got,) = torch.autograd.grad(got, s)
    (g_kd,) = torch.autograd.grad(kd, s)
    torch.testing.assert_close(g_got, g_kd, rtol=1e-12, atol=1e-15)


def test_normalize_divides_the_article_loss_by_the_offset(sample):
    args = sample.tensors(torch.float64)
    s, z, y = args["input"], args["target"], args["label"]
    article = klloss.klloss_v2(z, s, z, y, sample.beta)
    raw = klloss.margin_kd_loss(s, z, y, margin_scale=sample.beta, normalize=False)
    normalized = klloss.margin_kd_loss(s, z, y, margin_scale=sample.beta)
    assert torch.equal(raw, article)  # the same computation, the student first
    torch.testing.assert_close(normalized, article / 8.0, rtol=1e-15, atol=0)


@pytest.mark.parametrize("temperature", [0.5, 3.0])
@pytest.mark.parametrize("clamp", [False, True])
def test_gradient_with_every_option_passes_gradcheck(temperature, clamp):
    gen = torch.Generator().manual_seed(2)
    z = 3 * torch.randn(5, 6, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, -100, 4])
    z[0, 3] = z[0, 0] + 20.0  # row 0: a class 20 above the label, weight (-20 / 1.5 + 8) < 0
    s = torch.randn(5, 6, generator=gen, dtype=torch.float64, requires_grad=True)

    def f(s):
        return klloss.margin_kd_loss(s, z, y, temperature=temperature, clamp=clamp)

    assert torch.autograd.gradcheck(f, (s,))
    assert torch.autograd.gradgradcheck(f, (s,))


@pytest.mark.parametrize("impl", ["auto", "reference"])
def test_micro_batches_with_the_count_give_the_one_batch_gradient(impl):
    # gradient accumulation: each micro-batch divided by the rows kept in the whole batch
    gen = torch.Generator().manual_seed(3)
    z = 2 * torch.randn(8, 13, generator=gen, dtype=torch.float64)
    s = torch.randn(8, 13, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 13, (8,), generator=gen)
    y[[1, 5, 6, 7]] = -100  # uneven padding: 3 rows kept in the first half, 1 in the second
    whole = klloss.margin_kd_loss(s, z, y, temperature=2.0, impl=impl)
    (g_whole,) = torch.autograd.grad(whole, s)
    count = (y != -100).sum()  # a tensor: never read on the host
    total = sum(
        klloss.margin_kd_loss(s[part], z[part], y[part], temperature=2.0, num_items_in_batch=count, impl=impl)
        for part in (slice(0, 4), slice(4, 8))
    )
    (g_parts,) = torch.autograd.grad(total, s)
    torch.testing.assert_close(total, whole, rtol=1e-14, atol=0)
    torch.testing.assert_close(g_parts, g_whole, rtol=1e-13, atol=1e-16)
    # without the count, each half is its own mean: the halves weigh 3 and 1 rows alike
    halves = sum(klloss.margin_kd_loss(s[p], z[p], y[p], temperature=2.0) for p in (slice(0, 4), slice(4, 8)))
    assert not torch.allclose(halves / 2, whole)


@given(batch=batches(), options=OPTIONS)
def test_parts_are_the_identity(batch, options):
    teacher, student, _, label, beta = batch
    s, z, y = _tensors(teacher, student, label)
    parts = klloss.margin_kd_loss(s, z, y, margin_scale=beta, return_parts=True, **options)
    oracle = _oracle(teacher, student, label, beta, **options)
    factor = options["temperature"] ** 2 / (8.0 if options["normalize"] else 1.0)
    tol = 1e-12 * _scale(oracle, factor) * len(label) + 1e-300
    np.testing.assert_allclose(parts.per_row.detach().numpy(), oracle["per_sample"], rtol=0, atol=tol)
    torch.testing.assert_close(parts.loss, klloss.margin_kd_loss(s, z, y, margin_scale=beta, **options))
    # W_i = sum_c w_c p_c from the oracle's weight and p
    w_p = np.where(oracle["target_prob"] > 0, oracle["weight"] * oracle["target_prob"], 0.0)
    np.testing.assert_allclose(parts.weight_sum.numpy(), w_p.sum(1), rtol=1e-12, atol=1e-300)
    defined = ~np.isnan(parts.kl_to_optimum.numpy())
    # q* is a distribution exactly where no class with p > 0 has a negative weight
    negative = ((oracle["weight"] < 0) & (oracle["target_prob"] > 0)).any(1)
    np.testing.assert_array_equal(defined, ~negative & (w_p.sum(1) > 0))
    if options["clamp"]:
        assert not negative.any()
    rhs = factor * parts.weight_sum * parts.kl_to_optimum + parts.lower_bound
    per_row = parts.per_row.detach()
    torch.testing.assert_close(per_row[defined], rhs[defined], rtol=1e-9, atol=tol)
    assert (parts.kl_to_optimum[defined] >= -1e-12).all()  # a KL divergence
    assert (per_row[defined] >= parts.lower_bound[defined] - tol).all()  # the row's minimum


def test_at_the_optimum_the_loss_is_its_lower_bound():
    # s = log q* with q* = w p / W: KL(q* || q) = 0 and L_i = L_min,i
    gen = torch.Generator().manual_seed(4)
    z = 2 * torch.randn(4, 9, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 9, (4,), generator=gen)
    w = klloss.weight(klloss.margin(z, y), 1.5)
    assert (w > 0).all()
    w_p = w * torch.softmax(z, -1)
    s = (w_p / w_p.sum(-1, keepdim=True)).log()
    parts = klloss.margin_kd_loss(s, z, y, return_parts=True, reduction="none")
    assert (parts.kl_to_optimum.abs() < 1e-14).all()
    torch.testing.assert_close(parts.per_row, parts.lower_bound, rtol=1e-12, atol=1e-14)


def test_clamp_bounds_a_row_that_otherwise_has_no_minimum():
    # a row with a class 20 above the label at beta = 1.5: w = 8 - 20/1.5 < 0 there, on a class
    # with p near 1; the term -w p log q of that class falls without bound as the student lowers
    # its logit (log q -> -inf): the plain loss has no minimum, the clamped one (w~ = 0) has
    z = torch.tensor([[0.0, 20.0, 1.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([0])
    plain, clamped = [], []
    for lift in (10.0, 100.0, 1000.0):
        s = torch.tensor([[0.0, -lift, 0.0, 0.0]], dtype=torch.float64)
        plain.append(klloss.margin_kd_loss(s, z, y).item())
        clamped.append(klloss.margin_kd_loss(s, z, y, clamp=True, return_parts=True))
    assert plain[0] > plain[1] > plain[2]
    assert plain[2] < -100  # falls linearly with the lift
    for parts in clamped:
        assert parts.loss.item() >= parts.lower_bound.item() > -math.inf


def test_a_bfloat16_student_beside_a_float32_teacher():
    gen = torch.Generator().manual_seed(5)
    z = 3 * torch.randn(6, 10, generator=gen)
    s = (3 * torch.randn(6, 10, generator=gen)).bfloat16().requires_grad_(True)
    y = torch.randint(0, 10, (6,), generator=gen)
    got = klloss.margin_kd_loss(s, z, y, temperature=2.0)
    assert got.dtype == torch.float32
    got.backward()
    assert s.grad.dtype == torch.bfloat16
    # the oracle on the same (bfloat16-rounded) student: float32 arithmetic is what is left
    parts = _oracle(
        z.double().numpy(), s.detach().double().numpy(), y.numpy(), 1.5, temperature=2.0, normalize=True
    )
    assert abs(got.item() - parts["loss"]) <= 64 * EPS[torch.float32] * _scale(parts, 4.0 / 8.0)
    s64 = s.detach().double().requires_grad_(True)
    (g64,) = torch.autograd.grad(klloss.margin_kd_loss(s64, z.double(), y, temperature=2.0), s64)
    # the float32 gradient, rounded once to bfloat16 (relative 2^-8), plus float32 arithmetic
    bound = 2.0**-8 * g64.abs() + 64 * EPS[torch.float32] * g64.abs().max()
    assert ((s.grad.double() - g64).abs() <= bound).all()


# --- a wrong order fails loudly -----------------------------------------------------------------


def _batch(seed=6):
    gen = torch.Generator().manual_seed(seed)
    teacher_net = torch.nn.Linear(4, 5)
    student_net = torch.nn.Linear(4, 5)
    x = torch.randn(3, 4, generator=gen)
    return student_net(x), teacher_net(x), torch.tensor([0, 2, 4])


def test_a_teacher_that_requires_grad_beside_a_student_that_does_not_is_refused():
    # margin_kd_loss(teacher, student, ...) with a frozen student... or simply a frozen student
    student, teacher, y = _batch()
    expected = r"^teacher_logits requires grad but student_logits does not.*margin_kd_loss\(student_logits, "
    with pytest.raises(ValueError, match=expected):
        klloss.margin_kd_loss(student.detach(), teacher, y)
    with pytest.raises(ValueError, match=expected):
        klloss.MarginKDLoss()(student.detach(), teacher, y)


def test_the_article_order_swapped_is_refused():
    # KLLossV2 takes (logits_t, input, target, label); the student first, in the habit of TRL,
    # used to give 0 and no gradient
    student, teacher, y = _batch()
    criterion, frozen = klloss.KLLossV2(beta=1.5), teacher.detach()
    with pytest.raises(ValueError, match=r"^target is the same tensor as input.*teacher's logits first"):
        criterion(student, frozen, frozen, y)
    with pytest.raises(ValueError, match=r"^logits_t and target require grad but input does not"):
        klloss.klloss_v2(student, teacher.detach(), student, y, 1.5)
    with pytest.raises(ValueError, match=r"^logits_t requires grad but input does not"):
        klloss.klloss_v2(student, teacher.detach(), teacher.detach(), y, 1.5)


def test_the_student_passed_as_the_teacher_is_refused():
    student, _, y = _batch()
    with pytest.raises(ValueError, match="teacher_logits is the same tensor as student_logits"):
        klloss.margin_kd_loss(student, student, y)
    # in evaluation too: comparing the student with itself is never meant
    with (
        torch.no_grad(),
        pytest.raises(ValueError, match="teacher_logits is the same tensor as student_logits"),
    ):
        klloss.margin_kd_loss(student, student, y)


def test_evaluation_and_an_unfrozen_teacher_still_work():
    student, teacher, y = _batch()
    with torch.no_grad():  # evaluation: teacher and student computed with grad, read without
        evaluated = klloss.margin_kd_loss(student, teacher, y)
    assert evaluated.requires_grad is False
    loss = klloss.margin_kd_loss(student, teacher, y)  # both require grad: the teacher is detached
    expected = klloss.margin_kd_loss(student, teacher.detach(), y)
    torch.testing.assert_close(loss, expected, rtol=0, atol=0)
    torch.testing.assert_close(evaluated, expected.detach(), rtol=0, atol=0)
    (g_teacher,) = torch.autograd.grad(loss, teacher, allow_unused=True, materialize_grads=True)
    assert (g_teacher == 0).all()


# --- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"temperature": 0.0}, ValueError, "temperature must be a finite number > 0, got 0.0"),
        ({"temperature": -1}, ValueError, "temperature must be a finite number > 0, got -1"),
        ({"temperature": math.inf}, ValueError, "temperature must be a finite number > 0, got inf"),
        ({"temperature": math.nan}, ValueError, "temperature must be a finite number > 0, got nan"),
        ({"temperature": "2"}, TypeError, "temperature must be a real number, got str"),
        ({"normalize": 1}, TypeError, "normalize must be True or False, got 1"),
        ({"clamp": None}, TypeError, "clamp must be True or False, got None"),
        ({"offset": 0.0}, ValueError, "offset must be > 0 when normalize=True"),
        ({"margin_scale": 0.0}, ValueError, "margin_scale must be > 0, got 0.0"),
        (
            {"beta": 0.5},
            TypeError,
            "margin_kd_loss takes no beta: the article's beta, the scale of the teacher's",
        ),
        ({"temprature": 2.0}, TypeError, "margin_kd_loss got an unexpected keyword argument 'temprature'"),
        ({"num_items_in_batch": 20.5}, ValueError, "num_items_in_batch must be a whole number of rows"),
        ({"num_items_in_batch": 0}, ValueError, "num_items_in_batch must be > 0, got 0"),
        (
            {"num_items_in_batch": True},
            TypeError,
            "num_items_in_batch must be a number or a tensor, got bool",
        ),
        (
            {"num_items_in_batch": torch.ones(2)},
            ValueError,
            "num_items_in_batch must be a number or a one-element",
        ),
        (
            {"num_items_in_batch": 3, "reduction": "sum"},
            ValueError,
            "num_items_in_batch divides the sum of the rows, so it needs reduction='batchmean'",
        ),
        ({"impl": "cuda"}, ValueError, "impl must be one of"),
    ],
)
def test_bad_options_are_named(kwargs, error, message):
    student, teacher, y = _batch()
    with pytest.raises(error, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        klloss.margin_kd_loss(student, teacher.detach(), y, **kwargs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"teacher": torch.zeros(3, 7)},
            "teacher_logits must have the same shape as student_logits (3, 5), got (3, 7); the vocabularies "
            "differ: align them first (teacher_logits[..., :5] where the first classes are the same)",
        ),
        ({"y": torch.tensor([0, 1])}, "labels must have shape student_logits.shape[:-1] = (3,), got (2,)"),
        ({"y": None}, "labels must be a torch.Tensor of integers, got NoneType"),
        ({"y": torch.tensor([0, 1, 9])}, "labels values must lie in [0, C) = [0, 5)"),
    ],
)
def test_errors_use_this_entry_points_names(change, message):
    # the checks are shared with klloss_v2, whose arguments have the article's names
    student, teacher, y = _batch()
    args = {"teacher": teacher.detach(), "y": y, **change}
    with pytest.raises((TypeError, ValueError), match="^" + re.escape(message)):
        klloss.margin_kd_loss(student, args["teacher"], args["y"])
    with pytest.raises((TypeError, ValueError), match="^" + re.escape(message)):
        klloss.MarginKDLoss()(student, args["teacher"], args["y"])


def test_a_module_refuses_beta_with_a_pointer():
    with pytest.raises(TypeError, match=r"^margin_kd_loss takes no beta.*margin_scale here"):
        klloss.MarginKDLoss(beta=0.5)


def test_options_are_keyword_only():
    student, teacher, y = _batch()
    with pytest.raises(TypeError):
        klloss.margin_kd_loss(student, teacher.detach(), y, 1.5)
    with pytest.raises(TypeError):
        klloss.MarginKDLoss(1.5)


def test_the_module_is_the_function():
    student, teacher, y = _batch()
    module = klloss.MarginKDLoss(margin_scale=2.0, temperature=3.0, clamp=True)
    assert repr(module) == (
        "MarginKDLoss(margin_scale=2.0, offset=8.0, temperature=3.0, normalize=True, clamp=True, "
        "reduction='batchmean', ignore_index=-100)"
    )
    count = torch.tensor(7)
    got = module(student, teacher.detach(), y, num_items_in_batch=count)
    expected = klloss.margin_kd_loss(
        student, teacher.detach(), y, margin_scale=2.0, temperature=3.0, clamp=True, num_items_in_batch=count
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    parts = module(student, teacher.detach(), y, return_parts=True)
    assert isinstance(parts, klloss.Parts)
