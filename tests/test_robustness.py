"""What the machine and odd files do to a batch: never a grader failure, never the student's loss.

- Files Python cannot even parse (a NUL byte, nesting too deep for the compiler) are
  salvaged like syntax errors: the block is left out with a note naming the file.
- A student folder that is a symbolic link is skipped, and the terminal says why.
- A worker that cannot start because the sandbox uid is out of processes (EAGAIN,
  real processes filling a real uid) is retried, and in the end reported as the
  grader's failure, not scored as the student's 0.
- Sandbox uids are leased machine-wide; staging folders are swept only when no live
  process holds them (real processes, real SIGKILL).
- Every student process starts from the same state: even unseeded numpy draws repeat.

How these were shown to fail: before the fixes, the deep-nesting file made
``submission.salvage`` raise MemoryError/RecursionError, so ``grade_one`` reported the
student as a grader failure with 0 points; the NUL byte left the whole layers.py
unimportable (every layer 0). The full-uid worker was charged to the student as
"Importing your files failed" (0, no grader error), with no retry. ``sweep_staging``
and ``lease_uid`` did not exist (fixed uids, unlocked mkdtemp folders).
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKPROP, FULL, GRADER, REPO, make_grading, write_submission

from grader import batch, host, sandbox
from grader.batch import grade_class
from grader.hidden import session
from grader.intake.submission import Submission, stage
from grader.reports import student_folder
from grader.sandbox import Limits
from grader.worker import client

pytestmark = pytest.mark.sandbox

FILES = ("report.json", "report.md", "report.html", "results.json")
SIGMOID = BACKPROP.part("Sigmoid").max_points


def report(out: Path, student: str) -> dict:
    return json.loads((student_folder(out, student) / "report.json").read_text(encoding="utf-8"))


# --- files Python cannot parse ---------------------------------------------------------
def test_unparsable_files_become_notes_not_grader_failures(tmp_path):
    root, out = tmp_path / "class", tmp_path / "reports"
    write_submission(root / "honest")
    nul = write_submission(root / "nul-byte")  # a NUL byte inside class Sigmoid only
    layers = (nul / "layers.py").read_text(encoding="utf-8")
    marker = "        self.out = out\n        return out\n"
    assert layers.count(marker) == 1
    (nul / "layers.py").write_bytes(layers.replace(marker, marker.replace("return out", "return out  # \0"))
                                    .encode())
    deep = write_submission(root / "too-deep")  # a helper nobody calls, nested beyond the compiler
    with open(deep / "two_layer_net.py", "a", encoding="utf-8") as fh:
        fh.write("\n\ndef _unused():\n    return " + "-" * 200_000 + "1\n")
    long = write_submission(root / "too-long")  # 1+1+...: a RecursionError building the tree
    with open(long / "buy_apple_orange.py", "a", encoding="utf-8") as fh:
        fh.write("\n\nTOTAL = " + "1 + " * 150_000 + "1\n")

    result = grade_class(root, out, make_grading(), jobs=2)

    assert result.grader_errors == 0, [r.notes for r in result.results]
    assert sorted(r.student for r in result.results) == ["honest", "nul-byte", "too-deep", "too-long"]
    for student in ("honest", "nul-byte", "too-deep", "too-long"):
        for name in FILES:
            assert (student_folder(out, student) / name).stat().st_size > 0, (student, name)
        assert not any(n.startswith("grader error") for n in report(out, student)["notes"]), student
    notes = {s: report(out, s)["notes"] for s in ("nul-byte", "too-deep", "too-long")}
    assert any(n.startswith("layers.py, line ") and "NUL byte" in n and "class Sigmoid was left out" in n
               for n in notes["nul-byte"]), notes["nul-byte"]
    assert any(n.startswith("two_layer_net.py, line ") and "too deeply nested" in n
               and "function _unused was left out" in n for n in notes["too-deep"]), notes["too-deep"]
    assert any(n.startswith("buy_apple_orange.py, line ") and "too deeply nested" in n
               for n in notes["too-long"]), notes["too-long"]
    # only the block that could not be parsed is lost
    assert report(out, "honest")["score"] == FULL
    assert report(out, "nul-byte")["score"] == FULL - SIGMOID
    assert report(out, "too-deep")["score"] == FULL
    assert report(out, "too-long")["score"] == FULL


# --- student folders that are links ----------------------------------------------------
def test_a_linked_student_folder_is_skipped_with_its_reason(tmp_path):
    root, out = tmp_path / "class", tmp_path / "reports"
    write_submission(root / "alice")
    (root / "mallory").symlink_to(REPO / "solutions" / "backprop", target_is_directory=True)
    done = subprocess.run([*GRADER, "grade", str(root), "--out", str(out), "--jobs", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "skipped mallory: a symbolic link" in " ".join(done.stderr.split()), done.stderr
    assert not student_folder(out, "mallory").exists()
    assert report(out, "alice")["score"] == FULL


# --- a sandbox uid out of processes ----------------------------------------------------
def _fill(uid: int, count: int) -> list[subprocess.Popen]:
    """``count`` real processes of ``uid`` and of the zygote's own (real) uid:
    RLIMIT_NPROC counts them, so the worker's execve fails with EAGAIN."""
    uids = [uid, sandbox.zygote_uid(uid)]
    return [subprocess.Popen(["sleep", "60"], user=u, group=uid, extra_groups=[],
                             stdin=subprocess.DEVNULL) for u in uids for _ in range(count)]


