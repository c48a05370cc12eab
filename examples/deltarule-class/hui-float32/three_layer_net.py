"""The notes' network in float32 (the weights stay float64 in params, as given)."""
import numpy as np

F = np.float32


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

    def weights(self):
        return {k: v.astype(F) for k, v in self.params.items()}

    def forward(self, x):
        p = self.weights()
        h1 = relu(np.asarray(x, dtype=F) @ p["W1"] + p["b1"])
        h2 = relu(h1 @ p["W2"] + p["b2"])
        return sigmoid(h2 @ p["W3"] + p["b3"])

    def loss(self, x, t):
        return np.mean((self.forward(x) - np.asarray(t, dtype=F)) ** 2)

    def gradient(self, x, t):
        p, x = self.weights(), np.asarray(x, dtype=F)
        a1 = x @ p["W1"] + p["b1"]
        h1 = relu(a1)
        a2 = h1 @ p["W2"] + p["b2"]
        h2 = relu(a2)
        o = sigmoid(h2 @ p["W3"] + p["b3"])
        delta3 = F(2) * (o - np.asarray(t, dtype=F)) / F(o.size) * o * (1 - o)
        delta2 = delta3 @ p["W3"].T * (a2 > 0)
        delta1 = delta2 @ p["W2"].T * (a1 > 0)
        return {"W3": h2.T @ delta3, "b3": delta3.sum(axis=0), "W2": h1.T @ delta2, "b2": delta2.sum(axis=0),
                "W1": x.T @ delta1, "b1": delta1.sum(axis=0)}
