"""The Triton kernels (klloss._triton) against the float64 oracle and the torch path.

Without a GPU they run on the CPU in Triton's interpreter: tests/conftest.py sets
TRITON_INTERPRET=1 before klloss is imported wherever CUDA is not available. On a GPU the same
checks run compiled (tests/test_cuda.py adds what only a GPU shows: host synchronisation, speed).

The error model. A correct float32 computation of L_i = sum_c w_c p_c (log p_c - log q_c) rounds
each term relative to its size, (|m_c|/beta + |k|) p_c (1 + |log p_c| + |log q_c|): the weight
relative to its two parts (margin first, then scaled), the log-probabilities relative to their own
size, which a shift of the logits does not change. Sums add one rounding per level of the
block's tree and one per block. So |L_i - L_i*| <= TOL(C) * size_i with
TOL(C) = 16 eps32 (4 + log2 C + blocks), and the same for the gradient q_c W - w_c p_c with the
sizes of its two parts; a float16/bfloat16 gradient adds one rounding to its own precision. Each
rounding may also lose an absolute 2**-150 where numbers fall below float32's normal range (a
weight of m / 1e30 makes a gradient of 1e-40), so TOL(C) / eps32 of those are allowed besides.

With a temperature T the log-probabilities are those of z/T and s/T. Where T is a power of 2 the
kernels' z * (1/T) is exact and nothing changes; elsewhere each scaled logit is rounded twice (1/T,
then the product), which moves log p_c and log q_c by up to 4 eps32 max_j |x_j / T|: the spread
max |z/T| + max |s/T| is then added to the factors (1 + |log p_c|) and (1 + |log q_c|) of the
sizes. With clamp, a weight well below 0 (by more than 1e-3 of its parts, or -inf) is 0 exactly
in both computations and adds nothing to the size. The factor f (T^2, or T^2/k) multiplies the
loss, the gradient and their bounds.
"""

import dataclasses
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from helpers import COMPILE_WARNINGS
from hypothesis import given, settings
from hypothesis import strategies as st

import klloss
from klloss import _triton
from klloss.options import Options

# the lock pins Triton for the tests; only `make test-oldest`, which checks the library on its
# oldest numpy, runs without it
# and every kernel runs in Triton's interpreter, about a second a test: slow (make test, not make check)
pytestmark = [
    pytest.mark.skipif(_triton.triton is None, reason="Triton is not installed here"),
    pytest.mark.slow,
]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
EPS32 = 2.0**-24
ETA32 = 2.0**-150  # the absolute rounding error of float32 below its normal range
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def tol(c, block=None):
    """TOL(C) of the error model above."""
    blocks = math.ceil(c / (block or _triton.MAX_BLOCK))
    return 16 * EPS32 * (4 + math.log2(max(c, 2)) + blocks)


def loss_settings(options):
    """(T, clamp, f) of ``options``, read here from their definitions (not from Options.factor):
    the temperature, whether weights are clamped at 0, and the factor f = T^2 (T^2 / k with
    normalize)."""
    t = options.temperature
    factor = t**2 / options.offset if options.normalize else t**2
    return t, options.clamp, factor


def with_settings(options, **fields):
    """``options`` with other fields (``temperature``, ``normalize``, ``clamp`` among them), checked."""
    return dataclasses.replace(options, **fields)


def oracle_rows(logits_t, input, target, label, options):
    """float64 NumPy, from the formula: (L_i, dL_i/ds, size_i, gradient size), ignored rows 0,
    classes with p = 0 adding 0 whatever their weight; with the temperature, clamp and factor of
    ``options`` (:func:`loss_settings`). Built on klloss.oracle.log_softmax."""
    zm, s, z = (np.asarray(x, dtype=np.float64) for x in (logits_t, input, target))
    y = np.asarray(label, dtype=np.int64)
    temperature, clamp, factor = loss_settings(options)
    kept = np.ones(y.shape, bool) if options.ignore_index is None else y != options.ignore_index
    log_q, log_p = klloss.oracle.log_softmax(s / temperature), klloss.oracle.log_softmax(z / temperature)
    q, p = np.exp(log_q), np.exp(log_p)
    live = p > 0
    if options.beta == math.inf:
        scaled = np.zeros_like(z)
    else:
        z_label = zm[np.arange(len(y)), np.where(kept, y, 0)][:, None]
        scaled = np.where(live, z_label - np.where(live, zm, 0.0), 0.0) / options.beta  # m / beta
    parts = np.abs(scaled) + abs(options.offset)  # |m| / beta + |k|
    w = np.where(live, scaled + options.offset, 0.0)  # w = m / beta + k from the raw z'
    if clamp:
        negative = (w < 0) & ((w < -1e-3 * parts) | np.isinf(w))  # 0 in float32 too
        w, parts = np.maximum(w, 0.0), np.where(negative, 0.0, parts)  # max(w, 0)
    log_ratio = np.where(live, log_p, 0.0) - log_q  # log p - log q where p > 0
    rows = factor * (w * p * log_ratio).sum(1) * kept  # f sum w p (log p - log q)
    grad = factor / temperature * (q * (w * p).sum(1, keepdims=True) - w * p) * kept[:, None]
    spread = 0.0  # the rounding of z * (1/T), s * (1/T): none where T is a power of 2
    if math.frexp(temperature)[0] != 0.5:
        largest = [np.abs(np.where(np.isfinite(x), x, 0.0)).max(1, keepdims=True) for x in (z, s)]
        spread = (largest[0] + largest[1]) / temperature  # -inf / T is exact
    part = parts * p * (1 + np.abs(np.where(live, log_p, 0.0)) + spread)
    size = abs(factor) * (part * (1 + np.abs(log_q) + spread)).sum(1)
    grad_size = q * (1 + np.abs(log_q) + spread) * part.sum(1, keepdims=True) + part
    return rows, grad, size, abs(factor) / temperature * grad_size


def run(logits_t, input, target, label, options):
    """The kernels' (loss, gradient w.r.t. input) on DEVICE; logits_t None when it is target."""
    s = input.to(DEVICE).detach().requires_grad_(True)
    z = target.to(DEVICE)
    zm = None if logits_t is None else logits_t.to(DEVICE)
    out = _triton.loss(s, z, zm, label.to(DEVICE), options)
    (grad,) = torch.autograd.grad(out.sum(), s)
    return out.detach().cpu(), grad.cpu()


