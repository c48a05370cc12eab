"""Over 500 course seeds the reference never loses a point; correct variants score full marks."""
from __future__ import annotations

import pytest
from conftest import BACKPROP, REPO, SOLUTIONS

from grader import intake
from grader.exercises.base import Answers
from grader.judging.scoring import Scorer
from grader.sandbox import Limits
from grader.worker.client import Worker

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def sweep(folder, seeds, tmp_path, assignment=BACKPROP) -> list[str]:
    """Grade ``folder`` under each seed on one warm worker; return every lost item."""
    tmp_path.chmod(0o755)
    staged = intake.stage(intake.Submission("s", folder), tmp_path / "s", assignment)
    lost = []
    with Worker(staged.folder, Limits(), "auto", modules=assignment.modules) as worker:
        worker.start()
        for seed in seeds:
            scorer = Scorer()
            answers = Answers(assignment.reference, seed)
            for exercise in assignment.exercises:
                exercise.grade(worker, scorer, answers)
            lost += [f"seed {seed}: {r.name}: {r.feedback[:300]}" for r in scorer.results()
                     if r.status != "passed" or "instructor" in r.feedback]
    return lost


def test_reference_never_loses_a_point_over_500_seeds(tmp_path):
    assert not sweep(SOLUTIONS, range(500), tmp_path)


@pytest.mark.parametrize("student", ["ada-book", "grace-variants", "crlf"])
def test_correct_code_written_differently_scores_full_marks(tmp_path, student):
    assert not sweep(REPO / "examples" / "class" / student, range(1000, 1040), tmp_path)
