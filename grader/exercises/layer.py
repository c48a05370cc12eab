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

from grader.exercises.base import (
    Answers,
    Case,
    Declared,
    Malformed,
    Outcome,
    Quantity,
    Values,
    case_rng,
    copy,
    same,
)
from grader.judging import checks
from grader.judging.misconceptions import INPUT_CHANGED, PROTOCOL, Misconception, format_error
from grader.judging.scoring import Item, Scorer
from grader.results import NOT_CHECKED
from grader.worker.client import Program, Worker, WorkerError, clean_error
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
    nearest: Callable[[Values, dict, dict], dict] | None = None  # where many answers are right (tied
    #                 maxima share a gradient in any split): (inputs, expected, the student's) -> the
    #                 right answer nearest the student's, per quantity
    frozen: Callable[[Values], dict] | None = None        # entries not to perturb numerically
    numeric_directions: int = 2
    protocol_points: float = 1.0  # the layer protocol's item (``LayerProtocol``); 0: not checked
    integer_inputs: Sequence[str] | None = None  # the forward inputs the protocol also sends as integers
    #                                              (default: all; a loss's targets may be, its outputs not)
    seed_key: str | None = None  # np.random.seed(values[seed_key]) before every forward: a random
    #                              mask (dropout) is the same in the reference, the student's call
    #                              and every numerical probe
    unchanged: Sequence[str] = ()  # inputs the layer must leave as they were (the protocol checks)
    trained: Sequence[str] | None = None  # the constructor's arrays training changes in place
    #                                       (default: every float array it takes)
    depends: Sequence[str] = ()    # parts the layer's methods call (a function students write)
    walk: Callable[[Program, Values], dict] | None = None  # quantity -> what the layer gives when
    #                 right, built from the student's own ``depends`` parts (worker steps)

    def __post_init__(self):
        super().__post_init__()
        if self.unchanged:  # the protocol can name it for this layer: the catalogue lists it
            self.misconceptions = [*self.misconceptions, INPUT_CHANGED]

    # -- the reference side (trusted, in the grader's process) -------------------------
    def expected(self, reference, values: Values, case: Case | None = None) -> dict[str, object]:
        """The reference's answers; a case that grades no backward quantity runs forward only."""
        layer = getattr(reference[self.module], self.cls)(*self.args(self.init, copy(values)))
        with _seeded(self.seed(values)):
            out = {"forward": layer.forward(*self.args(self.forward, copy(values)))}
        if case is not None and not self.backward_graded(case):
            return {"forward": np.asarray(out["forward"], dtype=np.float64)}
        returned = layer.backward(*self.args(self.backward, copy(values)))
        for name, quantity in self.quantities.items():
            kind, key = quantity.source
            if kind == "return":
                out[name] = returned if key is None else returned[key]
            elif kind == "attr":
                out[name] = getattr(layer, key)
        return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}

    @property
    def max_points(self) -> float:
        """The cases' items and the layer protocol's item."""
        return super().max_points + max(self.protocol_points, 0)

    @property
    def protocol(self) -> LayerProtocol | None:
        return LayerProtocol(self) if self.protocol_points > 0 else None

    def seed(self, values: Values) -> int | None:
        return int(values[self.seed_key]) if self.seed_key else None

    @staticmethod
    def args(names: Sequence[str], values: Values) -> list:
        return [values[n] for n in names]

    @property
    def attrs(self) -> list[tuple[str, str]]:
        return [(q, qu.source[1]) for q, qu in self.quantities.items() if qu.source[0] == "attr"]

    def backward_graded(self, case: Case) -> bool:
        """Whether the case grades anything backward gives (a test-mode case does not)."""
        return any(q != "forward" for q in case.points(self.points))

    # -- gather --------------------------------------------------------------------------
    def gather(self, case: Case, values: Values, expected: dict | None = None) -> tuple[Program, list]:
        """The case's round trip: forward, backward, the gradient attributes, the probes."""
        program = Program()
        layer = program.new(self.module, self.cls, *self.args(self.init, copy(values)))
        if self.seed_key:
            program.seed(self.seed(values))
        # tolerate: a broken forward is reported as such, and backward is still checked
        out = program.call(layer, "forward", *self.args(self.forward, copy(values)), tolerate=True)
        if not self.backward_graded(case):
            program.keep(out)
            return program, []
        back = program.call(layer, "backward", *self.args(self.backward, copy(values)))
        attrs = [program.get(layer, key, optional=True) for _, key in self.attrs]
        program.keep(out, back, *attrs)
        return program, self.numeric_plan(program, case, values)

    def grade_case(self, worker: Worker, case: Case, items: dict[str, Item], answers: Answers, scorer=None,
                   gathered: tuple | None = None):
        values, expected = answers.get(self, case)
        program, plan = gathered or self.gather(case, values)
        outcome = Outcome.of(worker, program)
        failed = self.failed_layers(scorer)
        own = self.own_parts(worker, values) if failed and self.walk and self.backward_graded(case) else {}
        self.judge_case(values, expected, outcome, plan, items, own, failed)

    def own_parts(self, worker: Worker, values: Values) -> dict:
        """quantity -> what the layer gives when right, computed with the student's own parts
        it ``depends`` on (``walk``); empty when those raise."""
        program = Program()
        found = self.walk(program, copy(values))
        program.keep(*found.values())
        outcome = Outcome.of(worker, program)
        return {} if outcome.error is not None else dict(zip(found, outcome.values, strict=True))

    # -- judge (pure) ----------------------------------------------------------------------
    def judge_case(self, values: Values, expected: dict, outcome: Outcome, plan: list,
                   items: dict[str, Item], own: dict | None = None, failed_layers: Sequence[str] = ()) -> None:
        """Settle the case's items from what came back; no worker involved. ``own``: each
        quantity as the layer gives it when right, from the student's failed parts ``failed_layers``."""
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
        if self.nearest:
            either = {**either, **self.nearest(values, expected, student)}
        excused = self.blame(student, expected, own or {}, items, failed_layers)
        verdicts = {name: self.judge(name, student.get(name), expected[name], values, items,
                                     f"{self.cls}.backward: {name}", either.get(name))
                    for name in self.quantities if name in items and name not in excused}
        if forward_ok:  # the second oracle: consistency with the student's own forward
            self.numeric_notes(plan, got[kept:], values, student, items, verdicts)

    def blame(self, student: dict, expected: dict, own: dict, items: dict[str, Item],
              failed_layers: Sequence[str]) -> set[str]:
        """The quantities that are wrong only because a part the layer calls is: passed here,
        with a message pointing at that part."""
        excused = set()
        for name, right in own.items():
            value = student.get(name)
            if name in items and not items[name].settled and not checks.compare("", value, expected[name]).ok \
                    and same(value, right):
                where = "that part" if len(failed_layers) == 1 else "those parts"
                items[name].passed(f"{self.cls}.backward: {name}: your backward is right; the value differs from "
                                   f"the true one only because of your {', '.join(failed_layers)} (see {where}).")
                excused.add(name)
        return excused

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
                           f"{NOT_CHECKED}{self.cls}.forward raised (see the forward check).", misconception=mid)
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
            if (name not in verdicts or not isinstance(pair, tuple) or len(pair) != 2
                    or any(isinstance(v, Raised) for v in pair) or not isinstance(grad, np.ndarray)
                    or grad.shape != u.shape or not np.all(np.isfinite(grad))):
                continue
            try:
                # the student's precision: a float32 loss crosses as a plain number, its gradient does not
                dtype = grad.dtype if checks.low_precision(grad) else getattr(pair[0], "dtype", np.float64)
                plus, minus = (np.asarray(v, dtype=np.float64) for v in pair)
                weight = 1.0 if upstream is None else upstream
                slope = float(np.sum((plus - minus) * weight)) / (2 * checks.H)
                noise = checks.slope_noise(float(np.sum(np.abs(plus * weight))), dtype=dtype)
            except (TypeError, ValueError):  # a forward that returned something odd
                continue
            slopes.setdefault(name, []).append((u, slope, noise))
        for name, pairs in slopes.items():
            verdict = checks.directional_verdict(f"Your {name}", student[name], pairs)
            item = items[name]
            if not verdicts[name]:
                item.result.feedback += "\n" + verdict.message
            elif not verdict.ok:  # right by the reference, wrong by the numbers: the instructor's
                item.result.instructor += verdict.message + "\n"


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


