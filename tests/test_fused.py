"""The fused CPU form (klloss/_fused.py) with every option of klloss.Options: temperature T,
clamp, normalize, the reductions and ignored rows, mixed dtypes, undefined and ignored rows,
repeated backwards, double backward.

References: the float64 NumPy oracle (``klloss.oracle``), the readable form (``impl="reference"``),
``F.kl_div`` at ``margin_scale=inf`` with ``normalize=True``, and finite differences
(``gradcheck``, ``gradgradcheck``). Every fused call is checked to have been computed by
``FusedLoss`` (:func:`computed_by_fused`): a comparison of the reference with itself could not fail.

Error model in float64 (:func:`value_tolerance`, :func:`gradient_tolerance`): as in
``helpers.loss_scale`` and ``helpers.gradient_scale``, with the extensions. Each term
f w~ p (log p - log q) is a product of a few rounded factors, each rounded relative to its own size
(a log-probability carries an absolute error of a few ulps of the tempered logits |x|/T); so the
error of a row is a few tens of ulps of f sum_c |w~| p (1 + |log p| + |log q|) and of the logits'
size, and the tolerance, 1e-12 of that (about 4500 ulps of 1 in float64), leaves room for the sums while
a wrong factor, temperature or clamp is an error of the size of the loss itself. The gradient
(f/T)(q W~ - w~ p) cancels terms of size (f/T) sum_c |w~| p, each rounded relative to the tempered
logits' size.
"""

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import EPS, as_tensors, batches, float32_bound
from hypothesis import given
from hypothesis import strategies as st

import klloss
from course import bench
from klloss.options import Options

IGNORE = -100
REDUCTIONS = ("batchmean", "sum", "none")
TEMPERATURES = (0.5, 1.0, 4.0)
EXTENSIONS = [
    {"normalize": False},
    {"temperature": 4.0, "clamp": True, "normalize": True},
    {"temperature": 0.5, "clamp": False, "normalize": True},
]


def computed_by_fused(out):
    """Whether ``FusedLoss`` computed ``out`` (itself, or under a reshape)."""
    fn = out.grad_fn
    for _ in range(3):
        if fn is None:
            return False
        if type(fn).__name__ == "FusedLossBackward":
            return True
        fn = fn.next_functions[0][0]
    return False


def loss(impl, s, z, y, beta, reduction="batchmean", logits_t=None, **extensions):
    """The loss of ``impl`` through the student-first entry point (one teacher ``z``), or with a
    second teacher ``logits_t`` for the margin through the dispatch point :func:`klloss.loss._loss`.
    A fused call is checked to be ``FusedLoss``'s when the student requires grad."""
    if logits_t is None:
        out = klloss.margin_kd_loss(s, z, y, margin_scale=beta, reduction=reduction, impl=impl, **extensions)
    else:
        options = Options(beta, reduction=reduction, **extensions)
        out = klloss.loss._loss(logits_t, s, z, y, options, impl)
    if impl == "fused" and s.requires_grad and torch.is_grad_enabled():
        assert computed_by_fused(out), out.grad_fn
    return out


def value_and_gradient(impl, s, z, y, beta, reduction, upstream, **kwargs):
    """(loss, d(sum_i u_i L_i)/ds) for reduction "none", else (L, dL/ds)."""
    x = s.detach().clone().requires_grad_(True)
    out = loss(impl, x, z, y, beta, reduction, **kwargs)
    (grad,) = torch.autograd.grad((out * upstream).sum() if reduction == "none" else out, x)
    return out.detach(), grad


def oracle_parts(logits_t, s, z, y, beta, **extensions):
    return klloss.oracle.intermediates(
        *(np.asarray(a, dtype=np.float64) for a in (logits_t, s, z)),
        np.asarray(y),
        beta,
        ignore_index=IGNORE,
        **extensions,
    )


def reduced(parts, reduction):
    if reduction == "none":
        return parts["per_sample"]
    return parts["per_sample"].sum() if reduction == "sum" else parts["loss"]


