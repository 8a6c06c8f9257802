"""Scores that mean a probability of being right: Platt scaling of an answer's logit score, and the
figures that say how well a score is calibrated.

An answer's log-odds (its span's start + end logit less its window's two [CLS] logits: the
"null_relative" score that decoding and `read` rank by) orders answers well, but says nothing about
how often an answer of a given score is right. `fit_calibration` fits
`P(right) = sigmoid(weight * log_odds + bias)` on answers whose correctness is known (exact match),
by maximum likelihood; `weight` is 1 / temperature.
`expected_calibration_error` and `precision_threshold` are what `predict --squad-file` and training's
report print.
"""

import dataclasses
import math

import numpy as np

from keras_qa.errors import is_finite_number

# Equal-width score bins of the expected calibration error and the reliability diagram.
CALIBRATION_BINS = 10
# The share of right answers that `precision_threshold` keeps by default.
TARGET_PRECISION = 0.9


@dataclasses.dataclass(frozen=True)
class Calibration:
    """`P(right) = sigmoid(weight * log_odds + bias)` of an answer's log-odds against its window's
    "not here" (start + end logit less the window's [CLS] start and end logits).

    Args:
        weight: 1 / temperature; >= 0, so that the order of answers stays (0: the scores tell
            nothing, and every answer gets the share right).
        bias: the log-odds shift.
        questions: how many answers it was fitted on (for the record).

    Example:
    >>> calibration = Calibration(weight=0.5, bias=-1.0)
    >>> round(calibration.probability(2.0), 3)
    0.5
    >>> Calibration.from_config(calibration.get_config()) == calibration
    True
    """

    weight: float
    bias: float
    questions: int = 0

    def __post_init__(self):
        problems = []
        if not is_finite_number(self.weight) or self.weight < 0:
            problems.append(f"weight must be a finite number >= 0, not {self.weight!r}")
        if not is_finite_number(self.bias):
            problems.append(f"bias must be a finite number, not {self.bias!r}")
        if isinstance(self.questions, bool) or not isinstance(self.questions, int):
            problems.append(f"questions must be an integer >= 0, not {self.questions!r}")
        elif self.questions < 0:
            problems.append(f"questions must be an integer >= 0, not {self.questions!r}")
        if problems:
            raise ValueError("calibration: " + "; ".join(problems))

    def probability(self, log_odds):
        """The calibrated probability of one log-odds score, or of an array of them."""
        z = self.weight * np.asarray(log_odds, np.float64) + self.bias
        probabilities = 0.5 * (1.0 + np.tanh(0.5 * z))  # sigmoid, without overflow
        return float(probabilities) if np.ndim(probabilities) == 0 else probabilities

    def get_config(self):
        return {"weight": self.weight, "bias": self.bias, "questions": self.questions}

    @classmethod
    def from_config(cls, config):
        """A calibration from `get_config`'s dict; a ValueError naming what is wrong."""
        if not isinstance(config, dict):
            raise ValueError(f"calibration must be an object, not {type(config).__name__}")
        unknown = sorted(set(config) - {"weight", "bias", "questions"})
        missing = sorted({"weight", "bias"} - set(config))
        if unknown or missing:
            raise ValueError(f"calibration: unknown keys {unknown}, missing keys {missing}")
        return cls(config["weight"], config["bias"], config.get("questions", 0))


