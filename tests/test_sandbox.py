"""The OS sandbox, tested for real: real bubblewrap, real subprocesses, no mocks.

A throwaway worker folder holds a ``server.py`` that runs one probe script from the
submission folder; each probe reports what it could see and do as JSON on stdout.
Every "must fail" check has a positive control (the same probe with the sandbox off,
or the host side) so the test cannot pass just because the probe is broken.
"""
from __future__ import annotations

import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import pytest

from grader import sandbox
from grader.sandbox import Limits

REPO = Path(sandbox.__file__).resolve().parent.parent
TEST_UID = 64321  # a dedicated uid (no passwd entry) so leftover processes can be counted

pytestmark = pytest.mark.sandbox

SERVER = """\
import os, runpy, sys
runpy.run_path(os.path.join(sys.argv[1], sys.argv[2]), run_name="__main__")
"""

INSPECT = r'''
import json, os, socket, sys

port, marker, writes = int(sys.argv[3]), sys.argv[4], sys.argv[5] == "writes"
site = [p for p in sys.path if p.endswith("site-packages")]
out = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
       "pid": os.getpid(), "env": dict(os.environ), "cwd": os.getcwd(),
       "site": sorted(os.listdir(site[0])) if site else None,
       "site_path": site[0] if site else None}
with open("/proc/self/status") as fh:
    out["status"] = dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())

def attempt(fn):
    try:
        value = fn()
        return {"ok": True, "value": value}
    except BaseException as exc:
        return {"ok": False, "error": type(exc).__name__, "errno": getattr(exc, "errno", None)}

def connect(host):
    with socket.create_connection((host, port), timeout=2):
        return "connected"

def write(path):
    with open(path, "x") as fh:  # never overwrites anything
        fh.write("x")
    return path

def grader_import():
    import grader
    return grader.__file__

def numpy_works():
    import numpy as np
    a = np.arange(12.0).reshape(3, 4)
    return [np.__version__, float((a @ a.T).trace()), float(np.linalg.inv(np.eye(3) * 2)[0, 0])]

out["connect_loopback"] = attempt(lambda: connect("127.0.0.1"))
out["paths"] = {p: os.path.exists(p) for p in sys.argv[6:]}
out["list"] = {p: attempt(lambda p=p: sorted(os.listdir(p))) for p in sys.argv[6:]}
out["read"] = {p: attempt(lambda p=p: open(p, "rb").read(1) and "read") for p in sys.argv[6:]}
out["list_root"] = attempt(lambda: os.listdir("/root"))
out["import_grader"] = attempt(grader_import)
out["numpy"] = attempt(numpy_works)
out["marker_visible"] = os.path.exists(marker)
out["write_tmp"] = attempt(lambda: write(f"/tmp/inside-{os.path.basename(marker)}"))
if writes:  # only where everything but /tmp must be read-only; harmless names even then
    token = os.path.basename(marker)
    sub = sys.argv[1]
    out["write"] = {p: attempt(lambda p=p: write(p)) for p in
                    [os.path.join(sub, token), f"/{token}", f"/usr/{token}", f"/worker/{token}",
                     os.path.join(site[0] if site else "/", f"{token}.py")]}
    # opening an existing file for writing (appending nothing) must fail too
    out["open_submission_file"] = attempt(
        lambda: os.close(os.open(os.path.join(sub, "inspect.py"), os.O_WRONLY | os.O_APPEND)))
print(json.dumps(out))
'''

LIMITS = r'''
import json, os, resource, sys, tempfile
out = {}
def attempt(fn):
    try:
        fn()
        return "ok"
    except BaseException as exc:
        return [type(exc).__name__, getattr(exc, "errno", None)]
import numpy as np
out["numpy_bomb"] = attempt(lambda: np.ones(2**28))          # 2 GiB
out["bytes_bomb"] = attempt(lambda: bytearray(3 * 2**30))    # 3 GiB
def big_file():
    fd, path = tempfile.mkstemp()
    os.close(fd)
    try:
        with open(path, "wb") as fh:
            fh.write(b"x" * (3 << 20))
    finally:
        os.unlink(path)
out["big_file"] = attempt(big_file)
def many_files():
    held = [open("/dev/null") for _ in range(40)]
    return held
out["many_files"] = attempt(many_files)
out["rlimits"] = {name: resource.getrlimit(getattr(resource, name))
                  for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE",
                               "RLIMIT_NPROC", "RLIMIT_CORE")}
out["threads_env"] = [os.environ.get(k) for k in
                      ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")]
print(json.dumps(out))
'''

