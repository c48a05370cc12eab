"""TwoLayerNet.gradient: forward, then every layer's backward from the last to the first.

The student's net is built with their own layers, so a wrong layer would make the
gradient wrong twice over. The check therefore also replays the correct walk
(lastLayer, Affine2, Relu1, Affine1) on the student's own layer objects: if their
``gradient`` equals that, the method is right and the error belongs to a layer part.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from grader import checks, diagnosis
from grader.exercises.base import Case, Judging, Misconception, Values, case_rng, copy
from grader.exercises.inputs import plausible, sizes
from grader.worker.client import Program, StudentError, clean_error
from grader.worker.inside.protocol import Raised

PARAMS = ("W1", "b1", "W2", "b2")
WALK = ("lastLayer", "layers['Affine2']", "layers['Relu1']", "layers['Affine1']")


def _net(rng, one_hot: bool) -> Values:
    n, (i, h, o) = int(rng.integers(3, 6)), sizes(rng, 3, 3, 8)
    values = {"sizes": (i, h, o), "x": rng.standard_normal((n, i)),
              "W1": rng.normal(0, 0.5, (i, h)), "b1": rng.normal(0, 0.1, h),
              "W2": rng.normal(0, 0.5, (h, o)), "b2": rng.normal(0, 0.1, o)}
    labels = rng.integers(0, o, n)
    while True:  # no ReLU input near its kink; no vanishing class probability (+1e-7 in log)
        hidden = values["x"] @ values["W1"] + values["b1"]
        logits = np.maximum(hidden, 0) @ values["W2"] + values["b2"]
        if np.min(np.abs(hidden)) >= 0.05 and plausible(logits, labels):
            break
        values["x"], labels = rng.standard_normal((n, i)), rng.integers(0, o, n)
    values["t"] = np.eye(o)[labels] if one_hot else labels
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
        net = program.new(self.module, self.cls, *values["sizes"])
        for key in PARAMS:  # in place: the layers hold these very arrays
            program.assign(net, ("params", key), values[key])
        return net

    def expected(self, reference, values: Values) -> dict:
        net = reference[self.module].TwoLayerNet(*values["sizes"])
        for key in PARAMS:
            net.params[key][...] = values[key]
        grads = net.gradient(values["x"].copy(), values["t"].copy())
        return {"loss": np.float64(net.loss(values["x"].copy(), values["t"].copy())), **grads}

    def grade_case(self, worker, case, items, reference, seed) -> None:
        values = case.make(case_rng(seed, self.part, case.name))
        expected = self.expected(reference, values)

        # one round trip: loss, gradient, and the numerical check of the student's own loss
        program = Program()
        net = self.build(program, values)
        program.keep(program.call(net, "loss", values["x"], values["t"], tolerate=True))
        program.keep(program.call(net, "gradient", values["x"], values["t"]))
        plan = self.numeric_plan(program, net, case, values)
        try:
            (loss, grads, *numeric), trace = worker.run(program)
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
        if not isinstance(grads, dict):
            for key in PARAMS:
                items[key].failed(f"TwoLayerNet.gradient should return a dict with keys "
                                  f"{', '.join(PARAMS)}; got {checks.describe(grads)}.")
            return
        mistake = self.from_trace(trace)
        own = None
        for key in PARAMS:
            value, item = grads.get(key), items[key]
            verdict = checks.compare(f"TwoLayerNet.gradient: {key}", value, expected[key],
                                     batch=values["x"].shape[0])
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

    def judge_loss(self, loss, expected, values, items) -> None:
        if isinstance(loss, Raised):
            items["loss"].error(diagnosis.format_error("TwoLayerNet.loss", clean_error(loss.error)))
        else:
            self.judge("loss", loss, expected["loss"], values, items, "TwoLayerNet.loss")

    def numeric_plan(self, program: Program, net, case, values: Values) -> list:
        """Loss at each parameter +- h u (random unit u), perturbed in place in the worker.

        Runs after ``gradient`` in the same program; the net is thrown away after, so
        nothing is restored. Each direction crosses the boundary once.
        """
        rng = case_rng(0, self.part, case.name + "/directions")
        plan = []
        for key in PARAMS:
            u = checks.unit_direction(rng, values[key].shape)
            direction = program.value(u)
            program.axpy(net, ("params", key), checks.H, direction)
            program.keep(program.call(net, "loss", values["x"], values["t"], tolerate=True))
            program.axpy(net, ("params", key), -2 * checks.H, direction)
            program.keep(program.call(net, "loss", values["x"], values["t"], tolerate=True))
            program.axpy(net, ("params", key), checks.H, direction)
            plan.append((key, u))
        return plan

    def numeric_notes(self, plan, outs, grads: dict, items) -> None:
        """Say whether each gradient agrees with the slope of the student's own loss."""
        for k, (key, u) in enumerate(plan):
            pair, grad = outs[2 * k: 2 * k + 2], grads.get(key)
            if len(pair) < 2 or not all(isinstance(v, float) for v in pair) \
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
