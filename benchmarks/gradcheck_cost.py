"""What the grader's TwoLayerNet check costs, next to the book's numerical gradient.

TwoLayerNet 784-50-10, batch 3, the book's initialisation (std 0.01, zero biases),
float64, as measured in shared/notes/gradient-checks.md. Three timings:

- one forward + backward of the reference net (the unit of cost);
- the book's element-wise ``numerical_gradient`` (np.nditer, h = 1e-4);
- the grader's full check of one submission: the student's ``gradient`` and
  ``loss`` run in the sandboxed worker, the reference gradient, every entry
  compared, and the directional numerical check of the student's own loss
  (``grader.exercises.two_layer_net``) — once in compute only (the grader's and
  the worker's arithmetic) and once end to end through the sandbox.

Run: python benchmarks/gradcheck_cost.py
"""
from __future__ import annotations

import os

# as the grader does for itself (grader/__init__.py), before numpy is imported
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import dataclasses
import inspect
import tempfile
import time
from pathlib import Path

import numpy as np

from grader import course, intake
from grader.exercises.base import Answers, Case
from grader.judging.scoring import Scorer
from grader.worker.client import Worker

BACKPROP = course.find(Path(__file__).resolve().parent.parent).assignment("backprop")
NET = next(e for e in BACKPROP.exercises if e.part == "TwoLayerNet")
DECLARED = inspect.getmodule(NET.build)  # the assignment's two_layer_net declarations (book_params)


def book_values(rng: np.random.Generator, one_hot: bool) -> dict:
    """The measured configuration: 784-50-10, batch 3, std 0.01, zero biases."""
    sizes, seed = (784, 50, 10), int(rng.integers(2**31))
    labels = rng.integers(0, 10, 3)
    return {"sizes": sizes, "std": 0.01, "init_seed": seed, "x": rng.random((3, 784)),
            **DECLARED.book_params(sizes, seed, 0.01),
            "t": np.eye(10)[labels] if one_hot else labels}


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def sandboxed_check(assignment, exercise, answers, repeat: int) -> float:
    """Best time of grading ``exercise`` (its reference passing every item) for the assignment's
    reference, staged as a hand-in, through one warm sandboxed worker; ``answers()`` gives the
    reference's answers for each run."""
    staging = Path(tempfile.mkdtemp())
    staging.chmod(0o755)
    staged = intake.stage(intake.Submission("reference", assignment.folder), staging / "s", assignment)
    settings = course.Settings()
    with Worker(staged.folder, settings.limits, settings.sandbox, modules=assignment.modules) as worker:
        worker.start()

        def full_check():
            scorer = Scorer()
            exercise.grade(worker, scorer, answers())
            assert all(r.status == "passed" and not r.instructor for r in scorer.results())

        full_check()
        return best(full_check, repeat)


def measure() -> dict[str, float]:
    refs = BACKPROP.reference
    values = book_values(np.random.default_rng(0), one_hot=True)
    net = refs[NET.module].TwoLayerNet(*values["sizes"])
    for key in NET.params:
        net.params[key][...] = values[key]
    x, t = values["x"], values["t"]

    one = best(lambda: net.gradient(x, t), 200)
    book = best(lambda: net.numerical_gradient(x, t), 1)

    exercise = dataclasses.replace(NET, cases=[Case("784-50-10", lambda rng: values)])
    end_to_end = sandboxed_check(BACKPROP, exercise, lambda: Answers(refs, course.Settings().seed), 300)

    # compute only: the same arithmetic with no process boundary
    def compute_only():
        exercise.expected(refs, values)                      # reference gradient + loss
        net.gradient(x, t), net.loss(x, t)                    # the student's side
        for key in NET.params:                                # 2 loss evaluations per parameter
            u = np.ones_like(values[key]) / np.sqrt(values[key].size)
            for sign in (1, -1):
                net.params[key][...] = values[key] + sign * 1e-5 * u
                net.loss(x, t)
            net.params[key][...] = values[key]

    compute = best(compute_only, 50)
    return {"forward+backward": one, "book numerical_gradient": book,
            "grader check, compute": compute, "grader check, end to end": end_to_end}


CHECKS = ("grader check, compute", "grader check, end to end")


def report(m: dict[str, float]) -> None:
    unit = m["forward+backward"]
    print(f"{'':32} {'time':>12} {'x forward+backward':>20}")
    for name, seconds in m.items():
        print(f"{name:32} {seconds * 1e3:10.3f} ms {seconds / unit:18.1f}x")
    for name in CHECKS:
        print(f"book numerical_gradient / {name}: {m['book numerical_gradient'] / m[name]:,.0f}x")


if __name__ == "__main__":
    report(measure())
