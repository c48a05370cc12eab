"""SigmoidOutput: o = sigmoid(x . W + b); delta = dout o (1 - o), dW = x^T delta, db = sum delta,
dx = delta W^T (the error passed back through the transpose)."""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity
from grader.exercises.inputs import sizes

from .common import not_transposed, output_derivative_missing, sigmoid


def _case(rng, n, j, k):
    while True:  # every output away from saturation: sigmoid' must weigh in
        values = {"x": rng.standard_normal((n, j)), "W": rng.standard_normal((j, k)) / np.sqrt(j),
                  "b": rng.standard_normal(k) * 0.5, "dout": rng.standard_normal((n, k))}
        if np.max(np.abs(values["x"] @ values["W"] + values["b"])) < 3:
            return values


def rectangular(rng):
    return _case(rng, *sizes(rng, 3))


def square(rng):
    """As many outputs as inputs, W not symmetric: W instead of W^T gives values, not a shape error."""
    n, j = sizes(rng, 2)
    return _case(rng, n, j, j)


def _net(v):
    return v["x"] @ v["W"] + v["b"]


def _grads(v, delta, back=None):
    """What backward returns when ``delta`` stands for dE/dnet (and ``back`` for the matrix the
    error goes back through)."""
    back = v["W"].T if back is None else back
    return {"dx": delta @ back, "dW": v["x"].T @ delta, "db": delta.sum(axis=0)}


def _delta(v):
    o = sigmoid(_net(v))
    return v["dout"] * o * (1 - o)


EXERCISE = LayerExercise(
    part="SigmoidOutput", short="SigOut", cls="SigmoidOutput", module="delta_rule", init=("W", "b"),
    forward=("x",), backward=("dout",),
    quantities={"dx": Quantity(("return", None), wrt="x"), "dW": Quantity(("attr", "dW"), wrt="W"),
                "db": Quantity(("attr", "db"), wrt="b")},
    points={"forward": 1, "dx": 2, "dW": 2, "db": 1},
    cases=[Case("inputs to fewer or more outputs", rectangular), Case("square, non-symmetric W", square)],
    misconceptions=[
        output_derivative_missing(lambda v: _grads(v, v["dout"])),
        not_transposed(lambda v: {"dx": _delta(v) @ v["W"]},
                       shapes=lambda v: [(v["dout"].shape, v["W"].shape)]),
        Misconception("sigmoid-derivative-of-net", "the sigmoid's derivative taken of net instead of o",
                      "sigmoid'(net) = sigmoid(net) (1 - sigmoid(net)): it is written with the node's "
                      "output o (self.out), not with net itself.",
                      wrong=lambda v: _grads(v, v["dout"] * _net(v) * (1 - _net(v)))),
        Misconception("forgot-dout", "the upstream gradient dout is ignored",
                      "The sigmoid's derivative is only the local factor; multiply it by dE/do, the "
                      "gradient arriving from above.",
                      wrong=lambda v: _grads(v, sigmoid(_net(v)) * (1 - sigmoid(_net(v))))),
    ],
)
