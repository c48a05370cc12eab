"""Check your work: numerical gradients of your own code, and the notes' worked example.

Run ``pytest`` in this folder. No reference solution is involved: each test perturbs
the inputs of *your* forward pass (or loss) and compares the slope with what *your*
backward pass returns. Shapes are random and non-square, the batch has more than one
sample, and ``dout`` is random, so a lucky coincidence cannot pass.

``test_the_notes_worked_example`` rebuilds the notes' PyTorch recomputation
(``torch.manual_seed(13)``) without PyTorch: the weights and the input that seed gives
are written out below, and your gradients must print what PyTorch printed.
Passing here is a good sign, not your grade: the hidden tests check more cases.
``pytest --part SigmoidOutput`` runs one part's checks (the ``part`` marks below); in the
notebook, the *Autograded* cell of a part runs them.
"""
import numpy as np
import pytest
from gradcheck import assert_gradient, numerical_gradient

rng = np.random.default_rng()


def call(what, method, *args):
    """Call ``method``; an untouched stub fails with a clear message."""
    try:
        return method(*args)
    except NotImplementedError:
        pass  # fail outside the handler, so the report shows one clean message
    pytest.fail(f"{what} is not implemented yet", pytrace=False)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.part(n)) for n in ("SSELoss", "MSELoss")])
def test_loss(name):
    import losses
    loss_class = getattr(losses, name)
    y, t = sigmoid(rng.normal(size=(4, 3))), rng.uniform(size=(4, 3))
    layer = loss_class()
    layer.forward(y.copy(), t.copy())
    dy = call(f"{name}.backward", layer.backward)
    assert_gradient(f"{name}.backward: dy", dy, numerical_gradient(lambda: loss_class().forward(y, t), y))


@pytest.mark.part("SigmoidOutput")
@pytest.mark.parametrize("inputs, outputs", [(5, 2), (4, 4)], ids=["5 inputs to 2 outputs", "square W"])
def test_sigmoid_output(inputs, outputs):
    from delta_rule import SigmoidOutput
    x, dout = rng.normal(size=(3, inputs)), rng.normal(size=(3, outputs))
    W, b = rng.normal(size=(inputs, outputs)) / np.sqrt(inputs), rng.normal(size=outputs)
    layer = SigmoidOutput(W.copy(), b.copy())
    layer.forward(x.copy())
    dx = call("SigmoidOutput.backward", layer.backward, dout.copy())
    probe = SigmoidOutput(W, b)  # numerical gradients perturb this layer's own W and b
    assert_gradient("SigmoidOutput.backward: dx", dx,
                    numerical_gradient(lambda: SigmoidOutput(W, b).forward(x), x, dout))
    for name in ("W", "b"):
        assert_gradient(f"SigmoidOutput.backward: d{name}", getattr(layer, f"d{name}"),
                        numerical_gradient(lambda: probe.forward(x), getattr(probe, name), dout))


@pytest.mark.part("DeltaRule")
def test_delta_rule_step():
    """The step must be -lr times the gradient of E = 1/2 sum (t - sigmoid(x . W))^2."""
    from delta_rule import delta_rule_step
    W, x = rng.normal(size=(4, 3)) / 2, rng.normal(size=(5, 4))
    t, lr = rng.integers(0, 2, size=(5, 3)).astype(float), 0.3
    given = W.copy()
    W_new = call("delta_rule_step", delta_rule_step, given, x.copy(), t.copy(), lr)
    assert np.array_equal(given, W), "delta_rule_step changed the W it was given: return a new array"
    assert isinstance(W_new, np.ndarray) and W_new.shape == W.shape, \
        f"delta_rule_step must return the updated weights, an array of shape {W.shape}"
    error = numerical_gradient(lambda: 0.5 * np.sum((t - sigmoid(x @ W)) ** 2), W)
    assert_gradient("delta_rule_step: the step, (W - W_new) / lr, against dE/dW", (W - W_new) / lr, error)


@pytest.mark.part("ThreeLayerNet")
@pytest.mark.parametrize("sizes", [(4, 5, 2, 1), (6, 4, 4, 3)], ids=["4-5-2-1", "6-4-4-3"])
def test_three_layer_net_gradient(sizes):
    from three_layer_net import ThreeLayerNet
    net = ThreeLayerNet(*sizes)
    p = net.params

    def pre_activations(x):
        a1 = x @ p["W1"] + p["b1"]
        return a1, np.maximum(a1, 0) @ p["W2"] + p["b2"]

    x = rng.normal(size=(3, sizes[0]))
    while min(np.min(np.abs(a)) for a in pre_activations(x)) < 1e-2:  # away from the ReLU kinks
        x = rng.normal(size=(3, sizes[0]))
    t = rng.uniform(size=(3, sizes[-1]))
    grads = call("ThreeLayerNet.gradient", net.gradient, x, t)
    for key in ("W1", "b1", "W2", "b2", "W3", "b3"):
        assert_gradient(f"ThreeLayerNet.gradient: {key}", grads.get(key),
                        numerical_gradient(lambda: net.loss(x, t), p[key]))