def factor(temperature=1.0, normalize=False, offset=8.0, **_):
    return temperature**2 / offset if normalize else temperature**2


def row_sizes(parts, extensions):
    """Per row, f sum_c |w~| p (1 + |log p| + |log q|), 0 where p = 0 (the error model above)."""
    p, w = parts["target_prob"], parts["weight"]
    with np.errstate(invalid="ignore"):
        size = np.where(
            p > 0, np.abs(w) * p * (1 + np.abs(parts["log_target"]) + np.abs(parts["log_input"])), 0
        )
    return factor(**extensions) * size.sum(1)


def value_tolerance(parts, y, reduction, extensions):
    sizes = np.where(np.asarray(y) != IGNORE, row_sizes(parts, extensions), 0.0)
    kept = max(int((np.asarray(y) != IGNORE).sum()), 1)
    scale = {"none": sizes, "sum": sizes.sum(), "batchmean": sizes.sum() / kept}[reduction]
    return 1e-12 * scale


def gradient_tolerance(parts, s, z, y, reduction, extensions):
    """Per row: 1e-12 (f/T)(1 + sum_c |w~| p)(1 + max|s|/T + max|z|/T), divided by N' for
    batchmean; shape (N, 1)."""
    t = extensions.get("temperature", 1.0)
    p, w = parts["target_prob"], parts["weight"]
    with np.errstate(invalid="ignore"):
        size = np.where(p > 0, np.abs(w) * p, 0.0).sum(1, keepdims=True)
    spread = 1 + (np.abs(np.asarray(s)).max() + np.abs(np.asarray(z)).max()) / t
    kept = max(int((np.asarray(y) != IGNORE).sum()), 1)
    per_row = factor(**extensions) / t * (1 + size) * spread
    return torch.as_tensor(1e-12 * per_row / (kept if reduction == "batchmean" else 1))


extension_sets = st.fixed_dictionaries(
    {"temperature": st.sampled_from(TEMPERATURES), "normalize": st.booleans(), "clamp": st.booleans()}
)


@st.composite
def cases(draw):
    """A batch, the options, a reduction, and some rows ignored."""
    batch = draw(batches())
    n = batch[1].shape[0]
    ignored = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return batch, draw(extension_sets), draw(st.sampled_from(REDUCTIONS)), ignored


