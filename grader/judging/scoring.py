"""Stage 4: turn verdicts into points, in the grader's process only.

Each graded item is planned with its points before any student code runs, so an
item that never gets to run (the worker hung or died) still appears in the report,
with 0 points and the reason.
"""
from __future__ import annotations

from grader.results import Status, TestResult


class Item:
    """One planned, graded quantity; settled exactly once."""

    def __init__(self, result: TestResult):
        self.result = result
        self.settled = False

    def _settle(self, status: Status, feedback: str, misconception: str | None, score: float):
        if self.settled:
            return
        self.result.status, self.result.feedback = status, feedback.strip()
        self.result.misconception, self.result.score = misconception, score
        self.settled = True

    def passed(self, feedback: str = "") -> None:
        self._settle("passed", feedback, None, self.result.max_score)

    def failed(self, feedback: str, misconception: str | None = None) -> None:
        self._settle("failed", feedback, misconception, 0.0)

    def error(self, feedback: str, status: Status = "error", misconception: str | None = None) -> None:
        self._settle(status, feedback, misconception, 0.0)


class Scorer:
    """Collects one student's items in the order they were planned.

    Planning the same (part, name) again returns the item already planned: a hidden test
    is planned before it runs (so its points count even if it crashes), and plans again
    when it runs.
    """

    def __init__(self):
        self._items: dict[tuple[str, str], Item] = {}

    @property
    def items(self) -> list[Item]:
        return list(self._items.values())

    def plan(self, part: str, name: str, points: float) -> Item:
        key = (part, name)
        if key not in self._items:
            self._items[key] = Item(TestResult(name=name, part=part, score=0.0, max_score=float(points),
                                               status="error", feedback="not run"))
        return self._items[key]

    def drop(self, items: list[Item]) -> None:
        """Take planned items out of the grade altogether (a test skipped at run time)."""
        for key in [k for k, v in self._items.items() if v in items]:
            del self._items[key]

    def unsettled(self) -> list[Item]:
        return [i for i in self._items.values() if not i.settled]

    def results(self) -> list[TestResult]:
        for item in self.unsettled():  # a check that forgot an item must not award it
            item.error("This check did not run (grader bug: please tell your instructor).")
        return [i.result for i in self._items.values()]
