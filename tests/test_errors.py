"""Every bad argument gets a TypeError or ValueError that names it; the published form is
deliberately unchecked.

The training loss (``klloss_v2``, ``KLLossV2``) takes logits of any leading shape and an
``ignore_index``; the teaching function ``trace`` keeps the strict (N, C) form. Where their
messages differ, a case gives both: {"loss": ..., "strict": ...}.
"""

import functools
import math
import re
from fractions import Fraction

import numpy as np
import pytest
import torch

import klloss


def good():
    s = klloss.data.load_sample().tensors()
    return {
        "logits_t": s["logits_t"],
        "input": s["input"],
        "target": s["target"],
        "label": s["label"],
        "beta": 1.5,
    }


def with_(**changes):
    return {**good(), **changes}


BAD_CALLS = [
    # (name, arguments, exception, words the message must contain)
    ("input not a tensor", with_(input=[[1.0, 2.0]]), TypeError, "input must be a torch.Tensor"),
    ("target not a tensor", with_(target=np.zeros((2, 5))), TypeError, "target must be a torch.Tensor"),
    ("logits_t not a tensor", with_(logits_t=None), TypeError, "logits_t must be a torch.Tensor"),
    (
        "integer input",
        with_(input=torch.ones(2, 5, dtype=torch.long)),
        TypeError,
        "input must have a floating-point dtype",
    ),
    (
        "integer target",
        with_(target=torch.ones(2, 5, dtype=torch.int32)),
        TypeError,
        "target must have a floating-point dtype",
    ),
    (
        "bool logits_t",
        with_(logits_t=torch.ones(2, 5, dtype=torch.bool)),
        TypeError,
        "logits_t must have a floating-point dtype",
    ),
    (
        "0-d input",
        with_(input=torch.tensor(1.0)),
        ValueError,
        {
            "loss": "input must have shape (..., C), got a 0-d tensor",
            "strict": "input must have shape (N, C)",
        },
    ),
    (
        "1-d input",
        with_(input=torch.ones(5)),
        ValueError,
        {"loss": "target must have the same shape as input (5,)", "strict": "input must have shape (N, C)"},
    ),
    (
        "3-d target",
        with_(target=torch.ones(2, 5, 1)),
        ValueError,
        {"loss": "target must have the same shape as input", "strict": "target must have shape (N, C)"},
    ),
    ("target shape", with_(target=torch.ones(2, 4)), ValueError, "target must have the same shape as input"),
    (
        "logits_t shape",
        with_(logits_t=torch.ones(3, 5)),
        ValueError,
        "logits_t must have the same shape as input",
    ),
    (
        "target float8",
        with_(target=torch.ones(2, 5).to(torch.float8_e4m3fn)),
        TypeError,
        "target must have a floating-point dtype (bfloat16, float16, float32, float64), got torch.float8",
    ),
    (
        "input complex",
        with_(input=torch.ones(2, 5, dtype=torch.complex64)),
        TypeError,
        "input must have a floating-point dtype",
    ),
    (
        "logits_t device",
        with_(logits_t=torch.ones(2, 5, device="meta")),
        ValueError,
        "logits_t must be on the same device",
    ),
    (
        "no classes",
        with_(input=torch.ones(2, 0), target=torch.ones(2, 0), logits_t=torch.ones(2, 0)),
        ValueError,
        "input must have at least one class",
    ),
    ("label list", with_(label=[3, 2]), TypeError, "label must be a torch.Tensor"),
    (
        "float label",
        with_(label=torch.tensor([3.0, 2.0])),
        TypeError,
        "label must have an integer dtype (int64, int32, int16, int8, uint8), got torch.float32",
    ),
    ("bool label", with_(label=torch.tensor([True, False])), TypeError, "label must have an integer dtype"),
    (
        "label shape",
        with_(label=torch.tensor([[3], [2]])),
        ValueError,
        {
            "loss": "label must have shape input.shape[:-1] = (2,), got (2, 1)",
            "strict": "label must have shape (N,) = (2,)",
        },
    ),
    (
        "label length",
        with_(label=torch.tensor([3])),
        ValueError,
        {
            "loss": "label must have shape input.shape[:-1] = (2,)",
            "strict": "label must have shape (N,) = (2,)",
        },
    ),
    (
        "label device",
        with_(label=torch.tensor([3, 2], device="meta")),
        ValueError,
        "label must be on the same device",
    ),
    (
        "label -1",
        with_(label=torch.tensor([-1, 2])),
        ValueError,
        {
            "loss": "label values must lie in [0, C) = [0, 5) or equal ignore_index = -100, got -1",
            "strict": "label values must lie in [0, C) = [0, 5)",
        },
    ),
    ("label == C", with_(label=torch.tensor([3, 5])), ValueError, "label values must lie in [0, C)"),
    (
        "label 7 beside -100",
        with_(label=torch.tensor([7, -100])),
        ValueError,
        {
            "loss": "label values must lie in [0, C) = [0, 5) or equal ignore_index = -100, got 7",
            "strict": "label values must lie in [0, C) = [0, 5), got values from -100 to 7",
        },
    ),
    (
        "uint8 label 156, the value -100 wraps to in uint8",
        with_(label=torch.tensor([156, 2], dtype=torch.uint8)),
        ValueError,
        {
            "loss": "label values must lie in [0, C) = [0, 5) (ignore_index = -100 is outside "
            "torch.uint8's range: no row is ignored), got 156",
            "strict": "label values must lie in [0, C) = [0, 5), got values from 2 to 156",
        },
    ),
    *(
        (
            f"{dtype} label",
            with_(label=torch.tensor([3, 2], dtype=dtype)),
            TypeError,
            f"label must have an integer dtype (int64, int32, int16, int8, uint8), got {dtype} (torch "
            "compares none of uint16, uint32, uint64: convert with label.long())",
        )
        for dtype in (torch.uint16, torch.uint32, torch.uint64)
    ),
    ("beta 0", with_(beta=0), ValueError, "beta must be > 0"),
    ("beta negative", with_(beta=-1.5), ValueError, "beta must be > 0"),
    ("beta -inf", with_(beta=-math.inf), ValueError, "beta must be > 0"),
    ("beta nan", with_(beta=math.nan), ValueError, "beta must be a real number > 0, got nan"),
    ("beta bool", with_(beta=True), TypeError, "beta must be a real number, got bool"),
    ("beta string", with_(beta="1.5"), TypeError, "beta must be a real number, got str"),
    ("beta complex", with_(beta=1 + 1j), TypeError, "beta must be a real number, got complex"),
    ("beta None", with_(beta=None), TypeError, "beta must be a real number"),
    (
        "beta tensor of several",
        with_(beta=torch.tensor([1.0, 2.0])),
        ValueError,
        "beta must be a single number",
    ),
    ("beta bool tensor", with_(beta=torch.tensor(True)), TypeError, "beta must be a real number"),
    ("beta nan tensor", with_(beta=torch.tensor(float("nan"))), ValueError, "beta must be a real number > 0"),
]