def _end(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture
def full_uid():
    """A uid leased for this test (no other grader uses it) and a course whose worker may
    have 4 processes: 6 sleeping processes of that uid (and of its zygote's) leave it none."""
    if os.geteuid() != 0:
        pytest.skip("the sandbox uid is the grader's own when not root")
    lease = host.lease_uid()
    sleepers = _fill(lease.uid, 6)
    try:
        yield lease.uid, sleepers, make_grading(limits=Limits(processes=4, call_seconds=2.0))
    finally:
        _end(sleepers)
        client.stop_zygotes(lease.uid)
        lease.release()


def test_a_worker_that_cannot_start_is_the_graders_failure(full_uid, tmp_path):
    uid, _, course = full_uid
    folder = write_submission(tmp_path / "class" / "honest")
    started = time.monotonic()
    result = batch.grade_one(Submission("honest", folder), tmp_path / "reports", course, uid=uid)
    assert time.monotonic() - started > sum(session.START_RETRIES), "it was not retried"
    assert result.grader_errors and "WorkerUnavailable" in result.grader_errors[0], result.notes
    assert result.notes[0].startswith("grader error: WorkerUnavailable"), result.notes
    assert not any("Importing your files failed" in n for n in result.notes), result.notes
    written = report(tmp_path / "reports", "honest")
    assert all("The grader failed on this submission" in t["feedback"] for t in written["tests"])


def test_a_worker_that_starts_on_a_retry_costs_nothing(full_uid, tmp_path):
    uid, sleepers, course = full_uid
    folder = write_submission(tmp_path / "class" / "honest")
    threading.Timer(1.0, _end, args=(sleepers,)).start()  # the uid frees up during the retries
    result = batch.grade_one(Submission("honest", folder), tmp_path / "reports", course, uid=uid)
    assert not result.grader_errors, result.grader_errors
    assert result.score == FULL, result.notes


# --- machine-wide leases ---------------------------------------------------------------
HOLD = """
import sys, time
from grader import host
what = sys.argv[1]
if what == "uid":
    lease = host.lease_uid()
    print(lease.uid, flush=True)
else:
    cm = host.staging()
    print(cm.__enter__(), flush=True)
time.sleep(60)
"""


def _holder(what: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, what], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp)})
    return proc, proc.stdout.readline().strip()


def _sigkill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="uids are leased only when the grader is root")
def test_a_leased_uid_is_held_until_its_process_dies(tmp_path):
    other, held = _holder("uid", tmp_path)
    try:
        mine = host.lease_uid()
        try:
            assert mine.uid != int(held)
        finally:
            mine.release()
        lock = next(d for d in host.LEASE_DIRS if d.is_dir()) / f"uid-{held}.lock"
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _sigkill(other)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free the moment its holder died
        finally:
            os.close(fd)
    finally:
        if other.poll() is None:
            _sigkill(other)


