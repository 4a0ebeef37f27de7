"""On a CUDA device: no host synchronisation in forward or backward, the CPU's values, and bad
labels stopped on the device; for the Triton path (klloss._triton) also its memory, a language
model's vocabulary and Inductor. Skipped where there is no CUDA (``tools/device_check.sh`` runs
them on a GPU machine)."""

import subprocess
import sys
import textwrap
import types
import warnings

import pytest
import torch
from helpers import COMPILE_WARNINGS

import klloss
from klloss import _triton
from klloss.options import Options

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def _batch(shape, classes, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    teacher = 3 * torch.randn(*shape, classes, generator=gen, dtype=torch.float64)
    student = torch.randn(*shape, classes, generator=gen, dtype=torch.float64)
    label = torch.randint(0, classes, shape, generator=gen)
    label.view(-1)[::3] = -100  # every third row is padding
    return teacher.to(dtype), student.to(dtype), label


CASES = [
    # (leading shape, classes, dtype, reduction): few and many classes, 2-d and (B, T, V)
    ((64,), 10, torch.float32, "batchmean"),
    ((4, 16), 1000, torch.float32, "batchmean"),
    ((4, 16), 10, torch.bfloat16, "sum"),
    ((256,), 100, torch.float32, "none"),
]


def _sync_debug_mode(mode):
    # torch warns that the debug mode is a prototype each time it is switched; that one warning is
    # expected and checked, any other is raised as the project's pytest settings require
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode(mode)
    for warning in caught:
        if "prototype" not in str(warning.message):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


@pytest.mark.parametrize(("shape", "classes", "dtype", "reduction"), CASES)
@pytest.mark.parametrize("ignore_index", [-100, None])
def test_forward_and_backward_never_wait_for_the_device(shape, classes, dtype, reduction, ignore_index):
    teacher, student, label = _batch(shape, classes, dtype)
    if ignore_index is None:
        label = label.clamp(min=0)
    teacher, label = teacher.cuda(), label.cuda()
    student = student.cuda().requires_grad_(True)
    criterion = klloss.KLLossV2(1.5, reduction=reduction, ignore_index=ignore_index)
    torch.cuda.synchronize()
    try:
        _sync_debug_mode("error")  # any host synchronisation raises
        loss = criterion(teacher, student, teacher, label)
        loss.sum().backward()
        functional = klloss.klloss_v2(
            teacher, student.detach(), teacher, label, 1.5, reduction=reduction, ignore_index=ignore_index
        )
    finally:
        _sync_debug_mode("default")
    assert loss.device.type == "cuda"
    assert student.grad.device.type == "cuda"
    torch.testing.assert_close(functional, loss.detach())


@pytest.mark.parametrize(("shape", "classes", "dtype", "reduction"), CASES)
def test_cuda_matches_cpu(shape, classes, dtype, reduction):
    teacher, student, label = _batch(shape, classes, dtype)
    results = []
    for device in ("cpu", "cuda"):
        s = student.to(device).detach().requires_grad_(True)  # a leaf on each device
        loss = klloss.klloss_v2(
            teacher.to(device), s, teacher.to(device), label.to(device), 1.5, reduction=reduction
        )
        loss.sum().backward()
        results.append((loss.detach().cpu(), s.grad.cpu()))
    (cpu_loss, cpu_grad), (cuda_loss, cuda_grad) = results
    tol = 1e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(cuda_loss, cpu_loss, rtol=tol, atol=tol)
    torch.testing.assert_close(
        cuda_grad.float(), cpu_grad.float(), rtol=tol, atol=tol * cpu_grad.float().abs().max().item()
    )
    assert torch.all(cuda_grad[label == -100] == 0)


def test_bad_label_is_stopped_on_the_device():
    # a device-side assert leaves the CUDA context unusable, so this runs in its own process
    code = textwrap.dedent(
        """
        import torch, klloss
        z = torch.randn(4, 10, device="cuda")
        label = torch.tensor([1, 2, 10, -100], device="cuda")  # 10 is out of [0, 10)
        loss = klloss.klloss_v2(z, z.clone().requires_grad_(True), z, label, 1.5)
        torch.cuda.synchronize()
        print("no error")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, result.stdout
    assert "device-side assert" in result.stderr or "out of bounds" in result.stderr, result.stderr[-2000:]


@COMPILE_WARNINGS[0]
@COMPILE_WARNINGS[1]
def test_compiled_on_cuda_matches_eager():
    teacher, student, label = _batch((4, 16), 1000)
    teacher, label = teacher.cuda(), label.cuda()

    def loss_fn(s):
        return klloss.klloss_v2(teacher, s, teacher, label, 1.5)

    results = []
    for fn in (loss_fn, torch.compile(loss_fn, fullgraph=True)):
        s = student.cuda().requires_grad_(True)
        loss = fn(s)
        loss.backward()
        results.append((loss.detach(), s.grad))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-4, atol=1e-7)


# The Triton path (klloss._triton), compiled on the GPU; tests/test_triton.py runs the value checks
# against the oracle here too (compiled), and under the interpreter on a CPU.

needs_triton = pytest.mark.skipif(
    not torch.cuda.is_available() or not _triton.available("cuda"), reason="no CUDA or no Triton"
)


@needs_triton
@pytest.mark.parametrize(("shape", "classes", "dtype", "reduction"), CASES)
@pytest.mark.parametrize("ignore_index", [-100, None])
def test_triton_never_waits_for_the_device(shape, classes, dtype, reduction, ignore_index):
    teacher, student, label = _batch(shape, classes, dtype)
    if ignore_index is None:
        label = label.clamp(min=0)
    teacher, label = teacher.cuda(), label.cuda()
    student = student.cuda().requires_grad_(True)
    options = Options(1.5, reduction=reduction, ignore_index=ignore_index)
    _triton.loss(student, teacher, None, label, options).sum().backward()  # compiles the kernels
    student.grad = None
    torch.cuda.synchronize()
    try:
        _sync_debug_mode("error")  # any host synchronisation raises
        loss = _triton.loss(student, teacher, None, label, options)
        loss.sum().backward()
    finally:
        _sync_debug_mode("default")
    want = klloss.klloss_v2(
        teacher.double().cpu(), student.detach().double().cpu(), teacher.double().cpu(), label.cpu(), 1.5,
        reduction=reduction, ignore_index=ignore_index,
    )  # fmt: skip
    torch.testing.assert_close(loss.detach().cpu().double(), want, rtol=1e-4, atol=1e-5)
    assert student.grad.dtype == dtype


@needs_triton
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_triton_at_a_language_model_vocabulary(dtype):
    # 128256 classes: 32 blocks a row; against the torch path in float64 on the CPU
    teacher, student, label = _batch((48,), 128256, dtype, seed=1)
    s = student.cuda().requires_grad_(True)
    loss = _triton.loss(s, teacher.cuda(), None, label.cuda(), Options(1.5))
    loss.backward()
    s64 = student.double().requires_grad_(True)
    want = klloss.klloss_v2(teacher.double(), s64, teacher.double(), label, 1.5)
    want.backward()
    torch.testing.assert_close(loss.detach().cpu().double(), want.detach(), rtol=1e-4, atol=1e-6)
    grad = s.grad.cpu().double()
    scale = s64.grad.abs().max().item()
    rounding = 2e-5 if dtype == torch.float32 else 1e-2  # the gradient's own dtype, bfloat16: 8 bits
    torch.testing.assert_close(grad, s64.grad, rtol=rounding, atol=rounding * scale)


@needs_triton
def test_triton_memory_is_the_gradient_and_a_few_numbers_a_row():
    n, v = 512, 32000
    teacher, student, label = (x.cuda() for x in _batch((n,), v, torch.bfloat16, seed=2))
    student.requires_grad_(True)
    options = Options(1.5)
    _triton.loss(student, teacher, None, label, options).backward()  # compiles the kernels
    student.grad = None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    _triton.loss(student, teacher, None, label, options).backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    gradient = student.numel() * student.element_size()
    # the gradient, the per-row losses and statistics (7 float32 a row), and a few scalars, each
    # allocation rounded up to the allocator's 512 bytes
    assert gradient <= peak <= gradient + 7 * 4 * n + 16 * 512


@needs_triton
def test_triton_new_options_strided_labels_and_mixed_dtypes_never_wait():
    # temperature, clamp and normalize (read from a namespace until klloss.Options has them), a
    # bfloat16 student with float32 teachers, int32 labels taken as buf[..., 0] (stride 2) with an
    # ignore_index that int32 cannot hold: no host synchronisation, and the float64 formula's value
    teacher, student, label = _batch((4, 16), 1000, seed=5)
    options = types.SimpleNamespace(
        beta=1.5, offset=8.0, reduction="batchmean", ignore_index=2**40, temperature=2.0, clamp=True,
        normalize=True,
    )  # fmt: skip
    label = label.clamp(min=0).int()
    buf = torch.stack([label, torch.full_like(label, 999)], dim=-1).cuda()
    y = buf[..., 0]
    z = teacher.cuda()
    s = student.cuda().bfloat16().requires_grad_(True)
    _triton.loss(s, z, None, y, options).backward()  # compiles the kernels
    s.grad = None
    torch.cuda.synchronize()
    try:
        _sync_debug_mode("error")  # any host synchronisation raises
        loss = _triton.loss(s, z, None, y, options)
        loss.backward()
    finally:
        _sync_debug_mode("default")
    assert s.grad.dtype == torch.bfloat16
    # the formula in float64 on the CPU, from the same bfloat16 student: f = T^2 / k = 0.5
    s64 = s.detach().double().cpu().requires_grad_(True)
    z64, y64 = teacher.double(), label.long()
    w = ((z64.gather(-1, y64.unsqueeze(-1)) - z64) / 1.5 + 8.0).clamp(min=0)
    log_p, log_q = torch.log_softmax(z64 / 2, -1), torch.log_softmax(s64 / 2, -1)
    want = 0.5 * (w * log_p.exp() * (log_p - log_q)).sum(-1).mean()
    want.backward()
    torch.testing.assert_close(loss.detach().cpu().double(), want.detach(), rtol=1e-4, atol=1e-6)
    scale = s64.grad.abs().max().item()
    torch.testing.assert_close(s.grad.cpu().double(), s64.grad, rtol=1e-2, atol=1e-2 * scale)


@needs_triton
def test_triton_undefined_teacher_rows_are_nan_and_ignored_rows_zero_on_the_device():
    # compiled, the maximum may pass over a NaN (the interpreter's does not): the rows are NaN still
    teacher, student, label = (x.cuda() for x in _batch((6,), 10, seed=6))
    label[:] = torch.tensor([1, 2, 3, -100, -100, 4], device="cuda")
    teacher[0, 4], teacher[1, 2], teacher[2] = float("nan"), float("inf"), float("-inf")
    teacher[3, 0], teacher[4] = float("nan"), float("-inf")
    s = student.requires_grad_(True)
    rows = _triton.loss(s, teacher, None, label, Options(1.5, reduction="none"))
    rows.sum().backward()
    assert torch.isnan(rows[:3]).all().item()
    assert torch.isnan(s.grad[:3]).all().item()
    assert (rows[3:5] == 0).all().item()
    assert (s.grad[3:5] == 0).all().item()
    assert torch.isfinite(rows[5]).item()


@needs_triton
def test_triton_bad_labels_give_nan_rows_on_the_device():
    teacher, student, label = (x.cuda() for x in _batch((6,), 10, seed=3))
    label[2] = 10  # outside [0, 10) and not -100: no device-side assert, a NaN row
    rows = _triton.loss(student, teacher, None, label, Options(1.5, reduction="none"))
    assert torch.isnan(rows[2]).item()
    assert torch.isfinite(rows[[0, 1, 3, 4, 5]]).all().item()


@needs_triton
@COMPILE_WARNINGS[0]
@COMPILE_WARNINGS[1]
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_compiles_with_inductor(dtype):
    # triton_op: Inductor traces into the ops and sees the two kernels
    teacher, student, label = _batch((4, 16), 1000, dtype, seed=4)
    teacher, label = teacher.cuda(), label.cuda()

    def loss_fn(s):
        return _triton.loss(s, teacher, None, label, Options(1.5))

    torch._dynamo.reset()
    results = []
    for fn in (loss_fn, torch.compile(loss_fn, fullgraph=True)):
        s = student.cuda().requires_grad_(True)
        loss = fn(s)
        loss.backward()
        results.append((loss.detach(), s.grad))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=0, atol=0)
