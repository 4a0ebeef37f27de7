r"""Distillation on real data: scikit-learn's 8x8 handwritten digits (shipped with the package,
no download), a teacher MLP and a much smaller student trained with cross-entropy alone, with
plain KD, or with klloss_v2 across beta.

How the terms are combined, for every distillation loss here:

.. math::
    \mathcal{L} = (1 - \alpha)\,\mathrm{CE}(s, y) + \alpha\, D(z, s, y),

with :math:`D` = :math:`T^2\,\mathrm{KL}(p_T \| q_T)` for plain KD at temperature :math:`T`, and
:math:`D` = ``klloss_v2(z, s, z, y, beta) / k`` for klloss_v2. Dividing by the offset
:math:`k = 8` makes the large-beta limit exactly :math:`\mathrm{KL}(p \| q)`, plain KD at
:math:`T = 1`, so :math:`\alpha` means the same for every loss and a difference between them
comes from the margin weighting alone.

Our extension, not the article's loss (:func:`klloss_kd_soft`): the article's weights applied
to teacher and student distributions softened by a temperature :math:`T`,
:math:`D = T^2\,\mathrm{klloss\_v2}(z, s/T, z/T, y, \beta)/k`, which tends to plain KD at
:math:`T` as :math:`\beta \to \infty`.

The full experiment (many seeds, teachers trained on flipped labels) takes minutes, so
``make experiments`` (``tools/run_experiments.py``) runs it under the pinned environment of
``course/nbenv.py`` and stores it, with its provenance, in ``data/experiments/``; the notebook
reads it. Paired statistics over seeds: :func:`paired_test`. Walked through in
``notebooks/05-real-data.ipynb``.
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

from klloss import ARTICLE_OFFSET, klloss_v2, margin, weight

from . import ROOT

EXPERIMENTS_DIR = ROOT / "data" / "experiments"
STORED = EXPERIMENTS_DIR / "digits.json"


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


def klloss_kd(alpha, beta, offset=ARTICLE_OFFSET):
    r""":math:`(1-\alpha)\,\mathrm{CE} + \alpha\,\mathrm{klloss\_v2}/k` (see the module docstring)."""

    def loss(student_logits, teacher_logits, labels):
        distill = klloss_v2(teacher_logits, student_logits, teacher_logits, labels, beta, offset=offset)
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
        )
        # (1 - alpha) CE + alpha T^2 D / k
        return (1 - alpha) * F.cross_entropy(
            student_logits, labels
        ) + alpha * temperature**2 * distill / offset

    return loss


def train(model, loss_fn, data, teacher_logits, config, seed, history=None):
    """Adam on mini-batches, reshuffled each epoch by a generator seeded with ``seed``.

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
            loss = loss_fn(model(data.x_train[batch]), teacher_logits[batch], data.y_train[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        if history is not None:
            history.append(total / n)
    return model


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


def settings(alpha, temperature, betas, soft_betas=()):
    """The losses compared: name -> (loss function, kind, beta or None, temperature).

    ``soft_betas`` adds :func:`klloss_kd_soft` (our extension) at ``temperature`` for each beta."""
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
    return table


def soft_name(temperature, beta):
    """The name :func:`settings` gives our softened extension."""
    return f"ours: klloss_v2 at T = {temperature:g}, beta = {beta:g}"


def run(data, teacher, seeds, betas, config=Config(), alphas=None, soft_betas=(), names=None, history=False):
    """Train one student per (loss, alpha, seed); return a pandas DataFrame, one row per student.

    Columns: ``loss``, ``kind``, ``beta``, ``temperature``, ``alpha``, ``seed``; the test metrics
    of :func:`evaluate`; ``train_p_true`` (mean probability on the true class over the training
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
            alpha, config.temperature, betas, soft_betas
        ).items():
            if (name == "CE only" and alpha != alphas[0]) or (names is not None and name not in names):
                continue
            for seed in seeds:
                torch.manual_seed(seed)
                student = mlp(data.x_train.shape[1], config.student_hidden, data.classes)
                losses = []
                train(student, loss_fn, data, teacher_logits, config, seed, history=losses)
                metrics = evaluate(student, data.x_test, data.y_test)
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
    """Fraction of samples (rows) with at least one negative weight: the samples on which the
    teacher ranks some class above the label by more than ``offset * beta``, where the loss has
    no lower bound (``notebooks/03-beta-and-offset.ipynb``)."""
    # w = (z_y - z) / beta + k; a row counts when min_c w_c < 0
    w = weight(margin(teacher_logits, labels), beta, offset)
    return (w < 0).any(dim=1).double().mean().item()


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

TOLERANCE = 1e-4
"""A paired difference counts as above or below zero only beyond this (absolute, in the metric's
units). Smaller differences are ties: their sign can be decided by round-off, which differs from
one CPU to another. Test accuracy moves in steps of one test image (1/540), far above it."""

MARGIN = 0.005
"""The equivalence margin: two losses are called equivalent on a metric when the whole
confidence interval of their mean paired difference lies within plus or minus this (half a
percentage point: under three of the 540 test images for accuracy)."""


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


def paired_test(
    differences, *, margin=MARGIN, tolerance=TOLERANCE, confidence=0.95, resamples=10_000, seed=0
):
    """Summary of paired differences d_1..d_n (one per seed): is the mean difference settled?

    Returns a dict with ``n``, ``mean``; ``ci_low``, ``ci_high``: a percentile bootstrap
    ``confidence`` interval of the mean (``resamples`` resamples of the seeds, drawn by a
    generator seeded with ``seed``, so the interval is the same on every run); ``t`` and ``p``:
    the paired t-test of mean zero (NaN when every difference is equal, where t is undefined);
    ``above``, ``below``: how many seeds differ by more than ``tolerance`` either way; and
    ``verdict``:

    * ``"higher"`` / ``"lower"``: the interval excludes zero (by more than round-off: an
      interval entirely within plus or minus ``tolerance`` is ``"equivalent"``);
    * ``"equivalent"``: it does not, but lies within plus or minus ``margin``;
    * ``"not settled"``: neither, more seeds are needed.

    A higher or lower verdict whose interval also lies within ``margin`` is a real difference
    smaller than the margin; ``within_margin`` says so. See ``notebooks/05-real-data.ipynb``.
    """
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f"differences must be a 1-d sequence of at least 2 numbers, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("differences must be finite")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n, mean = len(d), float(d.mean())
    # bootstrap: the mean of n seeds drawn with replacement, resamples times
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    means = d[draws].mean(axis=1)
    low, high = (float(v) for v in np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2]))
    spread = float(d.std(ddof=1))
    if spread > 0:
        # t = mean / (sd / sqrt(n)), two-sided, n - 1 degrees of freedom
        t = mean / (spread / math.sqrt(n))
        p = float(2 * stats.t.sf(abs(t), n - 1))
    else:
        t = p = math.nan
    if max(abs(low), abs(high)) <= tolerance:
        verdict = "equivalent"  # the whole interval is at round-off level: no sign is claimed
    elif low > 0:
        verdict = "higher"
    elif high < 0:
        verdict = "lower"
    elif -margin < low and high < margin:
        verdict = "equivalent"
    else:
        verdict = "not settled"
    return {
        "n": n,
        "mean": mean,
        "ci_low": low,
        "ci_high": high,
        "t": t,
        "p": p,
        "above": int((d > tolerance).sum()),
        "below": int((d < -tolerance).sum()),
        "within_margin": bool(-margin < low and high < margin),
        "verdict": verdict,
    }


def compare(results, metric, pairs, **options):
    """:func:`paired_test` for each (loss, baseline) in ``pairs``, per alpha: a DataFrame indexed
    by (alpha, loss, baseline)."""
    import pandas as pd

    rows = []
    for loss, baseline in pairs:
        difference = paired_differences(results, metric, loss, baseline)
        for alpha, d in difference.groupby(level="alpha"):
            rows.append(
                {"alpha": alpha, "loss": loss, "baseline": baseline, **paired_test(d.to_numpy(), **options)}
            )
    return pd.DataFrame(rows).set_index(["alpha", "loss", "baseline"])


# ---------------------------------------------------------------- the stored experiment


@dataclasses.dataclass(frozen=True)
class Plan:
    """What ``make experiments`` trains (with :class:`Config` for how)."""

    seeds: tuple = tuple(range(30))
    betas: tuple = (0.5, 1.5, 5.0, 1000.0)
    alphas: tuple = (0.5, 0.9)
    soft_betas: tuple = (0.5, 1.5, 5.0)
    noise: tuple = (0.0, 0.1, 0.2, 0.4)
    noise_seeds: tuple = tuple(range(10))
    flip_seed: int = 1
    teacher_seed: int = 0


SUBSET = Plan(seeds=(0,), betas=(0.5,), alphas=(0.5,), soft_betas=(0.5,), noise=(0.4,), noise_seeds=(0,))
"""The small part of :class:`Plan` that ``tests/test_experiments.py`` re-runs (seconds) and
compares with the stored numbers."""


def _teacher_summary(teacher, data, labels_seen, betas):
    with torch.no_grad():
        z = teacher(data.x_train)
    return {
        "test": evaluate(teacher, data.x_test, data.y_test),
        "train_accuracy": (z.argmax(1) == data.y_train).double().mean().item(),
        "train_accuracy_on_labels_seen": (z.argmax(1) == labels_seen).double().mean().item(),
        "train_p_true": z.softmax(1)[torch.arange(len(data.y_train)), data.y_train].double().mean().item(),
        "negative_weight_rows": {f"{b:g}": negative_weight_rows(z, data.y_train, b) for b in betas},
    }


def run_plan(plan=Plan(), config=Config()):
    """Train everything ``plan`` names; return a JSON-ready dict (no provenance):

    * ``main``: the clean teacher's summary and one row per student (:func:`run`), every seed,
      every alpha, KD at T = 1 and T, klloss_v2 at each beta, and our softened extension;
    * ``wrong_teacher``: per fraction of flipped labels, the teacher's summary (with the
      fraction of training rows with a negative weight at each beta) and one row per student,
      with its loss history.
    """

    def rows(frame):
        # None, not NaN, where a column does not apply: JSON has no NaN
        return [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")
        ]

    data = load_digits_split(config)
    teacher = train_teacher(data, config, plan.teacher_seed)
    main = run(data, teacher, plan.seeds, plan.betas, config, plan.alphas, plan.soft_betas)
    out = {
        "main": {"teacher": _teacher_summary(teacher, data, data.y_train, plan.betas), "runs": rows(main)},
        "wrong_teacher": [],
    }
    for fraction in plan.noise:
        wrong, flipped = train_wrong_teacher(data, fraction, config, plan.teacher_seed, plan.flip_seed)
        runs = run(data, wrong, plan.noise_seeds, plan.betas, config, plan.alphas, history=True)
        out["wrong_teacher"].append(
            {
                "fraction": fraction,
                "teacher": _teacher_summary(wrong, data, flipped, plan.betas),
                "runs": rows(runs),
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
