"""Every known mistake in the catalogue is diagnosed by name on a real buggy hand-in."""
from __future__ import annotations

import mutants
import pytest
from conftest import BACKPROP, SOLUTIONS, make_grading, write_submission

from grader import batch
from grader.judging.misconceptions import catalogue as catalogue_of

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def catalogue() -> dict:
    return catalogue_of(BACKPROP.exercises)


# a mutant whose id differs from the catalogue id it must be diagnosed as
ALIASES = {"forgot-dout-affine": "forgot-dout"}
EXTRA = {  # catalogue entries with no mutant in tests/mutants.py
    "hard-coded-numbers": [("buy_apple_orange.py", "grads = {\"apple\": dapple,",
                            "grads = {\"apple\": 2.2,"),
                           ("buy_apple_orange.py", "\"apple_num\": dapple_num,", "\"apple_num\": 110,"),
                           ("buy_apple_orange.py", "\"orange\": dorange,", "\"orange\": 3.3,"),
                           ("buy_apple_orange.py", "\"orange_num\": dorange_num, \"tax\": dtax}",
                            "\"orange_num\": 165, \"tax\": 650}")],
}


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mutants")
    for mutant_id in mutants.MUTANTS:
        mutants.build(mutant_id, root / mutant_id)
    for mutant_id, edits in EXTRA.items():
        write_submission(root / mutant_id, edits)
    full = {}  # Batch.results are slim (no feedback); on_done sees each full result
    batch.grade_class(root, tmp_path_factory.mktemp("reports"), make_grading(), jobs=2,
                      on_done=lambda r: full.__setitem__(r.student, r))
    return full


@pytest.mark.parametrize("mutant_id", [*mutants.MUTANTS, *EXTRA])
def test_mistake_is_named(diagnosed, mutant_id):
    result = diagnosed[mutant_id]
    expected = ALIASES.get(mutant_id, mutant_id)
    assert expected in result.misconceptions(), [
        (t.name, t.misconception, t.feedback[:200]) for t in result.tests if t.status != "passed"]
    assert result.score < result.max_score
    named = next(t for t in result.tests if t.misconception == expected)
    title = catalogue()[expected].title
    if expected not in ("duplicate-class", "missing-class"):  # named by static reading instead
        assert title in named.feedback


def test_every_catalogue_entry_is_exercised():
    tested = {ALIASES.get(m, m) for m in [*mutants.MUTANTS, *EXTRA]}
    assert set(catalogue()) <= tested, set(catalogue()) - tested


def test_hints_do_not_hand_over_the_solution():
    """A hint explains; it never contains a complete line of the reference's backward code."""
    from grader.authoring import release
    lines = set()
    for path in SOLUTIONS.glob("*.py"):
        lines |= release.solution_lines(path.read_text())
    for m in catalogue().values():
        assert not [line for line in lines if line in m.hint or line in m.title]
