r"""Distillation on real data: scikit-learn's 8x8 handwritten digits (shipped with the package,
no download), a teacher MLP and a much smaller student trained with cross-entropy alone, with
plain KD, or with klloss_v2 across beta.

How the terms are combined, for every distillation loss here:

.. math::
    \mathcal{L} = (1 - \alpha)\,\mathrm{CE}(s, y) + \alpha\, D(z, s, y),

with :math:`D` = :math:`T^2\,\mathrm{KL}(p_T \| q_T)` for plain KD at temperature :math:`T`, and
:math:`D` = ``klloss_v2(z, s, z, y, beta) / k`` for klloss_v2. Dividing by the offset
:math:`k = 8` makes the large-beta limit exactly :math:`\mathrm{KL}(p \| q)`, plain KD at
:math:`T = 1`, so that in this limit :math:`\alpha` means the same for every loss. At finite beta
row :math:`i`'s term is :math:`\frac{W_i}{k}\,\mathrm{KL}(q^*_i \| q_i)` plus a constant: another
target and, in effect, the weight :math:`\alpha W_i / k` (:func:`reweighting`; our ablation,
:func:`klloss_kd_part`, trains with each part alone).

Our extension, not the article's loss (:func:`klloss_kd_soft`): the article's weights applied
to teacher and student distributions softened by a temperature :math:`T`,
:math:`D = T^2\,\mathrm{klloss\_v2}(z, s/T, z/T, y, \beta)/k`, which tends to plain KD at
:math:`T` as :math:`\beta \to \infty`.

The full experiment (many seeds, teachers trained on flipped labels) takes an hour or more, so
``make experiments`` (``tools/run_experiments.py``) runs it under the pinned environment of
``course/nbenv.py`` and stores it, with its provenance, in ``data/experiments/``; the notebook
reads it. Paired statistics over seeds: :func:`paired_test`, :func:`holm`, :func:`settle`.
Walked through in ``notebooks/05-real-data.ipynb``. Students taught by a stored top K of the
teacher's classes (:func:`klloss_kd_topk`, :func:`train_student`): ``notebooks/06-performance.ipynb``.

A small configuration for students to run and vary (:data:`SMALL`, :func:`small_plan`): ``make
experiments-small`` (``python -m tools.run_experiments --small``, about a minute) stores it in
:data:`STORED_SMALL`, the same code and the same record as the full run. KD at T = 4 against
klloss_v2 at beta = 1.5 on test accuracy, seed by seed, as notebook 05 tabulates the full record::

    from course import experiments as ex

    small = ex.load_stored(ex.STORED_SMALL)  # {"provenance", "main", "wrong_teacher"}, as the full record
    runs = ex.frame(small["main"]["runs"])  # one row per student: loss, alpha, seed, metrics
    pairs = [("klloss_v2, beta = 1.5", "KD, T = 4")]  # first minus second, seed by seed
    family = {metric: ex.compare(runs, metric, pairs) for metric in ("accuracy", "nll")}
    settled = ex.settle(family)  # Holm over every test of the family, then a verdict per row
    columns = ["n", "mean", "ci_low", "ci_high", "p", "p_holm", "above", "below", "verdict"]
    print(settled["accuracy"][columns].round(4).to_string())
"""

import dataclasses
import datetime
import itertools
import json
import math
import os
import platform
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from klloss import ARTICLE_OFFSET, klloss_v2, margin, margin_kd_loss_topk, negative_weight_share, weight

from . import ROOT

EXPERIMENTS_DIR = ROOT / "data" / "experiments"
STORED = EXPERIMENTS_DIR / "digits.json"
STORED_SMALL = EXPERIMENTS_DIR / "digits-small.json"
"""The small configuration of the experiment (:data:`SMALL`), written by ``make experiments-small``
in the same form as :data:`STORED`: every function notebook 05 uses on the full record works on
it. The module's docstring shows how to read a paired comparison from it."""
STORED_SMALL_VARIED = ROOT / "build" / "experiments" / "digits-small-varied.json"
"""Where ``python -m tools.run_experiments --small`` writes a plan other than :data:`SMALL`."""


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def bit_exact(stored):
    """Whether a re-run under the pins of ``course/nbenv.py`` must give ``stored``'s numbers bit
    for bit: on x86-64 Linux, on the CPU model that stored them. An Intel Xeon re-run of numbers
    stored on an AMD EPYC differed in the last bits, pins and all (the training's matrix products
    or exponentials; the cause is not pinned down), so elsewhere only approximately."""
    linux = platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")
    return linux and stored["provenance"]["cpu"] == _cpu_model()