def batch(shape, c, dtype=torch.float32, seed=0, padding=3):
    """(teacher, student, label): random logits of shape (*shape, C), every `padding`-th label -100."""
    gen = torch.Generator().manual_seed(seed)
    teacher = (3 * torch.randn(*shape, c, generator=gen, dtype=torch.float64)).to(dtype)
    student = torch.randn(*shape, c, generator=gen, dtype=torch.float64).to(dtype)
    label = torch.randint(0, c, shape, generator=gen)
    if padding:
        label.view(-1)[::padding] = -100
    return teacher, student, label


def reduced(options, reduction):
    """``options`` with another reduction."""
    return dataclasses.replace(options, reduction=reduction)


def check_against_oracle(teacher, student, label, options, logits_t=None, block=None):
    """Per-row losses and the gradient from the kernels within the error model of the oracle's."""
    c = student.shape[-1]
    rows_options = reduced(options, "none")
    rows, grad = run(logits_t, student, teacher, label, rows_options)
    flat = [
        x.reshape(-1, c).double().cpu().numpy() for x in (teacher if logits_t is None else logits_t, student)
    ]
    labels = label.reshape(-1).cpu().numpy()
    want, want_grad, size, grad_size = oracle_rows(
        flat[0], flat[1], teacher.reshape(-1, c).double().cpu().numpy(), labels, rows_options
    )
    bound = tol(c, block)
    floor = bound / EPS32 * ETA32  # below float32's normal range
    assert rows.dtype == torch.float32
    assert rows.shape == label.shape
    np.testing.assert_array_less(np.abs(rows.reshape(-1).double().numpy() - want), bound * size + floor)
    assert grad.dtype == student.dtype
    rounding = 0.0 if student.dtype == torch.float32 else torch.finfo(student.dtype).eps
    got_grad = grad.reshape(-1, c).double().numpy()
    error = np.abs(got_grad - want_grad)
    assert np.all(error <= bound * grad_size + rounding * np.abs(want_grad) + floor), error.max()
    return rows, grad


def test_runs_interpreted_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("compiled on this machine")
    assert _triton.INTERPRETED
    assert _triton.available("cpu")


@pytest.mark.parametrize(
    ("shape", "c"),
    [((8,), 1), ((16,), 10), ((2, 4), 37), ((6,), 1000), ((3,), 5000)],
    ids=["C=1", "C=10", "C=37 (not a power of 2), (B, T, C)", "C=1000", "C=5000 (two blocks)"],
)
def test_matches_the_oracle(shape, c):
    teacher, student, label = batch(shape, c)
    check_against_oracle(teacher, student, label, Options(1.5))


@pytest.mark.parametrize("c", [100, 64, 17])
def test_block_loop_matches_the_oracle(c, monkeypatch):
    # blocks of 16 classes: 100 = 6 x 16 + 4 (a part block at the end), 64 = 4 full blocks
    monkeypatch.setattr(_triton, "MAX_BLOCK", 16)
    teacher, student, label = batch((5,), c, seed=c)
    teacher[1, 40 % c] += 30.0  # a new maximum late in a row rescales the sums
    check_against_oracle(teacher, student, label, Options(0.7), block=16)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs(dtype):
    teacher, student, label = batch((12,), 300, dtype)
    rows, grad = check_against_oracle(teacher, student, label, Options(1.5))
    assert grad.dtype == dtype
    assert rows.dtype == torch.float32


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
@pytest.mark.parametrize("ignore_index", [-100, None, 4])
def test_reductions_and_ignore_index_match_the_torch_path(reduction, ignore_index):
    teacher, student, label = batch((3, 5), 10, seed=1)
    if ignore_index != -100:  # no padding, or padding marked by a class (4)
        label = label.clamp(min=0)
        label.view(-1)[::4] = 4
    options = Options(2.0, offset=3.0, reduction=reduction, ignore_index=ignore_index)
    got, grad = run(None, student, teacher, label, options)
    s = student.double().requires_grad_(True)
    want = klloss.klloss_v2(
        teacher.double(),
        s,
        teacher.double(),
        label,
        2.0,
        offset=3.0,
        reduction=reduction,
        ignore_index=ignore_index,
    )
    (want_grad,) = torch.autograd.grad(want.sum(), s)
    assert got.dtype == torch.float32
    assert got.shape == want.shape
    torch.testing.assert_close(got.double(), want.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad.double(), want_grad, rtol=1e-5, atol=1e-7)
    kept = label != ignore_index if ignore_index is not None else torch.ones_like(label, dtype=torch.bool)
    assert torch.all(grad[~kept] == 0)
    assert torch.all(grad[kept].abs().sum(-1) > 0)


def test_batchmean_divides_by_the_rows_kept():
    teacher, student, label = batch((10,), 10, padding=2)  # 5 of 10 rows ignored
    rows, _ = run(None, student, teacher, label, Options(1.5, reduction="none"))
    mean, _ = run(None, student, teacher, label, Options(1.5))
    assert int((label != -100).sum()) == 5
    torch.testing.assert_close(mean, rows.sum() / 5)


def test_every_row_ignored_gives_zero():
    teacher, student, label = batch((4,), 10)
    label[:] = -100
    for reduction in ("batchmean", "sum"):
        loss, grad = run(None, student, teacher, label, Options(1.5, reduction=reduction))
        assert loss.item() == 0.0
        assert torch.all(grad == 0)


def test_empty_batch():
    teacher, student, label = batch((0,), 10)
    loss, grad = run(None, student, teacher, label, Options(1.5))
    assert loss.item() == 0.0
    assert grad.shape == (0, 10)