@given(case=cases(), two_teachers=st.booleans())
def test_fused_matches_the_oracle_and_the_reference_with_every_option(case, two_teachers):
    batch, extensions, reduction, ignored = case
    logits_t, s, z, y, beta = as_tensors(batch)
    y = torch.where(torch.as_tensor(ignored), IGNORE, y)
    margin = logits_t if two_teachers else z  # one teacher: the margin from z itself, unscaled by 1/T
    kwargs = dict(extensions, logits_t=logits_t if two_teachers else None)
    upstream = torch.rand(len(y), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fused, g_fused = value_and_gradient("fused", s, z, y, beta, reduction, upstream, **kwargs)
    ref, g_ref = value_and_gradient("reference", s, z, y, beta, reduction, upstream, **kwargs)
    parts = oracle_parts(margin, s, z, y, beta, **extensions)
    tol = value_tolerance(parts, y, reduction, extensions)
    assert np.all(np.abs(fused.numpy() - reduced(parts, reduction)) <= tol)
    assert np.all(np.abs(fused.numpy() - ref.numpy()) <= tol)
    assert torch.all(g_fused[torch.as_tensor(ignored)] == 0)
    bound = gradient_tolerance(parts, s, z, y, reduction, extensions)
    if reduction == "none":
        bound = bound * upstream.unsqueeze(-1)
    assert torch.all((g_fused - g_ref).abs() <= bound)


def negative_weight_batch(n=5, c=7, seed=0, dtype=torch.float64):
    """Teacher, student and labels where row 0's teacher ranks a class 8 beta + 3 above the label
    (weights below 0 at beta = 1.5), row 2 ignored."""
    gen = torch.Generator().manual_seed(seed)
    z = 3 * torch.randn(n, c, generator=gen, dtype=torch.float64)
    s = 3 * torch.randn(n, c, generator=gen, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=gen)
    z[0, (y[0] + 1) % c] = z[0, y[0]] + 8 * 1.5 + 3.0
    y[2] = IGNORE
    return z.to(dtype), s.to(dtype), y


def test_the_batch_has_negative_weights_that_clamp_removes():
    # the batch of the tests below: clamp changes the loss there, so a clamp ignored would show
    z, s, y = negative_weight_batch()
    parts = oracle_parts(z, s, z, y, 1.5)
    assert np.any((parts["weight"] < 0) & (parts["target_prob"] > 1e-3))
    for t in TEMPERATURES:
        plain = loss("fused", s, z, y, 1.5, temperature=t, normalize=False)
        clamped = loss("fused", s, z, y, 1.5, temperature=t, normalize=False, clamp=True)
        assert abs(clamped - plain) > 1e-3


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("clamp", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_every_option_against_the_oracle_on_a_batch_with_negative_weights(
    temperature, clamp, normalize, reduction
):
    z, s, y = negative_weight_batch()
    ext = {"temperature": temperature, "clamp": clamp, "normalize": normalize}
    upstream = torch.linspace(0.5, 2.0, len(y), dtype=torch.float64)
    fused, g_fused = value_and_gradient("fused", s, z, y, 1.5, reduction, upstream, **ext)
    ref, g_ref = value_and_gradient("reference", s, z, y, 1.5, reduction, upstream, **ext)
    parts = oracle_parts(z, s, z, y, 1.5, **ext)
    tol = value_tolerance(parts, y, reduction, ext)
    assert np.all(np.abs(fused.numpy() - reduced(parts, reduction)) <= tol)
    assert np.all(np.abs(fused.numpy() - ref.numpy()) <= tol)
    bound = gradient_tolerance(parts, s, z, y, reduction, ext) * (
        upstream.unsqueeze(-1) if reduction == "none" else 1
    )
    assert torch.all((g_fused - g_ref).abs() <= bound)
    assert torch.all(g_fused[2] == 0)
    assert g_fused.abs().max() > 1e-3


def check_reductions(z, s, y, beta, ext):
    """Every reduction of the fused form against the oracle and the reference: values to
    :func:`value_tolerance`, gradients to :func:`gradient_tolerance`, 0 in the ignored row 2."""
    upstream = torch.linspace(0.5, 2.0, len(y), dtype=torch.float64)
    parts = oracle_parts(z, s, z, y, beta, **ext)
    for reduction in REDUCTIONS:
        fused, g_fused = value_and_gradient("fused", s, z, y, beta, reduction, upstream, **ext)
        ref, g_ref = value_and_gradient("reference", s, z, y, beta, reduction, upstream, **ext)
        tol = value_tolerance(parts, y, reduction, ext)
        assert np.all(np.abs(fused.numpy() - reduced(parts, reduction)) <= tol), reduction
        assert np.all(np.abs(fused.numpy() - ref.numpy()) <= tol), reduction
        bound = gradient_tolerance(parts, s, z, y, reduction, ext)
        bound = bound * (upstream.unsqueeze(-1) if reduction == "none" else 1)
        assert torch.all((g_fused - g_ref).abs() <= bound), reduction
        assert torch.all(g_fused[2] == 0)
    return parts


@pytest.mark.parametrize("beta", [1.5, math.inf])
@pytest.mark.parametrize("offset", [-8.0, 0.0, 8.0])
@pytest.mark.parametrize("clamp", [False, True])
def test_any_offset_with_and_without_clamp(beta, offset, clamp):
    # k <= 0 makes weights negative (at beta = inf every one: clamped, the loss is 0)
    z, s, y = negative_weight_batch()
    parts = check_reductions(
        z, s, y, beta, {"temperature": 4.0, "clamp": clamp, "normalize": False, "offset": offset}
    )
    if beta == math.inf and offset < 0:
        assert (parts["loss"] == 0) == clamp  # every weight k < 0: clamped, nothing is left


@pytest.mark.parametrize("ext", EXTENSIONS)
@pytest.mark.parametrize("beta", [1.5, 1e-9])
def test_masked_teacher_classes_add_nothing_with_options(ext, beta):
    # a teacher class at -inf: p = 0 and an infinite weight; the term is its limit, 0
    z, s, y = negative_weight_batch()
    y = torch.where(y == 4, 3, y)
    z[:, 4] = -math.inf
    parts = check_reductions(z, s, y, beta, ext)
    assert math.isfinite(parts["loss"])
    assert np.all(np.isinf(parts["weight"][:, 4]))


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_at_infinite_margin_scale_normalized_it_is_kd_at_temperature_t(temperature):
    gen = torch.Generator().manual_seed(3)
    z = 4 * torch.randn(6, 9, generator=gen, dtype=torch.float64)
    s = (4 * torch.randn(6, 9, generator=gen, dtype=torch.float64)).requires_grad_(True)
    y = torch.randint(0, 9, (6,), generator=gen)
    ours = loss("fused", s, z, y, math.inf, temperature=temperature, normalize=True)
    t = temperature
    kd = t**2 * F.kl_div(
        F.log_softmax(s / t, -1), F.log_softmax(z / t, -1), reduction="batchmean", log_target=True
    )
    (g_ours,) = torch.autograd.grad(ours, s)
    (g_kd,) = torch.autograd.grad(kd, s)
    torch.testing.assert_close(ours, kd, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(g_ours, g_kd, rtol=1e-12, atol=1e-15)
    assert ours > 1e-2


@pytest.mark.parametrize(
    ("student_dtype", "teacher_dtype", "computed"),
    [
        (torch.bfloat16, torch.float32, torch.float32),
        (torch.float16, torch.float32, torch.float32),
        (torch.float32, torch.float64, torch.float64),
        (torch.bfloat16, torch.float64, torch.float64),
        (torch.float64, torch.float32, torch.float64),
    ],
)
@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_mixed_dtypes_compute_in_the_wider_float_and_give_the_student_its_own_dtype(
    student_dtype, teacher_dtype, computed, temperature
):
    # the same numbers as the call with both already in the compute dtype (the same operations on
    # the same values), the gradient that one's rounded once to the student's dtype
    z, s, y = negative_weight_batch()
    ext = {"temperature": temperature, "clamp": True, "normalize": True}
    x = s.to(student_dtype).requires_grad_(True)
    teacher_logits = z.to(teacher_dtype)
    got = loss("fused", x, teacher_logits, y, 1.5, **ext)
    got.backward()
    wide = x.detach().to(computed).requires_grad_(True)
    expected = loss("fused", wide, teacher_logits.to(computed), y, 1.5, **ext)
    expected.backward()
    assert got.dtype == computed
    assert torch.equal(got, expected)
    assert x.grad.dtype == student_dtype
    assert torch.equal(x.grad, wide.grad.to(student_dtype))
    assert x.grad.abs().max() > 0
    # and the readable form agrees, in the same compute dtype
    reference = loss("reference", x.detach(), teacher_logits, y, 1.5, **ext)
    assert reference.dtype == computed
    torch.testing.assert_close(got, reference, rtol=1e-5 if computed == torch.float32 else 1e-12, atol=0)


@pytest.mark.parametrize("temperature", [0.5, 4.0])
@pytest.mark.parametrize("clamp", [False, True])
def test_float32_against_the_oracle_with_options(temperature, clamp):
    """float32 with options on, against the oracle on the same rounded inputs: the error model of
    helpers.float32_bound (for the terms w p (log p - log q) at any temperature: it is written in
    the log-probabilities and weights, whatever produced them), times f, which multiplies every
    term; the final multiplication by T is one more rounding of the total, inside its sums term."""
    z, s, y = negative_weight_batch(n=16, c=50, seed=5, dtype=torch.float32)
    ext = {"temperature": temperature, "clamp": clamp, "normalize": True}
    got = loss("fused", s, z, y, 1.5, **ext)
    parts = oracle_parts(z.double(), s.double(), z.double(), y, 1.5, **ext)
    kept = int((y != IGNORE).sum())
    bound = factor(**ext) * float32_bound(parts, 1.5, 8.0, kept, EPS[torch.float32])
    assert abs(got.item() - parts["loss"]) <= bound
    assert bound < 1e-3 * abs(parts["loss"])  # a bound that can fail a wrong factor or clamp


def small_batch():
    """3 rows x 5 classes: row 0 with weights below 0, row 1 ignored."""
    z, s, y = negative_weight_batch(n=3, c=5, seed=7)
    y[1] = IGNORE
    return z, s, y


FAST_GRADCHECKS = {(0.5, True, True, "batchmean"), (4.0, True, False, "sum"), (4.0, False, True, "none")}
"""One combination per reduction in the fast tests; every one under ``make test`` (about 1 s each)."""


@pytest.mark.parametrize(
    ("temperature", "clamp", "normalize", "reduction"),
    [
        pytest.param(*c, marks=() if c in FAST_GRADCHECKS else pytest.mark.slow)
        for c in itertools.product([0.5, 4.0], [False, True], [False, True], REDUCTIONS)
    ],
)
def test_gradcheck_with_options(temperature, clamp, normalize, reduction):
    z, s, y = small_batch()
    ext = {"temperature": temperature, "clamp": clamp, "normalize": normalize}

    def f(x):
        return loss("fused", x, z, y, 1.5, reduction, **ext)

    x = s.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("clamp", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_hessian_vector_product_matches_the_reference_with_options(temperature, clamp, normalize):
    # the backward's graph of the gradient (torch.is_grad_enabled()): q = softmax(s / T)
    # differentiable, the weights constant; per-row losses under a non-uniform upstream gradient
    z, s, y = negative_weight_batch()
    ext = {"temperature": temperature, "clamp": clamp, "normalize": normalize}
    gen = torch.Generator().manual_seed(1)
    v = torch.randn(s.shape, dtype=torch.float64, generator=gen)
    upstream = torch.rand(len(y), dtype=torch.float64, generator=gen)
    products = {}
    for impl in ("fused", "reference"):
        x = s.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(
            (loss(impl, x, z, y, 1.5, "none", **ext) * upstream).sum(), x, create_graph=True
        )
        (products[impl],) = torch.autograd.grad((g * v).sum(), x)
    hvp = torch.autograd.functional.hvp(lambda x: loss("fused", x, z, y, 1.5, **ext), s, v)[1]
    hvp_ref = torch.autograd.functional.hvp(lambda x: loss("reference", x, z, y, 1.5, **ext), s, v)[1]
    torch.testing.assert_close(products["fused"], products["reference"], rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(hvp, hvp_ref, rtol=1e-10, atol=1e-14)
    assert torch.all(products["fused"][2] == 0)
    assert torch.all(hvp[2] == 0)
    assert products["fused"].abs().max() > 1e-3


# -- repeated backwards: the saved gradient is never handed out while the graph is kept ------------


def plain_call():
    gen = torch.Generator().manual_seed(11)
    z = 3 * torch.randn(6, 10, generator=gen)
    s = (3 * torch.randn(6, 10, generator=gen)).requires_grad_(True)
    y = torch.randint(0, 10, (6,), generator=gen)
    return z, s, y


def expected_gradient(z, s, y, **ext):
    x = s.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(loss("reference", x, z, y, 1.5, **ext), x)
    return g


@pytest.mark.parametrize(
    "ext", [{"normalize": False}, {"temperature": 4.0, "clamp": True, "normalize": True}]
)
def test_grad_twice_with_retain_graph_after_modifying_the_first_in_place(ext):
    z, s, y = plain_call()
    value = loss("fused", s, z, y, 1.5, **ext)
    (first,) = torch.autograd.grad(value, s, retain_graph=True)
    kept = first.clone()
    first.mul_(100.0).add_(1.0)  # the caller owns what grad returned
    (second,) = torch.autograd.grad(value, s)
    assert torch.equal(second, kept)
    torch.testing.assert_close(second, expected_gradient(z, s, y, **ext), rtol=1e-5, atol=1e-7)
    assert second.abs().max() > 1e-3


def test_three_retained_backwards_accumulate_three_gradients():
    z, s, y = plain_call()
    value = loss("fused", s, z, y, 1.5, normalize=False)
    (once,) = torch.autograd.grad(value, s, retain_graph=True)
    for _ in range(3):
        value.backward(retain_graph=True)
    assert torch.equal(s.grad, 3 * once)  # G + G exact, then one rounding, as 3 G
    value.backward()  # the last one frees the graph, and may hand its buffer to s.grad's sum
    assert torch.equal(s.grad, 3 * once + once)


def test_every_backward_returns_a_new_tensor_never_the_saved_gradient():
    # the saved G is never handed out (issue 25, defect 7): a plain backward multiplies it by the
    # upstream gradient into a new tensor, with or without retain_graph
    z, s, y = plain_call()
    for retain in (False, True):
        value = loss("fused", s, z, y, 1.5, normalize=False)
        counts = bench.op_counts(lambda v=value, r=retain: v.backward(retain_graph=r))
        assert counts["aten.mul"] == 1, counts


# -- undefined rows and ignored rows -----------------------------------------------------------------


def _spoil(z, how):
    z = z.clone()
    if how == "nan":
        z[1, 3] = math.nan
    elif how == "+inf":
        z[1, 3] = math.inf
    else:
        z[1, :] = -math.inf
    return z


@pytest.mark.parametrize("how", ["nan", "+inf", "all -inf"])
@pytest.mark.parametrize("ext", EXTENSIONS)
def test_an_undefined_teacher_row_gives_nan(how, ext):
    # a kept row whose teacher holds NaN or +inf, or only -inf, has no p: its loss is NaN, and so
    # is every reduction over it; the other rows keep their values
    z, s, y = negative_weight_batch()
    bad = _spoil(z, how)
    x = s.clone().requires_grad_(True)
    rows = loss("fused", x, bad, y, 1.5, "none", **ext)
    assert torch.isnan(rows[1])
    clean = loss("fused", s, z, y, 1.5, "none", **ext)
    keep = torch.tensor([True, False, True, True, True])
    assert torch.equal(rows.detach()[keep], clean[keep])
    assert torch.isnan(loss("fused", x, bad, y, 1.5, **ext))
    assert torch.isnan(loss("fused", x, bad, y, 1.5, "sum", **ext))


@pytest.mark.parametrize("how", ["nan", "-inf", "+inf", "nan, student -inf"])
@pytest.mark.parametrize("ext", EXTENSIONS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_an_ignored_row_gives_exactly_zero_whatever_it_holds(how, ext, reduction):
    # the ignored row reads class 0 for its margin: there the teacher holds NaN or an infinity;
    # the loss, the gradient and the Hessian-vector product are those of the clean batch
    z, s, y = negative_weight_batch()
    dirty_z, dirty_s = z.clone(), s.clone()
    dirty_z[2, 0] = {"nan": math.nan, "-inf": -math.inf, "+inf": math.inf}.get(how, math.nan)
    if how.endswith("student -inf"):
        dirty_s[2, :] = -math.inf
    v = torch.randn(s.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    results = []
    for teacher, student in ((z, s), (dirty_z, dirty_s)):
        x = student.clone().requires_grad_(True)
        value = loss("fused", x, teacher, y, 1.5, reduction, **ext)
        (g,) = torch.autograd.grad(value.sum(), x, retain_graph=True)
        (g2,) = torch.autograd.grad(value.sum(), x, create_graph=True)  # the double-backward branch
        (hv,) = torch.autograd.grad((g2 * v).sum(), x)
        results.append((value.detach(), g, g2.detach(), hv))
    for clean, dirty in zip(*results, strict=True):
        assert torch.equal(clean, dirty)
    value, g, g2, hv = results[1]
    assert torch.all(g[2] == 0)
    assert torch.all(g2[2] == 0)
    assert torch.all(hv[2] == 0)
    assert torch.isfinite(value).all()
    assert g.abs().max() > 1e-3


def test_auto_on_the_cpu_computes_every_option_with_the_fused_form():
    z, s, y = negative_weight_batch()
    x = s.clone().requires_grad_(True)
    ext = {"temperature": 4.0, "clamp": True, "normalize": True}
    auto = klloss.margin_kd_loss(x, z, y, impl="auto", **ext)
    assert computed_by_fused(auto)
    assert torch.equal(auto, loss("fused", x, z, y, 1.5, **ext))


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_sequences_and_a_global_count_with_options(ext):
    # (batch, sequence, vocabulary) logits with padded positions, batchmean over a count given by
    # the caller (num_items_in_batch, a tensor): the reference's numbers, in the input's shape
    gen = torch.Generator().manual_seed(4)
    z = 3 * torch.randn(2, 5, 11, generator=gen, dtype=torch.float64)
    s = 3 * torch.randn(2, 5, 11, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 11, (2, 5), generator=gen)
    y[1, 3:] = IGNORE
    results = {}
    for impl in ("fused", "reference"):
        x = s.clone().requires_grad_(True)
        rows = loss(impl, x, z, y, 1.5, "none", **ext)
        total = klloss.margin_kd_loss(x, z, y, num_items_in_batch=torch.tensor(20), impl=impl, **ext)
        (g,) = torch.autograd.grad(total, x)
        results[impl] = (rows.detach(), total.detach(), g)
    assert results["fused"][0].shape == (2, 5)
    for fused, reference in zip(results["fused"], results["reference"], strict=True):
        torch.testing.assert_close(fused, reference, rtol=1e-12, atol=1e-14)
    assert torch.all(results["fused"][2][1, 3:] == 0)


@pytest.mark.parametrize("shape", [(0, 5), (2, 0, 5)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_an_empty_batch_with_options_gives_zero_or_an_empty_tensor(shape, reduction):
    x = torch.randn(shape).requires_grad_(True)
    z, y = torch.randn(shape), torch.zeros(shape[:-1], dtype=torch.long)
    value = loss("fused", x, z, y, 1.5, reduction, temperature=4.0, clamp=True, normalize=True)
    assert value.shape == (shape[:-1] if reduction == "none" else ())
    assert torch.all(value == 0)
    value.sum().backward()
    assert x.grad.shape == shape


@pytest.mark.parametrize("reduction", ["sum", "batchmean"])
def test_the_total_keeps_its_digits_at_a_language_models_size(reduction):
    # 2 million float32 terms of both signs: summed pairwise (rows, then their sums), the total's
    # error is a few roundings per level of the sum's tree, eps (4 + log2(N C)) sum |terms|; one
    # dot product over every term lost about a hundred times that (issue 28's notebook found it)
    gen = torch.Generator().manual_seed(0)
    s = torch.randn(512, 4000, generator=gen)
    z = 4 * torch.randn(512, 4000, generator=gen)
    y = z.argmax(-1)
    got = klloss.margin_kd_loss(s, z, y, reduction=reduction, impl="fused").item()
    parts = klloss.oracle.intermediates(
        z.double().numpy(), s.double().numpy(), z.double().numpy(), y.numpy(), 1.5
    )
    terms = np.abs(parts["weighted"]).sum() / 8.0 / (512 if reduction == "batchmean" else 1)
    exact = parts["per_sample"].sum() / 8.0 / (512 if reduction == "batchmean" else 1)
    bound = 2.0**-24 * (4 + math.log2(s.numel())) * terms
    assert abs(got - exact) <= bound, (got, exact, bound)
