"""Hidden tests: every exercise of exercises/, each quantity and case its own graded item.

``protocol`` and ``exercise`` are filled in by the grader's pytest plugin (see
solutions/backprop/hidden/test_exercises.py). Run them against one hand-in with
``pytest solutions/convnet/hidden --handin FOLDER``.
"""


def test_protocol(protocol, worker, scorer, answers):
    """Each layer used as a network uses it: objects in turn, forward twice, integer and float32
    inputs, its parameters changed in place, its input left as it was."""
    protocol.grade(worker, scorer, answers)


def test_exercise(exercise, worker, scorer, answers):
    exercise.grade(worker, scorer, answers)
