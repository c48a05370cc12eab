"""The deltarule assignment's oracles, without a sandbox: its inputs catch every wrong
formula over many seeds, PyTorch (the third oracle) agrees with the float64 reference
well inside its float32 tolerance, and the self-check's copy of the notes' worked
example is what ``torch.manual_seed(13)`` really draws.
"""
from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import DELTARULE

from grader.exercises import FunctionExercise
from grader.exercises.base import Answers, copy
from grader.judging import checks

SEEDS = range(300)


def load(path: Path, name: str):
    """A module of the assignment folder, loaded by path (its siblings importable meanwhile)."""
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))


def answers_of(exercise, expected) -> dict:
    """The reference's answers by quantity name, whatever the kind of exercise."""
    return {exercise.value: expected[0]} if isinstance(exercise, FunctionExercise) else expected


def each_case(seeds=SEEDS):
    for seed in seeds:
        answers = Answers(DELTARULE.reference, seed)
        for exercise in DELTARULE.exercises:
            for case in exercise.cases:
                values, expected = answers.get(exercise, case)
                yield seed, exercise, case, values, answers_of(exercise, expected)


def test_no_wrong_formula_passes_on_any_seed():
    """Each declared mistake changes some checked answer beyond the tolerance in some case of
    its exercise, for every course seed: batch >= 3, N != n, square and rectangular
    weights, ReLU inputs off their kinks and on both sides, unsaturated sigmoids."""
    caught: dict[tuple, bool] = {}
    for seed, exercise, _, values, expected in each_case():
        for index, mistake in enumerate(m for m in exercise.misconceptions if m.wrong):
            key = (seed, exercise.part, index, mistake.id)
            try:
                wrong = mistake.wrong(copy(values))
            except ValueError:  # W for W^T on rectangular weights: the student's code raises too
                differs = True
            else:
                differs = any(not checks.compare(q, np.asarray(w), expected[q]).ok for q, w in wrong.items())
            caught[key] = caught.get(key, False) or differs
    missed = [key for key, ok in caught.items() if not ok]
    assert len(caught) > 1000 and not missed, missed[:10]


def in_float32(exercise, values) -> dict:
    """The reference's answers computed in float32 from float32 inputs (a correct student
    who works in float32, as PyTorch does by default)."""
    low = {k: (v.astype(np.float32) if isinstance(v, np.ndarray) else np.float32(v) if isinstance(v, float) else v)
           for k, v in values.items()}
    module = DELTARULE.reference[exercise.module]
    if isinstance(exercise, FunctionExercise):
        return {exercise.value: getattr(module, exercise.function)(**low)}
    if hasattr(exercise, "params"):
        net = getattr(module, exercise.cls)(*exercise.build(values))
        net.params.update({k: low[k] for k in exercise.params})
        return {"loss": net.loss(low["x"], low["t"]), **net.gradient(low["x"], low["t"])}
    layer = getattr(module, exercise.cls)(*(low[n] for n in exercise.init))
    found = {"forward": layer.forward(*(low[n] for n in exercise.forward))}
    back = layer.backward(*(low[n] for n in exercise.backward))
    for name, quantity in exercise.quantities.items():
        kind, key = quantity.source
        found[name] = getattr(layer, key) if kind == "attr" else back if key is None else back[key]
    return found


def test_a_correct_float32_answer_is_never_failed_and_a_wrong_one_never_passes():
    """float32 answers are judged with float32's tolerance (relative to each tensor's largest
    entry): over every seed the reference run in float32 passes every check, and every
    declared mistake, computed in float32 too, still fails one."""
    caught: dict[tuple, bool] = {}
    for seed, exercise, case, values, expected in each_case():
        judged = [(values, expected)]
        if "after" in expected:  # a net: again after the grader's training step
            judged.append(({**values, **expected["weights after"]}, expected["after"]))
        for inputs, answers in judged:
            for name, got in in_float32(exercise, inputs).items():
                assert np.asarray(got).dtype == np.float32, (exercise.part, name)
                verdict = checks.compare(name, np.asarray(got), answers[name]) if name in answers else None
                assert verdict is None or verdict.ok, (seed, exercise.part, case.name, verdict.message)
        for index, mistake in enumerate(m for m in exercise.misconceptions if m.wrong):
            try:
                wrong = mistake.wrong(copy(values))
            except ValueError:
                differs = True
            else:
                differs = any(not checks.compare(q, np.asarray(w, dtype=np.float32), expected[q]).ok
                              for q, w in wrong.items())
            key = (seed, exercise.part, index)
            caught[key] = caught.get(key, False) or differs
    assert not [key for key, ok in caught.items() if not ok]


