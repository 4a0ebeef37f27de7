"""Every bad argument gets a TypeError or ValueError that names it; the published form is
deliberately unchecked."""

import math

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
    ("1-d input", with_(input=torch.ones(5)), ValueError, "input must have shape (N, C)"),
    ("3-d target", with_(target=torch.ones(2, 5, 1)), ValueError, "target must have shape (N, C)"),
    ("target shape", with_(target=torch.ones(2, 4)), ValueError, "target must have the same shape as input"),
    (
        "logits_t shape",
        with_(logits_t=torch.ones(3, 5)),
        ValueError,
        "logits_t must have the same shape as input",
    ),
    (
        "target dtype",
        with_(target=torch.ones(2, 5, dtype=torch.float64)),
        TypeError,
        "target must have the same dtype",
    ),
    (
        "logits_t dtype",
        with_(logits_t=torch.ones(2, 5, dtype=torch.float16)),
        TypeError,
        "logits_t must have the same dtype",
    ),
    (
        "logits_t device",
        with_(logits_t=torch.ones(2, 5, device="meta")),
        ValueError,
        "logits_t must be on the same device",
    ),
    (
        "empty batch",
        with_(
            input=torch.ones(0, 5),
            target=torch.ones(0, 5),
            logits_t=torch.ones(0, 5),
            label=torch.ones(0, dtype=torch.long),
        ),
        ValueError,
        "input must hold at least one sample",
    ),
    (
        "no classes",
        with_(input=torch.ones(2, 0), target=torch.ones(2, 0), logits_t=torch.ones(2, 0)),
        ValueError,
        "input must have at least one class",
    ),
    ("label list", with_(label=[3, 2]), TypeError, "label must be a torch.Tensor"),
    ("float label", with_(label=torch.tensor([3.0, 2.0])), TypeError, "label must have an integer dtype"),
    ("bool label", with_(label=torch.tensor([True, False])), TypeError, "label must have an integer dtype"),
    ("label shape", with_(label=torch.tensor([[3], [2]])), ValueError, "label must have shape (N,) = (2,)"),
    ("label length", with_(label=torch.tensor([3])), ValueError, "label must have shape (N,) = (2,)"),
    (
        "label device",
        with_(label=torch.tensor([3, 2], device="meta")),
        ValueError,
        "label must be on the same device",
    ),
    ("label -1", with_(label=torch.tensor([-1, 2])), ValueError, "label values must lie in [0, C) = [0, 5)"),
    ("label -100", with_(label=torch.tensor([3, -100])), ValueError, "label values must lie in [0, C)"),
    ("label == C", with_(label=torch.tensor([3, 5])), ValueError, "label values must lie in [0, C)"),
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
    with pytest.raises(error) as info:
        _call(entry, dict(arguments))
    assert words in str(info.value)


def _call(entry, arguments):
    if entry == "function":
        return klloss.klloss_v2(**arguments)
    if entry == "trace":
        return klloss.trace(**arguments)
    beta = arguments.pop("beta")  # the module takes beta when it is built
    return klloss.KLLossV2(beta)(**arguments)


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
    value = klloss.klloss_v2(**with_(beta=beta))
    assert torch.isfinite(value)


def test_published_form_keeps_the_article_behaviour_for_label_minus_one():
    # unchecked on purpose: -1 indexes the last class, as in the article
    args = good()
    minus_one = klloss.klloss_v2_published(**{**args, "label": torch.tensor([-1, 2])})
    last = klloss.klloss_v2_published(**{**args, "label": torch.tensor([4, 2])})
    assert torch.equal(minus_one, last)
