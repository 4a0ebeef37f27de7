r"""margin_kd_loss_topk and topk_store: the loss from a stored top-k teacher, against the full loss.

References: :func:`klloss.margin_kd_loss` on the teacher's whole logits (the readable form, float64,
autograd), and the quantities of the module docstring of :mod:`klloss.topk` computed here from
those logits (S, the tail R, :math:`p_B`, :math:`q_B`, the true tail weights). Checked:

* with K = V, or a teacher whose mass is all in S, both modes give the full loss and its
  gradient;
* ``"renormalize"`` is the full loss against the teacher cut to S (logits :math:`-\infty` off S,
  the margins the true ones), at every temperature;
* ``"bucket"``'s error is the identity of the module docstring, its gradient on S is short by
  :math:`f q_c (W - W^b) \in [0, f q_c \Delta]`, and its value lies in the stated interval, for
  random teachers (hypothesis).

The error model of a comparison in float64: both sides compute the same terms in another order;
each term :math:`\tilde w_c p_c d_c` rounds as ``tests/helpers.py::float32_bound`` states (8u per
factor, relative to the weight's parts and the log-probabilities), and the sums by
:math:`\gamma_{NV+1}`; a gradient entry :math:`(q_c W - \tilde w_c p_c) f/N'` by
:math:`8u[(q_c A + (|\tilde w_c| + |k| + |m_c|/\beta) p_c)(2 + |\log p_c| + |\log q_c| + \log V) +
V q_c A]`, :math:`A = \sum_c |\tilde w_c| p_c`. The bucket's :math:`p_B = 1 - \sum_S p_c`
is off by up to :math:`\delta = 4(K+1)u` however small it is (a difference of numbers near 1):
its term by :math:`|\tilde w_B| \delta (2 + |\log\delta| + |\log q_B|)`, the gradient on S by
:math:`q_c |\tilde w_B| \delta`, on the tail (where the bucket's share
:math:`\tilde w_B p_B q_c / q_B` comes in) by :math:`q_c |\tilde w_B| (\delta (1 + 1/q_B) + 8u
(2 + |\log q_c|) p_B/q_B)`.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import klloss
from klloss import reference

IGNORE = -100
F64 = torch.float64
U = 2.0**-53
"""float64's unit roundoff."""
NEG_INF = float("-inf")


def make(seed, n=6, v=12, scale=3.0, student_scale=2.0, ignored=True):
    """Student logits (float64), teacher logits, labels with every third row ignored."""
    gen = torch.Generator().manual_seed(seed)
    s = student_scale * torch.randn(n, v, generator=gen, dtype=F64)
    z = scale * torch.randn(n, v, generator=gen, dtype=F64)
    y = torch.randint(0, v, (n,), generator=gen)
    if ignored:
        y[::3] = IGNORE
    return s, z, y


def options_of(kw):
    return dict(
        {"margin_scale": 1.5, "offset": 8.0, "temperature": 1.0, "normalize": True, "clamp": False}, **kw
    )


def value_and_grad(fn, s, *args, **kw):
    """fn(s, ...) and its gradient in s."""
    s = s.detach().clone().requires_grad_(True)
    out = fn(s, *args, **kw)
    (g,) = torch.autograd.grad(out.sum(), s)
    return out.detach(), g


def full(s, z, y, **kw):
    """The reference: margin_kd_loss of the whole teacher, readable form, float64."""
    return value_and_grad(klloss.margin_kd_loss, s, z, y, impl="reference", **kw)


def topk(s, store, y, tail, **kw):
    return value_and_grad(klloss.margin_kd_loss_topk, s, *store, y, tail=tail, **kw)


