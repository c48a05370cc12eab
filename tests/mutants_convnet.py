"""The convnet assignment's buggy hand-ins: one per misconception it can name (see mutants.py).

Each mutant makes its mistake the way a student's code would (the book's loop in col2im
with ``=``, cs231n's dropout convention, a filter axis left in place...). Ids that differ
from the catalogue id they must be diagnosed as are listed in ``ALIASES``; the generic
mistakes that cannot occur in this assignment's files, in ``NOT_APPLICABLE``.
"""
from __future__ import annotations

from pathlib import Path

from mutants import SYNTAX_ERROR, Mutants

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions" / "convnet"
FILES = ("convnet_layers.py", "simple_convnet.py")
LAYERS, NET = FILES

FOLD = "img[:, :, y:y_max:stride, x:x_max:stride] += col[:, :, y, x, :, :]"
BN_DX = "dx = dxc - dmu / self.batch_size"
RUNNING = ("            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu\n"
           "            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var\n")
TEST_BN = "            xc = x - self.running_mean\n            xn = xc / np.sqrt(self.running_var + 10e-7)\n"
MASK = "self.mask = np.random.rand(*x.shape) > self.dropout_ratio"
TRAIN = "            return x * self.mask\n"
TEST = "        return x * (1.0 - self.dropout_ratio)\n"
BACK = "return dout * self.mask"
DROPOUT_FORWARD = f"        if train_flg:\n            {MASK}\n{TRAIN}{TEST}"
CONV_DOUT = "dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)"
CONV_STORE = "        self.x = x\n        self.col = col\n        self.col_W = col_W\n"
POOL_DMAX = "dmax[np.arange(self.arg_max.size), self.arg_max.flatten()] = dout.flatten()"
GRADIENT = "        self.loss(x, t)\n\n        dout = 1\n"
NUMERICAL = """        grads = {}
        for key in ("W1", "b1", "W2", "b2", "W3", "b3"):
            w, g = self.params[key], np.zeros_like(self.params[key])
            for i in np.ndindex(w.shape):
                old = w[i]
                w[i] = old + 1e-4
                up = self.loss(x, t)
                w[i] = old - 1e-4
                g[i] = (up - self.loss(x, t)) / 2e-4
                w[i] = old
            grads[key] = g
        return grads
"""

