"""Failed checks grouped by root cause, so a report says "fix this" once, not 37 times.

One mistake usually fails many checks: a class missing under its name errors every check
of its part; a forward pass that raises breaks the network built on it; a wrong formula
fails the same quantity on every input. Two failed checks share a cause when

- they name the same known mistake (misconception) in the same part;
- they were stopped by the same exception (``X raised E: message`` with the same
  ``E: message``), in any part: the network's checks fail on its layer's error;
- they report the same thing about the same part once numbers are set aside
  (``dx: shape (3, 5), expected (4, 3)`` and ``dx: shape (12, 6), expected (4, 3, 2, 2)``);
- one was not checked because of the others (its message starts with ``NOT_CHECKED``).

Causes are ordered by the points they cost, so the first is what to fix first. Pure:
results in, causes out.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from grader.results import NOT_CHECKED, TestResult, points

_RAISED = re.compile(r"\braised ([A-Za-z_][\w.]*(?:: .+)?)$")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TUPLE = re.compile(r"\(#(?:, ?#)*,?\)")


@dataclass
class Cause:
    """Checks that fail for one reason, and what that reason is."""

    tests: list[int]            # indices into the result's tests, in the result's order
    parts: list[str]            # the parts they belong to, first seen first
    reason: str                 # the first line of the first check's message
    misconception: str | None   # the known mistake, when the first check names one
    lost: float                 # points these checks cost
    whole_part: bool            # every check of its (single) part is here
    part_size: int              # checks in that part, failed or not

    def title(self, names: Sequence[str]) -> str:
        """``<Part>: all 7 checks fail for one reason`` / ``<Part>: dx (2-D input)``."""
        if len(self.tests) == 1:
            return names[self.tests[0]]
        where = ", ".join(self.parts)
        if len(self.parts) > 1:
            return f"{where}: {len(self.tests)} checks fail for one reason"
        if self.whole_part:
            return f"{where}: all {len(self.tests)} checks fail for one reason"
        return f"{where}: {len(self.tests)} of {self.part_size} checks fail for one reason"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _keys(t: TestResult) -> list[tuple]:
    line = _first_line(t.feedback)
    keys: list[tuple] = []
    if t.misconception:
        keys.append(("misconception", t.part, t.misconception))
    if raised := _RAISED.search(line):
        keys.append(("raised", raised[1]))
    if line and not line.startswith(NOT_CHECKED):
        keys.append(("says", t.part, _TUPLE.sub("#", _NUMBER.sub("#", line))))
    return keys


def root_causes(tests: Sequence[TestResult]) -> list[Cause]:
    """The failed checks of ``tests`` (one student's), grouped; the costliest cause first."""
    failed = [i for i, t in enumerate(tests) if t.status != "passed"]
    parent = {i: i for i in failed}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the earliest check names the cause

    owner: dict[tuple, int] = {}
    for i in failed:
        for key in _keys(tests[i]):
            join(owner.setdefault(key, i), i)
    for i in failed:  # a check kept from judging goes with its part's first failure
        if tests[i].feedback.startswith(NOT_CHECKED):
            first = next((j for j in failed if j != i and tests[j].part == tests[i].part
                          and not tests[j].feedback.startswith(NOT_CHECKED)), None)
            if first is not None:
                join(first, i)

    groups: dict[int, list[int]] = {}
    for i in failed:
        groups.setdefault(find(i), []).append(i)
    size: Mapping[str, int] = _part_sizes(tests)
    causes = []
    for members in groups.values():
        lead = next((tests[i] for i in members if not tests[i].feedback.startswith(NOT_CHECKED)),
                    tests[members[0]])
        parts = list(dict.fromkeys(tests[i].part for i in members))
        causes.append(Cause(
            tests=members, parts=parts,
            reason=_first_line(lead.feedback),
            misconception=lead.misconception,
            lost=points(sum(tests[i].max_score - tests[i].score for i in members)),
            whole_part=len(parts) == 1 and len(members) == size[parts[0]],
            part_size=size[parts[0]],
        ))
    causes.sort(key=lambda c: (-c.lost, c.tests[0]))
    return causes


def _part_sizes(tests: Sequence[TestResult]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for t in tests:
        sizes[t.part] = sizes.get(t.part, 0) + 1
    return sizes