def rounding(s, z, y, **kw):
    """The error model of the module docstring: (bound on the reduced value, on each gradient entry)."""
    o = options_of(kw)
    t, beta, k = o["temperature"], o["margin_scale"], o["offset"]
    f = t * t / (k if o["normalize"] else 1.0)
    kept = y != IGNORE
    y0 = torch.where(kept, y, 0)
    log_p, log_q = F.log_softmax(z / t, -1), F.log_softmax(s / t, -1)
    p, q = log_p.exp(), log_q.exp()
    m = torch.where(torch.isfinite(z), z.gather(-1, y0[:, None]) - z, 0.0)  # z_y - z (0 off the support)
    w = m / beta + k if beta != math.inf else torch.full_like(m, k)
    w = w.clamp(min=0) if o["clamp"] else w
    d = torch.where(p > 0, log_p - log_q, 0.0)
    size = w.abs() + abs(k) + m.abs() / beta
    logs = 2 + torch.where(p > 0, log_p.abs(), 0.0) + log_q.abs() + math.log(z.shape[-1])
    terms = torch.where(
        p > 0, 8 * U * size * p * (1 + d.abs()) * logs + (w * p * d).abs() * (z.numel() + 1) * U, 0.0
    )
    count = {"sum": 1, "none": 1}.get(kw.get("reduction"), max(int(kept.sum()), 1))
    value = 2 * f * float(torch.where(kept[:, None], terms, 0.0).sum()) / count
    big_a = torch.where(p > 0, w.abs() * p, 0.0).sum(-1, keepdim=True)
    grad = (
        f
        / (t * count)
        * 8
        * U
        * ((q * big_a + torch.where(p > 0, size * p, 0.0)) * logs + z.shape[-1] * q * big_a)
    )
    return value, 2 * torch.where(kept[:, None], grad, 0.0)


def bucket_rounding(x, k, reduction="batchmean"):
    """What the bucket's p_B adds to :func:`rounding` (module docstring): (value, gradient entries)."""
    delta = 4 * (k + 1) * U
    count = 1 if reduction in ("sum", "none") else x["p_b"].shape[0]  # rows are all kept where this is used
    size = x["f"] * x["w_b"].abs()  # f |w~_B|
    value = size * delta * (2 + abs(math.log(delta)) + x["q_b"].log().abs())
    on_tail = delta * (1 + 1 / x["q_b"]) + 8 * U * (2 + x["log_q"].abs()) * x["p_b"] / x["q_b"]
    grad = size * x["q"] * torch.where(x["in_s"], delta, on_tail)
    has = x["n"] > 0  # no tail, no bucket
    value, grad = torch.where(has, value, 0.0), torch.where(has, grad, 0.0)
    return float(value.sum()) / count, grad / count


def assert_close(got, want, bound):
    (value, grad), (ref, ref_grad), (value_bound, grad_bound) = got, want, bound
    assert float((value - ref).abs().max()) <= value_bound, (value, ref, value_bound)
    assert torch.all((grad - ref_grad).abs() <= grad_bound), float(
        ((grad - ref_grad).abs() - grad_bound).max()
    )


OPTION_SETS = [
    {},
    {"clamp": True, "margin_scale": 0.5},
    {"normalize": False, "offset": 2.0},
    {"margin_scale": math.inf},
    {"reduction": "sum"},
    {"reduction": "none"},
]
IDS = lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults"  # noqa: E731


@pytest.mark.parametrize(
    ("tail", "options"),
    [(tail, o) for tail in ("renormalize", "bucket") for o in OPTION_SETS]
    + [("renormalize", {"temperature": 2.0})],  # the bucket is defined at temperature 1 only
    ids=lambda x: x if isinstance(x, str) else IDS(x),
)
def test_with_k_equal_to_v_both_modes_are_the_full_loss(tail, options):
    s, z, y = make(seed=1)
    store = klloss.topk_store(z, y, k=z.shape[-1], chunk_size=4)
    assert_close(topk(s, store, y, tail, **options), full(s, z, y, **options), rounding(s, z, y, **options))


def supported(seed, support, n=6, v=12):
    """A teacher whose logits are -inf off ``support`` classes per row, the label among them (no row
    ignored: ignored rows are tested on their own)."""
    s, z, _ = make(seed, n, v, ignored=False)
    gen = torch.Generator().manual_seed(seed + 1)
    keep = torch.rand(n, v, generator=gen).argsort(-1)[:, :support]  # the support: random classes
    z = torch.full_like(z, NEG_INF).scatter(-1, keep, z.gather(-1, keep))
    return s, z, keep[:, 0].clone()


