"""Convolution through im2col: dW and db like Affine's, dx folded back with col2im.

Every case has a stride smaller than the filter, so windows overlap and col2im must add
them up; non-square filters and images catch swapped axes. When the student's col2im
already failed, their dx is compared with their own col2im applied to the right columns:
equal means the convolution is right and col2im is to blame.
"""
from grader.exercises import Case, LayerExercise, Misconception, Quantity

from .windows import conv, conv_grads, out_size


def _case(fh, fw, stride, pad):
    def make(rng):
        n, c, fn = (int(v) for v in rng.choice([2, 3, 4], size=3, replace=False))
        h, w = (int(v) for v in rng.choice(range(5, 9), size=2, replace=False))
        shape = (n, fn, out_size(h, fh, stride, pad), out_size(w, fw, stride, pad))
        return {"x": rng.standard_normal((n, c, h, w)), "W": rng.standard_normal((fn, c, fh, fw)),
                "b": rng.standard_normal(fn), "stride": stride, "pad": pad, "dout": rng.standard_normal(shape)}
    return make


def _rows(dout):
    """dout as the (N * out_h * out_w, FN) matrix the forward pass's product gave."""
    return dout.transpose(0, 2, 3, 1).reshape(-1, dout.shape[1])


def _scrambled(v):
    """dout reshaped to (N * out_h * out_w, FN) without moving FN last: read back as 4-D."""
    n, fn, oh, ow = v["dout"].shape
    return v["dout"].reshape(n, oh, ow, fn).transpose(0, 3, 1, 2)


def _with(v, dout):
    return conv_grads(v["x"], v["W"], dout, v["stride"], v["pad"])


def own_col2im(program, v):
    """dx from the student's col2im, given the right columns (dout . W, as forward's product)."""
    fn, c, fh, fw = v["W"].shape
    dcol = _rows(v["dout"]) @ v["W"].reshape(fn, -1)
    return {"dx": program.func("convnet_layers", "col2im", dcol, v["x"].shape, fh, fw, v["stride"], v["pad"])}


EXERCISE = LayerExercise(
    part="Convolution", short="Conv", cls="Convolution", module="convnet_layers", init=("W", "b", "stride", "pad"),
    forward=("x",), backward=("dout",),
    quantities={"dx": Quantity(("return", None), wrt="x"), "dW": Quantity(("attr", "dW"), wrt="W"),
                "db": Quantity(("attr", "db"), wrt="b")},
    points={"forward": 1, "dx": 2, "dW": 2, "db": 1},
    cases=[Case("3x3 filters, stride 1", _case(3, 3, 1, 0)),
           Case("3x2 filters, stride 2, padding 1", _case(3, 2, 2, 1)),
           Case("2x3 filters, stride 1, padding 2", _case(2, 3, 1, 2))],
    unchanged=("x",), depends=("col2im",), walk=own_col2im,
    misconceptions=[
        Misconception("conv-dout-not-transposed", "dout flattened without moving the filter axis last",
                      "Forward's product gave rows (n, y, x) and one column per filter, then transposed to "
                      "(N, FN, out_h, out_w); backward must undo that transpose before reshaping to "
                      "(N * out_h * out_w, FN).", wrong=lambda v: _with(v, _scrambled(v))),
        Misconception("conv-dW-not-transposed", "dW reshaped without transposing",
                      "col.T . dout has one row per filter entry and one column per filter; transpose it "
                      "to one row per filter before reshaping to W's shape (FN, C, FH, FW).",
                      wrong=lambda v: {"dW": _with(v, v["dout"])["dW"].reshape(len(v["W"]), -1).T
                                       .reshape(v["W"].shape)}),
        Misconception("conv-db-not-summed", "db not summed over every output position",
                      "A filter's bias is added at every position of every sample: db sums dout over the batch "
                      "and both spatial axes, giving one entry per filter.",
                      wrong=lambda v: {"db": v["dout"].sum(axis=0)}),
        Misconception("conv-db-not-summed", "db not summed over every output position",
                      "A filter's bias is added at every position of every sample: db sums dout over the batch "
                      "and both spatial axes, giving one entry per filter.",
                      wrong=lambda v: {"db": _rows(v["dout"])}),
        Misconception("conv-forward-layout", "the output's axes in the wrong order",
                      "np.dot(col, col_W) has one row per output position (n, y, x) and one column per "
                      "filter: reshape to (N, out_h, out_w, FN), then transpose to (N, FN, out_h, out_w).",
                      wrong=lambda v: {"forward": (conv(v["x"], v["W"], v["b"], v["stride"], v["pad"])
                                                   .transpose(0, 2, 3, 1).reshape(v["dout"].shape))}),
    ],
)
