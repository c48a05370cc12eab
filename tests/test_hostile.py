"""Hostile hand-ins, graded for real: each attack gains nothing and harms nobody else.

Most attacks are graded together as ONE class (``grade_class``, 2 jobs, the real
sandbox), next to two honest students, so the same run proves that

- each attack gains nothing: every part scores what the same hand-in scores without
  the attack (its baseline); an attack that hangs or kills the worker costs only the
  parts that call the code it sits in (the forward checks of those parts keep their
  credit) and every other part equals the baseline, item by item;
- the honest students of the batch get exactly the report they get in a batch of
  their own;
- the batch completes, every report is written, none is over ``REPORT_CAP``;
- the students' files are never modified (hashed before and after);
- the files outside the submissions are untouched (other reports, grades.csv,
  sentinel files in the host's /tmp and home), no connection reaches the host;
- no process of a submission outlives its grading.

The attacks themselves are in ``tests/hostile/attacks.py``. The ones that try to
learn something print what they found (``HOSTILE-REPORT``); the report keeps a
submission's output, so the tests read it back from ``report.json``. Those built on
the wrong-db baseline swap in the reference Affine if they ever reach it, so a leak
shows up as points.

How the assertions were shown to fail: the "learning" attacks graded with
``make_grading(sandbox="off")`` (a throwaway run, the fork bomb and daemon left out) read
``solutions/`` and the hidden tests, imported ``grader.reference``, read the
reference through ``/proc/<pid>/root``, connected to the test's loopback listener,
overwrote another student's report.json, grades.csv and the /tmp sentinel: Affine
scored 18 instead of 15 for the disk, import and /proc attacks. Frame and gc walking
found nothing even then (the expected values live in the grader's process only). The
daemon graded with the sandbox off survived its batch and wrote its late marker:
``leftovers`` reported it at once and 4 s later. The honest-student and "other parts
equal the baseline" checks are what flagged the restart race and the shared-uid fork
bomb described in test_a_fork_bomb_in_another_batch_does_not_cost_this_one.

An attack that ever shows a hole again is marked ``xfail(strict=True)`` (``HOLE``)
with the reason and the engine function to change; none is marked today.

Runtime: about 45 s on 2 cores.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BACKPROP, FULL, GRADER, REPO, make_grading
from hostile import attacks as A
from hostile.procs import kill_group

from grader import sandbox
from grader.batch import grade_class
from grader.reports import REPORT_CAP, student_folder
from grader.sandbox import WORKER_UID, Limits

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

# a known hole: strict, and only an AssertionError counts (a broken check, which calls
# pytest.fail, or an exception, is a real failure, not the expected one)
HOLE = {"strict": True, "raises": AssertionError}
CALL_SECONDS = 2.0
# processes=8: a small process budget, so the fork bomb reaches it at once (each grading
# process leases its own uid machine-wide, so the bomb cannot reach anyone else's;
# see test_a_fork_bomb_in_another_batch_...).
COURSE = make_grading(limits=Limits(call_seconds=CALL_SECONDS, processes=8))
PARTS = BACKPROP.parts
SANDBOX_UIDS = range(WORKER_UID - 34, WORKER_UID + 1)  # 65500..65534: every slot uid
FORWARD_ITEM = re.compile(r"^\w+: (forward|loss|price) \(")
HONEST = {"honest-ref": "reference", "honest-wrongdb": "wrong-db"}
BASELINE_STUDENT = {"reference": "honest-ref", "wrong-db": "honest-wrongdb"}
IN_BATCH = ["sys-exit-at-import", "os-exit-in-backward", "busy-loop", "sleep-loop", "ignores-signals",
            "memory-bomb", "fork-bomb", "c-stack-overflow", "output-flood", "reads-the-disk",
            "imports-the-grader", "walks-frames-and-gc", "writes-files", "reads-grader-proc",
            "network", "daemon"]
STATUSES = {  # what the items an attack costs are marked as
    "memory-bomb": {"error", "timeout"},  # MemoryError, or the 2 s run out while it fills 1 GiB
}


# --- the host side: listeners, sentinels, a secret, a unique token -----------------------
@dataclasses.dataclass
class Host:
    token: str
    tcp: list[socket.socket]
    udp: socket.socket
    unix: socket.socket
    sentinels: dict[Path, str]  # path -> content it must keep
    new_files: list[Path]       # must never appear
    context: A.Context

    def connections(self) -> list[str]:
        got = []
        for server in [*self.tcp, self.unix]:
            try:
                while True:
                    conn, peer = server.accept()
                    got.append(f"{server.getsockname()!r} accepted {peer!r}")
                    conn.close()
            except BlockingIOError:
                pass
        try:
            while True:
                data, peer = self.udp.recvfrom(4096)
                got.append(f"udp datagram {data[:40]!r} from {peer!r}")
        except BlockingIOError:
            pass
        return got


def _host_ip() -> str | None:
    """An address of this host that is not loopback (UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith(("127.", "0.")) else ip


def _listen(family, address) -> socket.socket | None:
    server = socket.socket(family, socket.SOCK_STREAM)
    try:
        server.bind(address)
    except OSError:
        server.close()
        return None
    server.listen(16)
    server.setblocking(False)
    return server


@pytest.fixture(scope="module")
def host():
    token = f"hx{os.getpid()}x{secrets.token_hex(4)}"
    first = _listen(socket.AF_INET, ("127.0.0.1", 0))
    port = first.getsockname()[1]
    ip = _host_ip()
    tcp = [s for s in [first, _listen(socket.AF_INET6, ("::1", port)),
                       ip and _listen(socket.AF_INET, (ip, port))] if s]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 0))
    udp.setblocking(False)
    abstract = f"grader-hostile-{token}"
    unix = _listen(socket.AF_UNIX, "\0" + abstract)
    home = Path.home()
    sentinels = {Path(f"/tmp/grader-hostile-{token}-sentinel"): f"host /tmp sentinel {token}\n",
                 home / f".grader-hostile-{token}-sentinel": f"home sentinel {token}\n"}
    for path, text in sentinels.items():
        path.write_text(text)
    new_files = [Path(f"/tmp/grader-hostile-{token}-new"), home / f"grader-hostile-{token}-new",
                 Path(f"/tmp/grader-hostile-{token}-late")]
    secret = f"secret-{token}"
    os.environ["GRADER_HOSTILE_SECRET"] = secret  # inherited by the grading processes
    context = A.Context(token=token, repo=str(REPO), grader_pids=(os.getpid(), os.getppid()),
                        port=port, udp_port=udp.getsockname()[1], abstract=abstract,
                        host_ip=ip or "127.0.0.1", secret=secret,
                        sentinels=tuple(map(str, sentinels)), new_files=tuple(map(str, new_files)))
    yield Host(token, tcp, udp, unix, sentinels, new_files, context)
    os.environ.pop("GRADER_HOSTILE_SECRET", None)
    for server in [*tcp, udp, unix]:
        server.close()
    for path in [*sentinels, *new_files]:
        path.unlink(missing_ok=True)


