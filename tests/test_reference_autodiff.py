"""Independent proof of the reference: its gradients equal two autodiff libraries' gradients.

Every forward pass is written again, independently, for ``autograd`` (autograd.numpy)
and for ``torch`` (float64 tensors). A layer's gradient is the vector-Jacobian product
with a random, non-constant ``dout``: the gradient of ``sum(f(x) * dout)``. Losses use
the exact cross-entropy (no ``+1e-7`` inside the log), because the reference backward is
the exact gradient.

Agreement criterion, per gradient tensor, in float64:

    max_i |ref_i - oracle_i| / max(max_i |oracle_i|, tiny)  <=  1e-10

(tiny = the smallest normal float64), plus identical shapes and a float64 dtype.
"""
from __future__ import annotations

import zlib

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import BACKPROP

RTOL = 1e-10
TINY = np.finfo(np.float64).tiny
ORACLES = ("autograd", "torch")

REF = BACKPROP.reference
layers = REF["layers"]
TwoLayerNet = REF["two_layer_net"].TwoLayerNet
buy_apple_orange = REF["buy_apple_orange"].buy_apple_orange


def relative_error(actual, expected) -> float:
    """max |actual - expected| / max(max |expected|, tiny), over the whole tensor."""
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), TINY))


def assert_matches(where, actual, expected):
    actual = np.asarray(actual)
    assert actual.shape == np.shape(expected), f"{where}: shape {actual.shape}"
    assert actual.dtype == np.float64, f"{where}: dtype {actual.dtype}"
    error = relative_error(actual, expected)
    assert error <= RTOL, f"{where}: relative error {error:.3e} > {RTOL:.0e}"


# ------------------------------------------------------------------ oracles


def vjp(oracle, forwards, inputs, dout):
    """Gradients of sum(f(*inputs) * dout) w.r.t. every input, by ``oracle``.

    ``forwards`` maps the oracle name to its own implementation of f; ``dout`` may be a
    scalar for a scalar-valued f.
    """
    f = forwards[oracle]
    if oracle == "autograd":
        grads = autograd.grad(lambda *a: anp.sum(f(*a) * dout), argnum=tuple(range(len(inputs))))
        return [np.asarray(g) for g in grads(*inputs)]
    tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    out = f(*tensors)
    weights = torch.as_tensor(np.asarray(dout, dtype=np.float64))
    return [g.numpy() for g in torch.autograd.grad(out, tensors, grad_outputs=weights)]


def anp_cross_entropy(scores, t):
    """Exact mean cross-entropy of softmax(scores); t one-hot (N, C) or indices (N,)."""
    z = scores - anp.max(scores, axis=1, keepdims=True)
    log_p = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
    n = scores.shape[0]
    if t.ndim == 2:
        return -anp.sum(t * log_p) / n
    return -anp.sum(log_p[np.arange(n), t]) / n


def torch_cross_entropy(scores, t):
    """torch's own cross-entropy: class probabilities (one-hot) or class indices."""
    target = torch.tensor(t, dtype=torch.float64 if t.ndim == 2 else torch.long)
    return F.cross_entropy(scores, target)


MUL = {"autograd": lambda x, y: x * y, "torch": torch.mul}
ADD = {"autograd": lambda x, y: x + y, "torch": torch.add}
RELU = {"autograd": lambda x: anp.maximum(x, 0.0), "torch": torch.relu}
SIGMOID = {"autograd": lambda x: 1.0 / (1.0 + anp.exp(-x)), "torch": torch.sigmoid}
AFFINE = {
    "autograd": lambda x, W, b: anp.dot(anp.reshape(x, (x.shape[0], -1)), W) + b,
    "torch": lambda x, W, b: torch.flatten(x, 1) @ W + b,
}


def two_layer_net_loss(oracle, x, t):
    """Loss of Affine -> ReLU -> Affine -> softmax cross-entropy as f(W1, b1, W2, b2)."""
    if oracle == "autograd":
        flat = x.reshape(x.shape[0], -1)
        return lambda W1, b1, W2, b2: anp_cross_entropy(
            anp.dot(anp.maximum(anp.dot(flat, W1) + b1, 0.0), W2) + b2, t)
    flat = torch.tensor(x.reshape(x.shape[0], -1), dtype=torch.float64)
    return lambda W1, b1, W2, b2: torch_cross_entropy(
        torch.relu(flat @ W1 + b1) @ W2 + b2, t)


