def test_protocol(protocol, worker, scorer, answers):
    protocol.grade(worker, scorer, answers)


def test_exercise(exercise, worker, scorer, answers):
    exercise.grade(worker, scorer, answers)
