"""Sigmoid: y = 1 / (1 + exp(-x)); dx = dout * y * (1 - y), from the forward *output*."""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity
from grader.exercises.inputs import sizes


def matrix(rng):
    n, d = sizes(rng, 2)
    return {"x": rng.uniform(-4, 4, (n, d)), "dout": rng.standard_normal((n, d))}


def three_axes(rng):
    shape = tuple(sizes(rng, 3, 3, 6))
    return {"x": rng.uniform(-4, 4, shape), "dout": rng.standard_normal(shape)}


def _sig(x):
    return 1 / (1 + np.exp(-x))


EXERCISE = LayerExercise(
    part="Sigmoid", short="Sig", cls="Sigmoid", module="layers", init=(), forward=("x",), backward=("dout",),
    quantities={"dx": Quantity(("return", None), wrt="x")},
    points={"forward": 1, "dx": 3},
    cases=[Case("matrix", matrix), Case("3-D input", three_axes)],
    misconceptions=[
        Misconception("sigmoid-derivative-from-input", "the derivative computed from the input x",
                      "y(1 - y) uses the forward *output* y (self.out), not the input x.",
                      wrong=lambda v: {"dx": v["dout"] * v["x"] * (1 - v["x"])}),
        Misconception("sigmoid-derivative-missing", "the sigmoid's own derivative is left out",
                      "dout must be multiplied by the local derivative y(1 - y); passing it through "
                      "unchanged still trains, yet fails every gradient check.",
                      wrong=lambda v: {"dx": v["dout"]}),
        Misconception("forgot-dout", "the upstream gradient dout is ignored",
                      "y(1 - y) is only the local derivative; multiply it by dout.",
                      wrong=lambda v: {"dx": _sig(v["x"]) * (1 - _sig(v["x"]))}),
    ],
)