# The notes' network after torch.manual_seed(13), as PyTorch prints it (fc.weight has shape
# (outputs, inputs): W = fc.weight.T), and the input torch.randn(4) draws next. Made once with
#     torch.manual_seed(13); net = Net(); x = torch.randn(4)
#     [p.tolist() for p in net.parameters()], x.tolist()
# (torch 2.13.0, the notes' Net class): the same float32 numbers, here in float64.
FC1_WEIGHT = [[-0.4081829786300659, -0.02061939239501953, 0.3105512857437134, -0.4848928451538086],
              [-0.48469698429107666, 0.10356724262237549, -0.2682044506072998, 0.36329036951065063],
              [0.485884428024292, -0.3024944067001343, -0.4169939160346985, -0.07465207576751709],
              [0.4148705005645752, -0.0201035737991333, 0.034786343574523926, -0.23053467273712158],
              [-0.24698317050933838, -0.16099709272384644, 0.33666688203811646, -0.3711198568344116]]
FC1_BIAS = [0.4693494439125061, -0.050486862659454346, -0.09693598747253418, 0.32023632526397705,
            0.47919654846191406]
FC2_WEIGHT = [[-0.1540084332227707, -0.08264359086751938, 0.2035931944847107, -0.04415711387991905,
               -0.2384852170944214],
              [-0.41047409176826477, -0.2288435846567154, 0.09629946202039719, 0.2927547097206116,
               0.4300321936607361]]
FC2_BIAS = [-0.2046961635351181, -0.08079484105110168]
FC3_WEIGHT = [[-0.28248974680900574, 0.3301463723182678]]
FC3_BIAS = [-0.4829157292842865]
INPUT = [-0.024782538414001465, -0.7706829309463501, 1.0207524299621582, 0.8831108212471008]
TARGET = [1.0]
# What the notes print (4 decimals), and the two entries they derive by hand:
#   -2 (1 - 0.3875) * 0.3875 (1 - 0.3875) * 0.0765                  = -0.02224
#   -2 (1 - 0.3875) * 0.3875 (1 - 0.3875) * 0.33015 * 1 * 0.3841    = -0.03687
PRINTED = {"fc2.weight.grad": [[0.0000, 0.0000, 0.0000, 0.0000, 0.0000],
                               [-0.0369, -0.0000, -0.0000, -0.0151, -0.0600]],
           "fc3.weight.grad": [[0.0000, -0.0222]]}
BY_HAND = [("fc3.weight.grad", (0, 1), -0.02224), ("fc2.weight.grad", (1, 0), -0.03687)]


@pytest.mark.part("ThreeLayerNet")
def test_the_notes_worked_example():
    from three_layer_net import ThreeLayerNet
    net = ThreeLayerNet(4, 5, 2, 1)
    for layer, (weight, bias) in enumerate([(FC1_WEIGHT, FC1_BIAS), (FC2_WEIGHT, FC2_BIAS),
                                            (FC3_WEIGHT, FC3_BIAS)], start=1):
        net.params[f"W{layer}"][...] = np.array(weight).T
        net.params[f"b{layer}"][...] = bias
    x, t = np.array([INPUT]), np.array([TARGET])
    assert net.forward(x)[0, 0] == pytest.approx(0.3875, abs=5e-5), "the output o must be 0.3875, as in the notes"
    grads = call("ThreeLayerNet.gradient", net.gradient, x, t)
    as_printed = {"fc2.weight.grad": np.asarray(grads["W2"]).T, "fc3.weight.grad": np.asarray(grads["W3"]).T}
    for name, printed in PRINTED.items():
        yours = np.round(as_printed[name], 4) + 0.0  # + 0.0: no -0.0 in the message
        assert np.allclose(as_printed[name], printed, atol=5e-5), \
            f"{name}: PyTorch prints {printed}, yours (your dE/dW transposed) is {yours.tolist()}"
    for name, (row, column), value in BY_HAND:
        yours = as_printed[name][row, column]
        assert yours == pytest.approx(value, abs=1e-5), \
            f"{name}[{row}][{column}]: the notes derive {value} by hand, yours is {yours:.5f}"
