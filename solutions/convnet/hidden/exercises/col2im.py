"""col2im: im2col's rows folded back into images; entries of overlapping windows add up."""
import numpy as np

from grader.exercises import Case, FunctionExercise, Misconception

from .windows import as_patches, out_size, scatter

ARGS = ("input_shape", "filter_h", "filter_w", "stride", "pad")


def _case(rng, fh, fw, stride, pad):
    n, c = (int(v) for v in rng.choice([2, 3, 4], size=2, replace=False))
    h, w = (int(v) for v in rng.choice(range(5, 9), size=2, replace=False))
    rows = n * out_size(h, fh, stride, pad) * out_size(w, fw, stride, pad)
    return {"col": rng.standard_normal((rows, c * fh * fw)), "input_shape": (n, c, h, w), "filter_h": fh,
            "filter_w": fw, "stride": stride, "pad": pad}


def _fold(v, col=None, **how):
    shape, fh, fw, stride, pad = (v[k] for k in ARGS)
    return scatter(as_patches(v["col"] if col is None else col, shape, fh, fw, stride, pad), shape, stride, pad,
                   **how)


def _channels_first(v):
    """col read as if its rows were laid out (N, C, fh, fw, out_h, out_w), im2col's inner order."""
    n, c, h, w = v["input_shape"]
    fh, fw, stride, pad = v["filter_h"], v["filter_w"], v["stride"], v["pad"]
    oh, ow = out_size(h, fh, stride, pad), out_size(w, fw, stride, pad)
    return v["col"].reshape(n, c, fh, fw, oh, ow).transpose(0, 4, 5, 1, 2, 3).reshape(v["col"].shape)


def _mistake(id, title, hint, formula):
    return Misconception(id, title, hint, wrong=lambda v: {"img": formula(v)})


OVERWRITE = ("col2im-overwrites", "overlapping windows overwrite each other",
             "Where windows overlap (stride smaller than the filter), im2col read a pixel several times; "
             "on the way back each of those entries contributes to it: add them up, do not assign.")
PADDING = ("col2im-padding-kept", "the padding is not cut off",
           "The result must have input_shape: drop the `pad` rows and columns added on each side.")

EXERCISE = FunctionExercise(
    part="col2im", module="convnet_layers", function="col2im", inputs=(), value="img",
    points={"img": 2},
    cases=[Case("3x3 filter, stride 1: overlapping windows", lambda rng: _case(rng, 3, 3, 1, 0)),
           Case("3x2 filter, stride 2, padding 1", lambda rng: _case(rng, 3, 2, 2, 1)),
           Case("2x2 filter, stride 2: windows side by side", lambda rng: _case(rng, 2, 2, 2, 0))],
    misconceptions=[
        _mistake(*OVERWRITE, lambda v: _fold(v, overwrite=True, reverse=True)),  # the book's loop with `=`
        _mistake(*OVERWRITE, lambda v: _fold(v, overwrite=True)),                # a loop over windows with `=`
        _mistake(*PADDING, lambda v: _fold(v, crop=False)),
        _mistake(*PADDING, lambda v: np.pad(_fold(v, crop=False), ((0, 0), (0, 0), (0, v["stride"] - 1),
                                                                   (0, v["stride"] - 1)))),  # the book's img
        _mistake(*PADDING, lambda v: _fold(v, crop=False)[:, :, :v["input_shape"][2], :v["input_shape"][3]]),
        _mistake("col2im-layout", "the rows of col read in the wrong order",
                 "A row of col is one window: its output position comes first (n, y, x), then the channel "
                 "and the filter offsets, as im2col wrote them; reshape and transpose accordingly.",
                 lambda v: _fold(v, col=_channels_first(v))),
    ],
)
