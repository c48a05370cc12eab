"""Max pooling: each window's gradient goes to its maximum.

Inputs without near-ties (every window's largest entry at least ``MARGIN`` above the
next, so no numerical step crosses a kink), an overlapping non-square pool (col2im must
add up), and a case *with* exact ties: there any split of a window's dout among its
tied maxima is a valid subgradient (the book's argmax sends it all to the first), tied
entries are not perturbed numerically, and giving the whole dout to each of them is a
named mistake.
"""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity

from .windows import MARGIN, max_gap, out_size, pool_grad, pool_windows, tied


def _values(rng, x, ph, pw, stride):
    oh, ow = out_size(x.shape[2], ph, stride, 0), out_size(x.shape[3], pw, stride, 0)
    return {"x": x, "pool_h": ph, "pool_w": pw, "stride": stride, "pad": 0,
            "dout": rng.standard_normal((*x.shape[:2], oh, ow))}


def _shape(rng):
    n, c = (int(v) for v in rng.choice([2, 3, 4], size=2, replace=False))
    h, w = (int(v) for v in rng.choice([4, 6, 8], size=2, replace=False))
    return n, c, h, w


def no_ties(ph, pw, stride):
    def make(rng):
        shape = _shape(rng)
        while True:
            x = rng.standard_normal(shape)
            if max_gap(x, ph, pw, stride) >= MARGIN:
                return _values(rng, x, ph, pw, stride)
    return make


def ties(rng):
    """Small integers: several windows hold their maximum twice or more."""
    shape = _shape(rng)
    while True:
        x = rng.integers(-2, 3, shape).astype(float)
        if tied(x, 2, 2, 2).sum() >= 6:
            return _values(rng, x, 2, 2, 2)


def _args(v):
    return v["pool_h"], v["pool_w"], v["stride"]


def any_split(values, expected, student) -> dict:
    """The valid dx nearest the student's: in each window whose maximum is tied, the student's
    shares of its dout on the tied entries, made non-negative and summing to one; the book's
    choice (all to the first maximum) elsewhere. Non-overlapping windows only."""
    ph, pw, stride = _args(values)
    x, dx = values["x"], student.get("dx")
    if stride != ph or stride != pw or not isinstance(dx, np.ndarray) or dx.shape != x.shape:
        return {}
    mask = tied(x, ph, pw, stride)
    given = pool_windows(np.where(mask, dx.astype(np.float64), 0.0), ph, pw, stride)
    with np.errstate(all="ignore"):
        shares = np.clip(np.nan_to_num(given / values["dout"][..., None]), 0, None)
    total = shares.sum(axis=-1, keepdims=True)
    book = np.zeros(shares.shape)
    np.put_along_axis(book, pool_windows(x, ph, pw, stride).argmax(axis=-1)[..., None], 1.0, axis=-1)
    split = (pool_windows(mask * 1.0, ph, pw, stride).max(axis=-1, keepdims=True) > 0) & (total > 0)
    weights = np.where(split, shares / np.where(total > 0, total, 1.0), book)
    return {"dx": pool_grad(x, values["dout"], ph, pw, stride, spread=weights)}


def own_col2im(program, v):
    """dx from the student's col2im, given the right columns (each window's dout at its maximum)."""
    ph, pw, stride = _args(v)
    n, c, oh, ow = v["dout"].shape
    flat = pool_windows(v["x"], ph, pw, stride)
    dmax = np.zeros(flat.shape)
    np.put_along_axis(dmax, flat.argmax(axis=-1)[..., None], v["dout"][..., None], axis=-1)
    dcol = dmax.transpose(0, 2, 3, 1, 4).reshape(n * oh * ow, c * ph * pw)
    return {"dx": program.func("convnet_layers", "col2im", dcol, v["x"].shape, ph, pw, stride, v["pad"])}


def _duplicated(v):
    flat = pool_windows(v["x"], *_args(v))
    return {"dx": pool_grad(v["x"], v["dout"], *_args(v), spread=(flat == flat.max(axis=-1, keepdims=True)) * 1.0)}


def _spread(v):
    flat = pool_windows(v["x"], *_args(v))
    return {"dx": pool_grad(v["x"], v["dout"], *_args(v), spread=np.full(flat.shape, 1 / flat.shape[-1]))}


def _layout(v):
    n, c, oh, ow = v["dout"].shape
    scrambled = v["dout"].reshape(n, oh, ow, c).transpose(0, 3, 1, 2)
    return {"dx": pool_grad(v["x"], scrambled, *_args(v))}


EXERCISE = LayerExercise(
    part="Pooling", short="Pool", cls="Pooling", module="convnet_layers",
    init=("pool_h", "pool_w", "stride", "pad"),
    forward=("x",), backward=("dout",),
    quantities={"dx": Quantity(("return", None), wrt="x")},
    points={"forward": 1, "dx": 3},
    cases=[Case("2x2 pool, stride 2", no_ties(2, 2, 2)),
           Case("3x2 pool, stride 1: overlapping windows", no_ties(3, 2, 1)),
           Case("2x2 pool, stride 2, tied maxima", ties)],
    nearest=any_split, frozen=lambda v: {"x": tied(v["x"], *_args(v)) if v["stride"] == v["pool_h"] else None},
    unchanged=("x",), depends=("col2im",), walk=own_col2im,
    misconceptions=[
        Misconception("pool-ties-duplicated", "each tied maximum given the whole gradient",
                      "Where several entries tie for a window's maximum, the output moves with only one of "
                      "them at a time: the window's dout is shared among them (the book gives it all to the "
                      "first), never handed to each in full.", wrong=_duplicated),
        Misconception("pool-gradient-spread", "the gradient spread over the whole window",
                      "Only the entry that was the maximum affects the output: the others get 0 (spreading "
                      "dout evenly is average pooling's gradient).", wrong=_spread),
        Misconception("pool-dout-layout", "dout flattened in the wrong order",
                      "The maxima were found for rows ordered (n, y, x, channel); bring dout's channel axis "
                      "last (transpose) before flattening it onto them.", wrong=_layout),
    ],
)
