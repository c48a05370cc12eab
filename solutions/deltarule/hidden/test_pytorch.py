"""The third oracle: PyTorch's autograd on the same inputs and weights as the reference.

For every exercise and case, the student's answer is compared with what PyTorch computes
in float32 (its default dtype) from the case's inputs. The verdict is a note in the
student's report, never points: a machine without torch grades exactly the same, and
the report says the check was skipped and why.

Tolerance: |yours - PyTorch's| <= TOLERANCE * the largest |entry| of PyTorch's answers for
the case (every quantity of the exercise together). float32 carries ~7 digits, and a
difference such as o - t, or a bias gradient summed over samples of both signs, can
cancel most of them: measured over 300 seeds (tests/test_deltarule_oracles.py) float32
autograd stays within ~1e-5 of that scale of the float64 reference; a wrong formula is
off by 1e-2 or more.
"""
import numpy as np
import pytest

from grader.exercises import FunctionExercise, LayerExercise, NetworkExercise
from grader.worker.client import StudentError, WorkerError

TOLERANCE = 1e-4


def _tensors(torch, values, names, grad=()):
    return [torch.tensor(np.asarray(values[n]), dtype=torch.float32, requires_grad=n in grad) for n in names]


def sse_loss(torch, v):
    y, t = _tensors(torch, v, ("y", "t"), grad=("y",))
    (0.5 * ((t - y) ** 2).sum()).backward()
    return {"dy": y.grad}


def mse_loss(torch, v):
    y, t = _tensors(torch, v, ("y", "t"), grad=("y",))
    torch.nn.MSELoss()(y, t).backward()
    return {"dy": y.grad}


def sigmoid_output(torch, v):
    x, W, b, dout = _tensors(torch, v, ("x", "W", "b", "dout"), grad=("x", "W", "b"))
    torch.sigmoid(x @ W + b).backward(dout)
    return {"dx": x.grad, "dW": W.grad, "db": b.grad}


def delta_rule(torch, v):
    W, x, t = _tensors(torch, v, ("W", "x", "t"), grad=("W",))
    (0.5 * ((t - torch.sigmoid(x @ W)) ** 2).sum()).backward()
    return {"updated W": W.detach() - v["lr"] * W.grad}


def three_layer_net(torch, v):
    """The notes' ``Net`` (fc1, fc2, fc3; relu, relu, sigmoid; nn.MSELoss) with the case's weights."""
    nn, sizes = torch.nn, v["sizes"]
    fcs = [nn.Linear(sizes[i - 1], sizes[i]) for i in range(1, len(sizes))]
    with torch.no_grad():
        for layer, fc in enumerate(fcs, start=1):
            fc.weight.copy_(torch.tensor(v[f"W{layer}"].T))  # nn.Linear stores W transposed
            fc.bias.copy_(torch.tensor(v[f"b{layer}"]))
    x, t = _tensors(torch, v, ("x", "t"))
    o = torch.sigmoid(fcs[2](torch.relu(fcs[1](torch.relu(fcs[0](x))))))
    nn.MSELoss()(o, t).backward()
    grads = {}
    for layer, fc in enumerate(fcs, start=1):
        grads[f"W{layer}"], grads[f"b{layer}"] = fc.weight.grad.T, fc.bias.grad
    return grads


ORACLES = {"SSELoss": sse_loss, "MSELoss": mse_loss, "SigmoidOutput": sigmoid_output, "DeltaRule": delta_rule,
           "ThreeLayerNet": three_layer_net}


def students_answers(exercise, student, v) -> dict:
    """What the student's code returns for the case, through the sandboxed worker."""
    module = getattr(student, exercise.module)
    if isinstance(exercise, LayerExercise):
        layer = getattr(module, exercise.cls)(*(v[n] for n in exercise.init))
        layer.forward(*(v[n] for n in exercise.forward))
        back = layer.backward(*(v[n] for n in exercise.backward))
        found = {}
        for name, quantity in exercise.quantities.items():
            kind, key = quantity.source
            found[name] = getattr(layer, key) if kind == "attr" else back if key is None else back[key]
        return found
    if isinstance(exercise, NetworkExercise):
        net = getattr(module, exercise.cls)(*exercise.build(v))
        for key in exercise.params:
            net.assign(("params", key), v[key])
        return getattr(net, exercise.gradient)(v["x"], v["t"])
    assert isinstance(exercise, FunctionExercise) and not exercise.inputs
    return {exercise.value: getattr(module, exercise.function)(**v)}


def disagreement(yours: dict, torchs: dict) -> str:
    """'' when every quantity agrees within TOLERANCE; else what differs, and by how much."""
    said = {name: value.detach().double().numpy() for name, value in torchs.items()}
    scale = max(max(float(np.max(np.abs(v))) for v in said.values()), float(np.finfo(np.float32).tiny))
    for name, expected in said.items():
        got = yours.get(name) if isinstance(yours, dict) else None
        if not isinstance(got, np.ndarray) or got.shape != expected.shape or got.dtype.kind not in "iuf":
            return f"{name} could not be compared (not an array of shape {expected.shape})"
        off = float(np.max(np.abs(got - expected))) / scale
        if not off <= TOLERANCE:
            return f"{name} differs from PyTorch's by {off:.2g} of the largest entry"
    return ""


def test_pytorch_agrees(assignment, answers, student, notes):
    try:
        import torch
    except ImportError as exc:
        pytest.skip(f"the PyTorch check (a third oracle: notes, no points) did not run: torch cannot be "
                    f"imported on the grading machine ({exc})")
    torch.set_num_threads(1)
    agree, differ = [], []
    for exercise in assignment.exercises:
        said = []
        for case in exercise.cases:
            values, _ = answers.get(exercise, case)
            try:
                yours = students_answers(exercise, student, values)
            except (StudentError, WorkerError) as exc:
                said.append(f"not compared in case '{case.name}' (your code raised or stopped: {exc})")
                continue
            if why := disagreement(yours, ORACLES[exercise.part](torch, values)):
                said.append(f"{why} (case '{case.name}')")
        (differ if said else agree).append(f"{exercise.part}: {'; '.join(said)}" if said else exercise.part)
    lines = [f"PyTorch check (autograd in float32 on the same inputs and weights, within {TOLERANCE:.0e} of "
             "the largest entry; notes only, no points):"]
    if agree:
        lines.append(f"  agrees with yours: {', '.join(agree)}")
    lines += [f"  disagrees: {line}" for line in differ]
    notes.append("\n".join(lines))
