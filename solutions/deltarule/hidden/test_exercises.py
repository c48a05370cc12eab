"""Grade each exercise declared in exercises/ (the plugin passes them in as ``exercise``).

Against one hand-in: ``pytest solutions/deltarule/hidden --handin FOLDER``.
"""


def test_exercise(exercise, worker, scorer, answers):
    exercise.grade(worker, scorer, answers)
