"""A network's ``gradient(x, t)``: forward, then every layer's backward from the last one.

What a ``gradient()`` must honour, checked on every case:

- the weights are the grader's: written into ``net.params`` in place after the student's
  ``__init__`` (a net that only works with its own draw, or returns the closed form at
  zero weights, does not pass);
- it runs on a freshly built net, with no ``loss()`` called before it (it runs its own
  forward pass);
- the net follows ``params`` as training does: after a step ``params -= lr * grads``
  made in place, ``gradient()`` is right at the new weights too;
- it is backpropagation: the worker counts each layer object's ``forward`` calls during
  ``gradient()``, and one that runs the forward pass over and over is numerical
  differentiation, which earns no gradient points.

The student's net is built with their own layers, so a wrong layer makes the gradient
wrong twice over. When a layer part this exercise ``depends`` on fails its own checks,
the correct walk (declared by the assignment: which objects' ``backward`` to call, in
order, and where each gradient is read afterwards) is replayed on the student's own
layer objects; if their ``gradient()`` equals that, the method is right and the error is
blamed on the layer, with this part's message pointing there.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from grader.exercises.base import Answers, Case, Declared, Outcome, Values, case_rng, copy
from grader.judging import checks
from grader.judging.misconceptions import PROTOCOL, Misconception, format_error
from grader.judging.scoring import Scorer
from grader.worker.client import Program, clean_error
from grader.worker.inside import protocol
from grader.worker.inside.protocol import Raised

MAX_FORWARDS = 3  # forward calls of one layer object in one gradient(): a forward pass (or three)


@functools.lru_cache(maxsize=64)
def _direction(seed: int, shape: tuple) -> np.ndarray:
    """The grader's copy of a direction the worker makes; the same for every student."""
    u = protocol.direction(seed, shape)
    u.flags.writeable = False
    return u


