"""SimpleConvNet.gradient: the forward pass, then every layer's backward from the last one.

The weights of a case are the ones the book's ``__init__`` draws after
``np.random.seed(init_seed)``; the worker seeds numpy the same way before building the
student's net, and the grader writes them into ``net.params`` in place as well. Inputs keep every kink
away: no convolution or hidden pre-activation within ``MARGIN`` of 0, no pooling window
whose two largest entries are that close, no vanishing class probability (the +1e-7
inside the loss's log).
"""
import numpy as np

from grader.exercises import Case, Misconception, NetworkExercise
from grader.exercises.inputs import plausible, sizes

from .windows import MARGIN, conv, pool_windows

PARAMS = ("W1", "b1", "W2", "b2", "W3", "b3")
WALK = (("last_layer",), ("layers", "Affine2"), ("layers", "Relu2"), ("layers", "Affine1"), ("layers", "Pool1"),
        ("layers", "Relu1"), ("layers", "Conv1"))
GRADS = {"W1": ("layers", "Conv1", "dW"), "b1": ("layers", "Conv1", "db"), "W2": ("layers", "Affine1", "dW"),
         "b2": ("layers", "Affine1", "db"), "W3": ("layers", "Affine2", "dW"), "b3": ("layers", "Affine2", "db")}


def _forward(v, x):
    """(conv pre-activations, pooling windows after ReLU, hidden pre-activations, logits)."""
    pre = conv(x, v["W1"], v["b1"], 1, v["conv_param"]["pad"])
    pooled = pool_windows(np.maximum(pre, 0), 2, 2, 2)
    hidden = pooled.max(axis=-1).reshape(len(x), -1) @ v["W2"] + v["b2"]
    return pre, pooled, hidden, np.maximum(hidden, 0) @ v["W3"] + v["b3"]


def _clear(v, x, labels) -> bool:
    pre, pooled, hidden, logits = _forward(v, x)
    top = np.sort(pooled, axis=-1)
    gaps = (top[..., -1] - top[..., -2])[top[..., -1] > 0]
    return bool(np.min(np.abs(pre)) >= MARGIN and np.min(np.abs(hidden)) >= MARGIN
                and (gaps.size == 0 or gaps.min() >= MARGIN) and plausible(logits, labels))


def book_params(v) -> dict[str, np.ndarray]:
    """The weights the book's __init__ draws after ``np.random.seed(init_seed)`` (zero biases)."""
    rs, std, (c, size, _), conv_param = np.random.RandomState(v["init_seed"]), v["std"], v["input_dim"], \
        v["conv_param"]
    fn, fs = conv_param["filter_num"], conv_param["filter_size"]
    pooled = ((size - fs + 2 * conv_param["pad"]) // conv_param["stride"] + 1) // 2  # 2x2 pooling, stride 2
    w1 = std * rs.randn(fn, c, fs, fs)
    w2 = std * rs.randn(fn * pooled * pooled, v["hidden"])
    return {"W1": w1, "b1": np.zeros(fn), "W2": w2, "b2": np.zeros(v["hidden"]),
            "W3": std * rs.randn(v["hidden"], v["classes"]), "b3": np.zeros(v["classes"])}


def _net(pad: int, one_hot: bool):
    def make(rng):
        n = int(rng.integers(3, 5))
        channels, filters = (int(v) for v in rng.choice([1, 2, 3], size=2, replace=False))
        hidden, classes = sizes(rng, 2, 3, 6)
        size = 8 - 2 * pad  # a 3x3 filter: the convolution's output is 6x6, pooled to 3x3
        v = {"input_dim": (channels, size, size), "hidden": hidden, "classes": classes, "std": 0.3,
             "conv_param": {"filter_num": filters, "filter_size": 3, "pad": pad, "stride": 1},
             "init_seed": int(rng.integers(2**31))}
        v.update(book_params(v))
        while True:
            x, labels = rng.standard_normal((n, channels, size, size)), rng.integers(0, classes, n)
            if _clear(v, x, labels):
                return {**v, "x": x, "t": np.eye(classes)[labels] if one_hot else labels}
    return make


EXERCISE = NetworkExercise(
    part="SimpleConvNet", short="Net", cls="SimpleConvNet", module="simple_convnet", params=PARAMS,
    build=lambda v: (v["input_dim"], v["conv_param"], v["hidden"], v["classes"], v["std"]), seed_key="init_seed",
    points={"loss": 1, "W1": 2, "b1": 1, "W2": 2, "b2": 1, "W3": 1, "b3": 1},
    cases=[Case("class-index labels", _net(0, one_hot=False)),
           Case("one-hot labels, padding 1", _net(1, one_hot=True))],
    walk=WALK, walk_grads=GRADS, depends=("col2im", "Convolution", "Pooling"),
    misconceptions=[
        Misconception("layers-forward-order", "layers walked in forward order",
                      "Backpropagation visits the layers in *reverse*: from last_layer back to Conv1.",
                      trace=lambda t: t[:1] == ["layers['Conv1']"]),
    ],
)
