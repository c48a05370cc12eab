"""The notes' network; gradient() walks the layers in a loop."""
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
        p = self.params
        h1 = relu(np.dot(x, p["W1"]) + p["b1"])
        h2 = relu(np.dot(h1, p["W2"]) + p["b2"])
        return sigmoid(np.dot(h2, p["W3"]) + p["b3"])

    def loss(self, x, t):
        o = self.forward(x)
        return np.mean((o - t) ** 2)

    def gradient(self, x, t):
        inputs, nets = [x], []
        for layer in (1, 2, 3):
            nets.append(inputs[-1] @ self.params[f"W{layer}"] + self.params[f"b{layer}"])
            inputs.append(relu(nets[-1]) if layer < 3 else sigmoid(nets[-1]))
        o = inputs.pop()
        error = (o - t) * 2 / t.size          # dE/do for nn.MSELoss
        error = error * o * (1 - o)            # through the output's sigmoid
        grads = {}
        for layer in (3, 2, 1):
            grads[f"W{layer}"] = inputs[layer - 1].T @ error
            grads[f"b{layer}"] = error.sum(axis=0)
            if layer > 1:
                error = np.where(nets[layer - 2] > 0, error @ self.params[f"W{layer}"].T, 0.0)
        return grads