@dataclass
class LayerProtocol:
    """The contract a layer honours beyond one forward and one backward on fresh floats,
    graded as one item of the layer's part ("<part>: the layer protocol").

    Each check compares what the layer gives in some situation with what the *same* layer
    gives on a fresh object with the same inputs, in the same round trip - so a wrong
    formula is not charged here a second time (the cases judge formulas), only behaviour
    that depends on how the layer is used:

    - two objects used in turn (A.forward, B.forward, A.backward, B.backward), B with
      another batch: nothing is shared between objects (class attributes, globals);
    - forward twice (the second time with another batch), then backward: backward uses
      what the last forward stored;
    - integer inputs (every case, scalars too): the same as the same numbers as floats;
      float32 inputs: the same as float64, within float32's tolerance;
    - the constructor's arrays changed in place (as training changes ``params``): the same
      as a layer built with the new arrays;
    - the inputs named ``unchanged`` are left as they were (the caller still uses them: an
      earlier layer may hold them, or they are the training data).

    Quantities that every call changes (``Quantity.state``: running statistics) are not
    compared after forward was called twice.
    """

    exercise: LayerExercise

    @property
    def part(self) -> str:
        return self.exercise.part

    def items_of(self, scorer: Scorer) -> list[Item]:
        return [scorer.plan(self.part, f"{self.part}: the layer protocol", self.exercise.protocol_points)]

    def grade(self, worker: Worker, scorer: Scorer, answers: Answers) -> None:
        (item,) = self.items_of(scorer)
        ex = self.exercise
        found, program, spans = answers.memo(("protocol", self.part), lambda: self.program(answers))
        try:
            outcome = Outcome.of(worker, program)
        except WorkerError as exc:
            item.error(f"{ex.cls}: {exc}", status=exc.status)
            return
        if outcome.error is not None:  # only a constructor can raise here: the calls are tolerated
            item.error(format_error(f"the constructor of {ex.cls}", outcome.error))
            return
        failures, compared = [], 0
        for check, (used, fresh) in zip(found, spans, strict=True):
            why, made = self.judge(check, outcome.values[slice(*used)], outcome.values[slice(*fresh)])
            compared += made
            if why:
                failures.append((check, why))
        if not failures and not compared:
            item.error(f"{NOT_CHECKED}{ex.cls}.backward gives no gradient on a fresh object either "
                       "(see the other checks of this part).")
            return
        if not failures:
            item.passed(f"{ex.cls} honours the layer protocol: {'; '.join(c.title for c in found)}.")
            return
        mistake = {**PROTOCOL, INPUT_CHANGED.id: INPUT_CHANGED}[failures[0][0].mistake]
        said = "\n".join(f"{check.title}: {why}" for check, why in failures)
        item.failed(f"{said}\n{mistake.text()}", mistake.id)

    def program(self, answers: Answers) -> tuple[list[_Check], Program, list[tuple[tuple[int, int], ...]]]:
        """The checks, their one program, and where each check's values come back."""
        found = self.checks(answers)
        program = Program()
        return found, program, [(self.gather(program, check.used), self.gather(program, check.fresh))
                                for check in found]

    # -- the checks: how the layer is used, and the fresh objects it must agree with --------
    def checks(self, answers: Answers) -> list[_Check]:
        ex = self.exercise
        rng = case_rng(answers.seed, ex.part, "protocol")
        cases = [answers.get(ex, case)[0] for case in ex.cases if ex.backward_graded(case)]
        arrays = next((v for v in cases if isinstance(v[ex.forward[0]], np.ndarray)), None)
        found: list[_Check] = []
        if arrays is not None:
            other = _another_batch(arrays, ex, rng)
            found.append(_Check("two objects used in turn (the second with another batch)",
                                "state-shared-between-objects",
                                [_Use((arrays, other), interleave=True)], [_Use((arrays,)), _Use((other,))]))
            found.append(_Check("forward twice (another batch the second time), then backward",
                                "state-from-an-earlier-call", [_Use((arrays, other))], [_Use((other,))],
                                stateless=True))
            low = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
                   for k, v in arrays.items()}
            upcast = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype == np.float32 else v)
                      for k, v in low.items()}
            found.append(_Check("float32 inputs", "low-precision-inputs", [_Use((low,))], [_Use((upcast,))],
                                precision="float32"))  # float32 round-off, whatever dtype comes back
            moved = _moved_init(arrays, ex, rng)
            if moved is not None:
                found.append(_Check("the constructor's arrays changed in place", "parameters-copied",
                                    [_Use((arrays,), moved=moved)], [_Use((moved,))]))
            if ex.unchanged:
                found.append(_Check(f"{', '.join(ex.unchanged)} left as given", INPUT_CHANGED.id,
                                    [_Use((arrays,), watch=tuple(ex.unchanged))], []))
        for values in cases:
            ints = _integers(values, ex)
            if ints is not None:
                scalar = not isinstance(values[ex.forward[0]], np.ndarray)
                floats = {k: (float(v) if isinstance(v, int) and k in ex.forward else
                              v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype.kind in "iu"
                              and k in ex.forward else v) for k, v in ints.items()}
                found.append(_Check("integer inputs" + (" (scalars)" if scalar else ""),
                                    "integer-inputs-truncated", [_Use((ints,))], [_Use((floats,))]))
        return found

    # -- gather: every check in one program, every call tolerated ---------------------------
    def gather(self, program: Program, uses: list[_Use]) -> tuple[int, int]:
        """Add the calls; return the slice of the kept values they fill: per object judged,
        its forward output, what backward returned, and the gradient attributes (then the
        watched inputs, as the calls left them)."""
        ex = self.exercise
        start = len(program.kept)
        sent: dict = {}  # inputs sent once and passed as they are (watched), not as copies

        def forward(obj, values):
            if ex.seed_key:
                program.seed(ex.seed(values))
            args = {**copy(values), **sent}
            return program.call(obj, "forward", *ex.args(ex.forward, args), tolerate=True)

        def backward(obj, values):
            args = {**copy(values), **sent}
            back = program.call(obj, "backward", *ex.args(ex.backward, args), tolerate=True)
            return [back, *(program.get(obj, key, optional=True) for _, key in ex.attrs)]

        for use in uses:
            first = use.inputs[0]
            given = {n: program.value(first[n]) for n in ex.init}
            sent = {n: given[n] if n in given else program.value(first[n]) for n in use.watch}
            objects = [program.new(ex.module, ex.cls, *(given[n] for n in ex.init))]
            if use.moved is not None:
                for n in ex.init:
                    if isinstance(use.moved[n], np.ndarray):
                        program.assign(given[n], (), use.moved[n])
            if use.interleave:
                objects.append(program.new(ex.module, ex.cls, *ex.args(ex.init, copy(use.inputs[1]))))
                outs = [forward(obj, values) for obj, values in zip(objects, use.inputs, strict=True)]
                for obj, values, out in zip(objects, use.inputs, outs, strict=True):
                    program.keep(out, *backward(obj, values))
                continue
            for values in use.inputs[:-1]:
                forward(objects[0], values)
            program.keep(forward(objects[0], use.inputs[-1]), *backward(objects[0], use.inputs[-1]),
                         *sent.values())
        return start, len(program.kept)

    # -- judge (pure) -----------------------------------------------------------------------
    def judge(self, check: _Check, used: list, fresh: list) -> tuple[str | None, int]:
        """Why the layer behaved differently when used so (the first difference), or None;
        and how many gradients could be compared. Where the fresh object itself raised or
        returned no numbers, there is nothing to compare: the cases report that."""
        ex = self.exercise
        width = 2 + len(ex.attrs)
        names = ["forward", "__back__", *(q for q, _ in ex.attrs)]
        compared = 0
        for use in check.used[:1]:  # a watching use is a check's only one
            for name, after in zip(use.watch, used[width:width + len(use.watch)], strict=True):
                before = use.inputs[0][name]
                if not (isinstance(after, np.ndarray) and after.shape == before.shape
                        and np.array_equal(after, before, equal_nan=True)):
                    return f"{ex.cls} changed the array {name} it was given, in place", compared
        for index in range(len(fresh) // width):
            mine = dict(zip(names, used[index * width:(index + 1) * width], strict=False))
            base = dict(zip(names, fresh[index * width:(index + 1) * width], strict=False))
            if isinstance(base.get("forward"), Raised):  # what it left behind is no answer
                continue
            for name in ["forward", *ex.quantities]:
                if check.stateless and name != "forward" and ex.quantities[name].state:
                    continue
                value, reference = (mine.get("forward"), base.get("forward")) if name == "forward" else \
                    (ex.read(name, ex.quantities[name], mine), ex.read(name, ex.quantities[name], base))
                if isinstance(reference, Raised | Malformed) or not _numbers(reference):
                    continue
                compared += name != "forward" and not ex.quantities[name].state  # a gradient
                if isinstance(value, Raised):
                    return format_error(f"{ex.cls}.{'forward' if name == 'forward' else 'backward'}",
                                        clean_error(value.error)), compared
                if isinstance(value, Malformed):
                    return value.message, compared
                verdict = checks.compare(f"{ex.cls}: {name}", value, np.asarray(reference, dtype=np.float64),
                                         precision=check.precision)
                if not verdict.ok:
                    return (verdict.message + " (a fresh object given the same inputs gives the expected "
                            "value)"), compared
        return None, compared


@dataclass
class _Use:
    """One object (two when ``interleave``): forward on each of ``inputs`` in turn (or one
    each), then backward on the last; ``moved``: its constructor's arrays changed in place first."""

    inputs: tuple
    interleave: bool = False
    moved: dict | None = None
    watch: tuple[str, ...] = ()  # inputs passed as they are (not copies) and read back afterwards


@dataclass
class _Check:
    title: str
    mistake: str              # the PROTOCOL misconception a failure names
    used: list[_Use]          # the layer used so...
    fresh: list[_Use]         # ...must agree with fresh objects on the same inputs
    stateless: bool = False   # more calls than the fresh objects made: state quantities differ
    precision: str | None = None  # what the used object computed in, whatever dtype it returns


def _numbers(value) -> bool:
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iuf" and bool(np.all(np.isfinite(value)))
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _another_batch(values: Values, ex: LayerExercise, rng: np.random.Generator) -> dict | None:
    """The same inputs with another batch size: rows drawn again, in another order."""
    first = values[ex.forward[0]]
    n = first.shape[0]
    size = n + int(rng.integers(1, 3))
    rows = rng.integers(0, n, size)
    return {k: (v[rows] if k in (*ex.forward, *ex.backward) and isinstance(v, np.ndarray) and v.ndim
                and v.shape[0] == n else v) for k, v in values.items()}


def _moved_init(values: Values, ex: LayerExercise, rng: np.random.Generator) -> dict | None:
    """The constructor's arrays that training changes moved to other values (None when it takes none)."""
    moved = {n: values[n] + rng.standard_normal(values[n].shape) for n in (ex.init if ex.trained is None
                                                                             else ex.trained)
             if isinstance(values[n], np.ndarray) and values[n].dtype.kind == "f"}
    return {**values, **moved} if moved else None


def _integers(values: Values, ex: LayerExercise) -> dict | None:
    """The forward inputs that may be integers (``integer_inputs``), as integers (scalars
    rounded, arrays of 3x rounded); None when none of them is a float."""
    out = dict(values)
    changed = False
    for name in ex.forward if ex.integer_inputs is None else ex.integer_inputs:
        v = values[name]
        if isinstance(v, float):
            out[name], changed = int(round(v)), True
        elif isinstance(v, np.ndarray) and v.dtype.kind == "f" and not _one_hot(v):
            out[name], changed = np.rint(3 * v).astype(np.int64), True
    return out if changed else None


def _one_hot(v: np.ndarray) -> bool:
    return v.ndim == 2 and bool(np.all((v == 0) | (v == 1))) and bool(np.all(v.sum(axis=1) == 1))
