"""Stage 3: compare what a submission returned with the two oracles.

The reference (float64, run here on fresh copies) says what the right answer is;
the numerical gradient of the student's own forward pass says whether their
backward is at least consistent with their forward. Every comparison returns a
``Verdict`` whose message is written for the student: which quantity, expected vs
got shape, the largest relative error and where, and whether the error is a
simple factor (such as the batch size).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.worker.inside.protocol import Unsendable

RTOL = 1e-6          # against the float64 reference: correct code differs by ~1e-15
LOW_RTOL = 1e-4      # an answer computed in float32 (or float16): correct code differs by ~1e-6
FLOOR = 1e-3         # entries below this fraction of the tensor's largest are judged at that scale
LOW_FLOOR = 1.0      # ... in float32, every entry at the largest one's scale: a sum that cancels (a
#                      convolution's db, batch norm's dx) keeps its terms' round-off, measured up to
#                      2e-5 of the largest entry; a float16 squeeze costs 5e-4 and more
NUMERIC_RTOL = 1e-4  # against central differences: the book's +1e-7 in log costs up to ~2e-5
H = 1e-5             # central-difference step in float64


@dataclass
class Verdict:
    ok: bool
    message: str = ""
    error: float = 0.0


def describe(value) -> str:
    """A short, student-facing description of a returned value's type and shape."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} (dtype {value.dtype})"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(value)}"
    if isinstance(value, Unsendable):
        return f"a {value.type_name} object"
    return f"a {type(value).__name__}"


