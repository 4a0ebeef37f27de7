r"""margin_kd_loss_from_hidden: the chunked loss from hidden states against the full-logit loss.

The reference is :func:`klloss.margin_kd_loss` (the readable form, ``impl="reference"``) of the
logits :math:`s = hW^\top + b`, :math:`z = h_tW_t^\top + b_t` formed in float64 from the same
(rounded) inputs, differentiated by autograd. The error model, for a computation in a precision
of unit roundoff u (float32 for float32 and bfloat16 inputs, float64 for float64 ones):

1. each logit is a dot product of length H + 1: off by at most
   :math:`\Delta s_{ic} = \gamma_{H+1} (|h_i|\cdot|W_c| + |b_c|)`, :math:`\gamma_n = nu/(1-nu)`;
   :math:`M_s, M_z` are a row's largest;
2. those errors move the loss and its gradient G to first order (a log-softmax moves by at most
   twice the largest change of its inputs, the margin by :math:`2M_z`, and the clamp is
   1-Lipschitz): with :math:`d = \log p - \log q` and :math:`A = \sum_c |\tilde w_c| p_c`, per row
   :math:`|\delta L_i| \le f\sum_c p_c (2M_z/\beta + 2|\tilde w_c| M_z/T)|d_c| + 2|\tilde w_c|
   p_c (M_s + M_z)/T` and :math:`|\delta G_{ic}| \le \frac{2f}{TN'}[q_c |W| M_s/T + q_c M_z
   (1/\beta + A/T) + p_c M_z/\beta + |\tilde w_c| p_c M_z/T]`;
3. the library's form rounds as ``tests/helpers.py::float32_bound`` states (8u per factor,
   relative to the log-probabilities and the weight), its sum of NV terms and the division by
   :math:`N'` by :math:`\gamma_{NV+1}`; its gradient G as
   :math:`8u[(q_c A + (|\tilde w_c| + |k| + |m_c|/\beta) p_c)(2 + |\log p_c| + |\log q_c| + \log V)
   + V q_c A]`;
4. the products :math:`GW`, :math:`G^\top h` and :math:`\sum_i G_i` are dot products of length
   V, N and N: :math:`\gamma_V |G||W|`, :math:`\gamma_N |G|^\top|h|`, :math:`\gamma_N \sum_i |G_i|`.

The bound is twice the sum (the factor covers the second-order terms), and for a bfloat16
gradient one more rounding: :math:`e + 2^{-8}(|g| + e)`. A float32 computation from logits
rounded to bfloat16 (the defect of Liger-Kernel issue 1432) breaks it, which shows it can fail.
"""

import json
import math
import tempfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import klloss
from klloss import _fused, _triton, linear

IGNORE = -100
F64 = torch.float64
UNIT = {torch.float64: 2.0**-53, torch.float32: 2.0**-24, torch.bfloat16: 2.0**-24}
"""The unit roundoff of the computation, by input dtype (bfloat16 is computed in float32)."""
BF16 = 2.0**-8
"""bfloat16's unit roundoff (8 bits of significand)."""