BUSY = "while True:\n    pass\n"

FORK_BOMB = r'''
import json, os, sys, time
forked, err = 0, None
try:
    while forked < 500:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        forked += 1
except OSError as exc:
    err = exc.errno
print(json.dumps({"forked": forked, "errno": err}), flush=True)
time.sleep(60)
'''

# a child that ignores SIGTERM and starts its own session, then double-forks a
# grandchild that also ignores SIGTERM and becomes `sleep <token>` (findable on the host)
ESCAPE = r'''
import os, signal, sys, time
token = sys.argv[3]
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.setsid()
    if os.fork() == 0:
        if os.fork() == 0:
            os.execv("/usr/bin/sleep", ["sleep", token])
        os._exit(0)
    time.sleep(120)
    os._exit(0)
time.sleep(0.3)
print("ready", flush=True)
time.sleep(120)
'''

# a stand-in for the grader that starts a sandbox and is then SIGKILLed
PARENT = r'''
import subprocess, sys
from pathlib import Path
from grader import sandbox
worker, sub, token, uid, bwrap = sys.argv[1:6]
launch = sandbox.prepare(Path(worker), Path(sub), mode="auto", uid=int(uid),
                         extra_args=["escape.py", token], bwrap=bwrap or None)
proc = subprocess.Popen(launch.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        env=launch.env, cwd=launch.cwd, preexec_fn=launch.preexec_fn,
                        start_new_session=True)
print(proc.stdout.readline().decode().strip(), flush=True)
import time
time.sleep(120)
'''


# --- helpers -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def box(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sandbox")
    worker, sub = root / "worker", root / "submission"
    worker.mkdir()
    sub.mkdir()
    (worker / "server.py").write_text(SERVER)
    for name, text in [("inspect.py", INSPECT), ("limits.py", LIMITS), ("busy.py", BUSY),
                       ("forkbomb.py", FORK_BOMB), ("escape.py", ESCAPE)]:
        (sub / name).write_text(textwrap.dedent(text))
    for path in [root, worker, *worker.iterdir(), *sub.iterdir()]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    # writable for everyone on the host: inside, only the read-only mount stops writes
    os.chmod(sub, 0o777)
    os.chmod(sub / "inspect.py", 0o666)
    return {"worker": worker, "sub": sub, "root": root}


def start(box, script: str, *args: str, limits: Limits | None = None, mode="auto",
          bwrap=None) -> tuple[subprocess.Popen, sandbox.Launch]:
    launch = sandbox.prepare(box["worker"], box["sub"], limits or Limits(), mode,
                             extra_args=[script, *args], bwrap=bwrap, uid=TEST_UID)
    proc = subprocess.Popen(launch.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=launch.env, cwd=launch.cwd,
                            preexec_fn=launch.preexec_fn, start_new_session=True)
    return proc, launch


def run(box, script: str, *args: str, timeout: float = 15, **kw):
    proc, launch = start(box, script, *args, **kw)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        sandbox.kill(proc)
    return proc.returncode, out.decode(), err.decode(), launch


def survivors(token: str | None = None) -> list[str]:
    """Host processes of the test uid, or whose command line holds ``token``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
            uid = entry.stat().st_uid
        except OSError:
            continue
        if uid == TEST_UID or (token and token in cmd.split()):
            found.append(f"{entry.name} uid={uid} {cmd}")
    return found


def below(root: int) -> dict[int, str]:
    """pid -> start time of every process below ``root`` (a sandbox's, whatever its uid)."""
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            fields = data[data.rfind(b")") + 2:].split()
            table[int(entry.name)] = (int(fields[1]), fields[19].decode())
    found, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, start) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = start
                todo.append(pid)
    return found


