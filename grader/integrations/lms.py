"""Gradebook files Canvas and Moodle import as they are, from a graded class's grades.csv.

The hand-in ids (folder names) rarely are the LMS's ids, so a roster maps them: a CSV
with one row per student, the hand-in id in column ``key`` (default ``student``), and the
LMS's identity columns (a Canvas gradebook export has Student, ID, SIS User ID, SIS
Login ID, Section; a Moodle participants export has Email address, Username, ID number).

- Canvas: Student, ID, SIS User ID, SIS Login ID, Section, then one column named after the
  assignment, with the "Points Possible" row Canvas's own exports carry.
- Moodle: the identity column (Email address, else Username, else ID number) and the grade.

A roster student without a hand-in gets an empty cell (an LMS leaves such a grade
untouched) and is listed; a hand-in with no roster row is listed and left out.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from grader.reports import csv_text

CANVAS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_IDS = ("Email address", "Username", "ID number")


class RosterError(ValueError):
    """A roster that cannot be used; the message names the file, row or column."""


@dataclass
class Export:
    text: str
    unmatched: list[str] = field(default_factory=list)   # hand-ins with no roster row
    missing: list[str] = field(default_factory=list)     # roster students with no hand-in


def read_roster(path: Path, key: str) -> list[dict[str, str]]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot be read ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or key not in reader.fieldnames:
        raise RosterError(f"{path}: no column {key!r} holding the hand-in ids (its columns: "
                          f"{', '.join(reader.fieldnames or []) or 'none'}); name it with --key")
    rows = [row for row in reader if (row.get(key) or "").strip()]
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, 2):
        student = row[key].strip()
        if student in seen:
            raise RosterError(f"{path}: row {number} repeats the id {student!r} of row {seen[student]}")
        seen[student] = number
    return rows


def read_scores(grades: Path) -> tuple[dict[str, str], str]:
    """student -> score, and the maximum, from a grader's grades.csv."""
    with open(grades, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {r["student"].lstrip("'"): r["score"] for r in rows}, max((r["max_score"] for r in rows), default="0",
                                                                      key=float)


def export(kind: str, roster: list[dict[str, str]], key: str, scores: dict[str, str], title: str,
           max_score: str) -> Export:
    """The LMS's CSV text for these scores."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    found = Export("")
    ids = {row[key].strip() for row in roster}
    found.unmatched = sorted(set(scores) - ids)
    found.missing = sorted(ids - set(scores))
    if kind == "canvas":
        writer.writerow([*CANVAS, title])
        writer.writerow(["    Points Possible", "", "", "", "", max_score])
        for row in roster:
            writer.writerow([csv_text(str(row.get(c, ""))) for c in CANVAS] + [scores.get(row[key].strip(), "")])
    elif kind == "moodle":
        column = next((c for c in MOODLE_IDS if c in roster[0]), None) if roster else None
        if column is None:
            raise RosterError(f"a Moodle import needs one of the columns {', '.join(MOODLE_IDS)} in the roster")
        writer.writerow([column, title])
        for row in roster:
            writer.writerow([csv_text(str(row[column])), scores.get(row[key].strip(), "")])
    else:
        raise ValueError(f"unknown LMS {kind!r}: canvas or moodle")
    found.text = out.getvalue()
    return found

