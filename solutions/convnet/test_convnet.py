"""Check your layers against numerical gradients of your own forward passes.

Run ``pytest`` in this folder. No reference solution is involved: each test perturbs the
inputs of *your* forward pass and compares the slope with what *your* backward returns
(col2im: with the gradient of the given im2col). Shapes are random and non-square, the
batch has more than one sample and the upstream gradient ``dout`` is random, so a lucky
coincidence cannot pass. Passing here is a good sign, not a grade: the hidden tests check
more cases. ``pytest --part Convolution`` runs one part's checks (the ``part`` marks below);
in the notebook, the *Autograded* cell of a part runs them.
"""
import numpy as np
import pytest
from common.util import im2col
from gradcheck import assert_gradient, numerical_gradient

rng = np.random.default_rng()
MARGIN = 1e-3  # ReLU's kink and ties of a max have no derivative: stay this far from them


def call(name, method, *args):
    """Call ``method``; an untouched stub fails with a clear message."""
    try:
        return method(*args)
    except NotImplementedError:
        pass  # fail outside the handler, so the report shows one clean message
    pytest.fail(f"{name} is not implemented yet", pytrace=False)


def check_layer(make, forward_args, inputs, attrs=()):
    """forward + backward of a fresh layer; every gradient against numerical gradients.

    ``inputs``: the forward argument that ``dx`` is the gradient of (a name for the
    message, the array); ``attrs``: (attribute with the gradient, name of the parameter)."""
    name = type(make()).__name__
    layer = make()
    out = call(f"{name}.forward", layer.forward, *(a.copy() if isinstance(a, np.ndarray) else a
                                                    for a in forward_args))
    dout = rng.normal(size=np.shape(out))
    dx = call(f"{name}.backward", layer.backward, dout.copy())
    assert_gradient(f"{name}.backward: dx", dx,
                    numerical_gradient(lambda: make().forward(*forward_args), inputs, dout))
    probe = make()  # numerical gradients perturb this layer's own parameters
    for attr, param in attrs:
        assert_gradient(f"{name}.backward: {attr}", getattr(layer, attr, None),
                        numerical_gradient(lambda: probe.forward(*forward_args), getattr(probe, param), dout))


@pytest.mark.part("col2im")
@pytest.mark.parametrize("filter_h, filter_w, stride, pad", [(3, 3, 1, 0), (3, 2, 2, 1)],
                         ids=["3x3 stride 1", "3x2 stride 2 pad 1"])
def test_col2im(filter_h, filter_w, stride, pad):
    """col2im(dcol) is the gradient of sum(im2col(x) * dcol) with respect to x."""
    from convnet_layers import col2im
    x = rng.normal(size=(2, 3, 6, 5))
    dcol = rng.normal(size=im2col(x, filter_h, filter_w, stride, pad).shape)
    got = call("col2im", col2im, dcol.copy(), x.shape, filter_h, filter_w, stride, pad)
    assert_gradient("col2im", got,
                    numerical_gradient(lambda: im2col(x, filter_h, filter_w, stride, pad), x, dcol))


@pytest.mark.part("BatchNormalization")
@pytest.mark.parametrize("shape", [(5, 4), (4, 2, 3, 2)], ids=["2-D input", "4-D input"])
def test_batch_normalization(shape):
    from convnet_layers import BatchNormalization
    d = int(np.prod(shape[1:]))
    x = rng.normal(rng.uniform(-2, 2, d), rng.uniform(0.5, 2, d), (shape[0], d)).reshape(shape)
    gamma, beta = rng.uniform(0.5, 2, d), rng.normal(size=d)
    check_layer(lambda: BatchNormalization(gamma, beta), (x, True), x, [("dgamma", "gamma"), ("dbeta", "beta")])


@pytest.mark.part("BatchNormalization")
def test_batch_normalization_test_mode():
    """With momentum 0 the running statistics become this batch's: test mode then gives
    exactly what training gave."""
    from convnet_layers import BatchNormalization
    x = rng.normal(1.0, 2.0, size=(6, 4))
    layer = BatchNormalization(rng.uniform(0.5, 2, 4), rng.normal(size=4), momentum=0.0)
    trained = call("BatchNormalization.forward", layer.forward, x.copy(), True)
    tested = layer.forward(x.copy(), False)
    assert np.allclose(tested, trained, rtol=1e-6, atol=1e-9), \
        "BatchNormalization: test mode must normalize with running_mean and running_var"


