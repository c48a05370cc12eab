"""Known mistakes recognised from an exception, shared by every exercise.

Mistakes recognised from *values* (a wrong formula) are declared with their
exercise, in ``grader.exercises``; these are the ones that show up as errors.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    id: str
    title: str
    hint: str

    def text(self) -> str:
        return f"Known mistake: {self.title}. {self.hint}"


GENERIC: list[tuple[Mistake, callable]] = [
    (Mistake("log-not-called", "np.log multiplied instead of called",
             "`np.log*(y + 1e-7)` multiplies the function object np.log; call it: `np.log(y + 1e-7)`."),
     lambda e: e["type"] == "TypeError" and "ufunc" in e["message"] and "*" in e["message"]),
    (Mistake("undefined-attribute", "an attribute that was never set",
             "The method reads `self.<name>` but nothing stored it; check which attributes "
             "forward() actually sets (e.g. SoftmaxWithLoss stores self.y and self.t, not self.x)."),
     lambda e: e["type"] == "AttributeError" and "object has no attribute" in e["message"]),
    (Mistake("undefined-name", "a name that is not defined",
             "A variable or module name is misspelt or never assigned (e.g. `size.t.shape` "
             "instead of `self.t.shape`)."),
     lambda e: e["type"] in ("NameError", "UnboundLocalError")),
    (Mistake("syntax-error", "a syntax error",
             "Python cannot read this code; the line number below shows where. A common one: "
             "a missing `=` as in `out 1 / (1 + np.exp(-x))`."),
     lambda e: e["type"] in ("SyntaxError", "IndentationError", "TabError")),
]


def from_error(error: dict) -> Mistake | None:
    """The generic mistake an exception reveals, if any."""
    for mistake, matches in GENERIC:
        if matches(error):
            return mistake
    return None


def format_error(where: str, error: dict) -> str:
    """Student-facing text for an exception: type, message, and their own lines only."""
    lines = [f"{where} raised {error['type']}: {error['message']}".rstrip(": ")]
    for frame in error.get("frames", []):
        lines.append(f"  {frame['file']}, line {frame['line']}, in {frame['function']}: {frame['code']}")
    return "\n".join(lines)


def shapes_in(message: str) -> list[tuple[int, ...]]:
    """Shapes quoted in a numpy error message, e.g. 'shapes (3,4) and (6,4) not aligned'."""
    found = re.findall(r"\((\d+(?:\s*,\s*\d+)*)\s*,?\)", message)
    return [tuple(int(n) for n in s.split(",")) for s in found]
