"""Over 500 course seeds the reference never loses a point; correct variants score full marks."""
from __future__ import annotations

import pytest
from conftest import REPO

from grader import reference, submission
from grader.course import Course
from grader.exercises import ALL
from grader.scoring import Scorer
from grader.worker.client import Worker


def sweep(folder, seeds, tmp_path) -> list[str]:
    """Grade ``folder`` under each seed on one warm worker; return every lost item."""
    course = Course()
    tmp_path.chmod(0o755)
    staged = submission.stage(submission.Submission("s", folder), tmp_path / "s")
    lost = []
    with Worker(staged.folder, course.limits, course.sandbox) as worker:
        worker.start()
        for seed in seeds:
            scorer = Scorer()
            for exercise in ALL:
                exercise.grade(worker, scorer, reference.load(), seed)
            lost += [f"seed {seed}: {r.name}: {r.feedback[:300]}" for r in scorer.results()
                     if r.status != "passed" or "instructor" in r.feedback]
    return lost


def test_reference_never_loses_a_point_over_500_seeds(tmp_path):
    assert not sweep(REPO / "solutions" / "backprop", range(500), tmp_path)


@pytest.mark.parametrize("student", ["ada-book", "grace-variants", "crlf"])
def test_correct_code_written_differently_scores_full_marks(tmp_path, student):
    assert not sweep(REPO / "examples" / "class" / student, range(1000, 1040), tmp_path)
