"""`grader grade --resume` after the batch was SIGKILLed: real CLI runs, real kills.

The class is the example class (22 students, one of them hangs) plus a student whose
import sleeps 2 s, so a run with ``--jobs 2`` takes several seconds. Each test kills
a run once some but not all ``report.json`` files exist (early: after 2, middle:
after half), then resumes it and checks that

- every report.json left by the killed run parses and its student has all four files
  (report.json is written last, atomically);
- the resumed run's grades.csv is byte-identical to an uninterrupted run's;
- the students finished before the kill were not graded again (the mtime and inode of
  each of their files are unchanged) and the resumed run says how many it kept;
- no temporary file is left anywhere (a write the kill itself cut - a ~1 ms window,
  hit by a few % of kills - leaves one; that case is tested deterministically by
  test_resume_removes_what_a_killed_write_left, so the kill tests do not flake on it).

How the tests were shown to fail: with the resume skipped (``--resume`` left out of the
second run), the "not regraded" check fails on every finished student; grades.csv
written by the killed run does not exist yet, so comparing it would fail too.

Killing the whole process group (the CLI, its forkserver and job processes) is what
a terminal's Ctrl-\\ or a batch system's kill does; killing only the CLI's pid (the
OOM killer, ``kill -9 <pid>``) is tested separately: its job processes must not go on
grading and writing reports on their own.

Runtime: about 30 s on 2 cores (an uninterrupted run, four killed runs, three resumes;
the batch takes ~6 s).
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import GRADER, REPO
from hostile.procs import group_alive, kill_group, wait_until

from grader.reports import STUDENTS, student_folder

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

# a known hole: strict, and only an AssertionError counts (a broken check, which calls
# pytest.fail, or an exception, is a real failure, not the expected one)
HOLE = {"strict": True, "raises": AssertionError}
EXAMPLES = REPO / "examples" / "class"
REPORT_FILES = ("report.json", "report.md", "report.html", "results.json")


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume") / "class"
    for folder in sorted(EXAMPLES.iterdir()):
        if folder.is_dir():
            shutil.copytree(folder, root / folder.name)
    sleeper = root / "zz-sleeper"
    shutil.copytree(EXAMPLES / "ada-book", sleeper)
    layers = (sleeper / "layers.py").read_text(encoding="utf-8")
    assert layers.count("import numpy as np\n") == 1
    (sleeper / "layers.py").write_text(layers.replace("import numpy as np\n",
                                                      "import numpy as np\nimport time\ntime.sleep(2)\n"))
    return root


def students(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def env(out: Path) -> dict[str, str]:
    """TMPDIR next to the reports: a killed run's staging folders stay there, not in /tmp."""
    tmp = out.parent / f"{out.name}-tmp"
    tmp.mkdir(mode=0o755, exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp)}


def grade(klass: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*GRADER, "grade", str(klass), "--out", str(out), "--jobs", "2", *extra],
                          capture_output=True, text=True, timeout=300, env=env(out))


