"""Layers of chapters 6-7: batch normalization, dropout, convolution and max pooling.

Every layer follows the chapter-5 contract: ``forward`` computes the output and keeps
what ``backward`` will need; ``backward(dout)`` takes the gradient of the loss with
respect to the layer's output and returns the gradient with respect to its input
(and stores the gradients of its parameters: ``self.dW``, ``self.dgamma``, ...).
Never change an array you are given in place (``x -= ...``): the caller still uses it.
Check your work with ``pytest`` in this folder.
"""
import numpy as np
from common.util import im2col


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """The way back of ``im2col``: fold the rows of ``col`` into images of ``input_shape``.

    ``col`` has the shape ``im2col`` gives, (N * out_h * out_w, C * filter_h * filter_w),
    with the same ordering. Every entry goes back to the input pixel it was read from;
    where windows overlap (stride smaller than the filter), a pixel was read several
    times and receives the sum of its entries. Padding is cut off again: the result
    has shape ``input_shape`` = (N, C, H, W).
    """
    N, C, H, W = input_shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)

    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1))
    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            img[:, :, y:y_max:stride, x:x_max:stride] += col[:, :, y, x, :, :]

    return img[:, :, pad:H + pad, pad:W + pad]


class BatchNormalization:
    """Normalize each feature over the batch, then scale by gamma and shift by beta.

    A 4-D input (N, C, H, W) is flattened per sample to (N, C*H*W), as the book does, so
    gamma and beta have C*H*W entries. ``running_mean`` and ``running_var`` (zeros of
    that size when not given) are what test mode normalizes with.
    """

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        self.gamma = gamma
        self.beta = beta
        self.momentum = momentum
        self.input_shape = None  # 4-D for a convolution's output, 2-D for a fully connected one

        self.running_mean = running_mean
        self.running_var = running_var

        # kept by forward for backward
        self.batch_size = None
        self.xc = None
        self.xn = None
        self.std = None
        self.dgamma = None
        self.dbeta = None

    def forward(self, x, train_flg=True):
        """Return gamma * x_hat + beta, shaped like ``x``.

        Training (``train_flg`` true): x_hat = (x - mean) / sqrt(var + 10e-7) with the mean
        and variance of this batch (per feature), and each running statistic moves towards
        the batch's: running = momentum * running + (1 - momentum) * batch statistic.
        Test mode: x_hat = (x - running_mean) / sqrt(running_var + 10e-7); nothing changes.
        """
        self.input_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        if self.running_mean is None:
            self.running_mean = np.zeros(x.shape[1])
            self.running_var = np.zeros(x.shape[1])
        if train_flg:
            mu = x.mean(axis=0)
            xc = x - mu
            var = np.mean(xc ** 2, axis=0)
            std = np.sqrt(var + 10e-7)
            xn = xc / std

            self.batch_size = x.shape[0]
            self.xc = xc
            self.xn = xn
            self.std = std
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var
        else:
            xc = x - self.running_mean
            xn = xc / np.sqrt(self.running_var + 10e-7)
        out = self.gamma * xn + self.beta
        return out.reshape(*self.input_shape)

    def backward(self, dout):
        """Set ``self.dgamma`` and ``self.dbeta`` (shape of gamma); return ``dx`` (shape of x).

        Called after a training forward: the mean and the variance depend on x too.
        """
        dout = dout.reshape(dout.shape[0], -1)
        dbeta = dout.sum(axis=0)
        dgamma = np.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        dxc = dxn / self.std
        dstd = -np.sum((dxn * self.xc) / (self.std * self.std), axis=0)
        dvar = 0.5 * dstd / self.std
        dxc += (2.0 / self.batch_size) * self.xc * dvar
        dmu = np.sum(dxc, axis=0)
        dx = dxc - dmu / self.batch_size

        self.dgamma = dgamma
        self.dbeta = dbeta
        return dx.reshape(*self.input_shape)


