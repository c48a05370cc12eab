"""Dropout, the book's convention: dropout_ratio is the probability of dropping a unit; training
keeps x where rand > ratio (no scaling), test mode scales by (1 - ratio).

numpy's global generator is seeded before every forward (``seed_key``), in the reference,
the student's call and every numerical probe, so all draw the same mask; the wrong
formulas below redraw it from the same seed. Ratios stay away from 0.5, where keeping and
dropping with probability 0.5 scale alike.
"""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity
from grader.exercises.inputs import sizes


def _case(rng, shape, train):
    return {"x": rng.standard_normal(shape), "dropout_ratio": float(rng.choice([0.2, 0.3, 0.35, 0.4, 0.6])),
            "train_flg": train, "dout": rng.standard_normal(shape), "seed": int(rng.integers(2**31))}


def matrix(train):
    return lambda rng: _case(rng, tuple(sizes(rng, 2, 4, 8)), train)


def four_axes(rng):
    n, c, h = sizes(rng, 3, 2, 5)
    return _case(rng, (max(n, 3), c, h, 3), True)


def _draws(v, count=1):
    """The uniform draws forward (and a second call) make after the grader's seed."""
    rs = np.random.RandomState(v["seed"])
    return [rs.rand(*v["x"].shape) for _ in range(count)]


def _keep(v):
    return _draws(v)[0] > v["dropout_ratio"]


def _inverted(v):
    """cs231n's inverted dropout with the book's ratio: scaled in training, not at test time."""
    keep = _keep(v) / (1 - v["dropout_ratio"])
    return {"forward": v["x"] * keep, "dx": v["dout"] * keep} if v["train_flg"] else {}


def _kept_with_ratio(scaled):
    """dropout_ratio taken as cs231n's p, the probability of *keeping* a unit."""
    def wrong(v):
        p = v["dropout_ratio"]
        keep = (_draws(v)[0] < p) / (p if scaled else 1)
        if not v["train_flg"]:
            return {"forward": v["x"] * (1 if scaled else p)}
        return {"forward": v["x"] * keep, "dx": v["dout"] * keep}
    return wrong


def _redrawn(v):
    return {"dx": v["dout"] * (_draws(v, 2)[1] > v["dropout_ratio"])} if v["train_flg"] else {}


RATIO = ("dropout-ratio-as-keep-probability", "dropout_ratio taken as the probability of keeping a unit",
         "Here dropout_ratio is the probability of *dropping* a unit (the book's convention); cs231n's p "
         "is the probability of keeping one. Keep a unit where the draw is greater than dropout_ratio.")

EXERCISE = LayerExercise(
    part="Dropout", short="Drop", cls="Dropout", module="convnet_layers", init=("dropout_ratio",),
    forward=("x", "train_flg"), backward=("dout",),
    quantities={"dx": Quantity(("return", None), wrt="x")},
    points={"forward": 1, "dx": 2},
    cases=[Case("training, 2-D input", matrix(True)), Case("training, 4-D input", four_axes),
           Case("test mode", matrix(False), grades=("forward",))],
    seed_key="seed", unchanged=("x",),
    misconceptions=[
        Misconception("dropout-test-unscaled", "test mode not scaled",
                      "In the book's convention training does not rescale, so at test time, when every unit "
                      "is kept, the output is scaled by the fraction kept in training: (1 - dropout_ratio).",
                      wrong=lambda v: {} if v["train_flg"] else {"forward": v["x"]}),
        Misconception("dropout-inverted", "inverted dropout (scaling in training)",
                      "This assignment follows the book: training passes kept units unchanged and test mode "
                      "scales by (1 - dropout_ratio). Dividing by the keep probability in training is "
                      "cs231n's inverted dropout, another convention.", wrong=_inverted),
        Misconception(*RATIO, wrong=_kept_with_ratio(scaled=False)),
        Misconception(*RATIO, wrong=_kept_with_ratio(scaled=True)),
        Misconception("dropout-train-flag-ignored", "units dropped in test mode too",
                      "With train_flg false nothing is dropped: every unit is kept (and scaled).",
                      wrong=lambda v: {} if v["train_flg"] else {"forward": v["x"] * _keep(v)}),
        Misconception("dropout-mask-ignored", "the mask is not applied in backward",
                      "A dropped unit did not affect the output, so no gradient flows back through it.",
                      wrong=lambda v: {"dx": v["dout"]} if v["train_flg"] else {}),
        Misconception("dropout-mask-redrawn", "a new mask drawn in backward",
                      "backward must use the very mask forward drew (keep it on the object); a new draw "
                      "drops other units.", wrong=_redrawn),
    ],
)
