"""Proof before grading: the reference solution, graded end to end, must score full marks.

``bwrap ... true`` succeeding proves nothing about Python, numpy or a hand-in being
reachable inside the sandbox; a real worker grading a known hand-in does. The canary
grades the assignment's own reference files as a student's, through the same sandbox,
uid, limits and hidden tests as the class. If it does not score full marks, nothing is
graded: a machine that cannot grade must not hand out a class of zeros. It also proves
the hidden tests themselves run (a broken one fails the canary, once, before grading).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from grader import host, sandbox
from grader.grading import Grading
from grader.intake import Submission

STUDENT = "reference-canary"


@dataclass
class Canary:
    ok: bool
    isolation: str
    seconds: float
    problems: list[str] = field(default_factory=list)  # what broke, for the instructor
    hints: list[str] = field(default_factory=list)     # how to fix it
    confinement: list[str] = field(default_factory=list)  # seccomp and memory cgroup, as the sandbox had them

    @property
    def full(self) -> bool:
        return self.ok and self.isolation == "isolation: full"

    def report(self) -> str:
        lines = [f"canary: the reference solution scored full marks in {self.seconds:.2f} s ({self.isolation})"
                 if self.ok else
                 f"canary FAILED: the reference solution did not score full marks ({self.isolation})"]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  fix: {h}" for h in self.hints]
        return "\n".join(lines)


def run(grading: Grading, uid: int | None = None) -> Canary:
    """Grade the reference as a student; full marks and (if required) full isolation, or why not.

    Hidden tests that cannot even be collected raise ``HiddenTestsError`` (a course's
    mistake, not the machine's)."""
    from grader.hidden.session import WorkerUnavailable

    uid = host.process_uid() if uid is None else uid
    started = time.perf_counter()
    sub = Submission(STUDENT, grading.assignment.folder)
    grading.prestart(uid)  # the sandbox warms up while the hidden tests are collected
    try:
        with host.staging() as staging:
            result = grading.grade(sub, staging, uid)
    except (WorkerUnavailable, sandbox.SandboxUnavailable, OSError, ValueError) as exc:
        return Canary(False, "isolation: unknown", time.perf_counter() - started, [str(exc)],
                      sandbox.diagnose(uid) or ["run `grader doctor` for the details"])
    seconds = time.perf_counter() - started
    from grader.worker.zygote import zygote_for

    zygote = zygote_for(grading.settings.limits, grading.settings.sandbox, uid, grading.secrets)
    confinement = [zygote.seccomp, zygote.memory]
    problems = [f"{t.name}: {t.status}: {t.feedback.splitlines()[0] if t.feedback else ''}"
                for t in result.tests if t.status != "passed" and not result.grader_errors]
    problems += [f"hidden test failed: {bug}" for bug in result.grader_errors]
    if not result.tests:
        problems.append("the hidden tests grade nothing (no graded test and no exercise)")
    hints = []
    if problems and not result.grader_errors and all(t.status != "passed" for t in result.tests):
        hints += sandbox.diagnose(uid)
        problems += [n for n in result.notes if n.startswith("Importing")]
    if grading.settings.sandbox == "required" and result.isolation != "isolation: full":
        problems.append(f"--sandbox required, but the worker ran with {result.isolation}")
        hints.append("run `grader doctor` to see what full isolation needs here")
    return Canary(not problems, result.isolation, seconds, problems, hints, confinement)
