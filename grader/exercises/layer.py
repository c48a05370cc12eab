"""A layer class with ``forward(*inputs)`` and ``backward(*upstream)``, as in the book.

Each case runs in one round trip: construct, forward, backward, read the attributes
that hold gradients (``dW``), and the numerical probes of the student's own forward
(fresh layers at ``input +- h u`` for random unit directions ``u``). Judging is pure:
each quantity against the reference, then against the numerical gradient.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from grader.exercises.base import Answers, Case, Declared, Malformed, Outcome, Quantity, Values, case_rng, copy
from grader.judging import checks
from grader.judging.misconceptions import Misconception, format_error
from grader.judging.scoring import Item
from grader.worker.client import Program, Worker, clean_error
from grader.worker.inside.protocol import Raised


@dataclass
class LayerExercise(Declared):
    part: str
    cls: str
    module: str
    init: Sequence[str]
    forward: Sequence[str]
    backward: Sequence[str]
    quantities: dict[str, Quantity]
    points: dict[str, float]              # per case, per quantity (including "forward")
    cases: Sequence[Case]
    misconceptions: Sequence[Misconception] = ()
    either: Callable[[Values, dict], dict] | None = None  # equally valid answers at kinks
    frozen: Callable[[Values], dict] | None = None        # entries not to perturb numerically
    numeric_directions: int = 2
    seed_key: str | None = None  # np.random.seed(values[seed_key]) before every forward: a random
    #                              mask (dropout) is the same in the reference, the student's call
    #                              and every numerical probe

    # -- the reference side (trusted, in the grader's process) -------------------------
    def expected(self, reference, values: Values) -> dict[str, object]:
        layer = getattr(reference[self.module], self.cls)(*self.args(self.init, copy(values)))
        with _seeded(self.seed(values)):
            out = {"forward": layer.forward(*self.args(self.forward, copy(values)))}
        returned = layer.backward(*self.args(self.backward, copy(values)))
        for name, quantity in self.quantities.items():
            kind, key = quantity.source
            if kind == "return":
                out[name] = returned if key is None else returned[key]
            elif kind == "attr":
                out[name] = getattr(layer, key)
        return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}

    def seed(self, values: Values) -> int | None:
        return int(values[self.seed_key]) if self.seed_key else None

    @staticmethod
    def args(names: Sequence[str], values: Values) -> list:
        return [values[n] for n in names]

    @property
    def attrs(self) -> list[tuple[str, str]]:
        return [(q, qu.source[1]) for q, qu in self.quantities.items() if qu.source[0] == "attr"]

    # -- gather --------------------------------------------------------------------------
    def gather(self, case: Case, values: Values) -> tuple[Program, list]:
        """The case's round trip: forward, backward, the gradient attributes, the probes."""
        program = Program()
        layer = program.new(self.module, self.cls, *self.args(self.init, copy(values)))
        if self.seed_key:
            program.seed(self.seed(values))
        # tolerate: a broken forward is reported as such, and backward is still checked
        out = program.call(layer, "forward", *self.args(self.forward, copy(values)), tolerate=True)
        back = program.call(layer, "backward", *self.args(self.backward, copy(values)))
        attrs = [program.get(layer, key, optional=True) for _, key in self.attrs]
        program.keep(out, back, *attrs)
        return program, self.numeric_plan(program, case, values)

    def grade_case(self, worker: Worker, case: Case, items: dict[str, Item], answers: Answers):
        values, expected = answers.get(self, case)
        program, plan = self.gather(case, values)
        self.judge_case(values, expected, Outcome.of(worker, program), plan, items)

    # -- judge (pure) ----------------------------------------------------------------------
    def judge_case(self, values: Values, expected: dict, outcome: Outcome, plan: list,
                   items: dict[str, Item]) -> None:
        """Settle the case's items from what came back; no worker involved."""
        if outcome.error is not None and not self.settle_error(outcome, values, items):
            return
        kept = len(self.attrs) + 2
        got = outcome.values
        returned = dict(zip(["forward", "__back__", *(q for q, _ in self.attrs)], got[:kept], strict=False))
        forward = returned.get("forward")
        if isinstance(forward, Raised):
            error = clean_error(forward.error)
            mistake = self.diagnose_error(error, values)
            items["forward"].error(format_error(f"{self.cls}.forward", error)
                                   + (f"\n{mistake.text()}" if mistake else ""),
                                   misconception=mistake.id if mistake else None)
        forward_ok = self.judge("forward", forward, expected["forward"], values, items, f"{self.cls}.forward")
        student = {"forward": forward}
        for name, quantity in self.quantities.items():
            if name in items and not items[name].settled:
                student[name] = self.read(name, quantity, returned)
        either = self.either(values, expected) if self.either else {}
        verdicts = {name: self.judge(name, student.get(name), expected[name], values, items,
                                     f"{self.cls}.backward: {name}", either.get(name))
                    for name in self.quantities}
        if forward_ok:  # the second oracle: consistency with the student's own forward
            self.numeric_notes(plan, got[kept:], values, student, items, verdicts)

    def settle_error(self, outcome: Outcome, values: Values, items: dict[str, Item]) -> bool:
        """The student's code raised at ``outcome.step``: settle what cannot be judged.
        True when the forward pass still came back (the backward raised)."""
        where = ["the constructor", f"{self.cls}.forward", f"{self.cls}.backward"]
        step = min(outcome.step, 2) if outcome.step >= 0 else 0
        mistake = self.diagnose_error(outcome.error, values)
        text = format_error(where[step], outcome.error)
        if mistake:
            text += "\n" + mistake.text()
        mid = mistake.id if mistake else None
        if step <= 1:
            for item in items.values():
                item.error(text if step == 0 or item is items.get("forward") else
                           f"Not checked: {self.cls}.forward raised (see the forward check).", misconception=mid)
            return False
        for name, item in items.items():
            if name != "forward":
                item.error(text, misconception=mid)
        return True

    def grade_forward(self, worker: Worker, case: Case, items: dict[str, Item], answers: Answers):
        """Only the forward check of one case (used after the backward hung or crashed)."""
        values, expected = answers.get(self, case)
        program = Program()
        layer = program.new(self.module, self.cls, *self.args(self.init, copy(values)))
        if self.seed_key:
            program.seed(self.seed(values))
        program.keep(program.call(layer, "forward", *self.args(self.forward, copy(values))))
        outcome = Outcome.of(worker, program)
        if outcome.error is not None:
            items["forward"].error(format_error(f"{self.cls}.forward", outcome.error))
            return
        self.judge("forward", outcome.values[0], expected["forward"], values, items, f"{self.cls}.forward")

    def read(self, name: str, quantity: Quantity, returned: dict):
        kind, key = quantity.source
        if kind == "attr":
            return returned.get(name)
        value = returned.get("__back__")
        if key is None:
            return value
        if isinstance(value, tuple | list) and len(value) > key:
            return value[key]
        return Malformed(f"{self.cls}.backward should return {len(self.backward_names())} values "
                         f"({', '.join(self.backward_names())}), got {checks.describe(value)}")

    def backward_names(self) -> list[str]:
        return [q for q, qu in self.quantities.items() if qu.source[0] == "return"]

    # -- the second oracle: numerical gradients of the student's own forward ----------------
    def numeric_plan(self, program: Program, case: Case, values: Values) -> list:
        """Add forward passes at x +- h u (random unit u) for each gradient to ``program``:
        one probe step per direction, each on fresh layers; the inputs are sent once."""
        rng = case_rng(0, self.part, case.name + "/directions")
        frozen = self.frozen(values) if self.frozen else {}
        sent = {k: program.value(v) for k, v in values.items() if k in (*self.init, *self.forward)}
        init, call = [sent[n] for n in self.init], [sent[n] for n in self.forward]
        plan = []
        for name, quantity in self.quantities.items():
            if quantity.wrt is None or not isinstance(values[quantity.wrt], np.ndarray):
                continue
            moved = ("init", self.init.index(quantity.wrt)) if quantity.wrt in self.init \
                else ("call", self.forward.index(quantity.wrt))
            for _ in range(self.numeric_directions):
                u = checks.unit_direction(rng, values[quantity.wrt].shape, frozen.get(quantity.wrt))
                program.keep(program.probe(self.module, self.cls, init, "forward", call, moved, u, checks.H,
                                           seed=self.seed(values)))
                plan.append((name, u))
        return plan

    def numeric_notes(self, plan, outs, values, student, items, verdicts):
        """Add what the numerical gradient of the student's forward says to each verdict."""
        upstream = values.get(self.backward[0]) if self.backward else None
        slopes: dict[str, list] = {}
        for (name, u), pair in zip(plan, outs, strict=False):
            grad = student.get(name)
            if (not isinstance(pair, tuple) or len(pair) != 2 or any(isinstance(v, Raised) for v in pair)
                    or not isinstance(grad, np.ndarray) or grad.shape != u.shape
                    or not np.all(np.isfinite(grad))):
                continue
            try:
                plus, minus = (np.asarray(v, dtype=np.float64) for v in pair)
                weight = 1.0 if upstream is None else upstream
                slope = float(np.sum((plus - minus) * weight)) / (2 * checks.H)
                noise = checks.slope_noise(float(np.sum(np.abs(plus * weight))))
            except (TypeError, ValueError):  # a forward that returned something odd
                continue
            slopes.setdefault(name, []).append((u, slope, noise))
        for name, pairs in slopes.items():
            verdict = checks.directional_verdict(f"Your {name}", student[name], pairs)
            item = items[name]
            if not verdicts[name]:
                item.result.feedback += "\n" + verdict.message
            elif not verdict.ok:  # right by the reference, wrong by the numbers: tell the instructor
                item.result.feedback += "\nNote for the instructor: " + verdict.message


class _seeded:
    """numpy's global generator seeded for a block, then put back as it was."""

    def __init__(self, seed: int | None):
        self.seed, self.state = seed, None

    def __enter__(self):
        if self.seed is not None:
            self.state = np.random.get_state()
            np.random.seed(self.seed)

    def __exit__(self, *exc):
        if self.state is not None:
            np.random.set_state(self.state)