def still_there(processes: dict[int, str]) -> list[int]:
    """Those of ``processes`` (pid -> start time, from ``below``) that still exist."""
    out = []
    for pid, start in processes.items():
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        if data[data.rfind(b")") + 2:].split()[19].decode() == start:
            out.append(pid)
    return out


def wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def marker(tmp_path_factory):
    path = Path("/tmp") / f"grader-sandbox-marker-{os.getpid()}-{random.randrange(10**9)}"
    path.write_text("host only")
    yield path
    path.unlink(missing_ok=True)
    Path(f"/tmp/inside-{path.name}").unlink(missing_ok=True)


def inspect(box, listener, marker, writes=False, **kw) -> tuple[dict, sandbox.Launch]:
    """Run the inspect probe. ``writes``: also try to write outside /tmp - only ever
    with full isolation, and only new files with unique names, removed again here."""
    hidden = ["/etc/passwd", "/etc/shadow", "/root/.bashrc", "/home", "/work", str(REPO),
              str(REPO / "solutions"), str(REPO / "grader"), str(REPO / "grader" / "sandbox.py"),
              str(box["root"])]
    site = Path(sysconfig.get_paths()["purelib"])
    targets = [box["sub"] / marker.name, Path("/") / marker.name, Path("/usr") / marker.name,
               site / f"{marker.name}.py"]
    try:
        code, out, err, launch = run(box, "inspect.py", str(listener), str(marker),
                                     "writes" if writes else "reads", *hidden, **kw)
    finally:
        leaked = [t for t in targets if t.exists()]
        for target in leaked:
            target.unlink()
    assert not leaked, f"the sandbox wrote to the host: {leaked}"
    assert code == 0, err
    return json.loads(out), launch


# --- tests -------------------------------------------------------------------------------
def test_probe_says_full_on_this_machine():
    level = sandbox.probe()
    assert level.full, level.reason
    assert str(level) == "isolation: full"


