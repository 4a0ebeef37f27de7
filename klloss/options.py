r"""The loss's options as one value: :class:`Options` (``beta``, ``offset``, ``reduction``,
``ignore_index``), checked when it is made.

Every form of the loss takes one :class:`Options`, so a new hyper-parameter touches this class,
the public signatures and the computation, and nothing else. Symbols as in the glossary
(``docs/glossary.md``): :math:`\beta` divides the margin, :math:`k` is the offset.
"""

import dataclasses
import fractions
import math
import numbers
import sys

import torch

ARTICLE_OFFSET = 8.0
"""The constant :math:`k` the article adds to every weight."""

BETA_MIN = 2.0**-126
"""The smallest ``beta`` accepted, float32's smallest normal number (about 1.2e-38). Every path
computes in float32 or wider, where a smaller :math:`\beta` is 0 or subnormal: the margin
:math:`m / \beta` would then be 0/0 at the label (NaN) instead of 0."""

REDUCTIONS = ("batchmean", "sum", "none")

INT64 = (-(2**63), 2**63 - 1)


FLOAT_MAX = sys.float_info.max
"""The largest finite Python float; a number beyond it has no float but inf."""


def _shown(value):
    """``value`` as a message shows it: an int of many digits by its size, a long text cut; not
    at all under torch.compile, which may trace it as a symbol that a message cannot show."""
    if torch.compiler.is_compiling():
        return "the value passed (not shown under torch.compile)"
    if isinstance(value, int) and value.bit_length() > 128:
        return f"{'a negative' if value < 0 else 'an'} integer of {value.bit_length()} bits"
    try:
        text = str(value)
    except ValueError:  # a Fraction of more digits than str() writes
        return f"a {type(value).__name__} too long to print"
    return text if len(text) <= 40 else f"{text[:30]}... (a {type(value).__name__})"


def _real(name, value):
    """``value`` as a Python int, float or Fraction, compared exactly below (a NumPy number by
    ``.item()``); TypeError naming ``name`` if it is no real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if isinstance(value, (int, float, fractions.Fraction)):
        return value
    item = getattr(value, "item", None)
    return item() if callable(item) else float(value)


# The checks below use comparisons only (no math.isnan, math.isfinite): torch.compile traces them
# on a Python number that it treats as a symbol (a beta or an offset that changes between calls).
# NaN fails every comparison, so each accepts a value only by a comparison it passes.


def check_beta(beta):
    """``beta`` as a Python float: a real number in [BETA_MIN, inf]; a one-element tensor is read
    with ``.item()`` (which waits for a GPU), and is refused under ``torch.compile``."""
    if type(beta) is float and beta >= BETA_MIN:  # the common case, first and cheap (inf included)
        return beta
    if isinstance(beta, torch.Tensor):
        if beta.numel() != 1:
            raise ValueError(f"beta must be a single number, got a tensor of shape {tuple(beta.shape)}")
        if beta.dtype == torch.bool or beta.is_complex():
            raise TypeError(f"beta must be a real number, got a tensor of dtype {beta.dtype}")
        if torch.compiler.is_compiling():
            raise TypeError(
                "beta must be a Python number under torch.compile, got a tensor (its value would be "
                "read on the host): pass float(beta), outside the compiled function"
            )
        beta = beta.item()
    beta = _real("beta", beta)
    if not beta >= BETA_MIN:  # compared exactly, before rounding to a float
        if beta != beta:
            raise ValueError("beta must be a real number > 0, got nan")
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {_shown(beta)}")
        raise ValueError(
            f"beta must be at least BETA_MIN = {BETA_MIN:.6g} (float32's smallest normal number; below "
            f"it the margin / beta is 0/0 at the label), got {_shown(beta)}"
        )
    if FLOAT_MAX < beta < math.inf:
        raise ValueError(
            f"beta must be at most the largest float, {FLOAT_MAX:.6g}, or inf, got {_shown(beta)}: "
            "pass math.inf for the limit (every weight k)"
        )
    return float(beta)


def check_offset(offset):
    """``offset`` as a Python float; it must be a finite real number."""
    if type(offset) is float and -FLOAT_MAX <= offset <= FLOAT_MAX:  # the common case, first and cheap
        return offset
    offset = _real("offset", offset)
    if not -FLOAT_MAX <= offset <= FLOAT_MAX:
        beyond = f" (the largest float is {FLOAT_MAX:.6g})" if FLOAT_MAX < abs(offset) < math.inf else ""
        raise ValueError(f"offset must be finite, got {_shown(offset)}{beyond}")
    return float(offset)


TEMPERATURE_RANGE = (2.0**-126, 2.0**126)
"""The temperatures accepted: T and 1/T both normal float32 numbers (the kernels scale by 1/T)."""


def check_temperature(temperature):
    """``temperature`` as a Python float, in :data:`TEMPERATURE_RANGE`."""
    low, high = TEMPERATURE_RANGE
    if type(temperature) is float and low <= temperature <= high:  # the common case, first and cheap
        return temperature
    temperature = _real("temperature", temperature)
    if not 0 < temperature < math.inf:
        raise ValueError(f"temperature must be a finite number > 0, got {_shown(temperature)}")
    if not low <= temperature <= high:
        raise ValueError(
            f"temperature must lie in [2**-126, 2**126] (T and 1/T normal float32 numbers), "
            f"got {_shown(temperature)}"
        )
    return float(temperature)


def check_flag(name, value):
    """``value`` if it is a bool (``True``/``False``, not 0 or 1)."""
    if type(value) is not bool:
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_reduction(reduction):
    """``reduction`` if it is one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        allowed = ", ".join(repr(r) for r in REDUCTIONS)
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def check_ignore_index(ignore_index):
    """``ignore_index`` as a Python int that fits a label tensor (int64), or None."""
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an integer or None, got {type(ignore_index).__name__}")
    ignore_index = int(ignore_index)
    if not INT64[0] <= ignore_index <= INT64[1]:
        raise ValueError(f"ignore_index must fit in int64, [-2**63, 2**63), got {_shown(ignore_index)}")
    return ignore_index


