"""What the convnet assignment needed from the engine, judged without a worker (pure).

Each test fails without the generic feature it names: cases that grade some quantities
(test mode: forward only), state quantities the protocol does not compare after extra
calls, inputs a layer must leave unchanged, any valid subgradient (tied maxima), blame
for a function a layer calls, value-only functions, float32 round-off whatever dtype
comes back, upstream gradients that are never constant.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import CONVNET, COURSE

from grader.exercises.base import Answers, Outcome
from grader.exercises.layer import _Check, _Use
from grader.judging import checks
from grader.judging.scoring import Scorer

EXERCISES = {e.part: e for e in CONVNET.exercises}
ANSWERS = Answers(CONVNET.reference, 2024)


def case_items(part, name_part):
    exercise = EXERCISES[part]
    scorer = Scorer()
    case, items = next((c, i) for c, i in exercise.plan(scorer) if name_part in c.name)
    values, expected = ANSWERS.get(exercise, case)
    return exercise, case, items, values, expected


def layer_outcome(exercise, expected, **got):
    """What the worker returns for a layer: forward, what backward returned, the attributes."""
    back = got.get("dx", expected.get("dx"))
    return Outcome([got.get("forward", expected["forward"]), back,
                    *(got.get(q, expected.get(q)) for q, _ in exercise.attrs)])


def test_a_test_mode_case_grades_the_forward_pass_only():
    exercise, case, items, values, expected = case_items("BatchNormalization", "test mode, 2-D")
    assert set(items) == {"forward"} and set(expected) == {"forward"}
    assert not exercise.backward_graded(case)
    program, plan = exercise.gather(case, values)
    assert [s["op"] for s in program.steps] == ["new", "call"] and plan == []  # no backward, no probes
    exercise.judge_case(values, expected, Outcome([expected["forward"]]), plan, items)
    assert items["forward"].result.status == "passed"
    per_case = {c.name: sum(c.points(exercise.points).values()) for c in exercise.cases}
    assert exercise.max_points == sum(per_case.values()) + exercise.protocol_points


def test_test_mode_with_the_batch_statistics_is_named():
    exercise, case, items, values, expected = case_items("BatchNormalization", "test mode, 2-D")
    x = values["x"]
    wrong = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 10e-7) * values["gamma"] + values["beta"]
    exercise.judge_case(values, expected, Outcome([wrong]), [], items)
    assert items["forward"].result.misconception == "bn-test-uses-batch-statistics"


def test_the_simplified_batch_norm_backward_is_accepted():
    exercise, case, items, values, expected = case_items("BatchNormalization", "training, 2-D")
    x, dout, gamma, n = values["x"], values["dout"], values["gamma"], len(values["x"])
    std = np.sqrt(x.var(axis=0) + 10e-7)
    xn = (x - x.mean(axis=0)) / std
    dxn = gamma * dout
    simplified = (n * dxn - dxn.sum(axis=0) - xn * (dxn * xn).sum(axis=0)) / (n * std)
    exercise.judge_case(values, expected, layer_outcome(exercise, expected, dx=simplified), [], items)
    assert items["dx"].result.status == "passed", items["dx"].result.feedback


def protocol_check(part, title):
    protocol = EXERCISES[part].protocol
    return protocol, next(c for c in protocol.checks(ANSWERS) if c.title.startswith(title))


def test_running_statistics_are_not_compared_after_a_second_forward():
    """Forward twice moves the running statistics twice: that is no mistake."""
    protocol, check = protocol_check("BatchNormalization", "forward twice")
    assert check.stateless
    exercise = protocol.exercise
    values = check.fresh[0].inputs[0]
    fresh = exercise.expected(CONVNET.reference, values)
    stored = [fresh["forward"], fresh["dx"], fresh["dgamma"], fresh["dbeta"]]
    used = [*stored, fresh["running_mean"] + 1.0, fresh["running_var"] + 1.0]
    assert protocol.judge(check, used, [*stored, fresh["running_mean"], fresh["running_var"]])[0] is None
    other = _Check(check.title, check.mistake, check.used, check.fresh)  # the same, without the flag
    assert "running_mean" in protocol.judge(other, used, [*stored, fresh["running_mean"], fresh["running_var"]])[0]


def test_an_input_changed_in_place_is_the_protocols_mistake():
    protocol, check = protocol_check("BatchNormalization", "x left as given")
    assert check.mistake == "input-changed-in-place" and check.used[0].watch == ("x",)
    x = check.used[0].inputs[0]["x"]
    width = 2 + len(protocol.exercise.attrs)
    assert protocol.judge(check, [None] * width + [x.copy()], [])[0] is None
    why, _ = protocol.judge(check, [None] * width + [x - x.mean(axis=0)], [])
    assert why and "changed the array x it was given, in place" in why


def test_only_the_arrays_training_moves_are_changed_in_place():
    protocol, check = protocol_check("BatchNormalization", "the constructor's arrays changed in place")
    moved, given = check.used[0].moved, check.used[0].inputs[0]
    assert not np.array_equal(moved["gamma"], given["gamma"]) and not np.array_equal(moved["beta"], given["beta"])
    assert moved["running_mean"] is given["running_mean"] and moved["running_var"] is given["running_var"]


def test_any_split_among_tied_maxima_is_a_valid_subgradient():
    exercise, case, items, values, expected = case_items("Pooling", "tied maxima")
    x, dout = values["x"], values["dout"]
    windows = x.reshape(*x.shape[:2], x.shape[2] // 2, 2, x.shape[3] // 2, 2)
    is_max = windows == windows.max(axis=(3, 5), keepdims=True)
    assert (is_max.sum(axis=(3, 5)) > 1).any(), "the case has ties"
    share = is_max / is_max.sum(axis=(3, 5), keepdims=True) * dout[:, :, :, None, :, None]
    equal_split = share.reshape(x.shape)
    exercise.judge_case(values, expected, layer_outcome(exercise, expected, dx=equal_split), [], items)
    assert items["dx"].result.status == "passed", items["dx"].result.feedback
    scorer = Scorer()
    items = exercise.plan(scorer)[2][1]
    to_each = (is_max * dout[:, :, :, None, :, None]).reshape(x.shape)
    exercise.judge_case(values, expected, layer_outcome(exercise, expected, dx=to_each), [], items)
    assert items["dx"].result.misconception == "pool-ties-duplicated"


def test_a_wrong_col2im_is_blamed_not_the_convolution():
    """The student's dx equals their own col2im on the right columns: the convolution is right."""
    exercise, case, items, values, expected = case_items("Convolution", "stride 1")
    wrong = expected["dx"] * 0.5
    exercise.judge_case(values, expected, layer_outcome(exercise, expected, dx=wrong), [], items,
                        own={"dx": wrong}, failed_layers=["col2im"])
    assert items["dx"].result.status == "passed" and "because of your col2im" in items["dx"].result.feedback
    scorer = Scorer()
    items = exercise.plan(scorer)[0][1]
    exercise.judge_case(values, expected, layer_outcome(exercise, expected, dx=wrong), [], items,
                        own={"dx": expected["dx"] * 0.25}, failed_layers=["col2im"])
    assert items["dx"].result.status == "failed"


