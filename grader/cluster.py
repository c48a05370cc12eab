"""Grading on a Dask cluster: a running scheduler, or a SLURM/PBS cluster via dask-jobqueue.

Nothing here is imported on the local path (``distributed`` costs a second to import).

- The assignment (reference, declarations, hidden tests) and the course's settings travel
  to each worker once, as bytes, inside ``GradingPlugin``; its ``setup`` unpacks them into
  a private folder, leases a sandbox uid, starts the worker's warm zygote and runs the
  canary. A worker whose canary fails - or that has no full isolation, unless the course
  allows reduced isolation - takes no work (``WorkerRefused``: Dask runs the task
  elsewhere).
- Each hand-in travels as bytes (its files, a few kilobytes), never as a path on a shared
  filesystem. A task grades it in the worker's sandbox and returns the result as JSON;
  only the client writes reports, atomically, exactly once per student.
- Task keys hold the student, a hash of their files and a hash of the assignment and
  settings: a regrade after a hidden test changed really runs (Dask's ``pure=True`` would
  reuse results for identical arguments).
- Faults: a worker killed mid-batch has its tasks run elsewhere (Dask's own rescheduling);
  a scheduler that goes away stops the run (``SchedulerGone``) with what was written kept
  for ``--resume``.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import shutil
import stat
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError
from pathlib import Path, PurePosixPath

from distributed import Client, WorkerPlugin, as_completed, get_worker

from grader import canary, host, intake
from grader.assignment import Assignment
from grader.course import ClusterSettings, Settings
from grader.grading import Grading
from grader.intake.reading import HandinError, read_bytes, walk
from grader.results import StudentResult

PLUGIN = "grader"
MAX_HANDIN_BYTES = 16 << 20   # what a hand-in may weigh on the wire (files above it are left out, noted)
RETRIES = 2                   # a task whose worker refused it or died runs again elsewhere


class WorkerRefused(RuntimeError):
    """This worker cannot grade (its canary failed, or its isolation is not full)."""


class SchedulerGone(RuntimeError):
    """The scheduler went away mid-run: what was graded is written; ``--resume`` continues."""


# --- the worker side -----------------------------------------------------------------------
class GradingPlugin(WorkerPlugin):
    """Set up once per worker: the assignment unpacked, a uid leased, the canary run."""

    name = PLUGIN
    idempotent = False  # registered again, it replaces the old one: a changed assignment is set up anew

    def __init__(self, bundle: bytes, assignment: str, settings: dict, allow_reduced: bool):
        self.bundle, self.assignment, self.settings = bundle, assignment, settings
        self.allow_reduced = allow_reduced
        self.status: dict = {"ok": False, "why": "not set up"}

    def setup(self, worker) -> None:
        self.lock = threading.Lock()  # one student at a time: one zygote, one pytest session
        self.paused = _pause_profiler(worker)
        self.folder = Path(tempfile.mkdtemp(prefix="grader-dask-"))
        try:
            solutions = self.folder / "solutions"
            _unpack(self.bundle, solutions)
            settings = _settings(self.settings)
            assignment = Assignment.load(solutions / self.assignment)
            self.grading = Grading(assignment, settings, (solutions,))
            self.uid = host.process_uid()
            proof = canary.run(self.grading, self.uid)
        except Exception as exc:  # a worker that cannot even set up takes no work
            self.status = {"ok": False, "why": f"{type(exc).__name__}: {exc}", "isolation": "unknown"}
            return
        fit = proof.ok and (proof.full or self.allow_reduced)
        why = proof.report() if not proof.ok else ("" if fit else f"{proof.isolation}, and the course requires "
                                                   "full isolation ([cluster] allow_reduced_isolation = false)")
        self.status = {"ok": fit, "why": why, "isolation": proof.isolation, "canary_seconds": proof.seconds}

    def teardown(self, worker) -> None:
        from grader.hidden.session import close_all
        from grader.worker import client

        close_all()
        client.stop_zygotes()
        for callback in getattr(self, "paused", []):
            callback.start()
        shutil.rmtree(getattr(self, "folder", ""), ignore_errors=True)


def _pause_profiler(worker) -> list:
    """Stop Dask's statistical profiler on a grading worker (its teardown starts it again):
    every 10 ms it walked each thread's stack, and grading runs ~70 frames deep under
    pytest - a few percent of the worker's CPU, for a dashboard tab nobody reads while
    grading."""
    paused = []
    for name in ("profile", "profile-cycle"):
        callback = getattr(worker, "periodic_callbacks", {}).get(name)
        if callback is not None and callback.is_running():
            callback.stop()
            paused.append(callback)
    return paused


def grade_remote(handins: list[tuple[str, bool, dict[str, bytes]]]) -> bytes:
    """The task: grade a few hand-ins (each: student, loose notebook or not, files as bytes)
    in this worker's sandbox, one after the other; one result (or the grader's failure) each,
    as one JSON text: Dask measures, pickles and sends bytes as they are, where the nested
    results cost it ~100 calls of its ``sizeof`` and a pickle per student."""
    worker = get_worker()
    plugin = worker.plugins[PLUGIN]
    if not plugin.status.get("ok"):
        raise WorkerRefused(f"worker {worker.address} cannot grade: {plugin.status.get('why')}")
    from grader import batch

    out = []
    for student, loose, files in handins:
        try:
            with plugin.lock, tempfile.TemporaryDirectory(prefix="grader-handin-") as tmp:
                folder = Path(tmp) / "handin"
                _write_files(folder, files)
                notebook = next(iter(folder.glob("*.ipynb")), None) if loose else None
                sub = intake.Submission(student, folder, notebook)
                with host.staging() as staging:
                    result = plugin.grading.grade(sub, staging, plugin.uid)
        except Exception as exc:  # a grader bug: this student is reported, the others go on
            out.append({"student": student, "failed": f"{type(exc).__name__}: {exc}"})
            continue
        result.notes.append(f"Graded on {worker.address} ({plugin.status['isolation']}).")
        data = result.to_json()
        data["grader_errors"] = list(result.grader_errors)
        data["files"] = batch.render(result, plugin.grading)  # rendered here: the client only writes them
        out.append(data)
    return json.dumps(out, separators=(",", ":")).encode()


# --- the client side -----------------------------------------------------------------------
def connect(scheduler: str | None, cluster: ClusterSettings | None, timeout: float = 30) -> Client:
    """A client of the running scheduler at ``scheduler``, or of a dask-jobqueue cluster it starts."""
    if scheduler:
        try:
            return Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise SchedulerGone(f"no Dask scheduler answers at {scheduler} ({exc})") from None
    assert cluster is not None
    made = jobqueue_cluster(cluster)
    made.adapt(minimum_jobs=0, maximum_jobs=cluster.maximum_jobs)
    return Client(made, timeout=timeout)


def jobqueue_cluster(cluster: ClusterSettings):
    """The dask-jobqueue cluster for ``[cluster]`` (its ``job_script()`` is what gets submitted)."""
    import dask_jobqueue

    kind = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}[cluster.kind]
    return kind(queue=cluster.queue, account=cluster.account, cores=cluster.cores, processes=cluster.processes,
                memory=cluster.memory, walltime=cluster.walltime,
                worker_extra_args=["--nthreads", "1"])  # one student at a time per grading process


def bundle(assignment: Assignment) -> bytes:
    """The assignment's folder as a tar: what every worker grades with."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        tar.add(assignment.folder, arcname=assignment.folder.name,
                filter=lambda info: None if "__pycache__" in info.name else info)
    return data.getvalue()


