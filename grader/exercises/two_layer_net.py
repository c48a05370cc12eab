"""TwoLayerNet.gradient: forward, then every layer's backward from the last to the first.

The student's net is built with their own layers, so a wrong layer would make the
gradient wrong twice over. The check therefore also replays the correct walk
(lastLayer, Affine2, Relu1, Affine1) on the student's own layer objects: if their
``gradient`` equals that, the method is right and the error belongs to a layer part.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from grader import checks, diagnosis
from grader.exercises.base import Case, Judging, Misconception, Values, case_rng, copy
from grader.exercises.inputs import plausible, sizes
from grader.worker.client import Program, StudentError, clean_error
from grader.worker.inside import protocol
from grader.worker.inside.protocol import Raised

PARAMS = ("W1", "b1", "W2", "b2")
WALK = ("lastLayer", "layers['Affine2']", "layers['Relu1']", "layers['Affine1']")


@functools.lru_cache(maxsize=64)
def _direction(seed: int, shape: tuple) -> np.ndarray:
    """The grader's copy of a direction the worker makes; the same for every student."""
    u = protocol.direction(seed, shape)
    u.flags.writeable = False
    return u


def book_params(sizes: tuple[int, int, int], seed: int, std: float) -> dict[str, np.ndarray]:
    """The weights the book's ``__init__`` draws after ``np.random.seed(seed)``.

    The worker seeds numpy the same way before building the student's net, so the
    weights never have to cross the sandbox boundary.
    """
    rs, (i, h, o) = np.random.RandomState(seed), sizes
    w1 = std * rs.randn(i, h)
    return {"W1": w1, "b1": np.zeros(h), "W2": std * rs.randn(h, o), "b2": np.zeros(o)}


def _net(rng, one_hot: bool) -> Values:
    n, sizes_ = int(rng.integers(3, 6)), tuple(sizes(rng, 3, 3, 8))
    values = {"sizes": sizes_, "std": 0.5, "init_seed": int(rng.integers(2**31)),
              "x": rng.standard_normal((n, sizes_[0]))}
    values.update(book_params(sizes_, values["init_seed"], values["std"]))
    labels = rng.integers(0, sizes_[2], n)
    while True:  # no ReLU input near its kink; no vanishing class probability (+1e-7 in log)
        hidden = values["x"] @ values["W1"] + values["b1"]
        logits = np.maximum(hidden, 0) @ values["W2"] + values["b2"]
        if np.min(np.abs(hidden)) >= 0.05 and plausible(logits, labels):
            break
        values["x"], labels = rng.standard_normal((n, sizes_[0])), rng.integers(0, sizes_[2], n)
    values["t"] = np.eye(sizes_[2])[labels] if one_hot else labels
    return values


