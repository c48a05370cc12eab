"""The deltarule students' self-check, run as a student runs it: ``pytest`` in a copy of
``assignments/deltarule``. It needs no PyTorch, yet reproduces the notes' worked example
(``torch.manual_seed(13)``: fc3.weight.grad = [[0.0000, -0.0222]], -0.02224 and -0.03687
by hand).
"""
from __future__ import annotations

import pytest
from conftest import DELTARULE
from test_selfcheck import TIME_LIMIT, run_selfcheck, student_copy, sweep_failures

pytestmark = pytest.mark.slow

TESTS = {
    "test_loss[SSELoss]": "SSELoss.backward",
    "test_loss[MSELoss]": "MSELoss.backward",
    "test_sigmoid_output[5 inputs to 2 outputs]": "SigmoidOutput.backward",
    "test_sigmoid_output[square W]": "SigmoidOutput.backward",
    "test_delta_rule_step": "delta_rule_step",
    "test_three_layer_net_gradient[4-5-2-1]": "ThreeLayerNet.gradient",
    "test_three_layer_net_gradient[6-4-4-3]": "ThreeLayerNet.gradient",
    "test_the_notes_worked_example": "ThreeLayerNet.gradient",
}
NET_DELTA = "delta3 = 2.0 * (o - t) / o.size * o * (1.0 - o)"


def run(folder, seed=None):
    return run_selfcheck(folder, seed=seed, tests=TESTS)


def test_fresh_release_fails_every_test_with_not_implemented(tmp_path):
    proc, outcomes, elapsed = run(student_copy(tmp_path, assignment=DELTARULE))
    assert proc.returncode == 1 and elapsed < TIME_LIMIT
    for test, name in TESTS.items():
        outcome, message = outcomes[test]
        assert outcome == "failure" and f"{name} is not implemented yet" in message, (test, message)


def test_reference_solutions_pass_every_test_without_torch(tmp_path):
    """The worked example's weights are constants: the self-check never imports torch."""
    folder = student_copy(tmp_path, solved=True, assignment=DELTARULE)
    (folder / "torch").mkdir()
    (folder / "torch" / "__init__.py").write_text("raise ImportError('the self-check must not need torch')\n")
    proc, outcomes, elapsed = run(folder)
    assert {t: o for t, o in outcomes.items() if o[0] != "passed"} == {}
    assert proc.returncode == 0 and elapsed < TIME_LIMIT


def test_the_notes_mistake_fails_the_gradient_checks_and_the_worked_example(tmp_path):
    """The output's sigmoid' left out of the net: exactly the net's tests fail, and the worked
    example shows PyTorch's printed numbers next to the student's."""
    folder = student_copy(tmp_path, solved=True, assignment=DELTARULE)
    net = folder / "three_layer_net.py"
    source = net.read_text(encoding="utf-8")
    assert source.count(NET_DELTA) == 1
    net.write_text(source.replace(NET_DELTA, "delta3 = 2.0 * (o - t) / o.size"), encoding="utf-8")
    proc, outcomes, _ = run(folder, seed=0)
    failed = {test for test, (outcome, _) in outcomes.items() if outcome != "passed"}
    assert failed == {t for t, name in TESTS.items() if name == "ThreeLayerNet.gradient"}, outcomes
    message = outcomes["test_the_notes_worked_example"][1]
    assert "PyTorch prints [[0.0, 0.0, 0.0, 0.0, 0.0], [-0.0369," in message or \
        "PyTorch prints [[0.0, -0.0222]]" in message, message
    assert "largest relative error" in outcomes["test_three_layer_net_gradient[4-5-2-1]"][1]


CASES = r'''
import test_deltarule as tb

cases = {
    "loss SSE": (tb.test_loss, ("SSELoss",)), "loss MSE": (tb.test_loss, ("MSELoss",)),
    "sigmoid 5-2": (tb.test_sigmoid_output, (5, 2)), "sigmoid 4-4": (tb.test_sigmoid_output, (4, 4)),
    "delta rule": (tb.test_delta_rule_step, ()),
    "net 4-5-2-1": (tb.test_three_layer_net_gradient, ((4, 5, 2, 1),)),
    "net 6-4-4-3": (tb.test_three_layer_net_gradient, ((6, 4, 4, 3),)),
    "worked example": (tb.test_the_notes_worked_example, ()),
}
'''


def test_reference_passes_the_self_check_for_every_seed(tmp_path):
    failures = sweep_failures(student_copy(tmp_path, solved=True, assignment=DELTARULE), CASES)
    assert not failures, f"{len(failures)} false failures on correct code, e.g. {failures[:5]}"
