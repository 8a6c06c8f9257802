"""What people read after a training run: the training curves and the printed summary."""

import os

from keras_qa.evaluation.calibrating import calibration_line
from keras_qa.evaluation.squad_metrics import exact_match


def plot_history(steps, path, reliability=None):
    """Plot loss and accuracies against the training step (running means within each epoch), and
    beside them the eval answers' reliability diagram when given.

    Args:
        steps: the step logs a run kept (`{"step", "epoch", "loss", ...}` each).
        path: the PNG to write; it is moved into place whole.
        reliability: `keras_qa.text.calibration.reliability`'s bins of the eval answers, or None.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if reliability else 2
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4))
    loss_axis, accuracy_axis = axes[:2]
    if reliability:
        plot_reliability(axes[2], reliability)
    x = [entry["step"] for entry in steps]
    for axis, keys in (
        (loss_axis, ("loss", "start_logits_loss", "end_logits_loss")),
        (accuracy_axis, ("exact_span_accuracy", "start_logits_accuracy", "end_logits_accuracy")),
    ):
        for key in keys:
            if steps and key in steps[0]:
                axis.plot(x, [entry[key] for entry in steps], label=key)
        if axis.lines:
            axis.legend()
    epoch_starts = [b["step"] for a, b in zip(steps, steps[1:]) if b["epoch"] != a["epoch"]]
    for axis in (loss_axis, accuracy_axis):
        for step in epoch_starts:
            axis.axvline(step, color="grey", linewidth=0.8, linestyle=":")
    loss_axis.set(title="training loss (running mean in each epoch)", xlabel="step")
    accuracy_axis.set(title="training accuracy (running mean in each epoch)", xlabel="step")
    figure.tight_layout()
    temporary = path + ".partial.png"
    figure.savefig(temporary, dpi=100)
    plt.close(figure)
    os.replace(temporary, path)


def plot_reliability(axis, bins):
    """A reliability diagram on `axis`: each score bin's share of right answers against its mean
    score, the diagonal being perfect calibration; bar labels give the answers per bin."""
    filled = [row for row in bins if row["answers"]]
    centres = [(row["low"] + row["high"]) / 2 for row in filled]
    width = bins[0]["high"] - bins[0]["low"]
    bars = axis.bar(
        centres, [row["accuracy"] for row in filled], width=0.9 * width, label="share right"
    )
    axis.bar_label(bars, labels=[str(row["answers"]) for row in filled], fontsize=7)
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    axis.plot(centres, [row["mean_score"] for row in filled], "k.", label="mean score")
    axis.set(
        title="eval answers: reliability (answers per bin on the bars)",
        xlabel="score",
        ylabel="share exactly right",
        xlim=(0, 1),
        ylim=(0, 1.05),
    )
    axis.legend(loc="upper left")


def summary(metrics, output_dir):
    """The lines a run prints at its end, from its `metrics.json` content.

    Example:
    >>> print(summary({"backend": "jax", "dtype_policy": "float32", "train_windows": 1000,
    ...     "train_seconds": 50.0, "train_windows_per_second": 20.0, "data_wait_share": 0.001,
    ...     "wall_seconds": 60.0}, "runs/x"))
    backend jax, float32: trained on 1,000 windows in 50 s (20.0 windows/s; 0.10% of it waiting for batches)
    wall time 60 s; outputs in runs/x
    """
    lines = [
        f"backend {metrics['backend']}, {metrics['dtype_policy']}: trained on "
        f"{metrics['train_windows']:,} windows in {metrics['train_seconds']:.0f} s "
        f"({metrics['train_windows_per_second']:.1f} windows/s; "
        f"{100 * metrics['data_wait_share']:.2f}% of it waiting for batches)"
    ]
    if "eval" in metrics:
        scores = metrics["eval"]
        name = "eval" if scores["squad_version"] == 1 else "eval (SQuAD v2.0)"
        lines.append(
            f"{name}: EM {exact_match(scores):.2f}  F1 {scores['f1']:.2f} on "
            f"{scores['examples']:,} questions ({scores['seconds']:.0f} s)"
        )
        if scores.get("calibration"):
            lines.append(calibration_line(scores["calibration"]))
    lines.append(f"wall time {metrics['wall_seconds']:.0f} s; outputs in {output_dir}")
    return "\n".join(lines)
