"""Generated classes for benchmarks: mostly correct hand-ins, typical mistakes, a few hostile.

The mix per 100 students: 88 correct (written three ways), 8 with a known mistake,
2 broken (syntax error, empty files), 1 that kills its worker (os._exit), and one
hostile loop per 500 (it costs a per-call deadline, as it would in a real class).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import mutants  # noqa: E402  (tests/mutants.py: one buggy hand-in per known mistake)

EXAMPLES = ROOT / "examples" / "class"
CORRECT = ["ada-book", "grace-variants", "crlf"]
MISTAKES = ["missing-batch-division", "db-mean", "dW-wrong-operands", "swapped-mul-gradients",
            "layers-forward-order", "one-hot-only", "relu-derivative-x", "sigmoid-derivative-missing"]
BROKEN = ["syntax-error", "empty-files", "os-exit"]


def make_class(folder: Path, n: int, correct_only: bool = False) -> Path:
    """Write ``n`` student folders into ``folder`` (deterministic: same n, same class);
    ``correct_only``: every hand-in correct (the three styles in turn), as issue 19 measures."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        student = folder / f"s{i:05d}"
        slot = i % 100
        if correct_only:
            shutil.copytree(EXAMPLES / CORRECT[i % len(CORRECT)], student)
        elif i % 500 == 499:
            shutil.copytree(EXAMPLES / "infinite-loop", student)
        elif slot < 88:
            shutil.copytree(EXAMPLES / CORRECT[slot % len(CORRECT)], student)
        elif slot < 96:
            mutants.build(MISTAKES[slot - 88], student)
        else:
            shutil.copytree(EXAMPLES / BROKEN[slot % len(BROKEN)], student)
    return folder
