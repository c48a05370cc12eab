"""Gradescope: the autograder's ``results.json`` for one student (an output plugin)."""
from __future__ import annotations

from collections.abc import Mapping

from grader.reports import STATUS_LABELS, _numbers, display_text, fmt_score
from grader.results import StudentResult, points


def results_json(result: StudentResult, hints: Mapping[str, str] | None = None) -> dict:
    """The Gradescope autograder ``results.json`` for one student.

    Gradescope only knows ``passed`` / ``failed``: error and timeout are reported as
    failed, with the original status first in the test's output. Everything is
    ``visible`` so students always see their total (otter #383).
    """
    hints = hints or {}
    tests = []
    for t, number in zip(result.tests, _numbers(result), strict=True):
        lines = []
        if t.status in ("error", "timeout"):
            lines.append(f"[{STATUS_LABELS[t.status]}]")
        if t.misconception:
            hint = hints.get(t.misconception)
            lines.append(f"Likely misconception: {t.misconception}"
                         + (f": {hint}" if hint else ""))
        if t.feedback:
            lines.append(display_text(t.feedback).rstrip("\n"))
        tests.append({
            "name": t.name,
            "number": number,
            "score": points(t.score),
            "max_score": points(t.max_score),
            "status": "passed" if t.status == "passed" else "failed",
            "output": "\n".join(lines),
            "output_format": "text",
            "tags": [t.part],
            "visibility": "visible",
        })
    summary = [f"Score: {fmt_score(result.score)} / {fmt_score(result.max_score)}",
               result.isolation]
    summary += [display_text(n).rstrip("\n") for n in result.notes]
    if result.misconceptions():
        summary.append("Likely misconceptions: " + ", ".join(result.misconceptions()))
    if result.output:
        summary += ["", "What your submission printed:", display_text(result.output).rstrip("\n")]
    return {
        "score": result.score,
        "output": "\n".join(summary),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
