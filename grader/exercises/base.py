"""What every kind of exercise shares: cases, answers, planning, judging, diagnosing.

An assignment declares its exercises with the kinds in this package (``layer``,
``network``, ``function``): the class or function graded, the quantities checked with
their points, the input cases and the known misconceptions. Grading a case is two
steps: *gather* (one worker round trip that runs the student's code on the case's
inputs) and *judge* (pure: the values that came back, the reference's answers and the
case's inputs in; settled items out), so the judging is tested without any sandbox.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from grader.judging import checks, misconceptions
from grader.judging.misconceptions import Misconception, Values
from grader.judging.scoring import Item, Scorer
from grader.worker.client import StudentError, Worker, WorkerError

__all__ = ["Answers", "Case", "Declared", "Judging", "Misconception", "Outcome", "Quantity", "Values",
           "case_rng", "copy", "same"]


@dataclass(frozen=True)
class Case:
    """One input set: ``make(rng)`` returns the named inputs (float64, fresh each call).

    ``grades`` names the quantities this case grades when not all of them apply (a layer's
    test mode has a forward pass and no backward one)."""

    name: str
    make: Callable[[np.random.Generator], Values]
    grades: tuple[str, ...] | None = None

    def points(self, points: dict[str, float]) -> dict[str, float]:
        """The exercise's points per quantity, kept to what this case grades."""
        return {q: p for q, p in points.items() if self.grades is None or q in self.grades}


@dataclass(frozen=True)
class Quantity:
    """A checked output: where to read it and which input it is the gradient of."""

    source: tuple[str, object]   # ("return", None | index) | ("attr", name) | ("forward", None)
    wrt: str | None = None       # the named input it differentiates (None: not a gradient)
    state: bool = False          # kept across calls (running statistics): every call changes it


@dataclass
class Outcome:
    """What one round trip brought back: the kept values, or the student's exception."""

    values: list
    error: dict | None = None   # the exception the student's code raised (cleaned)
    step: int = -1              # at which step of the program it was raised
    trace: tuple[str, ...] = ()  # receivers of backward calls, in order
    counts: dict = field(default_factory=dict)  # step -> forward/backward calls made (counted steps)

    @classmethod
    def of(cls, worker: Worker, program) -> Outcome:
        try:
            values, trace = worker.run(program)
        except StudentError as exc:
            return cls(list(exc.partial), exc.error, exc.step, tuple(exc.trace), dict(worker.counts))
        return cls(list(values), trace=tuple(trace), counts=dict(worker.counts))


def case_rng(seed: int, part: str, case: str) -> np.random.Generator:
    """Inputs depend only on the course seed, the part and the case: same on every machine."""
    return np.random.default_rng([seed, zlib.crc32(part.encode()), zlib.crc32(case.encode())])


def copy(values: Values) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in values.items()}


