"""Shared helpers: build a submission from the reference with edits, and grade it for real."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/mutants.py

import mutants  # noqa: E402

from grader import runner, submission  # noqa: E402
from grader.course import Course  # noqa: E402
from grader.results import StudentResult  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def write_submission(folder: Path, edits=(), sources: dict[str, str] | None = None) -> Path:
    """The reference hand-in with ``(file, old, new)`` edits applied (each must hit once)."""
    sources = dict(sources or mutants.reference_sources())
    for name, old, new in edits:
        assert sources[name].count(old) == 1, f"{name}: {old!r} must occur exactly once"
        sources[name] = sources[name].replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in sources.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def hidden_tests():
    return runner.collect(Course().hidden_tests)


@pytest.fixture
def grade(tmp_path, hidden_tests):
    """Grade a folder with the real sandbox and the real hidden tests."""
    def run(folder: Path, course: Course | None = None) -> StudentResult:
        staging = tmp_path / "staging"
        staging.mkdir(exist_ok=True)
        staging.chmod(0o755)
        return runner.grade(submission.Submission(folder.name, folder), course or Course(),
                            hidden_tests, staging)

    return run


def part_scores(result: StudentResult) -> dict[str, float]:
    return {part: totals["score"] for part, totals in result.parts().items()}
