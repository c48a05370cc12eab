"""A function of named inputs, judged on what it returns.

With ``inputs``, it computes a value and those inputs' gradients,
``f(**inputs) -> (value, {input: d value / d input})``: a computational graph built by
hand from layers (the book's shopping example). Without, it returns the value alone
(a number or an array, e.g. the weights after one learning step). The value and each
gradient are judged against the reference's, one item each, and a wrong one is
matched against the declared misconceptions.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from grader.exercises.base import Answers, Case, Declared, Outcome, Values, copy
from grader.judging import checks
from grader.judging.misconceptions import Misconception, format_error
from grader.worker.client import Program


@dataclass
class FunctionExercise(Declared):
    part: str
    module: str
    function: str
    inputs: Sequence[str]                # the inputs whose gradients are returned (none: the value alone)
    cases: Sequence[Case]
    value: str = "value"                 # what the first returned element is called
    misconceptions: Sequence[Misconception] = ()
    points: dict[str, float] = field(default_factory=dict)  # default: 1 for the value and for each d<input>

    def __post_init__(self):
        super().__post_init__()
        self.points = self.points or {self.value: 1, **{f"d{k}": 1 for k in self.inputs}}

    @property
    def target(self) -> str:
        return self.function

    def expected(self, reference, values: Values) -> tuple:
        """(value, {input: gradient}) as the reference computes them (no gradients without ``inputs``)."""
        result = getattr(reference[self.module], self.function)(**copy(values))
        return result if self.inputs else (result, {})

    def grade_case(self, worker, case: Case, items, answers: Answers) -> None:
        values, expected = answers.get(self, case)
        program = Program()
        program.keep(program.func(self.module, self.function, **values))
        self.judge_case(values, expected, Outcome.of(worker, program), items)

    def judge_case(self, values: Values, expected: tuple, outcome: Outcome, items) -> None:
        """Settle the case's items from what came back (pure)."""
        value, grads = expected
        if outcome.error is not None:
            text = format_error(f"{self.function}()", outcome.error)
            mistake = self.diagnose_error(outcome.error, values)
            for item in items.values():
                item.error(text + (f"\n{mistake.text()}" if mistake else ""),
                           misconception=mistake.id if mistake else None)
            return
        result = outcome.values[0]
        if not self.inputs:
            result = (result, {})
        elif not (isinstance(result, tuple | list) and len(result) == 2 and isinstance(result[1], dict)):
            for item in items.values():
                item.failed(f"{self.function}() should return ({self.value}, grads) with grads a dict; "
                            f"got {checks.describe(result)}.")
            return
        self.judge(self.value, result[0], np.asarray(value, dtype=np.float64), values, items, self.value)
        for name in self.inputs:
            self.judge(f"d{name}", result[1].get(name), np.float64(grads[name]), values, items,
                       f"d {self.value} / d {name}")