class Answers:
    """Each case's inputs and the reference's answers: the same for every student of a
    class (same seed), so made once per grading session (a session-scoped fixture)."""

    def __init__(self, reference: dict, seed: int):
        self.reference, self.seed = reference, seed
        self._made: dict[tuple[str, str], tuple[Values, dict]] = {}
        self._memo: dict[tuple, object] = {}

    def get(self, exercise: Judging, case: Case) -> tuple[Values, dict]:
        """(inputs, expected answers); callers never mutate them."""
        key = (exercise.part, case.name)
        if key not in self._made:
            values = case.make(case_rng(self.seed, exercise.part, case.name))
            self._made[key] = (values, exercise.expected(self.reference, values, case))
        return self._made[key]

    def memo(self, key: tuple, make: Callable[[], object]):
        """``make()``, made once per session: what is sent to every student alike (the
        programs built from the cases; a program is never changed once built)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


class Judging:
    """Verdicts, points and diagnoses shared by every kind of exercise.

    A kind provides ``part``, ``points``, ``cases``, ``misconceptions``, ``expected``
    (the reference's answers for a case) and ``grade_case``.
    """

    part: str
    points: dict[str, float]
    cases: Sequence[Case]
    misconceptions: Sequence[Misconception]
    file: str

    @property
    def max_points(self) -> float:
        return sum(sum(case.points(self.points).values()) for case in self.cases)

    @property
    def target(self) -> str:
        """The class or function students write for this exercise."""
        raise NotImplementedError

    def judge(self, name, value, expected, values, items, label, either=None) -> bool:
        item = items.get(name)
        if item is None or item.settled:
            return False
        if isinstance(value, Malformed):
            item.failed(value.message)
            return False
        verdict = checks.compare(label, value, expected, either=either, batch=batch_of(values))
        if verdict.ok:
            item.passed(verdict.message)
            return True
        mistake = self.diagnose_value(name, value, values)
        item.failed(verdict.message + ("\n" + mistake.text() if mistake else ""),
                    mistake.id if mistake else None)
        return False

    def diagnose_value(self, name: str, value, values: Values) -> Misconception | None:
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

    def diagnose_error(self, error: dict, values: Values) -> Misconception | None:
        return misconceptions.from_error(error, values, self.misconceptions)

    def from_trace(self, trace: Sequence[str]) -> Misconception | None:
        for m in self.misconceptions:
            if m.trace and m.trace(list(trace)):
                return m
        return None

    def failed_layers(self, scorer: Scorer | None) -> list[str]:
        """The parts this exercise ``depends`` on that already lost points for this student."""
        depends = getattr(self, "depends", ())
        return sorted({i.result.part for i in (scorer.items if scorer else []) if i.settled
                       and i.result.status != "passed" and i.result.part in depends})

    def items_of(self, scorer: Scorer) -> list[Item]:
        """Every item this exercise grades, planned (the plugin plans before a test runs)."""
        return [item for _, items in self.plan(scorer) for item in items.values()]

    def plan(self, scorer: Scorer) -> list[tuple[Case, dict[str, Item]]]:
        """Every item of every case, planned before any student code runs."""
        return [(case, {q: scorer.plan(self.part, f"{self.part}: {q} ({case.name})", p)
                        for q, p in case.points(self.points).items()}) for case in self.cases]

    def grade(self, worker: Worker, scorer: Scorer, answers: Answers) -> None:
        """Grade every case; a hang or crash stops this part only."""
        plans = self.plan(scorer)
        gathered = self.gather_ahead(worker, plans, answers, scorer)
        try:
            for case, items in plans:
                try:
                    self.grade_case(worker, case, items, answers, scorer, gathered.get(case.name))
                except WorkerError as exc:
                    self.recover(worker, plans, answers)
                    message = f"{self.part}: {exc}. The remaining checks of {self.part} were not run."
                    for _, later in plans:
                        for item in later.values():
                            item.error(message, status=exc.status)
                    return
        finally:  # what a grader bug left unasked (never when every case ran)
            worker.drop_prefetched()

    def gather_ahead(self, worker: Worker, plans, answers: Answers, scorer: Scorer) -> dict[str, tuple]:
        """case name -> ``gather``'s program (and what judging it needs), made once per session;
        every case's sent to the worker in one round trip (``Worker.prefetch``) - unless a
        program may go between two cases that depends on an answer (the student's own parts
        replayed when a part this one ``depends`` on failed): then one round trip per case."""
        gathered = {case.name: answers.memo(("gather", self.part, case.name),
                                            lambda case=case: self.gather(case, *answers.get(self, case)))
                    for case, _ in plans}
        if not (getattr(self, "walk", None) and self.failed_layers(scorer)):
            worker.prefetch([found[0] for found in gathered.values()])
        return gathered

    def gather(self, case: Case, values: Values, expected: dict | None = None) -> tuple:
        """The program of one case's round trip, then whatever judging it needs besides
        (``expected``: the reference's answers, for a kind whose program needs them)."""
        raise NotImplementedError

    def recover(self, worker: Worker, plans, answers: Answers) -> None:
        """After a hang or crash, give the forward passes that still work their credit."""
        grade_forward = getattr(self, "grade_forward", None)
        if grade_forward is None:
            return
        try:
            worker.start()
            for case, items in plans:
                if "forward" in items and not items["forward"].settled:
                    grade_forward(worker, case, items, answers)
        except WorkerError:
            return

    def expected(self, reference: dict, values: Values, case: Case | None = None) -> dict:
        """The reference's answers for one case's inputs."""
        raise NotImplementedError

    def grade_case(self, worker: Worker, case: Case, items: dict[str, Item], answers: Answers,
                   scorer: Scorer, gathered: tuple | None = None) -> None:
        """Gather one case's values (one round trip: ``gathered`` if given) and judge them;
        ``scorer`` holds what the student's earlier parts scored."""
        raise NotImplementedError


@dataclass
class Declared(Judging):
    """What every kind declares beside its content: the module it grades (its file follows),
    and a short label for narrow tables."""

    short: str = field(default="", kw_only=True)
    file: str = field(default="", init=False)

    def __post_init__(self):
        self.file = self.module.replace(".", "/") + ".py"

    @property
    def target(self) -> str:
        return self.cls


class Malformed:
    """A returned value that cannot be judged as it is (e.g. a tuple of the wrong length)."""

    def __init__(self, message: str):
        self.message = message


def same(got, right) -> bool:
    """``got`` equals ``right`` exactly enough (both the student's numbers: a value and the
    same value computed another way from the student's own parts)."""
    try:
        return checks.compare("", got, np.asarray(right, dtype=np.float64)).ok
    except (TypeError, ValueError):
        return False


def batch_of(values: Values) -> int | None:
    for key in ("x", "dout"):
        value = values.get(key)
        if isinstance(value, np.ndarray) and value.ndim >= 2:
            return value.shape[0]
    return None
