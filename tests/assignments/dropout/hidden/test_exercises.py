def test_exercise(exercise, worker, scorer, answers):
    exercise.grade(worker, scorer, answers)