def test_separate_margin_logits_beta_inf_and_offset():
    teacher, student, label = batch((6,), 50, seed=2)
    margin_logits = teacher + torch.randn(teacher.shape, generator=torch.Generator().manual_seed(3))
    check_against_oracle(teacher, student, label, Options(0.5, offset=-2.0), logits_t=margin_logits)
    check_against_oracle(teacher, student, label, Options(math.inf, offset=5.0), logits_t=margin_logits)
    # beta = inf: w = k, so the loss is k KL(p || q) and reads no label
    rows, _ = run(None, student, teacher, label, Options(math.inf, offset=5.0, reduction="none"))
    kl = torch.nn.functional.kl_div(
        torch.log_softmax(student, -1), torch.log_softmax(teacher, -1), reduction="none", log_target=True
    ).sum(-1)
    torch.testing.assert_close(rows, torch.where(label == -100, 0.0, 5.0 * kl))


def test_strided_inputs():
    # a column slice (rows farther apart than C: read in place) and every other column (copied)
    teacher, student, label = batch((6,), 60, seed=10)
    wide = torch.cat([student, torch.zeros(6, 9)], dim=1)[:, :60]
    assert wide.stride(0) == 69
    check_against_oracle(teacher, wide, label, Options(1.5))
    spaced = torch.stack([teacher, teacher], dim=-1).reshape(6, 120)[:, ::2]
    assert spaced.stride(-1) == 2
    check_against_oracle(spaced, student, label, Options(1.5))


def test_int32_labels():
    teacher, student, label = batch((6,), 20)
    check_against_oracle(teacher, student, label.int(), Options(1.5))


# labels: any stride, any integer dtype, compared with ignore_index without wrapping


def check_batchmean(teacher, student, label, options, logits_t=None):
    """The batch mean from the kernels against klloss.oracle.klloss_v2 (float64, labels in int64),
    within the rows' bound of the error model plus the rounding of a float32 sum of N rows."""
    c = student.shape[-1]
    got, _ = run(logits_t, student, teacher, label, dataclasses.replace(options, reduction="batchmean"))
    flat = [x.reshape(-1, c).double().cpu().numpy() for x in (teacher, student)]
    labels = label.reshape(-1).cpu().numpy().astype(np.int64)
    want = klloss.oracle.klloss_v2(
        flat[0], flat[1], flat[0], labels, options.beta, options.offset, options.ignore_index
    )
    rows, _, size, _ = oracle_rows(flat[0], flat[1], flat[0], labels, reduced(options, "none"))
    kept = max(
        int(np.sum(labels != options.ignore_index)) if options.ignore_index is not None else len(labels), 1
    )
    bound = tol(c) * size.sum() + (len(labels) + 1) * EPS32 * np.abs(rows).sum()
    assert abs(got.item() - want) <= bound / kept, (got.item(), want)
    return got


def on_device(label):
    """``label`` made on DEVICE with its strides (``Tensor.to`` may make a copy contiguous)."""
    return torch.empty_strided(label.shape, label.stride(), dtype=label.dtype, device=DEVICE).copy_(label)


def test_labels_are_read_at_their_stride():
    # every other entry of a (N, 2) tensor (stride 2), one label expanded to every row (stride 0),
    # and a (B, T) label taken as buf[..., 0]; the old kernels read label_ptr + row: 0, 5, 1, 5
    teacher, student, _ = batch((4,), 6, seed=11)
    pairs = on_device(torch.tensor([[0, 5], [1, 5], [2, 5], [3, 5]]))
    strided = pairs[:, 0]
    assert strided.stride() == (2,)
    check_against_oracle(teacher, student, strided, Options(1.5))
    check_batchmean(teacher, student, strided, Options(1.5))
    expanded = on_device(torch.tensor([3])).expand(4)
    assert expanded.stride() == (0,)
    check_against_oracle(teacher, student, expanded, Options(1.5))
    check_batchmean(teacher, student, expanded, Options(1.5))
    # (B, T) = (2, 3) in a buffer of (label, something else) pairs, every third row ignored
    teacher, student, label = batch((2, 3), 7, seed=12)
    for dtype in (torch.int64, torch.int32):
        buf = on_device(torch.stack([label, torch.full_like(label, 6)], dim=-1).to(dtype))
        taken = buf[..., 0]
        assert taken.stride() == (6, 2)
        check_against_oracle(teacher, student, taken, Options(1.5))
        check_batchmean(teacher, student, taken, Options(1.5))


@pytest.mark.parametrize(
    ("dtype", "values", "ignore_index", "ignored"),
    [
        (torch.int32, [0, 3, 0, 5], 2**40, 0),  # 2**40 wraps to 0 in int32: not a label here
        (torch.int32, [0, 3, 0, 5], -(2**40), 0),
        (torch.uint8, [156, 3, 156, 0], -100, 0),  # -100 wraps to 156 in uint8
        (torch.uint8, [200, 3, 7, 200], 200, 2),
        (torch.int8, [-56, 3, 7, 0], 200, 0),  # 200 wraps to -56 in int8: not a label here
        (torch.int8, [-100, 3, 7, -100], -100, 2),
        (torch.int16, [0, 3, 7, 1], 2**16, 0),
        (torch.int64, [-(2**63), 3, 7, 1], -(2**63), 1),
    ],
    ids=["int32, 2**40", "int32, -2**40", "uint8 156, -100", "uint8, 200", "int8 -56, 200",
         "int8, -100", "int16, 2**16", "int64, -2**63"],
)  # fmt: skip
def test_labels_compare_with_ignore_index_without_wrapping(dtype, values, ignore_index, ignored):
    # rows whose label equals ignore_index as integers are ignored, and only those; a label that
    # is no class and not ignored (-56 here) gives a NaN row, so it is left out of the oracle's part
    teacher, student, _ = batch((4,), 160, seed=13)
    label = torch.tensor(values, dtype=dtype)
    options = Options(1.5, ignore_index=ignore_index)
    rows, grad = run(None, student, teacher, label.to(DEVICE), dataclasses.replace(options, reduction="none"))
    is_ignored = torch.tensor([int(v) == ignore_index for v in values])
    assert torch.all(rows[is_ignored] == 0)
    assert torch.all(grad[is_ignored] == 0)
    assert int(is_ignored.sum()) == ignored
    valid = torch.tensor([0 <= int(v) < 160 or int(v) == ignore_index for v in values])
    assert torch.isnan(rows[~valid]).all()
    check_against_oracle(teacher[valid], student[valid], label[valid].to(DEVICE), options)
    check_batchmean(teacher[valid], student[valid], label[valid].to(DEVICE), options)


