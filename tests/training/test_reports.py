import os

import pytest

from keras_qa.evaluation.squad_metrics import squad_score
from keras_qa.training.reports import plot_history, summary
from tests.conftest import make_example

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def step_logs(epochs, steps_per_epoch):
    """Step logs as a run keeps them: a global step, the epoch and running means."""
    logs = []
    for epoch in range(1, epochs + 1):
        for step_in_epoch in range(1, steps_per_epoch + 1):
            step = (epoch - 1) * steps_per_epoch + step_in_epoch
            logs.append(
                {
                    "step": step,
                    "epoch": epoch,
                    "loss": 5.0 / step,
                    "start_logits_loss": 4.0 / step,
                    "end_logits_loss": 6.0 / step,
                    "exact_span_accuracy": step / 20,
                    "start_logits_accuracy": step / 15,
                    "end_logits_accuracy": step / 16,
                }
            )
    return logs


@pytest.fixture
def figures(monkeypatch):
    """The figures `plot_history` closes, kept for inspection."""
    import matplotlib.pyplot as plt

    closed, close = [], plt.close

    def keep(figure=None):
        closed.append(figure)
        close(figure)

    monkeypatch.setattr(plt, "close", keep)
    return closed


@pytest.fixture
def replacements(monkeypatch):
    """The moves `plot_history` makes, each with the first bytes of the file moved."""
    import keras_qa.training.reports

    moves, replace = [], os.replace

    def recording_replace(source, destination):
        with open(source, "rb") as file:
            moves.append((source, destination, file.read(8)))
        replace(source, destination)

    monkeypatch.setattr(keras_qa.training.reports.os, "replace", recording_replace)
    return moves


def assert_whole_png_alone(path):
    with open(path, "rb") as file:
        assert file.read(8) == PNG_SIGNATURE
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # no .partial left


def test_an_empty_history_still_writes_a_png(tmp_path, figures, replacements):
    path = str(tmp_path / "curves.png")
    plot_history([], path)
    assert_whole_png_alone(path)
    (figure,) = figures
    assert all(not axis.lines and axis.get_legend() is None for axis in figure.axes)
    ((source, destination, head),) = replacements
    assert destination == path and head == PNG_SIGNATURE
    assert os.path.dirname(source) == str(tmp_path) and source != path


def test_two_epochs_are_plotted_with_a_marker_where_the_second_begins(
    tmp_path, figures, replacements
):
    path = str(tmp_path / "curves.png")
    (tmp_path / "curves.png").write_bytes(b"an older plot")
    steps = step_logs(epochs=2, steps_per_epoch=3)
    plot_history(steps, path)
    assert_whole_png_alone(path)
    # Written beside the target under another name, then moved over the old file in one step.
    ((source, destination, head),) = replacements
    assert destination == path and head == PNG_SIGNATURE
    assert os.path.dirname(source) == str(tmp_path) and source != path

    (figure,) = figures
    loss_axis, accuracy_axis = figure.axes
    for axis, keys in (
        (loss_axis, ["loss", "start_logits_loss", "end_logits_loss"]),
        (accuracy_axis, ["exact_span_accuracy", "start_logits_accuracy", "end_logits_accuracy"]),
    ):
        curves = [line for line in axis.lines if not line.get_label().startswith("_")]
        assert [line.get_label() for line in curves] == keys
        for line, key in zip(curves, keys):
            assert list(line.get_xdata()) == [entry["step"] for entry in steps]
            assert list(line.get_ydata()) == pytest.approx([entry[key] for entry in steps])
        markers = [line for line in axis.lines if line not in curves]
        assert [list(line.get_xdata()) for line in markers] == [[4, 4]]  # step 4 starts epoch 2
        assert axis.get_legend() is not None


def test_only_the_logged_metrics_are_plotted(tmp_path, figures):
    steps = [{"step": s, "epoch": 1, "loss": 1.0 / s} for s in (1, 2, 3)]
    plot_history(steps, str(tmp_path / "curves.png"))
    loss_axis, accuracy_axis = figures[0].axes
    assert [line.get_label() for line in loss_axis.lines] == ["loss"]  # one epoch: no marker
    assert list(accuracy_axis.lines) == [] and accuracy_axis.get_legend() is None


def run_metrics(scores):
    return {
        "backend": "jax",
        "dtype_policy": "mixed_bfloat16",
        "train_windows": 88_524,
        "train_seconds": 1234.4,
        "train_windows_per_second": 71.72,
        "data_wait_share": 0.0123,
        "wall_seconds": 1300.6,
        "eval": scores | {"examples": 10_570, "seconds": 41.6},
    }


EXAMPLES = [
    make_example("the cat ran to paris .", "where did the cat run ?", "paris", qid="a"),
    make_example("the dog sat in london .", "where did the dog sit ?", "london", qid="b"),
    make_example("the dog sat in a big red house .", "who sat ?", "dog", qid="c"),
]


def test_summary_of_a_squad_v1_run():
    # EM 1/3, F1 (1 + 0 + 2/3) / 3 with "in london" against "london" (precision 1/2, recall 1).
    scores = squad_score({"a": "paris", "b": "in london", "c": "red house"}, EXAMPLES)
    lines = summary(run_metrics(scores | {"squad_version": 1}), "runs/v1").splitlines()
    assert lines == [
        "backend jax, mixed_bfloat16: trained on 88,524 windows in 1234 s "
        "(71.7 windows/s; 1.23% of it waiting for batches)",
        "eval: EM 33.33  F1 55.56 on 10,570 questions (42 s)",
        "wall time 1301 s; outputs in runs/v1",
    ]


def test_summary_of_a_squad_v2_run_names_the_version_and_reads_its_exact_score():
    examples = EXAMPLES + [make_example("the cat sat .", "what is the capital ?", qid="d")]
    # Right on "a" and on the unanswerable "d"; F1 adds 2/3 for "b": (1 + 2/3 + 0 + 1) / 4.
    predictions = {"a": "paris", "b": "in london", "c": "", "d": ""}
    scores = squad_score(predictions, examples, version=2)
    assert "exact_match" not in scores
    lines = summary(run_metrics(scores | {"squad_version": 2}), "runs/v2").splitlines()
    assert lines[1] == "eval (SQuAD v2.0): EM 50.00  F1 66.67 on 10,570 questions (42 s)"
    assert len(lines) == 3 and lines[2] == "wall time 1301 s; outputs in runs/v2"
