"""The delta rule of the notes: a layer of sigmoid output nodes, and one learning step.

Node j of the layer below sends o_j; output node k computes

    net_k = sum_j o_j * w_jk + b_k        o_k = sigmoid(net_k)

so the weights form a matrix W with W[j, k] = w_jk, of shape (inputs, outputs), and a
batch of N samples is a matrix x of shape (N, inputs) holding the o_j. (PyTorch's
``nn.Linear`` stores the transpose: ``fc.weight`` has shape (outputs, inputs).)

The sigmoid's derivative, from the notes: sigmoid'(x) = sigmoid(x) * (1 - sigmoid(x)).
"""
import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class SigmoidOutput:
    """A layer of sigmoid output nodes: o_k = sigmoid(sum_j o_j w_jk + b_k)."""

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.x = None
        self.out = None
        self.dW = None
        self.db = None

    def forward(self, x):
        """Return o (shape (N, outputs)) for the inputs x (shape (N, inputs))."""
        self.x = x
        self.out sigmoid(np.dot(x, self.W) + self.b)
        return self.out

    def backward(self, dout):
        """``dout`` holds dE/do_k, shape (N, outputs).

        Set ``self.dW`` (dE/dw_jk, the shape of W) and ``self.db`` (dE/db_k, the shape
        of b), and return dE/do_j, the shape of x: the error passed back to the layer
        below. Use the forward pass's ``self.x`` and ``self.out``.
        """
        delta = dout * self.out * (1.0 - self.out)  # dE/dnet_k: the chain rule through the sigmoid
        self.dW = np.dot(self.x.T, delta)
        self.db = np.sum(delta, axis=0)
        dx = np.dot(delta, self.W.T)
        return dx


def delta_rule_step(W, x, t, lr):
    """One step of the delta rule; return the updated weights W + Delta W (shape of W).

    The output nodes compute o_k = sigmoid(sum_j o_j w_jk) (no bias) for every sample
    of ``x`` (shape (N, inputs)); the error is E = 1/2 * sum over the batch and the
    outputs of (t_k - o_k)^2, with ``t`` of shape (N, outputs). The delta rule moves each
    weight against its gradient, scaled by the learning rate eta = ``lr``:

        Delta w_jk = -eta * dE/dw_jk

    Return a new array; leave ``W`` as it is.
    """
    o = sigmoid(np.dot(x, W))
    delta = (t - o) * o * (1.0 - o)
    W_new = W + lr * np.dot(x.T, delta)
    return W_new
