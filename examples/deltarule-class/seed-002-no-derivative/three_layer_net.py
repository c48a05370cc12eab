"""The network of the notes' PyTorch recomputation, in numpy: 4 -> 5 -> 2 -> 1.

    h1 = relu(x . W1 + b1)      h2 = relu(h1 . W2 + b2)      o = sigmoid(h2 . W3 + b3)
    E  = the mean of (o - t)^2 over every sample and output (PyTorch's nn.MSELoss)

Layer l's weights W{l} have shape (inputs, outputs): W{l}[j, k] = w_jk, the transpose
of PyTorch's ``fc{l}.weight``; the sizes are configurable. The gradient check in the
notes only passes when every factor of the chain rule is there: the loss's derivative,
the sigmoid's, each weight on the way back, and each ReLU's.
"""
import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(x, 0)


class ThreeLayerNet:
    def __init__(self, input_size=4, hidden1_size=5, hidden2_size=2, output_size=1):
        sizes = (input_size, hidden1_size, hidden2_size, output_size)
        self.params = {}
        for layer in (1, 2, 3):
            fan_in, fan_out = sizes[layer - 1], sizes[layer]
            bound = 1 / np.sqrt(fan_in)  # nn.Linear's initialisation: U(-1/sqrt(inputs), 1/sqrt(inputs))
            self.params[f"W{layer}"] = np.random.uniform(-bound, bound, (fan_in, fan_out))
            self.params[f"b{layer}"] = np.random.uniform(-bound, bound, fan_out)

    def forward(self, x):
        """o for a batch x of shape (N, input_size): shape (N, output_size), as the notes'
        ``Net.forward``."""
        p = self.params
        h1 = relu(np.dot(x, p["W1"]) + p["b1"])
        h2 = relu(np.dot(h1, p["W2"]) + p["b2"])
        return sigmoid(np.dot(h2, p["W3"]) + p["b3"])

    def loss(self, x, t):
        """E as nn.MSELoss computes it; ``t`` has the shape of the output, (N, output_size)."""
        o = self.forward(x)
        return np.mean((o - t) ** 2)

    def gradient(self, x, t):
        """Return ``{"W1": dE/dW1, "b1": dE/db1, ..., "W3": dE/dW3, "b3": dE/db3}``.

        Run the forward pass (keeping what each layer computed), then go back from E:
        dE/do, through the output's sigmoid, to W3 and b3; pass the error back through
        the weights to h2, through its ReLU, to W2 and b2; and once more to W1 and b1.
        Each gradient has its parameter's shape.
        """
        p = self.params
        a1 = np.dot(x, p["W1"]) + p["b1"]
        h1 = relu(a1)
        a2 = np.dot(h1, p["W2"]) + p["b2"]
        h2 = relu(a2)
        o = sigmoid(np.dot(h2, p["W3"]) + p["b3"])

        delta3 = 2.0 * (o - t) / o.size  # dE/dnet at the output
        delta2 = np.dot(delta3, p["W3"].T) * (a2 > 0)   # back through W3, then h2's ReLU
        delta1 = np.dot(delta2, p["W2"].T) * (a1 > 0)   # back through W2, then h1's ReLU
        grads = {"W3": np.dot(h2.T, delta3), "b3": np.sum(delta3, axis=0),
                 "W2": np.dot(h1.T, delta2), "b2": np.sum(delta2, axis=0),
                 "W1": np.dot(x.T, delta1), "b1": np.sum(delta1, axis=0)}
        return grads
