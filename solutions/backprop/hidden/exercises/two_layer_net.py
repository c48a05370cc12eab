"""TwoLayerNet.gradient: forward, then every layer's backward from the last to the first.

The weights of a case are the ones the book's ``__init__`` draws after
``np.random.seed(init_seed)``; the worker seeds numpy the same way before building the
student's net, so the weights never have to cross the sandbox boundary.
"""
import numpy as np

from grader.exercises import Case, Misconception, NetworkExercise
from grader.exercises.inputs import plausible, sizes

PARAMS = ("W1", "b1", "W2", "b2")
WALK = (("lastLayer",), ("layers", "Affine2"), ("layers", "Relu1"), ("layers", "Affine1"))


def book_params(sizes: tuple[int, int, int], seed: int, std: float) -> dict[str, np.ndarray]:
    """The weights the book's ``__init__`` draws after ``np.random.seed(seed)``."""
    rs, (i, h, o) = np.random.RandomState(seed), sizes
    w1 = std * rs.randn(i, h)
    return {"W1": w1, "b1": np.zeros(h), "W2": std * rs.randn(h, o), "b2": np.zeros(o)}


def _net(rng, one_hot: bool):
    n, sizes_ = int(rng.integers(3, 6)), tuple(sizes(rng, 3, 3, 8))
    values = {"sizes": sizes_, "std": 0.5, "init_seed": int(rng.integers(2**31)),
              "x": rng.standard_normal((n, sizes_[0]))}
    values.update(book_params(sizes_, values["init_seed"], values["std"]))
    labels = rng.integers(0, sizes_[2], n)
    while True:  # no ReLU input near its kink; no vanishing class probability (+1e-7 in log)
        hidden = values["x"] @ values["W1"] + values["b1"]
        logits = np.maximum(hidden, 0) @ values["W2"] + values["b2"]
        if np.min(np.abs(hidden)) >= 0.05 and plausible(logits, labels):
            break
        values["x"], labels = rng.standard_normal((n, sizes_[0])), rng.integers(0, sizes_[2], n)
    values["t"] = np.eye(sizes_[2])[labels] if one_hot else labels
    return values


EXERCISE = NetworkExercise(
    part="TwoLayerNet", short="Net", cls="TwoLayerNet", module="two_layer_net", params=PARAMS,
    build=lambda v: (*v["sizes"], v["std"]), seed_key="init_seed",
    points={"loss": 1, "W1": 2, "b1": 1, "W2": 2, "b2": 1},
    cases=[Case("class-index labels", lambda rng: _net(rng, False)),
           Case("one-hot labels", lambda rng: _net(rng, True))],
    walk=WALK, depends=("Affine", "Relu", "SoftmaxWithLoss"),
    walk_grads={"W1": ("layers", "Affine1", "dW"), "b1": ("layers", "Affine1", "db"),
                "W2": ("layers", "Affine2", "dW"), "b2": ("layers", "Affine2", "db")},
    misconceptions=[
        Misconception("lastLayer-skipped", "lastLayer.backward skipped",
                      "The walk starts at the loss: dout = self.lastLayer.backward(1), then the layers.",
                      trace=lambda t: bool(t) and "lastLayer" not in t),
        Misconception("layers-forward-order", "layers walked in forward order",
                      "Backpropagation visits the layers in *reverse*: Affine2, Relu1, then Affine1.",
                      trace=lambda t: [s for s in t if s.startswith("layers[")][:1] == ["layers['Affine1']"]),
    ],
)