def seeded(make, seed):
    """A factory whose every layer draws its mask right after ``np.random.seed(seed)``."""
    def fresh():
        np.random.seed(seed)
        return make()
    return fresh


@pytest.mark.part("Dropout")
@pytest.mark.parametrize("shape", [(4, 6), (3, 2, 4, 3)], ids=["2-D input", "4-D input"])
def test_dropout(shape):
    """The same seed before every forward: the same mask in every call."""
    from convnet_layers import Dropout
    x, ratio = rng.normal(size=shape), 0.3
    make = seeded(lambda: Dropout(ratio), int(rng.integers(2**31)))
    check_layer(make, (x, True), x)
    out = make().forward(x.copy(), True)
    assert np.all((out == x) | (out == 0)), "Dropout: in training, kept units pass unchanged (no scaling)"
    tested = Dropout(ratio).forward(x.copy(), False)
    assert np.allclose(tested, x * (1 - ratio)), "Dropout: test mode scales by (1 - dropout_ratio)"


@pytest.mark.part("Convolution")
@pytest.mark.parametrize("fh, fw, stride, pad", [(3, 3, 1, 0), (3, 2, 2, 1)],
                         ids=["3x3 stride 1", "3x2 stride 2 pad 1"])
def test_convolution(fh, fw, stride, pad):
    from convnet_layers import Convolution
    x = rng.normal(size=(2, 3, 6, 5))
    W, b = rng.normal(size=(4, 3, fh, fw)), rng.normal(size=4)
    check_layer(lambda: Convolution(W, b, stride, pad), (x,), x, [("dW", "W"), ("db", "b")])


@pytest.mark.part("Pooling")
@pytest.mark.parametrize("pool_h, pool_w, stride", [(2, 2, 2), (3, 2, 1)], ids=["2x2 stride 2", "3x2 stride 1"])
def test_pooling(pool_h, pool_w, stride):
    from convnet_layers import Pooling
    while True:  # no window whose two largest entries are close: max has no derivative there
        x = rng.normal(size=(2, 3, 6, 4))
        top = np.sort(im2col(x, pool_h, pool_w, stride).reshape(-1, pool_h * pool_w), axis=1)
        if np.min(top[:, -1] - top[:, -2]) > MARGIN:
            break
    check_layer(lambda: Pooling(pool_h, pool_w, stride), (x,), x)


@pytest.mark.part("SimpleConvNet")
def test_simple_convnet_gradient():
    from simple_convnet import SimpleConvNet
    net = SimpleConvNet(input_dim=(2, 6, 6), conv_param={"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1},
                        hidden_size=5, output_size=4, weight_init_std=0.3)
    x, t = rng.normal(size=(3, 2, 6, 6)), rng.integers(0, 4, size=3)
    while not clear_of_kinks(net, x):
        x = rng.normal(size=(3, 2, 6, 6))
    grads = call("SimpleConvNet.gradient", net.gradient, x, t)
    for key in ("W1", "b1", "W2", "b2", "W3", "b3"):
        numeric = numerical_gradient(lambda: net.loss(x, t), net.params[key])
        assert_gradient(f"SimpleConvNet.gradient: {key}", grads.get(key), numeric)


def clear_of_kinks(net, x):
    """No ReLU input within MARGIN of 0 and no pooling window with a near-tie, by your own
    forward passes."""
    conv = call("Convolution.forward", net.layers["Conv1"].forward, x)
    pooled = net.layers["Pool1"].forward(np.maximum(conv, 0))
    hidden = net.layers["Affine1"].forward(pooled)
    top = np.sort(im2col(np.maximum(conv, 0), 2, 2, 2).reshape(-1, 4), axis=1)
    gaps = (top[:, -1] - top[:, -2])[top[:, -1] > 0]
    return min(np.min(np.abs(conv)), np.min(np.abs(hidden)), np.min(gaps, initial=1.0)) > MARGIN