def make(seed, lead=(3, 5), hidden=8, teacher_hidden=6, vocab=20, teacher_vocab=None, dtype=F64, bias=True):
    """Random arguments: hidden states (lead, H), weights (V, H), biases, labels with ignored rows."""
    gen = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=gen, dtype=F64).to(dtype)  # noqa: E731
    labels = torch.randint(0, vocab, lead, generator=gen)
    labels.view(-1)[:: max(2, labels.numel() // 3)] = IGNORE  # every third row or so is padding
    v_t = teacher_vocab or vocab
    return {
        "h": rand(*lead, hidden).requires_grad_(True),
        "w": rand(vocab, hidden).requires_grad_(True),
        "b": rand(vocab).requires_grad_(True) if bias else None,
        "h_t": rand(*lead, teacher_hidden),
        "w_t": rand(v_t, teacher_hidden),
        "b_t": rand(v_t) if bias else None,
        "y": labels,
    }


def chunked(x, **options):
    """The loss and the gradients of (h, W, b) by the entry point under test."""
    loss = klloss.margin_kd_loss_from_hidden(
        x["h"], x["w"], x["h_t"], x["w_t"], x["y"], student_bias=x["b"], teacher_bias=x["b_t"], **options
    )
    inputs = [t for t in (x["h"], x["w"], x["b"]) if t is not None]
    return loss.detach(), torch.autograd.grad(loss, inputs)


def full_logits(x, **options):
    """The reference: margin_kd_loss of the logits formed in float64, and autograd's gradients."""
    h, w, b = (
        None if t is None else t.detach().to(F64).requires_grad_(True) for t in (x["h"], x["w"], x["b"])
    )
    h_t, w_t, b_t = (None if t is None else t.to(F64) for t in (x["h_t"], x["w_t"], x["b_t"]))
    s = h @ w.T + (0 if b is None else b)  # s = h W^T + b
    z = h_t @ w_t.T + (0 if b_t is None else b_t)  # z = h_t W_t^T + b_t
    loss = klloss.margin_kd_loss(s, z, x["y"], impl="reference", **options)
    inputs = [t for t in (h, w, b) if t is not None]
    return loss.detach(), torch.autograd.grad(loss, inputs)


def gamma(n, u):
    """gamma_n = n u / (1 - n u): the relative error bound of a sum or dot product of n terms."""
    return n * u / (1 - n * u)


def _terms(x, options):
    """The float64 quantities of the error model, (N, V) rows: p, q, log p, log q, w~, m, kept."""
    t, beta, k = options.get("temperature", 1.0), options.get("margin_scale", 1.5), options.get("offset", 8.0)
    h, w, b = (None if v is None else v.detach().to(F64) for v in (x["h"], x["w"], x["b"]))
    h_t, w_t, b_t = (None if v is None else v.to(F64) for v in (x["h_t"], x["w_t"], x["b_t"]))
    v = w.shape[0]
    s = (h @ w.T + (0 if b is None else b)).reshape(-1, v)
    z = (h_t @ w_t[:v].T + (0 if b_t is None else b_t[:v])).reshape(-1, v)
    kept = (x["y"] != IGNORE).reshape(-1)
    y = torch.where(kept, x["y"].reshape(-1), 0)
    log_p, log_q = F.log_softmax(z / t, -1), F.log_softmax(s / t, -1)
    m = z.gather(-1, y[:, None]) - z  # m = z_y - z
    wt = m / beta + k if beta != math.inf else torch.full_like(m, k)
    if options.get("clamp", False):
        wt = wt.clamp(min=0)
    return log_p, log_q, wt, m, kept


def bounds(x, u, **options):
    """The error model of the module docstring: bounds on |loss - reference| and on the three
    gradients' errors, elementwise."""
    t, beta, k = options.get("temperature", 1.0), options.get("margin_scale", 1.5), options.get("offset", 8.0)
    f = t * t / (k if options.get("normalize", True) else 1.0)
    log_p, log_q, wt, m, kept = _terms(x, options)
    n, v = log_p.shape
    count = options.get("num_items_in_batch") or (
        1 if options.get("reduction") == "sum" else max(int(kept.sum()), 1)
    )
    p, q = log_p.exp(), log_q.exp()
    d = torch.where(p > 0, log_p - log_q, 0.0)  # log p - log q
    big_a, big_w = (wt.abs() * p).sum(-1, keepdim=True), (wt * p).sum(-1, keepdim=True)  # A, W
    h, w, b = (None if a is None else a.detach().to(F64) for a in (x["h"], x["w"], x["b"]))
    h = h.reshape(n, -1)
    h_t, w_t, b_t = (None if a is None else a.to(F64) for a in (x["h_t"], x["w_t"], x["b_t"]))
    h_t = h_t.reshape(n, -1)
    d_s = gamma(h.shape[1] + 1, u) * (h.abs() @ w.abs().T + (0 if b is None else b.abs()))  # Delta s
    d_z = gamma(h_t.shape[1] + 1, u) * (h_t.abs() @ w_t[:v].abs().T + (0 if b_t is None else b_t[:v].abs()))
    ms, mz = d_s.max(-1, keepdim=True).values, d_z.max(-1, keepdim=True).values  # M_s, M_z
    size = wt.abs() + abs(k) + m.abs() / beta  # what the weight's roundings are relative to
    logs = 2 + log_p.abs() + log_q.abs() + math.log(v)
    moved = p * (2 * mz / beta + 2 * wt.abs() * mz / t) * d.abs() + 2 * wt.abs() * p * (ms + mz) / t
    rounded = 8 * u * size * p * (1 + d.abs()) * logs
    rows = torch.where(kept[:, None], f * (moved + rounded), 0.0).sum()
    sums = gamma(n * v + 1, u) * f * torch.where(kept[:, None], (wt * p * d).abs(), 0.0).sum()
    scale = f / (t * count)
    grad = torch.where(kept[:, None], scale * (q * big_w - wt * p), 0.0)  # G = dL/ds
    moved_g = (
        2
        * scale
        * (q * big_w.abs() * ms / t + q * mz * (1 / beta + big_a / t) + p * mz / beta + wt.abs() * p * mz / t)
    )
    rounded_g = scale * 8 * u * ((q * big_a + size * p) * logs + v * q * big_a)
    e = torch.where(kept[:, None], moved_g + rounded_g, 0.0)
    out = {
        "loss": 2 * float(rows + sums) / count,
        "h": 2 * (e @ w.abs() + gamma(v, u) * grad.abs() @ w.abs()).reshape(x["h"].shape),
        "w": 2 * (e.T @ h.abs() + gamma(n, u) * grad.abs().T @ h.abs()),
    }
    if b is not None:
        out["b"] = 2 * (e.sum(0) + gamma(n, u) * grad.abs().sum(0))
    return out


def assert_within(x, got, want, u, **options):
    """The value and each gradient within :func:`bounds`; a bfloat16 gradient within one more rounding."""
    bound = bounds(x, u, **options)
    (loss, grads), (ref, ref_grads) = got, want
    assert abs(float(loss) - float(ref)) <= bound["loss"], (float(loss), float(ref), bound["loss"])
    for name, g, r in zip(("h", "w", "b"), grads, ref_grads, strict=False):
        e = bound[name]
        if g.dtype == torch.bfloat16:
            e = e + BF16 * (r.abs() + e)  # the gradient returned in bfloat16: one more rounding
        err = (g.to(F64) - r).abs()
        assert torch.all(err <= e), f"d/d{name}: error {float((err - e).max()):.3g} over the bound"


OPTION_SETS = [
    {},
    {"temperature": 2.0},
    {"clamp": True, "margin_scale": 0.5},
    {"normalize": False},
    {"reduction": "sum"},
    {"margin_scale": math.inf},
    {"temperature": 0.5, "clamp": True, "margin_scale": 0.5, "normalize": False},
]


@pytest.mark.parametrize(
    "options", OPTION_SETS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults"
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_value_and_the_three_gradients_are_the_full_logit_ones(options, dtype):
    # (B, T) = (3, 5) rows in chunks of 4 (the last one short), a third of them ignored
    x = make(seed=len(options), dtype=dtype)
    got = chunked(x, chunk_size=4, **options)
    want = full_logits(x, **options)
    assert_within(x, got, want, UNIT[dtype], **options)
    if options:  # the option reached the loss: without it the reference differs
        assert not torch.isclose(want[0], full_logits(x)[0], rtol=1e-6)


TRITON = pytest.mark.skipif(
    not _triton.available("cuda" if torch.cuda.is_available() else "cpu"),
    reason="Triton is not available here (on a CPU it runs in its interpreter, TRITON_INTERPRET=1)",
)


@pytest.mark.parametrize("impl", ["auto", "reference", pytest.param("triton", marks=TRITON)])
@pytest.mark.parametrize("bias", [True, False])
def test_each_inner_form_and_without_biases(impl, bias):
    # auto: the fused form on the CPU; triton: the kernels (in Triton's interpreter without a GPU)
    device = "cuda" if impl == "triton" and torch.cuda.is_available() else "cpu"
    x = {
        k: None if v is None else v.to(device)
        for k, v in make(seed=7, bias=bias, dtype=torch.float32).items()
    }
    loss, grads = chunked(x, chunk_size=3, impl=impl)
    x = {k: None if v is None else v.cpu() for k, v in x.items()}
    assert_within(x, (loss.cpu(), [g.cpu() for g in grads]), full_logits(x), UNIT[torch.float32])


def _chunk_inputs(seed, rows=6, masked=False):
    """One chunk's float32 arguments as the chunk loop sees them, a third of the rows ignored;
    ``masked``: two teacher classes at -inf (p = 0, an infinite margin: the fused form's second pass)."""
    x = make(seed=seed, lead=(rows,), dtype=torch.float32)
    if masked:
        x["b_t"][[3, 7]] = -math.inf
        x["y"][(x["y"] == 3) | (x["y"] == 7)] = 5  # a label's teacher logit stays finite
    w, b = x["w"].detach(), x["b"].detach()
    inputs = linear._Inputs(x["h"].detach(), w, b, x["h_t"], x["w_t"], x["b_t"], x["y"])
    kept = (x["y"] != IGNORE).unsqueeze(-1)
    return inputs, torch.where(kept, inputs.h, 0.0), torch.where(kept, inputs.h_t, 0.0)


@pytest.mark.parametrize("masked", [False, True], ids=["finite", "masked classes"])
@pytest.mark.parametrize(
    "options", OPTION_SETS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults"
)
def test_a_chunk_in_place_has_the_fused_forms_numbers_bit_for_bit(options, masked):
    # in four buffers, the logits overwritten, the same operations as klloss._fused.FusedLoss (reached
    # through klloss.loss._loss and autograd): the same loss and gradient, every bit
    get = lambda name, default: options.get(name, default)  # noqa: E731
    opts = klloss.Options(
        get("margin_scale", 1.5),
        8.0,
        "sum",
        IGNORE,
        get("temperature", 1.0),
        get("normalize", True),
        get("clamp", False),
    )  # the chunk loop's options: reduction 'sum'
    x, h, h_t = _chunk_inputs(seed=16, masked=masked)
    work = [torch.full((8, 20), math.nan) for _ in range(4)]  # more rows than the chunk, as the last chunk
    got = linear._chunk(x, h, h_t, x.y, opts, "auto", True, work)
    want = linear._chunk(x, h, h_t, x.y, opts, "fused", True, None)
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])
    assert torch.isfinite(got[0])
    assert got[1].abs().max() > 1e-3
    s, z = linear._logits(h, x.w, x.b), linear._logits(h_t, x.w_t, x.b_t)
    once = _fused.rows_in_place(s, z, x.y, opts, True, [torch.empty_like(s), torch.empty_like(s)], False)
    assert math.isfinite(once[0]) != masked  # with masked classes, the first pass is not finite


def test_masked_teacher_classes_give_the_loss_of_the_whole_logits():
    # a teacher bias of -inf on two classes (a masked vocabulary): p = 0 there, and nothing added
    x = make(seed=17)
    x["b_t"][[3, 7]] = -math.inf
    x["y"][(x["y"] == 3) | (x["y"] == 7)] = 5
    (loss, grads), (want, want_grads) = chunked(x, chunk_size=4), full_logits(x)
    assert torch.isfinite(loss)
    assert abs(float(loss - want)) <= 1e-12 * abs(float(want))
    for g, r in zip(grads, want_grads, strict=True):
        assert (g - r).abs().max() <= 1e-12 * r.abs().max()


def _allocations(run):
    """The sizes in bytes of every CPU allocation made while ``run()`` ran (the profiler's record)."""
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True
    ) as prof:
        run()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.json"
        prof.export_chrome_trace(str(path))
        events = json.loads(path.read_text(encoding="utf-8"))["traceEvents"]
    return [e["args"]["Bytes"] for e in events if e.get("name") == "[memory]" and e["args"]["Bytes"] > 0]