def test_int32_label_zero_is_not_ignore_index_2_pow_40():
    # the example: float64 truth 7.886, the old Triton path twice that (batchmean divided by
    # one row instead of two, the int32 count comparing with 2**40 wrapped to 0)
    gen = torch.Generator().manual_seed(0)
    teacher, student = 3 * torch.randn(2, 5, generator=gen), torch.randn(2, 5, generator=gen)
    label = torch.tensor([0, 3], dtype=torch.int32, device=DEVICE)
    got = check_batchmean(teacher, student, label, Options(1.5, ignore_index=2**40))
    rows, _ = run(None, student, teacher, label, Options(1.5, ignore_index=2**40, reduction="none"))
    torch.testing.assert_close(got, rows.mean(), rtol=2 * EPS32, atol=0)


# undefined teachers and ignored rows


@pytest.mark.parametrize("clamp", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_undefined_teacher_rows_are_nan(temperature, clamp):
    # a NaN teacher logit, a +inf one, a row all -inf, a NaN margin logit, a NaN at the label's
    # margin logit: no teacher distribution or no weight, so NaN in the row's loss and gradient;
    # the other rows as computed alone
    teacher, student, label = batch((7,), 10, seed=14, padding=0)
    margin_logits = teacher.clone()
    teacher[0, 4] = math.nan
    teacher[1, 2] = math.inf
    teacher[2] = -math.inf
    margin_logits[3, 6] = math.nan
    margin_logits[4, label[4]] = math.nan
    options = with_settings(Options(1.5, reduction="none"), temperature=temperature, clamp=clamp)
    for zm, undefined in ((None, 3), (margin_logits, 5)):
        rows, grad = run(zm, student, teacher, label, options)
        assert torch.isnan(rows[:undefined]).all(), rows
        assert torch.isnan(grad[:undefined]).all(), grad
        alone = run(None if zm is None else zm[5:], student[5:], teacher[5:], label[5:], options)
        torch.testing.assert_close(rows[5:], alone[0], rtol=0, atol=0)
        torch.testing.assert_close(grad[5:], alone[1], rtol=0, atol=0)
        mean, _ = run(zm, student, teacher, label, with_settings(options, reduction="batchmean"))
        assert torch.isnan(mean)


@pytest.mark.parametrize("clamp", [False, True])
def test_ignored_rows_give_exactly_zero_whatever_they_hold(clamp):
    # ignored rows holding NaN, +-inf and -inf at class 0 in the teacher, the margin logits and the
    # student: loss 0, gradient 0 and second derivatives 0, exactly; the kept rows as computed alone
    teacher, student, label = batch((8,), 10, seed=15, padding=0)
    margin_logits = teacher + 1.0
    ignored = torch.tensor([True, True, True, True, True, False, False, False])
    label[ignored] = -100
    teacher[0, 3], teacher[1, 0], teacher[2], teacher[3, 1] = math.nan, -math.inf, -math.inf, math.inf
    margin_logits[4, 0], student[4, 2], student[0, 1] = math.nan, math.inf, -math.inf
    student[1] = 1e30
    options = with_settings(Options(0.5), temperature=4.0, clamp=clamp)
    direction = torch.randn(student.shape, generator=torch.Generator().manual_seed(16)).to(DEVICE)
    results = []
    for rows in (slice(None), ~ignored):
        s = student[rows].to(DEVICE).requires_grad_(True)
        z, zm, y = teacher[rows].to(DEVICE), margin_logits[rows].to(DEVICE), label[rows].to(DEVICE)
        out = _triton.loss(s, z, zm, y, reduced(options, "none"))
        (grad,) = torch.autograd.grad(out.sum(), s, create_graph=True)
        (hvp,) = torch.autograd.grad((grad * direction[rows]).sum(), s)
        results.append((out.detach().cpu(), grad.detach().cpu(), hvp.cpu()))
    (rows, grad, hvp), kept = results
    for result in (rows, grad, hvp):
        assert torch.all(result[ignored] == 0)
    for got, alone in zip((rows, grad, hvp), kept, strict=True):
        assert torch.isfinite(alone).all()
        torch.testing.assert_close(got[~ignored], alone, rtol=0, atol=0)


# temperature, clamp and normalize; mixed student and teacher dtypes


def negative_weights(teacher, label, options, rows):
    """``teacher`` with, in ``rows``, a class 20 above the label's logit plus k beta: a negative
    weight (m / beta + k = -20 / beta) on a class with much of p's mass."""
    teacher = teacher.clone()
    for i in rows:
        y = int(label[i]) if int(label[i]) >= 0 else 0
        teacher[i, (y + 1) % teacher.shape[-1]] = teacher[i, y] + options.offset * options.beta + 20.0
    return teacher


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("clamp", [False, True])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 1.7])
def test_temperature_clamp_and_normalize_match_the_formula(temperature, clamp, normalize):
    # L_i = f sum_c w~ p (log p - log q), p = softmax(z/T), q = softmax(s/T), w from the raw z',
    # f = T^2 (or T^2/k); half the rows with negative weights, which clamp makes 0
    teacher, student, label = batch((8,), 37, seed=17)
    options = Options(1.5, offset=3.0)
    teacher = negative_weights(teacher, label, options, range(0, 8, 2))
    tempered = with_settings(options, temperature=temperature, clamp=clamp, normalize=normalize)
    check_against_oracle(teacher, student, label, tempered)
    margin_logits = teacher + torch.randn(teacher.shape, generator=torch.Generator().manual_seed(18))
    check_against_oracle(teacher, student, label, tempered, logits_t=margin_logits)


def test_clamp_changes_only_the_rows_with_negative_weights():
    teacher, student, label = batch((6,), 20, seed=19, padding=0)
    options = Options(1.5, reduction="none")
    teacher = negative_weights(teacher, label, options, [1, 4])
    for temperature in (1.0, 2.0):
        plain, plain_grad = run(
            None, student, teacher, label, with_settings(options, temperature=temperature)
        )
        clamped, clamped_grad = run(
            None, student, teacher, label, with_settings(options, temperature=temperature, clamp=True)
        )
        changed = torch.tensor([False, True, False, False, True, False])
        torch.testing.assert_close(clamped[~changed], plain[~changed], rtol=0, atol=0)
        torch.testing.assert_close(clamped_grad[~changed], plain_grad[~changed], rtol=0, atol=0)
        assert torch.all(clamped[changed] > plain[changed])  # the negative terms left out


