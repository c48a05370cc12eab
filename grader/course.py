"""A course's configuration: the seed that makes inputs reproducible, and the limits.

Read from a TOML file (``--config``); everything has a default that suits this
assignment. The seed makes grades reproducible and, kept private, unpredictable.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from grader import paths
from grader.sandbox import Limits

DEFAULT_SEED = 20241122


@dataclass(frozen=True)
class Course:
    seed: int = DEFAULT_SEED
    solutions: Path = paths.SOLUTIONS
    hidden_tests: Path = Path(__file__).resolve().parent / "hidden_tests"
    limits: Limits = field(default_factory=Limits)
    sandbox: str = "auto"  # auto | required | off


def load(path: Path | None) -> Course:
    """The course in ``path`` (TOML), or the defaults; unknown keys are an error."""
    if path is None:
        return Course()
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    limits = data.pop("limits", {})
    known = {f.name for f in fields(Limits)}
    unknown = set(limits) - known
    if unknown:
        raise ValueError(f"{path}: unknown [limits] keys {sorted(unknown)}; known: {sorted(known)}")
    allowed = {"seed", "solutions", "hidden_tests", "sandbox"}
    if set(data) - allowed:
        raise ValueError(f"{path}: unknown keys {sorted(set(data) - allowed)}; known: {sorted(allowed)}")
    base = Path(path).resolve().parent
    for key in ("solutions", "hidden_tests"):
        if key in data:
            data[key] = (base / data[key]).resolve()
    return Course(limits=Limits(**limits), **data)