@pytest.mark.parametrize(("support", "k"), [(4, 4), (4, 6), (1, 1), (1, 3)])
@pytest.mark.parametrize("tail", ["renormalize", "bucket"])
@pytest.mark.parametrize("options", OPTION_SETS[:4], ids=IDS)
def test_a_teacher_with_all_its_mass_in_the_top_k_gives_the_full_loss(tail, support, k, options):
    s, z, y = supported(seed=support + k, support=support)
    store = klloss.topk_store(z, y, k=k)
    value_bound, grad_bound = rounding(s, z, y, **options)
    if tail == "bucket":  # p_B is rounding, not 0, where the K classes hold all the mass
        extra = bucket_rounding(
            tail_quantities(s, z, y, k, **options), k, options.get("reduction", "batchmean")
        )
        value_bound, grad_bound = value_bound + extra[0], grad_bound + extra[1]
    assert_close(topk(s, store, y, tail, **options), full(s, z, y, **options), (value_bound, grad_bound))


@pytest.mark.parametrize(
    "options", [*OPTION_SETS, {"temperature": 2.0}, {"temperature": 0.5, "clamp": True}], ids=IDS
)
@pytest.mark.parametrize("k", [1, 3, 11])
def test_renormalize_is_the_full_loss_against_the_teacher_cut_to_the_top_k_and_the_label(k, options):
    s, z, y = make(seed=k)
    store = klloss.topk_store(z, y, k=k)
    in_s = torch.zeros_like(z, dtype=torch.bool).scatter(-1, store.indices, True)
    in_s.scatter_(-1, torch.where(y == IGNORE, 0, y)[:, None], True)  # S = top K and the label
    cut = torch.where(in_s, z, NEG_INF)  # p~ = softmax of the teacher's logits on S
    o = options_of(options)
    opts = klloss.Options(
        o["margin_scale"],
        o["offset"],
        options.get("reduction", "batchmean"),
        IGNORE,
        o["temperature"],
        o["normalize"],
        o["clamp"],
    )
    want = value_and_grad(lambda x: reference.loss(x, cut, z, y, opts), s)  # margins from the whole z
    assert_close(topk(s, store, y, "renormalize", **options), want, rounding(s, cut, y, **options))


def tail_quantities(s, z, y, k, **kw):
    """From the whole teacher, per row: what the module docstring of klloss.topk names (T = 1)."""
    o = options_of(kw)
    beta, offset = o["margin_scale"], o["offset"]
    store = klloss.topk_store(z, y, k=k)
    y0 = torch.where(y == IGNORE, 0, y)
    in_s = (
        torch.zeros_like(z, dtype=torch.bool).scatter(-1, store.indices, True).scatter(-1, y0[:, None], True)
    )
    tail = ~in_s  # R
    log_p, log_q = F.log_softmax(z, -1), F.log_softmax(s, -1)
    p, q = log_p.exp(), log_q.exp()
    weigh = lambda m: m / beta + offset if beta != math.inf else torch.full_like(m, offset)  # noqa: E731
    clamp = (lambda w: w.clamp(min=0)) if o["clamp"] else (lambda w: w)
    w = clamp(weigh(z.gather(-1, y0[:, None]) - z))  # the true weights, every class
    low = store.logprobs.min(-1, keepdim=True).values  # l_(K)
    w_b = clamp(weigh(log_p.gather(-1, y0[:, None]) - low))  # w~_B
    p_b, q_b = (p * tail).sum(-1, keepdim=True), (q * tail).sum(-1, keepdim=True)
    return {
        "store": store, "in_s": in_s, "tail": tail, "p": p, "q": q, "log_p": log_p, "log_q": log_q,
        "w": w, "w_b": w_b, "low": low, "p_b": p_b, "q_b": q_b, "n": tail.sum(-1, keepdim=True),
        "f": 1 / offset if o["normalize"] else 1.0, "beta": beta,
    }  # fmt: skip