def test_clamp_makes_weights_below_float32s_range_zero():
    # beta = 2**-126: a class 10 above the label has m / beta = -8.5e38, beyond float32; unclamped
    # the row is NaN, clamped that weight is 0 and the row matches the formula. A margin of +10
    # (+inf weight on a class with p > 0) stays NaN either way
    teacher, student, label = batch((3,), 10, seed=20, padding=0)
    teacher[:] = 1.0
    label[:] = torch.tensor([1, 2, 3])
    teacher[0, 0] = 11.0  # m = -10 on class 0
    teacher[1, 0] = -9.0  # m = +10 on class 0
    options = Options(2.0**-126, reduction="none")
    rows, _ = run(None, student, teacher, label, options)
    assert torch.isnan(rows[:2]).all()
    clamped = with_settings(options, clamp=True)
    rows, grad = run(None, student, teacher, label, clamped)
    assert torch.isnan(rows[1])
    assert torch.isnan(grad[1]).all()
    keep = torch.tensor([True, False, True])
    got, _ = check_against_oracle(teacher[keep], student[keep], label[keep], clamped)
    assert torch.isfinite(got).all()


def test_clamp_at_beta_inf_uses_max_k_0():
    # beta = inf: every weight is k; clamped, max(k, 0): k = -2 gives 0 loss and gradient exactly
    teacher, student, label = batch((5,), 12, seed=21)
    for offset in (-2.0, 5.0):
        options = with_settings(Options(math.inf, offset=offset), clamp=True, temperature=2.0)
        rows, grad = check_against_oracle(teacher, student, label, options)
        assert torch.all(rows == 0) == (offset < 0)
        assert torch.all(grad == 0) == (offset < 0)


@pytest.mark.parametrize(
    ("student_dtype", "teacher_dtype", "margin_dtype"),
    [
        (torch.bfloat16, torch.float32, None),
        (torch.bfloat16, torch.float32, torch.float32),
        (torch.float32, torch.bfloat16, torch.bfloat16),
        (torch.float16, torch.bfloat16, torch.float32),
    ],
)
def test_mixed_student_and_teacher_dtypes(student_dtype, teacher_dtype, margin_dtype):
    # arithmetic in float32 from each tensor's own dtype; the gradient in the student's; the
    # oracle reads the same rounded inputs
    teacher, student, label = batch((6,), 300, seed=22)
    teacher, student = teacher.to(teacher_dtype), student.to(student_dtype)
    margin_logits = None if margin_dtype is None else (teacher.double() - 0.5).to(margin_dtype)
    options = with_settings(Options(1.5), temperature=2.0, clamp=True)
    _, grad = check_against_oracle(teacher, student, label, options, logits_t=margin_logits)
    assert grad.dtype == student_dtype


def tempered_torch(zm, s, z, label, options):
    """The per-row losses from the formula in float64 torch, differentiable in ``s`` to any
    order: f sum_c w~ p (log p - log q), p = softmax(z/T), q = softmax(s/T), w from the raw z'."""
    temperature, clamp, factor = loss_settings(options)
    kept = label != options.ignore_index
    y = torch.where(kept, label, 0)
    w = (zm.gather(-1, y.unsqueeze(-1)) - zm) / options.beta + options.offset
    w = w.clamp(min=0) if clamp else w
    log_p, log_q = torch.log_softmax(z / temperature, -1), torch.log_softmax(s / temperature, -1)
    rows = factor * (w * log_p.exp() * (log_p - log_q)).sum(-1)
    return torch.where(kept, rows, 0.0)


def test_temperature_and_clamp_with_double_backward_and_torch_func():
    teacher, student, label = batch((5,), 9, seed=23)
    teacher = negative_weights(teacher, label, Options(1.5), [1, 3])
    options = with_settings(Options(1.5, reduction="sum"), temperature=3.0, clamp=True, normalize=True)
    z, y = teacher.to(DEVICE), label.to(DEVICE)
    direction = torch.randn(student.shape, generator=torch.Generator().manual_seed(24)).to(DEVICE)

    def ours(x, reduction="sum"):
        return _triton.loss(x, z, None, y, reduced(options, reduction))

    def theirs(x, reduction="sum"):
        rows = tempered_torch(z.double(), x, z.double(), y, options)
        return rows if reduction == "none" else rows.sum()

    weights = torch.tensor([1.0, -2.0, 0.5, 3.0, 1.0], device=DEVICE)  # dL/dL_i, differentiated too
    results = []
    for fn, dtype in ((ours, torch.float32), (theirs, torch.float64)):
        s = student.to(DEVICE, dtype).requires_grad_(True)
        u = weights.to(dtype).requires_grad_(True)
        rows = fn(s, "none")
        (grad,) = torch.autograd.grad(rows, s, u, create_graph=True)  # sum_i u_i dL_i/ds
        # d/ds and d/du of <grad, v>: the Hessian-vector product, and G's derivative in its upstream
        hvp, d_u = torch.autograd.grad((grad * direction.to(dtype)).sum(), (s, u))
        results.append([x.detach().double().cpu() for x in (rows, grad, hvp, d_u)])
    for got, want, rtol in zip(results[0], results[1], (1e-5, 1e-5, 1e-4, 1e-5), strict=True):
        torch.testing.assert_close(got, want, rtol=rtol, atol=1e-7)
    s = student.to(DEVICE)
    batch_of_students = torch.stack([s, 2 * s, s - 1])
    torch.testing.assert_close(
        torch.func.vmap(torch.func.grad(ours))(batch_of_students),
        torch.func.vmap(torch.func.grad(theirs))(batch_of_students.double()).float(),
    )


# the edge cases of the numerics issue


def test_tied_huge_logits_give_the_oracle_loss():
    # ties of +-1e30: every margin is 0 or 2e30, and only the tied maxima have p > 0
    teacher = torch.tensor([[1e30, 1e30, -1e30, 1e30], [-1e30, 1e30, 1e30, -1e30]])
    student = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1e30, 1e30, -1e30, 0.0]])
    label = torch.tensor([0, 2])
    rows, _ = check_against_oracle(teacher, student, label, Options(1.5))
    assert torch.all(torch.isfinite(rows))