class Dropout:
    """Drop units at random in training (http://arxiv.org/abs/1207.0580), the book's way.

    ``dropout_ratio`` is the probability of *dropping* a unit. Training: a unit is kept
    where ``np.random.rand(*x.shape)`` (one call: the grader seeds numpy's generator, so
    its mask and yours agree) is greater than ``dropout_ratio``; kept units pass unchanged,
    dropped ones give 0. Test mode: every unit is kept and the output is scaled by
    (1 - dropout_ratio), the fraction kept in training. (cs231n's ``p`` is the probability
    of *keeping* a unit and scales in training instead - not this assignment's convention.)
    """

    def __init__(self, dropout_ratio=0.5):
        self.dropout_ratio = dropout_ratio
        self.mask = None

    def forward(self, x, train_flg=True):
        """Return the output, shaped like ``x``; in training keep the mask for backward."""
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ratio
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout):
        """Return ``dx``, shaped like ``dout`` (after a training forward)."""
        return dout * self.mask


class Convolution:
    """Filters W (FN, C, FH, FW) and biases b (FN,) slid over x (N, C, H, W) with ``stride``
    and zero ``pad``ding: output (N, FN, out_h, out_w). Use ``im2col`` forward and
    ``col2im`` backward."""

    def __init__(self, W, b, stride=1, pad=0):
        self.W = W
        self.b = b
        self.stride = stride
        self.pad = pad

        # kept by forward for backward
        self.x = None
        self.col = None
        self.col_W = None

        self.dW = None
        self.db = None

    def forward(self, x):
        """Return the output (N, FN, out_h, out_w), out_h = 1 + (H + 2 pad - FH) // stride."""
        FN, C, FH, FW = self.W.shape
        N, C, H, W = x.shape
        out_h = 1 + (H + 2 * self.pad - FH) // self.stride
        out_w = 1 + (W + 2 * self.pad - FW) // self.stride
        col = im2col(x, FH, FW, self.stride, self.pad)
        col_W = self.W.reshape(FN, -1).T

        out = np.dot(col, col_W) + self.b
        out = out.reshape(N, out_h, out_w, -1).transpose(0, 3, 1, 2)

        self.x = x
        self.col = col
        self.col_W = col_W
        return out

    def backward(self, dout):
        """Set ``self.dW`` (shape of W) and ``self.db`` (shape of b); return ``dx`` (shape of x).

        ``dout`` has the forward output's shape (N, FN, out_h, out_w).
        """
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)

        self.db = np.sum(dout, axis=0)
        self.dW = np.dot(self.col.T, dout)
        self.dW = self.dW.transpose(1, 0).reshape(FN, C, FH, FW)

        dcol = np.dot(dout, self.col_W.T)
        dx = col2im(dcol, self.x.shape, FH, FW, self.stride, self.pad)
        return dx


class Pooling:
    """Max pooling: each channel's pool_h x pool_w windows (moved by ``stride``) give their
    largest entry. Output (N, C, out_h, out_w)."""

    def __init__(self, pool_h, pool_w, stride=1, pad=0):
        self.pool_h = pool_h
        self.pool_w = pool_w
        self.stride = stride
        self.pad = pad

        # kept by forward for backward
        self.x = None
        self.arg_max = None

    def forward(self, x):
        """Return the output (N, C, out_h, out_w), out_h = 1 + (H + 2 pad - pool_h) // stride."""
        N, C, H, W = x.shape
        out_h = 1 + (H + 2 * self.pad - self.pool_h) // self.stride
        out_w = 1 + (W + 2 * self.pad - self.pool_w) // self.stride
        col = im2col(x, self.pool_h, self.pool_w, self.stride, self.pad)
        col = col.reshape(-1, self.pool_h * self.pool_w)

        out = col.max(axis=1).reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)
        self.x = x
        self.col = col
        return out

    def backward(self, dout):
        """Return ``dx`` (shape of x): each window's gradient goes to the entry that was its
        maximum (where several entries tie for it, splitting it among them is right too)."""
        is_max = self.col == self.col.max(axis=1, keepdims=True)
        dcol = is_max * dout.transpose(0, 2, 3, 1).reshape(-1, 1)
        dcol = dcol.reshape(-1, self.x.shape[1] * self.pool_h * self.pool_w)
        dx = col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)
        return dx
