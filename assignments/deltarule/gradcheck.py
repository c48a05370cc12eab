"""A small numerical-gradient helper for checking your backward passes yourself.

The idea: for a layer ``out = f(x)`` and an upstream gradient ``dout``, the gradient
your ``backward(dout)`` returns must equal d(sum(f(x) * dout)) / dx. Central
differences estimate that derivative one entry at a time:

    (g(x + h) - g(x - h)) / (2 h)        with g(x) = sum(f(x) * dout)

Everything is float64: in float32 no step size h gives a trustworthy answer.
"""
import numpy as np

H = 1e-5          # step: 1e-4..1e-5 is best in float64; 1e-3 crosses ReLU kinks
TOLERANCE = 1e-4  # largest relative error accepted: correct code stays below ~1e-5 (the
                  # book's +1e-7 inside log costs that much); real mistakes cost > 1e-2


def numerical_gradient(f, x, dout=None, h=H):
    """Estimate d(sum(f() * dout)) / dx by central differences.

    ``f`` takes no argument and reads ``x``, which is changed in place and restored,
    so ``x`` can be a layer's own parameter (``layer.W``). ``dout=None`` means f
    returns a scalar loss.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(*x.shape):
        original = x[idx]
        x[idx] = original + h
        plus = f()
        x[idx] = original - h
        minus = f()
        x[idx] = original
        if dout is not None:
            plus, minus = np.sum(plus * dout), np.sum(minus * dout)
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def relative_error(analytic, numeric):
    """|a - n| relative to the largest numerical entry: one scale for the whole tensor.

    (Dividing each entry by its own size would blow up round-off on tiny entries.)
    """
    return np.abs(analytic - numeric) / max(np.max(np.abs(numeric)), 1e-8)


def assert_gradient(where, analytic, numeric, tolerance=TOLERANCE):
    """Fail with a readable message when ``analytic`` does not match ``numeric``.

    ``where`` names the quantity, e.g. ``"Affine.backward: dW"``.
    """
    if analytic is None:
        raise AssertionError(f"{where}: got None - did you forget to return or store it?")
    analytic = np.asarray(analytic, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise AssertionError(
            f"{where}: shape {analytic.shape}, expected {numeric.shape} "
            "(a gradient has the shape of the thing it is the gradient of)"
        )
    if not np.all(np.isfinite(analytic)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(analytic))[0])
        raise AssertionError(f"{where}: not finite at index {bad}: {analytic[bad]}")
    error = relative_error(analytic, numeric)
    worst = np.unravel_index(np.argmax(error), error.shape) if error.size else ()
    if error.size and error[worst] > tolerance:
        index = tuple(int(i) for i in worst)
        raise AssertionError(
            f"{where}: largest relative error {error[worst]:.2e} at index {index}: "
            f"yours {analytic[worst]:.6g}, numerical {numeric[worst]:.6g}"
        )
