"""torch.compile(fullgraph=True) of code that calls klloss_v2 or KLLossV2 compiles, on the CPU, and
gives the eager values and gradients. Each test compiles once (seconds each), so there are few."""

import pytest
import torch
from helpers import COMPILE_WARNINGS

import klloss

pytestmark = COMPILE_WARNINGS


@pytest.fixture(autouse=True)
def _own_inductor_cache(inductor_cache, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", inductor_cache)


@pytest.fixture(autouse=True)
def _scalar_code_under_baseline_aten():
    # Under ATEN_CPU_CAPABILITY=default (a simulated CPU `make test` must pass under, and the
    # notebooks' pinned setting), torch 2.13's inductor emits vector code that does not compile;
    # an explicit scalar simdlen compiles. Other capabilities compile as they are.
    if torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        yield
        return
    with torch._inductor.config.patch({"cpp.simdlen": 1}):
        yield


def _lm_batch(vocabulary):
    # a language model's (batch, sequence, vocabulary) logits, with padding at the end of one row
    gen = torch.Generator().manual_seed(vocabulary)
    teacher = 3 * torch.randn(2, 5, vocabulary, generator=gen)
    student = torch.randn(2, 5, vocabulary, generator=gen)
    label = torch.randint(0, vocabulary, (2, 5), generator=gen)
    label[1, 3:] = -100
    return teacher, student, label


def _eager_and_compiled(fn, teacher, student, label):
    results = []
    for f in (fn, torch.compile(fn, fullgraph=True)):
        s = student.clone().requires_grad_(True)
        loss = f(teacher, s, label)
        loss.backward()
        results.append((loss.detach(), s.grad))
    return results


def test_compiled_function_matches_eager_and_still_checks_labels():
    teacher, student, label = _lm_batch(11)  # few classes: the log-softmax path of the forward

    def loss_fn(t, s, y):
        return klloss.klloss_v2(t, s, t, y, 1.5)

    (loss, grad), (compiled_loss, compiled_grad) = _eager_and_compiled(loss_fn, teacher, student, label)
    torch.testing.assert_close(compiled_loss, loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(compiled_grad, grad, rtol=1e-5, atol=1e-7)
    assert torch.all(compiled_grad[1, 3:] == 0)  # padded positions get no gradient
    # compiled code skips the host check; its gather checks the index instead
    compiled = torch.compile(loss_fn, fullgraph=True)
    bad = label.clone()
    bad[0, 0] = 11
    with pytest.raises(RuntimeError, match="index out of bounds"):
        compiled(teacher, student, bad)


def test_compiled_module_matches_eager():
    teacher, student, label = _lm_batch(200)  # many classes: the softmax-kernel path
    criterion = klloss.KLLossV2(beta=0.7, reduction="sum")
    margin_teacher = teacher + 0.1

    def loss_fn(t, s, y):
        return criterion(margin_teacher, s, t, y)

    (loss, grad), (compiled_loss, compiled_grad) = _eager_and_compiled(loss_fn, teacher, student, label)
    torch.testing.assert_close(compiled_loss, loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(compiled_grad, grad, rtol=1e-5, atol=1e-7)


def test_compiled_batch_mean_without_padding_matches_eager():
    # many classes on the CPU (the softmax-kernel path), no ignored row, batchmean: the case where
    # torch 2.11's CPU inductor returned a zero gradient (seen on the GPU machine's torch); keep it
    teacher, student, label = _lm_batch(1000)
    label = label.clamp(min=0)

    def loss_fn(t, s, y):
        return klloss.klloss_v2(t, s, t, y, 1.5, ignore_index=None)

    (loss, grad), (compiled_loss, compiled_grad) = _eager_and_compiled(loss_fn, teacher, student, label)
    torch.testing.assert_close(compiled_loss, loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(compiled_grad, grad, rtol=1e-4, atol=1e-7)
    assert grad.abs().max() > 0


def test_compiled_loss_meets_the_edge_cases():
    # the numbers at the edges (tests/test_edges.py) on the compiled path: one compilation, four
    # batches of one shape: tied logits at +-1e30, teacher classes at -inf and at the lowest float
    # (the weight overflows where p = 0), a student shifted by 1e4; each against the float64 oracle
    import numpy as np
    from helpers import EPS, float32_bound
    from test_edges import masked_vocabulary, tied_rows

    def loss_fn(t, s, y):
        return klloss.klloss_v2(t, s, t, y, 0.1)

    compiled = torch.compile(loss_fn, fullgraph=True, dynamic=False)
    tied, s_tied, y_tied = tied_rows(1e30, 12)
    inf, s_inf, y_inf = masked_vocabulary(-np.inf)
    low, s_low, y_low = masked_vocabulary(torch.finfo(torch.float32).min)
    cases = [(tied, s_tied, y_tied), (inf, s_inf, y_inf), (low, s_low, y_low), (inf, s_inf + 1e4, y_inf)]
    for z, s, y in cases:
        z32, s32 = torch.tensor(z, dtype=torch.float32), torch.tensor(s, dtype=torch.float32)
        x = s32.clone().requires_grad_(True)
        value = compiled(z32, x, torch.tensor(y))
        value.backward()
        parts = klloss.oracle.intermediates(z32.double(), s32.double(), z32.double(), y, 0.1)
        bound = float32_bound(parts, 0.1, 8.0, len(y), EPS[torch.float32])
        assert abs(value.item() - parts["loss"]) <= bound
        assert torch.isfinite(x.grad).all()


def _eager_and_compiled_values(fn, compiled, *args):
    """fn and compiled on the same arguments: (loss, gradient of the student, the second argument)."""
    results = []
    for f in (fn, compiled):
        s = args[1].clone().requires_grad_(True)
        value = f(args[0], s, *args[2:])
        (grad,) = torch.autograd.grad(value.sum(), s)
        results.append((value.detach(), grad))
    return results


def test_beta_offset_and_temperature_may_change_between_compiled_calls():
    # passed to the compiled function, they change between calls: after the first change Dynamo
    # traces them as symbols, which the option checks must accept (math.isnan on one stopped
    # fullgraph=True, issue 25); dynamic=True traces them as symbols from the start. What failed
    # was the tracing, so these compile with the "aot_eager" backend (no C++ code to build)
    import math

    teacher, student, label = _lm_batch(11)

    def article(t, s, y, beta, offset):
        return klloss.klloss_v2(t, s, t, y, beta, offset=offset)

    def student_first(t, s, y, beta, temperature):
        return klloss.margin_kd_loss(s, t, y, margin_scale=beta, temperature=temperature)

    calls = [
        (article, None, [(1, 8), (2, 8), (2.5, 3.0), (0.7, -1), (math.inf, 8.0)]),
        (article, True, [(0.7, 2)]),
        (student_first, None, [(1.5, 1.0), (1.5, 2.0), (0.5, 3)]),
    ]
    for fn, dynamic, options in calls:
        compiled = torch.compile(fn, fullgraph=True, dynamic=dynamic, backend="aot_eager")
        for beta, other in options:
            (loss, grad), (got, got_grad) = _eager_and_compiled_values(
                fn, compiled, teacher, student, label, beta, other
            )
            torch.testing.assert_close(got, loss, rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(got_grad, grad, rtol=1e-6, atol=1e-7)


def test_a_tensor_beta_or_swapped_arguments_under_compile_are_refused_by_name():
    # with fullgraph=True the exception reaches the caller inside torch.compile's own (a
    # RuntimeError that quotes it); without, as itself
    teacher, student, label = _lm_batch(11)
    words = "beta must be a Python number under torch.compile, got a tensor"
    compiled = torch.compile(
        lambda t, s, y, b: klloss.klloss_v2(t, s, t, y, b), fullgraph=True, backend="aot_eager"
    )
    with pytest.raises((TypeError, RuntimeError), match=words):
        compiled(teacher, student, label, torch.tensor(1.5))
    swapped = torch.compile(lambda t, s, y: klloss.klloss_v2(t, s, t, y, 1.5), backend="aot_eager")
    with pytest.raises(ValueError, match="logits_t and target require grad but input does not"):
        swapped(teacher.requires_grad_(True), student, label)


def test_compiled_ignored_rows_give_zero_and_undefined_rows_nan():
    # issue 25 on the compiled reference: an ignored row gives exactly 0 to the loss and the
    # gradient whatever it holds; a kept row with no teacher distribution gives NaN
    import math

    import numpy as np
    from test_edges import UNDEFINED, filled_rows

    def rows(t, s, y):
        return klloss.klloss_v2(t, s, t, y, 1.5, reduction="none")

    compiled = torch.compile(rows, fullgraph=True, dynamic=False)
    for teacher in [{"class0": -math.inf}, *UNDEFINED]:
        z, s = filled_rows(teacher, {"class0": math.nan})
        ignored = torch.tensor([2, 4, -100])
        (_, _), (value, grad) = _eager_and_compiled_values(
            rows, compiled, torch.tensor(z), torch.tensor(s), ignored
        )
        assert torch.equal(grad[2], torch.zeros(5)), (teacher, grad[2])
        assert value[2].item() == 0
        parts = klloss.oracle.intermediates(z[:2], s[:2], z[:2], ignored[:2].numpy(), 1.5)
        np.testing.assert_allclose(value[:2].numpy(), parts["per_sample"], rtol=1e-12)
        z, s = filled_rows(teacher, None)
        kept = compiled(torch.tensor(z), torch.tensor(s), torch.tensor([2, 4, 1]))
        assert math.isnan(kept[2].item()) == (teacher != {"class0": -math.inf}), teacher


def test_compiled_narrow_labels_are_compared_without_wrapping():
    # a uint8 label of 156 is a class, not ignore_index = -100 (which wraps to 156 in uint8)
    import numpy as np

    gen = torch.Generator().manual_seed(7)
    z, s = (
        torch.randn(3, 260, generator=gen, dtype=torch.float64),
        torch.randn(3, 260, generator=gen, dtype=torch.float64),
    )
    label = torch.tensor([156, 1, 255], dtype=torch.uint8)
    compiled = torch.compile(lambda t, x, y: klloss.klloss_v2(t, x, t, y, 1.5), fullgraph=True)
    expected = klloss.oracle.klloss_v2(z.numpy(), s.numpy(), z.numpy(), label.numpy().astype(np.int64), 1.5)
    assert compiled(z, s, label).item() == pytest.approx(expected, rel=1e-12)
