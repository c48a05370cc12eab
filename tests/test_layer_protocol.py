"""Bugs that only show across calls, and gradients that are not backpropagation (issue 14).

Each hand-in is the reference with one edit; each must lose points in the part that holds
the mistake - and only there - with the mistake named. Correct code in float32 keeps
every point.
"""
from __future__ import annotations

import json

import mutants
import numpy as np
import pytest
from conftest import BACKPROP, part_scores, write_submission

from grader.reports import render_student
from grader.results import StudentResult, TestResult

pytestmark = pytest.mark.sandbox
FULL = {e.part: e.max_points for e in BACKPROP.exercises}


def lost(result) -> dict[str, float]:
    return {part: FULL[part] - score for part, score in part_scores(result).items() if score < FULL[part]}


@pytest.mark.parametrize("mutant, part", [
    ("state-shared-between-objects", "Relu"),      # the mask a class attribute
    ("state-from-an-earlier-call", "Affine"),      # x stored on the first forward only
    ("integer-inputs-truncated", "MulLayer"),      # the shopping graph notices: MulLayer is blamed
    ("parameters-copied", "Affine"),               # the net notices too: Affine is blamed
    ("low-precision-inputs", "Sigmoid"),
])
def test_a_protocol_bug_costs_its_own_part_only(grade, tmp_path, mutant, part):
    result = grade(mutants.build(mutant, tmp_path / mutant))
    assert set(lost(result)) == {part}, lost(result)
    item = next(t for t in result.tests if t.name == f"{part}: the layer protocol")
    assert item.status == "failed" and item.misconception == mutant, item.feedback
    assert "Known mistake" in item.feedback


def test_a_module_level_global_is_state_shared_between_objects(grade, tmp_path):
    edits = [("layers.py", "        out = 1 / (1 + np.exp(-x))\n        self.out = out\n",
              "        global LAST_OUT\n        LAST_OUT = out = 1 / (1 + np.exp(-x))\n"),
             ("layers.py", "        dx = dout * (1.0 - self.out) * self.out\n",
              "        dx = dout * (1.0 - LAST_OUT) * LAST_OUT\n")]
    result = grade(write_submission(tmp_path / "global", edits))
    assert set(lost(result)) == {"Sigmoid"}, lost(result)
    assert "state-shared-between-objects" in result.misconceptions()


@pytest.mark.parametrize("mutant, said", [
    ("stale-params", "after a training step changed net.params in place"),
    ("numerical-differentiation", "numerical differentiation, not backpropagation"),
    ("gradient-without-forward", "It ran on a freshly built net"),
])
def test_a_gradient_that_is_not_backprop_earns_no_gradient_points(grade, tmp_path, mutant, said):
    result = grade(mutants.build(mutant, tmp_path / mutant))
    grads = [t for t in result.tests if t.part == "TwoLayerNet" and "loss" not in t.name]
    assert grads and all(t.score == 0 for t in grads)
    assert all(t.misconception == mutant and said in t.feedback for t in grads), grads[0].feedback
    assert set(lost(result)) == {"TwoLayerNet"}, lost(result)


NET_PARAMS = 'self.params["W1"] = weight_init_std * np.random.randn(input_size, hidden_size)'


@pytest.mark.parametrize("name, edits", [
    # richardson extrapolation of central differences: four losses per weight
    ("richardson", [("two_layer_net.py", "        self.loss(x, t)\n\n        dout = 1\n",
                     "        grads = {}\n"
                     "        for key in ('W1', 'b1', 'W2', 'b2'):\n"
                     "            w, g = self.params[key], np.zeros_like(self.params[key])\n"
                     "            for i in np.ndindex(w.shape):\n"
                     "                old, f = w[i], []\n"
                     "                for h in (1e-3, -1e-3, 5e-4, -5e-4):\n"
                     "                    w[i] = old + h\n"
                     "                    f.append(self.loss(x, t))\n"
                     "                w[i] = old\n"
                     "                g[i] = (4 * (f[2] - f[3]) / 1e-3 - (f[0] - f[1]) / 2e-3) / 3\n"
                     "            grads[key] = g\n"
                     "        return grads\n        dout = 1\n")]),
    # zero weights, and the closed form of the gradient at zero weights
    ("closed-form-at-zero", [("two_layer_net.py", NET_PARAMS,
                              'self.params["W1"] = np.zeros((input_size, hidden_size))'),
                             ("two_layer_net.py", "        self.loss(x, t)\n\n        dout = 1\n",
                              "        y = np.full((len(x), self.params['b2'].size), 1 / self.params['b2'].size)\n"
                              "        t = np.eye(self.params['b2'].size)[t] if t.ndim == 1 else t\n"
                              "        return {'W1': np.zeros_like(self.params['W1']), "
                              "'b1': np.zeros_like(self.params['b1']), 'W2': np.zeros_like(self.params['W2']), "
                              "'b2': (y - t).sum(axis=0) / len(x)}\n        dout = 1\n")]),
])
def test_no_backprop_no_gradient_points(grade, tmp_path, name, edits):
    result = grade(write_submission(tmp_path / name, edits))
    grads = [t for t in result.tests if t.part == "TwoLayerNet" and "loss" not in t.name]
    assert all(t.score == 0 for t in grads), [(t.name, t.status) for t in grads]


