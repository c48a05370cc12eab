"""What a grading run grades with, handed to every stage and job process alike."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from grader.assignment import Assignment
from grader.course import Course, Settings


@dataclass(frozen=True)
class Grading:
    """An assignment, the course's settings, and what the sandbox must never show."""

    assignment: Assignment
    settings: Settings
    secrets: tuple[Path, ...] = ()
    select: str | None = None   # pytest's -k over the hidden tests

    @classmethod
    def of(cls, course: Course, assignment: str | None = None, *, sandbox: str | None = None,
           select: str | None = None, handins: Path | None = None) -> Grading:
        """``handins``: recognize the assignment from them when the course has several and
        none is named."""
        settings = course.settings if sandbox is None else dataclasses.replace(course.settings, sandbox=sandbox)
        return cls(course.assignment(assignment, handins), settings, course.secrets(), select)

    def prestart(self, uid: int) -> None:
        """Start this grading's sandbox for ``uid`` now, without waiting: it imports numpy
        inside while this process imports and collects the rest (~0.2 s of every start)."""
        from grader.worker.zygote import zygote_for

        zygote_for(self.settings.limits, self.settings.sandbox, uid, self.secrets).prestart()

    def session(self):
        """This process's pytest session of the hidden tests (collected on first use)."""
        from grader.hidden.session import session_for

        return session_for(self.assignment, self.settings, self.secrets, self.select)

    def grade(self, sub, staging: Path, uid: int):
        """One student's result (see ``grader.hidden.session``)."""
        return self.session().grade(sub, staging, uid)