REPRODUCTION = {
    "main": {
        "accuracy": (0.0, 1 / 540),
        "p_true": (0.0, 5e-4),
        "train_p_true": (0.0, 5e-4),
        "ece": (0.0, 3e-4),
        "nll": (0.0, 1e-3),
        "max_logit": (1e-3, 0.0),
        "final_loss": (1e-3, 1e-6),
        "se_": (0.05, 0.0),
        "logits_": (0.0, 1e-2),
    },
    "wrong_teacher": {
        "accuracy": (0.0, 0.02),
        "p_true": (0.0, 0.02),
        "train_p_true": (0.0, 0.02),
        "ece": (0.0, 0.03),
        "nll": (0.1, 0.0),
        "max_logit": (0.25, 0.0),
        "final_loss": (0.1, 0.05),
        "history": (0.1, 0.05),
        "negative_weight_rows": (0.0, 0.01),
        "se_": (0.25, 0.0),
        "logits_": (0.0, math.inf),
    },
}
"""How closely a re-run on another CPU model must give the stored numbers, per part of the
experiment and field: ``(relative, absolute)``, a difference within ``absolute + relative * max(|a|,
|b|)`` agrees; a field name ending in ``_`` covers every field it starts; fields not listed
(names, seeds, the teacher's training accuracy) must be equal. On the CPU model that stored them
they must be equal bit for bit (:func:`bit_exact`).

* ``main`` (the clean teacher and its students): one test image of accuracy, a tenth of the
  equivalence margin (:data:`MARGINS`) on the other metrics, so that no verdict can move, and a
  hundredth on every logit of the teacher. An Intel Xeon re-run of numbers stored on an AMD EPYC
  stayed within a hundredth of the metrics' tolerances; a re-run of the Intel file with the
  Intel CPU's own AVX-512 kernels (no pins at all) stayed within all of them.
* ``wrong_teacher``: a teacher trained 100 epochs to fit flipped labels turns a last-bit
  difference into a slightly different teacher (on that pair of CPUs, 5 of 1257 training rows
  changed their negative-weight status at beta = 0.5), and its students then differ as students
  of another seed would: up to 3 test images of accuracy, 0.01 of ECE, 2 % of NLL on the
  subset's rows (seed 0, beta = 0.5), which these tolerances, about twice that, are measured on.
  Other students can differ more: on an AMD EPYC, the small configuration's 35 students of the
  40 % teacher against the full file stored on an Intel Xeon had 3 outside these tolerances (one
  by 14 test images of accuracy, 0.8426 against 0.8685; one largest logit 50.8 against 74.8; one
  final loss 0.49 against 0.39). So a wrong teacher's single student is not reproducible across
  CPU models; notebook 05 reads these runs only as statistics over seeds, and the tests compare
  across CPU models only the subset's rows (tests/test_experiments.py).
"""


def _tolerance(spec, field):
    for name, tolerance in spec.items():
        if field == name or (name.endswith("_") and field.startswith(name)):
            return tolerance
    return None


def mismatches(rerun, stored, part, exact):
    """Where ``rerun`` (a run's row, or a teacher's summary) and ``stored`` disagree: a list of
    ``"field: rerun vs stored"``; empty when they agree. ``exact``: bit for bit (as on the CPU
    model that stored them, :func:`bit_exact`), else within ``REPRODUCTION[part]``."""
    spec, found = REPRODUCTION[part], []

    def walk(a, b, field, tolerance):
        if isinstance(a, dict) and isinstance(b, dict) and set(a) == set(b):
            for key in a:
                walk(a[key], b[key], key, _tolerance(spec, key) or tolerance)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for x, y in zip(a, b, strict=True):
                walk(x, y, field, tolerance)
        elif exact or tolerance is None or not all(isinstance(v, float) for v in (a, b)):
            if a != b:
                found.append(f"{field}: {a!r} vs {b!r}")
        else:
            relative, absolute = tolerance
            if not abs(a - b) <= absolute + relative * max(abs(a), abs(b)):
                found.append(f"{field}: {a!r} vs {b!r}")

    walk(rerun, stored, "", None)
    return found


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines a run. The defaults are what the notebook uses."""

    test_size: float = 0.3
    split_seed: int = 0
    teacher_hidden: int = 256
    teacher_epochs: int = 40
    teacher_lr: float = 1e-3
    student_hidden: int = 8
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-2
    alpha: float = 0.5
    temperature: float = 4.0
    # the wrong teacher: trained on flipped labels until it fits them, so it is confidently wrong
    wrong_teacher_epochs: int = 100
    wrong_teacher_lr: float = 3e-3


@dataclasses.dataclass(frozen=True)
class Data:
    """Standardised features (float32) and labels of a stratified train/test split."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def classes(self):
        return int(self.y_train.max()) + 1


def load_digits_split(config=Config()):
    """The digits, split stratified and reproducibly; features standardised on the train part."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=config.test_size, stratify=y, random_state=config.split_seed
    )
    # a pixel almost always blank in training would blow a stray test pixel up: scale by at
    # least one grey level (pixels run from 0 to 16)
    mean, std = x_train.mean(0), np.maximum(x_train.std(0), 1.0)
    as_x = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    as_y = lambda a: torch.tensor(a, dtype=torch.long)  # noqa: E731
    return Data(as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test))


def mlp(n_in, hidden, n_out):
    """A one-hidden-layer perceptron."""
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, n_out))


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def cross_entropy_only(student_logits, teacher_logits, labels):
    """The baseline: no teacher."""
    return F.cross_entropy(student_logits, labels)


def plain_kd(alpha, temperature):
    r"""Hinton's KD: :math:`(1-\alpha)\,\mathrm{CE} + \alpha T^2 \mathrm{KL}(p_T \| q_T)`."""

    def loss(student_logits, teacher_logits, labels):
        kl = F.kl_div(
            F.log_softmax(student_logits / temperature, 1),
            F.log_softmax(teacher_logits / temperature, 1),
            reduction="batchmean",
            log_target=True,
        )
        return (1 - alpha) * F.cross_entropy(student_logits, labels) + alpha * temperature**2 * kl

    return loss


IMPL = "reference"
"""The form of klloss_v2 the students train through: the readable reference (``klloss.reference``),
not whichever fast path the library picks. The stored runs then depend on the loss's arithmetic
alone: a change to a fast path moves no last bit of them, and nothing to re-train."""


def klloss_kd(alpha, beta, offset=ARTICLE_OFFSET):
    r""":math:`(1-\alpha)\,\mathrm{CE} + \alpha\,\mathrm{klloss\_v2}/k` (see the module docstring)."""

    def loss(student_logits, teacher_logits, labels):
        distill = klloss_v2(
            teacher_logits, student_logits, teacher_logits, labels, beta, offset=offset, impl=IMPL
        )
        return (1 - alpha) * F.cross_entropy(student_logits, labels) + alpha * distill / offset

    return loss


