"""Buggy submissions built from the reference solution: one per known misconception.

Each entry of ``MUTANTS`` maps a misconception id to a list of source edits
``(file name, exact old text, new text)``. The old text is looked up in the
marker-stripped solution file (the ``### BEGIN/END SOLUTION`` lines removed, as a
student sees the finished file); edits are applied in order and each old text must
occur exactly once in the file at the time it is applied. ``build`` writes the three
files of one mutant into a folder, ready to be graded like a student's hand-in.
``Mutants`` does the same for any assignment (``tests/mutants_deltarule.py``,
``tests/mutants_convnet.py``).

Where the seed notes in /work/shared/seeds/ show a mistake, the mutant copies it
(``seed 000`` etc. in the comments). Some mutants make a backward pass *raise* on
non-square shapes instead of returning wrong numbers (``np.dot`` refuses to multiply
misaligned matrices): that is what the student would see too.

Not a test file (pytest does not collect it); tests import it. Run it directly for a
self-check: ``python tests/mutants.py`` (every assignment's mutants).
"""
from __future__ import annotations

from pathlib import Path

SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions" / "backprop"
SYNTAX_ERROR = "syntax-error"  # the one mutant whose edited file does not compile
FILES = ("layers.py", "two_layer_net.py", "buy_apple_orange.py")
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")

_ADD_LAYER = '''class AddLayer:
    """z = x + y."""

    def __init__(self):
        pass

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        """Return ``(dx, dy)``: the gradients with respect to x and y.

        Each has the shape of ``dout``.
        """
        dx = dout * 1
        dy = dout * 1
        return dx, dy


'''

_AFFINE = '''class Affine:
    """y = x . W + b; an input of rank > 2 is flattened per sample, as the book does."""

    def __init__(self, W, b):
        self.W = W
        self.b = b
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None

    def forward(self, x):
        self.original_x_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        self.x = x
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout):
        """Set ``self.dW`` (shape of W) and ``self.db`` (shape of b); return ``dx``.

        ``dout`` has shape (N, M). ``dx`` must have the shape of the original forward
        input (``self.original_x_shape``), even when that input had more than 2 axes.
        """
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        dx = dx.reshape(*self.original_x_shape)
        return dx


'''

_MUL_HEADER = 'class MulLayer:\n    """z = x * y."""\n'
_RESHAPE = "        dx = dx.reshape(*self.original_x_shape)\n"
_SOFTMAX_BRANCHES = """        if self.t.size == self.y.size:
            dx = (self.y - self.t) / batch_size
        else:
            dx = self.y.copy()
            dx[np.arange(batch_size), self.t] -= 1
            dx = dx / batch_size
"""