def grade_all(todo: list[intake.Submission], grading: Grading, client: Client,
              allow_reduced: bool) -> Iterator[tuple[str, StudentResult | str, dict | None]]:
    """(student, result, its report files) as each arrives, exactly once per student, graded
    on the cluster; a task that failed on every try gives (student, why, None) instead: the
    grader's failure.

    A task grades a few students (``chunk``): the scheduler, the worker and this client
    each pay a few milliseconds per task. Tasks are sent a few per worker at a time
    (``_in_flight``), so hand-ins are read only as they are sent and no worker is left
    with a queue while another idles."""
    packed = bundle(grading.assignment)
    spec = {"seed": grading.settings.seed, "sandbox": grading.settings.sandbox,
            "limits": dict(vars(grading.settings.limits))}
    version = hashlib.sha256(packed + json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    size = chunk(len(todo))

    def tasks():
        for start in range(0, len(todo), size):
            handins, keys = [], []
            for sub in todo[start:start + size]:
                files, loose = handin_files(sub)
                digest = hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(files.items()))).hexdigest()
                handins.append((sub.student, loose, files))
                keys.append(f"{sub.student}:{digest}")
            # keyed by every student, their files and the hidden tests: a regrade after a change runs
            key = f"grade-{handins[0][0]}-{hashlib.sha256(chr(10).join(keys).encode()).hexdigest()[:16]}-{version}"
            yield key, handins

    try:
        client.register_plugin(GradingPlugin(packed, grading.assignment.name, spec, allow_reduced), name=PLUGIN)
        queue, students, seen = tasks(), {}, set()
        running = as_completed()

        def submit(count: int) -> None:
            for key, handins in itertools.islice(queue, count):
                future = client.submit(grade_remote, handins, key=key, retries=RETRIES, pure=False)
                students[future] = [student for student, _, _ in handins]
                running.add(future)

        # a few tasks per worker in flight, the next sent as one ends: the workers pull their
        # work as local job processes do (handed out all at once, a worker that drew the slow
        # hand-ins - a hang costs a deadline - finished last while the other sat idle)
        submit(_in_flight(client))
        for future in running:
            for student, result, files in _results(students.pop(future), future):
                if student not in seen:
                    seen.add(student)
                    yield student, result, files
            submit(max(_in_flight(client) - running.count(), 0))
    except (OSError, TimeoutError, CancelledError) as exc:  # CommClosedError is an OSError
        said = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchedulerGone(f"the Dask scheduler went away ({said})") from None