def start(klass: Path, out: Path, *extra: str) -> subprocess.Popen:
    """The CLI in its own process group (so its job processes can be found and killed)."""
    return subprocess.Popen([*GRADER, "grade", str(klass), "--out", str(out), "--jobs", "2", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env=env(out))


def finished(out: Path) -> list[str]:
    return sorted(p.parent.name for p in out.glob(f"{STUDENTS}/*/report.json"))


def wait_for_reports(proc: subprocess.Popen, out: Path, count: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while len(finished(out)) < count:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, f"never {count} reports"
        time.sleep(0.005)


def temp_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.name.endswith(".tmp"))


def stamps(out: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    files = {f"{s}/{f}": student_folder(out, s) / f for s in names for f in REPORT_FILES}
    return {key: (path.stat().st_mtime_ns, path.stat().st_ino) for key, path in files.items()}


@pytest.fixture(scope="module")
def uninterrupted(klass, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    started = time.monotonic()
    done = grade(klass, out)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started > 3, "the batch is too quick to be killed in the middle"
    assert finished(out) == students(klass)
    return out


@pytest.mark.parametrize("when", ["early", "middle"])
def test_resume_after_sigkill_gives_the_same_grades(klass, uninterrupted, tmp_path, when):
    total = len(students(klass))
    out = tmp_path / "reports"
    proc = start(klass, out)
    try:
        wait_for_reports(proc, out, 2 if when == "early" else total // 2)
    finally:
        kill_group(proc)
    assert wait_until(lambda: not group_alive(proc.pid), 2), group_alive(proc.pid)

    done_before = finished(out)
    assert 0 < len(done_before) < total, f"killed too late or too early: {len(done_before)}/{total}"
    assert not (out / "grades.csv").exists(), "grades.csv is written only when the batch completes"
    for student in done_before:  # report.json last: its presence means the student is complete
        json.loads((student_folder(out, student) / "report.json").read_text(encoding="utf-8"))
        for name in REPORT_FILES:
            assert (student_folder(out, student) / name).stat().st_size > 0, (student, name)
    left_by_kill = temp_files(out)  # a write the kill interrupted (see the test below)
    before = stamps(out, done_before)

    resumed = grade(klass, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(done_before)} student(s) kept from the earlier run" in resumed.stdout, resumed.stdout
    assert (out / "grades.csv").read_bytes() == (uninterrupted / "grades.csv").read_bytes()
    after = stamps(out, done_before)
    regraded = sorted({k.split("/")[0] for k in before if before[k] != after[k]})
    assert not regraded, f"finished before the kill, graded again: {regraded}"
    assert finished(out) == students(klass)
    for student in students(klass):
        json.loads((student_folder(out, student) / "report.json").read_text(encoding="utf-8"))
    assert [t for t in temp_files(out) if t not in left_by_kill] == [], temp_files(out)
    for student in set(students(klass)) - set(done_before):  # graded by the resumed run
        assert (student_folder(out, student) / "report.json").read_bytes() == \
            (student_folder(uninterrupted, student) / "report.json").read_bytes(), student


def test_resume_after_sigkills_at_random_moments(klass, uninterrupted, tmp_path):
    """Five runs, each resuming the one before and SIGKILLed after a random delay (seeded:
    the same delays every time), then one run to the end: the same grades.csv as the
    uninterrupted run, every student in it exactly once, nothing left half written.

    The moments are not chosen by what is on disk, so they also land between a report's
    files, in the canary, in the class files; reports are written without an fsync each
    (renamed into place, synced at checkpoints), which a kill must not see."""
    rng = random.Random(19)
    out = tmp_path / "reports"
    progress = []
    for run in range(5):
        proc = start(klass, out, *(["--resume"] if run else []))
        try:
            time.sleep(rng.uniform(0.3, 3.0))
            running = proc.poll() is None
        finally:
            kill_group(proc)
        assert wait_until(lambda pid=proc.pid: not group_alive(pid), 2), group_alive(proc.pid)
        for student in finished(out):  # renamed into place whole, whenever the kill came
            json.loads((student_folder(out, student) / "report.json").read_text(encoding="utf-8"))
        progress.append((running, len(finished(out))))
    killed_midway = [n for running, n in progress if running and n < len(students(klass))]
    if len(killed_midway) < 3:
        pytest.fail(f"too few kills landed while students were being graded: {progress}")

    resumed = grade(klass, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    rows = list(csv.reader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8"))))[1:]
    assert sorted(row[0] for row in rows) == students(klass), "each student exactly once"
    assert (out / "grades.csv").read_bytes() == (uninterrupted / "grades.csv").read_bytes(), progress
    assert finished(out) == students(klass)
    assert temp_files(out) == [], temp_files(out)


def test_resume_removes_what_a_killed_write_left(klass, uninterrupted, tmp_path):
    """The state a SIGKILL between atomic_write's mkstemp and its rename leaves on disk.

    The kill itself lands in that ~1 ms window only by chance (a few % of kills), so the
    temporary file is planted, named as atomic_write names it; everything else is real.
    """
    out = tmp_path / "reports"
    proc = start(klass, out)
    try:
        wait_for_reports(proc, out, 3)
    finally:
        kill_group(proc)
    done = finished(out)
    cut = next(s for s in students(klass) if s not in done)
    student_folder(out, cut).mkdir(parents=True, exist_ok=True)
    (student_folder(out, cut) / ".report.json.k1ll3d.tmp").write_text('{"student": "' + cut + '", "sco')
    (student_folder(out, done[0]) / ".report.md.k1ll3d.tmp").write_text("# half a rep")
    resumed = grade(klass, out, "--resume")
    if resumed.returncode or (out / "grades.csv").read_bytes() != (uninterrupted / "grades.csv").read_bytes():
        pytest.fail(f"the resumed run itself went wrong: {resumed.stderr[-500:]}")
    assert temp_files(out) == [], f"left behind after --resume: {temp_files(out)}"


def test_the_next_run_removes_the_staging_folders_a_killed_run_left(klass, tmp_path):
    """A job process killed while grading leaves its staging folder in the temp folder;
    the next run removes it (and only folders no live process holds: test_robustness)."""
    out = tmp_path / "reports"
    tmp = Path(env(out)["TMPDIR"])
    proc = start(klass, out)
    try:
        deadline = time.monotonic() + 120
        while len(finished(out)) < 2 or not list(tmp.glob("grader-staging-*")):
            assert proc.poll() is None and time.monotonic() < deadline, "never 2 reports and a staging folder"
            time.sleep(0.005)
    finally:
        kill_group(proc)
    if not list(tmp.glob("grader-staging-*")):
        pytest.fail("the kill left no staging folder: the check would be blind")
    resumed = grade(klass, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in tmp.glob("grader-staging-*")) == []


def test_killing_the_grader_process_stops_its_jobs(klass, tmp_path):
    out = tmp_path / "reports"
    proc = start(klass, out)
    try:
        wait_for_reports(proc, out, 3)
        killed_at = time.time()
        proc.kill()  # the CLI's pid only, as the OOM killer or `kill -9 <pid>` would
        proc.wait()
        time.sleep(3)
        survivors = group_alive(proc.pid)
        # a report whose writing had begun is finished (never left half written): its
        # report.json lands within milliseconds; one graded or begun later must not
        written_after = sorted(s for s in finished(out)
                               if (student_folder(out, s) / "report.json").stat().st_mtime > killed_at + 0.25)
    finally:
        kill_group(proc)  # whatever is left of the run
    assert not written_after, f"reports written after the grader was killed: {written_after}"
    assert not survivors, "still running 3 s after the grader was killed:\n" + "\n".join(
        s[:150] for s in survivors)


def test_resume_regrades_a_student_whose_report_file_is_empty(klass, uninterrupted, tmp_path):
    """Report files are renamed into place without an fsync each (the file system is synced
    every few hundred students): after a power loss one can be whole in name and empty in
    content. Such a student is graded again; the others are kept as they are."""
    out = tmp_path / "reports"
    shutil.copytree(uninterrupted, out)
    empty, kept = students(klass)[1], [s for s in students(klass) if s != students(klass)[1]]
    (student_folder(out, empty) / "report.html").write_bytes(b"")
    before = stamps(out, kept)
    resumed = grade(klass, out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(kept)} student(s) kept from the earlier run" in resumed.stdout, resumed.stdout
    assert stamps(out, kept) == before
    assert (student_folder(out, empty) / "report.html").read_bytes() == \
        (student_folder(uninterrupted, empty) / "report.html").read_bytes()
    assert (out / "grades.csv").read_bytes() == (uninterrupted / "grades.csv").read_bytes()