def klloss_kd_soft(alpha, beta, temperature, offset=ARTICLE_OFFSET):
    r"""OUR EXTENSION, not the article's loss: klloss_v2's weights on softened distributions,

    .. math::
        (1-\alpha)\,\mathrm{CE}(s, y) + \alpha\,T^2\,\frac{1}{k}\,\frac1N\sum_{i,c} w_{ic}\,
        p^T_{ic}\,(\log p^T_{ic} - \log q^T_{ic}),

    with :math:`p^T = \mathrm{softmax}(z/T)`, :math:`q^T = \mathrm{softmax}(s/T)` and the
    article's weight :math:`w = (z_y - z)/\beta + k` from the unsoftened teacher logits (a margin
    taken from :math:`z/T` instead would be the same as :math:`\beta T` in place of :math:`\beta`).
    As :math:`\beta \to \infty` it is plain KD at temperature :math:`T`
    (:func:`plain_kd`), just as :func:`klloss_kd` is plain KD at :math:`T = 1`.
    See ``notebooks/05-real-data.ipynb``.
    """

    def loss(student_logits, teacher_logits, labels):
        # klloss_v2(z, s/T, z/T, y, beta): margin from z, p^T = softmax(z/T), q^T = softmax(s/T)
        distill = klloss_v2(
            teacher_logits,
            student_logits / temperature,
            teacher_logits / temperature,
            labels,
            beta,
            offset=offset,
            impl=IMPL,
        )
        # (1 - alpha) CE + alpha T^2 D / k
        return (1 - alpha) * F.cross_entropy(
            student_logits, labels
        ) + alpha * temperature**2 * distill / offset

    return loss


def klloss_kd_topk(alpha, beta, tail, offset=ARTICLE_OFFSET):
    r""":math:`(1-\alpha)\,\mathrm{CE} + \alpha\,D` with the teacher given by its stored top K:
    :math:`D` = :func:`klloss.margin_kd_loss_topk` (``tail`` ``"bucket"`` or ``"renormalize"``,
    margin scale ``beta``, ``normalize=True``), which is :func:`klloss_kd`'s term when K is the
    number of classes. The returned loss takes ``(student_logits, store, labels)``, ``store`` the
    :class:`klloss.TopKStore` of the batch's rows (:func:`train` indexes one by the batch).
    See ``notebooks/06-performance.ipynb``."""

    def loss(student_logits, store, labels):
        distill = margin_kd_loss_topk(
            student_logits, *store, labels, tail=tail, margin_scale=beta, offset=offset
        )
        return (1 - alpha) * F.cross_entropy(student_logits, labels) + alpha * distill

    return loss


PARTS = ("target", "scale", "clamped")
"""The parts of klloss_v2 that :func:`klloss_kd_part` trains with (our ablation and variant)."""


def reweighting(teacher_logits, labels, beta, temperature=1.0, offset=ARTICLE_OFFSET):
    r"""What klloss_v2's weights do to each row, with the weights clamped at zero:
    :math:`w^+ = \max(w, 0)`, :math:`w = (z_y - z)/\beta + k` from the raw teacher logits, and
    :math:`p = \mathrm{softmax}(z/T)`. Returns ``(W / k, q*)``: the row's weight
    :math:`W^+_i / k = \sum_c w^+_{ic} p_{ic} / k`, shape (N,), and the re-weighted teacher
    :math:`q^{+*} = w^+ \odot p / W^+`, shape (N, C). Where no weight is negative these are
    exactly notebook 04's :math:`W_i/k` and :math:`q^*` (at T = 1), the two factors of
    :math:`L_i = W_i\,\mathrm{KL}(q^*_i \| q_i) + L_{\min,i}`. The label's weight is k > 0, so
    :math:`W^+ > 0`. See ``notebooks/05-real-data.ipynb``.
    """
    z = teacher_logits.detach()
    # w+ = max((z_y - z) / beta + k, 0)
    w = weight(margin(z, labels), beta, offset).clamp(min=0)
    p = F.softmax(z / temperature, dim=1)
    # W+ = sum_c w+_c p_c
    big_w = (w * p).sum(dim=1, keepdim=True)
    # q+* = w+ p / W+
    return big_w.squeeze(1) / offset, w * p / big_w


