"""The Dask path against local grading, side by side, and a model of how it scales.

One class of N hand-ins (benchmarks/classes.py) graded four times in turn on this machine
(local, Dask, Dask, local: a drift of the machine's speed over the minutes cancels out;
single runs here differ by up to 8%): locally with `--jobs 2`, and on a fresh Dask cluster
started here (a scheduler and two grading processes, `dask worker --nworkers 2 --nthreads 1`)
with `--scheduler`. Then the scheduler's own cost per task, from N empty tasks on the same
cluster. From these the
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
    folder.mkdir(parents=True, exist_ok=True)
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


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


ORDER = ("local", "dask", "dask", "local")  # ABBA: a drift of the machine's speed cancels out


def measure(n: int = 1000, order: tuple[str, ...] = ORDER) -> dict:
    """Grade one class of ``n`` in turn locally and on a fresh two-worker cluster (``order``);
    the overhead compares the mean wall times. No cluster runs while grading locally: its
    processes' own ticks (~6% of these 2 cores when idle) would slow local grading too."""
    work = Path(tempfile.mkdtemp(prefix="grader-cluster-bench-"))
    procs: list[subprocess.Popen] = []
    runs: dict[str, list[float]] = {"local": [], "dask": []}
    grades: set[bytes] = set()
    per_task = 0.0
    try:
        folder = classes.make_class(work / "class", n)
        for i, how in enumerate(order):
            out = work / f"{how}-{i}"
            if how == "local":
                runs[how].append(_grade(folder, out, "--jobs", "2"))
            else:
                address, procs = _cluster(work / f"cluster-{i}")
                runs[how].append(_grade(folder, out, "--scheduler", address))
                per_task = _empty_tasks(address, n)
                _stop(procs)
                procs = []
            grades.add((out / "grades.csv").read_bytes())
    finally:
        _stop(procs)
        shutil.rmtree(work, ignore_errors=True)
    local, remote = (sum(runs[k]) / len(runs[k]) for k in ("local", "dask"))
    return {"n": n, "local": local, "dask": remote, "runs": runs, "order": list(order), "per_task": per_task,
            "same": len(grades) == 1, "overhead": remote / local - 1}


def model(found: dict, workers: int, n: int, setup: float = 30.0) -> float:
    """Modelled wall seconds for ``n`` hand-ins on ``workers`` grading processes."""
    from grader.cluster import chunk

    per_student = found["local"] / found["n"] * 2  # CPU seconds per student (2 local processes)
    return setup + n * per_student / workers + n / chunk(n) * found["per_task"]


def report(found: dict) -> list[str]:
    runs = "; ".join(f"{how} {', '.join(f'{s:.1f}' for s in found['runs'][how])} s" for how in ("local", "dask"))
    lines = [f"N = {found['n']}, in turn {' '.join(found['order'])} ({runs}): "
             f"local --jobs 2 {found['local']:.1f} s, "
             f"Dask (2 workers) {found['dask']:.1f} s (means): "
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
