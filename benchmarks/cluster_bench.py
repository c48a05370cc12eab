"""The Dask path against local grading, side by side, and a model of how it scales.

One class of N hand-ins (benchmarks/classes.py) graded twice on this machine: locally
with `--jobs 2`, and on a Dask cluster started here (a scheduler and two grading
processes, `dask worker --nworkers 2 --nthreads 1`) with `--scheduler`. Then the
scheduler's own cost per task, from N empty tasks on the same cluster. From these the
wall time on W workers is modelled:

    wall(N, W) ~ set-up + N * per_student / W + N / chunk(N) * per_task

(per_student: the local per-submission cost on 2 cores, times 2; per_task: the
scheduler's serial cost per task, a task grading chunk(N) students (grader.cluster);
set-up: each worker's canary, done in parallel).

    python benchmarks/cluster_bench.py [--n 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import classes  # noqa: E402

GRADER = [sys.executable, "-m", "grader"]


def _cluster(folder: Path, workers: int = 2) -> tuple[str, list[subprocess.Popen]]:
    file = folder / "scheduler.json"
    log = open(folder / "dask.log", "ab")  # noqa: SIM115 - lives as long as the processes
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file",
                                  str(file), "--port", "0", "--dashboard-address", ":0"],
                                 stdout=log, stderr=log, start_new_session=True)
    while not file.exists():
        time.sleep(0.1)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(file),
                               "--nworkers", str(workers), "--nthreads", "1", "--no-dashboard"],
                              stdout=log, stderr=log, start_new_session=True)
    address = json.loads(file.read_text())["address"]
    from distributed import Client

    with Client(address) as client:
        client.wait_for_workers(workers, timeout=120)
    return address, [scheduler, worker]


def _grade(folder: Path, out: Path, *extra: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([*GRADER, "grade", str(folder), "--out", str(out), *extra], capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"grader grade {' '.join(extra)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def _empty_tasks(address: str, n: int) -> float:
    """Seconds per task the scheduler needs for tasks that do nothing."""
    from distributed import Client, wait

    with Client(address) as client:
        start = time.perf_counter()
        wait(client.map(abs, range(n), pure=False))
        return (time.perf_counter() - start) / n


def measure(n: int = 1000) -> dict:
    work = Path(tempfile.mkdtemp(prefix="grader-cluster-bench-"))
    procs: list[subprocess.Popen] = []
    try:
        folder = classes.make_class(work / "class", n)
        local = _grade(folder, work / "local", "--jobs", "2")
        address, procs = _cluster(work)
        remote = _grade(folder, work / "remote", "--scheduler", address)
        per_task = _empty_tasks(address, n)
        same = (work / "local" / "grades.csv").read_bytes() == (work / "remote" / "grades.csv").read_bytes()
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(work, ignore_errors=True)
    return {"n": n, "local": local, "dask": remote, "per_task": per_task, "same": same,
            "overhead": remote / local - 1}


def model(found: dict, workers: int, n: int, setup: float = 30.0) -> float:
    """Modelled wall seconds for ``n`` hand-ins on ``workers`` grading processes."""
    from grader.cluster import chunk

    per_student = found["local"] / found["n"] * 2  # CPU seconds per student (2 local processes)
    return setup + n * per_student / workers + n / chunk(n) * found["per_task"]


def report(found: dict) -> list[str]:
    lines = [f"N = {found['n']}: local --jobs 2 {found['local']:.1f} s, Dask (2 workers) {found['dask']:.1f} s: "
             f"overhead {found['overhead'] * 100:+.1f}%; same grades.csv: {found['same']}; the scheduler's own "
             f"cost {found['per_task'] * 1e3:.2f} ms per task"]
    for workers, n in ((2, 1000), (20, 10_000), (200, 100_000), (1000, 100_000)):
        seconds = model(found, workers, n)
        lines.append(f"model: {n:,} hand-ins on {workers} grading processes: about {seconds:,.0f} s")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    print("\n".join(report(measure(parser.parse_args().n))))
