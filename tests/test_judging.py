"""The judging core is pure: values in, verdicts out - no worker, no sandbox, milliseconds.

The exercises' ``judge_case`` take the case's inputs, the reference's answers and what a
round trip would have brought back (an ``Outcome``), and settle the items; these tests
build those outcomes by hand.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import BACKPROP, DELTARULE

from grader.exercises.base import Answers, Outcome
from grader.judging import checks, misconceptions
from grader.judging.scoring import Scorer
from grader.worker.inside.protocol import Raised

EXERCISES = {e.part: e for e in BACKPROP.exercises}
ANSWERS = Answers(BACKPROP.reference, 12345)


def case_items(exercise, case_index=0):
    scorer = Scorer()
    case, items = exercise.plan(scorer)[case_index]
    values, expected = ANSWERS.get(exercise, case)
    return scorer, case, items, values, expected


def affine_outcome(values, expected, dW=None, db=None, dx=None, numeric=()):
    """What the worker returns for Affine: forward, dx, then the dW and db attributes."""
    return Outcome([expected["forward"], expected["dx"] if dx is None else dx,
                    expected["dW"] if dW is None else dW, expected["db"] if db is None else db, *numeric])


def test_a_right_answer_passes_every_item():
    scorer, case, items, values, expected = case_items(EXERCISES["Affine"])
    EXERCISES["Affine"].judge_case(values, expected, affine_outcome(values, expected), [], items)
    assert all(i.result.status == "passed" for i in items.values())
    assert scorer.results()[0].score == scorer.results()[0].max_score


def test_a_known_wrong_formula_is_named():
    scorer, case, items, values, expected = case_items(EXERCISES["Affine"])
    mean = values["dout"].mean(axis=0)
    EXERCISES["Affine"].judge_case(values, expected, affine_outcome(values, expected, db=mean), [], items)
    assert items["db"].result.status == "failed" and items["db"].result.misconception == "db-mean"
    assert "1 / the batch size" in items["db"].result.feedback
    assert items["dW"].result.status == "passed"


def test_a_transposed_gradient_fails_on_shape():
    scorer, case, items, values, expected = case_items(EXERCISES["Affine"], 2)  # square W
    EXERCISES["Affine"].judge_case(values, expected, affine_outcome(values, expected, dW=expected["dW"].T), [],
                                   items)
    assert items["dW"].result.status == "failed"
    assert "transpose" in items["dW"].result.feedback


def test_a_backward_that_raises_keeps_the_forward_credit():
    scorer, case, items, values, expected = case_items(EXERCISES["Relu"])
    error = {"type": "NameError", "message": "name 'msk' is not defined",
             "frames": [{"file": "layers.py", "line": 9, "function": "backward", "code": "dout[msk] = 0"}]}
    outcome = Outcome([expected["forward"]], error=error, step=2)
    EXERCISES["Relu"].judge_case(values, expected, outcome, [], items)
    assert items["forward"].result.status == "passed"
    assert items["dx"].result.status == "error" and items["dx"].result.misconception == "undefined-name"
    assert "layers.py, line 9, in backward" in items["dx"].result.feedback


def test_a_forward_that_raises_is_charged_to_forward_only():
    scorer, case, items, values, expected = case_items(EXERCISES["Sigmoid"])
    raised = Raised({"type": "TypeError", "message": "unsupported operand", "frames": []})
    EXERCISES["Sigmoid"].judge_case(values, expected, Outcome([raised, expected["dx"]]), [], items)
    assert items["forward"].result.status == "error" and items["dx"].result.status == "passed"


def test_the_numerical_oracle_speaks_when_the_reference_disagrees():
    exercise = EXERCISES["Affine"]
    scorer, case, items, values, expected = case_items(exercise)
    program_plan = []
    u = checks.unit_direction(np.random.default_rng(0), values["b"].shape)
    program_plan.append(("db", u))
    # the student's own forward: y = x W + b, so the slope along u is <sum(dout), u>
    forward = lambda b: (values["x"].reshape(len(values["x"]), -1) @ values["W"] + b)  # noqa: E731
    pair = (forward(values["b"] + checks.H * u), forward(values["b"] - checks.H * u))
    wrong = np.zeros_like(expected["db"])
    exercise.judge_case(values, expected, affine_outcome(values, expected, db=wrong, numeric=[pair]),
                        program_plan, items)
    assert items["db"].result.status == "failed"
    assert "does not match the numerical gradient of your own forward pass" in items["db"].result.feedback


def test_two_layer_net_right_walk_on_wrong_layers_is_not_charged_twice():
    net = EXERCISES["TwoLayerNet"]
    scorer, case, items, values, expected = case_items(net)
    grads = {k: expected[k] * 1.5 for k in net.params}  # wrong because of the student's layers...
    after = {k: expected["after"][k] * 1.5 for k in net.params}
    own = {k: (grads[k], after[k]) for k in net.params}  # ...but exactly what their layers give
    net.judge_case(values, expected, Outcome([expected["loss"], grads, after]), [], items, own, ["Affine"])
    assert all(items[k].result.status == "passed" for k in net.params)
    assert "only because of your Affine (see that part)" in items["W1"].result.feedback


def test_two_layer_net_without_a_failing_layer_gets_no_excuse():
    """The walk replayed on stand-in layers agrees with a wrong gradient(), but no layer part
    failed: nothing excuses it."""
    net = EXERCISES["TwoLayerNet"]
    scorer, case, items, values, expected = case_items(net)
    grads = {k: expected[k] * 0 for k in net.params}
    own = {k: (grads[k], grads[k]) for k in net.params}
    net.judge_case(values, expected, Outcome([expected["loss"], grads, grads]), [], items, own, [])
    assert all(items[k].result.status == "failed" for k in net.params)


def test_numerical_differentiation_earns_no_gradient_points():
    net = EXERCISES["TwoLayerNet"]
    scorer, case, items, values, expected = case_items(net)
    grads = {k: expected[k] for k in net.params}  # right values, made by finite differences
    counts = {7: {"forward": 180, "forward_max": 60, "backward": 0, "backward_max": 0}}
    net.judge_case(values, expected, Outcome([expected["loss"], grads, expected["after"]], counts=counts),
                   [], items, {}, [], first_step=7)
    assert all(items[k].result.misconception == "numerical-differentiation" and items[k].result.score == 0
               for k in net.params)


def test_two_layer_net_trace_mistake_is_named():
    net = EXERCISES["TwoLayerNet"]
    scorer, case, items, values, expected = case_items(net)
    grads = {k: expected[k] * 2 for k in net.params}
    trace = ("layers['Affine1']", "layers['Relu1']", "layers['Affine2']", "lastLayer")
    net.judge_case(values, expected, Outcome([expected["loss"], grads], trace=trace), [], items, {})
    assert items["W1"].result.misconception == "layers-forward-order"


def test_a_function_exercise_rejects_a_bare_number():
    graph = EXERCISES["ShoppingGraph"]
    scorer, case, items, values, expected = case_items(graph)
    graph.judge_case(values, expected, Outcome([715.0]), items)
    assert all(i.result.status == "failed" for i in items.values())
    assert "should return (price, grads)" in items["price"].result.feedback


def planned(exercise, case_index=0, seed=12345):
    """A deltarule exercise's case: its items, inputs and reference answers."""
    case, items = exercise.plan(Scorer())[case_index]
    return items, *Answers(DELTARULE.reference, seed).get(exercise, case)


