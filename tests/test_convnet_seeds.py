"""convnet over many course seeds: the reference never loses a point (no input crosses a
kink, no float32 round-off is taken for a mistake, the seeded dropout mask always agrees),
correct code written differently keeps full marks, and no seed hides a known mistake."""
from __future__ import annotations

import mutants_convnet
import pytest
from conftest import CONVNET, REPO
from test_seeds import sweep

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]



def test_reference_never_loses_a_point_over_200_seeds(tmp_path):
    assert not sweep(CONVNET.folder, range(200), tmp_path, CONVNET)


@pytest.mark.parametrize("student", ["grace-variants", "hana-notebook"])
def test_correct_code_written_differently_scores_full_marks(tmp_path, student):
    assert not sweep(REPO / "examples" / "convnet-class" / student, range(1000, 1030), tmp_path, CONVNET)


def test_every_known_mistake_loses_points_on_every_seed(tmp_path):
    seeds = set(range(3000, 3006))
    hidden = {}
    for mutant in mutants_convnet.MUTANTS:
        folder = mutants_convnet.CONVNET.build(mutant, tmp_path / "m" / mutant)
        (tmp_path / mutant).mkdir()
        lost = sweep(folder, sorted(seeds), tmp_path / mutant, CONVNET)
        missed = seeds - {int(line.split(":")[0].removeprefix("seed ")) for line in lost}
        if missed:
            hidden[mutant] = sorted(missed)
    assert not hidden, f"mistakes that some seeds hide: {hidden}"