def test_the_chunks_reuse_four_buffers_made_once_per_call():
    # 11 chunks of 6 rows, V = 500: on the CPU, four (6, V) float32 buffers for the whole call and
    # nothing else of that size, forward and backward; the readable form's chunks allocate many
    n, v, c = 64, 500, 6
    x = make(seed=18, lead=(n,), hidden=8, teacher_hidden=5, vocab=v, dtype=torch.float32)

    def step(impl):
        chunked(x, chunk_size=c, impl=impl)

    big = lambda sizes: [s for s in sizes if s >= c * v * 4]  # noqa: E731  (a chunk's logits, or more)
    assert sorted(big(_allocations(lambda: step("auto")))) == [c * v * 4] * 4 + [v * 8 * 4]  # and dL/dW
    assert len(big(_allocations(lambda: step("reference")))) > 4 * n // c


@pytest.mark.parametrize("chunk_size", [1, 4, 15, 1000])
def test_any_chunk_size_gives_the_same_loss(chunk_size):
    x = make(seed=3)
    assert_within(x, chunked(x, chunk_size=chunk_size), full_logits(x), UNIT[F64])


def test_no_chunk_holds_more_rows_than_asked(monkeypatch):
    seen = []
    inner = linear._chunk_loss

    def spy(s, z, *rest):
        seen.append((s.shape, z.shape, s.dtype))
        return inner(s, z, *rest)

    monkeypatch.setattr(linear, "_chunk_loss", spy)
    x = make(seed=4, dtype=torch.bfloat16)
    chunked(x, chunk_size=4)
    assert [shape[0] for shape, _, _ in seen] == [4, 4, 4, 3]  # 15 rows
    assert all(z[1] == 20 and dtype == torch.float32 for _, z, dtype in seen)  # float32 logits, not bfloat16