def error_identity(x):
    """Per row: f [w~_B p_B KL(u||v) + sum_R (w~_c - w~_B) p_c log(p_c / q_c)], and the size of its terms."""
    tail, p, log_p, log_q, p_b, q_b = (x[k] for k in ("tail", "p", "log_p", "log_q", "p_b", "q_b"))
    live = tail & (p > 0)
    log_u = torch.where(live, log_p - p_b.log(), 0.0)  # u = p_R / p_B
    log_v = torch.where(live, log_q - q_b.log(), 0.0)  # v = q_R / q_B
    kl = torch.where(live, log_u.exp() * (log_u - log_v), 0.0).sum(-1, keepdim=True)  # KL(u||v)
    extra = torch.where(live, (x["w"] - x["w_b"]) * p * (log_p - log_q), 0.0)
    rhs = x["f"] * (x["w_b"] * p_b * kl + extra.sum(-1, keepdim=True))
    size = x["f"] * (x["w_b"].abs() * p_b * kl.abs() + extra.abs().sum(-1, keepdim=True))
    return rhs.squeeze(-1), size.squeeze(-1)


def interval(x):
    """Per row, the interval of the module docstring that holds L_i - L^b_i, and Delta."""
    tail, log_q, p_b, q_b, low, w_b, beta = (
        x[k] for k in ("tail", "log_q", "p_b", "q_b", "low", "w_b", "beta")
    )
    has = (p_b > 0) & (x["n"] > 0)
    p_b = torch.where(has, p_b, 1.0)  # rows without a tail: 0, below
    big_l = (x["n"] * low.exp() / p_b).log()  # Lambda = log(n p_(K) / p_B)
    delta = p_b * big_l / beta  # Delta
    lam = -torch.where(tail, log_q, math.inf).min(-1, keepdim=True).values  # lambda = -min_R log q
    mu = -torch.where(tail, log_q, NEG_INF).max(-1, keepdim=True).values  # mu = -max_R log q
    kappa = (low - p_b.log()).clamp(max=0) + q_b.log() + lam  # bounds KL(u||v)
    lo = (
        w_b.clamp(max=0) * p_b * kappa
        + (low + mu).clamp(max=0) * delta
        - p_b / beta * (big_l.square().clamp(min=4) + 1)
    )
    hi = w_b.clamp(min=0) * p_b * kappa + (low + lam).clamp(min=0) * delta
    zero = torch.zeros_like(lo)
    lo, hi, delta = (torch.where(has, a, zero) for a in (lo, hi, delta))
    return (x["f"] * lo).squeeze(-1), (x["f"] * hi).squeeze(-1), delta


@st.composite
def teachers(draw):
    """A student and a teacher of random sizes and spreads, K, and options (T = 1)."""
    n, v = draw(st.integers(1, 4)), draw(st.integers(2, 30))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    spread_t, spread_s = (
        draw(st.sampled_from([0.1, 1.0, 3.0, 10.0])),
        draw(st.sampled_from([0.1, 1.0, 3.0, 10.0])),
    )
    s = spread_s * torch.randn(n, v, generator=gen, dtype=F64)
    z = spread_t * torch.randn(n, v, generator=gen, dtype=F64)
    y = torch.randint(0, v, (n,), generator=gen)
    options = {
        "margin_scale": draw(st.sampled_from([0.25, 1.0, 1.5, 10.0, math.inf])),
        "offset": draw(st.sampled_from([8.0, 1.0, 0.5])),
        "clamp": draw(st.booleans()),
        "normalize": draw(st.booleans()),
    }
    return s, z, y, draw(st.integers(1, v)), options


@given(case=teachers())
def test_the_bucket_error_is_the_identity_and_lies_in_the_interval(case):
    s, z, y, k, options = case
    x = tail_quantities(s, z, y, k, **options)
    got = topk(s, x["store"], y, "bucket", reduction="none", **options)[0]
    ref = full(s, z, y, reduction="none", **options)[0]
    rhs, size = error_identity(x)
    tol = rounding(s, z, y, reduction="none", **options)[0] + bucket_rounding(x, k, "none")[0]
    tol = tol + 16 * z.shape[-1] * U * size  # and the rounding of the right-hand side, computed here
    assert torch.all((ref - got - rhs).abs() <= tol)  # L - L^b = f [w~_B p_B KL(u||v) + ...]
    lo, hi, _ = interval(x)
    assert torch.all(lo - tol <= ref - got)
    assert torch.all(ref - got <= hi + tol)