def test_full_sandbox_view_from_inside(box, listener, marker, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "x")
    monkeypatch.setenv("HOME", "/root")
    view, launch = inspect(box, listener, marker, writes=sandbox.probe().full)
    assert launch.isolation.full and str(launch.isolation) == "isolation: full"
    assert (launch.submission_path, launch.worker_path) == ("/submission", "/worker")
    assert "GRADER_SECRET" not in launch.env

    # an unprivileged uid, no capabilities at all, no way back
    assert view["uid"] != 0 and view["euid"] != 0 and view["gid"] != 0
    assert view["groups"] in ([], [view["gid"]])
    if os.geteuid() == 0:
        assert view["uid"] == TEST_UID
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(view["status"][key], 16) == 0, (key, view["status"][key])
    assert view["status"]["NoNewPrivs"].strip() == "1"

    # no network, not even the host's loopback
    assert not view["connect_loopback"]["ok"]
    assert view["connect_loopback"]["errno"] in (errno.ENETUNREACH, errno.ECONNREFUSED,
                                                 errno.EADDRNOTAVAIL)
    # its own PID namespace: bwrap's init and the worker, nothing of the host
    assert view["pids"] == [1, view["pid"]] and view["pid"] <= 3

    # hidden: /etc, /home, /root's contents, the repository and everything in it; a folder
    # above what is bound at its host path (the interpreter's prefix: a venv in the clone, in
    # a home) is there only as the way to it: it lists nothing else, if it can be listed at all
    bound = [*sandbox._python_roots(), *sandbox._package_entries(sandbox.PACKAGES)]
    above = {p: sorted({Path(os.path.relpath(b, p)).parts[0] for b in bound if b != p and sandbox._under(b, p)})
             for p in view["paths"]}
    assert not any(seen for p, seen in view["paths"].items() if not above[p]), view["paths"]
    for path, names in above.items():
        assert not view["list"][path]["ok"] or view["list"][path]["value"] == names, (path, view["list"][path])
    assert not any(r["ok"] for r in view["read"].values())
    assert not view["list_root"]["ok"]
    assert not view["import_grader"]["ok"]
    assert view["import_grader"]["error"] == "ModuleNotFoundError"
    # site-packages holds numpy only: no grader package, editable finder or .pth file
    assert view["site"] and all(name.startswith("numpy") for name in view["site"]), view["site"]

    assert view["numpy"]["ok"], view["numpy"]
    assert view["numpy"]["value"][1:] == [506.0, 0.5]

    # private, writable /tmp; read-only everything else
    assert not view["marker_visible"]
    assert view["write_tmp"]["ok"]
    assert not Path(f"/tmp/inside-{marker.name}").exists()
    assert not any(r["ok"] for r in view["write"].values()), view["write"]
    assert view["open_submission_file"]["errno"] == errno.EROFS

    # a clean environment
    env = view["env"]
    assert "GRADER_SECRET" not in env
    assert env.get("HOME") != "/root"
    assert {k: env[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")} \
        == dict.fromkeys(("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"), "1")
    assert set(env) <= set(sandbox.sandbox_env()) | {"PWD"}
    assert view["cwd"] == "/submission"


def test_same_probe_without_sandbox_sees_everything(box, listener, marker):
    """The positive control: the probe does detect network, files and the grader."""
    view, launch = inspect(box, listener, marker, mode="off")
    assert not launch.isolation.full and str(launch.isolation) == "isolation: reduced (sandbox off)"
    assert view["connect_loopback"] == {"ok": True, "value": "connected"}
    assert view["paths"][str(REPO / "solutions")] and view["paths"]["/etc/passwd"]
    assert view["import_grader"]["ok"]
    assert view["marker_visible"]


def test_rlimits_memory_file_size_open_files(box):
    code, out, err, _ = run(box, "limits.py", limits=Limits(file_size_mb=1, open_files=16))
    assert code == 0, err
    view = json.loads(out)
    assert view["numpy_bomb"][0] == "MemoryError"
    assert view["bytes_bomb"][0] == "MemoryError"
    assert view["big_file"] == ["OSError", errno.EFBIG]
    assert view["many_files"] == ["OSError", errno.EMFILE]
    assert view["rlimits"]["RLIMIT_AS"] == [1024 << 20] * 2
    assert view["rlimits"]["RLIMIT_CPU"] == [60, 60]
    assert view["rlimits"]["RLIMIT_NOFILE"] == [16, 16]
    assert view["rlimits"]["RLIMIT_NPROC"] == [32, 32]
    assert view["threads_env"] == ["1", "1", "1"]


def test_busy_loop_is_killed_by_the_cpu_limit(box):
    started = time.monotonic()
    code, _, err, _ = run(box, "busy.py", limits=Limits(cpu_seconds=1))
    assert sandbox.exit_signal(code) == signal.SIGKILL, (code, err)
    assert time.monotonic() - started < 6


def test_fork_bomb_is_contained_and_cleaned_up(box):
    assert wait_for(lambda: not survivors(), 3), "processes of the test uid left over"
    proc, _ = start(box, "forkbomb.py", limits=Limits(processes=8))
    tree: dict[int, str] = {}
    try:
        line = proc.stdout.readline().decode()
        assert line, proc.stderr.read().decode()
        report = json.loads(line)
        assert report["errno"] == errno.EAGAIN and 0 < report["forked"] < 8, report
        tree = below(proc.pid)  # not root, the sandbox runs as the grader's own uid
        assert len(tree) >= report["forked"]         # they are really there...
        if os.geteuid() == 0:
            assert len(survivors()) >= report["forked"]
    finally:
        sandbox.kill(proc)
    assert survivors() == []                         # ...and really gone, at once
    assert still_there(tree) == []
    assert proc.returncode is not None


@pytest.mark.parametrize("bwrap", [None, "/nonexistent/bwrap"], ids=["full", "reduced"])
def test_kill_leaves_no_survivors(box, bwrap):
    token = f"{random.randrange(1000, 9999)}.{random.randrange(10**6):06d}"
    proc, launch = start(box, "escape.py", token, bwrap=bwrap)
    assert launch.isolation.full is (bwrap is None)
    try:
        assert proc.stdout.readline() == b"ready\n", proc.stderr.read().decode()
        assert wait_for(lambda: survivors(token), 3), "the grandchild never started"
    finally:
        started = time.monotonic()
        sandbox.kill(proc)
        took = time.monotonic() - started
    assert survivors(token) == []
    assert proc.returncode is not None
    assert took < 1.5
    sandbox.kill(proc)  # idempotent


@pytest.mark.parametrize("bwrap", ["", "/nonexistent/bwrap"], ids=["full", "reduced"])
def test_sandbox_dies_with_the_grader(box, bwrap):
    token = f"{random.randrange(1000, 9999)}.{random.randrange(10**6):06d}"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(box["worker"]), str(box["sub"]),
                               token, str(TEST_UID), bwrap], stdout=subprocess.PIPE, cwd=REPO)
    try:
        assert parent.stdout.readline() == b"ready\n"
        assert wait_for(lambda: survivors(token), 3)
    finally:
        parent.kill()
        parent.wait()
    assert wait_for(lambda: not survivors(token) and not survivors(), 3), survivors(token)


