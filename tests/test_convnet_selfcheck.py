"""The convnet students' self-check, run as a student runs it: ``pytest`` in a copy of the release.

Numerical gradients of the student's own forward passes, no reference: untouched stubs
fail every test saying what is not implemented, the reference passes every test on every
seed, and a wrong line fails exactly the tests that use it.
"""
from __future__ import annotations

import pytest
from conftest import CONVNET
from test_selfcheck import run_selfcheck, student_copy, sweep_failures

pytestmark = pytest.mark.slow

TESTS = {
    "test_col2im[3x3 stride 1]": "col2im",
    "test_col2im[3x2 stride 2 pad 1]": "col2im",
    "test_batch_normalization[2-D input]": "BatchNormalization.forward",
    "test_batch_normalization[4-D input]": "BatchNormalization.forward",
    "test_batch_normalization_test_mode": "BatchNormalization.forward",
    "test_dropout[2-D input]": "Dropout.forward",
    "test_dropout[4-D input]": "Dropout.forward",
    "test_convolution[3x3 stride 1]": "Convolution.forward",
    "test_convolution[3x2 stride 2 pad 1]": "Convolution.forward",
    "test_pooling[2x2 stride 2]": "Pooling.forward",
    "test_pooling[3x2 stride 1]": "Pooling.forward",
    "test_simple_convnet_gradient": "Convolution.forward",
}


def test_fresh_release_fails_every_test_with_not_implemented(tmp_path):
    proc, outcomes, _ = run_selfcheck(student_copy(tmp_path, assignment=CONVNET), tests=TESTS)
    assert proc.returncode == 1, proc.stdout
    for test, name in TESTS.items():
        outcome, message = outcomes[test]
        assert outcome == "failure" and f"{name} is not implemented yet" in message, (test, message)


def test_reference_solutions_pass_every_test(tmp_path):
    proc, outcomes, _ = run_selfcheck(student_copy(tmp_path, solved=True, assignment=CONVNET), tests=TESTS)
    failed = {test: result for test, result in outcomes.items() if result[0] != "passed"}
    assert not failed, failed
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize(("original", "bug", "failing"), [
    pytest.param("x:x_max:stride] += col", "x:x_max:stride] = col",
                 {"test_col2im[3x3 stride 1]": "col2im", "test_col2im[3x2 stride 2 pad 1]": "col2im",
                  # both convolutions' windows overlap; of the poolings, only the stride-1 one's do
                  "test_convolution[3x3 stride 1]": "Convolution.backward: dx",
                  "test_convolution[3x2 stride 2 pad 1]": "Convolution.backward: dx",
                  "test_pooling[3x2 stride 1]": "Pooling.backward: dx"},
                 id="col2im overwrites"),
    pytest.param("        dx = dxc - dmu / self.batch_size\n", "        dx = dxc\n",
                 {"test_batch_normalization[2-D input]": "BatchNormalization.backward: dx",
                  "test_batch_normalization[4-D input]": "BatchNormalization.backward: dx"},
                 id="batch norm without the mean's gradient"),
    pytest.param("mask = np.random.rand(*x.shape) > self.dropout_ratio\n",
                 "mask = (np.random.rand(*x.shape) > self.dropout_ratio) / (1.0 - self.dropout_ratio)\n",
                 {"test_dropout[2-D input]": "Dropout: in training, kept units pass unchanged",
                  "test_dropout[4-D input]": "Dropout: in training, kept units pass unchanged"},
                 id="inverted dropout: gradients consistent, the convention is not"),
])
def test_one_bug_fails_exactly_the_affected_tests(tmp_path, original, bug, failing):
    folder = student_copy(tmp_path, solved=True, assignment=CONVNET)
    layers = folder / "convnet_layers.py"
    source = layers.read_text(encoding="utf-8")
    assert source.count(original) == 1, f"cannot plant the bug: {original!r} not found once"
    layers.write_text(source.replace(original, bug), encoding="utf-8")
    proc, outcomes, _ = run_selfcheck(folder, seed=0, tests=TESTS)
    failed = {test for test, (outcome, _) in outcomes.items() if outcome != "passed"}
    assert failed == set(failing), {t: outcomes[t] for t in failed ^ set(failing)}
    for test, fragment in failing.items():
        assert fragment in outcomes[test][1], (test, outcomes[test])


CASES = r'''
import test_convnet as tb

cases = {
    "test_col2im[3x3 stride 1]": (tb.test_col2im, (3, 3, 1, 0)),
    "test_col2im[3x2 stride 2 pad 1]": (tb.test_col2im, (3, 2, 2, 1)),
    "test_batch_normalization[2-D input]": (tb.test_batch_normalization, ((5, 4),)),
    "test_batch_normalization[4-D input]": (tb.test_batch_normalization, ((4, 2, 3, 2),)),
    "test_batch_normalization_test_mode": (tb.test_batch_normalization_test_mode, ()),
    "test_dropout[2-D input]": (tb.test_dropout, ((4, 6),)),
    "test_dropout[4-D input]": (tb.test_dropout, ((3, 2, 4, 3),)),
    "test_convolution[3x3 stride 1]": (tb.test_convolution, (3, 3, 1, 0)),
    "test_convolution[3x2 stride 2 pad 1]": (tb.test_convolution, (3, 2, 2, 1)),
    "test_pooling[2x2 stride 2]": (tb.test_pooling, (2, 2, 2)),
    "test_pooling[3x2 stride 1]": (tb.test_pooling, (3, 2, 1)),
    "test_simple_convnet_gradient": (tb.test_simple_convnet_gradient, ()),
}
'''


def test_reference_passes_the_self_check_for_every_seed(tmp_path):
    """Fresh random inputs every run: correct code must pass all of them (100 fixed seeds)."""
    failures = sweep_failures(student_copy(tmp_path, solved=True, assignment=CONVNET), CASES, seeds=100)
    assert not failures, f"{len(failures)} false failures on correct code, e.g. {failures[:5]}"
