"""klloss_v2 as a training loss: ignore_index, any leading shape, torch.func transforms.

References: the float64 NumPy oracle on the rows that are kept, the published form on the kept
sub-batch (for gradients), autograd (for torch.func), and the flattened (N, C) call.
"""

import math

import numpy as np
import pytest
import torch
from helpers import as_tensors, batches, gradient_scale, loss_scale
from hypothesis import given, settings
from hypothesis import strategies as st

import klloss

IGNORE = -100


@st.composite
def batches_with_ignored_rows(draw, max_n=6, max_c=8):
    """A batch and a boolean mask of rows whose label is replaced by ``ignore_index``."""
    batch = draw(batches(max_n=max_n, max_c=max_c))
    n = batch[1].shape[0]
    ignored = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return batch, ignored


def with_ignored(batch, ignored, dtype=torch.float64):
    logits_t, s, z, y, beta = as_tensors(batch, dtype)
    y = torch.where(torch.as_tensor(ignored), IGNORE, y)
    return logits_t, s, z, y, beta


@given(case=batches_with_ignored_rows())
def test_ignored_rows_contribute_nothing_and_batchmean_counts_the_rest(case):
    batch, ignored = case
    args = with_ignored(batch, ignored)
    rows = klloss.oracle.intermediates(*batch)["per_sample"]
    kept = ~ignored
    tol = 1e-12 * loss_scale(batch) * len(rows) + 1e-300
    none = klloss.klloss_v2(*args, reduction="none")
    assert torch.all(none[torch.as_tensor(ignored)] == 0)
    np.testing.assert_allclose(none.numpy()[kept], rows[kept], rtol=1e-11, atol=tol)
    total = klloss.klloss_v2(*args, reduction="sum").item()
    assert abs(total - rows[kept].sum()) <= tol
    mean = klloss.klloss_v2(*args).item()
    assert abs(mean - rows[kept].sum() / max(kept.sum(), 1)) <= tol


@given(case=batches_with_ignored_rows())
def test_gradient_with_ignored_rows_is_the_published_gradient_of_the_kept_rows(case):
    batch, ignored = case
    logits_t, s, z, y, beta = with_ignored(batch, ignored)
    s.requires_grad_(True)
    (g,) = torch.autograd.grad(klloss.klloss_v2(logits_t, s, z, y, beta), s)
    mask = torch.as_tensor(ignored)
    assert torch.all(g[mask] == 0)
    if (~mask).any():
        kept = ~mask
        sub = s.detach()[kept].clone().requires_grad_(True)
        (h,) = torch.autograd.grad(
            klloss.klloss_v2_published(logits_t[kept], sub, z[kept], y[kept], beta), sub
        )
        scale = torch.as_tensor(gradient_scale(batch))[kept] * len(y) / kept.sum()
        assert torch.all((g[kept] - h).abs() <= 1e-12 * scale)


@pytest.mark.parametrize("classes", [5, 200])  # both ways to the softmaxes on a CPU (klloss.loss.SMALL_C)
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
def test_every_row_ignored_gives_zero_loss_and_zero_gradient(classes, reduction):
    gen = torch.Generator().manual_seed(classes)
    z = torch.randn(4, classes, generator=gen)
    s = torch.randn(4, classes, generator=gen).requires_grad_(True)
    y = torch.full((4,), IGNORE)
    loss = klloss.klloss_v2(z, s, z, y, 1.5, reduction=reduction)
    assert torch.all(loss == 0)
    loss.sum().backward()
    assert torch.all(s.grad == 0)


@pytest.mark.parametrize("classes", [5, 200])
def test_non_finite_logits_in_ignored_rows_do_not_leak(classes):
    # padding positions may hold anything; what they hold must not reach the loss or the gradient
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(3, classes, generator=gen)
    s = torch.randn(3, classes, generator=gen)
    y = torch.tensor([1, IGNORE, 2])
    dirty_z, dirty_s = z.clone(), s.clone()
    dirty_z[1, 0], dirty_s[1, :] = math.nan, -math.inf
    clean = s.clone().requires_grad_(True)
    dirty = dirty_s.requires_grad_(True)
    expected = klloss.klloss_v2(z, clean, z, y, 1.5)
    got = klloss.klloss_v2(dirty_z, dirty, dirty_z, y, 1.5)
    expected.backward()
    got.backward()
    assert torch.equal(got, expected)
    assert torch.equal(dirty.grad, clean.grad)


