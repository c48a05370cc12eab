"""Given to students: they import it, they do not write it."""
import numpy as np


def keep_mask(shape, ratio):
    """True where a unit is kept: drawn from numpy's global generator."""
    return np.random.rand(*shape) > ratio
