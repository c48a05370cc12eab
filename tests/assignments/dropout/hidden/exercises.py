"""The test assignment's one exercise: the mask must be the one forward drew."""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity


def matrix(rng):
    return {"x": rng.standard_normal((4, 6)), "dout": rng.standard_normal((4, 6)), "ratio": 0.4,
            "seed": int(rng.integers(2**31))}


EXERCISES = [
    LayerExercise(
        part="Dropout", cls="Dropout", module="dropout", init=("ratio",), forward=("x",), backward=("dout",),
        quantities={"dx": Quantity(("return", None), wrt="x")}, points={"forward": 1, "dx": 2},
        cases=[Case("matrix", matrix)], seed_key="seed",
        misconceptions=[Misconception("mask-ignored", "the mask is not applied in backward",
                                      "A dropped unit did not affect the output: no gradient flows through it.",
                                      wrong=lambda v: {"dx": v["dout"]})],
    ),
]