def klloss_kd_part(alpha, beta, part, temperature=1.0, offset=ARTICLE_OFFSET):
    r"""OUR ABLATION AND VARIANT, not the article's loss: :math:`(1-\alpha)\,\mathrm{CE} + \alpha D`
    with, per row, the parts of the identity :math:`\frac1k L_i = \frac{W_i}{k}\,
    \mathrm{KL}(q^*_i \| q_i) + \mathrm{const}` taken one at a time (:func:`reweighting`;
    :math:`p`, :math:`q` softened by :math:`T`, scaled by :math:`T^2` as KD is):

    * ``"target"``: :math:`D = T^2\,\mathrm{KL}(q^*_i \| q_i)`, KD towards :math:`q^*`, each row
      divided by :math:`W_i/k`;
    * ``"scale"``: :math:`D = T^2\,(W_i/k)\,\mathrm{KL}(p_i \| q_i)`, KD with each row weighted;
    * ``"clamped"``: both, :math:`D = \frac{T^2}{k}\sum_c \max(w_c, 0)\,p_c \log(p_c/q_c)`, which is
      klloss_v2 / k (or :func:`klloss_kd_soft`'s term at T) wherever no weight is negative, and
      is bounded below where some are.

    The batch mean is over rows. See ``notebooks/05-real-data.ipynb``.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")

    def loss(student_logits, teacher_logits, labels):
        scale, q_star = reweighting(teacher_logits, labels, beta, temperature, offset)
        log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
        log_q = F.log_softmax(student_logits / temperature, dim=1)
        if part == "target":
            # KL(q* || q) = sum_c q*_c (log q*_c - log q_c), with 0 log 0 = 0
            rows = (torch.xlogy(q_star, q_star) - q_star * log_q).sum(dim=1)
        elif part == "scale":
            # (W / k) KL(p || q)
            rows = scale * (log_p.exp() * (log_p - log_q)).sum(dim=1)
        else:
            # (W / k) KL(q* || q) + const = (1 / k) sum_c w+_c p_c (log p_c - log q_c)
            rows = scale * (q_star * (log_p - log_q)).sum(dim=1)
        # (1 - alpha) CE + alpha T^2 mean_i D_i
        return (1 - alpha) * F.cross_entropy(student_logits, labels) + alpha * temperature**2 * rows.mean()

    return loss


def part_name(part, temperature, beta):
    """The name :func:`settings` gives a part of our ablation (or the clamped variant)."""
    what = {"target": "target only", "scale": "scale only", "clamped": "max(w, 0)"}[part]
    return f"ours: {what}, T = {temperature:g}, beta = {beta:g}"


def teacher_rows(teacher, rows):
    """The rows ``rows`` of what a loss gets from the teacher: its logits (a tensor), or a tuple
    of per-row tensors such as a :class:`klloss.TopKStore` (each indexed, the type kept)."""
    if isinstance(teacher, torch.Tensor):
        return teacher[rows]
    return type(teacher)(*(x[rows] for x in teacher))


def train(model, loss_fn, data, teacher_logits, config, seed, history=None):
    """Adam on mini-batches, reshuffled each epoch by a generator seeded with ``seed``.
    ``teacher_logits`` is indexed by each batch (:func:`teacher_rows`): the teacher's logits on
    the training rows, or a stored top K of them (:func:`klloss_kd_topk`).

    With a list as ``history``, appends the mean training loss of each epoch to it (the mean of
    the mini-batch losses, weighted by batch size, as training went)."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    n = len(data.y_train)
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, config.batch_size):
            batch = order[start : start + config.batch_size]
            teacher = teacher_rows(teacher_logits, batch)
            loss = loss_fn(model(data.x_train[batch]), teacher, data.y_train[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        if history is not None:
            history.append(total / n)
    return model


def train_student(data, loss_fn, teacher_logits, config=Config(), seed=0, history=None):
    """A student as :func:`run` trains each: :func:`mlp` with ``config.student_hidden`` units,
    initialised after ``torch.manual_seed(seed)``, then :func:`train` with ``loss_fn`` against
    ``teacher_logits`` (the teacher's logits on the training rows, or a stored top K)."""
    torch.manual_seed(seed)
    student = mlp(data.x_train.shape[1], config.student_hidden, data.classes)
    return train(student, loss_fn, data, teacher_logits, config, seed, history=history)


def train_teacher(data, config=Config(), seed=0):
    """The teacher: a wide MLP trained with cross-entropy."""
    torch.manual_seed(seed)
    teacher = mlp(data.x_train.shape[1], config.teacher_hidden, data.classes)
    placeholder = torch.zeros(len(data.y_train), data.classes)
    teacher_config = dataclasses.replace(config, epochs=config.teacher_epochs, lr=config.teacher_lr)
    train(teacher, cross_entropy_only, data, placeholder, teacher_config, seed)
    return teacher.eval()


def flip_labels(labels, fraction, seed, classes=None):
    """A copy of ``labels`` with ``round(fraction * N)`` rows, drawn at random, moved to another
    class drawn uniformly from the other ``classes - 1`` (so every drawn row really changes)."""
    if not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
    classes = int(labels.max()) + 1 if classes is None else classes
    generator = torch.Generator().manual_seed(seed)
    n = len(labels)
    rows = torch.randperm(n, generator=generator)[: round(fraction * n)]
    # y -> (y + u) mod C with u uniform in 1..C-1: a different class, each equally likely
    shift = torch.randint(1, classes, (len(rows),), generator=generator)
    flipped = labels.clone()
    flipped[rows] = (labels[rows] + shift) % classes
    return flipped


def train_wrong_teacher(data, fraction, config=Config(), seed=0, flip_seed=1):
    """A teacher that is confidently wrong on part of the training set: trained with
    ``config.wrong_teacher_epochs`` epochs at ``config.wrong_teacher_lr`` on the training labels
    with ``fraction`` of them flipped (:func:`flip_labels`), until it fits them. Returns
    ``(teacher, flipped labels)``; the students are still taught with the true labels."""
    flipped = flip_labels(data.y_train, fraction, flip_seed, data.classes)
    noisy = dataclasses.replace(data, y_train=flipped)
    teacher_config = dataclasses.replace(
        config, teacher_epochs=config.wrong_teacher_epochs, teacher_lr=config.wrong_teacher_lr
    )
    return train_teacher(noisy, teacher_config, seed), flipped


def expected_calibration_error(probs, labels, bins=15):
    """ECE: the bin-weighted gap between confidence and accuracy over equal-width confidence bins."""
    confidence, prediction = probs.max(1)
    correct = (prediction == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=confidence.dtype)
    ece = 0.0
    for low, high in itertools.pairwise(edges):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            ece += inside.double().mean().item() * abs(
                confidence[inside].double().mean().item() - correct[inside].mean().item()
            )
    return ece


@torch.no_grad()
def evaluate(model, x, y):
    """Test accuracy, negative log-likelihood, ECE, and mean probability on the true class."""
    logits = model(x)
    probs = logits.softmax(1)
    return {
        "accuracy": (logits.argmax(1) == y).double().mean().item(),
        "nll": F.cross_entropy(logits, y).item(),
        "ece": expected_calibration_error(probs, y),
        "p_true": probs[torch.arange(len(y)), y].double().mean().item(),
    }


def resampled_ece(confidence, correct, draws, bins=15):
    """:func:`expected_calibration_error` of many resamples at once: ``confidence`` and ``correct``
    (n,) per test image, ``draws`` (R, n) the images of each resample; returns (R,)."""
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.bucketize(confidence.double(), edges[1:-1])[draws]  # (low, high] bins, as there
    gap = torch.zeros(len(draws), bins, dtype=torch.float64)
    # per bin, sum of (confidence - correct); |sum| / n is that bin's share of the ECE
    gap.scatter_add_(1, which, (confidence.double() - correct.double())[draws])
    return gap.abs().sum(1) / draws.shape[1]


@torch.no_grad()
def sampling_se(model, x, y, resamples=1000, seed=0):
    """How precisely a test set of this size measures each metric of :func:`evaluate`: the
    bootstrap standard error over test images (``resamples`` resamples of the images, drawn by a
    generator seeded with ``seed``), as ``{"se_accuracy", "se_nll", "se_ece", "se_p_true"}``.
    It covers test-set sampling, which the paired comparisons over seeds do not."""
    log_probs = model(x).double().log_softmax(1)
    confidence, prediction = log_probs.exp().max(1)
    correct = (prediction == y).double()
    log_true = log_probs[torch.arange(len(y)), y]
    draws = torch.randint(0, len(y), (resamples, len(y)), generator=torch.Generator().manual_seed(seed))
    return {
        "se_accuracy": correct[draws].mean(1).std().item(),
        "se_nll": (-log_true)[draws].mean(1).std().item(),
        "se_ece": resampled_ece(confidence, correct, draws).std().item(),
        "se_p_true": log_true.exp()[draws].mean(1).std().item(),
    }


def settings(alpha, temperature, betas, soft_betas=(), ours=()):
    """The losses compared: name -> (loss function, kind, beta or None, temperature).

    ``soft_betas`` adds :func:`klloss_kd_soft` (our extension) at ``temperature`` for each beta;
    ``ours`` adds :func:`klloss_kd_part` for each (part, temperature, beta) in it."""
    table = {
        "CE only": (cross_entropy_only, "CE", None, None),
        "KD, T = 1": (plain_kd(alpha, 1.0), "KD", None, 1.0),
        f"KD, T = {temperature:g}": (plain_kd(alpha, temperature), "KD", None, temperature),
    }
    for beta in betas:
        table[f"klloss_v2, beta = {beta:g}"] = (klloss_kd(alpha, beta), "klloss_v2", beta, 1.0)
    for beta in soft_betas:
        table[soft_name(temperature, beta)] = (
            klloss_kd_soft(alpha, beta, temperature),
            "klloss_v2 softened (ours)",
            beta,
            temperature,
        )
    for part, t, beta in ours:
        table[part_name(part, t, beta)] = (klloss_kd_part(alpha, beta, part, t), f"{part} (ours)", beta, t)
    return table


def soft_name(temperature, beta):
    """The name :func:`settings` gives our softened extension."""
    return f"ours: klloss_v2 at T = {temperature:g}, beta = {beta:g}"


def run(
    data,
    teacher,
    seeds,
    betas,
    config=Config(),
    alphas=None,
    soft_betas=(),
    ours=(),
    names=None,
    history=False,
):
    """Train one student per (loss, alpha, seed); return a pandas DataFrame, one row per student.

    Columns: ``loss``, ``kind``, ``beta``, ``temperature``, ``alpha``, ``seed``; the test metrics
    of :func:`evaluate` and their standard errors over test images (:func:`sampling_se`);
    ``train_p_true`` (mean probability on the true class over the training
    set), ``max_logit`` (largest |s| over the training set: a diverging loss shows there),
    ``final_loss`` (mean training loss of the last epoch) and, with ``history=True``,
    ``history`` (the mean training loss of every epoch). ``names`` keeps only those losses.
    CE only does not depend on alpha and is trained once, under the first alpha.
    See ``notebooks/05-real-data.ipynb``.
    """
    import pandas as pd

    alphas = list(alphas or [config.alpha])
    with torch.no_grad():
        teacher_logits = teacher(data.x_train)
    rows = []
    for alpha in alphas:
        for name, (loss_fn, kind, beta, temperature) in settings(
            alpha, config.temperature, betas, soft_betas, ours
        ).items():
            if (name == "CE only" and alpha != alphas[0]) or (names is not None and name not in names):
                continue
            for seed in seeds:
                losses = []
                student = train_student(data, loss_fn, teacher_logits, config, seed, history=losses)
                metrics = evaluate(student, data.x_test, data.y_test)
                metrics.update(sampling_se(student, data.x_test, data.y_test))
                with torch.no_grad():
                    s = student(data.x_train)
                extra = {
                    "train_p_true": s.softmax(1)[torch.arange(len(data.y_train)), data.y_train]
                    .double()
                    .mean()
                    .item(),
                    "max_logit": s.abs().max().item(),
                    "final_loss": losses[-1],
                }
                if history:
                    extra["history"] = losses
                rows.append(
                    {
                        "loss": name,
                        "kind": kind,
                        "beta": beta,
                        "temperature": temperature,
                        "alpha": alpha,
                        "seed": seed,
                        **metrics,
                        **extra,
                    }
                )
    return pd.DataFrame(rows)


def summarise(results):
    """Mean and standard deviation over seeds, one row per (loss, alpha)."""
    metrics = ["accuracy", "nll", "ece", "p_true"]
    grouped = results.groupby(["alpha", "loss"], sort=False)[metrics]
    summary = grouped.mean().join(grouped.std(ddof=1).add_suffix(" std"))
    return summary[[c for m in metrics for c in (m, f"{m} std")]]


def negative_weight_fraction(teacher_logits, labels, beta, offset=ARTICLE_OFFSET):
    """Fraction of (sample, class) weights below zero for this teacher on these labels."""
    z_label = teacher_logits.gather(1, labels.unsqueeze(1))
    weights = (z_label - teacher_logits) / beta + offset
    return (weights < 0).double().mean().item()


def negative_weight_rows(teacher_logits, labels, beta, offset=ARTICLE_OFFSET):
    """Fraction of samples (rows) with at least one negative weight, as a float: the samples on
    which the teacher ranks some class above the label by more than ``offset * beta``, where the
    loss has no lower bound (``notebooks/03-beta-and-offset.ipynb``). The library's
    :func:`klloss.negative_weight_share`, the number to compute before training."""
    return float(negative_weight_share(teacher_logits, labels, beta, offset=offset))


def mixed_optimum(teacher_logits, labels, beta, alpha, offset=ARTICLE_OFFSET):
    r"""The student distribution that minimises :func:`klloss_kd` per sample (free logits):

    .. math::
        q = \frac{t}{\sum_c t_c}, \qquad t = (1-\alpha)\,e_y + \frac{\alpha}{k}\, w \odot p,

    because :math:`(1-\alpha)\mathrm{CE} + \frac{\alpha}{k}\sum_c w_c p_c(\log p_c - \log q_c)` is,
    up to a constant, :math:`-\sum_c t_c \log q_c`. ``beta=inf`` gives plain KD at :math:`T = 1`,
    :math:`t = (1-\alpha) e_y + \alpha p`. With ``alpha=1`` it is notebook 04's
    :math:`q^* = w \odot p / W`. Raises ``ValueError`` when a weight is negative (no minimum).
    See ``notebooks/05-real-data.ipynb``.
    """
    if not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    z = teacher_logits.double()
    w = weight(margin(z, labels), beta, offset)
    if (w < 0).any():
        raise ValueError(
            f"weights must all be >= 0 for a minimiser to exist; the smallest is {w.min().item():.4g}"
        )
    # t = (1 - alpha) e_y + (alpha / k) w p
    target = alpha / offset * w * z.softmax(1)
    target[torch.arange(len(labels)), labels] += 1 - alpha
    # q = t / sum_c t_c
    return target / target.sum(1, keepdim=True)


# ---------------------------------------------------------------- paired statistics over seeds

LEVEL = 0.05
"""The family-wise error rate: within one family of comparisons (one section of notebook 05),
the chance that any "higher", "lower" or "equivalent" verdict is wrong is at most this (Holm)."""

MARGINS = {"accuracy": 0.005, "p_true": 0.005, "nll": 0.01, "ece": 0.003}
"""The equivalence margin of each metric, in its own units (accuracy, p_true and ECE as fractions,
NLL in nats): two losses are called equivalent on a metric when the difference of their means is
shown to lie within plus or minus this (by TOST, Holm-adjusted in :func:`settle`). Each is below
the sampling error of the metric itself on the 540-image test set (``se_*`` in every stored run:
one model's metric, not a paired difference between two models on the same images; notebook 05
asserts it). For accuracy it is also under three test images."""


def paired_differences(results, metric, loss, baseline):
    """``loss`` minus ``baseline`` on ``metric``, seed by seed: a Series indexed by (alpha, seed).

    Both must have been trained on the same seeds; CE only (trained once) is paired with every
    alpha."""
    table = results.pivot_table(index=["alpha", "seed"], columns="loss", values=metric)
    if baseline == "CE only" or loss == "CE only":
        ce = results[results["loss"] == "CE only"].set_index("seed")[metric]
        table["CE only"] = [ce[seed] for seed in table.index.get_level_values("seed")]
    for name in (loss, baseline):
        if name not in table.columns:
            raise ValueError(f"no results for loss {name!r}")
    difference = (table[loss] - table[baseline]).dropna()
    if len(difference) != len(table):
        raise ValueError(f"{loss!r} and {baseline!r} were not trained on the same seeds")
    return difference


def paired_test(differences, *, margin, confidence=0.95):
    r"""Paired differences :math:`d_1..d_n` (one per seed), summarised with Student's t.

    Returns a dict: ``n``, ``mean``, ``sd``; ``ci_low``, ``ci_high``: the ``confidence`` t-interval
    of the mean, :math:`\bar d \pm t_{n-1}\, s/\sqrt n` (exact for normal differences; the
    percentile bootstrap is too narrow at n = 10); ``t`` and ``p``: the two-sided t-test of mean 0;
    ``p_equivalence``: the two one-sided tests (TOST) of a mean outside :math:`\pm` ``margin``,
    the larger of their two p-values; ``above``, ``below``: how many seeds differ either way.

    None of these is adjusted for multiple comparisons: :func:`settle` does that for a family.
    Where every difference is equal (s = 0) t is NaN, ``p`` is 1 if the mean is 0 and 0
    otherwise, ``p_equivalence`` is 0 inside the margin and 1 outside.
    See ``notebooks/05-real-data.ipynb``.
    """
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f"differences must be a 1-d sequence of at least 2 numbers, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("differences must be finite")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if not isinstance(margin, (int, float)) or not margin > 0:
        raise ValueError(f"margin must be a number > 0, got {margin!r}")
    n, mean, sd = len(d), float(d.mean()), float(d.std(ddof=1))
    se = sd / math.sqrt(n)  # standard error of the mean
    if se > 0:
        half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * se  # t_{n-1} s / sqrt(n)
        t = mean / se
        p = float(2 * stats.t.sf(abs(t), n - 1))
        # TOST: H0 mean <= -margin (reject when d is far above it) and H0 mean >= margin
        p_equivalence = max(
            float(stats.t.sf((mean + margin) / se, n - 1)), float(stats.t.cdf((mean - margin) / se, n - 1))
        )
    else:
        half, t = 0.0, math.nan
        p = 1.0 if mean == 0 else 0.0
        p_equivalence = 0.0 if abs(mean) < margin else 1.0
    return {
        "n": n,
        "mean": mean,
        "sd": sd,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "t": t,
        "p": p,
        "p_equivalence": p_equivalence,
        "above": int((d > 0).sum()),
        "below": int((d < 0).sum()),
    }


def holm(p_values):
    """Holm's step-down adjustment of p-values (same order): the i-th smallest is multiplied by
    m - i + 1 (i from 1), made non-decreasing in that order, and capped at 1. Rejecting where the
    adjusted p-value is below a level keeps the family-wise error rate at that level."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError("p_values must be a 1-d sequence of numbers in [0, 1]")
    m = len(p)
    order = np.argsort(p, kind="stable")
    # (m - i + 1) p_(i), then a running maximum so that a larger p never gets a smaller adjusted one
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def compare(results, metric, pairs, *, margin=None, confidence=0.95):
    """:func:`paired_test` for each (loss, baseline) in ``pairs``, per alpha, with the metric's
    margin (``MARGINS[metric]`` unless given): a DataFrame indexed by (alpha, loss, baseline)."""
    import pandas as pd

    margin = MARGINS[metric] if margin is None else margin
    rows = []
    for loss, baseline in pairs:
        difference = paired_differences(results, metric, loss, baseline)
        for alpha, d in difference.groupby(level="alpha"):
            test = paired_test(d.to_numpy(), margin=margin, confidence=confidence)
            rows.append({"alpha": alpha, "loss": loss, "baseline": baseline, **test})
    return pd.DataFrame(rows).set_index(["alpha", "loss", "baseline"])


def settle(family, level=LEVEL):
    """Verdicts for one family of comparisons read together: ``family`` maps a name (a metric, a
    part of the experiment) to a :func:`compare` table. Every p-value of every table is adjusted
    by :func:`holm` over the whole family, the tests of a difference and of equivalence alike.

    Returns the same mapping with columns added: ``p_holm``, ``p_equivalence_holm``, and
    ``verdict``: ``"higher"`` / ``"lower"`` where the adjusted p of a difference is below
    ``level``; ``"equivalent"`` where only the adjusted p of equivalence is; ``"not settled"``
    where neither is. ``within_margin`` says that equivalence survived adjustment: a higher or
    lower verdict with it is a real difference smaller than the margin.
    """
    names = list(family)
    p = np.concatenate([family[name]["p"].to_numpy() for name in names])
    p_eq = np.concatenate([family[name]["p_equivalence"].to_numpy() for name in names])
    adjusted = holm(np.concatenate([p, p_eq]))
    out, start = {}, 0
    for name in names:
        table = family[name].copy()
        stop = start + len(table)
        table["p_holm"] = adjusted[start:stop]
        table["p_equivalence_holm"] = adjusted[len(p) + start : len(p) + stop]
        different = table["p_holm"] < level
        table["within_margin"] = table["p_equivalence_holm"] < level
        table["verdict"] = np.where(
            different,
            np.where(table["mean"] > 0, "higher", "lower"),
            np.where(table["within_margin"], "equivalent", "not settled"),
        )
        out[name], start = table, stop
    return out


# ---------------------------------------------------------------- the stored experiment


@dataclasses.dataclass(frozen=True)
class Plan:
    """What ``make experiments`` trains (with :class:`Config` for how). ``ablation``: the (T, beta)
    at which the clean teacher's students also learn with each part of the identity alone
    (:func:`klloss_kd_part`, "target" and "scale"); ``wrong_ours``: the betas at which the
    students of the teachers with flipped labels (every fraction above 0) also learn with the
    clamped variant and its two parts, at T = 1."""

    seeds: tuple = tuple(range(30))
    betas: tuple = (0.5, 1.5, 5.0, 1000.0)
    alphas: tuple = (0.5, 0.9)
    soft_betas: tuple = (0.5, 1.5, 5.0)
    noise: tuple = (0.0, 0.1, 0.2, 0.4)
    noise_seeds: tuple = tuple(range(10))
    flip_seed: int = 1
    teacher_seed: int = 0
    ablation: tuple = ((1.0, 0.5), (4.0, 0.5), (4.0, 1.5))
    wrong_ours: tuple = (0.5, 1.5)


SUBSET = Plan(
    seeds=(0,),
    betas=(0.5,),
    alphas=(0.5,),
    soft_betas=(0.5,),
    noise=(0.4,),
    noise_seeds=(0,),
    ablation=((4.0, 0.5),),
    wrong_ours=(0.5,),
)
"""The small part of :class:`Plan` that ``tests/test_experiments.py`` re-runs (about a minute)
and compares with the stored numbers."""


SMALL = Plan(
    seeds=tuple(range(5)),
    betas=(1.5,),
    alphas=(0.5, 0.9),
    soft_betas=(),
    noise=(0.4,),
    noise_seeds=tuple(range(5)),
    ablation=(),
    wrong_ours=(),
)
"""The small configuration students run and vary (``make experiments-small``, about a minute on
one thread of a recent x86-64 CPU; stored in :data:`STORED_SMALL`): the core of notebook 05, CE
only, KD at T = 1 and T = 4 and klloss_v2 at beta = 1.5, both alphas, 5 seeds, taught by the
clean teacher and by the teacher trained on 40 % flipped labels. It is a part of :class:`Plan`
(every seed, beta, alpha and fraction is one of its, the flipped labels and the teachers' seeds
are the same), and each student depends only on its loss, alpha, seed and teacher: its numbers
are the full run's for the same student, bit for bit on the same CPU model
(``tests/test_experiments.py``)."""


def _distinct(name, values, ok, what):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}")
    values = tuple(values)
    if not values or len(set(values)) != len(values) or not all(map(ok, values)):
        raise ValueError(f"{name} must be distinct values, at least one, each {what}; got {values!r}")
    return values


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def small_plan(seeds=None, betas=None, alphas=None, flip=None):
    """:data:`SMALL` with some of it changed (``None`` keeps it): ``seeds`` the students' seeds of
    both parts (``seeds`` and ``noise_seeds``), ``betas`` klloss_v2's betas, ``alphas`` the weights
    of the distillation term, ``flip`` the fractions of training labels flipped for the wrong
    teachers (``noise``). ``python -m tools.run_experiments --small --seeds 0-9 --betas 0.5,1.5``
    runs one; the paired tests need at least two seeds."""
    changes = {}
    if seeds is not None:
        seed = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0  # noqa: E731
        changes["seeds"] = changes["noise_seeds"] = _distinct("seeds", seeds, seed, "an int >= 0")
    if betas is not None:
        positive = lambda v: _number(v) and v > 0  # noqa: E731
        changes["betas"] = tuple(map(float, _distinct("betas", betas, positive, "a number > 0")))
    fraction = lambda v: _number(v) and 0 <= v <= 1  # noqa: E731
    if alphas is not None:
        changes["alphas"] = tuple(map(float, _distinct("alphas", alphas, fraction, "a number in [0, 1]")))
    if flip is not None:
        changes["noise"] = tuple(map(float, _distinct("flip", flip, fraction, "a number in [0, 1]")))
    return dataclasses.replace(SMALL, **changes)


def _stored_logits(logits):
    """Float32 logits as lists of the shortest decimals that read back to the same float32."""
    return [[float(str(v)) for v in row] for row in logits.float().numpy()]


def stored_logits(summary, split="train"):
    """A stored teacher's logits on ``split`` ("train", or "test" for the clean teacher), as the
    float32 tensor the teacher computed: ``summary`` is a ``teacher`` entry of the stored file."""
    return torch.tensor(summary[f"logits_{split}"], dtype=torch.float32)


def teacher_summary(teacher, data, labels_seen, betas, test_logits=False):
    """What the stored file keeps of a teacher (see ``data/experiments/README.md``)."""
    with torch.no_grad():
        z = teacher(data.x_train)
        z_test = teacher(data.x_test)
    summary = {
        "test": evaluate(teacher, data.x_test, data.y_test),
        "train_accuracy": (z.argmax(1) == data.y_train).double().mean().item(),
        "train_accuracy_on_labels_seen": (z.argmax(1) == labels_seen).double().mean().item(),
        "train_p_true": z.softmax(1)[torch.arange(len(data.y_train)), data.y_train].double().mean().item(),
        "negative_weight_rows": {f"{b:g}": negative_weight_rows(z, data.y_train, b) for b in betas},
        "logits_train": _stored_logits(z),
    }
    if test_logits:
        summary["logits_test"] = _stored_logits(z_test)
    return summary


def json_rows(frame):
    """A :func:`run` DataFrame as the stored file keeps it: one dict per run, None (not NaN) where
    a column does not apply (JSON has no NaN)."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def run_plan(plan=Plan(), config=Config()):
    """Train everything ``plan`` names; return a JSON-ready dict (no provenance):

    * ``main``: the clean teacher's summary (with its logits on the training and test sets) and
      one row per student (:func:`run`), every seed, every alpha, KD at T = 1 and T, klloss_v2 at
      each beta, our softened extension, and our ablation (``plan.ablation``);
    * ``wrong_teacher``: per fraction of flipped labels, the teacher's summary (with the
      fraction of training rows with a negative weight at each beta, and its training logits) and
      one row per student, with its loss history; above 0 % flipped, also the clamped variant and
      its parts (``plan.wrong_ours``).
    """

    data = load_digits_split(config)
    teacher = train_teacher(data, config, plan.teacher_seed)
    ablation = tuple((part, t, b) for t, b in plan.ablation for part in ("target", "scale"))
    main = run(data, teacher, plan.seeds, plan.betas, config, plan.alphas, plan.soft_betas, ablation)
    summary = teacher_summary(teacher, data, data.y_train, plan.betas, test_logits=True)
    out = {"main": {"teacher": summary, "runs": json_rows(main)}, "wrong_teacher": []}
    for fraction in plan.noise:
        wrong, flipped = train_wrong_teacher(data, fraction, config, plan.teacher_seed, plan.flip_seed)
        ours = tuple((part, 1.0, b) for b in plan.wrong_ours for part in PARTS) if fraction > 0 else ()
        runs = run(data, wrong, plan.noise_seeds, plan.betas, config, plan.alphas, ours=ours, history=True)
        out["wrong_teacher"].append(
            {
                "fraction": fraction,
                "teacher": teacher_summary(wrong, data, flipped, plan.betas),
                "runs": json_rows(runs),
            }
        )
    return out


def provenance(config, plan, seconds):
    """Where, when and with what the stored results were produced."""
    import sklearn

    cpu = _cpu_model()
    pins = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_seconds": round(seconds, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "machine": platform.machine(),
        "cpu": cpu,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "environment": {name: os.environ.get(name) for name in pins},
        "config": dataclasses.asdict(config),
        "plan": dataclasses.asdict(plan),
    }


def to_json(record):
    """``record`` as JSON text, exact (floats round-trip), one line per flat object (a run, a
    table of scalars), so that a diff of two stored results reads row by row."""

    def flat(value):
        scalar = lambda v: not isinstance(v, (dict, list))  # noqa: E731
        items = value.values() if isinstance(value, dict) else value
        return all(scalar(v) or (isinstance(v, list) and all(map(scalar, v))) for v in items)

    def dump(value, indent):
        if not isinstance(value, (dict, list)) or flat(value):
            return json.dumps(value, allow_nan=False)
        pad, inner = " " * indent, " " * (indent + 1)
        if isinstance(value, dict):
            body = ",\n".join(f"{inner}{json.dumps(k)}: {dump(v, indent + 1)}" for k, v in value.items())
            return "{\n" + body + "\n" + pad + "}"
        body = ",\n".join(inner + dump(v, indent + 1) for v in value)
        return "[\n" + body + "\n" + pad + "]"

    return dump(record, 0) + "\n"


def load_stored(path=STORED):
    """The stored experiment written by ``make experiments``: {"provenance", "main", "wrong_teacher"}.
    Read by ``notebooks/05-real-data.ipynb``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def frame(rows):
    """Stored rows as a DataFrame (None becomes NaN)."""
    import pandas as pd

    return pd.DataFrame(rows)


def seeds_everything(seed):
    """Seed torch and NumPy (the notebook calls this once, visibly)."""
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (seeds NumPy's global generator on purpose)
