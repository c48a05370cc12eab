"""A network's ``gradient(x, t)``: forward, then every layer's backward from the last one.

The student's net is built with their own layers, so a wrong layer would make the
gradient wrong twice over. The check therefore also replays the correct walk (the
assignment declares it: which objects' ``backward`` to call, in order, and where each
parameter's gradient is read afterwards) on the student's own layer objects: if their
``gradient`` equals that, the method is right and the error belongs to a layer part.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from grader.exercises.base import Answers, Case, Declared, Outcome, Values, case_rng, copy
from grader.judging import checks
from grader.judging.misconceptions import Misconception, format_error
from grader.worker.client import Program, clean_error
from grader.worker.inside import protocol
from grader.worker.inside.protocol import Raised


@functools.lru_cache(maxsize=64)
def _direction(seed: int, shape: tuple) -> np.ndarray:
    """The grader's copy of a direction the worker makes; the same for every student."""
    u = protocol.direction(seed, shape)
    u.flags.writeable = False
    return u


@dataclass
class NetworkExercise(Declared):
    part: str
    cls: str
    module: str
    params: Sequence[str]                      # the keys of ``net.params``
    build: Callable[[Values], tuple]           # the constructor's arguments for a case
    points: dict[str, float]                   # "loss" and one entry per parameter, per case
    cases: Sequence[Case]
    misconceptions: Sequence[Misconception] = ()
    seed_key: str | None = None                # np.random.seed(values[seed_key]) before constructing
    walk: Sequence[tuple[str, ...]] = ()       # the correct backward walk: attribute paths, last layer first
    walk_grads: dict[str, tuple[str, ...]] = field(default_factory=dict)  # param -> its gradient after the walk
    loss: str = "loss"
    gradient: str = "gradient"

    def construct(self, program: Program, values: Values):
        """The student's net with the case's weights: drawn by their own ``__init__`` after
        the same seed the case's weights were drawn with."""
        if self.seed_key:
            program.seed(values[self.seed_key])
        return program.new(self.module, self.cls, *self.build(values))

    def expected(self, reference, values: Values) -> dict:
        net = getattr(reference[self.module], self.cls)(*self.build(values))
        for key in self.params:
            net.params[key][...] = values[key]
        grads = getattr(net, self.gradient)(values["x"].copy(), values["t"].copy())
        loss = getattr(net, self.loss)(values["x"].copy(), values["t"].copy())
        return {"loss": np.float64(loss), **{k: np.asarray(grads[k], dtype=np.float64) for k in self.params}}

    def actual_params(self, worker, values: Values) -> dict[str, np.ndarray] | None:
        """The weights the student's ``__init__`` really drew, when they differ from the case's."""
        program = Program()
        net = self.construct(program, values)
        program.keep(*(program.get(net, "params", key, optional=True) for key in self.params))
        outcome = Outcome.of(worker, program)
        if outcome.error is not None:
            return None
        actual = dict(zip(self.params, outcome.values, strict=True))
        if not all(isinstance(actual[k], np.ndarray) and actual[k].shape == values[k].shape
                   and actual[k].dtype.kind == "f" for k in self.params):
            return None
        same = all(np.array_equal(actual[k], values[k]) for k in self.params)
        return None if same else actual

    def grade_case(self, worker, case, items, answers: Answers) -> None:
        values, expected = answers.get(self, case)
        # one round trip: loss, gradient, and the numerical check of the student's own loss
        program = Program()
        net = self.construct(program, values)
        x, t = program.value(values["x"]), program.value(values["t"])  # sent once, used many times
        program.keep(program.call(net, self.loss, x, t, tolerate=True))
        program.keep(program.call(net, self.gradient, x, t))
        plan = self.numeric_plan(program, net, case, (x, t), values)
        outcome = Outcome.of(worker, program)
        note = ""
        if outcome.error is None:
            grads = outcome.values[1]
            verdicts = self.verdicts(grads, expected, values)
            if not (all(v.ok for v in verdicts.values()) and self.loss_right(outcome.values[0], expected)):
                actual = self.actual_params(worker, values)
                if actual is not None:  # their __init__ draws other weights: judge with those
                    values = {**values, **actual}
                    expected = self.expected(answers.reference, values)
                    note = ("Your __init__ draws different weights from the book's; "
                            "you were graded with your own weights.")
        own = self.own_layers_walk(worker, values) if self.needs_walk(outcome, expected, values) else None
        self.judge_case(values, expected, outcome, plan, items, own or {}, note)

    def needs_walk(self, outcome: Outcome, expected, values) -> bool:
        """Replay the walk only when some gradient is wrong and no trace mistake explains it."""
        if outcome.error is not None or not isinstance(outcome.values[1], dict) or self.from_trace(outcome.trace):
            return False
        return not all(v.ok for v in self.verdicts(outcome.values[1], expected, values).values())

    # -- judge (pure) ----------------------------------------------------------------------
    def judge_case(self, values: Values, expected: dict, outcome: Outcome, plan: list, items,
                   own: dict, note: str = "") -> None:
        """Settle the case's items from what came back and from the replayed walk (``own``)."""
        if outcome.error is not None:
            if outcome.values:
                self.judge_loss(outcome.values[0], expected, values, items)
            mistake = self.from_trace(outcome.trace) or self.diagnose_error(outcome.error, values)
            text = format_error(f"{self.cls}.{self.gradient}", outcome.error)
            for key in self.params:
                items[key].error(text + (f"\n{mistake.text()}" if mistake else ""),
                                 misconception=mistake.id if mistake else None)
            return
        loss, grads, *numeric = outcome.values
        self.judge_loss(loss, expected, values, items)
        if note:
            items["loss"].result.feedback += "\n" + note
        if not isinstance(grads, dict):
            for key in self.params:
                items[key].failed(f"{self.cls}.{self.gradient} should return a dict with keys "
                                  f"{', '.join(self.params)}; got {checks.describe(grads)}.")
            return
        mistake = self.from_trace(outcome.trace)
        verdicts = self.verdicts(grads, expected, values)
        for key in self.params:
            value, item, verdict = grads.get(key), items[key], verdicts[key]
            if verdict.ok:
                item.passed(verdict.message)
            elif not mistake and key in own and checks.compare("", value, own[key]).ok:
                item.passed(f"{self.cls}.{self.gradient}: {key}: your {self.gradient}() walks the layers "
                            "correctly; the value differs from the true gradient only because of your "
                            "layers (see their parts).")
            else:
                named = mistake or self.diagnose_value(key, value, values)
                item.failed(verdict.message + (f"\n{named.text()}" if named else ""),
                            named.id if named else None)
        self.numeric_notes(plan, numeric, grads, items)

    def verdicts(self, grads, expected, values) -> dict[str, checks.Verdict]:
        """Each gradient judged once against the reference."""
        found = grads if isinstance(grads, dict) else {}
        return {k: checks.compare(f"{self.cls}.{self.gradient}: {k}", found.get(k), expected[k],
                                  batch=values["x"].shape[0]) for k in self.params}

    @staticmethod
    def loss_right(loss, expected) -> bool:
        return not isinstance(loss, Raised) and checks.compare("", loss, expected["loss"]).ok

    def judge_loss(self, loss, expected, values, items) -> None:
        if isinstance(loss, Raised):
            items["loss"].error(format_error(f"{self.cls}.{self.loss}", clean_error(loss.error)))
        else:
            self.judge("loss", loss, expected["loss"], values, items, f"{self.cls}.{self.loss}")

    # -- the second oracle: the slope of the student's own loss ------------------------------
    def numeric_plan(self, program: Program, net, case, data, values: Values) -> list:
        """Loss at each parameter +- h u (random unit u), perturbed in place in the worker
        and restored; runs after ``gradient`` in the same program. Only each direction's
        seed crosses the boundary, and one step per parameter."""
        rng = case_rng(0, self.part, case.name + "/directions")
        plan = []
        for key in self.params:
            seed = int(rng.integers(2**31))
            program.keep(program.slope(net, ("params", key), seed, checks.H, self.loss, *data))
            plan.append((key, _direction(seed, values[key].shape)))
        return plan

    def numeric_notes(self, plan, outs, grads: dict, items) -> None:
        """Say whether each gradient agrees with the slope of the student's own loss."""
        for (key, u), pair in zip(plan, outs, strict=False):
            grad = grads.get(key)
            if not isinstance(pair, tuple) or len(pair) != 2 or not all(isinstance(v, float) for v in pair) \
                    or not isinstance(grad, np.ndarray) or grad.shape != u.shape \
                    or not np.all(np.isfinite(grad)):
                continue
            slope = (pair[0] - pair[1]) / (2 * checks.H)
            noise = checks.slope_noise(*pair)
            verdict = checks.directional_verdict(f"Your {key}", grad, [(u, slope, noise)])
            item = items[key]
            if item.result.status != "passed":
                item.result.feedback += "\n" + verdict.message
            elif not verdict.ok:
                item.result.feedback += "\nNote for the instructor: " + verdict.message

    def own_layers_walk(self, worker, values: Values) -> dict | None:
        """The correct backward walk, replayed by the grader on the student's own layers."""
        if not self.walk:
            return None
        program = Program()
        net = self.construct(program, values)
        program.call(net, self.loss, copy(values)["x"], values["t"])
        first, *rest = self.walk
        dout = program.call(program.get(net, *first), "backward")
        for path in rest:
            dout = program.call(program.get(net, *path), "backward", dout)
        keys = list(self.walk_grads)
        program.keep(*(program.get(net, *self.walk_grads[k]) for k in keys))
        outcome = Outcome.of(worker, program)
        return None if outcome.error is not None else dict(zip(keys, outcome.values, strict=True))
