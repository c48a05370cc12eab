"""The deltarule assignment's buggy hand-ins: one per misconception it can name (see mutants.py).

A mutant makes its mistake everywhere a student who holds that belief would: the notes'
forgotten output derivative, for instance, in the sigmoid layer, the delta rule and the
net alike. Ids that differ from the catalogue id they must be diagnosed as are listed in
``ALIASES``.
"""
from __future__ import annotations

from pathlib import Path

from mutants import SYNTAX_ERROR, Mutants

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions" / "deltarule"
FILES = ("losses.py", "delta_rule.py", "three_layer_net.py")

SSE = "dy = (self.y - self.t) * dout"
MSE = "dy = 2.0 * (self.y - self.t) / self.y.size * dout"
DELTA = "delta = dout * self.out * (1.0 - self.out)"
BACK = "dx = np.dot(delta, self.W.T)"
RULE = "    delta = (t - o) * o * (1.0 - o)\n"
STEP = "W_new = W + lr * np.dot(x.T, delta)"
DELTA3 = "delta3 = 2.0 * (o - t) / o.size * o * (1.0 - o)"
BACK3 = 'delta2 = np.dot(delta3, p["W3"].T) * (a2 > 0)'
BACK2 = 'delta1 = np.dot(delta2, p["W2"].T) * (a1 > 0)'
SIGMOID_OUTPUT = DELTA_RULE = "delta_rule.py"
NET = "three_layer_net.py"