@given(case=teachers())
def test_the_bucket_gradient_on_the_kept_classes_is_short_by_f_q_times_the_missing_weight(case):
    s, z, y, k, options = case
    x = tail_quantities(s, z, y, k, **options)
    grad = topk(s, x["store"], y, "bucket", reduction="sum", **options)[1]
    ref = full(s, z, y, reduction="sum", **options)[1]
    missing = torch.where(x["tail"], (x["w"] - x["w_b"]) * x["p"], 0.0).sum(-1, keepdim=True)  # W - W^b
    _, _, delta = interval(x)
    slack = (
        64 * U * torch.where(x["tail"], (x["w"].abs() + x["w_b"].abs()) * x["p"], 0.0).sum(-1, keepdim=True)
    )
    assert torch.all(missing >= -slack)  # 0 <= W - W^b <= Delta, up to the rounding of this sum
    assert torch.all(missing <= delta * (1 + 64 * U) + slack)
    tol = 2 * rounding(s, z, y, reduction="sum", **options)[1] + bucket_rounding(x, k, "sum")[1]
    short = x["f"] * x["q"] * missing  # f q_c (W - W^b)
    assert torch.all(torch.where(x["in_s"], (ref - grad - short).abs() <= tol, True))
    tail_sum = torch.where(x["tail"], ref - grad, 0.0).sum(-1)  # over R: -f Q_S (W - W^b)
    q_s = torch.where(x["in_s"], x["q"], 0.0).sum(-1, keepdim=True)
    assert torch.allclose(tail_sum, -(x["f"] * q_s * missing).squeeze(-1), rtol=0, atol=float(tol.sum()))


def test_the_bucket_is_exact_when_the_tail_is_flat_at_the_kth_logit_and_the_student_flat_on_it():
    # every tail class ties with the K-th (w_c = w_B) and the student's tail is uniform like the
    # teacher's (u = v): both terms of the error vanish; the interval holds 0
    s, z, y = make(seed=21, ignored=False)
    z[:, 4:] = z[:, 3:4]  # classes 3.. tie: the top K = 4 holds one of them
    z[:, :3] = z[:, 3:4] + 1 + 0.3 * z[:, :3].abs()  # three classes above them; the tail keeps mass
    s[:, 4:] = s[:, 3:4]
    y = torch.randint(0, 3, y.shape, generator=torch.Generator().manual_seed(0))
    x = tail_quantities(s, z, y, 4)
    got = topk(s, x["store"], y, "bucket")
    want = full(s, z, y)
    value_bound, grad_bound = rounding(s, z, y)
    extra = bucket_rounding(x, 4)
    assert_close(got, want, (value_bound + extra[0], grad_bound + extra[1]))
    # the case is the one named: the tail's weights are w~_B (up to rounding), p_B > 0, u = v
    assert torch.all(x["p_b"] > 0.1)
    assert torch.allclose(
        torch.where(x["tail"], x["w"], x["w_b"]), x["w_b"].expand_as(x["w"]), rtol=1e-14, atol=0
    )
    u, v = (torch.where(x["tail"], x[a] / x[b], 0.0) for a, b in (("p", "p_b"), ("q", "q_b")))
    assert torch.allclose(u, v, rtol=1e-13, atol=0)


def test_the_interval_is_narrow_enough_to_tell_the_bucket_from_renormalizing():
    # the interval is not vacuous: renormalize's error (p_B dropped, not bucketed) leaves it
    s, z, y = make(seed=30, n=16, v=50, ignored=False)
    x = tail_quantities(s, z, y, 10)
    ref = full(s, z, y, reduction="none")[0]
    lo, hi, _ = interval(x)
    bucket = ref - topk(s, x["store"], y, "bucket", reduction="none")[0]
    renormalized = ref - topk(s, x["store"], y, "renormalize", reduction="none")[0]
    assert torch.all((lo <= bucket) & (bucket <= hi))
    assert ((renormalized < lo) | (renormalized > hi)).float().mean() > 0.5


