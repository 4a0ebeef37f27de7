# %% [markdown]
# # 05 · Does it help? Distillation on real data
#
# *A teacher and a much smaller student on scikit-learn's handwritten digits: cross-entropy alone, plain KD, and klloss_v2 across β, five seeds each.*
#
# The article never trains anything with its loss. Here a student learns from a teacher on real data that ships with scikit-learn (8×8 images of handwritten digits, no download), and we compare:
#
# - **CE only**: the student learns from the labels alone;
# - **plain KD** (Hinton et al.): $(1-\alpha)\,\mathrm{CE} + \alpha\,T^2\,\mathrm{KL}(p_T \| q_T)$, at $T = 1$ and at the customary $T = 4$;
# - **klloss_v2**: $(1-\alpha)\,\mathrm{CE} + \alpha\,\mathrm{klloss\_v2}(z, s, z, y, \beta)/k$ for several β.
#
# **How the terms are combined, and why.** The loss is divided by its offset $k = 8$ so that as β → ∞ its term becomes exactly KL(p ‖ q), plain KD at $T = 1$ (notebook 03). Then $\alpha$ means the same for every loss, and whatever separates klloss_v2 from KD at $T = 1$ is the margin weighting itself. We run two mixing weights, $\alpha = 0.5$ and $\alpha = 0.9$, to see whether the conclusion depends on it.
#
# Everything is seeded and runs on one thread, so every number below is the same on every run. The README lists how long it takes, as measured when the notebooks were last refreshed.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

import klloss
from klloss import analysis
from klloss import experiments as ex

ex.seeds_everything(0)  # every run below also seeds its own generator from its seed
pd.set_option("display.precision", 4)
config = ex.Config()
SEEDS = range(5)
BETAS = [0.5, 1.5, 5.0, 1000.0]
ALPHAS = [0.5, 0.9]
print(config)

# %% [markdown]
# ## Data, teacher and student
#
# A fixed, stratified 70/30 split; features standardised on the training part. The teacher is a one-hidden-layer MLP with a wide hidden layer; the student has a hidden layer of a few units, a small fraction of the teacher's parameters.

# %%
data = ex.load_digits_split(config)
teacher = ex.train_teacher(data, config)
student_size = ex.count_parameters(ex.mlp(data.x_train.shape[1], config.student_hidden, data.classes))
teacher_metrics = ex.evaluate(teacher, data.x_test, data.y_test)
print(f"train {tuple(data.x_train.shape)}, test {tuple(data.x_test.shape)}, {data.classes} classes")
print(f"teacher: {ex.count_parameters(teacher)} parameters; student: {student_size} parameters")
print("teacher on the test set:", {k: round(v, 4) for k, v in teacher_metrics.items()})
with torch.no_grad():
    teacher_train_logits = teacher(data.x_train)
train_accuracy = (teacher_train_logits.argmax(1) == data.y_train).double().mean().item()
print(f"teacher accuracy on the training set: {train_accuracy:.4f}")
assert teacher_metrics["accuracy"] > 0.95 and student_size < ex.count_parameters(teacher) / 10

# %% [markdown]
# **Negative weights?** Notebook 03 showed that a class the teacher ranks above the label by more than $k\beta$ gets a negative weight, which makes the loss unbounded below. That can only happen on training samples the teacher gets wrong. Here:

# %%
for beta in BETAS:
    fraction = ex.negative_weight_fraction(teacher_train_logits, data.y_train, beta)
    print(f"beta = {beta:>6g}: fraction of negative weights on the training set = {fraction:.4f}")
    assert fraction == 0 or train_accuracy < 1

# %% [markdown]
# ## Training the students
#
# One student per (loss, α, seed): the same architecture, initialisation seed, mini-batch order and optimiser (Adam) for every loss.

# %%
results = ex.run(data, teacher, seeds=SEEDS, betas=BETAS, config=config, alphas=ALPHAS)
summary = ex.summarise(results)
display(summary)