MUTANTS: dict[str, list[tuple[str, str, str]]] = {
    # seed 002: "forgot the output activation's derivative; it still trained"
    "output-derivative-missing": [
        (SIGMOID_OUTPUT, DELTA, "delta = dout"),
        (DELTA_RULE, RULE, "    delta = t - o\n"),
        (NET, DELTA3, "delta3 = 2.0 * (o - t) / o.size"),
    ],
    # the notes' -2 (t_k - o_k) kept although E has the 1/2
    "half-sse-factor": [
        ("losses.py", SSE, "dy = 2 * (self.y - self.t) * dout"),
        (DELTA_RULE, STEP, "W_new = W + 2 * lr * np.dot(x.T, delta)"),
    ],
    # the other way round: nn.MSELoss differentiated as if it had SSE's 1/2
    "half-sse-factor-mse": [
        ("losses.py", MSE, "dy = (self.y - self.t) / self.y.size * dout"),
        (NET, DELTA3, "delta3 = (o - t) / o.size * o * (1.0 - o)"),
    ],
    "error-sign": [("losses.py", SSE, "dy = (self.t - self.y) * dout")],
    "mse-sum-over-outputs": [
        ("losses.py", MSE, "dy = 2.0 * (self.y - self.t) / self.y.shape[0] * dout"),
        (NET, DELTA3, "delta3 = 2.0 * (o - t) / o.shape[0] * o * (1.0 - o)"),
    ],
    "mse-sum-over-batch": [
        ("losses.py", MSE, "dy = 2.0 * (self.y - self.t) / self.y.shape[1] * dout"),
        (NET, DELTA3, "delta3 = 2.0 * (o - t) / o.shape[1] * o * (1.0 - o)"),
    ],
    "relu-derivative-missing": [(NET, BACK3, 'delta2 = np.dot(delta3, p["W3"].T)')],
    # raises ValueError on rectangular weights, wrong values on square ones
    "error-not-transposed": [
        (SIGMOID_OUTPUT, BACK, "dx = np.dot(delta, self.W)"),
        (NET, BACK3, 'delta2 = np.dot(delta3, p["W3"]) * (a2 > 0)'),
        (NET, BACK2, 'delta1 = np.dot(delta2, p["W2"]) * (a1 > 0)'),
    ],
    "sigmoid-derivative-of-net": [
        (SIGMOID_OUTPUT, DELTA, "net = np.dot(self.x, self.W) + self.b\n        delta = dout * net * (1.0 - net)"),
    ],
    "forgot-dout": [(SIGMOID_OUTPUT, DELTA, "delta = self.out * (1.0 - self.out)")],
    "update-sign": [(DELTA_RULE, STEP, "W_new = W - lr * np.dot(x.T, delta)")],
    "lr-missing": [(DELTA_RULE, STEP, "W_new = W + np.dot(x.T, delta)")],
    "returned-delta": [(DELTA_RULE, STEP, "W_new = lr * np.dot(x.T, delta)")],
    # --- the layer protocol and a net's gradient() (grader.judging.misconceptions.PROTOCOL) ---
    # SigmoidOutput keeps its input in a class attribute: a second object overwrites it
    "state-shared-between-objects": [
        (SIGMOID_OUTPUT, "        self.x = None\n        self.out = None\n", "        self.out = None\n"),
        (SIGMOID_OUTPUT, "        self.x = x\n", "        SigmoidOutput.x = x\n"),
    ],
    # MSELoss keeps the output of its first forward only
    "state-from-an-earlier-call": [
        ("losses.py", "        self.y = y\n        self.t = t\n        return np.mean",
         "        if self.y is None:\n            self.y = y\n        self.t = t\n        return np.mean"),
    ],
    # integer targets (0 and 1): dE/dy made in an array of the targets' dtype
    "integer-inputs-truncated": [
        ("losses.py", MSE, "dy = np.zeros_like(self.t)\n        dy[...] = "
                           "2.0 * (self.y - self.t) / self.y.size * dout"),
    ],
    # SigmoidOutput squeezes anything but float64 through float16 (a "dtype normalisation")
    "low-precision-inputs": [
        (SIGMOID_OUTPUT, "        self.x = x\n",
         "        if x.dtype != np.float64:\n            x = x.astype(np.float16)\n        self.x = x\n"),
    ],
    # SigmoidOutput copies W and b: the learning step never reaches it
    "parameters-copied": [
        (SIGMOID_OUTPUT, "        self.W = W\n        self.b = b\n",
         "        self.W = W.copy()\n        self.b = b.copy()\n"),
    ],
    # the net computes with copies of its params made in __init__: right once, stale after a step
    "stale-params": [
        (NET, "    def forward(self, x):",
         "        self.weights = {k: v.copy() for k, v in self.params.items()}\n\n    def forward(self, x):"),
        (NET, "        p = self.params\n        h1 = relu(", "        p = self.weights\n        h1 = relu("),
        (NET, "        p = self.params\n        a1 = ", "        p = self.weights\n        a1 = "),
    ],
    # gradient() uses the hidden outputs the last forward() left (so loss() must come first)
    "gradient-without-forward": [
        (NET, "        h2 = relu(np.dot(h1, p[\"W2\"]) + p[\"b2\"])\n        return",
         "        h2 = relu(np.dot(h1, p[\"W2\"]) + p[\"b2\"])\n        self.hidden = h1, h2\n        return"),
        (NET, "        a1 = np.dot(x, p[\"W1\"]) + p[\"b1\"]\n        h1 = relu(a1)\n"
              "        a2 = np.dot(h1, p[\"W2\"]) + p[\"b2\"]\n        h2 = relu(a2)\n",
         "        h1, h2 = self.hidden\n        a1, a2 = h1, h2\n"),
    ],
    # central differences of the loss returned as the gradient (the slow check, not backprop)
    "numerical-differentiation": [
        (NET, "        p = self.params\n        a1 = ",
         "        grads = {}\n        for key, w in self.params.items():\n"
         "            grads[key] = np.zeros_like(w)\n            for i in np.ndindex(w.shape):\n"
         "                old = w[i]\n                w[i] = old + 1e-5\n"
         "                plus = self.loss(x, t)\n                w[i] = old - 1e-5\n"
         "                minus = self.loss(x, t)\n                w[i] = old\n"
         "                grads[key][i] = (plus - minus) / 2e-5\n        return grads\n"
         "        p = self.params\n        a1 = "),
    ],
    # --- what any assignment can meet (grader.judging.misconceptions.GENERIC, STATIC) -----
    # seed 000's `out 1 / (...)`: delta_rule.py does not compile; the grader blanks the class
    SYNTAX_ERROR: [(SIGMOID_OUTPUT, "self.out = sigmoid(np.dot(x, self.W) + self.b)",
                    "self.out sigmoid(np.dot(x, self.W) + self.b)")],
    # seed 000's self.x in a layer that never set it
    "undefined-attribute": [(SIGMOID_OUTPUT, DELTA, "delta = dout * self.o * (1.0 - self.o)")],
    # seed 000's size.t.shape
    "undefined-name": [("losses.py", MSE, "dy = 2.0 * (self.y - self.t) / y.size * dout")],
    # seed 000: a second class under the first one's name (MSELoss written as `class SSELoss`)
    "duplicate-class": [("losses.py", "class MSELoss:", "class SSELoss:")],
    "missing-class": [(SIGMOID_OUTPUT, "class SigmoidOutput:", "class SigmoidLayer:")],
}
ALIASES = {"half-sse-factor-mse": "half-sse-factor"}
NOT_APPLICABLE = {"log-not-called": "no file of this assignment takes a logarithm"}

DELTARULE = Mutants(SOLUTIONS, FILES, MUTANTS)
