"""BatchNormalization: normalize over the batch, scale and shift; running statistics for test mode.

Training cases grade the forward pass, dx, dgamma, dbeta and the running statistics after
one training forward (they change on every training forward: the numerical probes build
fresh layers, and the protocol compares them only where no extra forward ran); test-mode
cases grade the forward pass alone. Any correct backward formula passes (the book's
step-by-step graph or the simplified one): the answers are the same numbers.
"""
import numpy as np

from grader.exercises import Case, LayerExercise, Misconception, Quantity
from grader.exercises.inputs import sizes

EPS = 10e-7  # the book's


def _batch(rng, shape, train, given):
    """Features with their own mean and spread, so mean and variance matter."""
    d = int(np.prod(shape[1:]))
    x = rng.normal(rng.uniform(-2, 2, d), rng.uniform(0.5, 2, d), (shape[0], d)).reshape(shape)
    return {"x": x, "gamma": rng.uniform(0.5, 2, d) * rng.choice([-1, 1], d), "beta": rng.standard_normal(d),
            "momentum": float(rng.choice([0.8, 0.9, 0.95])),
            "running_mean": rng.standard_normal(d) if given else None,
            "running_var": rng.uniform(0.5, 2, d) if given else None,
            "train_flg": train, "dout": rng.standard_normal(shape)}


def matrix(train):
    return lambda rng: _batch(rng, tuple(sizes(rng, 2, 4, 7)), train, given=True)


def four_axes(train):
    def make(rng):
        n, c, h = sizes(rng, 3, 2, 5)
        return _batch(rng, (max(n, 3), c, h, 2), train, given=not train)
    return make


def _flat(v, key="x"):
    return v[key].reshape(v[key].shape[0], -1)


def _stats(v, ddof=0):
    x = _flat(v)
    return x.mean(axis=0), x.var(axis=0, ddof=ddof)


def _running(v):
    d = _flat(v).shape[1]
    rm = np.zeros(d) if v["running_mean"] is None else v["running_mean"]
    rv = np.zeros(d) if v["running_var"] is None else v["running_var"]
    return rm, rv


def _normalized(v, mean, var):
    return ((_flat(v) - mean) / np.sqrt(var + EPS) * v["gamma"] + v["beta"]).reshape(v["x"].shape)


def _dx(v, mean_path=True, var_path=True):
    """dx with the gradient through the batch mean and/or the batch variance (both: the right one)."""
    x, dout, n = _flat(v), _flat(v, "dout"), len(v["x"])
    mean, var = _stats(v)
    std, xc = np.sqrt(var + EPS), x - mean
    dxc = v["gamma"] * dout / std
    if var_path:
        dxc = dxc - xc * np.sum(v["gamma"] * dout * xc, axis=0) / (n * std ** 3)
    if mean_path:
        dxc = dxc - dxc.mean(axis=0)
    return dxc.reshape(v["x"].shape)


def _momentum_swapped(v):
    (mean, var), (rm, rv) = _stats(v), _running(v)
    m = v["momentum"]
    return {"running_mean": m * mean + (1 - m) * rm, "running_var": m * var + (1 - m) * rv}


def _unbiased(v):
    mean, var = _stats(v, ddof=1)
    rv, m = _running(v)[1], v["momentum"]
    return {"forward": _normalized(v, mean, var), "running_var": m * rv + (1 - m) * var}


def _in_training(formula):
    """Only training cases: test mode has its own formula."""
    return lambda v: formula(v) if v["train_flg"] else {}


def _mistake(id, title, hint, formula):
    return Misconception(id, title, hint, wrong=_in_training(formula))


EXERCISE = LayerExercise(
    part="BatchNormalization", short="BN", cls="BatchNormalization", module="convnet_layers",
    init=("gamma", "beta", "momentum", "running_mean", "running_var"), forward=("x", "train_flg"),
    backward=("dout",),
    quantities={"dx": Quantity(("return", None), wrt="x"), "dgamma": Quantity(("attr", "dgamma"), wrt="gamma"),
                "dbeta": Quantity(("attr", "dbeta"), wrt="beta"),
                "running_mean": Quantity(("attr", "running_mean"), state=True),
                "running_var": Quantity(("attr", "running_var"), state=True)},
    points={"forward": 1, "dx": 3, "dgamma": 1, "dbeta": 1, "running_mean": 1, "running_var": 1},
    cases=[Case("training, 2-D input", matrix(True)),
           Case("training, 4-D input flattened per sample, no running statistics given", four_axes(True)),
           Case("test mode, 2-D input", matrix(False), grades=("forward",)),
           Case("test mode, 4-D input", four_axes(False), grades=("forward",))],
    unchanged=("x",), trained=("gamma", "beta"),
    misconceptions=[
        _mistake("bn-mean-and-variance-held-constant", "the batch mean and variance treated as constants",
                 "In training the mean and the variance are computed from this very batch, so every x_i "
                 "also moves them: dx has a term through the mean and one through the variance.",
                 lambda v: {"dx": _dx(v, mean_path=False, var_path=False)}),
        _mistake("bn-variance-path-missing", "the gradient through the batch variance is missing",
                 "The variance depends on every x_i too: follow the graph back through var (and the "
                 "square root) as well as through the mean.",
                 lambda v: {"dx": _dx(v, var_path=False)}),
        _mistake("bn-mean-path-missing", "the gradient through the batch mean is missing",
                 "Every x_i moves the batch mean, which is subtracted from every sample: collect that "
                 "gradient (dmu) and spread it back over the batch.",
                 lambda v: {"dx": _dx(v, mean_path=False)}),
        _mistake("bn-dgamma-from-input", "dgamma computed from x instead of the normalized x",
                 "gamma multiplies the *normalized* input x_hat, so dgamma sums dout * x_hat over the batch.",
                 lambda v: {"dgamma": np.sum(_flat(v) * _flat(v, "dout"), axis=0)}),
        _mistake("bn-momentum-swapped", "the momentum applied to the batch statistic",
                 "momentum is how much of the *old* running statistic is kept: running = momentum * "
                 "running + (1 - momentum) * batch statistic.", _momentum_swapped),
        _mistake("bn-running-not-updated", "running statistics not updated in training",
                 "Every training forward moves running_mean and running_var towards the batch's mean "
                 "and variance; test mode needs them.",
                 lambda v: dict(zip(("running_mean", "running_var"), _running(v), strict=True))),
        _mistake("bn-unbiased-variance", "the variance divided by N - 1",
                 "The batch variance here is the mean of the squared deviations (divided by N, as np.var "
                 "does by default), in the normalization and in the running variance alike.", _unbiased),
        _mistake("bn-unbiased-variance", "the variance divided by N - 1",
                 "The batch variance here is the mean of the squared deviations (divided by N, as np.var "
                 "does by default), in the normalization and in the running variance alike.",
                 lambda v: {"running_var": _unbiased(v)["running_var"]}),
        Misconception("bn-test-uses-batch-statistics", "test mode normalizes with the batch's statistics",
                      "At test time the batch may be a single sample: normalize with running_mean and "
                      "running_var, which training has collected.",
                      wrong=lambda v: {} if v["train_flg"] else {"forward": _normalized(v, *_stats(v))}),
    ],
)
