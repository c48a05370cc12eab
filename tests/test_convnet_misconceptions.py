"""convnet: every known mistake in the catalogue is diagnosed by name on a real buggy hand-in,
and a mistake in col2im is charged to col2im, not again to the layers that call it."""
from __future__ import annotations

import mutants_convnet
import pytest
from conftest import CONVNET, make_grading

from grader import batch
from grader.authoring import release
from grader.judging.misconceptions import catalogue as catalogue_of

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

STATIC = ("duplicate-class", "missing-class")  # named by static reading: no formula title in the feedback


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory):
    root = tmp_path_factory.mktemp("mutants")
    for mutant_id in mutants_convnet.MUTANTS:
        mutants_convnet.CONVNET.build(mutant_id, root / mutant_id)
    full = {}  # Batch.results are slim (no feedback); on_done sees each full result
    batch.grade_class(root, tmp_path_factory.mktemp("reports"), make_grading(CONVNET), jobs=2,
                      on_done=lambda r: full.__setitem__(r.student, r))
    return full


@pytest.mark.parametrize("mutant_id", list(mutants_convnet.MUTANTS))
def test_mistake_is_named(diagnosed, mutant_id):
    result = diagnosed[mutant_id]
    assert mutant_id in result.misconceptions(), [
        (t.name, t.misconception, t.feedback[:200]) for t in result.tests if t.status != "passed"]
    assert result.score < result.max_score
    if mutant_id not in STATIC:
        named = next(t for t in result.tests if t.misconception == mutant_id)
        assert catalogue_of(CONVNET.exercises)[mutant_id].title in named.feedback


def test_every_catalogue_entry_is_exercised():
    catalogue = set(catalogue_of(CONVNET.exercises))
    assert catalogue - set(mutants_convnet.MUTANTS) == set(mutants_convnet.NOT_APPLICABLE)


@pytest.mark.parametrize("mutant_id", ["col2im-overwrites", "col2im-layout"])
def test_a_col2im_mistake_costs_col2im_only(diagnosed, mutant_id):
    """Convolution and Pooling call the student's col2im: their dx is checked against that
    col2im applied to the right columns, and passes with a pointer to col2im."""
    result = diagnosed[mutant_id]
    lost = {part for part, totals in result.parts().items() if totals["score"] < totals["max_score"]}
    assert lost == {"col2im"}, lost
    blamed = [t for t in result.tests if t.part in ("Convolution", "Pooling")
              and "because of your col2im" in t.feedback]
    assert blamed, "no dx item points at col2im"


def test_overwriting_shows_only_where_windows_overlap(diagnosed):
    items = {t.name: t.status for t in diagnosed["col2im-overwrites"].tests if t.part == "col2im"}
    assert items == {"col2im: img (3x3 filter, stride 1: overlapping windows)": "failed",
                     "col2im: img (3x2 filter, stride 2, padding 1)": "failed",
                     "col2im: img (2x2 filter, stride 2: windows side by side)": "passed"}, items


def test_hints_do_not_hand_over_the_solution():
    """A hint explains; it never contains a complete line of the reference's solution code."""
    lines = set().union(*(release.solution_lines((CONVNET.folder / f).read_text()) for f in CONVNET.files))
    for m in catalogue_of(CONVNET.exercises).values():
        assert not [line for line in lines if line in m.hint or line in m.title], m.id