@dataclass
class NetworkExercise(Declared):
    part: str
    cls: str
    module: str
    params: Sequence[str]                      # the keys of ``net.params``
    build: Callable[[Values], tuple]           # the constructor's arguments for a case
    points: dict[str, float]                   # "loss" and one entry per parameter, per case
    cases: Sequence[Case]
    misconceptions: Sequence[Misconception] = ()  # named by a wrong walk (trace) or a wrong gradient (wrong)
    seed_key: str | None = None                # np.random.seed(values[seed_key]) before constructing
    walk: Sequence[tuple[str, ...]] = ()       # the correct backward walk: attribute paths, last layer first
    walk_grads: dict[str, tuple[str, ...]] = field(default_factory=dict)  # param -> its gradient after the walk
    depends: Sequence[str] = ()                # the parts of the layers the net is built from
    loss: str = "loss"
    gradient: str = "gradient"
    step_size: float = 0.1                     # the in-place training step between the two gradients

    # -- the reference side --------------------------------------------------------------------
    def construct(self, program: Program, values: Values, weights: dict | None = None):
        """The student's net, built by their own ``__init__``, then given the grader's weights
        in place (``weights``, default the case's)."""
        if self.seed_key:
            program.seed(values[self.seed_key])
        net = program.new(self.module, self.cls, *self.build(values))
        self.set_weights(program, net, weights or {k: values[k] for k in self.params})
        return net

    def set_weights(self, program: Program, net, weights: dict) -> None:
        for key in self.params:
            program.assign(net, ("params", key), weights[key])

    def stepped(self, values: Values, grads: dict) -> dict[str, np.ndarray]:
        """The weights after one training step from the case's: ``W - step_size * dW``."""
        return {k: values[k] - self.step_size * grads[k] for k in self.params}

    def expected(self, reference, values: Values, case: Case | None = None) -> dict:
        """Loss and gradients at the case's weights, and the gradients after the step."""
        net = getattr(reference[self.module], self.cls)(*self.build(values))
        for key in self.params:
            net.params[key][...] = values[key]
        grads = getattr(net, self.gradient)(values["x"].copy(), values["t"].copy())
        out = {"loss": np.float64(getattr(net, self.loss)(values["x"].copy(), values["t"].copy())),
               **{k: np.array(grads[k], dtype=np.float64) for k in self.params}}
        after = self.stepped(values, out)
        for key in self.params:
            net.params[key][...] = after[key]
        grads = getattr(net, self.gradient)(values["x"].copy(), values["t"].copy())
        out["after"] = {k: np.array(grads[k], dtype=np.float64) for k in self.params}
        out["weights after"] = after
        return out

    # -- gather --------------------------------------------------------------------------------
    def gather(self, case: Case, values: Values, expected: dict | None = None) -> tuple[Program, list, int]:
        """The case's round trip: the loss, the gradient of a fresh net, the loss probes, a
        training step, the gradient again; then the probes' plan and the first gradient's step."""
        program = Program()
        x, t = program.value(values["x"]), program.value(values["t"])  # sent once, used many times
        loss = program.call(self.construct(program, values), self.loss, x, t, tolerate=True)
        net = self.construct(program, values)
        first = program.call(net, self.gradient, x, t, count=True)     # a fresh net: no loss() before
        program.keep(loss, first)
        plan = self.numeric_plan(program, net, case, (x, t), values)   # at the case's weights, restored
        self.set_weights(program, net, expected["weights after"])      # a training step, in place
        program.keep(program.call(net, self.gradient, x, t))
        return program, plan, program.index(first)

    def grade_case(self, worker, case, items, answers: Answers, scorer: Scorer | None = None,
                   gathered: tuple | None = None) -> None:
        values, expected = answers.get(self, case)
        program, plan, first = gathered or self.gather(case, values, expected)
        outcome = Outcome.of(worker, program)
        layers = self.failed_layers(scorer)
        own = self.own_layers_walk(worker, values, expected) if layers and self.wrong(outcome, expected) else None
        self.judge_case(values, expected, outcome, plan, items, own or {}, layers, first)

    def wrong(self, outcome: Outcome, expected) -> bool:
        """Some gradient is wrong (and no exception or trace mistake explains it already)."""
        if outcome.error is not None or self.from_trace(outcome.trace):
            return False
        _, first, *rest = outcome.values
        return not all(v.ok for v in self.verdicts(first, expected).values()) or \
            not all(v.ok for v in self.verdicts(rest[-1] if rest else None, expected["after"]).values())

    # -- judge (pure) ----------------------------------------------------------------------
    def judge_case(self, values: Values, expected: dict, outcome: Outcome, plan: list, items,
                   own: dict, failed_layers: Sequence[str] = (), first_step: int = 0) -> None:
        """Settle the case's items from what came back, the call counts of the first
        ``gradient()`` (step ``first_step``) and the walk replayed on the student's layers (``own``)."""
        counts = outcome.counts.get(first_step)
        if outcome.error is not None:
            self.settle_error(outcome, values, expected, items, first_step)
            return
        loss, grads, *numeric = outcome.values
        after = numeric.pop() if numeric else None
        self.judge_loss(loss, expected, values, items)
        if not isinstance(grads, dict):
            for key in self.params:
                items[key].failed(f"{self.cls}.{self.gradient} should return a dict with keys "
                                  f"{', '.join(self.params)}; got {checks.describe(grads)}.")
            return
        if counts and counts["forward_max"] > MAX_FORWARDS:
            mistake = PROTOCOL["numerical-differentiation"]
            for key in self.params:
                items[key].failed(f"{self.cls}.{self.gradient} ran a layer's forward {counts['forward_max']} "
                                  f"times for one gradient: that is numerical differentiation, not "
                                  f"backpropagation, and earns no gradient points.\n{mistake.text()}", mistake.id)
            return
        mistake = self.from_trace(outcome.trace)
        first, second = self.verdicts(grads, expected), self.verdicts(after, expected["after"])
        for key in self.params:
            item = items[key]
            if first[key].ok and second[key].ok:
                item.passed(first[key].message)
            elif not mistake and failed_layers and own.get(key) is not None \
                    and checks.compare("", grads.get(key), own[key][0]).ok \
                    and isinstance(after, dict) and checks.compare("", after.get(key), own[key][1]).ok:
                where = "that part" if len(failed_layers) == 1 else "those parts"
                item.passed(f"{self.cls}.{self.gradient}: {key}: your {self.gradient}() walks the layers "
                            f"correctly; the value differs from the true gradient only because of your "
                            f"{', '.join(failed_layers)} (see {where}).")
            elif first[key].ok:
                stale = PROTOCOL["stale-params"]
                item.failed(f"{self.cls}.{self.gradient}: {key} is right for the first weights, but after a "
                            f"training step changed net.params in place it is not:\n{second[key].message}\n"
                            f"{stale.text()}", stale.id)
            else:
                named = mistake or self.diagnose_value(key, grads.get(key), values)
                item.failed(first[key].message + (f"\n{named.text()}" if named else ""),
                            named.id if named else None)
        self.numeric_notes(plan, numeric, grads, items)

    def settle_error(self, outcome: Outcome, values: Values, expected: dict, items, first_step: int) -> None:
        """The student's code raised: building the net (or taking the grader's weights), in the
        first ``gradient()`` (a fresh net), or in the one after the training step."""
        mistake = self.from_trace(outcome.trace) or self.diagnose_error(outcome.error, values)
        hint = f"\n{mistake.text()}" if mistake else ""
        mid = mistake.id if mistake else None
        if outcome.step < first_step:
            text = format_error(f"building {self.cls}, then writing the weights into net.params[...]",
                                outcome.error)
            for item in items.values():
                item.error(text + hint, misconception=mid)
            return
        self.judge_loss(outcome.values[0], expected, values, items)
        if len(outcome.values) < 2:
            message = outcome.error.get("message", "")
            # what a forward pass sets, missing, while loss() alone works: gradient() skipped it
            if outcome.error.get("type") in ("AttributeError", "TypeError") and \
                    ("None" in message or "has no attribute" in message) and \
                    not isinstance(outcome.values[0], Raised):
                mistake = PROTOCOL["gradient-without-forward"]
                hint, mid = f"\nIt ran on a freshly built net.\n{mistake.text()}", mistake.id
            text = format_error(f"{self.cls}.{self.gradient}", outcome.error)
            for key in self.params:
                items[key].error(text + hint, misconception=mid)
            return
        text = format_error(f"{self.cls}.{self.gradient}, after a training step changed net.params in place",
                            outcome.error)
        for key in self.params:
            items[key].error(text + hint, misconception=mid)

    def verdicts(self, grads, expected) -> dict[str, checks.Verdict]:
        """Each gradient judged once against the reference; a missing key is named."""
        found = grads if isinstance(grads, dict) else {}
        out = {}
        for k in self.params:
            label = f"{self.cls}.{self.gradient}: {k}"
            if k not in found and isinstance(grads, dict):
                keys = ", ".join(repr(str(key)) for key in found) or "none"
                out[k] = checks.Verdict(False, f"{label}: the dict {self.gradient}() returned has no key {k!r} "
                                               f"(its keys: {keys}).")
            else:
                out[k] = checks.compare(label, found.get(k), expected[k], batch=None)
        return out

    def judge_loss(self, loss, expected, values, items) -> None:
        if isinstance(loss, Raised):
            items["loss"].error(format_error(f"{self.cls}.{self.loss}", clean_error(loss.error)))
        else:
            self.judge("loss", loss, expected["loss"], values, items, f"{self.cls}.{self.loss}")

    # -- the second oracle: the slope of the student's own loss ------------------------------
    def numeric_plan(self, program: Program, net, case, data, values: Values) -> list:
        """Loss at each parameter +- h u (random unit u), perturbed in place in the worker
        and restored; runs after ``gradient`` in the same program. Only each direction's
        seed crosses the boundary, and one step per parameter."""
        rng = case_rng(0, self.part, case.name + "/directions")
        plan = []
        for key in self.params:
            seed = int(rng.integers(2**31))
            program.keep(program.slope(net, ("params", key), seed, checks.H, self.loss, *data))
            plan.append((key, _direction(seed, values[key].shape)))
        return plan

    def numeric_notes(self, plan, outs, grads: dict, items) -> None:
        """Say whether each gradient agrees with the slope of the student's own loss."""
        for (key, u), pair in zip(plan, outs, strict=False):
            grad = grads.get(key)
            if not isinstance(pair, tuple) or len(pair) != 2 \
                    or not all(isinstance(v, float | np.float32 | np.float16) for v in pair) \
                    or not isinstance(grad, np.ndarray) or grad.shape != u.shape \
                    or not np.all(np.isfinite(grad)):
                continue
            slope = (float(pair[0]) - float(pair[1])) / (2 * checks.H)
            low = checks.low_precision(pair[0]) or checks.low_precision(grad)  # the loss's, else the gradient's
            noise = checks.slope_noise(float(pair[0]), float(pair[1]), dtype=low or np.float64)
            verdict = checks.directional_verdict(f"Your {key}", grad, [(u, slope, noise)])
            item = items[key]
            if item.result.status != "passed":
                item.result.feedback += "\n" + verdict.message
            elif not verdict.ok:  # right by the reference, wrong by the numbers: the instructor's
                item.result.instructor += verdict.message + "\n"

    def own_layers_walk(self, worker, values: Values, expected: dict) -> dict | None:
        """param -> (gradient at the case's weights, after the step): the correct backward walk,
        replayed by the grader on the student's own layer objects."""
        if not self.walk:
            return None
        program = Program()
        net = self.construct(program, values)
        found = []
        for weights in (None, expected["weights after"]):
            if weights is not None:
                self.set_weights(program, net, weights)
            program.call(net, self.loss, copy(values)["x"], values["t"])
            first, *rest = self.walk
            dout = program.call(program.get(net, *first), "backward")
            for path in rest:
                dout = program.call(program.get(net, *path), "backward", dout)
            found.append([program.get(net, *self.walk_grads[k]) for k in self.params if k in self.walk_grads])
        keys = [k for k in self.params if k in self.walk_grads]
        program.keep(*found[0], *found[1])
        outcome = Outcome.of(worker, program)
        if outcome.error is not None:
            return None
        half = len(keys)
        return {k: (outcome.values[i], outcome.values[half + i]) for i, k in enumerate(keys)}