def fit_calibration(log_odds, correct, max_steps=100):
    """Fit `sigmoid(weight * log_odds + bias)` to whether each answer was right, by maximum
    likelihood (Newton's method on the logistic loss), `weight` kept >= 0: where higher scores
    were not more often right, the best such fit is `weight` 0 with every answer scored the share
    right.

    Args:
        log_odds: the answers' log-odds, `(n,)`.
        correct: whether each answer was right (exact match), `(n,)`.
        max_steps: Newton steps at most.

    Returns:
        A `Calibration`. A ValueError when there are no answers, when they are all right or all
        wrong (no calibration can be learned), or when a score is not finite.

    Example:
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(0, 4, 20000)
    >>> right = rng.random(20000) < 1 / (1 + np.exp(-x / 2.0))  # temperature 2
    >>> round(1 / fit_calibration(x, right).weight, 1)
    2.0
    """
    x = np.asarray(log_odds, np.float64).reshape(-1)
    y = np.asarray(correct, np.float64).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} scores but {len(y)} correctness flags")
    if len(x) == 0:
        raise ValueError("calibration needs answers whose correctness is known; got none")
    if not np.isfinite(x).all():
        raise ValueError("calibration needs finite scores; some are inf or NaN")
    if y.min() == y.max():
        state = "right" if y[0] else "wrong"
        raise ValueError(f"all {len(x)} answers are {state}: no calibration can be fitted")
    # Scale the feature for a well-conditioned Newton step; a tiny ridge keeps separable data finite.
    scale = max(float(np.std(x)), 1e-6)
    design = np.stack([x / scale, np.ones_like(x)], axis=1)
    theta = np.zeros(2)
    ridge = 1e-6 * len(x)
    for _ in range(max_steps):
        p = 0.5 * (1.0 + np.tanh(0.5 * (design @ theta)))
        gradient = design.T @ (p - y) + ridge * theta
        hessian = (design * (p * (1 - p))[:, None]).T @ design + ridge * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    weight = float(theta[0] / scale)
    if weight <= 0:  # the likelihood is concave: its best with weight >= 0 is at weight 0
        share = float(y.mean())
        return Calibration(0.0, math.log(share / (1 - share)), len(x))
    return Calibration(weight, float(theta[1]), len(x))


def reliability(scores, correct, bins=CALIBRATION_BINS):
    """Per equal-width score bin: how many answers, their mean score, and the share right.

    Returns:
        A list of `{"low", "high", "answers", "mean_score", "accuracy"}`, one per bin (`mean_score` /
        `accuracy` None in an empty bin).
    """
    scores, correct = _checked(scores, correct)
    # Bin i holds scores in [i / bins, (i + 1) / bins); a score of 1 goes in the last.
    index = np.minimum((scores * bins).astype(np.int64), bins - 1)
    table = []
    for i in range(bins):
        members = index == i
        count = int(members.sum())
        table.append(
            {
                "low": i / bins,
                "high": (i + 1) / bins,
                "answers": count,
                "mean_score": float(scores[members].mean()) if count else None,
                "accuracy": float(correct[members].mean()) if count else None,
            }
        )
    return table


def expected_calibration_error(scores, correct, bins=CALIBRATION_BINS):
    """The answers-weighted mean gap between score and share right over equal-width score bins.

    Example:
    >>> expected_calibration_error([0.9, 0.9, 0.2, 0.2], [True, False, False, False])
    0.3
    """
    scores, correct = _checked(scores, correct)
    total = len(scores)
    gap = sum(
        row["answers"] * abs(row["mean_score"] - row["accuracy"])
        for row in reliability(scores, correct, bins)
        if row["answers"]
    )
    return round(float(gap / total), 12) if total else 0.0


def precision_threshold(scores, correct, precision=TARGET_PRECISION):
    """The lowest score threshold at which the answers kept (score >= threshold) are right at least
    `precision` of the time, and the share of answers it keeps.

    Returns:
        `{"threshold", "kept", "precision"}`; `threshold` None when no threshold reaches it.

    Example:
    >>> precision_threshold([0.95, 0.9, 0.8, 0.3], [True, True, False, False], 0.9)
    {'threshold': 0.9, 'kept': 0.5, 'precision': 1.0}
    """
    scores, correct = _checked(scores, correct)
    order = np.argsort(-scores, kind="stable")
    right_so_far = np.cumsum(correct[order])
    kept = np.arange(1, len(scores) + 1)
    # Only cut between different scores: all answers of one score are kept or dropped together.
    last_of_value = np.append(scores[order][1:] != scores[order][:-1], True)
    good = (right_so_far / kept >= precision) & last_of_value
    if not good.any():
        return {"threshold": None, "kept": 0.0, "precision": None}
    best = int(np.flatnonzero(good)[-1])
    return {
        "threshold": float(scores[order][best]),
        "kept": float(kept[best] / len(scores)),
        "precision": float(right_so_far[best] / kept[best]),
    }


def _checked(scores, correct):
    scores = np.asarray(scores, np.float64).reshape(-1)
    correct = np.asarray(correct, bool).reshape(-1)
    if len(scores) != len(correct):
        raise ValueError(f"{len(scores)} scores but {len(correct)} correctness flags")
    if len(scores) and (not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1):
        raise ValueError("scores must be probabilities in [0, 1]")
    return scores, correct
