"""Convolution and pooling written independently of the reference (sliding windows), for
choosing inputs and for the wrong formulas of the misconceptions.

``windows(x, fh, fw, stride, pad)`` is every filter-sized window of the padded input,
shape (N, C, out_h, out_w, fh, fw); ``scatter`` is its adjoint: it adds each window's
entries back onto the pixels they were read from (or overwrites them, window by window,
in the order a student's loop would).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MARGIN = 1e-3  # kinks (ReLU at 0, ties of a max) at least this far from every input: a numerical
#                step of h = 1e-5 along a unit direction moves a pre-activation by ~1e-5


def out_size(size: int, f: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - f) // stride + 1


def windows(x, fh, fw, stride=1, pad=0):
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return sliding_window_view(padded, (fh, fw), axis=(2, 3))[:, :, ::stride, ::stride]


def scatter(patches, shape, stride=1, pad=0, *, overwrite=False, reverse=False, crop=True):
    """Sum each window's entries (patches: (N, C, out_h, out_w, fh, fw)) onto the image of
    ``shape`` they came from. ``overwrite``: each window's entries replace what is there,
    windows visited in row order (``reverse``: from the last window to the first, which is
    what the book's loop over filter offsets does with ``=``); ``crop=False`` keeps the padding."""
    n, c, h, w = shape
    _, _, oh, ow, fh, fw = patches.shape
    img = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    order = [(i, j) for i in range(oh) for j in range(ow)]
    for i, j in reversed(order) if reverse else order:
        region = img[:, :, i * stride:i * stride + fh, j * stride:j * stride + fw]
        if overwrite:
            region[...] = patches[:, :, i, j]
        else:
            region += patches[:, :, i, j]
    return img[:, :, pad:pad + h, pad:pad + w] if crop else img


def as_patches(col, shape, fh, fw, stride=1, pad=0):
    """im2col's rows (N*out_h*out_w, C*fh*fw) as windows (N, C, out_h, out_w, fh, fw)."""
    n, c, h, w = shape
    oh, ow = out_size(h, fh, stride, pad), out_size(w, fw, stride, pad)
    return col.reshape(n, oh, ow, c, fh, fw).transpose(0, 3, 1, 2, 4, 5)


def conv(x, W, b, stride=1, pad=0):
    return np.einsum("ncijkl,fckl->nfij", windows(x, *W.shape[2:], stride, pad), W) + b[:, None, None]


def conv_grads(x, W, dout, stride=1, pad=0) -> dict:
    """dx, dW, db of a convolution for the upstream gradient ``dout`` (N, FN, out_h, out_w)."""
    patches = np.einsum("nfij,fckl->ncijkl", dout, W)
    return {"dx": scatter(patches, x.shape, stride, pad),
            "dW": np.einsum("ncijkl,nfij->fckl", windows(x, *W.shape[2:], stride, pad), dout),
            "db": dout.sum(axis=(0, 2, 3))}


def pool_windows(x, ph, pw, stride):
    """(N, C, out_h, out_w, ph * pw): each window's entries, flattened."""
    found = windows(x, ph, pw, stride)
    return found.reshape(*found.shape[:4], ph * pw)


def max_gap(x, ph, pw, stride) -> float:
    """The smallest distance between a window's largest entry and its second largest."""
    top = np.sort(pool_windows(x, ph, pw, stride), axis=-1)
    return float(np.min(top[..., -1] - top[..., -2]))


def pool_grad(x, dout, ph, pw, stride, spread=None) -> np.ndarray:
    """dx of max pooling: each window's dout to its first largest entry, or ``spread``
    (N, C, out_h, out_w, ph * pw) weights per window entry instead."""
    flat = pool_windows(x, ph, pw, stride)
    if spread is None:
        spread = np.zeros(flat.shape)
        np.put_along_axis(spread, flat.argmax(axis=-1)[..., None], 1.0, axis=-1)
    patches = (spread * dout[..., None]).reshape(*dout.shape, ph, pw)
    return scatter(patches, x.shape, stride)


def tied(x, ph, pw, stride) -> np.ndarray:
    """Where an entry ties for its window's maximum with another entry (non-overlapping windows)."""
    flat = pool_windows(x, ph, pw, stride)
    top = flat == flat.max(axis=-1, keepdims=True)
    top &= top.sum(axis=-1, keepdims=True) > 1
    n, c, oh, ow = flat.shape[:4]
    mask = np.zeros(x.shape, dtype=bool)
    mask[:, :, :oh * ph, :ow * pw] = top.reshape(n, c, oh, ow, ph, pw).transpose(0, 1, 2, 4, 3, 5) \
        .reshape(n, c, oh * ph, ow * pw)
    return mask
