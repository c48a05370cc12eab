"""Hidden tests: every exercise of exercises/, each quantity and case its own graded item.

``protocol`` and ``exercise`` are filled in by the grader's pytest plugin: each layer's
protocol, then each entry of ``EXERCISES`` (ids: the part names). The protocols run first:
a net built from a layer that breaks its protocol is then not charged for that layer's
mistake a second time. Add tests of your own in this folder the way you write any pytest
test, marked ``@pytest.mark.graded(part=..., points=...)``; run them against one hand-in
with ``pytest solutions/backprop/hidden --handin FOLDER``.
"""


def test_protocol(protocol, worker, scorer, answers):
    """What every layer honours beyond one call on fresh floats (objects used in turn, forward
    twice, integer and float32 inputs, its arrays changed in place): one item per layer."""
    protocol.grade(worker, scorer, answers)


def test_exercise(exercise, worker, scorer, answers):
    exercise.grade(worker, scorer, answers)
