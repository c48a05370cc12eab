"""Grading on a real Dask cluster: a scheduler and two workers started here, on loopback.

Grades equal local grading's; a worker killed mid-batch loses nobody and counts nobody
twice; a scheduler that goes away stops the run with a clear message and --resume ends
it; a worker without full isolation takes no work unless the course allows it.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GRADER, REPO, SOLUTIONS

pytest.importorskip("distributed", reason="the [cluster] extra is not installed (pip install -e '.[cluster]')")

from grader.reports import student_folder  # noqa: E402

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]
CLASS = REPO / "examples" / "class"


class Cluster:
    """``dask scheduler`` and ``dask worker --nworkers N --nthreads 1``, as subprocesses."""

    def __init__(self, folder: Path, workers: int = 2, env: dict | None = None):
        self.folder, self.env = folder, {**os.environ, **(env or {})}
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / "scheduler.json"
        self.file.unlink(missing_ok=True)
        self.scheduler = self._start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file",
                                      str(self.file), "--port", "0", "--dashboard-address", ":0"], "scheduler")
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = self._start([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                    str(self.file), "--nworkers", str(workers), "--nthreads", "1",
                                    "--no-dashboard", "--death-timeout", "30"], "workers")
        self.wait_for(workers)

    def _start(self, argv: list[str], name: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(argv, stdout=log, stderr=log, env=self.env, start_new_session=True)

    def wait_for(self, count: int, timeout: float = 90) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(count, timeout=timeout)

    def worker_pids(self) -> list[int]:
        """The worker processes the nannies spawned (multiprocessing's spawn_main), not the nannies."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _ancestor(int(entry.name), self.workers.pid):
                try:
                    command = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if b"spawn_main" in command:
                    found.append(int(entry.name))
        return sorted(found)

    def stop(self) -> None:
        for proc in (self.workers, self.scheduler):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)


def _parent(pid: int) -> int:
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(data[data.rfind(")") + 2:].split()[1])


def _ancestor(pid: int, ancestor: int) -> bool:
    while pid > 1:
        pid = _parent(pid)
        if pid == ancestor:
            return True
    return False


def grade(*args, cwd=REPO, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*GRADER, "grade", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=900, **kwargs)


def rows(out: Path) -> list[list[str]]:
    with open(out / "grades.csv", newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local")
    done = grade(CLASS, "--out", out, "--jobs", "2")
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture
def cluster(tmp_path):
    made = Cluster(tmp_path / "dask")
    yield made
    made.stop()


def test_grades_on_the_cluster_equal_local_grades(cluster, local, tmp_path):
    done = grade(CLASS, "--out", tmp_path / "out", "--scheduler", cluster.address)
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path / "out") == rows(local)
    report = json.loads((student_folder(tmp_path / "out", "ada-book") / "report.json").read_text())
    graded_on = [n for n in report["notes"] if n.startswith("Graded on tcp://")]
    assert graded_on and "(isolation: full)" in graded_on[0], report["notes"]
    assert "run by every cluster worker" in done.stderr
    from distributed import Client

    with Client(cluster.address, timeout=30) as client:  # the plugin stays set up after the run
        sampling = client.run(lambda dask_worker: dask_worker.periodic_callbacks["profile"].is_running())
    assert sampling and not any(sampling.values()), f"Dask's profiler samples the grading workers: {sampling}"


def grade_killing_a_worker(cluster, folder: Path, out: Path, after: int) -> list[list[str]]:
    """Grade ``folder`` on the cluster, SIGKILL one grading process once ``after`` reports are
    written, and return grades.csv's rows; each student must appear in it exactly once."""
    run = subprocess.Popen([*GRADER, "grade", str(folder), "--out", str(out), "--scheduler", cluster.address],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("students/*/report.json"))) < after and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = cluster.worker_pids()
    assert victims, "no grading process found to kill"
    os.kill(victims[0], signal.SIGKILL)
    _, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    got = rows(out)
    students = [r[0] for r in got[1:]]
    assert len(students) == len(set(students)), "a student graded twice"
    return got