@dataclass
class NetExercise(Judging):
    part: str = "TwoLayerNet"
    cls: str = "TwoLayerNet"
    module: str = "two_layer_net"
    file: str = "two_layer_net.py"
    points: dict = field(default_factory=lambda: {"loss": 1, "W1": 2, "b1": 1, "W2": 2, "b2": 1})
    cases: list = field(default_factory=lambda: [
        Case("class-index labels", lambda rng: _net(rng, False)),
        Case("one-hot labels", lambda rng: _net(rng, True))])
    misconceptions: list = field(default_factory=lambda: [
        Misconception("lastLayer-skipped", "lastLayer.backward skipped",
                      "The walk starts at the loss: dout = self.lastLayer.backward(1), then the layers.",
                      trace=lambda t: bool(t) and "lastLayer" not in t),
        Misconception("layers-forward-order", "layers walked in forward order",
                      "Backpropagation visits the layers in *reverse*: Affine2, Relu1, then Affine1.",
                      trace=lambda t: [s for s in t if s.startswith("layers[")][:1] == [WALK[3]]),
    ])

    @property
    def max_points(self) -> float:
        return sum(self.points.values()) * len(self.cases)

    def build(self, program: Program, values: Values):
        """The student's net with the case's weights: drawn by their own ``__init__``."""
        program.seed(values["init_seed"])
        return program.new(self.module, self.cls, *values["sizes"], values["std"])

    def actual_params(self, worker, values: Values) -> dict[str, np.ndarray] | None:
        """The weights the student's ``__init__`` really drew, when they differ from the book's."""
        program = Program()
        net = self.build(program, values)
        program.keep(*(program.get(net, "params", key, optional=True) for key in PARAMS))
        try:
            got, _ = worker.run(program)
        except StudentError:
            return None
        actual = dict(zip(PARAMS, got, strict=True))
        if not all(isinstance(actual[k], np.ndarray) and actual[k].shape == values[k].shape
                   and actual[k].dtype.kind == "f" for k in PARAMS):
            return None
        same = all(np.array_equal(actual[k], values[k]) for k in PARAMS)
        return None if same else actual

    def expected(self, reference, values: Values) -> dict:
        net = reference[self.module].TwoLayerNet(*values["sizes"], 0.0)
        for key in PARAMS:
            net.params[key][...] = values[key]
        grads = net.gradient(values["x"].copy(), values["t"].copy())
        return {"loss": np.float64(net.loss(values["x"].copy(), values["t"].copy())), **grads}

    def grade_case(self, worker, case, items, reference, seed) -> None:
        values, expected = self.prepared(case, reference, seed)

        # one round trip: loss, gradient, and the numerical check of the student's own loss
        program = Program()
        net = self.build(program, values)
        x, t = program.value(values["x"]), program.value(values["t"])  # sent once, used 10 times
        program.keep(program.call(net, "loss", x, t, tolerate=True))
        program.keep(program.call(net, "gradient", x, t))
        plan = self.numeric_plan(program, net, case, (x, t), values)
        init_note = ""
        try:
            (loss, grads, *numeric), trace = worker.run(program)
            verdicts = self.verdicts(grads, expected, values)
            if not (all(v.ok for v in verdicts.values()) and self.loss_right(loss, expected)):
                actual = self.actual_params(worker, values)
                if actual is not None:  # their __init__ draws other weights: judge with those
                    values = {**values, **actual}
                    expected = self.expected(reference, values)
                    verdicts = self.verdicts(grads, expected, values)
                    init_note = ("Your __init__ draws different weights from the book's; "
                                 "you were graded with your own weights.")
        except StudentError as exc:
            if exc.partial:
                self.judge_loss(exc.partial[0], expected, values, items)
            mistake = self.from_trace(exc.trace) or self.diagnose_error(exc.error, values)
            text = diagnosis.format_error("TwoLayerNet.gradient", exc.error)
            for key in PARAMS:
                items[key].error(text + (f"\n{mistake.text()}" if mistake else ""),
                                 misconception=mistake.id if mistake else None)
            return
        self.judge_loss(loss, expected, values, items)
        if init_note:
            items["loss"].result.feedback += "\n" + init_note
        if not isinstance(grads, dict):
            for key in PARAMS:
                items[key].failed(f"TwoLayerNet.gradient should return a dict with keys "
                                  f"{', '.join(PARAMS)}; got {checks.describe(grads)}.")
            return
        mistake = self.from_trace(trace)
        own = None
        for key in PARAMS:
            value, item, verdict = grads.get(key), items[key], verdicts[key]
            if verdict.ok:
                item.passed(verdict.message)
                continue
            if own is None:
                own = self.own_layers_walk(worker, values) or {}
            if not mistake and key in own and checks.compare("", value, own[key]).ok:
                item.passed(f"TwoLayerNet.gradient: {key}: your gradient() walks the layers correctly; "
                            "the value differs from the true gradient only because of your layers "
                            "(see their parts).")
                continue
            item.failed(verdict.message + (f"\n{mistake.text()}" if mistake else ""),
                        mistake.id if mistake else None)
        self.numeric_notes(plan, numeric, grads, items)

    @staticmethod
    def verdicts(grads, expected, values) -> dict[str, checks.Verdict]:
        """Each gradient judged once against the reference (None when grads is no dict)."""
        found = grads if isinstance(grads, dict) else {}
        return {k: checks.compare(f"TwoLayerNet.gradient: {k}", found.get(k), expected[k],
                                  batch=values["x"].shape[0]) for k in PARAMS}

    @staticmethod
    def loss_right(loss, expected) -> bool:
        return not isinstance(loss, Raised) and checks.compare("", loss, expected["loss"]).ok

    def judge_loss(self, loss, expected, values, items) -> None:
        if isinstance(loss, Raised):
            items["loss"].error(diagnosis.format_error("TwoLayerNet.loss", clean_error(loss.error)))
        else:
            self.judge("loss", loss, expected["loss"], values, items, "TwoLayerNet.loss")

    def numeric_plan(self, program: Program, net, case, data, values: Values) -> list:
        """Loss at each parameter +- h u (random unit u), perturbed in place in the worker
        and restored; runs after ``gradient`` in the same program. Only each direction's
        seed crosses the boundary, and one step per parameter."""
        rng = case_rng(0, self.part, case.name + "/directions")
        plan = []
        for key in PARAMS:
            seed = int(rng.integers(2**31))
            program.keep(program.slope(net, ("params", key), seed, checks.H, "loss", *data))
            plan.append((key, _direction(seed, values[key].shape)))
        return plan

    def numeric_notes(self, plan, outs, grads: dict, items) -> None:
        """Say whether each gradient agrees with the slope of the student's own loss."""
        for (key, u), pair in zip(plan, outs, strict=False):
            grad = grads.get(key)
            if not isinstance(pair, tuple) or len(pair) != 2 or not all(isinstance(v, float) for v in pair) \
                    or not isinstance(grad, np.ndarray) or grad.shape != u.shape \
                    or not np.all(np.isfinite(grad)):
                continue
            slope = (pair[0] - pair[1]) / (2 * checks.H)
            noise = checks.slope_noise(*pair)
            verdict = checks.directional_verdict(f"Your {key}", grad, [(u, slope, noise)])
            item = items[key]
            if item.result.status != "passed":
                item.result.feedback += "\n" + verdict.message
            elif not verdict.ok:
                item.result.feedback += "\nNote for the instructor: " + verdict.message

    def from_trace(self, trace: list[str]):
        for m in self.misconceptions:
            if m.trace and m.trace(trace):
                return m
        return None

    def own_layers_walk(self, worker, values: Values) -> dict | None:
        """The correct backward walk, replayed by the grader on the student's own layers."""
        program = Program()
        net = self.build(program, values)
        program.call(net, "loss", copy(values)["x"], values["t"])
        dout = program.call(program.get(net, "lastLayer"), "backward")
        for name in ("Affine2", "Relu1", "Affine1"):
            dout = program.call(program.get(net, "layers", name), "backward", dout)
        refs = [program.get(net, "layers", layer, attr) for layer in ("Affine1", "Affine2")
                for attr in ("dW", "db")]
        program.keep(*refs)
        try:
            got, _ = worker.run(program)
        except StudentError:
            return None
        return dict(zip(("W1", "b1", "W2", "b2"), got, strict=True))


EXERCISE = NetExercise()