MUTANTS: dict[str, list[tuple[str, str, str]]] = {
    # --- col2im ---------------------------------------------------------------------
    # the book's loop with `=`: right only where windows do not overlap
    "col2im-overwrites": [(LAYERS, FOLD, FOLD.replace("+=", "="))],
    "col2im-padding-kept": [(LAYERS, "return img[:, :, pad:H + pad, pad:W + pad]", "return img")],
    "col2im-layout": [(LAYERS, "col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)",
                       "col.reshape(N, C, filter_h, filter_w, out_h, out_w)")],
    # --- BatchNormalization -----------------------------------------------------------
    "bn-mean-and-variance-held-constant": [(LAYERS, BN_DX, "dx = dxn / self.std")],
    "bn-variance-path-missing": [(LAYERS, "        dxc += (2.0 / self.batch_size) * self.xc * dvar\n", "")],
    "bn-mean-path-missing": [(LAYERS, BN_DX, "dx = dxc")],
    "bn-dgamma-from-input": [(LAYERS, "self.batch_size = x.shape[0]",
                              "self.batch_size = x.shape[0]\n            self.x = x"),
                             (LAYERS, "np.sum(self.xn * dout, axis=0)", "np.sum(self.x * dout, axis=0)")],
    "bn-momentum-swapped": [(LAYERS, RUNNING, RUNNING.replace("= self.momentum *", "= (1 - self.momentum) *")
                             .replace("+ (1 - self.momentum) *", "+ self.momentum *"))],
    "bn-running-not-updated": [(LAYERS, RUNNING, "")],
    # as torch.var does by default
    "bn-unbiased-variance": [(LAYERS, "var = np.mean(xc ** 2, axis=0)", "var = np.var(x, axis=0, ddof=1)")],
    "bn-test-uses-batch-statistics": [(LAYERS, TEST_BN, "            xc = x - x.mean(axis=0)\n"
                                                        "            xn = xc / np.sqrt(x.var(axis=0) + 10e-7)\n")],
    # --- Dropout ------------------------------------------------------------------------
    "dropout-test-unscaled": [(LAYERS, TEST, "        return x\n")],
    # cs231n's inverted dropout, with the book's ratio
    "dropout-inverted": [(LAYERS, TRAIN, "            return x * self.mask / (1.0 - self.dropout_ratio)\n"),
                         (LAYERS, BACK, "return dout * self.mask / (1.0 - self.dropout_ratio)"),
                         (LAYERS, TEST, "        return x\n")],
    "dropout-ratio-as-keep-probability": [(LAYERS, MASK, MASK.replace(">", "<")),
                                          (LAYERS, TEST, "        return x * self.dropout_ratio\n")],
    "dropout-train-flag-ignored": [(LAYERS, DROPOUT_FORWARD, f"        {MASK}\n        return x * self.mask\n")],
    "dropout-mask-ignored": [(LAYERS, BACK, "return dout")],
    "dropout-mask-redrawn": [(LAYERS, BACK, "return dout * (np.random.rand(*dout.shape) > self.dropout_ratio)")],
    # --- Convolution --------------------------------------------------------------------
    "conv-dout-not-transposed": [(LAYERS, CONV_DOUT, "dout = dout.reshape(-1, FN)")],
    "conv-dW-not-transposed": [(LAYERS, "self.dW = self.dW.transpose(1, 0).reshape(FN, C, FH, FW)",
                                "self.dW = self.dW.reshape(FN, C, FH, FW)")],
    "conv-db-not-summed": [(LAYERS, "self.db = np.sum(dout, axis=0)", "self.db = dout")],
    "conv-forward-layout": [(LAYERS, "out = out.reshape(N, out_h, out_w, -1).transpose(0, 3, 1, 2)",
                             "out = out.reshape(N, -1, out_h, out_w)")],
    # --- Pooling -------------------------------------------------------------------------
    # mask = (window == its max): the whole dout to every tied maximum
    "pool-ties-duplicated": [(LAYERS, "        self.arg_max = arg_max\n",
                              "        self.arg_max = arg_max\n        self.col = col\n"),
                             (LAYERS, POOL_DMAX, "dmax[:] = (self.col == self.col.max(axis=1, keepdims=True))"
                                                 " * dout.reshape(-1, 1)")],
    "pool-gradient-spread": [(LAYERS, POOL_DMAX, "dmax[:] = dout.reshape(-1, 1) / pool_size")],
    "pool-dout-layout": [(LAYERS, "        dout = dout.transpose(0, 2, 3, 1)\n", "")],
    # --- SimpleConvNet.gradient ---------------------------------------------------------------
    # Conv1's backward first: it cannot take the loss layer's (N, classes) gradient
    "layers-forward-order": [(NET, "        layers.reverse()\n", "")],
    # --- what any assignment can meet (grader.judging.misconceptions) ------------------------
    SYNTAX_ERROR: [(LAYERS, "out = self.gamma * xn + self.beta", "out self.gamma * xn + self.beta")],
    "undefined-attribute": [(LAYERS, "np.sum(self.xn * dout, axis=0)", "np.sum(self.x_hat * dout, axis=0)")],
    "undefined-name": [(LAYERS, BACK, "return dout * mask")],
    # Dropout's class written under BatchNormalization's name: the second replaces the first
    "duplicate-class": [(LAYERS, "class Dropout:", "class BatchNormalization:")],
    "missing-class": [(LAYERS, "class Dropout:", "class DropOut:")],
    # the mask a class attribute: every Dropout object shares the last one drawn
    "state-shared-between-objects": [(LAYERS, "dropout_ratio\n        self.mask = None\n", "dropout_ratio\n"),
                                     (LAYERS, MASK, MASK.replace("self.mask", "Dropout.mask"))],
    # Convolution keeps the columns of its first forward only
    "state-from-an-earlier-call": [(LAYERS, CONV_STORE, "        if self.col is None:\n            self.x = x\n"
                                                        "            self.col = col\n"
                                                        "        self.col_W = col_W\n")],
    # Pooling's gradient buffer in the input's type: integers truncate dout
    "integer-inputs-truncated": [(LAYERS, "dmax = np.zeros((dout.size, pool_size))",
                                  "dmax = np.zeros((dout.size, pool_size), dtype=self.x.dtype)")],
    # BatchNormalization squeezes anything but float64 through float16
    "low-precision-inputs": [(LAYERS, "            mu = x.mean(axis=0)\n",
                              "            if x.dtype != np.float64:\n                x = x.astype(np.float16)\n"
                              "            mu = x.mean(axis=0)\n")],
    "parameters-copied": [(LAYERS, "self.W = W\n        self.b = b\n        self.stride",
                           "self.W = W.copy()\n        self.b = b.copy()\n        self.stride")],
    # the batch mean subtracted in place: the caller's x (a view of it) changes
    "input-changed-in-place": [(LAYERS, "            xc = x - mu\n", "            x -= mu\n            xc = x\n")],
    # the layers get copies of the weights: right once, stale after a training step
    "stale-params": [(NET, 'Convolution(self.params["W1"], self.params["b1"],',
                      'Convolution(self.params["W1"].copy(), self.params["b1"].copy(),')],
    "gradient-without-forward": [(NET, GRADIENT, "        dout = 1\n")],
    "numerical-differentiation": [(NET, GRADIENT, NUMERICAL + GRADIENT)],
}
NOT_APPLICABLE = {"log-not-called": "no file students write takes a logarithm (the loss is given)"}

CONVNET = Mutants(SOLUTIONS, FILES, MUTANTS)