@pytest.mark.parametrize("shift", [30.0, 1e4, -1e4])
def test_error_does_not_grow_with_a_shift(shift):
    teacher, student, label = batch((8,), 200, seed=4)
    for shifted in (teacher + shift, teacher), (teacher, student + shift), (teacher + shift, student + shift):
        # the oracle reads the same float32 numbers; the bound is the unshifted one
        check_against_oracle(shifted[0], shifted[1], label, Options(1.5))


@pytest.mark.parametrize("beta", [1.5, 0.1])
def test_classes_with_p_zero_add_nothing(beta):
    # a teacher logit of -inf (a masked vocabulary entry) and one at float32's lowest: their weight
    # is infinite (m / beta overflows at beta = 0.1) and p = 0, so they add 0 to loss and gradient
    teacher, student, label = batch((6,), 40, seed=5)
    label = label.clamp(min=0) % 30
    teacher[:, 30:35] = -math.inf
    teacher[:, 35] = torch.finfo(torch.float32).min
    rows, grad = check_against_oracle(teacher, student, label, Options(beta))
    assert torch.all(torch.isfinite(rows))
    assert torch.all(torch.isfinite(grad))


def test_rows_without_a_finite_loss_are_nan():
    # rows of tied teacher logits but one class: every margin 0, or 10 on that class
    teacher, student, label = batch((4,), 10, padding=0)
    teacher[:] = 1.0
    label[:] = torch.tensor([1, 2, 3, 4])
    teacher[0, 1] = -math.inf  # z'_y = -inf: every other weight is -inf, on classes with p > 0
    teacher[1, 0] = -9.0  # a margin of 10: 10 / 2**-126 overflows float32, on a class with p > 0
    teacher[2, 0] = -150.0  # a margin of 151 overflows too, but p = 0 there (e^-151 in float32)
    rows, grad = run(None, student, teacher, label, Options(2.0**-126, reduction="none"))
    assert torch.isnan(rows[:2]).all()
    assert torch.isnan(grad[:2]).all()
    # margins of 0 stay finite, even at the smallest beta, and a class with p = 0 adds nothing
    assert torch.isfinite(rows[2:]).all()
    assert torch.isfinite(grad[2:]).all()
    check_against_oracle(teacher[2:], student[2:], label[2:], Options(2.0**-126))


def test_labels_outside_the_classes_give_nan_rows_and_touch_nothing_else():
    teacher, student, label = batch((5,), 10, padding=0)
    label[1], label[3] = 10, -7  # outside [0, 10), and not ignore_index
    rows, grad = run(None, student, teacher, label, Options(1.5, reduction="none"))
    bad = torch.tensor([False, True, False, True, False])
    assert torch.isnan(rows[bad]).all()
    assert torch.isnan(grad[bad]).all()
    good_rows, good_grad = run(
        None, student[~bad], teacher[~bad], label[~bad], Options(1.5, reduction="none")
    )
    torch.testing.assert_close(rows[~bad], good_rows, rtol=0, atol=0)
    torch.testing.assert_close(grad[~bad], good_grad, rtol=0, atol=0)
    mean, _ = run(None, student, teacher, label, Options(1.5))
    assert torch.isnan(mean)


def test_a_huge_term_on_a_maximum_that_a_later_block_discards(monkeypatch):
    # blocks of 16: the first block's maximum z_0 = 0 carries w_0 = 200 / 1e-30 and d_0 = 1e7, so
    # w e d = 2e39 is past float32's range; the second block's maximum z_16 = 200 discards it
    # (e^(0 - 200) = 0 in float32), and the row's loss is an ordinary number. The sums once
    # overflowed there (NaN on a GPU; an overflow warning in the interpreter)
    monkeypatch.setattr(_triton, "MAX_BLOCK", 16)
    teacher = torch.full((1, 17), -50.0)
    teacher[0, 0], teacher[0, 16] = 0.0, 200.0
    student = torch.zeros(1, 17)
    student[0, 0] = -1e7
    rows, _ = check_against_oracle(teacher, student, torch.tensor([16]), Options(1e-30), block=16)
    assert torch.isfinite(rows).all()