# --- processes ----------------------------------------------------------------------------
def _table() -> dict[int, tuple[int, int, str, str]]:
    """pid -> (uid, ppid, start time, command line), as ``ps -eo uid,pid,ppid,lstart,args``."""
    out = subprocess.run(["ps", "-ww", "-eo", "uid=,pid=,ppid=,lstart=,args="], capture_output=True,
                         text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split(None, 8)
        if len(parts) >= 8:
            uid, pid, ppid = map(int, parts[:3])
            table[pid] = (uid, ppid, " ".join(parts[3:8]), parts[8] if len(parts) > 8 else "")
    return table


def _ancestors(table, pid: int) -> list[int]:
    chain: list[int] = []
    while pid in table and pid > 1:
        pid = table[pid][1]
        if pid in chain:
            break
        chain.append(pid)
    return chain


def _is_bwrap(command: str) -> bool:
    return bool(command) and os.path.basename(command.split()[0]) == "bwrap"


def _sandboxed(table, pid: int) -> bool:
    """A zygote or a student process: a sandbox uid (root); not root, a process below a
    bubblewrap (the sandbox runs as the grader's own uid)."""
    uid, _, _, command = table[pid]
    if os.geteuid() == 0:
        return uid in SANDBOX_UIDS
    return not _is_bwrap(command) and any(_is_bwrap(table[a][3]) for a in _ancestors(table, pid) if a in table)


def sandbox_tree(root: int) -> dict[int, str]:
    """pid -> start time of every sandbox process below ``root``: bubblewrap and the processes
    of the sandbox uids (zygotes, student processes), to find them again later."""
    table = _table()
    return {pid: row[2] for pid, row in table.items()
            if (_sandboxed(table, pid) or _is_bwrap(row[3])) and root in _ancestors(table, pid)}


def leftovers(token: str, ours: dict[int, str], students_only: bool = False) -> list[str]:
    """Processes that must not exist once a batch has returned.

    - any process whose command line holds the run's token (the daemon's marker);
    - any process of a sandbox uid without a bubblewrap above it (escaped the sandbox);
    - any sandbox process seen below this test process during the batch that is still
      there (same pid *and* start time); with ``students_only``, only the student
      processes among them (whose parent is not bubblewrap: zygotes are bwrap's children).
    Processes of other graders running on this machine at the same time (same uids,
    but under their own bubblewrap, not ours) are not counted - unless one runs in the
    reduced mode (unshare, no bubblewrap) as a sandbox uid at that very moment.
    """
    table = _table()
    bad = []
    for pid, (uid, ppid, start, command) in table.items():
        why = None
        if token in command:
            why = "holds the run's token"
        elif uid in SANDBOX_UIDS and not any(_is_bwrap(table[a][3]) for a in _ancestors(table, pid)
                                               if a in table):
            why = "sandbox uid outside any sandbox"
        elif ours.get(pid) == start:
            student = _sandboxed(table, pid) and not (ppid in table and _is_bwrap(table[ppid][3]))
            if student or not students_only:
                why = "a student process of the batch" if student else "a sandbox of the batch"
        if why:
            bad.append(f"pid {pid} uid {uid} ({why}): {command[:160]}")
    return bad


def wait_for(predicate, seconds: float):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if not value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


# --- files --------------------------------------------------------------------------------
def hashes(root: Path) -> dict[str, str]:
    """Every file under ``root`` (and the mode of every entry), by relative path."""
    out = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[key] = f"{oct(st.st_mode)} {digest}"
    return out


def report(out: Path, student: str) -> dict:
    return json.loads((student_folder(out, student) / "report.json").read_text(encoding="utf-8"))


def items(rep: dict) -> dict[str, dict]:
    return {t["name"]: t for t in rep["tests"]}


# --- the batch ----------------------------------------------------------------------------
@dataclasses.dataclass
class Batch:
    root: Path
    out: Path
    clean_out: Path
    seconds: float
    before: dict[str, str]
    after: dict[str, str]
    leftovers_at_return: list[str]
    leftovers_later: list[str]
    ours: dict[int, str]
    connections: list[str]

    def report(self, student: str) -> dict:
        return report(self.out, student)

    def baseline(self, attack: A.Attack) -> dict:
        return report(self.clean_out, BASELINE_STUDENT[attack.baseline])

    def found(self, attack: str) -> list:
        key = A.ATTACKS[attack].report
        got = A.reports(self.report(attack).get("output", "")).get(key, [])
        assert got, f"{attack}: the attack never reported (did it run at all?)"
        return got


@pytest.fixture(scope="module")
def batch(host, tmp_path_factory) -> Batch:
    base = tmp_path_factory.mktemp("hostile")
    clean, root = base / "clean-class", base / "class"
    clean_out, out = base / "clean-reports", base / "reports"
    for student, baseline in HONEST.items():
        A.write(clean / student, A.baseline_sources(baseline))
        A.write(root / student, A.baseline_sources(baseline))
    context = dataclasses.replace(host.context, out=str(out), victim="honest-ref")
    for name in IN_BATCH:
        A.write(root / name, A.ATTACKS[name].sources(dataclasses.replace(context, submission=str(root / name))))
    before = {**hashes(root), **{f"clean/{k}": v for k, v in hashes(clean).items()}}
    grade_class(clean, clean_out, COURSE, jobs=2)

    me = os.getpid()
    existing = sandbox_tree(me)  # e.g. the zygotes other tests left in this process
    ours: dict[int, str] = {}

    def seen(result) -> None:
        ours.update({p: s for p, s in sandbox_tree(me).items() if existing.get(p) != s})

    started = time.monotonic()
    grade_class(root, out, COURSE, jobs=2, on_done=seen)
    seconds = time.monotonic() - started
    at_return = leftovers(host.token, ours, students_only=True)
    # the sandboxes go when their grading processes exit; give them a moment, then
    # wait until the daemon would have come back (3 s after it started)
    later = wait_for(lambda: leftovers(host.token, ours), 2.0)
    time.sleep(max(0.0, 4.0 - (time.monotonic() - started - seconds)))
    later = later or leftovers(host.token, ours)
    after = {**hashes(root), **{f"clean/{k}": v for k, v in hashes(clean).items()}}
    return Batch(root, out, clean_out, seconds, before, after, at_return, later, ours, host.connections())


# --- the batch as a whole -----------------------------------------------------------------
def test_the_batch_completes_with_every_report(batch):
    students = sorted([*HONEST, *IN_BATCH])
    for student in students:
        for name in ("report.json", "report.md", "report.html", "results.json"):
            path = student_folder(batch.out, student) / name
            assert path.is_file() and path.stat().st_size > 0, f"{student}: {name} missing"
            assert path.stat().st_size <= REPORT_CAP, f"{student}: {name} is over REPORT_CAP"
        assert batch.report(student)["student"] == student
    with open(batch.out / "grades.csv", newline="") as fh:
        rows = {row["student"]: row for row in csv.DictReader(fh)}
    assert sorted(rows) == students
    for student in students:
        assert float(rows[student]["score"]) == batch.report(student)["score"], student
    assert (batch.out / "class.html").is_file()
    stray = [p.name for p in batch.out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert not stray, f"temporary or foreign files in the reports folder: {stray}"
    assert batch.seconds < 90, f"the batch took {batch.seconds:.0f} s"


def test_honest_students_get_exactly_their_normal_report(batch):
    for student in HONEST:
        alone = (student_folder(batch.clean_out, student) / "report.json").read_bytes()
        beside_attackers = (student_folder(batch.out, student) / "report.json").read_bytes()
        assert beside_attackers == alone, f"{student}: graded beside attackers, the report changed"


def test_students_files_are_never_modified(batch):
    changed = {k: (batch.before.get(k), batch.after.get(k)) for k in batch.before.keys() | batch.after.keys()
               if batch.before.get(k) != batch.after.get(k)}
    assert not changed, f"submission folders changed during grading: {changed}"


# --- each attack --------------------------------------------------------------------------
@pytest.mark.parametrize("name", IN_BATCH)
def test_attack_gains_nothing(batch, name):
    attack = A.ATTACKS[name]
    got, base = batch.report(name), batch.baseline(attack)
    mine, theirs = items(got), items(base)
    assert sorted(mine) == sorted(theirs), f"{name}: not the same graded items as its baseline"
    allowed = STATUSES.get(name, {attack.status})
    for part in PARTS:
        score, normal = got["parts"][part]["score"], base["parts"][part]["score"]
        if part not in attack.affected:
            assert score == normal, f"{name}: {part} scored {score}, its baseline {normal}"
            for item, t in mine.items():
                if t["part"] == part:
                    assert t["score"] == theirs[item]["score"], f"{name}: {item} moved"
            continue
        assert score < normal, f"{name}: {part} kept {score}/{normal}: did the attack fire?"
        for item, t in mine.items():
            if t["part"] != part:
                continue
            if t["status"] == "passed":  # only the forward checks keep their credit
                assert FORWARD_ITEM.match(item), f"{name}: {item} passed although its code hung/crashed"
                assert t["score"] == theirs[item]["score"]
            else:
                assert t["score"] == 0 and t["status"] in allowed, (name, item, t["status"], t["feedback"])


def test_output_flood_is_capped_and_reports_stay_small(batch):
    rep = batch.report("output-flood")
    output = rep.get("output", "")
    assert output.startswith("flood"), output[:100]
    assert len(output.encode()) <= COURSE.settings.limits.output_bytes + 200, len(output.encode())
    assert re.search(r"\b(19\d|20\d)\d{6} more bytes", output), output[-200:]  # ~200 MB dropped
    total = sum(p.stat().st_size for p in student_folder(batch.out, "output-flood").iterdir())
    assert total <= 4 * REPORT_CAP
    assert (batch.out / "class.html").stat().st_size < 2 * REPORT_CAP


def _by_design(path: str) -> bool:
    """In the interpreter's own install, bound at its host path (a venv's bin/grader script, numpy's
    conftest.py), as sys.prefix tells anyone: as root the folders above it cannot be listed, not root
    they can. In its site-packages, only the whitelisted packages count."""
    if not any(sandbox._under(path, root) for root in sandbox._python_roots()):
        return False
    if any(sandbox._under(path, site) for site in sandbox._site_dirs()):
        return any(sandbox._under(path, entry) for entry in sandbox._package_entries(sandbox.PACKAGES))
    return True


def test_reference_and_hidden_tests_are_not_on_disk(batch):
    for found in batch.found("reads-the-disk"):
        assert found["read"] == [], f"the submission read {found['read']}"
        seen = [p for p in found["seen"] if not _by_design(p)]
        assert seen == [], f"the submission saw grader files: {seen}"
    assert batch.report("reads-the-disk")["parts"]["Affine"]["score"] == BACKPROP.part("Affine").max_points - 3


def test_the_grader_cannot_be_imported(batch):
    for found in batch.found("imports-the-grader"):
        assert found["succeeded"] == [], found["tried"]


def test_no_expected_values_in_frames_or_gc(batch):
    for found in batch.found("walks-frames-and-gc"):
        assert all(f.startswith(("/submission/", "/worker/")) for f in found["frames"]), found["frames"]
        assert found["names"] == [], f"names that smell of expected values: {found['names']}"
        assert found["modules"] == [], f"grader or pytest modules in the worker: {found['modules']}"


def test_grader_proc_entries_are_invisible(batch, host):
    for found in batch.found("reads-grader-proc"):
        assert found["grader_pids_visible"] == [], found
        assert found["leaked"] == [], f"the secret or the reference was readable: {found['leaked']}"
        assert len(found["pids"]) <= 4, f"more than the sandbox's own pids visible: {found['pids']}"
        # not root, pid 1 is bubblewrap's init as the same uid: its environment is the sandbox's
        # (``leaked`` above: no secret in it); as root it runs as another uid and is unreadable
        own_init = {"/proc/1/environ"} if os.geteuid() and "bwrap" in found["cmdlines"].get("1", "") else set()
        environ = [p for p in found["readable"] if p.endswith("/environ")
                   and p != f"/proc/{found['me']}/environ" and p not in own_init]
        assert environ == [], f"another process's environment was readable: {environ}"
    assert host.context.secret not in json.dumps(batch.report("reads-grader-proc"))


def test_files_outside_the_submissions_are_untouched(batch, host):
    for path, text in host.sentinels.items():
        assert path.read_text() == text, f"{path} was changed by a submission"
    for path in host.new_files:
        assert not path.exists(), f"a submission created {path} on the host"
    strays = [p for p in [*Path("/tmp").glob(f"*{host.token}*"), *Path.home().glob(f"*{host.token}*")]
              if p not in host.sentinels]
    assert not strays, f"files with the run's token on the host: {strays}"
    found = batch.found("writes-files")[0]
    base = str(batch.root.parent)  # the class and the reports folder are below it
    inside_tmp = {p for p in found if p.startswith("/tmp/") and not p.startswith(base)}
    succeeded = {p for p, how in found.items() if not how.startswith("failed")}
    assert succeeded <= inside_tmp, f"writes outside the sandbox's private /tmp: {succeeded - inside_tmp}"
    victim = json.loads((student_folder(batch.out, "honest-ref") / "report.json").read_text())
    assert victim["score"] == FULL and victim["student"] == "honest-ref"
    rows = {}
    for folder in (batch.out, batch.clean_out):
        with open(folder / "grades.csv", newline="") as fh:
            rows[folder] = {r["student"]: r for r in csv.DictReader(fh) if r["student"] in HONEST}
    assert rows[batch.out] == rows[batch.clean_out], "grades.csv rows of the honest students differ"


def test_no_connection_reaches_the_host(batch):
    assert batch.connections == [], batch.connections
    found = batch.found("network")[0]
    tcp = {k: v for k, v in found.items() if k.startswith(("tcp", "abstract"))}
    assert all(v.startswith("failed") for v in tcp.values()), tcp
    assert found["dns"].startswith("failed") and found["interfaces"] == ["lo"], found


def test_no_process_outlives_its_grading(batch):
    assert batch.found("daemon"), "the daemon attack never ran"
    assert batch.ours, "no process of the batch was ever seen: the check would be blind"
    assert batch.leftovers_at_return == [], f"when grade_class returned: {batch.leftovers_at_return}"
    assert batch.leftovers_later == [], f"2-4 s after the batch: {batch.leftovers_later}"


# --- attacks graded on their own -----------------------------------------------------------
def _grade_alone(grade, tmp_path, name: str, host: Host, course=COURSE):
    folder = tmp_path / name
    A.write(folder, A.ATTACKS[name].sources(dataclasses.replace(host.context, submission=str(folder))))
    started = time.monotonic()
    result = grade(folder, course)
    return result, time.monotonic() - started


def test_stopping_the_zygote_costs_no_more_than_a_hang(grade, tmp_path, host):
    result, seconds = _grade_alone(grade, tmp_path, "stops-the-zygote", host)
    if sum(t.score for t in result.tests) != FULL:  # not the hole: pytest.fail is not an xfail
        pytest.fail(f"stopping the zygote changed the score: {sum(t.score for t in result.tests)}")
    # ...and must not cost more than one hang: an honest hand-in takes < 1 s
    assert seconds < CALL_SECONDS + 3, f"one SIGSTOP cost {seconds:.1f} s (call_seconds {CALL_SECONDS:g})"


def test_memory_of_forked_children_counts_against_the_limit(grade, tmp_path, host):
    result, _ = _grade_alone(grade, tmp_path, "forked-memory", host)
    found = A.reports(result.output).get("fork-memory", [{}])[0]
    if found.get("children") != 4:
        pytest.fail(f"the attack did not run as meant, the check would be blind: {result.output[:300]}")
    assert found["held_mb"] <= COURSE.settings.limits.memory_mb, (
        f"the submission held {found['held_mb']} MB at once (memory_mb = {COURSE.settings.limits.memory_mb})")


def _shmem_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no Shmem in /proc/meminfo")


@pytest.fixture(scope="module")
def shared_memory(tmp_path_factory, host) -> dict:
    """A batch with the SysV shared-memory attack; Shmem measured during and after it."""
    base = tmp_path_factory.mktemp("shm")
    root, out = base / "class", base / "reports"
    A.write(root / "shared-memory", A.ATTACKS["shared-memory"].sources(host.context))
    A.write(root / "honest-ref", A.baseline_sources("reference"))
    before = _shmem_mb()
    held: dict[str, int] = {}
    # on_done runs while the batch's sandboxes (and so their IPC namespaces) still exist
    grade_class(root, out, COURSE, jobs=2,
                on_done=lambda r: held.__setitem__(r.student, _shmem_mb() - before))
    freed = not wait_for(lambda: _shmem_mb() - before > 256, 5)
    found = A.reports(report(out, "shared-memory").get("output", "")).get("shm", [{}])[-1]
    return {"held": held, "freed": freed, "made_mb": found.get("mb", 0),
            "honest": report(out, "honest-ref")["score"]}


def test_shared_memory_is_freed_when_the_batch_ends(shared_memory):
    _not_blind(shared_memory)
    assert shared_memory["freed"], "the submission's shared memory outlived the whole batch"
    assert shared_memory["honest"] == FULL


def _not_blind(shared_memory: dict) -> None:
    """The attack got its 1.5 GB, or a memory cgroup stopped it at memory_mb (which it must)."""
    from grader import cgroups

    made, limit = shared_memory["made_mb"], COURSE.settings.limits.memory_mb
    if cgroups.support().ok:
        assert 0 < made <= limit, f"{made} MB of shared memory held with memory_mb = {limit}"
    elif made < 1024:
        pytest.fail("the attack did not get its memory: the checks would be blind")


def test_shared_memory_is_released_when_its_grading_ends(shared_memory):
    _not_blind(shared_memory)
    held = shared_memory["held"]["shared-memory"]
    assert held < 256, f"{held} MB of the submission's shared memory outlived its grading"


def test_nothing_a_student_leaves_reaches_the_next_one(tmp_path, host):
    """The second student of a slot sees what the slot's first student saw: the grader's own
    mount points (a clone or venv under /tmp is bound into the private /tmp), nothing more."""
    root, out = tmp_path / "class", tmp_path / "reports"
    A.write(root / "0-looks-first", A.ATTACKS["looks-for-residue"].sources(host.context))
    A.write(root / "a-leaves", A.ATTACKS["leaves-residue"].sources(host.context))
    A.write(root / "b-looks", A.ATTACKS["looks-for-residue"].sources(host.context))
    grade_class(root, out, COURSE, jobs=1)  # one slot, in name order: b-looks right after a-leaves
    left = A.reports(report(out, "a-leaves").get("output", "")).get("leave", [{"none": -1}])[0]
    if not all(v >= 0 for v in left.values()):
        pytest.fail(f"the attack could not leave anything, the check would be blind: {left}")
    fresh = A.reports(report(out, "0-looks-first")["output"])["look"][0]
    assert fresh["shm"] == fresh["msg"] == fresh["sem"] == []
    assert all(Path("/tmp", name).is_dir() for name in fresh["tmp"]), fresh  # mount points only
    seen = A.reports(report(out, "b-looks")["output"])["look"][0]
    assert seen == fresh, f"the next student found {seen}"


def test_queues_keys_and_sockets_a_student_leaves_do_not_reach_the_next_one(tmp_path, host):
    """Beyond /tmp and SysV IPC: a POSIX message queue, the keyrings, an abstract socket a
    leftover process serves, /dev/shm. Each is either refused to the first student or gone
    for the next one of the same slot (jobs=1)."""
    root, out = tmp_path / "class", tmp_path / "reports"
    A.write(root / "a-leaves", A.ATTACKS["leaves-more-residue"].sources(host.context))
    A.write(root / "b-looks", A.ATTACKS["looks-for-more-residue"].sources(host.context))
    grade_class(root, out, COURSE, jobs=1)
    left = A.reports(report(out, "a-leaves").get("output", "")).get("leave-more", [{}])[0]
    if left.get("mqueue") != "left" or left.get("abstract socket") != "left":
        pytest.fail(f"the attack could not leave its queue and socket, the check would be blind: {left}")
    seen = A.reports(report(out, "b-looks")["output"])["look-more"][0]
    found = {what: got for what, got in seen.items() if got}
    assert found == {}, f"the next student found {found} (left: {left})"


def test_no_escape_from_the_limits_through_the_kernel(grade, tmp_path, host):
    """Run as root, a new user namespace gives every capability inside it; io_uring,
    userfaultfd, perf and bpf are the kernel's largest surfaces; keys outlive the process."""
    result, _ = _grade_alone(grade, tmp_path, "escapes", host)
    found = A.reports(result.output).get("escapes", [None])[0]
    if not found:
        pytest.fail(f"the attack never reported: {result.output[-500:]}")
    allowed = {call: how for call, how in found.items() if not how.startswith("refused")}
    assert allowed == {}, f"the sandbox let these through: {allowed}"
    assert sum(t.score for t in result.tests) == FULL, "refusing them costs an honest hand-in nothing"


def test_memory_outside_any_process_is_charged_where_cgroups_allow(grade, tmp_path, host):
    """memfd pages filled with write() are in no process's RSS: a memory cgroup charges them;
    where the machine has none, `grader doctor` says so."""
    from grader import cgroups
    from grader.doctor import doctor_lines

    if not cgroups.support().ok:
        lines = [line for line, _ in doctor_lines(make_grading_course(), ["backprop"])]
        assert any(line.startswith("memory cgroup: not available (") for line in lines), lines
        return
    # time enough for the attack to fill (or be stopped) and report, even on a busy machine
    result, _ = _grade_alone(grade, tmp_path, "memfd-memory", host,
                             course=make_grading(limits=Limits(call_seconds=10.0, processes=16)))
    limit = COURSE.settings.limits.memory_mb
    found = A.reports(result.output).get("memfd", [{}])[0]
    held = found.get("held_mb", 0)
    stopped = "exceeded the memory limit" in result.output + " ".join(result.notes)
    if not found and not stopped:
        pytest.fail(f"the attack neither reported nor was stopped: {result.output[-500:]} {result.notes}")
    assert held <= limit, f"the submission held {held} MB in memfds (memory_mb = {limit})"


def test_a_students_process_starts_in_the_slots_memory_cgroup_first_in_line_for_the_oom_killer(grade, tmp_path):
    """The zygote is moved into the slot's cgroup once; each student's process is forked
    there (charged from its first instruction, no move of its own) and asks the OOM killer
    to take it before the zygote."""
    import shutil

    from grader import cgroups

    if not cgroups.support().ok:
        pytest.skip(f"no memory cgroup here: {cgroups.support().why}")
    folder = tmp_path / "where-am-i"
    shutil.copytree(REPO / "examples" / "class" / "ada-book", folder)
    with open(folder / "layers.py", "a", encoding="utf-8") as fh:
        fh.write('\nprint("WHERE", open("/proc/self/oom_score_adj").read().strip(), '
                 '[line.strip() for line in open("/proc/self/cgroup") if ":memory:" in line])\n')
    result = grade(folder)
    said = next((line for line in result.output.splitlines() if line.startswith("WHERE")), "")
    assert said.startswith("WHERE 1000 "), result.output[-500:]
    assert f":memory:/{cgroups.PREFIX}" in said, said
    assert sum(t.score for t in result.tests) == FULL


def make_grading_course():
    from grader import course

    return course.find(REPO)


def test_what_a_submission_prints_reaches_its_report_even_when_it_is_killed(grade, tmp_path, host):
    result, _ = _grade_alone(grade, tmp_path, "prints-then-hangs", host)
    found = A.reports(result.output)
    assert "printed-at-import" in found, result.output[-500:]
    assert "printed-in-backward" in found, result.output[-500:]
    assert any(t.status == "timeout" for t in result.tests), "the attack did hang"


@pytest.mark.parametrize("name", ["forges-a-deep-reply", "forges-an-overflowing-frame"])
def test_a_forged_reply_is_the_students_error_not_the_graders(grade, tmp_path, host, name):
    result, _ = _grade_alone(grade, tmp_path, name, host)
    assert result.grader_errors == [], result.grader_errors
    affine = [t for t in result.tests if t.part == "Affine" and not FORWARD_ITEM.match(t.name)]
    assert affine and all(t.status == "error" and t.score == 0 for t in affine), [(t.name, t.status)
                                                                                   for t in affine]
    assert any("malformed data" in t.feedback for t in affine), affine[0].feedback
    full = {e.part: float(e.max_points) for e in BACKPROP.exercises}
    untouched = {p: s["score"] for p, s in result.parts().items() if p not in A.ATTACKS[name].affected}
    assert untouched == {p: full[p] for p in untouched}, untouched


def test_symlinks_inside_a_hand_in_are_not_followed(tmp_path):
    root, out = tmp_path / "class", tmp_path / "reports"
    solutions = REPO / "solutions" / "backprop"
    file_link = root / "eve"
    A.write(file_link, A.baseline_sources("reference"))
    (file_link / "layers.py").unlink()
    (file_link / "layers.py").symlink_to(solutions / "layers.py")
    (root / "trudy").mkdir()
    (root / "trudy" / "code").symlink_to(solutions, target_is_directory=True)
    grade_class(root, out, COURSE, jobs=1)
    for student in ("eve", "trudy"):
        rep = report(out, student)
        assert rep["score"] == 0, f"{student} scored {rep['score']} with links to the reference"
        assert any("layers.py is missing" in n for n in rep["notes"]), rep["notes"]


def test_a_student_folder_that_is_a_symlink_is_not_graded_as_its_target(tmp_path):
    root, out = tmp_path / "class", tmp_path / "reports"
    root.mkdir()
    (root / "mallory").symlink_to(REPO / "solutions" / "backprop", target_is_directory=True)
    A.write(root / "alice", A.baseline_sources("reference"))
    (root / "mallet").symlink_to(root / "alice", target_is_directory=True)
    grade_class(root, out, COURSE, jobs=1)
    if report(out, "alice")["score"] != FULL:
        pytest.fail("alice, the real folder, was not graded normally")
    for student in ("mallory", "mallet"):
        path = student_folder(out, student) / "report.json"
        score = json.loads(path.read_text())["score"] if path.exists() else 0
        assert score == 0, f"{student} (a symlink) scored {score}"


def test_a_fork_bomb_in_another_batch_does_not_cost_this_one(tmp_path, host):
    bombs, honest = tmp_path / "bombs", tmp_path / "honest"
    bomb = A.Attack("bombs", "", tuple(A.in_backward(c, A.FORK_BOMB) for c in A.BACKWARD))  # bombs all along
    for i in range(2):  # one per job process, so both of its leased uids are full
        A.write(bombs / f"bomb-{i}", bomb.sources(host.context))
    for i in range(4):
        A.write(honest / f"honest-{i}", A.baseline_sources("reference"))
    config = tmp_path / "course.toml"
    config.write_text("[limits]\ncall_seconds = 4.0\n")
    tmp = tmp_path / "tmp"  # the killed run's staging folders stay here, not in /tmp
    tmp.mkdir(mode=0o755)
    first = subprocess.Popen([*GRADER, "grade", str(bombs), "--out", str(tmp_path / "r1"), "--jobs", "2",
                              "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True, env={**os.environ, "TMPDIR": str(tmp)})
    try:
        def quiet():  # until the bombs hold most of the two sandboxes' process limit (uids, or namespaces)
            table = _table()
            return sum(1 for pid in table if _sandboxed(table, pid) and first.pid in _ancestors(table, pid)) < 40
        if wait_for(quiet, 20):
            pytest.fail("the bombs never went off: the check would be blind")
        second = subprocess.run([*GRADER, "grade", str(honest), "--out", str(tmp_path / "r2"), "--jobs", "2"],
                                capture_output=True, text=True, timeout=120,
                                env={**os.environ, "TMPDIR": str(tmp)})
    finally:  # the whole first run: the CLI, its job processes; their sandboxes die with them
        kill_group(first)
    if second.returncode:
        pytest.fail(f"the second batch did not complete: {second.stderr[-500:]}")
    for i in range(4):
        rep = report(tmp_path / "r2", f"honest-{i}")
        assert rep["score"] == FULL, f"honest-{i} scored {rep['score']}: {rep['notes']}"


def test_every_attack_compiles():
    context = A.Context(token="t", repo=str(REPO))
    for attack in A.ATTACKS.values():
        for file, text in attack.sources(context).items():
            compile(text, f"{attack.name}/{file}", "exec")
