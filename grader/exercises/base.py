"""How an exercise is declared and graded. Each exercise module only declares content.

A layer exercise names its class, the arguments of its constructor, forward and
backward, the quantities it checks (``dx``, ``dW``, ...) with their points, the input
cases, and its known misconceptions. ``grade`` then runs every case in one worker
round trip, judges each quantity against the reference, checks it against the
numerical gradient of the student's own forward, and names a known mistake when a
wrong answer matches one.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from grader import checks, diagnosis
from grader.scoring import Item, Scorer
from grader.worker.client import Program, StudentError, Worker, WorkerError, clean_error
from grader.worker.inside.protocol import Raised

Values = dict[str, object]  # named inputs of one case: x, W, dout, t, ...


@dataclass(frozen=True)
class Case:
    """One input set: ``make(rng)`` returns the named inputs (float64, fresh each call)."""

    name: str
    make: Callable[[np.random.Generator], Values]


@dataclass(frozen=True)
class Misconception:
    """A known wrong answer: what it computes, or how it fails, and a hint that teaches."""

    id: str
    title: str
    hint: str
    wrong: Callable[[Values], dict[str, np.ndarray]] | None = None  # quantity -> wrong value
    error: Callable[[dict, Values], bool] | None = None             # recognised from an exception
    trace: Callable[[list[str]], bool] | None = None                # from the order of backward calls

    def text(self) -> str:
        return f"Known mistake: {self.title}. {self.hint}"


@dataclass(frozen=True)
class Quantity:
    """A checked output: where to read it and which input it is the gradient of."""

    source: tuple[str, object]   # ("return", None | index) | ("attr", name) | ("forward", None)
    wrt: str | None = None       # the named input it differentiates (None: not a gradient)


_PREPARED: dict[tuple, tuple[dict, dict]] = {}


def case_rng(seed: int, part: str, case: str) -> np.random.Generator:
    """Inputs depend only on the course seed, the part and the case: same on every machine."""
    return np.random.default_rng([seed, zlib.crc32(part.encode()), zlib.crc32(case.encode())])


def copy(values: Values) -> Values:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in values.items()}


class Judging:
    """Verdicts, points and diagnoses shared by every kind of exercise.

    Needs ``misconceptions`` on the exercise.
    """

    misconceptions: Sequence[Misconception]

    def judge(self, name, value, expected, values, items, label, either=None) -> bool:
        item = items.get(name)
        if item is None or item.settled:
            return False
        if isinstance(value, _Malformed):
            item.failed(value.message)
            return False
        verdict = checks.compare(label, value, expected, either=either, batch=_batch(values))
        if verdict.ok:
            item.passed(verdict.message)
            return True
        mistake = self.diagnose_value(name, value, values)
        item.failed(verdict.message + ("\n" + mistake.text() if mistake else ""),
                    mistake.id if mistake else None)
        return False

    def diagnose_value(self, name: str, value, values: Values):
        for m in self.misconceptions:
            if m.wrong is None:
                continue
            try:
                wrong = m.wrong(copy(values)).get(name)
            except Exception:  # a wrong formula that cannot even run on these shapes
                continue
            if wrong is not None and checks.compare("", value, wrong).ok:
                return m
        return None

    def diagnose_error(self, error: dict, values: Values):
        for m in self.misconceptions:
            if m.error and m.error(error, values):
                return m
        return diagnosis.from_error(error)

    def prepared(self, case: Case, reference, seed: int) -> tuple[Values, dict]:
        """The case's inputs and the reference's answers: the same for every student of a
        class (same seed), so made once per process. Callers never mutate them."""
        key = (self.part, case.name, seed, id(reference))
        if key not in _PREPARED:
            if len(_PREPARED) > 512:
                _PREPARED.clear()
            values = case.make(case_rng(seed, self.part, case.name))
            _PREPARED[key] = (values, self.expected(reference, values))
        return _PREPARED[key]

    def plan(self, scorer: Scorer) -> list[tuple[Case, dict[str, Item]]]:
        return [(case, {q: scorer.plan(self.part, f"{self.part}: {q} ({case.name})", p)
                        for q, p in self.points.items()}) for case in self.cases]

    def grade(self, worker: Worker, scorer: Scorer, reference, seed: int) -> None:
        """Grade every case; a hang or crash stops this part only."""
        plans = self.plan(scorer)
        for case, items in plans:
            try:
                self.grade_case(worker, case, items, reference, seed)
            except WorkerError as exc:
                self.recover(worker, plans, reference, seed)
                message = f"{self.part}: {exc}. The remaining checks of {self.part} were not run."
                for _, later in plans:
                    for item in later.values():
                        item.error(message, status=exc.status)
                return

    def recover(self, worker: Worker, plans, reference, seed: int) -> None:
        """After a hang or crash, give the forward passes that still work their credit."""
        grade_forward = getattr(self, "grade_forward", None)
        if grade_forward is None:
            return
        try:
            worker.start()
            for case, items in plans:
                if "forward" in items and not items["forward"].settled:
                    grade_forward(worker, case, items, reference, seed)
        except WorkerError:
            return

    def grade_case(self, worker, case, items, reference, seed) -> None:
        raise NotImplementedError


@dataclass
class LayerExercise(Judging):
    """A layer class with forward(*inputs) and backward(*upstream)."""

    part: str
    cls: str
    init: Sequence[str]
    forward: Sequence[str]
    backward: Sequence[str]
    quantities: dict[str, Quantity]
    points: dict[str, float]              # per case, per quantity (including "forward")
    cases: Sequence[Case]
    misconceptions: Sequence[Misconception] = ()
    module: str = "layers"
    file: str = "layers.py"
    either: Callable[[Values, dict], dict] | None = None  # equally valid answers at kinks
    frozen: Callable[[Values], dict] | None = None        # entries not to perturb numerically
    numeric_directions: int = 2
    max_points: float = field(init=False)

    def __post_init__(self):
        self.max_points = sum(self.points.values()) * len(self.cases)

    # -- the reference side (trusted, in the grader's process) -------------------------
    def expected(self, reference, values: Values) -> dict[str, object]:
        layer = getattr(reference[self.module], self.cls)(*self.args(self.init, copy(values)))
        out = {"forward": layer.forward(*self.args(self.forward, copy(values)))}
        returned = layer.backward(*self.args(self.backward, copy(values)))
        for name, quantity in self.quantities.items():
            kind, key = quantity.source
            if kind == "return":
                out[name] = returned if key is None else returned[key]
            elif kind == "attr":
                out[name] = getattr(layer, key)
        return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}

    @staticmethod
    def args(names: Sequence[str], values: Values) -> list:
        return [values[n] for n in names]

    # -- grading -----------------------------------------------------------------------
    def grade_case(self, worker: Worker, case: Case, items: dict[str, Item], reference, seed: int):
        values, expected = self.prepared(case, reference, seed)
        program = Program()
        layer = program.new(self.module, self.cls, *self.args(self.init, copy(values)))
        # tolerate: a broken forward is reported as such, and backward is still checked
        out = program.call(layer, "forward", *self.args(self.forward, copy(values)), tolerate=True)
        back = program.call(layer, "backward", *self.args(self.backward, copy(values)))
        attrs = {q: program.get(layer, key, optional=True) for q, (kind, key) in
                 ((q, qu.source) for q, qu in self.quantities.items()) if kind == "attr"}
        program.keep(out, back, *attrs.values())
        numeric = self.numeric_plan(program, case, values)  # same round trip
        try:
            got, _ = worker.run(program)
        except StudentError as exc:
            got = self.settle_error(exc, case, values, items)
            if got is None:
                return
        kept = len(attrs) + 2
        returned = dict(zip(["forward", "__back__", *attrs], got[:kept], strict=False))
        numeric = (numeric, got[kept:])
        forward = returned.get("forward")
        if isinstance(forward, Raised):
            error = clean_error(forward.error)
            mistake = self.diagnose_error(error, values)
            items["forward"].error(diagnosis.format_error(f"{self.cls}.forward", error)
                                   + (f"\n{mistake.text()}" if mistake else ""),
                                   misconception=mistake.id if mistake else None)
        forward_ok = self.judge("forward", forward, expected["forward"], values, items,
                                f"{self.cls}.forward")
        student = {"forward": returned.get("forward")}
        for name, quantity in self.quantities.items():
            if name in items and not items[name].settled:
                student[name] = self.read(name, quantity, returned)
        self.judge_gradients(numeric, values, expected, student, items, forward_ok)

    def grade_forward(self, worker: Worker, case: Case, items: dict[str, Item], reference, seed: int):
        """Only the forward check of one case (used after the backward hung or crashed)."""
        values, expected = self.prepared(case, reference, seed)
        program = Program()
        layer = program.new(self.module, self.cls, *self.args(self.init, copy(values)))
        program.keep(program.call(layer, "forward", *self.args(self.forward, copy(values))))
        try:
            (out,), _ = worker.run(program)
        except StudentError as exc:
            items["forward"].error(diagnosis.format_error(f"{self.cls}.forward", exc.error))
            return
        self.judge("forward", out, expected["forward"], values, items, f"{self.cls}.forward")

    def read(self, name: str, quantity: Quantity, returned: dict):
        kind, key = quantity.source
        if kind == "attr":
            return returned.get(name)
        value = returned.get("__back__")
        if key is None:
            return value
        if isinstance(value, (tuple, list)) and len(value) > key:
            return value[key]
        return _Malformed(f"{self.cls}.backward should return {len(self.backward_names())} values "
                          f"({', '.join(self.backward_names())}), got {checks.describe(value)}")

    def backward_names(self) -> list[str]:
        return [q for q, qu in self.quantities.items() if qu.source[0] == "return"]

    def settle_error(self, exc: StudentError, case: Case, values: Values, items: dict[str, Item]):
        """The student's code raised at ``exc.step``: settle what cannot be judged."""
        where = ["the constructor", f"{self.cls}.forward", f"{self.cls}.backward"]
        step = min(exc.step, 2) if exc.step >= 0 else 0
        mistake = self.diagnose_error(exc.error, values)
        text = diagnosis.format_error(where[step], exc.error)
        if mistake:
            text += "\n" + mistake.text()
        mid = mistake.id if mistake else None
        if step <= 1:
            for item in items.values():
                item.error(text if step == 0 or item is items.get("forward") else
                           f"Not checked: {self.cls}.forward raised (see the forward check).", misconception=mid)
            return None
        for name, item in items.items():
            if name != "forward":
                item.error(text, misconception=mid)
        return exc.partial

    def judge_gradients(self, numeric, values, expected, student, items, forward_ok):
        either = self.either(values, expected) if self.either else {}
        verdicts = {}
        for name in self.quantities:
            label = f"{self.cls}.backward: {name}"
            verdicts[name] = self.judge(name, student.get(name), expected[name], values, items, label,
                                        either.get(name))
        if forward_ok:  # the second oracle: consistency with the student's own forward
            self.numeric_notes(*numeric, values, student, items, verdicts)

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
                program.keep(program.probe(self.module, self.cls, init, "forward", call, moved, u,
                                           checks.H))
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


class _Malformed:
    def __init__(self, message: str):
        self.message = message


def _batch(values: Values) -> int | None:
    for key in ("x", "dout"):
        value = values.get(key)
        if isinstance(value, np.ndarray) and value.ndim >= 2:
            return value.shape[0]
    return None
