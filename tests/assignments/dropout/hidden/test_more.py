"""Instructor-written tests in plain pytest: marks, ids, pytest.param, conftest fixtures."""
import numpy as np
import pytest


@pytest.mark.graded(part="Dropout", points=1)
@pytest.mark.parametrize("train", [pytest.param(False, id="test-mode")])
def test_test_mode_scales(student, rng, ratio, train):
    x = rng.standard_normal((3, 5))
    got = student.dropout.Dropout(ratio).forward(x, train)
    assert np.allclose(got, x * (1 - ratio)), "in test mode, forward scales x by (1 - dropout_ratio)"


@pytest.mark.graded(part="Dropout", points=1)
def test_keeps_its_ratio(student):
    assert student.dropout.Dropout(0.25).dropout_ratio == 0.25


@pytest.mark.skip(reason="not graded this term")
@pytest.mark.graded(part="Dropout", points=5)
def test_skipped(student):
    raise AssertionError("never runs")


@pytest.mark.xfail(reason="informational")
def test_informational(student):
    raise AssertionError("expected")
