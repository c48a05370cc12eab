"""What hidden tests are written with: the ``graded`` marker and the fixtures' names.

A hidden test is an ordinary pytest-style function in ``grader/hidden_tests``. It
asks for any of these fixtures by name:

- ``student``: the submission's modules, driven through proxies
  (``student.layers.Affine(W, b).forward(x)`` runs in the sandboxed worker);
- ``reference``: the reference solution modules (trusted, in the grader);
- ``rng``: a numpy Generator seeded from the course seed and the test's name;
- ``worker``, ``scorer``, ``seed``: for tests that plan several graded items
  (``scorer.plan(part, name, points)``), as the exercise tests do.

A simple test is all-or-nothing::

    @graded(part="Affine", points=1)
    def test_affine_keeps_its_weights(student, rng):
        W = rng.standard_normal((5, 3))
        assert np.array_equal(student.layers.Affine(W, np.zeros(3)).W, W), "Affine must keep W"
"""
from __future__ import annotations

from collections.abc import Callable


def graded(part: str, points: float, name: str | None = None) -> Callable:
    """Mark a test as one graded item of ``part`` worth ``points`` (all or nothing)."""
    def mark(func: Callable) -> Callable:
        func.graded = {"part": part, "points": float(points), "name": name or func.__name__}
        return func

    return mark


class Student:
    """The proxy a hidden test sees: ``student.layers``, ``student.two_layer_net``, ..."""

    def __init__(self, worker):
        from grader.worker.client import RemoteModule

        self._modules = {name: RemoteModule(worker, name)
                         for name in ("layers", "two_layer_net", "buy_apple_orange")}

    def __getattr__(self, name: str):
        try:
            return self._modules[name]
        except KeyError:
            raise AttributeError(name) from None