def shopping_price(oracle):
    """(apple * apple_num + orange * orange_num) * tax, the same for both libraries."""
    price = lambda a, an, o, on, tax: (a * an + o * on) * tax  # noqa: E731
    return {oracle: price}


# ------------------------------------------------------------------- inputs


def rng_for(*key) -> np.random.Generator:
    """A generator seeded by the test's parameters: reproducible across runs and processes."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def away_from_zero(rng, shape, margin=1e-3):
    """Normal samples with |x| >= margin (ReLU has no derivative at 0), both signs present."""
    x = rng.normal(size=shape)
    x = np.where(x >= 0, x + margin, x - margin)
    assert (x > 0).any() and (x < 0).any()
    return x


# -------------------------------------------------------------------- layers

SHAPES = [(3, 4), (5, 2, 3), (4, 7, 2, 3)]


@pytest.mark.parametrize("oracle", ORACLES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(("name", "forwards"), [("MulLayer", MUL), ("AddLayer", ADD)])
def test_binary_layers(oracle, shape, name, forwards):
    """MulLayer/AddLayer return (dx, dy) equal to the VJP of x*y / x+y."""
    rng = rng_for(name, shape)
    x, y, dout = (rng.normal(size=shape) for _ in range(3))
    layer = getattr(layers, name)()
    layer.forward(x.copy(), y.copy())
    dx, dy = layer.backward(dout.copy())
    ex, ey = vjp(oracle, forwards, [x, y], dout)
    assert_matches(f"{name} dx", dx, ex)
    assert_matches(f"{name} dy", dy, ey)


@pytest.mark.parametrize("oracle", ORACLES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(("name", "forwards"), [("Relu", RELU), ("Sigmoid", SIGMOID)])
def test_activations(oracle, shape, name, forwards):
    """Relu/Sigmoid backward equals the VJP of max(x, 0) / 1/(1+exp(-x))."""
    rng = rng_for(name, shape)
    x, dout = away_from_zero(rng, shape), rng.normal(size=shape)
    layer = getattr(layers, name)()
    layer.forward(x.copy())
    dx = layer.backward(dout.copy())
    (expected,) = vjp(oracle, forwards, [x], dout)
    assert_matches(f"{name} dx", dx, expected)


@pytest.mark.parametrize("oracle", ORACLES)
@pytest.mark.parametrize(
    ("x_shape", "out"),
    [((3, 6), 4), ((5, 7), 3), ((3, 2, 3, 4), 5), ((4, 3, 5), 2)],
    ids=["2-D 3x6->4", "2-D 5x7->3", "4-D 3x2x3x4->5", "3-D 4x3x5->2"],
)
def test_affine(oracle, x_shape, out):
    """Affine: dx (in the original, possibly 4-D, shape), dW and db equal the VJP of x.W + b."""
    rng = rng_for("Affine", x_shape, out)
    features = int(np.prod(x_shape[1:]))
    x, W, b = rng.normal(size=x_shape), rng.normal(size=(features, out)), rng.normal(size=out)
    dout = rng.normal(size=(x_shape[0], out))
    layer = layers.Affine(W.copy(), b.copy())
    layer.forward(x.copy())
    dx = layer.backward(dout.copy())
    ex, eW, eb = vjp(oracle, AFFINE, [x, W, b], dout)
    assert_matches("Affine dx", dx, ex)
    assert_matches("Affine dW", layer.dW, eW)
    assert_matches("Affine db", layer.db, eb)


@pytest.mark.parametrize("oracle", ORACLES)
@pytest.mark.parametrize("labels", ["one-hot", "class indices"])
@pytest.mark.parametrize("shape", [(3, 5), (6, 4), (4, 10)], ids=str)
@pytest.mark.parametrize("dout", [None, 0.37], ids=["default dout", "dout=0.37"])
def test_softmax_with_loss(oracle, labels, shape, dout):
    """SoftmaxWithLoss.backward is the exact gradient of the mean cross-entropy, both labels."""
    rng = rng_for("SoftmaxWithLoss", labels, shape)
    n, classes = shape
    x = rng.normal(scale=2.0, size=shape)
    index = rng.integers(0, classes, size=n)
    t = np.eye(classes)[index] if labels == "one-hot" else index
    layer = layers.SoftmaxWithLoss()
    layer.forward(x.copy(), t.copy())
    dx = layer.backward() if dout is None else layer.backward(dout)
    forwards = {"autograd": lambda s: anp_cross_entropy(s, t),
                "torch": lambda s: torch_cross_entropy(s, t)}
    (expected,) = vjp(oracle, forwards, [x], 1.0 if dout is None else dout)
    assert_matches(f"SoftmaxWithLoss dx ({labels})", dx, expected)


# ------------------------------------------------------------------ network


@pytest.mark.parametrize("oracle", ORACLES)
@pytest.mark.parametrize("labels", ["one-hot", "class indices"])
@pytest.mark.parametrize(
    ("x_shape", "hidden", "classes"),
    [((4, 7), 5, 3), ((3, 6), 8, 4), ((5, 2, 3), 4, 6)],
    ids=["4x7-5-3", "3x6-8-4", "5x2x3-4-6"],
)
def test_two_layer_net_gradient(oracle, labels, x_shape, hidden, classes):
    """TwoLayerNet.gradient returns all four parameter gradients of the exact loss."""
    rng = rng_for("TwoLayerNet", labels, x_shape)
    features = int(np.prod(x_shape[1:]))
    net = TwoLayerNet(input_size=features, hidden_size=hidden, output_size=classes)
    for value in net.params.values():  # in place: the layers hold these same arrays
        value[...] = rng.normal(scale=0.7, size=value.shape)
    params = {key: value.copy() for key, value in net.params.items()}
    x = rng.normal(size=x_shape)
    pre = lambda x: x.reshape(len(x), -1) @ params["W1"] + params["b1"]  # noqa: E731
    while np.min(np.abs(pre(x))) < 1e-3:  # keep every ReLU input off its kink
        x = rng.normal(size=x_shape)
    assert (pre(x) > 0).any() and (pre(x) < 0).any()
    index = rng.integers(0, classes, size=x_shape[0])
    t = np.eye(classes)[index] if labels == "one-hot" else index

    grads = net.gradient(x.copy(), t.copy())

    assert set(grads) == {"W1", "b1", "W2", "b2"}
    loss = {oracle: two_layer_net_loss(oracle, x, t)}
    names = ("W1", "b1", "W2", "b2")
    expected = vjp(oracle, loss, [params[k] for k in names], 1.0)
    for key, want in zip(names, expected, strict=True):
        assert_matches(f"TwoLayerNet.gradient {key}", grads[key], want)


# ----------------------------------------------------------- shopping graph

BOOK = {"apple": 100.0, "apple_num": 2.0, "orange": 150.0, "orange_num": 3.0, "tax": 1.1}


def _random_inputs(seed):
    rng = np.random.default_rng(seed)
    return dict(zip(BOOK, rng.uniform(0.1, 300.0, size=4).tolist() + [rng.uniform(1.0, 1.3)],
                    strict=True))


@pytest.mark.parametrize("oracle", ORACLES)
@pytest.mark.parametrize(
    "inputs", [BOOK, _random_inputs(1), _random_inputs(2), _random_inputs(3)],
    ids=["book", "random 1", "random 2", "random 3"],
)
def test_shopping_graph(oracle, inputs):
    """All five derivatives of (apple*apple_num + orange*orange_num)*tax, and the price."""
    price, grads = buy_apple_orange(**inputs)
    assert set(grads) == set(BOOK)
    values = [np.float64(inputs[name]) for name in BOOK]
    expected = vjp(oracle, shopping_price(oracle), values, 1.0)
    for name, want in zip(BOOK, expected, strict=True):
        error = relative_error(grads[name], want)
        assert error <= RTOL, f"d price / d {name}: {grads[name]} vs {want} ({error:.2e})"
    exact = (inputs["apple"] * inputs["apple_num"] + inputs["orange"] * inputs["orange_num"])
    assert relative_error(price, exact * inputs["tax"]) <= RTOL
