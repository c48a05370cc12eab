"""Affine: y = x.W + b (x flattened per sample); dx = dout.W^T, dW = x^T.dout, db = sum(dout)."""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity
from grader.exercises.inputs import sizes


def _case(rng, x_shape, m):
    d = int(np.prod(x_shape[1:]))
    return {"x": rng.standard_normal(x_shape), "W": rng.standard_normal((d, m)),
            "b": rng.standard_normal(m), "dout": rng.standard_normal((x_shape[0], m))}


def matrix(rng):
    n, d, m = sizes(rng, 3)
    return _case(rng, (n, d), m)


def four_axes(rng):
    n, c, h, m = sizes(rng, 4, 2, 6)
    return _case(rng, (max(n, 3), c, h, 2), m)


def square(rng):
    """N = D = M with a non-symmetric W: wrong operands give values, not shape errors."""
    return _case(rng, (4, 4), 4)


def _flat(v):
    return v["x"].reshape(v["x"].shape[0], -1)


def _mistake(id, title, hint, **formulas):
    return Misconception(id, title, hint, wrong=lambda v: {q: f(v) for q, f in formulas.items()})


EXERCISE = LayerExercise(
    part="Affine", cls="Affine", module="layers", init=("W", "b"), forward=("x",), backward=("dout",),
    quantities={"dx": Quantity(("return", None), wrt="x"), "dW": Quantity(("attr", "dW"), wrt="W"),
                "db": Quantity(("attr", "db"), wrt="b")},
    points={"forward": 1, "dx": 2, "dW": 2, "db": 1},
    cases=[Case("2-D input", matrix), Case("4-D input", four_axes),
           Case("square, non-symmetric W", square)],
    misconceptions=[
        _mistake("dx-untransposed-W", "W not transposed in dx",
                 "dx must have x's shape (N, D): multiply dout (N, M) by W transposed (M, D).",
                 dx=lambda v: (v["dout"] @ v["W"]).reshape(v["x"].shape)),
        _mistake("dx-with-dW-formula", "dx computed with dW's formula",
                 "x^T . dout is the gradient of W; the gradient of x is dout . W^T.",
                 dx=lambda v: _flat(v).T @ v["dout"]),
        _mistake("dW-wrong-operands", "dW from the wrong operands",
                 "dW pairs the layer's *input* with dout: x^T . dout (not W^T . dout).",
                 dW=lambda v: v["W"].T @ v["dout"]),
        _mistake("dW-transposed", "dW transposed",
                 "dW must have W's shape (D, M): x^T . dout, not dout^T . x.",
                 dW=lambda v: v["dout"].T @ _flat(v)),
        _mistake("db-mean", "db as a mean over the batch",
                 "b is added to every sample, so its gradient is the *sum* of dout over the batch.",
                 db=lambda v: v["dout"].mean(axis=0)),
        _mistake("db-unsummed", "db not summed over the batch",
                 "db has b's shape (M,): add up dout over the batch axis.",
                 db=lambda v: v["dout"]),
        _mistake("db-keepdims", "db kept as a (1, M) row",
                 "db must have b's shape (M,): sum over axis 0 without keepdims.",
                 db=lambda v: v["dout"].sum(axis=0, keepdims=True)),
        _mistake("dx-not-reshaped", "dx not reshaped to the input's shape",
                 "forward flattened x; backward must give dx back in the original shape.",
                 dx=lambda v: v["dout"] @ v["W"].T),
        _mistake("forgot-dout", "the upstream gradient dout is ignored",
                 "Every gradient of the layer is built from dout.",
                 dx=lambda v: (np.ones_like(v["dout"]) @ v["W"].T).reshape(v["x"].shape),
                 dW=lambda v: _flat(v).T @ np.ones_like(v["dout"]),
                 db=lambda v: np.ones_like(v["dout"]).sum(axis=0)),
    ],
)
