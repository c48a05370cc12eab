"""Check your backward passes against numerical gradients of your own forward passes.

Run ``pytest`` in this folder. No reference solution is involved: each test perturbs
the inputs of *your* forward pass and compares the slope with what *your* backward
returns. Shapes are random and non-square, the batch has more than one sample and
the upstream gradient ``dout`` is random, so a lucky coincidence cannot pass.
Passing here is a good sign, not a grade: the hidden tests check more cases.
``pytest --part Affine`` runs one part's checks (the ``part`` marks below); in the
notebook, the *Autograded* cell of a part runs them.
"""
import numpy as np
import pytest
from gradcheck import assert_gradient, numerical_gradient

rng = np.random.default_rng()


def away_from_zero(shape, margin=1e-2):
    """Random inputs whose |value| >= margin: ReLU's kink at 0 has no derivative."""
    x = rng.normal(size=shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-12) * margin * 2, x)


def check_binary_layer(layer_class):
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    dout = rng.normal(size=(3, 4))
    layer = layer_class()
    layer.forward(x.copy(), y.copy())
    dx, dy = layer.backward(dout.copy())
    name = layer_class.__name__
    assert_gradient(f"{name}.backward: dx", dx,
                    numerical_gradient(lambda: layer_class().forward(x, y), x, dout))
    assert_gradient(f"{name}.backward: dy", dy,
                    numerical_gradient(lambda: layer_class().forward(x, y), y, dout))


@pytest.mark.part("MulLayer")
def test_mul_layer():
    from layers import MulLayer
    check_binary_layer(MulLayer)


@pytest.mark.part("AddLayer")
def test_add_layer():
    from layers import AddLayer
    check_binary_layer(AddLayer)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.part(n)) for n in ("Relu", "Sigmoid")])
def test_activation(name):
    import layers
    layer_class = getattr(layers, name)
    x, dout = away_from_zero((3, 5)), rng.normal(size=(3, 5))
    layer = layer_class()
    layer.forward(x.copy())
    dx = layer.backward(dout.copy())
    assert_gradient(f"{name}.backward: dx", dx,
                    numerical_gradient(lambda: layer_class().forward(x), x, dout))


@pytest.mark.part("Affine")
@pytest.mark.parametrize("x_shape", [(3, 6), (3, 2, 1, 3)], ids=["2-D input", "4-D input"])
def test_affine(x_shape):
    from layers import Affine
    x = rng.normal(size=x_shape)
    W, b = rng.normal(size=(6, 4)), rng.normal(size=4)
    dout = rng.normal(size=(3, 4))
    layer = Affine(W.copy(), b.copy())
    layer.forward(x.copy())
    dx = layer.backward(dout.copy())
    probe = Affine(W, b)  # numerical gradients perturb this layer's own W and b
    assert_gradient("Affine.backward: dx", dx, numerical_gradient(lambda: Affine(W, b).forward(x), x, dout))
    assert_gradient("Affine.backward: dW", layer.dW, numerical_gradient(lambda: probe.forward(x), probe.W, dout))
    assert_gradient("Affine.backward: db", layer.db, numerical_gradient(lambda: probe.forward(x), probe.b, dout))


@pytest.mark.part("SoftmaxWithLoss")
@pytest.mark.parametrize("labels", ["one-hot", "class indices"])
def test_softmax_with_loss(labels):
    from layers import SoftmaxWithLoss
    x = rng.normal(size=(4, 5))
    classes = rng.integers(0, 5, size=4)
    t = np.eye(5)[classes] if labels == "one-hot" else classes
    layer = SoftmaxWithLoss()
    layer.forward(x.copy(), t)
    dx = layer.backward()
    assert_gradient(f"SoftmaxWithLoss.backward ({labels} labels): dx", dx,
                    numerical_gradient(lambda: SoftmaxWithLoss().forward(x, t), x))


@pytest.mark.part("TwoLayerNet")
def test_two_layer_net_gradient():
    from two_layer_net import TwoLayerNet
    # moderate weights: the book's +1e-7 inside log distorts gradients where a class
    # probability is tiny, which large weights would cause
    net = TwoLayerNet(input_size=6, hidden_size=5, output_size=4, weight_init_std=0.3)
    x, t = rng.normal(size=(3, 6)), rng.integers(0, 4, size=3)
    while np.min(np.abs(x @ net.params["W1"] + net.params["b1"])) < 1e-2:  # ReLU kink
        x = rng.normal(size=(3, 6))
    grads = net.gradient(x, t)
    assert isinstance(grads, dict), f"TwoLayerNet.gradient returned {type(grads).__name__}, not a dict"
    for key in ("W1", "b1", "W2", "b2"):
        numeric = numerical_gradient(lambda: net.loss(x, t), net.params[key])
        assert_gradient(f"TwoLayerNet.gradient: {key}", grads.get(key), numeric)


@pytest.mark.part("ShoppingGraph")
def test_shopping_graph():
    from buy_apple_orange import buy_apple_orange
    inputs = {"apple": 100.0, "apple_num": 2.0, "orange": 150.0, "orange_num": 3.0, "tax": 1.1}
    price, grads = buy_apple_orange(**inputs)
    assert price == pytest.approx(715.0), f"buy_apple_orange: price {price!r}, expected 715.0 (keep the forward)"
    for name in inputs:
        def price_of(value, name=name):
            return buy_apple_orange(**{**inputs, name: value})[0]
        h = 1e-3
        numeric = (price_of(inputs[name] + h) - price_of(inputs[name] - h)) / (2 * h)
        assert grads[name] == pytest.approx(numeric, rel=1e-6), \
            f"buy_apple_orange: d price / d {name} is {grads[name]!r}, numerically {numeric:.6g}"
