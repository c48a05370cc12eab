"""The shopping graph: price = (apple * apple_num + orange * orange_num) * tax, and back."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from grader import checks, diagnosis
from grader.exercises.base import Case, Judging, Misconception
from grader.worker.client import Program, StudentError

INPUTS = ("apple", "apple_num", "orange", "orange_num", "tax")


def book(rng):
    return {"apple": 100, "apple_num": 2, "orange": 150, "orange_num": 3, "tax": 1.1}


def random_prices(rng):
    return {"apple": float(rng.integers(50, 300)), "apple_num": float(rng.integers(2, 9)),
            "orange": float(rng.integers(50, 300)), "orange_num": float(rng.integers(2, 9)),
            "tax": float(rng.choice([1.05, 1.08, 1.2]))}


@dataclass
class GraphExercise(Judging):
    part: str = "ShoppingGraph"
    module: str = "buy_apple_orange"
    function: str = "buy_apple_orange"
    points: dict = field(default_factory=lambda: {"price": 1, **{f"d{k}": 1 for k in INPUTS}})
    cases: list = field(default_factory=lambda: [Case("the book's prices", book),
                                                 Case("other prices", random_prices)])
    misconceptions: list = field(default_factory=lambda: [
        Misconception("hard-coded-numbers", "the book's numbers typed in",
                      "The gradients must be computed by the layers' backward passes, for any prices.",
                      wrong=lambda v: {"dapple": 2.2, "dapple_num": 110.0, "dorange": 3.3,
                                       "dorange_num": 165.0, "dtax": 650.0}),
    ])

    def expected(self, reference, values) -> tuple:
        return getattr(reference[self.module], self.function)(**values)

    @property
    def max_points(self) -> float:
        return sum(self.points.values()) * len(self.cases)

    def grade_case(self, worker, case, items, reference, seed) -> None:
        values, (price, grads) = self.prepared(case, reference, seed)
        program = Program()
        program.keep(program.func(self.module, self.function, **values))
        try:
            (result,), _ = worker.run(program)
        except StudentError as exc:
            text = diagnosis.format_error(f"{self.function}()", exc.error)
            mistake = self.diagnose_error(exc.error, values)
            for item in items.values():
                item.error(text + (f"\n{mistake.text()}" if mistake else ""),
                           misconception=mistake.id if mistake else None)
            return
        if not (isinstance(result, (tuple, list)) and len(result) == 2 and isinstance(result[1], dict)):
            for item in items.values():
                item.failed(f"{self.function}() should return (price, grads) with grads a dict; "
                            f"got {checks.describe(result)}.")
            return
        self.judge("price", result[0], np.float64(price), values, items, "price")
        for name in INPUTS:
            self.judge(f"d{name}", result[1].get(name), np.float64(grads[name]), values, items,
                       f"d price / d {name}")


EXERCISE = GraphExercise()
