"""Hidden tests: every exercise, each quantity and case its own graded item.

The content (inputs, points, known mistakes) is declared in ``grader.exercises``.
Add a test of your own in this folder the way you write any test (see
``grader.testing``); it is collected by ``grader grade`` and by pytest alike.
"""
import pytest

from grader.exercises import ALL


@pytest.mark.parametrize("exercise", ALL, ids=[e.part for e in ALL])
def test_exercise(exercise, worker, scorer, reference, seed):
    exercise.grade(worker, scorer, reference, seed)