def test_stand_in_layers_get_nothing_from_the_walk_fallback(grade, tmp_path):
    """Layers of the net's own making whose dW/db are 0.0: the walk replayed on them agrees
    with gradient(), but no layer part failed, so nothing excuses the wrong gradients."""
    stand_in = ("\n\nclass Still:\n    def __init__(self, *a):\n        self.dW = 0.0\n        self.db = 0.0\n"
                "    def forward(self, x, *a):\n        return x\n    def backward(self, dout=1):\n"
                "        return dout\n")
    edits = [("two_layer_net.py", "\n\nclass TwoLayerNet:", stand_in + "\n\nclass TwoLayerNet:"),
             ("two_layer_net.py", 'self.layers["Affine1"] = Affine(self.params["W1"], self.params["b1"])',
              'self.layers["Affine1"] = Still()'),
             ("two_layer_net.py", 'self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])',
              'self.layers["Affine2"] = Still()')]
    result = grade(write_submission(tmp_path / "stand-in", edits))
    net = {t.name: t for t in result.tests if t.part == "TwoLayerNet" and "loss" not in t.name}
    assert all(t.score == 0 for t in net.values()), [(n, t.feedback[:100]) for n, t in net.items()]


def test_weights_come_from_the_grader_not_the_students_draw(grade, tmp_path):
    """An __init__ that draws differently still gets full marks: the grader writes its own
    weights into net.params."""
    edits = [("two_layer_net.py", NET_PARAMS,
              'self.params["W1"] = weight_init_std * (np.random.rand(input_size, hidden_size) - 0.5)')]
    result = grade(write_submission(tmp_path / "own-draw", edits))
    assert not lost(result), lost(result)


def test_a_missing_key_is_named(grade, tmp_path):
    edits = [("two_layer_net.py", 'grads["W1"], grads["b1"] = self.layers["Affine1"].dW',
              'grads["w1"], grads["b1"] = self.layers["Affine1"].dW')]
    result = grade(write_submission(tmp_path / "key", edits))
    w1 = [t for t in result.tests if t.name.startswith("TwoLayerNet: W1")]
    assert w1 and all("has no key 'W1'" in t.feedback and "'w1'" in t.feedback for t in w1), w1[0].feedback


FLOAT32 = [
    ("layers.py", "        self.mask = x <= 0\n        out = x.copy()",
     "        x = np.asarray(x, dtype=np.float32)\n        self.mask = x <= 0\n        out = x.copy()"),
    ("layers.py", "        dx = dout.copy()\n        dx[self.mask] = 0\n",
     "        dx = np.array(dout, dtype=np.float32)\n        dx[self.mask] = 0\n"),
    ("layers.py", "        out = 1 / (1 + np.exp(-x))\n", "        out = 1 / (1 + np.exp(-np.float32(x)))\n"),
    ("layers.py", "        dx = dout * (1.0 - self.out) * self.out\n",
     "        dx = np.float32(dout) * (np.float32(1.0) - self.out) * self.out\n"),
    ("layers.py", "        x = x.reshape(x.shape[0], -1)\n        self.x = x\n"
                  "        return np.dot(self.x, self.W) + self.b",
     "        x = np.float32(x.reshape(x.shape[0], -1))\n        self.x = x\n"
     "        return np.dot(self.x, np.float32(self.W)) + np.float32(self.b)"),
    ("layers.py", "        dx = np.dot(dout, self.W.T)\n        self.dW = np.dot(self.x.T, dout)\n"
                  "        self.db = np.sum(dout, axis=0)\n",
     "        dout = np.float32(dout)\n        dx = np.dot(dout, np.float32(self.W.T))\n"
     "        self.dW = np.dot(self.x.T, dout)\n        self.db = np.sum(dout, axis=0)\n"),
    ("layers.py", "        self.t = t\n        self.y = softmax(x)\n",
     "        self.t = t\n        self.y = softmax(np.float32(x))\n"),
]


def test_correct_float32_code_keeps_every_point_with_a_note(grade, tmp_path):
    result = grade(write_submission(tmp_path / "float32", FLOAT32))
    assert not lost(result), [(t.name, t.feedback[:300]) for t in result.tests if t.status != "passed"]
    notes = [t for t in result.tests if "computed in float32" in t.feedback]
    assert notes and {t.part for t in notes} >= {"Affine", "Relu", "Sigmoid", "TwoLayerNet"}


def test_instructor_notes_never_reach_a_students_file():
    note = "the numerical gradient of the student's forward disagrees: the reference may be wrong"
    result = StudentResult("kim", [TestResult("P: dx (a)", "P", 1.0, 1.0, "passed", "correct", None, note)])
    files = render_student(result, {})
    assert note in json.loads(files["report.json"])["tests"][0]["instructor"]
    for name in ("report.md", "report.html", "results.json"):
        assert note not in files[name], name


def test_the_numerical_check_follows_the_students_dtype():
    """A float32 forward cannot be differenced finely at h = 1e-5: its noise is float32's."""
    from grader.judging import checks

    assert checks.slope_noise(1.0, dtype=np.float32) > 1e6 * checks.slope_noise(1.0)
