"""A function of named inputs, judged on what it returns.

With ``inputs``, it computes a value and those inputs' gradients,
``f(**inputs) -> (value, {input: d value / d input})``: a computational graph built by
hand from layers (the book's shopping example). Without, it returns the value alone (a
number or an array: the weights after one learning step, images folded back from
their columns). The value and each
gradient are judged against the reference's, one item each, and a wrong one is matched
against the declared misconceptions. When a layer part it ``depends`` on already failed,
the graph is replayed correctly with the student's own layer objects (``walk``, declared
by the assignment as worker steps): if their function gives exactly that, the error is
the layer's, and the layer part is blamed.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from grader.exercises.base import Answers, Case, Declared, Outcome, Values, copy, same
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
    depends: Sequence[str] = ()          # the parts of the layers the function is built from
    walk: Callable[[Program, Values], tuple] | None = None  # (value, {input: gradient}) refs, built right

    def __post_init__(self):
        super().__post_init__()
        self.points = self.points or {self.value: 1, **{f"d{k}": 1 for k in self.inputs}}

    @property
    def target(self) -> str:
        return self.function

    def expected(self, reference, values: Values, case: Case | None = None) -> tuple:
        """(value, {input: gradient}) as the reference computes them (no gradients without ``inputs``)."""
        result = getattr(reference[self.module], self.function)(**copy(values))
        return result if self.inputs else (result, {})

    def gather(self, case: Case, values: Values, expected: tuple | None = None) -> tuple[Program]:
        program = Program()
        program.keep(program.func(self.module, self.function, **values))
        return (program,)

    def grade_case(self, worker, case: Case, items, answers: Answers, scorer=None,
                   gathered: tuple | None = None) -> None:
        values, expected = answers.get(self, case)
        (program,) = gathered or self.gather(case, values)
        outcome = Outcome.of(worker, program)
        failed = self.failed_layers(scorer)
        own = self.replay(worker, values) if failed and self.walk else None
        self.judge_case(values, expected, outcome, items, failed, own)

    def replay(self, worker, values: Values) -> tuple | None:
        """(value, {input: gradient}) of the graph built right from the student's own layers."""
        program = Program()
        value, grads = self.walk(program, values)
        program.keep(value, *(grads[k] for k in self.inputs))
        outcome = Outcome.of(worker, program)
        if outcome.error is not None:
            return None
        return outcome.values[0], dict(zip(self.inputs, outcome.values[1:], strict=True))

    def judge_case(self, values: Values, expected: tuple, outcome: Outcome, items,
                   failed_layers: Sequence[str] = (), own: tuple | None = None) -> None:
        """Settle the case's items from what came back and from the graph replayed right on
        the student's layers (``own``), when a layer part it depends on failed (pure)."""
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
        theirs = {self.value: result[0], **{f"d{k}": result[1].get(k) for k in self.inputs}}
        right = {self.value: own[0], **{f"d{k}": own[1][k] for k in self.inputs}} if own else {}
        for name, got in theirs.items():
            target = np.asarray(value if name == self.value else grads[name[1:]], dtype=np.float64)
            label = self.value if name == self.value else f"d {self.value} / d {name[1:]}"
            if right and not checks.compare("", got, target).ok and same(got, right[name]):
                where = "that part" if len(failed_layers) == 1 else "those parts"
                items[name].passed(f"{label}: {self.function}() builds the graph right; the value differs "
                                   f"from the true one only because of your {', '.join(failed_layers)} "
                                   f"(see {where}).")
                continue
            ok = self.judge(name, got, target, values, items, label)
            if not ok and failed_layers:  # say where to look first
                items[name].result.feedback += (f"\nYour {', '.join(failed_layers)} already fails its own "
                                                f"checks, and {self.function}() is built from it: fix that first.")