def test_bfloat16_inputs_against_float64_from_the_same_rounded_inputs():
    x = make(seed=5, lead=(4, 6), hidden=16, vocab=64, dtype=torch.bfloat16)
    got = chunked(x, chunk_size=5)
    assert all(g.dtype == torch.bfloat16 for g in got[1])
    assert got[0].dtype == torch.float32
    assert_within(x, got, full_logits(x), UNIT[torch.bfloat16])


def test_logits_rounded_to_bfloat16_would_break_the_bound():
    # what the bound is for: logits rounded to bfloat16 before the loss (Liger-Kernel issue 1432)
    x = make(seed=5, lead=(4, 6), hidden=16, vocab=64, dtype=torch.bfloat16)
    want = full_logits(x)
    h, w, b = (t.detach().to(F64).requires_grad_(True) for t in (x["h"], x["w"], x["b"]))
    s = (h @ w.T + b).to(torch.bfloat16).to(F64)  # s rounded to bfloat16
    z = (x["h_t"].to(F64) @ x["w_t"].to(F64).T + x["b_t"].to(F64)).to(torch.bfloat16).to(F64)
    rounded = klloss.margin_kd_loss(s, z, x["y"], impl="reference")
    grads = [g.to(torch.bfloat16) for g in torch.autograd.grad(rounded, (h, w, b))]
    with pytest.raises(AssertionError):
        assert_within(x, (rounded.detach(), grads), want, UNIT[torch.bfloat16])


