"""What the grader's Convolution check costs, next to one forward+backward and the book's
numerical gradient.

The first convolution of the book's SimpleConvNet on MNIST-sized input: x (3, 1, 28, 28),
W (30, 1, 5, 5), stride 1, no padding, float64. Timings:

- one forward + backward of the reference Convolution (the unit of cost);
- the book's element-wise ``numerical_gradient`` (h = 1e-4) of x, W and b, with dout as
  the weights of the output;
- the grader's check of one case of one submission (``convnet``'s Convolution exercise):
  the student's forward, backward and gradient attributes in the sandboxed worker, the
  directional numerical check of the student's own forward (two random unit directions per
  gradient: fresh layers at x +- h u, W +- h u, b +- h u), every entry compared with the
  reference's - once in compute only (the grader's and the worker's arithmetic, no process
  boundary) and once end to end through the sandbox. The reference's answers are made once
  per grading session, for every student, and are not counted.

Run: python benchmarks/conv_gradcheck_cost.py
"""
from __future__ import annotations

import os

# as the grader does for itself (grader/__init__.py), before numpy is imported
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import dataclasses
from pathlib import Path

import numpy as np
from gradcheck_cost import best, sandboxed_check

from grader import course
from grader.exercises.base import Answers, Case
from grader.judging import checks

CONVNET = course.find(Path(__file__).resolve().parent.parent).assignment("convnet")
CONV = CONVNET.part("Convolution")
CHECKS = ("grader check, compute", "grader check, end to end")


def book_values(rng: np.random.Generator) -> dict:
    """SimpleConvNet's first layer on a batch of 3 MNIST images: 28x28, 30 filters of 5x5."""
    return {"x": rng.random((3, 1, 28, 28)), "W": 0.01 * rng.standard_normal((30, 1, 5, 5)),
            "b": np.zeros(30), "stride": 1, "pad": 0, "dout": rng.standard_normal((3, 30, 24, 24))}


def numerical_gradient(f, x, dout, h=1e-4):
    """The book's common/gradient.py (np.nditer, central differences), for a layer's output."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp = x[idx]
        x[idx] = tmp + h
        plus = np.sum(f() * dout)
        x[idx] = tmp - h
        minus = np.sum(f() * dout)
        grad[idx] = (plus - minus) / (2 * h)
        x[idx] = tmp
        it.iternext()
    return grad


def measure() -> dict[str, float]:
    refs = CONVNET.reference
    layer_class = getattr(refs[CONV.module], CONV.cls)
    values = book_values(np.random.default_rng(0))
    x, W, b, dout = (values[k] for k in ("x", "W", "b", "dout"))

    def forward_backward():
        layer = layer_class(W, b)
        layer.forward(x)
        layer.backward(dout)

    one = best(forward_backward, 200)
    probe = layer_class(W.copy(), b.copy())
    book = best(lambda: [numerical_gradient(lambda: probe.forward(x), a, dout) for a in (x, probe.W, probe.b)], 1)

    case = Case("SimpleConvNet's first layer", lambda rng: values)
    exercise = dataclasses.replace(CONV, cases=[case])
    answers = Answers(refs, course.Settings().seed)
    answers.get(exercise, case)  # made once per session, for every student

    def compute_only():
        layer = layer_class(W.copy(), b.copy())                 # the student's side
        layer.forward(x.copy())
        grads = {"dx": layer.backward(dout.copy()), "dW": layer.dW, "db": layer.db}
        expected = answers.get(exercise, case)[1]
        rng = np.random.default_rng(0)
        for name, wrt in (("dx", "x"), ("dW", "W"), ("db", "b")):
            pairs = []
            for _ in range(CONV.numeric_directions):              # fresh layers at +- h u
                u = checks.unit_direction(rng, values[wrt].shape)
                moved = [{**values, wrt: values[wrt] + sign * checks.H * u} for sign in (1, -1)]
                plus, minus = (layer_class(m["W"].copy(), m["b"].copy()).forward(m["x"].copy()) for m in moved)
                pairs.append((u, float(np.sum((plus - minus) * dout)) / (2 * checks.H), 0.0))
            checks.directional_verdict(name, grads[name], pairs)
            checks.compare(name, grads[name], expected[name])

    compute = best(compute_only, 50)

    end_to_end = sandboxed_check(CONVNET, exercise, lambda: answers, 100)
    return {"forward+backward": one, "book numerical_gradient": book,
            "grader check, compute": compute, "grader check, end to end": end_to_end}


def report(m: dict[str, float]) -> None:
    unit = m["forward+backward"]
    print(f"{'':32} {'time':>12} {'x forward+backward':>20}")
    for name, seconds in m.items():
        print(f"{name:32} {seconds * 1e3:10.3f} ms {seconds / unit:18.1f}x")


if __name__ == "__main__":
    report(measure())
