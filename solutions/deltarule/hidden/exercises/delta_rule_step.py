"""delta_rule_step: o = sigmoid(x . W), E = 1/2 sum (t - o)^2; W + lr x^T [(t - o) o (1 - o)]."""
import numpy as np

from grader.exercises import Case, FunctionExercise, Misconception
from grader.exercises.inputs import sizes

from .common import half_sse_factor, output_derivative_missing, sigmoid

VALUE = "updated W"


def _case(rng, n, j, k):
    while True:  # outputs away from saturation; lr != 1, so a missing lr shows
        W = rng.standard_normal((j, k)) / np.sqrt(j)
        x = rng.standard_normal((n, j))
        if np.max(np.abs(x @ W)) < 3:
            return {"W": W, "x": x, "t": rng.integers(0, 2, (n, k)).astype(float),
                    "lr": float(rng.choice([0.05, 0.1, 0.3, 0.5]))}


def one_output(rng):
    n, j = sizes(rng, 2)
    return _case(rng, n, j, 1)


def several_outputs(rng):
    return _case(rng, *sizes(rng, 3))


def _step(v, factor=1.0, derivative=True, lr=None, start=None):
    """W + lr * factor * x^T delta, the delta rule with one of its parts changed."""
    o = sigmoid(v["x"] @ v["W"])
    delta = (v["t"] - o) * (o * (1 - o) if derivative else 1)
    start = v["W"] if start is None else start
    return {VALUE: start + (v["lr"] if lr is None else lr) * factor * (v["x"].T @ delta)}


EXERCISE = FunctionExercise(
    part="DeltaRule", short="Delta", module="delta_rule", function="delta_rule_step", inputs=(),
    value=VALUE, points={VALUE: 3},
    cases=[Case("one output node", one_output), Case("several output nodes", several_outputs)],
    misconceptions=[
        Misconception("update-sign", "the sign of the update: gradient ascent",
                      "Delta w_jk = -eta dE/dw_jk: a step *against* the gradient lowers E; yours climbs it.",
                      wrong=lambda v: _step(v, factor=-1.0)),
        output_derivative_missing(lambda v: _step(v, derivative=False)),
        half_sse_factor(lambda v: _step(v, factor=2.0)),
        Misconception("lr-missing", "the learning rate left out",
                      "Every weight's change is scaled by the learning rate eta (lr).",
                      wrong=lambda v: _step(v, lr=1.0)),
        Misconception("returned-delta", "the change Delta W returned instead of the updated weights",
                      "The function returns the weights after the step, not only the step.",
                      wrong=lambda v: _step(v, start=np.zeros_like(v["W"]))),
    ],
)
