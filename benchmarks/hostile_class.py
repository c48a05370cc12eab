"""Wall time of `grader grade` on a class of 40 hand-ins, 15 of them hostile.

Run (from the repository root, as the grader would be run; root with bubblewrap
gives the full sandbox, which the hostile hand-ins need):

    python benchmarks/hostile_class.py            # grade, print the wall time
    python benchmarks/hostile_class.py --keep     # and keep the class and reports

The class is generated into a temporary folder:

- 25 honest hand-ins: every example-class student except ``infinite-loop``
  (examples/class: correct ones, typical mistakes, broken files; 21 today), one
  reference solution with a wrong Affine db, and copies of the reference up to 25;
- 15 hostile hand-ins from tests/hostile/attacks.py: sys.exit at import, os._exit in
  a backward, busy / sleeping / signal-ignoring endless loops, memory bomb, fork
  bomb, C-stack overflow, 200 MB of output, reading the solutions from disk,
  importing the grader, overwriting other reports, reading the grader's /proc,
  network connections, a daemon that outlives its parent.

It then runs ``grader grade CLASS --out REPORTS --jobs auto`` with the default course
(call_seconds = 10: each endless loop costs 10 s per part it hangs) and prints the
wall time, the class mean and how many students lost points to timeouts or errors.
It asserts nothing (the acceptance target is under 2 minutes on the 2-core test
machine); the numbers go to benchmarks/RESULTS.md.

Never run it with ``--sandbox off``: the fork bomb and the daemon are real.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/hostile and tests/mutants.py

from hostile import attacks as A  # noqa: E402

HOSTILE = ["sys-exit-at-import", "os-exit-in-backward", "busy-loop", "sleep-loop", "ignores-signals",
           "memory-bomb", "fork-bomb", "c-stack-overflow", "output-flood", "reads-the-disk",
           "imports-the-grader", "writes-files", "reads-grader-proc", "network", "daemon"]
EXAMPLES = ROOT / "examples" / "class"
HONEST = 25


def build(root: Path, out: Path, token: str) -> tuple[int, int]:
    honest = 0
    for folder in sorted(EXAMPLES.iterdir()):
        if folder.is_dir() and folder.name != "infinite-loop":
            shutil.copytree(folder, root / folder.name)
            honest += 1
    A.write(root / "ref-wrong-db", A.baseline_sources("wrong-db"))
    honest += 1
    for i in range(1, HONEST - honest + 1):  # the reference solution fills the class up to 25
        A.write(root / f"ref-{i}", A.baseline_sources("reference"))
    honest = HONEST
    context = A.Context(token=token, repo=str(ROOT), out=str(out), victim="ref-1",
                        grader_pids=(os.getpid(),), new_files=(f"/tmp/grader-bench-{token}-new",))
    for name in HOSTILE:
        folder = root / f"hostile-{name}"
        A.write(folder, A.ATTACKS[name].sources(dataclasses.replace(context, submission=str(folder))))
    return honest, len(HOSTILE)


def measure(keep: bool = False) -> dict:
    """Generate the class, grade it with the real CLI; return the figures."""
    base = Path(tempfile.mkdtemp(prefix="grader-hostile-bench-"))
    root, out = base / "class", base / "reports"
    token = secrets.token_hex(4)
    try:
        honest, hostile = build(root, out, token)
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "grader", "grade", str(root), "--out", str(out),
                               "--jobs", "auto"], capture_output=True, text=True)
        seconds = time.monotonic() - started
        if done.returncode:
            raise SystemExit(f"grader grade failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        with open(out / "grades.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return {"honest": honest, "hostile": hostile, "seconds": seconds, "graded": len(rows),
                "mean": sum(float(r["score"]) for r in rows) / len(rows), "max_score": rows[0]["max_score"],
                "lost": sum(1 for r in rows if float(r["score"]) < float(r["max_score"])),
                "markers": [str(m) for m in Path("/tmp").glob(f"*{token}*")], "kept": str(base)}
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the generated class and reports")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; grader grade --jobs auto")
    m = measure(args.keep)
    print(f"class: {m['honest'] + m['hostile']} hand-ins ({m['honest']} honest, {m['hostile']} hostile); "
          f"wall time {m['seconds']:.1f} s")
    print(f"{m['graded']} graded, mean {m['mean']:.1f}/{m['max_score']}, {m['lost']} below full marks")
    if m["markers"]:
        print(f"WARNING: files with the run's token appeared on the host: {m['markers']}")
    if args.keep:
        print(f"kept: {m['kept']}")


if __name__ == "__main__":
    main()
