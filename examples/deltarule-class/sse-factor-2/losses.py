"""The error functions of the notes: how far the output o is from the target t.

A loss layer keeps the layer contract of chapter 5: ``forward(y, t)`` returns the error
E (one number) for the network's output ``y`` (the o_k of the notes) and the target
``t`` (same shape: N samples, n outputs); ``backward(dout=1)`` returns dE/dy, shaped
like ``y``: the gradient the backward pass of the network starts from.
"""
import numpy as np


class SSELoss:
    """E = 1/2 * sum over samples and outputs of (t_k - o_k)^2: the SSE with the notes' 1/2."""

    def __init__(self):
        self.y = None
        self.t = None

    def forward(self, y, t):
        self.y = y
        self.t = t
        return 0.5 * np.sum((t - y) ** 2)

    def backward(self, dout=1):
        """Return dE/dy, shaped like ``y``: entry [i, k] is dE/do_k for sample i."""
        dy = 2 * (self.y - self.t) * dout
        return dy


class MSELoss:
    """E = the mean of (o_k - t_k)^2 over every sample *and* every output, as PyTorch's
    ``nn.MSELoss()`` computes it (its default ``reduction='mean'``)."""

    def __init__(self):
        self.y = None
        self.t = None

    def forward(self, y, t):
        self.y = y
        self.t = t
        return np.mean((y - t) ** 2)

    def backward(self, dout=1):
        """Return dE/dy, shaped like ``y`` (N samples, n outputs)."""
        dy = 2.0 * (self.y - self.t) / self.y.size * dout
        return dy
