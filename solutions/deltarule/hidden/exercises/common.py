"""What several exercises share: the mistakes (one title and hint each), inputs, the loss layers.

Each exercise gives a shared mistake's wrong formula its own way (a layer's dW, the
net's W3, the updated weights); the title and hint the report shows are written once here.
"""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity
from grader.exercises.inputs import sizes


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_outputs(rng, shape):
    """Outputs of a sigmoid away from 0 and 1, where its derivative is not vanishingly small."""
    return sigmoid(rng.uniform(-2.5, 2.5, shape))


# --- mistakes -------------------------------------------------------------------------------
def output_derivative_missing(wrong) -> Misconception:
    """The notes' own mistake: o_k = sigmoid(net_k), and d o_k / d net_k forgotten."""
    return Misconception(
        "output-derivative-missing", "the output activation's derivative left out",
        "o_k = sigmoid(net_k), so the chain rule needs d o_k / d net_k as well. Without it, one "
        "sample's gradients stay proportional row by row to the right ones (one factor per output "
        "node) and training still works, yet the gradient check fails.", wrong=wrong)


def half_sse_factor(wrong) -> Misconception:
    return Misconception(
        "half-sse-factor", "a factor 2: SSE vs 1/2 SSE",
        "The 1/2 in E = 1/2 * sum (t - o)^2 is there to cancel the 2 that differentiating the square "
        "brings down; nn.MSELoss has no 1/2, so its 2 stays.", wrong=wrong)


def error_sign(wrong) -> Misconception:
    return Misconception(
        "error-sign", "the sign of dE/do flipped",
        "E grows as o moves away from t: where o is above t, dE/do must be positive.", wrong=wrong)


def mse_summed(over: str, wrong) -> Misconception:
    """nn.MSELoss summed, not averaged, over the outputs (a factor n) or the batch (a factor N)."""
    factor, count = {"outputs": ("n", "the number of outputs"), "batch": ("N", "the batch size")}[over]
    return Misconception(
        f"mse-sum-over-{over}", f"MSE summed over the {over} instead of averaged (a factor {factor})",
        "nn.MSELoss averages over every element, N samples times n outputs: each one's share is "
        f"divided by {count} as well.", wrong=wrong)


def not_transposed(wrong=None, shapes=None) -> Misconception:
    """W instead of W^T when the error goes back: wrong values on square weights; on others,
    the ValueError numpy raises for ``dot(delta, W)``. ``shapes(values)`` lists the
    (delta's shape, W's shape) pairs such a product would meet."""
    def raised(error, values) -> bool:
        if error["type"] != "ValueError" or shapes is None:
            return False
        said = error["message"].replace(" ", "")
        return any(f"shapes({n},{k})and({j},{k})notaligned" in said or f"(size{j}isdifferentfrom{k})" in said
                   for (n, k), (j, _) in shapes(values))

    return Misconception(
        "error-not-transposed", "W instead of W^T when passing the error back",
        "The error at node j gathers from every node k it feeds, each through w_jk: that sum is a "
        "product with the weight matrix transposed. The error passed back has the shape of the "
        "layer's input.", wrong=wrong, error=raised)


# --- the loss layers (losses.py) ------------------------------------------------------------
def _loss_inputs(rng, batch, outputs):
    return {"y": sigmoid_outputs(rng, (batch, outputs)), "t": rng.uniform(0, 1, (batch, outputs))}


def loss_exercise(part: str, short: str, misconceptions) -> LayerExercise:
    """A loss layer: ``forward(y, t)`` -> E, ``backward()`` -> dE/dy; batch >= 3, and with
    several outputs N != n, so a factor N and a factor n tell apart. The layer protocol
    tries integer targets, never integer outputs."""
    return LayerExercise(
        part=part, short=short, cls=part, module="losses", init=(), forward=("y", "t"), backward=(),
        quantities={"dy": Quantity(("return", None), wrt="y")}, points={"forward": 1, "dy": 2},
        integer_inputs=("t",),  # targets may be integers (0 and 1); y is a sigmoid's output
        cases=[Case("one output per sample, as in the notes",
                    lambda rng: _loss_inputs(rng, int(rng.integers(3, 8)), 1)),
               Case("several outputs per sample", lambda rng: _loss_inputs(rng, *sizes(rng, 2)))],
        misconceptions=misconceptions)