def test_ignored_rows_count_for_nothing_whatever_they_hold():
    x = make(seed=6)
    ignored = x["y"] == IGNORE
    want = full_logits(x)
    with torch.no_grad():
        x["h"][ignored] = math.nan  # padding positions may hold anything
    x["h_t"][ignored] = math.inf
    loss, (g_h, g_w, g_b) = chunked(x, chunk_size=4)
    assert torch.all(g_h[ignored] == 0)
    assert_within(make(seed=6), (loss, (g_h, g_w, g_b)), want, UNIT[F64])


@pytest.mark.parametrize("reduction", ["batchmean", "sum"])
def test_every_row_ignored_gives_zero_and_zero_gradients(reduction):
    x = make(seed=8)
    x["y"].fill_(IGNORE)
    loss, grads = chunked(x, chunk_size=4, reduction=reduction)
    assert loss == 0
    assert all(torch.all(g == 0) for g in grads)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_two_halves_with_the_global_count_add_up_to_one_call(as_tensor):
    x = make(seed=9, lead=(16,))
    kept = int((x["y"] != IGNORE).sum())
    count = torch.tensor(kept) if as_tensor else kept
    one_loss, one_grads = chunked(x, chunk_size=3)
    halves = []
    for rows in (slice(0, 7), slice(7, 16)):
        part = {**x, "h": x["h"][rows], "h_t": x["h_t"][rows], "y": x["y"][rows]}
        halves.append(chunked(part, chunk_size=3, num_items_in_batch=count))
    assert abs(float(halves[0][0] + halves[1][0] - one_loss)) <= 2 * bounds(x, UNIT[F64])["loss"]
    grad_h = torch.cat([halves[0][1][0], halves[1][1][0]])
    assert torch.allclose(grad_h, one_grads[0], rtol=0, atol=1e-13)  # each row's own: the same sums
    for i, name in ((1, "w"), (2, "b")):
        added = halves[0][1][i] + halves[1][1][i]
        assert torch.all((added - one_grads[i]).abs() <= 2 * bounds(x, UNIT[F64])[name])


