"""Relu: y = max(0, x); dx = dout where x > 0, else 0 (either choice at exactly 0)."""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity
from grader.exercises.inputs import away_from_zero, sizes


def with_zeros(rng):
    n, d = sizes(rng, 2)
    x = away_from_zero(rng, (n, d))
    x.flat[rng.choice(x.size, size=2, replace=False)] = 0.0  # the kink: any subgradient is right
    return {"x": x, "dout": rng.standard_normal((n, d))}


def three_axes(rng):
    a, b, c = sizes(rng, 3, 3, 6)
    return {"x": away_from_zero(rng, (a, b, c)), "dout": rng.standard_normal((a, b, c))}


def either(values, expected):
    """At x == 0 both 0 (mask x <= 0) and dout (mask x < 0) are valid subgradients."""
    alternative = expected["dx"].copy()
    kink = values["x"] == 0
    alternative[kink] = np.asarray(values["dout"])[kink]
    return {"dx": alternative}


EXERCISE = LayerExercise(
    part="Relu", cls="Relu", module="layers", init=(), forward=("x",), backward=("dout",),
    quantities={"dx": Quantity(("return", None), wrt="x")},
    points={"forward": 1, "dx": 3},
    cases=[Case("with exact zeros", with_zeros), Case("3-D input", three_axes)],
    either=either,
    frozen=lambda v: {"x": v["x"] == 0},
    misconceptions=[
        Misconception("relu-mask-ignored", "the mask is never applied",
                      "Where the forward input was <= 0 the output did not depend on x: its gradient is 0.",
                      wrong=lambda v: {"dx": v["dout"]}),
        Misconception("relu-derivative-x", "ReLU's derivative taken as x",
                      "For x > 0, d relu(x) / dx = 1, not x: pass dout through unchanged there.",
                      wrong=lambda v: {"dx": v["dout"] * v["x"] * (v["x"] > 0)}),
        Misconception("relu-derivative-x", "ReLU's derivative taken as x",
                      "For x > 0, d relu(x) / dx = 1, not x: pass dout through unchanged there.",
                      wrong=lambda v: {"dx": v["dout"] * v["x"]}),
        Misconception("forgot-dout", "the upstream gradient dout is ignored",
                      "Multiply the local derivative (0 or 1) by the gradient arriving from above.",
                      wrong=lambda v: {"dx": (v["x"] > 0).astype(float)}),
    ],
)