@dataclasses.dataclass(frozen=True)
class Options:
    r"""The options of klloss_v2, checked when made; frozen, so they stay checked.

    * ``beta`` -- :math:`\beta`, divides the margin; a real number in [:data:`BETA_MIN`, inf]
      (``inf``: every weight equals ``offset``, and the labels are not read);
    * ``offset`` -- :math:`k`, added to every weight, finite (the article's 8.0);
    * ``reduction`` -- ``"batchmean"`` (mean over the rows not ignored), ``"sum"`` or ``"none"``;
    * ``ignore_index`` -- rows whose label equals it count for nothing; ``None``: no row is ignored;
    * ``temperature`` -- :math:`T`, OUR EXTENSION: :math:`p = \mathrm{softmax}(z/T)`,
      :math:`q = \mathrm{softmax}(s/T)`, the margin still from the raw teacher logits, the loss
      times :math:`T^2` (as in KD);
    * ``normalize`` -- divide the loss by :math:`k` (``offset`` must then be > 0): at
      :math:`\beta = \infty` it is then plain KD at :math:`T`, :math:`T^2\,\mathrm{KL}(p\|q)`;
    * ``clamp`` -- OUR VARIANT: :math:`\tilde w = \max(w, 0)` in place of :math:`w`, which keeps
      every row's loss bounded below (``notebooks/05-real-data.ipynb``).

    Every form computes :math:`L_i = f \sum_c \tilde w_{ic} p_{ic} (\log p_{ic} - \log q_{ic})`
    with :math:`f` = :attr:`factor`.

    ``dataclasses.replace(options, beta=2.0)`` gives a checked copy with one option changed.
    """

    beta: float
    offset: float = ARTICLE_OFFSET
    reduction: str = "batchmean"
    ignore_index: int | None = -100
    temperature: float = 1.0
    normalize: bool = False
    clamp: bool = False

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: the checked values replace the given ones once, here
        set_(self, "beta", check_beta(self.beta))
        set_(self, "offset", check_offset(self.offset))
        set_(self, "reduction", check_reduction(self.reduction))
        set_(self, "ignore_index", check_ignore_index(self.ignore_index))
        set_(self, "temperature", check_temperature(self.temperature))
        set_(self, "normalize", check_flag("normalize", self.normalize))
        set_(self, "clamp", check_flag("clamp", self.clamp))
        if self.normalize and not self.offset > 0:
            raise ValueError(
                f"offset must be > 0 when normalize=True (the loss is divided by it), got {self.offset}"
            )

    @property
    def factor(self):
        r"""What every row's sum is multiplied by: :math:`T^2/k` when ``normalize``, else :math:`T^2`."""
        t2 = self.temperature * self.temperature
        return t2 / self.offset if self.normalize else t2

    @property
    def plain(self):
        """True when no extension is on (T = 1, no normalisation, no clamp): the article's loss."""
        return self.temperature == 1.0 and not self.normalize and not self.clamp
