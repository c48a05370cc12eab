"""Layers of chapter 5 (backpropagation): each layer's forward and backward side by side.

Every layer follows the same contract: ``forward`` computes the output and remembers
what ``backward`` will need; ``backward(dout)`` takes the upstream gradient (the
gradient of the loss with respect to this layer's output) and returns the gradient
with respect to the layer's input(s). Check your work with ``pytest`` in this folder.
"""
import numpy as np


def softmax(x):
    """Row-wise softmax; subtracting the row maximum keeps exp() from overflowing."""
    x = x - np.max(x, axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    """Mean cross-entropy over the batch; ``t`` is one-hot or holds class indices."""
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if t.size == y.size:  # one-hot labels -> class indices
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


class MulLayer:
    """z = x * y."""

    def __init__(self):
        self.x = None
        self.y = None

    def forward(self, x, y):
        self.x = x
        self.y = y
        return x * y

    def backward(self, dout):
        """Return ``(dx, dy)``: the gradients with respect to x and y.

        Each has the shape of the matching forward input.
        """
        dx = dout * self.y  # swap the inputs
        dy = dout * self.x
        return dx, dy


class AddLayer:
    """z = x + y."""

    def __init__(self):
        pass

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        """Return ``(dx, dy)``: the gradients with respect to x and y.

        Each has the shape of ``dout``.
        """
        dx = dout * 1
        dy = dout * 1
        return dx, dy


class Relu:
    """y = max(0, x), element-wise."""

    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        """Return ``dx``, shaped like the forward input ``x``.

        ``self.mask`` marks where the forward input was <= 0.
        """
        dx = dout.copy()
        dx[self.mask] = 0
        return dx


class Sigmoid:
    """y = 1 / (1 + exp(-x)), element-wise."""

    def __init__(self):
        self.out = None

    def forward(self, x):
        out = 1 / (1 + np.exp(-x))
        self.out = out
        return out

    def backward(self, dout):
        """Return ``dx``, shaped like the forward input ``x``.

        ``self.out`` holds the forward output y.
        """
        dx = dout * (1.0 - self.out) * self.out
        return dx


class Affine:
    """y = x . W + b; an input of rank > 2 is flattened per sample, as the book does."""

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x):
        self.original_x_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        self.x = x
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout):
        """Set ``self.dW`` (shape of W) and ``self.db`` (shape of b); return ``dx``.

        ``dout`` has shape (N, M). ``dx`` must have the shape of the original forward
        input (``self.original_x_shape``), even when that input had more than 2 axes.
        """
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        dx = dx.reshape(*self.original_x_shape)
        return dx


class SoftmaxWithLoss:
    """Softmax followed by the cross-entropy loss: the last layer of the network."""

    def __init__(self):
        self.loss = None
        self.y = None  # softmax output
        self.t = None  # labels: one-hot (N, C) or class indices (N,)

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, self.t)
        return self.loss

    def backward(self, dout=1):
        """Return ``dx`` with shape (N, C): the gradient of the mean loss w.r.t. ``x``.

        ``self.t`` may be one-hot labels (N, C) or class indices (N,); handle both.
        """
        batch_size = self.t.shape[0]
        if self.t.size == self.y.size:
            dx = self.y - self.t
        else:
            dx = self.y.copy()
            dx[np.arange(batch_size), self.t] -= 1
        dx = dx * dout
        return dx