@st.composite
def hard_batches(draw):
    """(teacher, student, label, options, block): shifts, ties, huge magnitudes, -inf teacher
    entries, extreme beta and k, temperatures, clamped weights, and sometimes blocks of 16 to run
    the loop."""
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-3, 1.0, 10.0, 1e30]))
    teacher, student = scale * rng.normal(size=(n, c)), scale * rng.normal(size=(n, c))
    label = rng.integers(0, c, size=n)
    if draw(st.booleans()):  # ties: a few classes take one value
        tied = rng.integers(0, c, size=max(1, c // 2))
        teacher[:, tied] = teacher[:, tied[:1]]
    teacher += draw(st.sampled_from([0.0, 50.0, -1e4, 1e4]))
    student += draw(st.sampled_from([0.0, 30.0, 1e4]))
    if draw(st.booleans()) and c > 1:  # masked vocabulary: -inf teacher logits, never the label
        masked = rng.random((n, c)) < 0.3
        masked[np.arange(n), label] = False
        teacher[masked] = -np.inf
    beta = draw(st.sampled_from([2.0**-126, 1e-30, 0.01, 1.5, 1e6, 1e30, 2.0**127, math.inf]))
    offset = draw(st.sampled_from([-1e3, -8.0, 0.0, 8.0, 1e3]))
    block = draw(st.sampled_from([None, 16]))
    options = with_settings(
        Options(beta, offset, "none"),
        temperature=draw(st.sampled_from([1.0, 0.5, 4.0, 1.7])),
        clamp=draw(st.booleans()),
    )
    as32 = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    return as32(teacher), as32(student), torch.tensor(label), options, block


def _in_float32_range(teacher, student, label, options):
    """Rows whose weights and loss terms all lie far inside float32's range (size_i <= 1e36)."""
    keep = np.ones(len(label), bool)
    if options.beta != math.inf:
        z = teacher.double().numpy()
        z_label = z[np.arange(len(label)), label.numpy()][:, None]
        live = np.exp(klloss.oracle.log_softmax(z)) > 0
        scaled = np.abs(np.where(live, z_label - np.where(live, z, 0.0), 0.0)) / options.beta
        keep = ~(scaled > FLOAT32_MAX).any(1)  # a weight beyond float32: no size to compare at
    rows = torch.from_numpy(np.flatnonzero(keep))
    parts = (teacher[rows].double(), student[rows].double(), teacher[rows].double(), label[rows])
    _, _, size, grad_size = oracle_rows(*parts, options)
    fits = np.zeros(len(label), bool)
    fits[rows.numpy()] = (size <= 1e36) & (grad_size.max(1, initial=0.0) <= 1e36)
    return fits


@settings(max_examples=int(os.environ.get("KLLOSS_TRITON_EXAMPLES", "40")))
@given(drawn=hard_batches())
def test_hard_inputs_match_the_oracle(drawn):
    teacher, student, label, options, block = drawn
    # rows whose float32 loss overflows are left out (the NaN rows have tests of their own)
    fits = torch.from_numpy(_in_float32_range(teacher, student, label, options))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_triton, "MAX_BLOCK", block or _triton.MAX_BLOCK)
        if fits.any():
            check_against_oracle(teacher[fits], student[fits], label[fits], options, block=block)


# composition: torch.func, double backward, torch.compile


def _torch_path(s, z, label, reduction="batchmean"):
    return klloss.klloss_v2(z.double(), s, z.double(), label, 1.5, reduction=reduction)


def test_torch_func_grad_vmap_and_jacrev():
    teacher, student, label = batch((4,), 12, seed=6)
    z, s, y = teacher.to(DEVICE), student.to(DEVICE), label.to(DEVICE)

    def ours(x, reduction="batchmean"):
        return _triton.loss(x, z, None, y, Options(1.5, reduction=reduction))

    def theirs(x, reduction="batchmean"):
        return _torch_path(x, z, y, reduction).float()

    torch.testing.assert_close(torch.func.grad(ours)(s), torch.func.grad(theirs)(s.double()).float())
    batch_of_students = torch.stack([s, 2 * s, s - 1])
    torch.testing.assert_close(
        torch.func.vmap(torch.func.grad(ours))(batch_of_students),
        torch.func.vmap(torch.func.grad(theirs))(batch_of_students.double()).float(),
    )
    torch.testing.assert_close(
        torch.func.jacrev(lambda x: ours(x, "none"))(s),
        torch.func.jacrev(lambda x: theirs(x, "none"))(s.double()).float(),
    )


def test_double_backward_matches_the_torch_path():
    teacher, student, label = batch((5,), 9, seed=7)
    direction = torch.randn(student.shape, generator=torch.Generator().manual_seed(8))
    results = []
    for fn, dtype in ((_triton.loss, torch.float32), (None, torch.float64)):
        s = student.to(DEVICE, dtype).requires_grad_(True)
        z, y = teacher.to(DEVICE), label.to(DEVICE)
        loss = fn(s, z, None, y, Options(1.5)) if fn else _torch_path(s, z, y)
        (grad,) = torch.autograd.grad(loss, s, create_graph=True)
        (hvp,) = torch.autograd.grad((grad * direction.to(DEVICE, dtype)).sum(), s)
        results.append(hvp.double().cpu())
    torch.testing.assert_close(results[0], results[1], rtol=1e-4, atol=1e-7)


@COMPILE_WARNINGS[0]
@COMPILE_WARNINGS[1]
def test_compiles_with_fullgraph():
    # on the CPU the interpreted kernels are opaque ops to the compiler (shape-only fake kernels);
    # on a GPU tests/test_cuda.py compiles them with Inductor, which sees the kernels
    teacher, student, label = batch((2, 3), 20, seed=9)
    z, y = teacher.to(DEVICE), label.to(DEVICE)

    def fn(x):
        return _triton.loss(x, z, None, y, Options(1.5))

    torch._dynamo.reset()
    compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
    results = []
    for f in (fn, compiled):
        s = student.to(DEVICE).requires_grad_(True)
        loss = f(s)
        loss.backward()
        results.append((loss.detach(), s.grad))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=0, atol=0)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=0, atol=0)


# compiled for real GPUs, without one: Triton's compiler down to Ampere and Hopper binaries (the
# interpreter accepts code that the compiler refuses, such as a loop that reassigns a name of another
# type, or arithmetic between a pointer and a float)