def test_the_store_is_the_teachers_top_k_in_any_chunking_and_leading_shape():
    gen = torch.Generator().manual_seed(31)
    z = torch.randn(3, 5, 40, generator=gen, dtype=torch.bfloat16)  # (B, T, V)
    y = torch.randint(0, 40, (3, 5), generator=gen)
    y[2, 3:] = IGNORE
    store = klloss.topk_store(z, y, k=6, chunk_size=4)
    log_p = F.log_softmax(z.float(), -1)
    top = log_p.topk(6, -1)
    assert store.indices.shape == (3, 5, 6)
    assert store.logprobs.dtype == torch.float32  # a bfloat16 teacher's log-probabilities in float32
    assert torch.equal(store.logprobs, top.values)
    assert torch.equal(log_p.gather(-1, store.indices), store.logprobs)  # ties may swap indices, not values
    kept = y != IGNORE
    assert torch.equal(store.label_logprob[kept], log_p[kept].gather(-1, y[kept][:, None]).squeeze(-1))
    assert torch.all(store.label_logprob[~kept].isnan())
    again = klloss.topk_store(z, y, k=6, chunk_size=1000)
    assert all(torch.equal(a, b) for a, b in zip(store[:2], again[:2], strict=True))
    assert torch.allclose(store.label_logprob, again.label_logprob, rtol=0, atol=0, equal_nan=True)


def test_ignored_rows_count_for_nothing_whatever_the_store_holds():
    s, z, y = make(seed=32)
    store = klloss.topk_store(z, y, k=4)
    ignored = y == IGNORE
    want = {tail: topk(s, store, y, tail) for tail in ("renormalize", "bucket")}
    noisy_s = s.clone()
    noisy_s[ignored] = math.nan
    logprobs, label_logprob = store.logprobs.clone(), store.label_logprob.clone()
    logprobs[ignored], label_logprob[ignored] = math.inf, math.nan
    for tail, (value, grad) in want.items():
        got_value, got_grad = topk(noisy_s, (store.indices, logprobs, label_logprob), y, tail)
        assert torch.equal(got_value, value)
        assert torch.all(got_grad[ignored] == 0)
        assert torch.equal(got_grad, grad)


@pytest.mark.parametrize("where", ["topk_logprobs", "label_logprob", "student_logits"])
@pytest.mark.parametrize("tail", ["renormalize", "bucket"])
def test_an_undefined_input_in_a_kept_row_gives_nan(tail, where):
    s, z, y = make(seed=35, ignored=False)
    store = klloss.topk_store(z, y, k=4)
    s, logprobs, label_logprob = s.clone(), store.logprobs.clone(), store.label_logprob.clone()
    {"topk_logprobs": logprobs[2], "label_logprob": label_logprob[2:3], "student_logits": s[2]}[where][0] = (
        math.nan
    )
    rows = klloss.margin_kd_loss_topk(
        s, store.indices, logprobs, label_logprob, y, tail=tail, reduction="none"
    )
    assert rows[2].isnan()
    assert torch.all(torch.isfinite(rows[torch.arange(6) != 2]))


@pytest.mark.parametrize("tail", ["renormalize", "bucket"])
def test_reductions_and_num_items_in_batch(tail):
    s, z, y = make(seed=33)
    store = klloss.topk_store(z, y, k=5)
    rows = topk(s, store, y, tail, reduction="none")[0]
    kept = int((y != IGNORE).sum())
    assert torch.allclose(topk(s, store, y, tail, reduction="sum")[0], rows.sum(), rtol=1e-15, atol=0)
    assert torch.allclose(topk(s, store, y, tail)[0], rows.sum() / kept, rtol=1e-15, atol=0)
    halves = [
        topk(s[r], tuple(a[r] for a in store), y[r], tail, num_items_in_batch=torch.tensor(kept))
        for r in (slice(0, 2), slice(2, 6))
    ]
    one = topk(s, store, y, tail)
    assert torch.allclose(halves[0][0] + halves[1][0], one[0], rtol=1e-14, atol=0)
    assert torch.equal(torch.cat([halves[0][1], halves[1][1]]), one[1])  # each row's own gradient


