"""The stage figures (``GRADER_STAGES``): where a run's time goes, for benchmarks/stages.py.

Only ever figures for a benchmark, never a score; but a breakdown that silently lost a
process would send the next person optimising the wrong thing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import GRADER, REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import stages as bench  # noqa: E402

pytestmark = pytest.mark.sandbox


def test_every_grading_process_and_every_sandboxed_process_is_counted(tmp_path):
    """The job processes time their stages; the zygotes count what their students' processes
    and they themselves spent, and each student's end tells the grader."""
    for student in ("ada-book", "db-mean", "syntax-error"):
        shutil.copytree(REPO / "examples" / "class" / student, tmp_path / "class" / student)
    figures = tmp_path / "stages"
    done = subprocess.run([*GRADER, "grade", str(tmp_path / "class"), "--out", str(tmp_path / "out"),
                           "--jobs", "2"], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "GRADER_STAGES": str(figures)})
    assert done.returncode == 0, done.stderr
    processes = [json.loads(p.read_text()) for p in figures.glob("stages-*.json")]
    assert len(processes) == 3  # the CLI and its two job processes
    assert sum(p["ppid"] == os.getpid() for p in processes) == 1  # the CLI, this test's child
    seconds = {k: sum(p["seconds"].get(k, 0.0) for p in processes) for p in processes for k in p["seconds"]}
    counts = {k: sum(p["counts"].get(k, 0) for p in processes) for p in processes for k in p["counts"]}
    assert counts["grade"] == 3 and counts["worker start"] >= 3
    # three students, each a fresh process: numpy's import is the zygote's, not theirs
    assert 0.005 < seconds["student processes (cpu)"] < 60
    assert 0.05 < seconds["zygote (cpu)"] < 60  # its start (numpy, the seccomp probe) included
    split = bench.cpu_split({"machine_cpu": 1e6, "grader_cpu": sum(p["cpu"] for p in processes), "cpu": 0.0,
                             "seconds": seconds})
    assert split["students"] == seconds["student processes (cpu)"] and split["rest"] < 1e6
