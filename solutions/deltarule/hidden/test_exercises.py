"""Grade each exercise declared in exercises/ (the plugin passes them in as ``exercise``),
after each layer's protocol (``protocol``: objects used in turn, forward twice, integer and
float32 inputs, the constructor's arrays changed in place).

Against one hand-in: ``pytest solutions/deltarule/hidden --handin FOLDER``.
"""


def test_protocol(protocol, worker, scorer, answers):
    protocol.grade(worker, scorer, answers)


def test_exercise(exercise, worker, scorer, answers):
    exercise.grade(worker, scorer, answers)