# %% [markdown]
# ## Accuracy and confidence against β

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), constrained_layout=True)
colours = {0.5: "tab:blue", 0.9: "tab:orange"}
for alpha in ALPHAS:
    rows = summary.loc[alpha]
    klrows = rows[rows.index.str.startswith("klloss_v2")]
    shift = 1.08 if alpha == ALPHAS[1] else 1 / 1.08  # side by side, so the error bars do not overlap
    betas = [float(name.split("= ")[1]) * shift for name in klrows.index]
    for ax, metric in zip(axes, ["accuracy", "p_true"]):
        ax.errorbar(betas, klrows[metric], yerr=klrows[f"{metric} std"], marker="o", capsize=3,
                    color=colours[alpha], label=f"klloss_v2, α = {alpha}")
        for name, style in [("KD, T = 1", "--"), (f"KD, T = {config.temperature:g}", ":")]:
            ax.axhline(rows.loc[name, metric], color=colours[alpha], linestyle=style, linewidth=1,
                       label=f"{name}, α = {alpha}")
axes[1].axhline(teacher_metrics["p_true"], color="crimson", linewidth=1.5, label="teacher")
for ax, metric in zip(axes, ["accuracy", "p_true"]):
    ax.axhline(summary.loc[(ALPHAS[0], "CE only"), metric], color="black", linewidth=1, label="CE only")
    ax.set(xscale="log", xlabel="β", ylabel={"accuracy": "test accuracy", "p_true": "mean p(true class), test"}[metric])
    low, high = ax.get_ylim()
    ax.set_ylim(low, high + 0.08 * (high - low))
axes[0].set_title("test accuracy (mean ± std over 5 seeds)")
axes[1].set_title("student confidence on the true class")
axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
print("saved", klloss.plotting.save(fig, "05-accuracy-and-confidence-vs-beta"))
plt.show()


# %% [markdown]
# ## Is any difference real?
#
# Every loss used the same five seeds, so each klloss_v2 student has a twin trained with KD at $T = 1$ (its β → ∞ limit) and a twin trained with KD at $T = 4$. Paired differences, seed by seed, are the fair comparison: how many of the five seeds favour klloss_v2, and the mean difference against the seed-to-seed spread.

# %%
def paired(metric, baseline):
    table = results.pivot_table(index=["alpha", "seed"], columns="loss", values=metric)
    rows = []
    for alpha in ALPHAS:
        for beta in BETAS:
            diff = table.loc[alpha, f"klloss_v2, beta = {beta:g}"] - table.loc[alpha, baseline]
            rows.append({"alpha": alpha, "beta": beta, "mean difference": diff.mean(), "std": diff.std(ddof=1),
                         "seeds above": int((diff > 0).sum()), "seeds below": int((diff < 0).sum())})
    return pd.DataFrame(rows).set_index(["alpha", "beta"]).round(4)

accuracy_vs_kd1 = paired("accuracy", "KD, T = 1")
accuracy_vs_kd4 = paired("accuracy", f"KD, T = {config.temperature:g}")
confidence_vs_kd1 = paired("p_true", "KD, T = 1")
display(Markdown("**klloss_v2 minus KD (T = 1), test accuracy**"), accuracy_vs_kd1)
display(Markdown(f"**klloss_v2 minus KD (T = {config.temperature:g}), test accuracy**"), accuracy_vs_kd4)
display(Markdown("**klloss_v2 minus KD (T = 1), mean probability on the true class**"), confidence_vs_kd1)

# %% [markdown]
# ## Does the student end less confident, as notebook 04 predicts?
#
# Notebook 04 showed that the optimum of the klloss_v2 term alone is $q^* = w \odot p / W$, which puts less mass on the true label than the teacher does, more so for small β. Over the training set, that predicts the student's confidence on the true class relative to the teacher's. The combined loss also has a cross-entropy term pulling the other way, so the observed effect should be smaller than the prediction; its *direction* is what we check.

