"""Every known mistake the grader can name, gathered from where each is declared.

Reports use it to show a mistake's title and hint next to its id, and the tests use
it to prove each one is diagnosed.
"""
from __future__ import annotations

from grader import diagnosis
from grader.exercises import ALL

# named by static reading of the files (see grader.runner._attribute)
STATIC = {
    "duplicate-class": ("a class defined twice under one name",
                        "Two classes share a name, so the second replaces the first "
                        "(e.g. an AddLayer written as `class MulLayer`)."),
    "missing-class": ("a missing class", "Keep every class of the stub file, with its exact name."),
}


def catalogue() -> dict[str, tuple[str, str]]:
    """id -> (title, hint), first declaration wins."""
    found: dict[str, tuple[str, str]] = {}
    for exercise in ALL:
        for m in exercise.misconceptions:
            found.setdefault(m.id, (m.title, m.hint))
    for mistake, _ in diagnosis.GENERIC:
        found.setdefault(mistake.id, (mistake.title, mistake.hint))
    for key, value in STATIC.items():
        found.setdefault(key, value)
    return found


def hints() -> dict[str, str]:
    """id -> one line for reports: the title and the hint."""
    return {key: f"{title}: {hint}" for key, (title, hint) in catalogue().items()}