def test_a_function_returning_its_value_alone_is_judged_and_its_mistakes_named():
    step = next(e for e in DELTARULE.exercises if not getattr(e, "inputs", True))
    items, values, expected = planned(step)
    step.judge_case(values, expected, Outcome([expected[0].copy()]), items)
    assert [i.result.status for i in items.values()] == ["passed"]
    items, values, expected = planned(step)
    ascent = 2 * values["W"] - expected[0]  # W - Delta W
    step.judge_case(values, expected, Outcome([ascent]), items)
    (item,) = items.values()
    assert item.result.status == "failed" and item.result.misconception == "update-sign"
    assert "gradient ascent" in item.result.feedback
    items, values, expected = planned(step)
    step.judge_case(values, expected, Outcome([(expected[0], {})]), items)
    assert "expected an array of shape" in next(iter(items.values())).result.feedback


def test_a_wrong_net_gradient_is_named_by_the_formula_that_gives_it():
    net = next(e for e in DELTARULE.exercises if hasattr(e, "params"))
    for mistake_id, wrong_keys in (("output-derivative-missing", set(net.params)),
                                   ("relu-derivative-missing", {"W1", "b1", "W2", "b2"})):
        mistake = next(m for m in net.misconceptions if m.id == mistake_id)
        items, values, expected = planned(net)
        grads, after = mistake.wrong(values), mistake.wrong({**values, **expected["weights after"]})
        net.judge_case(values, expected, Outcome([expected["loss"], grads, after]), [], items, {})
        named = {k for k in net.params if items[k].result.misconception == mistake_id}
        assert named == wrong_keys and all(items[k].result.status == "passed" for k in set(net.params) - named)
        assert mistake.title in items["W1"].result.feedback