def test_a_worker_killed_mid_batch_loses_nobody(cluster, local, tmp_path):
    got = grade_killing_a_worker(cluster, CLASS, tmp_path / "out", after=1)
    assert got == rows(local)


def test_tasks_of_several_students_grade_each_once_even_when_a_worker_dies(cluster, tmp_path):
    """A class large enough for several students per task (``cluster.chunk``): grades equal
    local grading's, and a worker killed mid-batch still leaves every student exactly once."""
    from grader.cluster import chunk

    big = tmp_path / "big"
    names = sorted(p.name for p in CLASS.iterdir() if p.is_dir())[:6]
    for i in range(132):
        shutil.copytree(CLASS / names[i % len(names)], big / f"s{i:03d}-{names[i % len(names)]}")
    assert chunk(132) == 2
    local_out = tmp_path / "local"
    assert grade(big, "--out", local_out, "--jobs", "2").returncode == 0
    got = grade_killing_a_worker(cluster, big, tmp_path / "out", after=10)
    assert len(got) - 1 == 132
    assert got == rows(local_out)


def test_a_tasks_reply_is_one_json_text_and_a_garbled_one_fails_only_its_students():
    from concurrent.futures import Future

    from grader.cluster import _results

    def reply(data: bytes) -> Future:
        future = Future()
        future.set_result(data)
        return future

    sent = {"student": "ada", "tests": [], "notes": [], "files": {"report.md": "# ada"}}
    (got,) = _results(["ada"], reply(json.dumps([sent, {**sent, "student": "eve"}]).encode()))
    assert got[0] == "ada" and got[1].student == "ada" and got[2] == {"report.md": "# ada"}  # eve: not asked
    for garbled, said in ((b'[{"student": "ada"', "could not be read (JSONDecodeError"),  # cut short
                          (b"\xff", "could not be read (UnicodeDecodeError"),  # not UTF-8
                          ("[]", "replied with str, not the grader's results")):  # not bytes
        got = _results(["ada", "bob"], reply(garbled))
        assert [(student, files) for student, _, files in got] == [("ada", None), ("bob", None)]
        assert all(said in why for _, why, _ in got), got
    assert _results(["ada"], reply(b"[]")) == [("ada", "the cluster sent no result for this student", None)]


def test_students_per_task():
    from grader.cluster import chunk

    assert [chunk(n) for n in (0, 1, 63, 64, 200, 511, 512, 100_000)] == [1, 1, 1, 1, 3, 7, 8, 8]