def as_number_array(value, expected: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Check the exact type and shape of ``value``; return it as float64 or say why not.

    An array is required wherever the reference returns an array; a number is
    accepted where the reference returns a scalar. Nothing is broadcast.
    """
    if expected.ndim == 0:
        if isinstance(value, int | float) and not isinstance(value, bool) or \
                type(value) in (np.float32, np.float16):
            return np.asarray(float(value)), ""
        if type(value) is np.ndarray and value.size == 1 and value.dtype.kind in "iuf":
            return value.astype(np.float64).reshape(()), ""
        return None, f"expected a number, got {describe(value)}"
    if type(value) is not np.ndarray:
        return None, f"expected an array of shape {expected.shape}, got {describe(value)}"
    if value.dtype.kind not in "iuf":
        return None, f"expected an array of numbers, got dtype {value.dtype}"
    if value.shape != expected.shape:
        return None, f"shape {value.shape}, expected {expected.shape}"
    return value.astype(np.float64, copy=False), ""


def relative_errors(got: np.ndarray, expected: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """|got - expected| relative to each entry, floored at ``floor`` times the tensor's scale."""
    # out=: two arrays in all, not five (a 784x50 gradient is judged on every hand-in)
    magnitude = np.abs(expected, out=np.empty(expected.shape))
    floor = max(floor * float(magnitude.max()), 1e-12) if expected.size else 1e-12
    np.maximum(magnitude, floor, out=magnitude)
    with np.errstate(all="ignore"):  # a NaN or inf the student returned is judged, not warned about
        errors = np.subtract(got, expected, out=np.empty(expected.shape))
        np.abs(errors, out=errors)
        errors /= magnitude
    return errors


def compare(name: str, value, expected, *, either=None, batch: int | None = None,
            rtol: float = RTOL, precision: str | None = None) -> Verdict:
    """Judge ``value`` against ``expected``; where ``either`` is given, entries may match it.

    ``either`` holds an equally valid alternative answer per entry (a subgradient
    choice at a kink); ``batch`` lets the message recognise a batch-size factor;
    ``precision`` ("float32") is the precision ``value`` was computed in when its dtype
    does not say so (float32 inputs, a float64 buffer accumulating them).
    """
    expected = np.asarray(expected, dtype=np.float64)
    got, why = as_number_array(value, expected)
    if got is None:
        return Verdict(False, f"{name}: {why}.", np.inf)
    low = low_precision(value) or precision
    floor = FLOOR
    if low:  # round-off of the student's dtype, not of float64: judged with its own tolerance
        rtol, floor = max(rtol, LOW_RTOL), LOW_FLOOR
    errors = relative_errors(got, expected, floor)
    if either is not None:
        errors = np.minimum(errors, relative_errors(got, np.asarray(either, dtype=np.float64), floor))
    worst = np.unravel_index(np.argmax(errors), errors.shape) if errors.size else ()
    error = float(errors[worst]) if errors.size else 0.0
    if error <= rtol:  # False for NaN: a non-finite entry never passes
        note = (f"; computed in {low}, so judged with {low}'s tolerance ({rtol:.0e} of the largest "
                "entry) - float64 is what numerical gradient checks need") if low else ""
        return Verdict(True, f"{name}: correct (largest relative error {error:.1e}{note}).", error)
    if not np.all(np.isfinite(got)):
        bad = _index(np.argwhere(~np.isfinite(got))[0]) if got.ndim else ()
        return Verdict(False, f"{name}: contains {got[bad]} at index {bad} (NaN or infinity).", np.inf)
    where = f" at index {_index(worst)}" if got.ndim else ""
    lines = [f"{name}: largest relative error {error:.2e}{where}: "
             f"yours {got[worst]:.6g}, expected {expected[worst]:.6g}."]
    lines += _patterns(got, expected, batch)
    return Verdict(False, "\n".join(lines), error)


def low_precision(value) -> str | None:
    """"float32" (or "float16") when ``value`` was computed in a float type below float64."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and dtype.kind == "f" and dtype.itemsize < 8:
        return str(dtype)
    return None


def _patterns(got: np.ndarray, expected: np.ndarray, batch: int | None) -> list[str]:
    """Name simple relations between a wrong answer and the right one."""
    hints = []
    energy = float(np.sum(expected * expected))
    if energy > 0 and got.size > 1:
        factor = float(np.sum(got * expected)) / energy
        if factor != 0 and np.allclose(got, factor * expected, rtol=1e-6, atol=1e-12):
            text = f"Yours is exactly {factor:.4g} times the expected value"
            if batch and (abs(factor - batch) < 1e-6 or abs(factor - 1 / batch) < 1e-9):
                text += f" ({'the batch size' if factor > 1 else '1 / the batch size'}, {batch})"
            hints.append(text + ": the formula is right up to a constant factor.")
    if got.ndim == 2 and got.shape == got.T.shape and np.allclose(got.T, expected, rtol=1e-6):
        hints.append("Yours is the transpose of the expected value.")
    if got.size > 1 and not np.any(got) and np.any(expected):
        hints.append("Yours is all zeros.")
    return hints


def _index(index) -> tuple[int, ...]:
    return tuple(int(i) for i in index)


def unit_direction(rng: np.random.Generator, shape: tuple, frozen=None) -> np.ndarray:
    """A random unit-length direction; entries where ``frozen`` is True stay 0 (kinks)."""
    u = rng.standard_normal(shape)
    if frozen is not None:
        u[frozen] = 0.0
    norm = np.linalg.norm(u)
    return u / norm if norm else u


def slope_noise(*values: float, dtype=np.float64) -> float:
    """Round-off in a central difference of values of this size computed in ``dtype``:
    ~eps |L| / h, with margin (a float32 forward cannot be differenced finely at h = 1e-5)."""
    eps = np.finfo(dtype).eps if np.dtype(dtype).kind == "f" else np.finfo(np.float64).eps
    return 100 * float(eps) * max((abs(v) for v in values), default=0.0) / H


def directional_verdict(name: str, grad, slopes: list[tuple[np.ndarray, float, float]]) -> Verdict:
    """Compare <grad, u> with the numerical slope along each direction u.

    Each entry is ``(u, slope, noise)``: ``noise`` is the slope's own round-off
    (``slope_noise``), so a tiny gradient is not blamed for float arithmetic.
    Cheap and as strict as an element-wise check against any single wrong entry
    (a random direction almost surely weighs every entry); element-wise locations
    come from the reference comparison instead.
    """
    grad = np.asarray(grad, dtype=np.float64)
    worst = 0.0
    for u, slope, noise in slopes:
        analytic = float(np.sum(grad * u))
        # scaled by |grad| (u is unit length): a near-cancelling direction is not an error
        scale = max(float(np.linalg.norm(grad)), abs(slope), 1e-300)
        worst = max(worst, max(abs(analytic - slope) - noise, 0.0) / scale)
    if worst <= NUMERIC_RTOL:
        return Verdict(True, f"{name} agrees with the numerical gradient of your forward pass.", worst)
    return Verdict(False, f"{name} does not match the numerical gradient of your own forward pass "
                          f"(relative error {worst:.1e} along a random direction).", worst)
