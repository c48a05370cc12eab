"""Hidden tests: every exercise of exercises/, each quantity and case its own graded item.

The ``exercise`` argument is filled in by the grader's pytest plugin with each entry of
``EXERCISES`` (ids: the part names). Add tests of your own in this folder the way you
write any pytest test, marked ``@pytest.mark.graded(part=..., points=...)``; run them
against one hand-in with ``pytest solutions/backprop/hidden --handin FOLDER``.
"""


def test_exercise(exercise, worker, scorer, answers):
    exercise.grade(worker, scorer, answers)