def _in_flight(client: Client) -> int:
    """Tasks to keep sent: two per grading process the scheduler knows of (at least four,
    for a cluster whose workers are still starting)."""
    try:
        workers = len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - no answer yet: the minimum
        workers = 0
    return max(4, 2 * workers)


def chunk(students: int) -> int:
    """Students per task: a few, while the tasks stay many enough to spread over the workers
    and to lose little when a worker dies (1 for a class under 64, 8 from 512 on)."""
    return max(1, min(8, students // 64))


def workers_status(client: Client) -> dict[str, dict]:
    """address -> the grader plugin's status on that worker (canary, isolation)."""
    def status(dask_worker) -> dict:
        plugin = dask_worker.plugins.get(PLUGIN)
        return dict(plugin.status) if plugin else {"ok": False, "why": "the grader plugin is not set up"}
    return client.run(status)


def _results(students: list[str], future) -> list[tuple[str, StudentResult | str, dict | None]]:
    """Each student's (result, files) from a finished task, or why the grader failed on them."""
    try:
        found = future.result()
    except (OSError, TimeoutError, CancelledError):
        raise
    except Exception as exc:  # the task failed on every try: the grader's failure, not the students'
        return [(student, f"{type(exc).__name__} on the cluster: {exc}", None) for student in students]
    try:
        found = json.loads(found) if isinstance(found, bytes) else found
    except ValueError as exc:  # garbled on the way: these students are the grader's failure, said so
        why = f"the cluster's reply could not be read ({type(exc).__name__}: {str(exc)[:200]})"
        return [(student, why, None) for student in students]
    if not isinstance(found, list):
        return [(student, f"the cluster replied with {type(found).__name__}, not the grader's results", None)
                for student in students]
    by_student = {d.get("student"): d for d in found if isinstance(d, dict)}
    out = []
    for student in students:  # as the client sent them: a reply never names anyone else
        data = by_student.get(student)
        if data is None:
            out.append((student, "the cluster sent no result for this student", None))
        elif "failed" in data:
            out.append((student, f"{data['failed']} on the cluster", None))
        else:
            result = StudentResult.from_json(data)
            result.grader_errors = [str(e) for e in data.get("grader_errors", [])]
            files = data.get("files")
            out.append((student, result, {str(k): str(v) for k, v in files.items()}
                        if isinstance(files, dict) else None))
    return out


def handin_files(sub: intake.Submission) -> tuple[dict[str, bytes], bool]:
    """The hand-in's regular files as bytes by relative path (links skipped, size capped), and
    whether it is a loose notebook."""
    if sub.notebook is not None:
        return {sub.notebook.name: _read(sub.notebook, MAX_HANDIN_BYTES)}, True
    files, total = {}, 0
    for relative in sorted(walk(sub.folder).files):  # bounded: no recursion, no links, regular files only
        path = sub.folder / relative
        try:
            st = path.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or any(p.startswith(".") for p in relative.parts):
            continue
        if total + st.st_size > MAX_HANDIN_BYTES:
            continue
        files[relative.as_posix()] = _read(path, MAX_HANDIN_BYTES - total)
        total += len(files[relative.as_posix()])
    return files, False


def _read(path: Path, limit: int) -> bytes:
    try:
        return read_bytes(path, limit)[0]
    except HandinError:  # not a regular file (any more): the worker's staging says what is missing
        return b""


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Recreate a hand-in from its bytes; a path that would leave the folder is dropped."""
    folder.mkdir(parents=True)
    for name, data in files.items():
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            continue
        target = folder.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _unpack(bundle_: bytes, into: Path) -> None:
    """Unpack the assignment: Python's "data" filter where there is one (3.11.4 on; Debian 12's
    Python is 3.11.2, where every worker failed to set up), else its refusals by hand:
    folders and regular files only, nothing absolute or outside ``into``."""
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(bundle_), mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
            return
        members = tar.getmembers()
        for member in members:
            path = PurePosixPath(member.name)
            if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
                raise tarfile.TarError(f"the assignment bundle holds {member.name!r}: refused")
            member.mode &= 0o755
        tar.extractall(into, members=members)  # noqa: S202 - every member checked above


def _settings(spec: dict) -> Settings:
    from grader.sandbox import Limits

    return Settings(seed=spec["seed"], sandbox=spec["sandbox"], limits=Limits(**spec["limits"]))