def test_a_different_vocabulary_is_refused_and_truncate_uses_the_teachers_first_classes():
    x = make(seed=10, teacher_vocab=27)  # V_t = 27 > V = 20
    with pytest.raises(ValueError, match=r"teacher_weight has 27 classes \(rows\) and student_weight 20"):
        chunked(x)
    loss, grads = chunked(x, vocab="truncate", chunk_size=4)
    sliced = {**x, "w_t": x["w_t"][:20], "b_t": x["b_t"][:20]}  # z = the teacher's first 20 logits
    assert_within(sliced, (loss, grads), full_logits(sliced), UNIT[F64])
    fewer = make(seed=10, teacher_vocab=15)  # V_t < V: nothing to cut, and nothing is padded
    with pytest.raises(ValueError, match="fewer classes than the student"):
        chunked(fewer, vocab="truncate")
    with pytest.raises(ValueError, match="vocab must be one of"):
        chunked(x, vocab="pad")


def test_swapped_or_repeated_arguments_are_refused():
    x = make(seed=11)
    student = {**x, "h": x["h"].detach(), "w": x["w"].detach(), "b": x["b"].detach()}
    swapped = {**student, "h_t": x["h_t"].clone().requires_grad_(True)}
    with pytest.raises(ValueError, match="teacher_hidden requires grad but student_hidden does not"):
        klloss.margin_kd_loss_from_hidden(*(swapped[k] for k in ("h", "w", "h_t", "w_t", "y")))
    with pytest.raises(ValueError, match="teacher_hidden is the same tensor as student_hidden"):
        klloss.margin_kd_loss_from_hidden(x["h"], x["w"], x["h"], x["w"], x["y"])
    # a frozen body, a trained head: the student's weight requires grad, so a teacher that does is no mistake
    head_only = klloss.margin_kd_loss_from_hidden(x["h"].detach(), x["w"], swapped["h_t"], x["w_t"], x["y"])
    assert head_only.requires_grad
    # one head both share (self-distillation): allowed, the teacher's side detached
    h_t = torch.randn(3, 5, 8, dtype=F64)
    shared = klloss.margin_kd_loss_from_hidden(x["h"], x["w"], h_t, x["w"], x["y"])
    (g_w,) = torch.autograd.grad(shared, x["w"])
    s, z = x["h"] @ x["w"].T, (h_t @ x["w"].T).detach()
    (want,) = torch.autograd.grad(klloss.margin_kd_loss(s, z, x["y"]), x["w"])
    assert torch.allclose(g_w, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"w": torch.zeros(20, 7, dtype=F64)}, r"student_weight must have shape \(V, 8\)"),
        ({"b": torch.zeros(21, dtype=F64)}, r"student_bias must have shape \(20,\)"),
        ({"h_t": torch.zeros(3, 4, 6, dtype=F64)}, "teacher_hidden must have the leading shape"),
        ({"w_t": torch.zeros(20, 5, dtype=F64)}, r"teacher_weight must have shape \(V, 6\)"),
        ({"b_t": torch.zeros(19, dtype=F64)}, r"teacher_bias must have shape \(20,\)"),
        ({"y": torch.zeros(3, 4, dtype=torch.long)}, r"labels must have shape student_hidden.shape\[:-1\]"),
        ({"y": torch.full((3, 5), 20)}, r"label values must lie in \[0, C\) = \[0, 20\)"),
    ],
)
def test_bad_arguments_are_named(change, message):
    x = {**make(seed=12), **change}
    with pytest.raises(ValueError, match=message):
        chunked(x)