def test_the_cases_keep_away_from_kinks_and_saturation():
    net = next(e for e in DELTARULE.exercises if e.part == "ThreeLayerNet")
    worst_kink, worst_sigmoid = np.inf, 0.0
    for _, exercise, _, values, _ in each_case(range(100)):
        if exercise is net:
            a1, a2, o = _forward(values)
            worst_kink = min(worst_kink, np.min(np.abs(a1)), np.min(np.abs(a2)))
            worst_sigmoid = max(worst_sigmoid, np.max(np.abs(o - 0.5)))
            assert values["x"].shape[0] >= 3
    assert worst_kink >= 0.05 and worst_sigmoid <= 0.45


def _forward(v):
    a1 = v["x"] @ v["W1"] + v["b1"]
    a2 = np.maximum(a1, 0) @ v["W2"] + v["b2"]
    return a1, a2, 1 / (1 + np.exp(-(np.maximum(a2, 0) @ v["W3"] + v["b3"])))


# --- the third oracle -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="module")
def oracle():
    return load(DELTARULE.hidden / "test_pytorch.py", "deltarule_pytorch_oracle")


def test_pytorch_agrees_with_the_float64_reference_far_inside_its_tolerance(torch, oracle):
    """float32 autograd vs the float64 reference over many seeds: the note's tolerance has
    a margin of 10 or more, so a correct answer (float64 or float32) is never reported as
    disagreeing."""
    worst = 0.0
    for _, exercise, _, values, expected in each_case():
        said = {k: v.detach().double().numpy() for k, v in oracle.ORACLES[exercise.part](torch, values).items()}
        scale = max(np.max(np.abs(v)) for v in said.values())
        worst = max(worst, *(float(np.max(np.abs(said[k] - expected[k]))) / scale for k in said))
    assert worst < oracle.TOLERANCE / 10, worst


def test_pytorch_tells_a_wrong_formula_from_a_right_one(torch, oracle):
    """What the note says: agreement for the reference's answers, disagreement for each mistake."""
    for _, exercise, _, values, expected in each_case(range(20)):
        said = oracle.ORACLES[exercise.part](torch, values)
        assert oracle.disagreement(expected, said) == ""
        scale = max(np.max(np.abs(expected[q])) for q in said)
        for mistake in (m for m in exercise.misconceptions if m.wrong):
            try:
                wrong = {**expected, **mistake.wrong(copy(values))}
            except ValueError:  # raises on these shapes: nothing to compare
                continue
            if any(np.max(np.abs(wrong[q] - expected[q])) > 10 * oracle.TOLERANCE * scale for q in said):
                assert oracle.disagreement(wrong, said), (exercise.part, mistake.id)


@contextmanager
def seeded(torch, seed):
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def test_the_self_checks_worked_example_is_what_torch_manual_seed_13_draws(torch):
    """The notes' Net after torch.manual_seed(13), then torch.randn(4): the constants students
    get in their self-check (which cannot need torch)."""
    selfcheck = load(DELTARULE.folder / "test_deltarule.py", "deltarule_selfcheck")
    nn = torch.nn
    with seeded(torch, 13):
        fc1, fc2, fc3 = nn.Linear(4, 5), nn.Linear(5, 2), nn.Linear(2, 1)
        x = torch.randn(4)
    for fc, weight, bias in ((fc1, selfcheck.FC1_WEIGHT, selfcheck.FC1_BIAS),
                             (fc2, selfcheck.FC2_WEIGHT, selfcheck.FC2_BIAS),
                             (fc3, selfcheck.FC3_WEIGHT, selfcheck.FC3_BIAS)):
        assert fc.weight.tolist() == weight and fc.bias.tolist() == bias
    assert x.tolist() == selfcheck.INPUT
    o = torch.sigmoid(fc3(torch.relu(fc2(torch.relu(fc1(x))))))
    nn.MSELoss()(o, torch.tensor(selfcheck.TARGET)).backward()
    torch.set_printoptions(sci_mode=False)
    for name, printed in selfcheck.PRINTED.items():
        grad = (fc2 if name.startswith("fc2") else fc3).weight.grad
        assert np.allclose(grad.numpy(), printed, atol=5e-5), (name, grad)
