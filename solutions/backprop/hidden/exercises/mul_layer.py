"""MulLayer: z = x * y; dx = dout * y, dy = dout * x."""
from grader.exercises import Case, LayerExercise, Misconception, Quantity
from grader.exercises.inputs import sizes


def arrays(rng):
    n, d = sizes(rng, 2)
    x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    return {"x": x, "y": y, "dout": rng.standard_normal((n, d))}


def scalars(rng):
    x, y = float(rng.uniform(50, 200)), float(rng.integers(2, 9))
    return {"x": x, "y": y, "dout": float(rng.uniform(0.5, 2.0))}


EXERCISE = LayerExercise(
    part="MulLayer", cls="MulLayer", module="layers", init=(), forward=("x", "y"), backward=("dout",),
    quantities={"dx": Quantity(("return", 0), wrt="x"), "dy": Quantity(("return", 1), wrt="y")},
    points={"forward": 1, "dx": 2, "dy": 2},
    cases=[Case("arrays", arrays), Case("scalars, as in the shopping graph", scalars)],
    misconceptions=[
        Misconception("swapped-mul-gradients", "dx and dy swapped",
                      "The gradient for x is multiplied by the *other* input: dx uses y and dy uses x.",
                      wrong=lambda v: {"dx": v["dout"] * v["x"], "dy": v["dout"] * v["y"]}),
        Misconception("forgot-dout", "the upstream gradient dout is ignored",
                      "The chain rule multiplies the local derivative by the gradient arriving from above.",
                      wrong=lambda v: {"dx": v["y"], "dy": v["x"]}),
    ],
)
