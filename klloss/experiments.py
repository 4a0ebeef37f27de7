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
comes from the margin weighting alone. Walked through in ``notebooks/05-real-data.ipynb``.
"""

import dataclasses
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .loss import ARTICLE_OFFSET, klloss_v2


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


def train(model, loss_fn, data, teacher_logits, config, seed):
    """Adam on mini-batches, reshuffled each epoch by a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    n = len(data.y_train)
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, config.batch_size):
            batch = order[start : start + config.batch_size]
            loss = loss_fn(model(data.x_train[batch]), teacher_logits[batch], data.y_train[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model


def train_teacher(data, config=Config(), seed=0):
    """The teacher: a wide MLP trained with cross-entropy."""
    torch.manual_seed(seed)
    teacher = mlp(data.x_train.shape[1], config.teacher_hidden, data.classes)
    placeholder = torch.zeros(len(data.y_train), data.classes)
    teacher_config = dataclasses.replace(config, epochs=config.teacher_epochs, lr=config.teacher_lr)
    train(teacher, cross_entropy_only, data, placeholder, teacher_config, seed)
    return teacher.eval()


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


def settings(alpha, temperature, betas):
    """The losses compared: name -> (loss function, beta or nan)."""
    table = {
        "CE only": (cross_entropy_only, math.nan),
        "KD, T = 1": (plain_kd(alpha, 1.0), math.nan),
        f"KD, T = {temperature:g}": (plain_kd(alpha, temperature), math.nan),
    }
    for beta in betas:
        table[f"klloss_v2, beta = {beta:g}"] = (klloss_kd(alpha, beta), beta)
    return table


def run(data, teacher, seeds, betas, config=Config(), alphas=None):
    """Train one student per (loss, alpha, seed); return a pandas DataFrame of test metrics.
    See ``notebooks/05-real-data.ipynb``."""
    import pandas as pd

    with torch.no_grad():
        teacher_logits = teacher(data.x_train)
    rows = []
    for alpha in alphas or [config.alpha]:
        for name, (loss_fn, beta) in settings(alpha, config.temperature, betas).items():
            if name == "CE only" and alpha != (alphas or [config.alpha])[0]:
                continue  # CE only does not depend on alpha
            for seed in seeds:
                torch.manual_seed(seed)
                student = mlp(data.x_train.shape[1], config.student_hidden, data.classes)
                train(student, loss_fn, data, teacher_logits, config, seed)
                metrics = evaluate(student, data.x_test, data.y_test)
                rows.append({"loss": name, "beta": beta, "alpha": alpha, "seed": seed, **metrics})
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


def seeds_everything(seed):
    """Seed torch and NumPy (the notebook calls this once, visibly)."""
    torch.manual_seed(seed)
    # the global generator on purpose: it is what np.random.* and random_state=None draw from
    np.random.seed(seed)  # noqa: NPY002