@pytest.mark.parametrize(
    ("arguments", "error", "words"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
@pytest.mark.parametrize("entry", ["function", "module", "trace"])
def test_bad_arguments_are_named(entry, arguments, error, words):
    arguments = dict(arguments)
    if entry == "function":
        call = functools.partial(klloss.klloss_v2, **arguments)
    elif entry == "trace":
        call = functools.partial(klloss.trace, **arguments)
    else:
        beta = arguments.pop("beta")

        def call():  # the module checks beta when it is built, the rest when it is called
            return klloss.KLLossV2(beta)(**arguments)

    with pytest.raises(error) as info:
        call()
    if isinstance(words, dict):
        words = words["strict" if entry == "trace" else "loss"]
    assert words in str(info.value)


def test_minus_100_is_ignored_by_the_loss_and_refused_by_trace():
    arguments = with_(label=torch.tensor([3, -100]))
    assert torch.isfinite(klloss.klloss_v2(**arguments))
    with pytest.raises(ValueError, match=r"label values must lie in \[0, C\) = \[0, 5\)"):
        klloss.trace(**arguments)


def test_without_ignore_index_minus_100_is_refused():
    with pytest.raises(ValueError, match=r"label values must lie in \[0, C\) = \[0, 5\), got -100$"):
        klloss.klloss_v2(**with_(label=torch.tensor([3, -100])), ignore_index=None)


@pytest.mark.parametrize(
    ("dtype", "label", "ignore_index", "words"),
    [
        # int8 -56 is 200 wrapped: 200 is outside int8's range, so no row is ignored and -56 is refused
        (
            torch.int8,
            [-56, 2],
            200,
            "(ignore_index = 200 is outside torch.int8's range: no row is ignored), got -56",
        ),
        # int16 8 is 2**16 + 8 wrapped: 8 is a bad class, not an ignored row
        (
            torch.int16,
            [8, 2],
            2**16 + 8,
            "(ignore_index = 65544 is outside torch.int16's range: no row is ignored), got 8",
        ),
        # an ignore_index in range is compared in the label's dtype: -100 is ignored, -1 refused
        (torch.int8, [-100, -1], -100, "or equal ignore_index = -100, got -1"),
    ],
)
def test_labels_are_compared_with_ignore_index_without_wrapping(dtype, label, ignore_index, words):
    arguments = with_(label=torch.tensor(label, dtype=dtype))
    with pytest.raises(ValueError, match=re.escape("label values must lie in [0, C) = [0, 5) " + words)):
        klloss.klloss_v2(**arguments, ignore_index=ignore_index)
    tensors = (arguments[k] for k in ("logits_t", "input", "target", "label"))
    with pytest.raises(ValueError, match=re.escape(words)):
        klloss.KLLossV2(1.5, ignore_index=ignore_index)(*tensors)


@pytest.mark.parametrize(
    ("ignore_index", "words"),
    [
        (1.0, "ignore_index must be an integer or None, got float"),
        (True, "ignore_index must be an integer or None, got bool"),
        ("-100", "ignore_index must be an integer or None, got str"),
        (torch.tensor(-100), "ignore_index must be an integer or None, got Tensor"),
    ],
)
def test_bad_ignore_index(ignore_index, words):
    with pytest.raises(TypeError, match=words):
        klloss.klloss_v2(**good(), ignore_index=ignore_index)
    with pytest.raises(TypeError, match=words):
        klloss.KLLossV2(1.5, ignore_index=ignore_index)


@pytest.mark.parametrize(
    ("offset", "error", "words"),
    [
        (math.inf, ValueError, "offset must be finite, got inf"),
        (-math.inf, ValueError, "offset must be finite"),
        (math.nan, ValueError, "offset must be finite, got nan"),
        ("8", TypeError, "offset must be a real number, got str"),
        (False, TypeError, "offset must be a real number, got bool"),
    ],
)
def test_bad_offset(offset, error, words):
    with pytest.raises(error, match=words):
        klloss.klloss_v2(**good(), offset=offset)
    with pytest.raises(error, match=words):
        klloss.trace(**good(), offset=offset)
    with pytest.raises(error, match=words):
        klloss.KLLossV2(1.5, offset=offset)


@pytest.mark.parametrize("reduction", ["mean", "", None, "BATCHMEAN"])
def test_bad_reduction_lists_the_allowed_ones(reduction):
    words = "reduction must be one of 'batchmean', 'sum', 'none'"
    with pytest.raises(ValueError, match=words):
        klloss.klloss_v2(**good(), reduction=reduction)
    with pytest.raises(ValueError, match=words):
        klloss.KLLossV2(1.5, reduction=reduction)


@pytest.mark.parametrize(
    "beta", [1.5, 2, np.float32(1.5), np.int64(3), torch.tensor(1.5), torch.tensor([1.5]), math.inf]
)
def test_good_betas_are_accepted(beta):
    # a NumPy number, an int or a one-element tensor is read as the Python float it holds
    value = klloss.klloss_v2(**with_(beta=beta))
    assert torch.equal(value, klloss.klloss_v2(**with_(beta=float(beta))))
    if math.isfinite(float(beta)):
        assert value.item() != klloss.klloss_v2(**with_(beta=float(beta) * 2)).item()


def test_trace_refuses_an_empty_batch():
    # the loss takes one (tests/test_edges.py); the teaching function has no sample to show
    empty = {"input": torch.ones(0, 5), "target": torch.ones(0, 5), "logits_t": torch.ones(0, 5)}
    with pytest.raises(ValueError, match="input must hold at least one sample"):
        klloss.trace(**with_(**empty, label=torch.ones(0, dtype=torch.long)))


def test_published_form_keeps_the_article_behaviour_for_label_minus_one():
    # unchecked on purpose: -1 indexes the last class, as in the article
    args = good()
    minus_one = klloss.klloss_v2_published(**{**args, "label": torch.tensor([-1, 2])})
    last = klloss.klloss_v2_published(**{**args, "label": torch.tensor([4, 2])})
    assert torch.equal(minus_one, last)


LARGEST = "(the largest float is 1.79769e+308)"
BELOW_BETA_MIN = (
    "beta must be at least BETA_MIN = 1.17549e-38 (float32's smallest normal number; below it the "
    "margin / beta is 0/0 at the label), got "
)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"beta": 10**400},
            "beta must be at most the largest float, 1.79769e+308, or inf, got an integer of 1329 bits: "
            "pass math.inf for the limit (every weight k)",
        ),
        ({"beta": -(10**400)}, "beta must be > 0, got a negative integer of 1329 bits"),
        # positive, but 0.0 as a float: said to be below the smallest beta accepted, not "> 0"
        ({"beta": Fraction(1, 10**400)}, BELOW_BETA_MIN + "1/1000000000000000000000000000... (a Fraction)"),
        ({"beta": np.float32(1e-39)}, BELOW_BETA_MIN + "1.0000002153053333e-39"),
        ({"offset": 10**400}, f"offset must be finite, got an integer of 1329 bits {LARGEST}"),
        (
            {"offset": -Fraction(10**400, 3)},
            f"offset must be finite, got -10000000000000000000000000000... (a Fraction) {LARGEST}",
        ),
        (
            {"temperature": 10**400},
            "temperature must lie in [2**-126, 2**126] (T and 1/T normal float32 numbers), "
            "got an integer of 1329 bits",
        ),
        (
            {"temperature": Fraction(1, 10**400)},
            "temperature must lie in [2**-126, 2**126] (T and 1/T normal float32 numbers), "
            "got 1/1000000000000000000000000000... (a Fraction)",
        ),
        (
            {"ignore_index": 10**5000},
            "ignore_index must fit in int64, [-2**63, 2**63), got an integer of 16610 bits",
        ),
    ],
)
def test_numbers_no_float_holds_are_refused_by_name(options, message):
    # a bare OverflowError from float(), or a message that spoke of the rounded value, was the
    # answer before (issue 25)
    whole = "^" + re.escape(message) + "$"
    with pytest.raises(ValueError, match=whole):
        klloss.Options(**{"beta": 1.5, **options})
    if "temperature" not in options:
        with pytest.raises(ValueError, match=whole):
            klloss.klloss_v2(**{**good(), **options})


def test_exact_numbers_are_read_as_the_float_they_round_to():
    exact = klloss.Options(Fraction(3, 2), offset=Fraction(10**400, 10**399), temperature=np.int64(2))
    assert exact == klloss.Options(1.5, offset=10.0, temperature=2.0)
    assert type(exact.beta) is float
    assert type(exact.temperature) is float
