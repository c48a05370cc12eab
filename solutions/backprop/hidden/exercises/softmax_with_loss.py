"""SoftmaxWithLoss: L = mean cross-entropy(softmax(x), t); dx = (y - t) / N."""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity
from grader.exercises.inputs import plausible, sizes


def _logits(rng):
    n, c = sizes(rng, 2, 3, 7)
    while True:
        x, labels = rng.normal(0, 1, (n, c)), rng.integers(0, c, n)
        if plausible(x, labels):
            return x, labels


def one_hot(rng):
    x, labels = _logits(rng)
    return {"x": x, "t": np.eye(x.shape[1])[labels], "labels": labels}


def class_indices(rng):
    x, labels = _logits(rng)
    return {"x": x, "t": labels, "labels": labels}


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _residual(v):
    return _softmax(v["x"]) - np.eye(v["x"].shape[1])[v["labels"]]


EXERCISE = LayerExercise(
    part="SoftmaxWithLoss", short="Soft", cls="SoftmaxWithLoss", module="layers", init=(), forward=("x", "t"),
    backward=(),
    quantities={"dx": Quantity(("return", None), wrt="x")},
    points={"forward": 2, "dx": 4},
    cases=[Case("one-hot labels", one_hot), Case("class-index labels", class_indices)],
    misconceptions=[
        Misconception("missing-batch-division", "the batch size is not divided out",
                      "The loss is the *mean* over the batch, so each sample's gradient is divided by N.",
                      wrong=lambda v: {"dx": _residual(v)}),
        Misconception("one-hot-only", "only one-hot labels handled",
                      "t can also hold class indices (shape (N,)); subtract 1 at each sample's "
                      "correct class instead of subtracting t.",
                      error=lambda e, v: v["t"].ndim == 1 and "broadcast" in e["message"]),
    ],
)