def test_only_staging_folders_of_dead_processes_are_swept(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    killed, stale = _holder("staging", tmp)
    live, used = _holder("staging", tmp)
    try:
        (Path(stale) / "student").mkdir()
        _sigkill(killed)
        assert Path(stale).is_dir() and Path(used).is_dir()
        assert host.sweep_staging(tmp) == [Path(stale)]
        assert not Path(stale).exists()
        assert Path(used).is_dir(), "a live process's staging folder was removed"
    finally:
        _sigkill(live)
    assert host.sweep_staging(tmp) == [Path(used)]
    assert list(tmp.iterdir()) == []


# --- every student starts from the same process state -----------------------------------
def staged_worker(tmp_path, extra: str = ""):
    """A worker on the reference hand-in (plus ``extra`` appended to layers.py)."""
    folder = write_submission(tmp_path / "s")
    with (folder / "layers.py").open("a", encoding="utf-8") as fh:
        fh.write(extra)
    tmp_path.chmod(0o755)  # the sandbox uid reads the staged copy
    return client.Worker(stage(Submission("s", folder), tmp_path / "staged", BACKPROP).folder, Limits(), "auto",
                         modules=BACKPROP.modules)


def test_a_slope_probe_restores_the_weights_bit_for_bit(tmp_path):
    """The numerical check moves a weight in place and must leave it exactly as it was,
    also when the loss raises on the way (the exception is the probe's result)."""
    with staged_worker(tmp_path) as worker:
        worker.start()
        program = client.Program()
        program.seed(7)
        net = program.new("two_layer_net", "TwoLayerNet", 5, 4, 3)
        before = program.call(program.get(net, "params", "W1"), "copy")
        x, t = program.value(np.random.default_rng(0).standard_normal((3, 5))), program.value(np.array([0, 1, 2]))
        program.keep(program.slope(net, ("params", "W1"), 11, 1e-5, "loss", x, t),
                     program.slope(net, ("params", "W1"), 12, 1e-5, "loss", x, program.value(np.zeros(3) + 9)),
                     before, program.get(net, "params", "W1"))
        (pair, raised, w_before, w_after), _ = worker.run(program)
    assert isinstance(pair, tuple) and all(isinstance(v, float) for v in pair) and pair[0] != pair[1]
    assert isinstance(raised, client.protocol.Raised), raised
    assert np.array_equal(w_before, w_after) and w_after.tobytes() == w_before.tobytes()


def test_unseeded_random_draws_are_the_same_for_every_student(tmp_path):
    """Same hand-in, same score: each student process starts with numpy's global generator
    in one fixed state (the zygote seeds it), not one drawn from the OS at start-up."""
    draws = []
    for k in range(2):
        with staged_worker(tmp_path / str(k), "\n\ndef draw():\n    return np.random.rand(4)\n") as worker:
            worker.start()
            program = client.Program()
            program.keep(program.func("layers", "draw"))
            (values,), _ = worker.run(program)
            draws.append(values)
        client.stop_zygotes()  # the next draw in a new sandbox, as on another machine or run
    assert draws[0].shape == (4,) and (draws[0] == draws[1]).all(), draws


def test_one_sandbox_serves_student_after_student(tmp_path):
    """A student who leaves nothing behind does not retire the sandbox: the next one is
    forked by the same zygote, not by a new bubblewrap that imports numpy again (~0.3 s
    each). On a kernel with persistent keyrings, emptying one the zygote did not possess
    failed (EACCES), and every student retired it."""
    client.stop_zygotes()
    with staged_worker(tmp_path) as worker:
        worker.start()
        zygote = worker.zygote.proc.pid
        for _ in range(3):
            worker.close()
            assert worker.zygote.alive and worker.zygote.proc.pid == zygote, "the sandbox was retired"
            worker.start()
        assert worker.zygote.proc.pid == zygote


# --- programs sent ahead (Worker.prefetch) answer exactly as programs sent one by one ----
TALLY = """

import os as _os

SEEN = []


def note(x):
    SEEN.append(x)
    if len(SEEN) == CRASH_AT:
        _os._exit(3)
    if x < 0:
        raise ValueError("negative")
    return len(SEEN)


def seen():
    return list(SEEN)
"""


def tally_programs() -> list[client.Program]:
    """Programs whose answers show the order they ran in (module state), one that raises."""
    programs = []
    for x in (1, -1, 2, 3):
        program = client.Program()
        program.keep(program.func("layers", "note", x))
        programs.append(program)
    program = client.Program()
    program.keep(program.func("layers", "seen"))
    return [*programs, program]


def answers(worker, programs, ahead: bool) -> tuple[list, str]:
    """What each program gave (values, or the exception's type and message), and the output."""
    worker.start()
    if ahead:
        worker.prefetch(programs)
        assert len(worker._ahead) == len(programs) or not worker.alive, "nothing was sent ahead"
    got = []
    for program in programs:
        try:
            values, trace = worker.run(program)
            got.append((values, trace, worker.counts))
        except client.StudentError as exc:
            got.append(("student", exc.error["type"], exc.error["message"], exc.step))
        except client.WorkerError as exc:
            got.append(("worker", str(exc)))
    worker.close()
    return got, worker.output.text()


@pytest.mark.parametrize("crash_at", [0, 3], ids=["no crash", "crash at the third"])
def test_programs_sent_ahead_answer_as_programs_sent_one_by_one(tmp_path, crash_at):
    """Same answers, same order of execution in the student's process (its module state
    counts the calls), the student's exception where it was raised; a process that dies at
    one program answers it with the WorkerError, and the programs after it never run."""
    sequential, ahead = (answers(staged_worker(tmp_path / mode, f"\nCRASH_AT = {crash_at}\n" + TALLY),
                                 tally_programs(), mode == "ahead") for mode in ("one by one", "ahead"))
    assert ahead == sequential
    got = [entry[0] if entry[0] in ("student", "worker") else entry[0][0] for entry in ahead[0]]
    if crash_at:
        assert got == [1, "student", "worker", "worker", "worker"], ahead
        assert "exit code 3" in ahead[0][2][1]
    else:
        assert got == [1, "student", 3, 4, [1, -1, 2, 3]], ahead


def test_a_program_run_out_of_its_prefetched_order_is_refused(tmp_path):
    """The worker already ran the programs in the order sent: running another first would
    answer from the wrong reply, so it is a grader bug, said as such."""
    worker = staged_worker(tmp_path, "\nCRASH_AT = 0\n" + TALLY)
    programs = tally_programs()
    with worker:
        worker.start()
        worker.prefetch(programs)
        with pytest.raises(RuntimeError, match="out of the order"):
            worker.run(programs[1])


# --- memory flat in the class size ------------------------------------------------------------
def test_a_job_processs_pytest_session_keeps_nothing_per_student(grade):
    """One pytest session grades a whole class: whatever it keeps per student (pytest's
    reports, fixture finalizers of session-scoped fixtures) grows with the class - 457 MB
    at N = 5,000 before. Objects counted after 4 students and after 12 must be the same."""
    import collections
    import gc

    import _pytest.fixtures
    import _pytest.reports

    kinds = (_pytest.reports.TestReport, _pytest.fixtures.SubRequest, _pytest.fixtures.TopRequest)
    honest = REPO / "examples" / "class" / "ada-book"

    def held() -> collections.Counter:
        gc.collect()
        return collections.Counter(type(o).__name__ for o in gc.get_objects() if isinstance(o, kinds))

    for _ in range(4):
        grade(honest)
    before = held()
    for _ in range(8):
        grade(honest)
    assert held() == before, f"kept per student: {held() - before}"


def test_a_grading_session_keeps_no_report_of_the_students_it_graded(grade, tmp_path):
    """A session lasts a whole class: pytest's terminal reporter kept every report of it
    (three per item, each with the item's keywords), 450 MB of a class of 5,000. The grader's
    session keeps none, and a failed ``assert`` is still explained (with the reporter's writer)."""
    import gc

    from _pytest.reports import TestReport

    folder = write_submission(tmp_path / "ada")
    for _ in range(3):
        assert grade(folder).score == FULL
    gc.collect()
    kept = [r.nodeid for r in gc.get_objects() if isinstance(r, TestReport) and "test_exercise" in r.nodeid]
    assert kept == []
