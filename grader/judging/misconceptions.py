"""Known mistakes: one type for all of them, and the ones every assignment shares.

An exercise declares its own misconceptions (the wrong formula each computes, the
exception it raises, or the order of backward calls it makes) beside its cases; the
ones here are recognised from an exception or from static reading, whatever the
assignment. Pure: values in, a named mistake (or None) out.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

Values = Mapping[str, object]  # the named inputs of one case


@dataclass(frozen=True)
class Misconception:
    """A known wrong answer: what it computes, or how it fails, and a hint that teaches
    without giving the answer away."""

    id: str
    title: str
    hint: str
    wrong: Callable[[Values], dict[str, np.ndarray]] | None = None  # quantity -> the wrong value
    error: Callable[[dict, Values], bool] | None = None             # recognised from an exception
    trace: Callable[[list[str]], bool] | None = None                # from the order of backward calls

    def text(self) -> str:
        return f"Known mistake: {self.title}. {self.hint}"


GENERIC = [
    Misconception("log-not-called", "np.log multiplied instead of called",
                  "`np.log*(y + 1e-7)` multiplies the function object np.log; call it: `np.log(y + 1e-7)`.",
                  error=lambda e, v: e["type"] == "TypeError" and "ufunc" in e["message"] and "*" in e["message"]),
    Misconception("undefined-attribute", "an attribute that was never set",
                  "The method reads `self.<name>` but nothing stored it; check which attributes the "
                  "forward pass actually sets (e.g. a loss layer that stores self.y and self.t, not self.x).",
                  error=lambda e, v: e["type"] == "AttributeError" and "object has no attribute" in e["message"]),
    Misconception("undefined-name", "a name that is not defined",
                  "A variable or module name is misspelt or never assigned (e.g. `size.t.shape` "
                  "instead of `self.t.shape`).",
                  error=lambda e, v: e["type"] in ("NameError", "UnboundLocalError")),
    Misconception("syntax-error", "a syntax error",
                  "Python cannot read this code; the line number below shows where. A common one: "
                  "a missing `=` as in `out 1 / (1 + np.exp(-x))`.",
                  error=lambda e, v: e["type"] in ("SyntaxError", "IndentationError", "TabError")),
]

# what every layer and net must honour beyond one call on fresh floats (grader.exercises):
# recognised by the protocol checks, whatever the assignment
PROTOCOL = {m.id: m for m in [
    Misconception("state-shared-between-objects", "state shared between objects",
                  "Two objects of the class were used in turn and one saw the other's data: keep what "
                  "backward needs on the object itself (self.<name>), never in a class attribute or a "
                  "module-level variable."),
    Misconception("state-from-an-earlier-call", "state kept from an earlier call",
                  "After forward was called twice (the second time with another batch), backward used "
                  "what the first call left: store what backward needs on every forward call."),
    Misconception("integer-inputs-truncated", "results truncated for integer inputs",
                  "With integer inputs (as in the shopping example) a gradient came back rounded or of "
                  "the wrong type: do not convert with int() or astype(int); let numpy pick the type."),
    Misconception("low-precision-inputs", "float32 inputs not handled",
                  "With float32 inputs the layer gave a wrong value (not a rounding difference): check "
                  "which operations assume float64 arrays."),
    Misconception("parameters-copied", "parameters copied instead of shared",
                  "The arrays given to the constructor were changed in place (as training does), but the "
                  "layer kept computing with its own copy: store the arrays you are given, not copies."),
    Misconception("stale-params", "gradient not following net.params",
                  "Training changes net.params in place; the layers must compute with those same arrays "
                  "(a layer that copies its weights never learns). Check how the layers get W and b."),
    Misconception("gradient-without-forward", "gradient() without its own forward pass",
                  "gradient() was called on a freshly built net and used what a forward pass leaves "
                  "behind: run the forward pass (the loss) inside gradient() first."),
    Misconception("numerical-differentiation", "numerical differentiation instead of backpropagation",
                  "gradient() must run the forward pass once, then every layer's backward from the last "
                  "one; nudging the weights and re-running the loss is the slow check, not the method."),
]}

# named only for layers that declare inputs they must leave unchanged (the exercise carries it,
# so it is in the catalogue of exactly those assignments)
INPUT_CHANGED = Misconception(
    "input-changed-in-place", "an input changed in place",
    "The layer wrote into an array it was given (e.g. `x -= mean` or `x[...] = ...`); the caller still "
    "holds that array - an earlier layer may keep it for its own backward, or it is the training data. "
    "Compute into new arrays instead.")

# named by static reading of the files (see grader.hidden.session)
STATIC = [
    Misconception("duplicate-class", "a class defined twice under one name",
                  "Two classes share a name, so the second replaces the first (e.g. an add layer "
                  "written under the name of a multiply layer)."),
    Misconception("missing-class", "a missing class", "Keep every class of the stub file, with its exact name."),
]


def from_error(error: dict, values: Values | None = None,
               declared: Iterable[Misconception] = ()) -> Misconception | None:
    """The mistake an exception reveals: an exercise's own first, then the generic ones."""
    for mistake in [*declared, *GENERIC]:
        if mistake.error is not None and mistake.error(error, values or {}):
            return mistake
    return None


def catalogue(exercises: Iterable) -> dict[str, Misconception]:
    """Every mistake the grader can name for these exercises, by id (first declaration wins)."""
    found: dict[str, Misconception] = {}
    for m in [*(m for e in exercises for m in e.misconceptions), *GENERIC, *PROTOCOL.values(), *STATIC]:
        found.setdefault(m.id, m)
    return found


def hints(exercises: Iterable) -> dict[str, str]:
    """id -> one line for reports: the title and the hint."""
    return {key: f"{m.title}: {m.hint}" for key, m in catalogue(exercises).items()}


def format_error(where: str, error: dict) -> str:
    """Student-facing text for an exception: type, message, and their own lines only."""
    lines = [f"{where} raised {error['type']}: {error['message']}".rstrip(": ")]
    for frame in error.get("frames", []):
        lines.append(f"  {frame['file']}, line {frame['line']}, in {frame['function']}: {frame['code']}")
    return "\n".join(lines)
