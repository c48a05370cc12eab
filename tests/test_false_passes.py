"""Every false pass measured in shared/notes/gradient-checks.md is caught by the grader.

Each bug there slipped through a weaker check (batch size 1, dout all ones, x == y,
square or symmetric W, x = 0, sampling a few entries, a loose rtol, a mean-abs
metric). The grader's inputs and comparisons must catch each one.
"""
from __future__ import annotations

import pytest
from conftest import write_submission

AFFINE_DW = "self.dW = np.dot(self.x.T, dout)"
BUGS = {
    "missing /batch_size in SoftmaxWithLoss": (
        "SoftmaxWithLoss", [("layers.py", "dx = dx / batch_size", "dx = dx")]),
    "db = mean(dout)": ("Affine", [("layers.py", "self.db = np.sum(dout, axis=0)",
                                    "self.db = np.mean(dout, axis=0)")]),
    "backward ignores dout": ("Sigmoid", [("layers.py", "dx = dout * (1.0 - self.out) * self.out",
                                           "dx = (1.0 - self.out) * self.out")]),
    "MulLayer dx, dy swapped": ("MulLayer", [("layers.py", "dx = dout * self.y  # swap the inputs",
                                              "dx = dout * self.x"),
                                             ("layers.py", "dy = dout * self.x", "dy = dout * self.y")]),
    "Affine dx = dout @ W": ("Affine", [("layers.py", "dx = np.dot(dout, self.W.T)",
                                         "dx = np.dot(dout, self.W)")]),
    "dW = 2 x^T dout": ("Affine", [("layers.py", AFFINE_DW, "self.dW = 2 * np.dot(self.x.T, dout)")]),
    "dW from sample 0 only": ("Affine", [("layers.py", AFFINE_DW,
                                          "self.dW = np.outer(self.x[0], dout[0])")]),
    "dW 0.1% too large": ("Affine", [("layers.py", AFFINE_DW, "self.dW = 1.001 * np.dot(self.x.T, dout)")]),
    "dW = dout^T x (transposed)": ("Affine", [("layers.py", AFFINE_DW, "self.dW = np.dot(dout.T, self.x)")]),
    "dW1 off by 1/batch (looks small to a mean-abs metric)": (
        "TwoLayerNet", [("two_layer_net.py", 'grads["W1"], grads["b1"] = self.layers["Affine1"].dW,',
                         'grads["W1"], grads["b1"] = self.layers["Affine1"].dW / len(x),')]),
}


@pytest.mark.parametrize("bug", BUGS)
def test_false_pass_is_caught(bug, grade, tmp_path):
    part, edits = BUGS[bug]
    result = grade(write_submission(tmp_path / "s", edits))
    lost = [t for t in result.tests if t.part == part and t.status != "passed"]
    assert lost, f"{bug}: every {part} check passed"
    others = [t for t in result.tests if t.part not in (part, "TwoLayerNet", "ShoppingGraph")]
    assert all(t.status == "passed" for t in others), [t.name for t in others if t.status != "passed"]