def test_ignore_index_inside_the_class_range_ignores_that_class(sample):
    t = sample.tensors(torch.float64)  # labels [3, 2]
    got = klloss.klloss_v2(**t, reduction="none", ignore_index=2)
    full = klloss.klloss_v2(**t, reduction="none", ignore_index=None)
    assert got[1] == 0
    assert got[0] == full[0]
    # batchmean over the one row kept: the same terms, summed in another order (one dot product)
    assert klloss.klloss_v2(**t, ignore_index=2).item() == pytest.approx(full[0].item(), rel=1e-14)


def test_module_takes_ignore_index(sample):
    t = sample.tensors(torch.float64)
    y = torch.tensor([3, 7])
    module = klloss.KLLossV2(1.5, ignore_index=7)
    assert repr(module) == "KLLossV2(beta=1.5, offset=8.0, reduction='batchmean', ignore_index=7)"
    got = module(t["logits_t"], t["input"], t["target"], y)
    assert got == klloss.klloss_v2(**{**t, "label": y}, ignore_index=7)
    with pytest.raises(ValueError, match="or equal ignore_index = 7, got -100"):
        module(t["logits_t"], t["input"], t["target"], torch.tensor([3, -100]))


@pytest.mark.parametrize("classes", [7, 200])
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none"])
def test_leading_shape_is_the_flattened_call(classes, reduction):
    # a language model's (batch, sequence, vocabulary) logits with padded positions
    gen = torch.Generator().manual_seed(classes)
    b, t = 3, 5
    z = 3 * torch.randn(b, t, classes, generator=gen, dtype=torch.float64)
    logits_t = z + 0.1 * torch.randn(b, t, classes, generator=gen, dtype=torch.float64)
    y = torch.randint(0, classes, (b, t), generator=gen)
    y[0, 3:] = IGNORE
    s3 = torch.randn(b, t, classes, generator=gen, dtype=torch.float64).requires_grad_(True)
    s2 = s3.detach().reshape(b * t, classes).clone().requires_grad_(True)
    three = klloss.klloss_v2(logits_t, s3, z, y, 0.7, reduction=reduction)
    two = klloss.klloss_v2(
        logits_t.reshape(-1, classes), s2, z.reshape(-1, classes), y.reshape(-1), 0.7, reduction=reduction
    )
    assert three.shape == ((b, t) if reduction == "none" else ())
    torch.testing.assert_close(three.reshape(two.shape), two, rtol=1e-13, atol=1e-15)
    three.sum().backward()
    two.sum().backward()
    torch.testing.assert_close(s3.grad.reshape(b * t, classes), s2.grad, rtol=1e-13, atol=1e-15)


def test_one_row_without_leading_dimensions(sample):
    t = sample.tensors(torch.float64)
    row = {k: (v[1] if isinstance(v, torch.Tensor) else v) for k, v in t.items()}
    per_row = klloss.klloss_v2(**row, reduction="none")
    assert per_row.shape == ()
    assert per_row == klloss.klloss_v2(**t, reduction="none")[1]


def test_non_contiguous_logits(sample):
    t = sample.tensors(torch.float64)
    columns = {
        k: (v.t().contiguous().t() if isinstance(v, torch.Tensor) and v.dim() == 2 else v)
        for k, v in t.items()
    }
    assert not columns["input"].is_contiguous()
    assert torch.equal(klloss.klloss_v2(**columns), klloss.klloss_v2(**t))


# torch.func: grad, vmap and jacrev against plain autograd


