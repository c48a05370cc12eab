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
            for exercise in assignment.exercises:  # protocols first, as the hidden tests order them
                if getattr(exercise, "protocol", None):
                    exercise.protocol.grade(worker, scorer, answers)
            for exercise in assignment.exercises:
                exercise.grade(worker, scorer, answers)
            lost += [f"seed {seed}: {r.name}: {r.feedback[:300]}{r.instructor[:300]}" for r in scorer.results()
                     if r.status != "passed" or r.instructor]
    return lost


def test_reference_never_loses_a_point_over_500_seeds(tmp_path):
    assert not sweep(SOLUTIONS, range(500), tmp_path)


@pytest.mark.parametrize("student", ["ada-book", "grace-variants", "crlf"])
def test_correct_code_written_differently_scores_full_marks(tmp_path, student):
    assert not sweep(REPO / "examples" / "class" / student, range(1000, 1040), tmp_path)


def test_correct_float32_code_scores_full_marks_over_seeds(tmp_path):
    """Tolerances follow the dtype the student returns: a correct float32 implementation
    never loses a point, whatever the seed."""
    from conftest import write_submission
    from test_layer_protocol import FLOAT32

    assert not sweep(write_submission(tmp_path / "float32", FLOAT32), range(2000, 2060), tmp_path)


def test_every_known_mistake_loses_points_on_every_seed(tmp_path):
    """No seed hides a mistake: each mutant of tests/mutants.py loses points under every seed."""
    import mutants

    hidden = {}
    for mutant in mutants.MUTANTS:
        folder = mutants.build(mutant, tmp_path / "m" / mutant)
        (tmp_path / mutant).mkdir()
        lost = sweep(folder, range(3000, 3012), tmp_path / mutant)
        seeds = {int(line.split(":")[0].removeprefix("seed ")) for line in lost}
        if seeds != set(range(3000, 3012)):
            hidden[mutant] = sorted(set(range(3000, 3012)) - seeds)
    assert not hidden, f"mistakes that some seeds hide: {hidden}"