MUTANTS: dict[str, list[tuple[str, str, str]]] = {
    # --- MulLayer / AddLayer ------------------------------------------------------
    # the local derivatives without the upstream gradient
    "forgot-dout": [
        ("layers.py",
         "dx = dout * self.y  # swap the inputs\n        dy = dout * self.x\n",
         "dx = self.y  # swap the inputs\n        dy = self.x\n"),
    ],
    # each input's gradient multiplied by itself instead of by the other input
    "swapped-mul-gradients": [
        ("layers.py",
         "dx = dout * self.y  # swap the inputs\n        dy = dout * self.x\n",
         "dx = dout * self.x\n        dy = dout * self.y\n"),
    ],
    # "an add node passes the gradient to one side only"
    "add-gradient-zeroed": [
        ("layers.py", "        dy = dout * 1\n", "        dy = dout * 0\n"),
    ],
    # seed 000: the add layer's class is called MulLayer and comes first, so the real
    # MulLayer overrides it and there is no AddLayer (buy_apple_orange cannot import)
    "duplicate-class": [
        ("layers.py", _ADD_LAYER, ""),
        ("layers.py", _MUL_HEADER,
         _ADD_LAYER.replace("class AddLayer:", "class MulLayer:") + _MUL_HEADER),
    ],
    # --- Relu ---------------------------------------------------------------------
    "relu-mask-ignored": [
        ("layers.py", "        dx = dout.copy()\n        dx[self.mask] = 0\n",
         "        dx = dout.copy()\n"),
    ],
    # seed 000: "the derivative of ReLU is x for x >= 0"
    "relu-derivative-x": [
        ("layers.py", "        self.mask = x <= 0\n",
         "        self.x = x\n        self.mask = x <= 0\n"),
        ("layers.py", "        dx = dout.copy()\n        dx[self.mask] = 0\n",
         "        dx = dout * self.x\n"),
    ],
    # --- Sigmoid ------------------------------------------------------------------
    # y(1 - y) applied to the input x instead of the output y
    "sigmoid-derivative-from-input": [
        ("layers.py", "        out = 1 / (1 + np.exp(-x))\n",
         "        self.x = x\n        out = 1 / (1 + np.exp(-x))\n"),
        ("layers.py", "dx = dout * (1.0 - self.out) * self.out",
         "dx = dout * self.x * (1 - self.x)"),
    ],
    # seed 002: the activation's derivative forgotten (trains, fails the check)
    "sigmoid-derivative-missing": [
        ("layers.py", "dx = dout * (1.0 - self.out) * self.out", "dx = dout"),
    ],
    # seed 000: `out 1 / (...)` in Sigmoid.forward; layers.py does not compile
    "syntax-error": [
        ("layers.py", "        out = 1 / (1 + np.exp(-x))\n", "        out 1 / (1 + np.exp(-x))\n"),
    ],
    # --- Affine -------------------------------------------------------------------
    # the local derivative (W^T) without dout: a matrix of ones stands in for dout
    "forgot-dout-affine": [
        ("layers.py", "dx = np.dot(dout, self.W.T)", "dx = np.dot(np.ones_like(dout), self.W.T)"),
    ],
    # raises ValueError unless W is square (then the values are wrong unless W = W^T)
    "dx-untransposed-W": [
        ("layers.py", "dx = np.dot(dout, self.W.T)", "dx = np.dot(dout, self.W)"),
    ],
    # seed 000: dL/dX written as X^T . dL/dY (the dW formula). dx has dW's shape (D, M);
    # the seed's Affine has no reshape, so neither has this one (with the reshape kept,
    # backward would raise ValueError unless M == N)
    "dx-with-dW-formula": [
        ("layers.py", "dx = np.dot(dout, self.W.T)", "dx = np.dot(self.x.T, dout)"),
        ("layers.py", _RESHAPE, ""),
    ],
    # seed 004: dL/dW = W^T . dL/dY; raises ValueError unless N == D, and backward then
    # stops before db is set
    "dW-wrong-operands": [
        ("layers.py", "self.dW = np.dot(self.x.T, dout)", "self.dW = np.dot(self.W.T, dout)"),
    ],
    # dW^T: shape (M, D), caught by values and, on non-square W, by the shape
    "dW-transposed": [
        ("layers.py", "self.dW = np.dot(self.x.T, dout)", "self.dW = np.dot(dout.T, self.x)"),
    ],
    # hidden by batch size 1
    "db-mean": [
        ("layers.py", "self.db = np.sum(dout, axis=0)", "self.db = np.mean(dout, axis=0)"),
    ],
    # db of shape (N, M): one bias gradient per sample
    "db-unsummed": [
        ("layers.py", "self.db = np.sum(dout, axis=0)", "self.db = dout"),
    ],
    # right values, shape (1, M) instead of (M,)
    "db-keepdims": [
        ("layers.py", "self.db = np.sum(dout, axis=0)",
         "self.db = np.sum(dout, axis=0, keepdims=True)"),
    ],
    # only visible with inputs of rank > 2 (TwoLayerNet never sends one)
    "dx-not-reshaped": [
        ("layers.py", _RESHAPE, ""),
    ],
    # no Affine class at all; two_layer_net.py then fails to import
    "missing-class": [
        ("layers.py", _AFFINE, ""),
    ],
    # --- SoftmaxWithLoss / cross_entropy_error ------------------------------------
    # hidden by batch size 1
    "missing-batch-division": [
        ("layers.py", "            dx = (self.y - self.t) / batch_size\n",
         "            dx = self.y - self.t\n"),
        ("layers.py", "            dx = dx / batch_size\n", ""),
    ],
    # seed 003's book code: right for one-hot labels; class indices (N,) broadcast
    # against (N, C): ValueError unless N == C, wrong values when N == C
    "one-hot-only": [
        ("layers.py", _SOFTMAX_BRANCHES, "        dx = (self.y - self.t) / batch_size\n"),
    ],
    # seed 003: np.log*(...) multiplies the ufunc: TypeError in every loss computation
    "log-not-called": [
        ("layers.py", "-np.sum(np.log(y[np.arange(batch_size), t] + 1e-7))",
         "-np.sum(np.log*(y[np.arange(batch_size), t] + 1e-7))"),
    ],
    # seed 000: SoftmaxWithLoss.forward passes self.x (never set): AttributeError
    "undefined-attribute": [
        ("layers.py", "cross_entropy_error(self.y, self.t)", "cross_entropy_error(self.x, self.t)"),
    ],
    # seed 000: `size.t.shape` in SoftmaxWithLoss.backward: NameError
    "undefined-name": [
        ("layers.py", "batch_size = self.t.shape[0]", "batch_size = size.t.shape[0]"),
    ],
    # --- TwoLayerNet.gradient -----------------------------------------------------
    # backward in forward order: Affine1 gets Affine2's dout; ValueError unless
    # output_size == hidden_size
    "layers-forward-order": [
        ("two_layer_net.py", "for layer in reversed(list(self.layers.values())):",
         "for layer in self.layers.values():"),
    ],
    # dout = 1 fed straight into Affine2: ValueError at its reshape for usual shapes
    "lastLayer-skipped": [
        ("two_layer_net.py", "        dout = 1\n        dout = self.lastLayer.backward(dout)\n",
         "        dout = 1\n"),
    ],
    # --- the protocol: state, types, aliasing (issue 14) -----------------------------
    # the mask kept as a class attribute: every Relu object shares the last one made
    "state-shared-between-objects": [
        ("layers.py", "    def __init__(self):\n        self.mask = None\n",
         "    mask = None\n\n    def __init__(self):\n        pass\n"),
        ("layers.py", "        self.mask = x <= 0\n        out = x.copy()",
         "        Relu.mask = x <= 0\n        out = x.copy()"),
    ],
    # Affine keeps the input of its first forward only
    "state-from-an-earlier-call": [
        ("layers.py", "        x = x.reshape(x.shape[0], -1)\n        self.x = x\n",
         "        x = x.reshape(x.shape[0], -1)\n        if self.x is None:\n            self.x = x\n"),
    ],
    # MulLayer: integer inputs (the shopping example's counts) give integer gradients
    "integer-inputs-truncated": [
        ("layers.py", "        dy = dout * self.x\n        return dx, dy",
         "        dy = dout * self.x\n        if isinstance(self.x, int):\n            dx, dy = int(dx), int(dy)\n"
         "        return dx, dy"),
    ],
    # Sigmoid squeezes anything but float64 through float16 (a "dtype normalisation")
    "low-precision-inputs": [
        ("layers.py", "        out = 1 / (1 + np.exp(-x))\n",
         "        if x.dtype != np.float64:\n            x = x.astype(np.float16)\n"
         "        out = 1 / (1 + np.exp(-x))\n"),
    ],
    # Affine copies W and b: updates to net.params never reach it, the net cannot learn
    "parameters-copied": [
        ("layers.py", "        self.W = W\n        self.b = b\n",
         "        self.W = W.copy()\n        self.b = b.copy()\n"),
    ],
    # TwoLayerNet gives its layers copies of the params: right once, stale after a step
    "stale-params": [
        ("two_layer_net.py", 'Affine(self.params["W1"], self.params["b1"])',
         'Affine(self.params["W1"].copy(), self.params["b1"].copy())'),
        ("two_layer_net.py", 'Affine(self.params["W2"], self.params["b2"])',
         'Affine(self.params["W2"].copy(), self.params["b2"].copy())'),
    ],
    # the slow check returned as the gradient: finite differences of the loss
    "numerical-differentiation": [
        ("two_layer_net.py", "        self.loss(x, t)\n\n        dout = 1\n",
         "        return self.numerical_gradient(x, t)\n        dout = 1\n"),
    ],
    # gradient() relies on loss() having been called just before it
    "gradient-without-forward": [
        ("two_layer_net.py", "        self.loss(x, t)\n\n        dout = 1\n", "        dout = 1\n"),
    ],
}


