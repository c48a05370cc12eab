"""Given: the chapter-5 layers SimpleConvNet is built from (ReLU, Affine, softmax with loss).

Import them; do not change them. Your own work is in convnet_layers.py and
simple_convnet.py.
"""
import numpy as np


class Relu:
    """max(0, x); the gradient passes where the input was positive."""

    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = x > 0
        return np.where(self.mask, x, 0.0)

    def backward(self, dout):
        return np.where(self.mask, dout, 0.0)


class Affine:
    """x . W + b, each sample flattened first (a convolution's output is 4-D)."""

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.x = self.x_shape = self.dW = self.db = None

    def forward(self, x):
        self.x_shape = x.shape
        self.x = x.reshape(len(x), -1)
        return self.x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
        return (dout @ self.W.T).reshape(self.x_shape)


class SoftmaxWithLoss:
    """The mean cross-entropy of softmax(x) against labels t (one-hot rows or class indices)."""

    def __init__(self):
        self.loss = self.y = self.t = None

    def forward(self, x, t):
        shifted = x - x.max(axis=1, keepdims=True)
        self.y = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        self.t = t if t.ndim == 1 else t.argmax(axis=1)
        picked = self.y[np.arange(len(x)), self.t]
        self.loss = -np.mean(np.log(picked + 1e-7))  # the book's + 1e-7
        return self.loss

    def backward(self, dout=1):
        grad = self.y.copy()
        grad[np.arange(len(grad)), self.t] -= 1
        return grad * (dout / len(grad))