COMPILE_FOR_GPUS = """
import concurrent.futures, itertools, multiprocessing, os, sys, triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from klloss import _triton

SWITCHES = ("HAS_IGNORE", "SEPARATE_MARGIN", "BETA_INF", "RECIPROCAL", "CLAMP")
TARGETS = {80: 163 * 1024, 90: 227 * 1024}  # compute capability: shared memory a block may use
BLOCKS = (16, _triton.MAX_BLOCK)
# (s and the gradient, z, z'), the label and the integers as a launch may pass them
POINTERS = [("fp32", "fp32", "fp32"), ("bf16", "bf16", "bf16"), ("bf16", "fp32", "fp32"),
            ("fp32", "bf16", "bf16"), ("fp16", "fp16", "bf16"), ("bf16", "fp16", "fp32")]
LABELS = ("i64", "i32", "u8", "i16")
INTEGERS = ("i32", "i64")

def signature(kernel, pointers, label, integer, switches):
    s, z, zm = pointers
    types = {}  # in the kernel's order of arguments
    for name in kernel.arg_names:
        if name in switches:
            types[name] = "constexpr"
        elif name in ("limit", "scale", "offset", "inv_temperature"):
            types[name] = "fp32"
        elif name == "C" or name.endswith("stride") or name == "ignore_index":
            types[name] = integer
        else:
            types[name] = {"s_ptr": "*" + s, "grad_ptr": "*" + s, "z_ptr": "*" + z, "zm_ptr": "*" + zm,
                           "label_ptr": "*" + label}.get(name, "*fp32")  # loss, stats, grad_out
    return types

def compile_one(case):
    i, capability, kernel_name, values, block = case
    kernel = getattr(_triton, kernel_name)
    switches = dict(zip(SWITCHES, values), BLOCK=block, STATS=_triton.STATS)
    pointers, label, integer = POINTERS[i % len(POINTERS)], LABELS[i % len(LABELS)], INTEGERS[i % 2]
    source = ASTSource(kernel, signature(kernel, pointers, label, integer, switches), switches)
    warps = _triton._launch_shape(block)[1]
    compiled = triton.compile(source, target=GPUTarget("cuda", capability, 32), options={"num_warps": warps})
    assert compiled.asm["cubin"] and ".target sm_%d" % capability in compiled.asm["ptx"], case
    assert compiled.metadata.num_warps == warps, case
    assert compiled.metadata.shared <= TARGETS[capability], (case, compiled.metadata.shared)
    return pointers

cases = list(itertools.product(TARGETS, ("_forward_kernel", "_backward_kernel"),
                               itertools.product((False, True), repeat=len(SWITCHES)), BLOCKS))
cases = [(i, *case) for i, case in enumerate(cases)]
fork = multiprocessing.get_context("fork")
with concurrent.futures.ProcessPoolExecutor(min(os.cpu_count() or 1, 8), mp_context=fork) as pool:
    done = list(pool.map(compile_one, cases))
print("compiled", len(done), "pointer-types", len(set(done)))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="Triton's wheel brings its CUDA compiler on Linux")
def test_kernels_compile_for_ampere_and_hopper(tmp_path):
    """Both kernels through Triton's whole compiler for CUDA targets sm_80 (A100) and sm_90 (H100),
    with no GPU and no driver: the front end (types, which the interpreter does not check), the
    target's layouts and lowering, LLVM to PTX, and PTX to a binary (cubin) by the ptxas that
    Triton's wheel brings. For each target and kernel, every combination of the switches
    HAS_IGNORE, SEPARATE_MARGIN, BETA_INF, RECIPROCAL and CLAMP at BLOCK = 16 and MAX_BLOCK (256
    binaries), the pointer types cycling through float32, bfloat16, float16 and mixed student and
    teacher dtypes, the label through int64, int32, uint8 and int16, the integers through i32 and
    i64; each binary's shared memory within what the target gives a block. What only a device
    shows (loading the binary, registers and spills, the values) is tests/test_cuda.py's."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # compile, not read back a cached binary
    result = subprocess.run(
        [sys.executable, "-c", COMPILE_FOR_GPUS], capture_output=True, text=True, timeout=900, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["compiled", "256", "pointer-types", "6"]


# where Triton or torch is missing or too old


@pytest.mark.parametrize(
    ("torch_version", "triton_version"),
    [("2.5.1", "3.7.1"), ("2.13.0", "3.1.0"), ("2.13.0", "not a version")],
)
def test_too_old_versions_are_not_available(torch_version, triton_version, monkeypatch):
    monkeypatch.setattr(_triton, "TORCH_VERSION", torch_version)
    monkeypatch.setattr(_triton, "TRITON_VERSION", triton_version)
    assert not _triton.available("cpu")
    assert not _triton.available("cuda")


def test_available_never_raises():
    assert not _triton.available("not a device")
    assert not _triton.available(None)
    assert not _triton.available("meta")


def test_cpu_needs_the_interpreter(monkeypatch):
    monkeypatch.setattr(_triton, "INTERPRETED", False)
    assert not _triton.available("cpu")


def test_handles_only_float32_and_half_precision():
    x = torch.zeros(2, 3, device=DEVICE)
    assert _triton.handles(x)
    assert _triton.handles(x.bfloat16())
    assert _triton.handles(x.half())
    assert not _triton.handles(x.double())
    assert not _triton.handles("x")


def _call(impl, dtype=torch.float32, device="cpu"):
    teacher, student, label = batch((3,), 5, dtype)
    z, s, y = teacher.to(device), student.to(device), label.to(device)
    return klloss.klloss_v2(z, s, z, y, 1.5, impl=impl)


@pytest.mark.parametrize(
    ("patch", "dtype", "device", "reason"),
    [
        ({"triton": None}, torch.float32, "cpu", "Triton is not installed"),
        ({"TRITON_VERSION": "3.1.0"}, torch.float32, "cpu", r"Triton >= 3\.2, found .* Triton 3\.1\.0"),
        ({"TORCH_VERSION": "2.5.1"}, torch.float32, "cpu", r"torch >= 2\.6 .* found torch 2\.5\.1"),
        ({"INTERPRETED": False}, torch.float32, "cpu", "on the CPU, .*TRITON_INTERPRET=1"),
        ({}, torch.float64, DEVICE, "take float32, float16, bfloat16, got input of dtype torch.float64"),
        ({}, torch.float32, "meta", "run on CUDA devices, got tensors on 'meta'"),
    ],
    ids=["no Triton", "Triton too old", "torch too old", "CPU without the interpreter", "float64", "meta"],
)  # fmt: skip
def test_impl_triton_says_why_it_cannot_run(patch, dtype, device, reason, monkeypatch):
    # before: AttributeError ('NoneType' has no 'next_power_of_2'), or Triton's "0 active drivers"
    for name, value in patch.items():
        monkeypatch.setattr(_triton, name, value)
    with pytest.raises(ValueError, match=f"^impl='triton' cannot compute this call: .*{reason}"):
        _call("triton", dtype, device)
    x = torch.zeros(2, 3, dtype=dtype, device=device)
    assert not _triton.handles(x)
    assert _triton.why_not(x) is not None
    if device != "meta":  # the reference computes it
        assert torch.isfinite(_call("reference", dtype, device))


def test_why_not_names_a_teacher_of_another_dtype():
    s = torch.zeros(2, 3, device=DEVICE)
    assert _triton.why_not(s) is None
    assert _triton.why_not(s, s.bfloat16(), s.half()) is None
    assert "got target of dtype torch.float64" in _triton.why_not(s, s.double())
    assert "got logits_t of dtype torch.float64" in _triton.why_not(s, s, s.double())
    assert "input must be a torch.Tensor" in _triton.why_not("s")


def test_imports_and_says_unavailable_without_triton():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["triton"] = None  # import triton now fails, as where it is not installed
        from klloss import _triton
        assert _triton.triton is None
        print(_triton.available("cpu"), _triton.available("cuda"))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "False"]