def test_a_scheduler_that_goes_away_stops_the_run_and_resume_ends_it(local, tmp_path):
    out = tmp_path / "out"
    first = Cluster(tmp_path / "dask1")
    try:
        run = subprocess.Popen([*GRADER, "grade", str(CLASS), "--out", str(out), "--scheduler", first.address],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while len(list(out.glob("students/*/report.json"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(first.scheduler.pid, signal.SIGKILL)
        _, stderr = run.communicate(timeout=300)
    finally:
        first.stop()
    assert run.returncode == 4, stderr
    assert "scheduler went away" in stderr and "--resume" in stderr
    second = Cluster(tmp_path / "dask2")
    try:
        done = grade(CLASS, "--out", out, "--scheduler", second.address, "--resume")
    finally:
        second.stop()
    assert done.returncode == 0, done.stderr
    assert rows(out) == rows(local)


def test_no_scheduler_is_a_clear_error(tmp_path):
    """After ``[cluster] connect_timeout`` seconds (30 by default), not a hang."""
    shutil.copytree(SOLUTIONS, tmp_path / "course" / "solutions" / "backprop")
    (tmp_path / "course" / "course.toml").write_text("[cluster]\nconnect_timeout = 2\n")
    start = time.monotonic()
    done = grade(CLASS, "--out", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9", cwd=tmp_path / "course")
    assert done.returncode == 4 and "no Dask scheduler answers at tcp://127.0.0.1:9" in done.stderr
    assert time.monotonic() - start < 25


def test_a_worker_without_full_isolation_takes_no_work_unless_allowed(tmp_path):
    shutil.copytree(SOLUTIONS, tmp_path / "course" / "solutions" / "backprop")
    shutil.copytree(CLASS / "ada-book", tmp_path / "class" / "ada-book")
    reduced = Cluster(tmp_path / "dask", workers=1, env={"GRADER_BWRAP": str(tmp_path / "no-bwrap")})
    try:
        refused = grade(tmp_path / "class", "--out", tmp_path / "r1", "--scheduler", reduced.address,
                        cwd=tmp_path / "course")
        (tmp_path / "course" / "course.toml").write_text("[cluster]\nallow_reduced_isolation = true\n")
        allowed = grade(tmp_path / "class", "--out", tmp_path / "r2", "--scheduler", reduced.address,
                        cwd=tmp_path / "course")
    finally:
        reduced.stop()
    assert refused.returncode == 3, refused.stderr
    assert "cannot grade" in (tmp_path / "r1" / "grader-errors.log").read_text()
    assert allowed.returncode == 0, allowed.stderr
    report = json.loads((student_folder(tmp_path / "r2", "ada-book") / "report.json").read_text())
    assert "isolation: reduced" in report["isolation"]


def test_a_changed_hidden_test_is_really_regraded(cluster, tmp_path):
    """Tasks are keyed by the hidden tests' hash: the same hand-in, graded again after a hidden
    test changed, is graded anew (not Dask's cached result for equal arguments)."""
    shutil.copytree(SOLUTIONS, tmp_path / "course" / "solutions" / "backprop")
    shutil.copytree(CLASS / "ada-book", tmp_path / "class" / "ada-book")
    first = grade(tmp_path / "class", "--out", tmp_path / "r1", "--scheduler", cluster.address,
                  cwd=tmp_path / "course")
    (tmp_path / "course" / "solutions" / "backprop" / "hidden" / "test_more.py").write_text(
        "import pytest\n\n@pytest.mark.graded(part='Affine', points=2)\ndef test_extra(student):\n    pass\n")
    second = grade(tmp_path / "class", "--out", tmp_path / "r2", "--scheduler", cluster.address,
                   cwd=tmp_path / "course")
    assert first.returncode == second.returncode == 0, second.stderr
    assert float(rows(tmp_path / "r2")[1][2]) == float(rows(tmp_path / "r1")[1][2]) + 2


def test_slurm_job_script_follows_the_course(tmp_path):
    from grader.cluster import jobqueue_cluster
    from grader.course import parse_settings

    settings = parse_settings('[cluster]\nqueue = "short"\naccount = "ml-course"\ncores = 4\nprocesses = 4\n'
                              'memory = "8GB"\nwalltime = "00:30:00"\n')
    cluster = jobqueue_cluster(settings.cluster)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p short", "#SBATCH -A ml-course", "#SBATCH -n 1", "#SBATCH --cpus-per-task=4",
                 "#SBATCH -t 00:30:00", "--nthreads 1", "--nworkers 4"):
        assert line in script, (line, script)


def test_local_grading_never_imports_dask(tmp_path):
    shutil.copytree(CLASS / "ada-book", tmp_path / "class" / "ada-book")
    probe = ("import sys\nfrom grader.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             "assert 'distributed' not in sys.modules and 'dask' not in sys.modules, 'dask was imported'\n")
    done = subprocess.run([sys.executable, "-c", probe, "grade", str(tmp_path / "class"), "--out",
                           str(tmp_path / "r")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_the_bundle_unpacks_without_pythons_data_filter(tmp_path, monkeypatch):
    """Debian 12's Python (3.11.2) has no tarfile "data" filter: every worker failed to set up
    there. Without it the same refusals are made by hand."""
    import io
    import tarfile

    from grader import cluster
    from grader.assignment import Assignment

    packed = cluster.bundle(Assignment.load(SOLUTIONS))
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    cluster._unpack(packed, tmp_path / "ok")
    assert (tmp_path / "ok" / SOLUTIONS.name / "assignment.toml").is_file()
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escaped.py")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(tarfile.TarError, match="refused"):
        cluster._unpack(evil.getvalue(), tmp_path / "evil")
    assert not (tmp_path / "escaped.py").exists()