def _batch(seed, n=4, c=6, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    z = 2 * torch.randn(n, c, generator=gen, dtype=dtype)
    s = 2 * torch.randn(n, c, generator=gen, dtype=dtype)
    y = torch.randint(0, c, (n,), generator=gen)
    y[1] = IGNORE
    return z, s, y


@pytest.mark.parametrize("classes", [6, 200])
@pytest.mark.parametrize("reduction", ["batchmean", "sum"])
def test_func_grad_matches_autograd(classes, reduction):
    z, s, y = _batch(0, c=classes)
    f = lambda x: klloss.klloss_v2(z, x, z, y, 1.5, reduction=reduction)  # noqa: E731
    x = s.clone().requires_grad_(True)
    f(x).backward()
    torch.testing.assert_close(torch.func.grad(f)(s), x.grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("classes", [6, 200])
def test_func_jacrev_matches_autograd_jacobian(classes):
    z, s, y = _batch(1, c=classes)
    f = lambda x: klloss.klloss_v2(z, x, z, y, 1.5, reduction="none")  # noqa: E731
    expected = torch.autograd.functional.jacobian(f, s)
    got = torch.func.jacrev(f)(s)
    assert got.shape == (4, 4, classes)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-15)
    # row i of the loss depends on row i of the logits only
    off_diagonal = got.clone()
    off_diagonal[torch.arange(4), torch.arange(4)] = 0
    assert torch.all(off_diagonal == 0)


@pytest.mark.parametrize("reduction", ["batchmean", "none"])
def test_vmap_over_students_and_teachers_matches_a_loop(reduction):
    z, s, y = _batch(2)
    students = torch.stack([s, s + 1.0, 2 * s])
    teachers = torch.stack([z, -z, z])
    f = lambda x, t: klloss.klloss_v2(t, x, t, y, 1.5, reduction=reduction)  # noqa: E731
    expected = torch.stack([f(students[i], teachers[i]) for i in range(3)])
    torch.testing.assert_close(torch.func.vmap(f)(students, teachers), expected, rtol=1e-13, atol=1e-15)
    # the vmapped dimension may sit anywhere, and the teacher may be shared
    moved = torch.func.vmap(lambda x: f(x, z), in_dims=1)(students.movedim(0, 1))
    torch.testing.assert_close(
        moved, torch.stack([f(students[i], z) for i in range(3)]), rtol=1e-13, atol=1e-15
    )


def test_vmap_over_labels_too():
    # labels batched by vmap cannot be read on the host: the gather checks them, and the reference
    # computes (the dispatcher sees the batched tensors)
    z, s, y = _batch(4)
    labels = torch.stack([y, y.flip(0), torch.where(y == IGNORE, 0, IGNORE)])
    f = lambda x, yy: klloss.klloss_v2(z, x, z, yy, 1.5)  # noqa: E731
    students = torch.stack([s, s + 1.0, 2 * s])
    expected = torch.stack([f(students[i], labels[i]) for i in range(3)])
    torch.testing.assert_close(torch.func.vmap(f)(students, labels), expected, rtol=1e-13, atol=1e-15)
    assert expected[2] != 0  # a batch of labels with other rows ignored


IMPLS_UNDER_FUNC = ["auto", "reference"]
"""The forms a transform may run: "auto" picks the reference under one; "fused" refuses, below."""


@pytest.mark.parametrize("transform", [torch.func.grad, torch.func.vmap])
def test_the_fused_form_forced_under_a_transform_is_refused_by_name(transform):
    # its autograd.Function has no torch.func rules: an error that says what to use, not a crash
    z, s, y = _batch(5)
    f = lambda t: klloss.klloss_v2(t, s, z, y, 1.5, impl="fused")  # noqa: E731
    with pytest.raises(
        ValueError, match=r"^impl='fused' cannot run under a torch.func transform.*impl='auto'"
    ):
        transform(f)(torch.stack([z, z]) if transform is torch.func.vmap else z)


@pytest.mark.parametrize("impl", IMPLS_UNDER_FUNC)
@pytest.mark.parametrize("transform", [torch.func.grad, torch.func.jacrev])
@pytest.mark.parametrize("shared", [True, False], ids=["logits_t is target", "logits_t alone"])
def test_a_transform_over_the_teacher_alone_gives_zeros(impl, transform, shared):
    # the loss detaches the teacher: d L / d z' = 0; the dispatcher must see that logits_t is
    # transformed even when input and target are not (issue 25)
    z, s, y = _batch(5)
    if shared:
        f = lambda t: klloss.klloss_v2(t, s, t, y, 1.5, impl=impl)  # noqa: E731
    else:
        f = lambda t: klloss.klloss_v2(t, s, z, y, 1.5, impl=impl)  # noqa: E731
    got = transform(f)(z + 0.5)
    assert got.shape == z.shape
    assert torch.equal(got, torch.zeros_like(z))


@pytest.mark.parametrize("impl", IMPLS_UNDER_FUNC)
def test_vmap_over_the_margin_teacher_alone_matches_a_loop(impl):
    z, s, y = _batch(6)
    margins = torch.stack([z, z + 0.1 * torch.arange(6.0, dtype=z.dtype), -z])
    f = lambda t: klloss.klloss_v2(t, s, z, y, 0.7, reduction="none", impl=impl)  # noqa: E731
    expected = torch.stack([f(margins[i]) for i in range(3)])
    assert not torch.equal(expected[0], expected[2])  # the margin teacher changes the loss
    torch.testing.assert_close(torch.func.vmap(f)(margins), expected, rtol=1e-13, atol=1e-15)
    # the student-first entry point, its one teacher batched
    g = lambda t: klloss.margin_kd_loss(s, t, y, impl=impl)  # noqa: E731
    expected = torch.stack([g(margins[i]) for i in range(3)])
    torch.testing.assert_close(torch.func.vmap(g)(margins), expected, rtol=1e-13, atol=1e-15)


def test_per_example_gradients_with_vmap_of_grad():
    z, s, y = _batch(3)
    students = torch.stack([s, s - 0.5, 3 * s])
    f = lambda x: klloss.klloss_v2(z, x, z, y, 1.5)  # noqa: E731
    got = torch.func.vmap(torch.func.grad(f))(students)
    for i in range(3):
        x = students[i].clone().requires_grad_(True)
        f(x).backward()
        torch.testing.assert_close(got[i], x.grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("classes", [6, 200])
def test_hessian_vector_product_with_ignored_rows(classes):
    # double backward recomputes q differentiably; ignored rows must stay out of it too
    z, s, y = _batch(4, c=classes)
    kept = y != IGNORE
    v = torch.randn(s.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    x = s.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(klloss.klloss_v2(z, x, z, y, 1.5), x, create_graph=True)
    (hv,) = torch.autograd.grad((g * v).sum(), x)
    x2 = s[kept].clone().requires_grad_(True)
    reference = klloss.klloss_v2_reference(z[kept], x2, z[kept], y[kept], 1.5)
    (g2,) = torch.autograd.grad(reference, x2, create_graph=True)
    (hv2,) = torch.autograd.grad((g2 * v[kept]).sum(), x2)
    assert torch.all(hv[~kept] == 0)
    torch.testing.assert_close(hv[kept], hv2, rtol=1e-10, atol=1e-14)


@pytest.mark.slow
@settings(max_examples=30)
@given(batch=batches(max_n=4, max_c=6, max_abs=10.0))
def test_gradcheck_with_an_ignored_row(batch):
    logits_t, s, z, y, beta = as_tensors(batch, requires_grad=True)
    y = y.clone()
    y[0] = IGNORE
    for reduction in ("batchmean", "none"):
        assert torch.autograd.gradcheck(
            lambda x, reduction=reduction: klloss.klloss_v2(logits_t, x, z, y, beta, reduction=reduction),
            (s,),
        )


def test_parts_of_an_ignored_row_are_zero_and_of_an_undefined_row_nan():
    # return_parts comes from the reference: an ignored row is 0 in every part, its gradient 0,
    # whatever it holds; a kept row with a NaN teacher logit is NaN in every part (issue 25)
    z, s, _ = _batch(7, n=3, c=5)
    z[1, 0] = -math.inf
    z[2, 0] = math.nan
    s = s.requires_grad_(True)
    ignored = klloss.margin_kd_loss(s, z, torch.tensor([0, 1, IGNORE]), return_parts=True)
    for part in ignored[1:]:
        assert part[2].item() == 0
        assert torch.isfinite(part).all()
    (grad,) = torch.autograd.grad(ignored.loss, s)
    assert torch.equal(grad[2], torch.zeros(5, dtype=grad.dtype))
    kept = klloss.margin_kd_loss(s, z, torch.tensor([0, 1, 2]), return_parts=True)
    for part in kept:
        assert math.isnan(part.reshape(-1)[-1].item())
    for row_part, same_row_part in zip(kept[1:], ignored[1:], strict=True):
        assert torch.equal(row_part[:2], same_row_part[:2])  # rows 0 and 1 as they were
