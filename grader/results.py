"""What grading produces: one result per graded check, gathered per student.

These are plain data, computed only in the grader's process; ``reports`` turns them
into files and ``scoring`` into totals. ``to_json`` is the documented report.json
contract, so tools can script against it.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["passed", "failed", "error", "timeout"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "error", "timeout")

NOT_CHECKED = "Not checked: "
"""How a check's message starts when another failure of its part kept it from judging
(reports group it with that failure)."""


def points(value: float) -> float:
    """Round a score so sums of shares are identical on every machine."""
    return round(float(value) + 0.0, 4)


@dataclass(slots=True)
class TestResult:
    """One graded check, e.g. ``<part>: dW (4-D input)``."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    part: str
    score: float
    max_score: float
    status: Status
    feedback: str = ""                # for the student
    misconception: str | None = None
    instructor: str = ""              # for the instructor only: never in a student's file

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "part": self.part,
            "score": points(self.score),
            "max_score": points(self.max_score),
            "status": self.status,
            "feedback": self.feedback,
            "misconception": self.misconception,
            "instructor": self.instructor,
        }


@dataclass
class StudentResult:
    """Everything graded for one student, plus what the run itself had to say."""

    student: str
    tests: list[TestResult] = field(default_factory=list)
    isolation: str = "isolation: full"
    notes: list[str] = field(default_factory=list)  # submission-level messages
    output: str = ""  # what the submission printed, capped
    grader_errors: list[str] = field(default_factory=list)  # tracebacks for the instructor only

    @property
    def score(self) -> float:
        return points(sum(t.score for t in self.tests))

    @property
    def max_score(self) -> float:
        return points(sum(t.max_score for t in self.tests))

    def parts(self) -> dict[str, dict[str, float]]:
        """Score and maximum per part, in the order the parts were graded."""
        totals: dict[str, dict[str, float]] = {}
        for t in self.tests:
            part = totals.setdefault(t.part, {"score": 0.0, "max_score": 0.0})
            part["score"] += t.score
            part["max_score"] += t.max_score
        return {name: {k: points(v) for k, v in p.items()} for name, p in totals.items()}

    def misconceptions(self) -> list[str]:
        """Known mistakes diagnosed anywhere in this submission, first seen first."""
        return list(dict.fromkeys(t.misconception for t in self.tests if t.misconception))

    def to_json(self) -> dict:
        return {
            "student": self.student,
            "score": self.score,
            "max_score": self.max_score,
            "parts": self.parts(),
            "tests": [t.to_json() for t in self.tests],
            "isolation": self.isolation,
            "notes": list(self.notes),
            "output": self.output,
        }

    def slim(self) -> StudentResult:
        """Only what class-level files need (scores, statuses, mistakes), whatever each
        student printed. Equal checks are one shared object (most students pass most
        checks alike), so a student costs about a list of pointers: read, never modify."""
        return StudentResult(self.student, [_shared(t) for t in self.tests],
                             isolation=sys.intern(self.isolation), grader_errors=list(self.grader_errors))

    @classmethod
    def from_json(cls, data: dict) -> StudentResult:
        """Read back a report.json (used by ``--resume``)."""
        tests = [TestResult(**t) for t in data["tests"]]
        return cls(student=data["student"], tests=tests, isolation=data.get("isolation", ""),
                   notes=list(data.get("notes", [])), output=data.get("output", ""))


_SHARED: dict[tuple, TestResult] = {}
_SHARED_MAX = 1 << 16  # distinct (check, score, status, mistake) outcomes kept for sharing


def _shared(t: TestResult) -> TestResult:
    """The one feedback-free copy of this outcome of this check."""
    key = (t.name, t.part, t.score, t.max_score, t.status, t.misconception)
    got = _SHARED.get(key)
    if got is None:
        got = TestResult(sys.intern(t.name), sys.intern(t.part), t.score, t.max_score, t.status,
                         "", t.misconception and sys.intern(t.misconception))
        if len(_SHARED) < _SHARED_MAX:
            _SHARED[key] = got
    return got
