"""Given: ``im2col``, as in the book's common/util.py. Import it; do not change it.

Its inverse direction, ``col2im``, is yours to write (in convnet_layers.py).
"""
import numpy as np


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """Unfold every filter-sized window of a batch of images into one row.

    input_data: (N, C, H, W). Returns a 2-D array of shape (N * out_h * out_w,
    C * filter_h * filter_w): one row per output position, ordered (n, y, x); within a
    row the entries are ordered (channel, filter row, filter column).
    """
    N, C, H, W = input_data.shape
    out_h = (H + 2 * pad - filter_h) // stride + 1
    out_w = (W + 2 * pad - filter_w) // stride + 1

    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, filter_h, filter_w, out_h, out_w))

    for y in range(filter_h):
        y_max = y + stride * out_h
        for x in range(filter_w):
            x_max = x + stride * out_w
            col[:, :, y, x, :, :] = img[:, :, y:y_max:stride, x:x_max:stride]

    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * out_h * out_w, -1)