# %%
rows = []
for beta in BETAS:
    q_star = analysis.stationary_student(teacher_train_logits, teacher_train_logits, data.y_train, beta)
    p = teacher_train_logits.softmax(1)
    index = torch.arange(len(data.y_train))
    rows.append({"beta": beta, "teacher p_y (train)": p[index, data.y_train].mean().item(),
                 "optimum q*_y (train)": q_star[index, data.y_train].mean().item()})
prediction = pd.DataFrame(rows).set_index("beta")
prediction["predicted ratio"] = prediction["optimum q*_y (train)"] / prediction["teacher p_y (train)"]
display(prediction)
assert (prediction["predicted ratio"] <= 1).all() and prediction["predicted ratio"].is_monotonic_increasing

# %%
observed = confidence_vs_kd1.reset_index()
smallest = observed[observed["beta"] == min(BETAS)]
display(Markdown("**At the smallest β: klloss_v2 minus KD (T = 1), mean probability on the true class**"),
        smallest.set_index("alpha"))
same_direction = bool((smallest["mean difference"] < 0).all())
print("observed in the predicted direction (less confident) for every alpha:", same_direction)
print("every one of the seeds, for every alpha:", bool((smallest["seeds below"] == len(SEEDS)).all()))
print("student (any loss) less confident than the teacher on the test set:",
      bool((results["p_true"] < teacher_metrics["p_true"]).all()))

# %% [markdown]
# ## What the numbers show
#
# The conclusion is read off the tables above, computed from them here so that it cannot drift from them:

# %%
best = summary["accuracy"].idxmax()
kd4 = {alpha: summary.loc[(alpha, f"KD, T = {config.temperature:g}"), "accuracy"] for alpha in ALPHAS}
kl_best = {alpha: summary.loc[alpha].filter(like="klloss_v2", axis=0)["accuracy"].max() for alpha in ALPHAS}
spread = results.groupby(["alpha", "loss"])["accuracy"].std().median()
print(f"highest mean test accuracy: {best[1]} (alpha = {best[0]}), {summary.loc[best, 'accuracy']:.4f}")
for alpha in ALPHAS:
    print(f"alpha = {alpha}: best klloss_v2 {kl_best[alpha]:.4f} vs KD (T = {config.temperature:g}) {kd4[alpha]:.4f}; "
          f"klloss_v2 vs KD (T = 1), largest |mean difference| {accuracy_vs_kd1.loc[alpha, 'mean difference'].abs().max():.4f}")
print(f"typical seed-to-seed standard deviation of accuracy: {spread:.4f}")
within_noise = bool((accuracy_vs_kd1["mean difference"].abs() <= spread).all())
print("every klloss_v2 vs KD (T = 1) accuracy difference within one seed-to-seed std:", within_noise)
# the prose below states these; if a rerun ever changed them, this cell fails instead of the text going stale
assert within_noise and same_direction
assert best[1] == f"KD, T = {config.temperature:g}" and all(kl_best[a] < kd4[a] for a in ALPHAS)

# %% [markdown]
# Read with the printed lines above:
#
# - **Against plain KD at the same temperature ($T = 1$)**, klloss_v2's accuracy differences are at the level of the seed-to-seed spread for every β and both mixing weights (the last printed line says whether all of them are). On this data, the margin weighting neither helps nor hurts accuracy measurably.
# - **Plain KD at $T = 4$** is the loss to beat, and no klloss_v2 setting reached it (asserted above). klloss_v2 has no temperature, and the article does not add one.
# - **Confidence** moves the way notebook 04 predicts: with small β the student puts less probability on the true class than its KD twin, by much less than the pure-klloss optimum predicts, because cross-entropy pulls the other way.
#
# So, to a practitioner who found the article: on this benchmark klloss_v2 behaves like plain KD at $T = 1$ with slightly lower confidence, and does not beat ordinary KD with a temperature. A larger model or dataset could differ; this notebook is the recipe for checking.