def test_a_float32_answer_is_judged_relative_to_its_tensors_scale():
    """float32 round-off is relative to the numbers summed, so a small entry may lose 1e-4 of
    itself; a float64 answer keeps the strict per-entry tolerance, and a real error fails both."""
    expected = np.array([1.0, 1e-3, -0.5])
    near = expected + np.array([0.0, 2e-7, 0.0])
    assert checks.compare("g", near.astype(np.float32), expected).ok
    assert "float32's tolerance" in checks.compare("g", near.astype(np.float32), expected).message
    assert not checks.compare("g", near, expected).ok
    assert not checks.compare("g", (expected * 1.001).astype(np.float32), expected).ok


def test_the_layer_protocol_sends_integers_only_where_declared():
    """A loss layer's targets may be integers (0 and 1), its outputs never: ``integer_inputs``."""
    import dataclasses

    mse = next(e for e in DELTARULE.exercises if e.part == "MSELoss")
    assert mse.integer_inputs == ("t",)
    for exercise, kinds in ((mse, {"y": "f", "t": "i"}),
                            (dataclasses.replace(mse, integer_inputs=None), {"y": "i", "t": "i"})):
        checks_ = exercise.protocol.checks(Answers(DELTARULE.reference, 5))
        found = [c for c in checks_ if c.title == "integer inputs"]
        assert found and all({k: c.used[0].inputs[0][k].dtype.kind for k in kinds} == kinds for c in found)


def test_compare_never_broadcasts_and_never_passes_nan():
    assert not checks.compare("x", np.zeros(3), np.zeros((1, 3))).ok
    assert not checks.compare("x", 0.0, np.zeros((4, 5))).ok
    assert not checks.compare("x", np.array([np.nan, 1.0]), np.array([1.0, 1.0])).ok
    assert checks.compare("x", np.array([1.0, 2.0 + 1e-12]), np.array([1.0, 2.0])).ok


def test_directional_verdict_tolerates_round_off_not_a_wrong_entry():
    rng = np.random.default_rng(1)
    grad = rng.standard_normal((5, 4))
    u = checks.unit_direction(rng, grad.shape)
    exact = float(np.sum(grad * u))
    assert checks.directional_verdict("g", grad, [(u, exact + 1e-12, 1e-10)]).ok
    wrong = grad.copy()
    wrong[2, 3] += 0.5
    assert not checks.directional_verdict("g", wrong, [(u, exact, 1e-10)]).ok


def test_scorer_plans_once_and_drops_skipped_items():
    scorer = Scorer()
    first = scorer.plan("P", "a", 2)
    assert scorer.plan("P", "a", 2) is first
    second = scorer.plan("P", "b", 1)
    scorer.drop([second])
    first.passed()
    assert [r.name for r in scorer.results()] == ["a"]


def test_an_unsettled_item_never_awards_points():
    scorer = Scorer()
    scorer.plan("P", "forgotten", 3)
    (result,) = scorer.results()
    assert result.score == 0 and result.status == "error"


@pytest.mark.parametrize("error, expected", [
    ({"type": "TypeError", "message": "unsupported operand type(s) for *: 'numpy.ufunc' and 'float'"},
     "log-not-called"),
    ({"type": "AttributeError", "message": "'SoftmaxWithLoss' object has no attribute 'x'"},
     "undefined-attribute"),
    ({"type": "IndentationError", "message": "unexpected indent"}, "syntax-error"),
    ({"type": "ValueError", "message": "something else"}, None),
])
def test_generic_mistakes_from_exceptions(error, expected):
    found = misconceptions.from_error(error)
    assert (found.id if found else None) == expected


def test_every_declared_misconception_has_a_title_and_a_hint():
    for m in misconceptions.catalogue(BACKPROP.exercises).values():
        assert m.title and m.hint.endswith((".", ")", "`")), m