def strip_markers(text: str) -> str:
    """The solution as a student would hand it in: the marker lines removed."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if line.strip() not in MARKERS)


class Mutants:
    """One assignment's buggy hand-ins: ``edits`` maps a misconception id to its source edits."""

    def __init__(self, solutions: Path, files: tuple[str, ...], edits: dict[str, list[tuple[str, str, str]]]):
        self.solutions, self.files, self.edits = solutions, files, edits

    def reference_sources(self) -> dict[str, str]:
        """``{file name: marker-stripped solution source}``."""
        return {name: strip_markers((self.solutions / name).read_text(encoding="utf-8")) for name in self.files}

    def mutated_sources(self, misconception_id: str) -> dict[str, str]:
        """``{file name: source}`` of one mutant; every edit must hit exactly once."""
        if misconception_id not in self.edits:
            raise KeyError(f"unknown misconception id {misconception_id!r}")
        sources = self.reference_sources()
        for file_name, old, new in self.edits[misconception_id]:
            count = sources[file_name].count(old)
            assert count == 1, (
                f"{misconception_id}: {file_name} holds {count} copies of {old!r} (expected 1)")
            sources[file_name] = sources[file_name].replace(old, new)
        return sources

    def build(self, misconception_id: str, folder: Path) -> Path:
        """Write the files of mutant ``misconception_id`` into ``folder``; return it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in self.mutated_sources(misconception_id).items():
            (folder / name).write_text(text, encoding="utf-8")
        return folder

    def problems(self, tmp: Path) -> list[str]:
        """Each mutant changes exactly the files it edits, and they compile (but the syntax error)."""
        reference, found = self.reference_sources(), []
        for mutant_id, edits in self.edits.items():
            folder = self.build(mutant_id, tmp / mutant_id)
            touched = {file_name for file_name, _, _ in edits}
            for name in self.files:
                text = (folder / name).read_text(encoding="utf-8")
                if (text != reference[name]) != (name in touched):
                    found.append(f"{mutant_id}: {name} {'unchanged' if name in touched else 'changed'}")
                try:
                    compile(text, str(folder / name), "exec")
                    compiles = True
                except SyntaxError:
                    compiles = False
                if compiles != (mutant_id != SYNTAX_ERROR or name not in touched):
                    found.append(f"{mutant_id}: {name} compiles={compiles}")
            print(f"{mutant_id:32} {', '.join(sorted(touched))}")
        return found


BACKPROP = Mutants(SOLUTIONS, FILES, MUTANTS)
reference_sources, mutated_sources, build = BACKPROP.reference_sources, BACKPROP.mutated_sources, BACKPROP.build


def _self_check() -> int:
    import tempfile

    import mutants_convnet
    import mutants_deltarule

    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for each in (BACKPROP, mutants_deltarule.DELTARULE, mutants_convnet.CONVNET):
            problems += each.problems(Path(tmp) / each.solutions.name)
            print(f"{each.solutions.name}: {len(each.edits)} mutants")
    for problem in problems:
        print("PROBLEM:", problem)
    print(f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(_self_check())