def test_options_that_cannot_apply_are_refused():
    x = make(seed=13)
    with pytest.raises(ValueError, match="reduction must be 'batchmean' or 'sum' here"):
        chunked(x, reduction="none")
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        chunked(x, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be a positive integer"):
        chunked(x, chunk_size=2.0)
    with pytest.raises(ValueError, match="num_items_in_batch divides the sum"):
        chunked(x, reduction="sum", num_items_in_batch=4)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"margin_scale": 0.0}, r"^margin_scale must be > 0, got 0.0$"),
        ({"margin_scale": math.nan}, r"^margin_scale must be a real number > 0, got nan$"),
        ({"margin_scale": "1.5"}, r"^margin_scale must be a real number, got str$"),
        ({"temperature": 0.0}, r"^temperature must be a finite number > 0, got 0.0$"),
    ],
)
def test_a_bad_option_is_named_as_the_caller_wrote_it(options, message):
    # the options are checked by klloss.Options, whose field is the article's beta
    x = make(seed=13)
    with pytest.raises((TypeError, ValueError), match=message):
        chunked(x, **options)
    with pytest.raises((TypeError, ValueError), match=message):
        klloss.MarginKDLossFromHidden(**options)


def test_the_module_gives_the_functions_numbers():
    x = make(seed=14)
    module = klloss.MarginKDLossFromHidden(chunk_size=4, temperature=2.0)
    assert "chunk_size=4" in repr(module)
    assert "temperature=2.0" in repr(module)
    got = module(x["h"], x["w"], x["h_t"], x["w_t"], x["y"], student_bias=x["b"], teacher_bias=x["b_t"])
    assert torch.equal(got, chunked(x, chunk_size=4, temperature=2.0)[0])
    with pytest.raises(ValueError, match="reduction must be 'batchmean' or 'sum'"):
        klloss.MarginKDLossFromHidden(reduction="none")


def test_under_no_grad_no_gradient_is_formed(monkeypatch):
    x = make(seed=15)
    asked = []
    inner = linear._chunk_loss
    monkeypatch.setattr(linear, "_chunk_loss", lambda *a: asked.append(a[5]) or inner(*a))  # need_grad
    with torch.no_grad():
        loss = klloss.margin_kd_loss_from_hidden(x["h"], x["w"], x["h_t"], x["w_t"], x["y"], chunk_size=4)
    assert asked == [False] * 4
    assert not loss.requires_grad
    assert torch.allclose(loss, full_logits({**x, "b": None, "b_t": None})[0], rtol=1e-12)


def test_a_retained_graph_gives_the_same_gradients_again_whatever_was_done_to_the_first():
    # the first backward hands out the gradients formed in the forward (scaled in place, no copy);
    # a later one forms them again from the saved inputs (issue 25's defect 7, here by design)
    gen = torch.Generator().manual_seed(7)
    h = torch.randn(3, 5, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(20, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    h_t = torch.randn(3, 5, 6, generator=gen, dtype=torch.float64)
    w_t = torch.randn(20, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 20, (3, 5), generator=gen)
    value = klloss.margin_kd_loss_from_hidden(h, w, h_t, w_t, y, chunk_size=4)
    _, first_w = torch.autograd.grad(value, (h, w), retain_graph=True)
    kept = first_w.clone()
    first_w.mul_(100.0).add_(1.0)  # the caller owns what grad returned
    for _ in range(3):
        value.backward(retain_graph=True)
    torch.testing.assert_close(w.grad, 3 * kept, rtol=1e-14, atol=0)
    (again,) = torch.autograd.grad(2.5 * value, w)
    torch.testing.assert_close(again, 2.5 * kept, rtol=1e-14, atol=0)
    assert kept.abs().max() > 1e-3