def test_a_function_returning_an_array_is_judged_on_it():
    exercise = EXERCISES["col2im"]
    scorer = Scorer()
    case, items = exercise.plan(scorer)[0]
    values, expected = ANSWERS.get(exercise, case)
    assert set(items) == {"img"} and expected[1] == {}
    exercise.judge_case(values, expected, Outcome([expected[0]]), items)
    assert items["img"].result.status == "passed"
    scorer = Scorer()
    items = exercise.plan(scorer)[0][1]
    exercise.judge_case(values, expected, Outcome([expected[0][:, :, 1:, :]]), items)
    assert items["img"].result.status == "failed" and "shape" in items["img"].result.feedback


def test_float32_round_off_of_a_cancelling_sum_is_no_mistake():
    """A float32 sum that cancels (a convolution's db) keeps its terms' round-off: two ulps of
    the tensor's largest entry, here on an entry a thousand times smaller - and the answer
    comes back as float64 (a float64 buffer accumulated float32 numbers)."""
    expected = np.array([2.0, 0.001, -1.5])
    value = expected + [0.0, 2 * np.spacing(np.float32(2.0)), 0.0]
    assert checks.compare("db", value, expected, precision="float32").ok
    assert not checks.compare("db", value, expected, rtol=checks.LOW_RTOL).ok  # the floor of float64 answers
    assert not checks.compare("db", expected * [1.0005, 1, 1], expected, precision="float32").ok


@pytest.mark.parametrize("assignment", COURSE.names())
def test_upstream_gradients_are_never_constant(assignment):
    """Batch norm's dx is 0 under a constant dout, and a backward that ignores dout passes."""
    chosen = COURSE.assignment(assignment)
    answers = Answers(chosen.reference, 7)
    for exercise in chosen.exercises:
        for case in exercise.cases:
            dout = answers.get(exercise, case)[0].get("dout")
            if isinstance(dout, np.ndarray) and dout.size > 1:
                assert np.ptp(dout) > 0, (exercise.part, case.name)


def test_a_watching_use_passes_its_inputs_as_they_are():
    """The watched x goes to forward as one array sent once, and comes back after backward."""
    from grader.worker.client import Program

    protocol, check = protocol_check("Dropout", "x left as given")
    program = Program()
    start, end = protocol.gather(program, check.used)
    assert end - start == 2 + len(protocol.exercise.attrs) + 1
    call = next(s for s in program.steps if s["op"] == "call" and s["name"] == "forward")
    watched = program.steps[program.kept[-1]]
    assert watched["op"] == "value" and call["args"][0].tree == {"t": "step", "i": program.kept[-1]}
    assert isinstance(_Use((), watch=("x",)).watch, tuple)


def test_numerical_probes_never_touch_the_graded_layer():
    """Running statistics change on every training forward: the graded layer runs forward once,
    and every numerical probe builds a layer of its own (its running statistics stay its own)."""
    exercise, case, items, values, expected = case_items("BatchNormalization", "training, 2-D")
    program, plan = exercise.gather(case, values)
    layer = next(i for i, s in enumerate(program.steps) if s["op"] == "new")
    forwards = [s for s in program.steps if s["op"] == "call" and s["name"] == "forward"]
    assert len(forwards) == 1 and forwards[0]["target"].tree == {"t": "step", "i": layer}
    probes = [s for s in program.steps if s["op"] == "probe"]
    assert len(probes) == len(plan) == 3 * exercise.numeric_directions  # dx, dgamma, dbeta
