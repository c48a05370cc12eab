"""ThreeLayerNet.gradient: relu, relu, sigmoid and nn.MSELoss, backpropagated by hand.

The weights of a case are the ones the reference's ``__init__`` draws (nn.Linear's
uniform initialisation) after ``np.random.seed(init_seed)``; the worker seeds numpy the
same way before building the student's net. Inputs are drawn until no ReLU input is near
its kink, each hidden layer has nodes on both sides of it, no output is saturated and no
output's bias gradient cancels itself (before and after the grader's training step):
then every mistake below changes the gradients, and a correct float32 answer keeps its
digits.
"""
import numpy as np

from grader.exercises import Case, Misconception, NetworkExercise

from .common import (
    half_sse_factor,
    mse_summed,
    not_transposed,
    output_derivative_missing,
    sigmoid,
)

PARAMS = ("W1", "b1", "W2", "b2", "W3", "b3")
STEP = 0.1  # the training step the grader takes between the two gradient() calls of a case


def init_params(sizes: tuple[int, ...], seed: int) -> dict[str, np.ndarray]:
    """The weights the reference's ``__init__`` draws after ``np.random.seed(seed)``."""
    rs, params = np.random.RandomState(seed), {}
    for layer in range(1, len(sizes)):
        fan_in, fan_out = sizes[layer - 1], sizes[layer]
        bound = 1 / np.sqrt(fan_in)
        params[f"W{layer}"] = rs.uniform(-bound, bound, (fan_in, fan_out))
        params[f"b{layer}"] = rs.uniform(-bound, bound, fan_out)
    return params


def forward(v):
    a1 = v["x"] @ v["W1"] + v["b1"]
    a2 = np.maximum(a1, 0) @ v["W2"] + v["b2"]
    return a1, a2, sigmoid(np.maximum(a2, 0) @ v["W3"] + v["b3"])


def backprop(v, *, scale=2.0, over=None, derivative=True, masks=(True, True), transposed=(True, True)):
    """The gradients with parts of the chain rule changed: dE/do = scale (o - t) / over
    (default N n), the output's sigmoid', the ReLU masks of h1 and h2, W2^T and W3^T."""
    a1, a2, o = forward(v)
    h1, h2 = np.maximum(a1, 0), np.maximum(a2, 0)
    delta3 = scale * (o - v["t"]) / (o.size if over is None else over) * (o * (1 - o) if derivative else 1)
    delta2 = delta3 @ (v["W3"].T if transposed[1] else v["W3"]) * ((a2 > 0) if masks[1] else 1)
    delta1 = delta2 @ (v["W2"].T if transposed[0] else v["W2"]) * ((a1 > 0) if masks[0] else 1)
    return {"W3": h2.T @ delta3, "b3": delta3.sum(axis=0), "W2": h1.T @ delta2, "b2": delta2.sum(axis=0),
            "W1": v["x"].T @ delta1, "b1": delta1.sum(axis=0)}


def _usable(v) -> bool:
    a1, a2, o = forward(v)
    far = min(np.min(np.abs(a1)), np.min(np.abs(a2))) >= 0.05
    both_sides = all(np.any(a > 0) and np.any(a < 0) for a in (a1, a2))
    # a sample whose error reaches layer 1 and meets a closed and an open ReLU there
    deep = np.any(np.any(a2 > 0, axis=1) & np.any(a1 > 0, axis=1) & np.any(a1 < 0, axis=1))
    if not (far and both_sides and deep and 0.05 <= np.min(o) and np.max(o) <= 0.95):
        return False
    grads = backprop(v)
    return _uncancelled(v) and _uncancelled({**v, **{k: v[k] - STEP * grads[k] for k in PARAMS}})


def _uncancelled(v) -> bool:
    """No output's bias gradient (a sum over the batch) nearly cancels, at these weights: a
    float32 answer keeps its digits there too. (db3 of a one-output net is a one-entry
    tensor: no larger entry sets its scale.)"""
    _, _, o = forward(v)
    terms = (o - v["t"]) * o * (1 - o)
    return bool(np.all(np.abs(terms.sum(axis=0)) >= 0.05 * np.abs(terms).sum(axis=0)))


def _net(rng, sizes: tuple[int, ...], batches: tuple[int, ...]):
    while True:
        values = {"sizes": sizes, "init_seed": int(rng.integers(2**31))}
        values.update(init_params(sizes, values["init_seed"]))
        for _ in range(50):  # new inputs for these weights; new weights if none fit
            n = int(rng.choice(batches))
            values.update(x=rng.standard_normal((n, sizes[0])), t=rng.uniform(0, 1, (n, sizes[-1])))
            if _usable(values):
                return values


def _shapes(v):
    """The (error, weights) shape pairs of W instead of W^T, at h2 and at h1."""
    n = v["x"].shape[0]
    return [((n, v["W3"].shape[1]), v["W3"].shape), ((n, v["W2"].shape[1]), v["W2"].shape)]


EXERCISE = NetworkExercise(
    part="ThreeLayerNet", short="Net", cls="ThreeLayerNet", module="three_layer_net", params=PARAMS,
    build=lambda v: v["sizes"], seed_key="init_seed", step_size=STEP,
    points={"loss": 1, "W1": 2, "b1": 1, "W2": 2, "b2": 1, "W3": 2, "b3": 1},
    cases=[Case("the notes' 4-5-2-1 net", lambda rng: _net(rng, (4, 5, 2, 1), (3, 4, 5, 6))),
           Case("square W2 and W3, four outputs", lambda rng: _net(rng, (6, 4, 4, 4), (3, 5, 6, 7)))],
    misconceptions=[
        output_derivative_missing(lambda v: backprop(v, derivative=False)),
        half_sse_factor(lambda v: backprop(v, scale=1.0)),
        mse_summed("outputs", lambda v: backprop(v, over=v["x"].shape[0])),
        mse_summed("batch", lambda v: backprop(v, over=v["t"].shape[1])),
        *(Misconception("relu-derivative-missing", "the ReLU derivative missing in a hidden layer",
                        "A hidden node whose ReLU input was <= 0 did not affect the output: the error "
                        "passed back to it stops there, and goes through unchanged where the input was > 0.",
                        wrong=lambda v, masks=masks: backprop(v, masks=masks))
          for masks in ((True, False), (False, True), (False, False))),
        *(not_transposed(lambda v, t=t: backprop(v, transposed=t), shapes=_shapes)
          for t in ((True, False), (False, True), (False, False))),
    ],
)