def test_required_refuses_without_bubblewrap_and_auto_degrades(box, listener, marker):
    missing = "/nonexistent/bwrap"
    with pytest.raises(sandbox.SandboxUnavailable, match="not found"):
        sandbox.prepare(box["worker"], box["sub"], mode="required", bwrap=missing)
    level = sandbox.probe(bwrap=missing)
    assert not level.full
    assert str(level).startswith("isolation: reduced (bubblewrap not found at /nonexistent/bwrap")
    assert sandbox.prepare(box["worker"], box["sub"], mode="required").isolation.full

    view, launch = inspect(box, listener, marker, bwrap=missing)
    assert (launch.isolation.full, launch.isolation.method) == (level.full, level.method)
    assert launch.isolation.reason.split(";")[0] == level.reason.split(";")[0]
    # what the reduced mode still gives on this machine: no network, own PIDs, rlimits
    assert launch.isolation.method == "unshare"
    assert not view["connect_loopback"]["ok"]
    assert view["pids"][0] == 1 and len(view["pids"]) <= 3
    if launch.uid is None:  # root that cannot switch says so; not root, there is no uid to switch to
        assert ("runs as root" in level.reason) == (os.geteuid() == 0), level.reason
    else:
        assert view["uid"] == launch.uid


def test_the_grader_cannot_be_whitelisted(box):
    with pytest.raises(ValueError, match="grader"):
        sandbox.prepare(box["worker"], box["sub"], packages=("numpy", "backprop-grader"))


def test_unreadable_submission_is_refused_clearly(box, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the uid switch happens only when the grader runs as root")
    secret = tmp_path / "sub"
    secret.mkdir(mode=0o700)
    with pytest.raises(PermissionError, match="not readable by the sandbox uid"):
        sandbox.prepare(box["worker"], secret, uid=TEST_UID)


def test_uid_sweep_for_the_reduced_mode_without_pid_namespace():
    """Where no PID namespace exists, kill() ends every process of a dedicated uid."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run processes as another uid")
    token = f"{random.randrange(1000, 9999)}.{random.randrange(10**6):06d}"
    stray = subprocess.Popen(["setpriv", f"--reuid={TEST_UID}", f"--regid={TEST_UID}",
                              "--clear-groups", "--", "sleep", token], start_new_session=True)
    try:
        assert wait_for(lambda: survivors(token), 3)
        sandbox._sweep_uid(TEST_UID)
        assert stray.wait(timeout=3) == -signal.SIGKILL
    finally:
        stray.kill()
        stray.wait()
    assert survivors(token) == []
