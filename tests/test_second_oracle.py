"""The second oracle: each gradient is also checked against the slope of the student's own
forward pass (or loss), measured in the worker along random directions.

Its verdict is part of the feedback: a wrong gradient is told that it disagrees with the
numerical gradient of the student's own code, a right one adds nothing.
"""
from __future__ import annotations

from conftest import write_submission

DISAGREES = "does not match the numerical gradient of your own forward pass"


def feedback(result, prefix: str) -> list[str]:
    found = [t.feedback for t in result.tests if t.name.startswith(prefix)]
    assert found, f"no check named {prefix}..."
    return found


def test_a_wrong_layer_gradient_disagrees_with_the_students_own_forward(grade, tmp_path):
    result = grade(write_submission(tmp_path / "zero-db", [
        ("layers.py", "self.db = np.sum(dout, axis=0)", "self.db = np.zeros_like(self.b)")]))
    assert all(DISAGREES in text for text in feedback(result, "Affine: db")), feedback(result, "Affine: db")
    assert not any(DISAGREES in text for text in feedback(result, "Affine: dW"))


def test_a_wrong_net_gradient_disagrees_with_the_students_own_loss(grade, tmp_path):
    result = grade(write_submission(tmp_path / "zero-b1", [
        ("two_layer_net.py", 'grads["b1"] = self.layers["Affine1"].dW, self.layers["Affine1"].db',
         'grads["b1"] = self.layers["Affine1"].dW, 0 * self.layers["Affine1"].db')]))
    texts = feedback(result, "TwoLayerNet: b1")
    assert all("does not match the numerical gradient" in text for text in texts), texts
    assert not any("does not match" in text for text in feedback(result, "TwoLayerNet: W1"))


def test_right_code_gets_no_numerical_complaint(grade, tmp_path):
    result = grade(write_submission(tmp_path / "reference"))
    assert result.score == result.max_score
    assert not [t.name for t in result.tests if "numerical gradient" in t.feedback]