def test_bad_arguments_are_named():
    s, z, y = make(seed=34)
    store = klloss.topk_store(z, y, k=3)
    call = lambda *a, **kw: klloss.margin_kd_loss_topk(*a, **{"tail": "bucket", **kw})  # noqa: E731
    with pytest.raises(ValueError, match="tail must be one of 'renormalize', 'bucket'"):
        call(s, *store, y, tail="drop")
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'tail'"):
        klloss.margin_kd_loss_topk(s, *store, y)
    with pytest.raises(ValueError, match="tail='bucket' needs temperature=1"):
        call(s, *store, y, temperature=2.0)
    with pytest.raises(ValueError, match=r"topk_indices values must lie in \[0, V\) = \[0, 12\)"):
        call(s, store.indices + 10, *store[1:], y)
    with pytest.raises(ValueError, match="topk_logprobs must have the shape of topk_indices"):
        call(s, store.indices, store.logprobs[:, :2], store.label_logprob, y)
    with pytest.raises(ValueError, match=r"topk_indices must have shape .* 1 <= K <= V = 12"):
        call(s, store.indices[:3], store.logprobs[:3], store.label_logprob, y)
    with pytest.raises(ValueError, match=r"label values must lie in \[0, C\) = \[0, 12\)"):
        call(s, *store, torch.full_like(y, 12))
    with pytest.raises(ValueError, match="topk_logprobs requires grad but student_logits does not"):
        call(s, store.indices, store.logprobs.requires_grad_(True), store.label_logprob, y)
    with pytest.raises(ValueError, match=r"k must lie in \[1, V\] = \[1, 12\]"):
        klloss.topk_store(z, y, k=13)
    with pytest.raises(ValueError, match=r"label values must lie in \[0, C\)"):
        klloss.topk_store(z, torch.full_like(y, -1), k=2)


def test_a_store_that_is_not_what_it_says_is_refused_by_name():
    # the store's values are checked on kept rows: each misuse below gave a number before
    s, z, y = make(seed=36, n=12, v=20)
    store = klloss.topk_store(z, y, k=5)
    call = lambda idx, logp, label_logp, labels=y: klloss.margin_kd_loss_topk(  # noqa: E731
        s, idx, logp, label_logp, labels, tail="bucket"
    )
    call(*store)  # the store as built
    with pytest.raises(TypeError, match=r"topk_logprobs must be float32 or float64, got torch\.bfloat16"):
        call(store.indices, store.logprobs.bfloat16(), store.label_logprob)
    with pytest.raises(TypeError, match=r"label_logprob must be float32 or float64, got torch\.float16"):
        call(store.indices, store.logprobs, store.label_logprob.half())
    logits, at = z.topk(5, -1), z.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    # logits, then probabilities, in place of log-probabilities
    for logp, label_logp in [(logits.values, at), (store.logprobs.exp(), store.label_logprob.exp())]:
        with pytest.raises(ValueError, match="must be log-probabilities at temperature 1"):
            call(logits.indices, logp, label_logp)
    twice = torch.cat([store.indices[:, :1], store.indices[:, :-1]], -1)
    with pytest.raises(ValueError, match="topk_indices must hold K distinct classes"):
        call(twice, store.logprobs, store.label_logprob)
    shifted = torch.where(y == IGNORE, IGNORE, (y + 1) % 20)  # a store made from other labels
    with pytest.raises(
        ValueError, match=r"label_logprob disagrees with topk_logprobs .* shifted the same way"
    ):
        call(*klloss.topk_store(z, shifted, k=5))
    # an ignored row may hold anything; a store from another computation of log p passes within rounding
    logprobs = store.logprobs.clone()
    logprobs[y == IGNORE] = 5.0
    call(store.indices, logprobs, store.label_logprob)
    label_logp = -F.cross_entropy(z.float(), y, reduction="none", ignore_index=IGNORE)
    call(store.indices, F.log_softmax(z.float(), -1).gather(-1, store.indices), label_logp)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"margin_scale": 0.0}, r"^margin_scale must be > 0, got 0.0$"),
        ({"margin_scale": math.nan}, r"^margin_scale must be a real number > 0, got nan$"),
        ({"margin_scale": "1.5"}, r"^margin_scale must be a real number, got str$"),
    ],
)
def test_a_bad_margin_scale_is_named_as_the_caller_wrote_it(options, message):
    # the options are checked by klloss.Options, whose field is the article's beta
    s, z, y = make(seed=35)
    store = klloss.topk_store(z, y, k=3)
    with pytest.raises((TypeError, ValueError), match=message):
        klloss.margin_kd_loss_topk(s, *store, y, tail="bucket", **options)
