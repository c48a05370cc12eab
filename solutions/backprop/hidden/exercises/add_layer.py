"""AddLayer: z = x + y; dx = dy = dout."""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity
from grader.exercises.inputs import sizes


def arrays(rng):
    n, d = sizes(rng, 2)
    return {"x": rng.standard_normal((n, d)), "y": rng.standard_normal((n, d)),
            "dout": rng.standard_normal((n, d))}


def scalars(rng):
    return {"x": float(rng.uniform(100, 500)), "y": float(rng.uniform(100, 500)),
            "dout": float(rng.uniform(0.5, 2.0))}


EXERCISE = LayerExercise(
    part="AddLayer", cls="AddLayer", module="layers", init=(), forward=("x", "y"), backward=("dout",),
    quantities={"dx": Quantity(("return", 0), wrt="x"), "dy": Quantity(("return", 1), wrt="y")},
    points={"forward": 1, "dx": 1, "dy": 1},
    cases=[Case("arrays", arrays), Case("scalars, as in the shopping graph", scalars)],
    misconceptions=[
        Misconception("add-gradient-zeroed", "an addition's gradient set to zero",
                      "Both inputs of an addition receive the upstream gradient unchanged (times 1).",
                      wrong=lambda v: {"dx": np.zeros_like(np.asarray(v["dout"])),
                                       "dy": np.zeros_like(np.asarray(v["dout"]))}),
        Misconception("forgot-dout", "the upstream gradient dout is ignored",
                      "The local derivative of x + y is 1; multiply it by the gradient arriving from above.",
                      wrong=lambda v: {"dx": np.ones_like(np.asarray(v["dout"])),
                                       "dy": np.ones_like(np.asarray(v["dout"]))}),
    ],
)
