"""Sigmoid outputs and the delta rule in float32."""
import numpy as np

F = np.float32


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class SigmoidOutput:
    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.x = None
        self.out = None
        self.dW = None
        self.db = None

    def forward(self, x):
        self.x = np.asarray(x, dtype=F)
        self.out = sigmoid(self.x @ self.W.astype(F) + self.b.astype(F))
        return self.out

    def backward(self, dout):
        delta = np.asarray(dout, dtype=F) * self.out * (1 - self.out)
        self.dW = self.x.T @ delta
        self.db = delta.sum(axis=0)
        return delta @ self.W.astype(F).T


def delta_rule_step(W, x, t, lr):
    W32, x32 = W.astype(F), np.asarray(x, dtype=F)
    o = sigmoid(x32 @ W32)
    delta = (np.asarray(t, dtype=F) - o) * o * (1 - o)
    return W32 + F(lr) * (x32.T @ delta)
