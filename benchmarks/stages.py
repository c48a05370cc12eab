"""Where the time per hand-in goes: one real `grader grade` of a generated class, stage by stage.

    python benchmarks/stages.py --n 1000 --jobs 2 [--correct-only]

The CLI runs with ``GRADER_STAGES`` set (``grader.stages``): every grading process adds
up each stage's wall time and entries, its fsyncs and ``compile`` calls, and its CPU
time. Per student: the sum over the job processes (they grade in parallel, so the
stages add up to about ``jobs`` x the wall time) divided by N. CPU: each grading
process's own (getrusage, all threads); the students' sandboxed processes and the zygotes
that fork them, as the zygotes count them (they reap the students; each student's end
tells the grader); what else the CLI reaped; and the machine's busy time over the run,
every process included (the rest: bubblewrap, the kernel's threads, anything else).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import classes  # noqa: E402

GRADER = [sys.executable, "-m", "grader"]

# (label, stage) in the order a student goes through them; "judging" is derived
ROWS = [("staging (intake: read, check, copy the hand-in)", "staging"),
        ("worker start (fork + the student's imports)", "worker start"),
        ("worker round trips", "round trip"),
        ("judging + pytest's protocol (hidden tests minus round trips)", "judging"),
        ("worker end (kill, reap)", "worker end"),
        ("report rendering (json, md, html)", "render reports"),
        ("report writing (disk)", "write reports")]


def measure(n: int = 1000, jobs: int = 2, work: Path | None = None, correct_only: bool = False) -> dict:
    """Grade a class of ``n`` with ``--jobs jobs``; per-student stage times, counts and CPU."""
    with tempfile.TemporaryDirectory(prefix="grader-stages-", dir=work) as tmp:
        folder = classes.make_class(Path(tmp) / "class", n, correct_only)
        figures = Path(tmp) / "stages"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy = machine_busy()
        started = time.perf_counter()
        done = subprocess.run([*GRADER, "grade", str(folder), "--out", str(Path(tmp) / "reports"),
                               "--jobs", str(jobs)], capture_output=True, text=True,
                              env={**os.environ, "GRADER_STAGES": str(figures)})
        wall = time.perf_counter() - started
        busy = machine_busy() - busy
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            raise SystemExit(f"grader grade failed:\n{done.stderr}")
        processes = [json.loads(p.read_text(encoding="utf-8")) for p in figures.glob("stages-*.json")]
    seconds: dict[str, float] = {}
    counts: dict[str, int] = {}
    for found in processes:
        for stage, value in found["seconds"].items():
            seconds[stage] = seconds.get(stage, 0.0) + value
        for stage, value in found["counts"].items():
            counts[stage] = counts.get(stage, 0) + value
    seconds["judging"] = seconds.get("hidden tests", 0.0) - seconds.get("round trip", 0.0)
    # what this process reaped: the CLI (whose own figures are in ``processes`` too) and what
    # the CLI reaped of its own (not its job processes: the forkserver starts and reaps those)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) \
        - sum(p["cpu"] for p in processes if p.get("ppid") == os.getpid())
    return {"n": n, "jobs": jobs, "correct_only": correct_only, "wall": wall, "cpu": max(cpu, 0.0),
            "seconds": seconds, "counts": counts, "grader_cpu": sum(p["cpu"] for p in processes),
            "processes": len(processes), "machine_cpu": busy}


def machine_busy() -> float:
    """CPU seconds this machine has spent busy since boot, all cores and every process (user,
    nice, system, interrupts; not idle, waiting or stolen): over a run on a quiet machine,
    what grading cost across every process - the sandboxes' students included, which no
    process of ours can count (the zygote reaps them, and is killed, not reaped, at the end)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def cpu_split(found: dict) -> dict[str, float]:
    """The run's CPU seconds by who spent them. The students' processes and the zygotes are
    counted by the zygotes (getrusage of what they reaped, and their own) and told to the
    grader with each student's end; the rest is the machine's busy time less all of these."""
    s = found["seconds"]
    split = {"machine": found["machine_cpu"], "grader": found["grader_cpu"], "reaped": found["cpu"],
             "students": s.get("student processes (cpu)", 0.0), "zygotes": s.get("zygote (cpu)", 0.0)}
    split["rest"] = max(split["machine"] - split["grader"] - split["reaped"] - split["students"]
                        - split["zygotes"], 0.0)
    return split


def report(found: dict) -> list[str]:
    """The figures as Markdown rows: per student, time and entries of each stage."""
    n, s, c = found["n"], found["seconds"], found["counts"]
    kind = "correct hand-ins" if found.get("correct_only") else "the benchmark class (benchmarks/classes.py)"
    ms = {key: value / n * 1e3 for key, value in cpu_split(found).items()}
    lines = [f"N = {n:,} ({kind}), --jobs {found['jobs']}: {found['wall'] / n * 1e3:.1f} ms wall per student; "
             f"CPU per student across every process (the machine's busy time over the run) "
             f"{ms['machine']:.1f} ms: the grader's own {found['processes']} processes {ms['grader']:.1f} ms "
             f"(and {ms['reaped']:.1f} ms in processes the CLI reaped), the students' sandboxed processes "
             f"{ms['students']:.1f} ms, the zygotes that fork them {ms['zygotes']:.1f} ms, the rest "
             f"{ms['rest']:.1f} ms (bubblewrap, the kernel's own threads, anything else that ran).", "",
             "| stage | ms per student (summed over job processes) | per student |", "|---|---:|---:|"]
    for label, stage in ROWS:
        entries = f"{c[stage] / n:.1f} x" if stage in c else ""
        lines.append(f"| {label} | {s.get(stage, 0.0) / n * 1e3:.2f} | {entries} |")
    lines += [f"| the whole of grading a student (job side) | {s.get('grade', 0.0) / n * 1e3:.2f} | |", "",
              f"Per student: {c.get('fsync', 0) / n:.1f} fsyncs, {c.get('compile', 0) / n:.1f} compile calls, "
              f"{c.get('sandbox launch', 0) / n:.2f} sandbox launches; once per run: canary "
              f"{s.get('canary', 0.0):.2f} s, class reports {s.get('class reports', 0.0):.2f} s, "
              f"{c.get('sync', 0)} syncs of the reports' file system ({s.get('sync', 0.0):.2f} s)."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--correct-only", action="store_true",
                        help="a class of correct hand-ins only (issue 19's measure), not the mixed class")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    found = measure(args.n, args.jobs, correct_only=args.correct_only)
    print("\n".join(report(found)))
    if args.json:
        args.json.write_text(json.dumps(found, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
