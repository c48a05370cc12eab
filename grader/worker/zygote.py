"""A sandbox per grading slot that forks one fresh process per student (the zygote's host side).

Kept apart from the request protocol (``grader.worker.client``) and free of numpy, so the
command line can start the sandbox first and import the rest while it warms up.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import socket
import subprocess
import tempfile
from pathlib import Path

from grader import cgroups, sandbox, stages
from grader.worker import WORKER_DIR


class WorkerError(Exception):
    """The request produced no answer: crash, timeout, or a garbled channel."""

    status = "error"


class WorkerTimeout(WorkerError):
    status = "timeout"


ANSWER_SECONDS = 2.0  # for a spawn or a kill (and the cleaning after it); a fork takes ~2 ms


class Zygote:
    """One sandbox per grading slot, numpy imported once, forking a process per student.

    Starting a sandboxed Python with numpy costs ~100 ms; a fork costs ~2 ms. The
    zygote never sees a student's data (each child receives its sources over its
    own socket), and after each child it kills every leftover process of the
    sandbox, so one student cannot reach the next. It must answer a spawn or a kill
    within ``answer_seconds`` (at most one per-call deadline); one that does not, or
    that says it could not undo what a child did, is replaced, never trusted.
    """

    def __init__(self, limits: sandbox.Limits, mode: str, uid: int, hide: tuple[Path, ...]):
        self.limits, self.mode, self.uid, self.hide = limits, mode, uid, hide
        self.proc: subprocess.Popen | None = None
        self.control: socket.socket | None = None
        self.isolation: sandbox.Isolation | None = None
        self.answer_seconds = min(ANSWER_SECONDS, limits.call_seconds)
        self.memory_kills = 0  # processes of the last child killed for the memory limit
        self.tampered = False  # the last child changed the zygote's scheduling
        self._waiting = False  # launched, "ready" not read yet
        self._errors = None    # the sandbox's stderr until it is ready
        self._empty: tempfile.TemporaryDirectory | None = None
        self.host_pid: int | None = None  # the zygote process, as this machine numbers it
        self.cgroup: cgroups.Cgroup | None = None  # each student's processes, charged together
        self.seccomp = "seccomp: unknown (the sandbox has not started)"
        self.memory = "memory cgroup: unknown (the sandbox has not started)"
        self._cpu: tuple | None = None  # (process, what its last "exited" said of CPU), for stages

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self) -> None:
        """Start the sandbox without waiting for it: it imports numpy while this process goes
        on (collecting the hidden tests, say); ``ready`` waits for it."""
        self.stop()
        stages.count("sandbox launch")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # the zygote's /submission: an empty folder, bound by bubblewrap before "ready"
        self._empty = tempfile.TemporaryDirectory(prefix="grader-empty-")
        empty = Path(self._empty.name)
        os.chmod(empty, 0o755)
        probe = sandbox.prepare(WORKER_DIR, empty, self.limits, self.mode, uid=self.uid, hide=self.hide)
        args = ["--zygote", f"--memory-mb={self.limits.memory_mb}", *(["--sweep"] if probe.isolation.full else [])]
        launch = sandbox.prepare(WORKER_DIR, empty, self.limits, self.mode, args, uid=self.uid, hide=self.hide,
                                 zygote=True)
        self.isolation = launch.isolation
        # what bubblewrap, setpriv or Python say before the zygote is ready (it then points
        # its own stderr elsewhere): the cause when a machine cannot grade
        self._errors = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(launch.argv, stdin=theirs, stdout=subprocess.DEVNULL,
                                         stderr=self._errors, env=launch.env, cwd=launch.cwd,
                                         preexec_fn=launch.preexec_fn, start_new_session=True)
        except OSError as exc:
            self._settled()
            raise WorkerError(f"the worker could not be started ({exc})") from None
        finally:
            theirs.close()
        self.control = ours
        self._waiting = True

    def prestart(self) -> None:
        """``launch`` unless it is running or starting already; never raises (the first
        student's start will say why it cannot)."""
        if self._waiting or (self.alive and self.control is not None):
            return
        try:
            self.launch()
        except (WorkerError, OSError, ValueError, sandbox.SandboxUnavailable):
            self.stop()

    def ready(self) -> None:
        """A started zygote that said "ready" (or WorkerError, with what the sandbox said)."""
        if not self._waiting and (not self.alive or self.control is None):
            self.launch()
        if not self._waiting:
            return
        try:
            with stages.timed("sandbox ready (waited)"):
                reply = self._expect("ready", self.limits.call_seconds + 10)
        except WorkerError:
            self._errors.seek(0)
            said = self._errors.read(4096).decode(errors="replace").strip()
            self.stop()
            raise WorkerError("the sandbox did not start" + (f": {said}" if said else "")) from None
        finally:
            self._settled()
        self.seccomp = _seccomp_line(reply.get("seccomp"))
        self._confine(reply.get("pid"))

    def _confine(self, inner_pid) -> None:
        """A memory cgroup for this slot's students, where the machine allows one (said in
        ``memory``); one that the machine allows but cannot be made stops the sandbox."""
        found = cgroups.support()
        if not found.ok:
            self.memory = found.describe(self.limits.memory_mb)
            return
        pid = cgroups.host_pid(self.proc.pid, inner_pid) if isinstance(inner_pid, int) else None
        try:
            if pid is None:
                raise OSError("the sandbox's worker process was not found")
            self.cgroup = cgroups.Cgroup.make(self.limits.memory_mb)
            # the zygote itself goes in, once: each student's process is forked there and
            # starts in it, before any of its code runs (a move per student cost ~16 ms of
            # cgroup v1's locking). What the zygote holds was charged before the move.
            self.cgroup.add(pid)
        except OSError as exc:
            self.stop()
            raise WorkerError(f"the sandbox's memory cgroup could not be made ({exc})") from None
        self.host_pid = pid
        self.memory = found.describe(self.limits.memory_mb)

    def _settled(self) -> None:
        """Ready (or gone): its stderr file and its empty /submission folder are not needed."""
        self._waiting = False
        if self._errors is not None:
            self._errors.close()
        if self._empty is not None:
            self._empty.cleanup()
        self._errors, self._empty = None, None

    def start(self) -> None:
        self.launch()
        self.ready()

    def stop(self) -> None:
        if self.proc is not None:
            sandbox.kill(self.proc)
            self.proc = None
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        self.host_pid = None
        self._settled()

    def spawn(self) -> tuple[socket.socket, int]:
        """A fresh child: return the session socket and the read end of its output."""
        self.ready()
        session, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        _large_buffers(session)
        _large_buffers(theirs)  # replies (a 784x50 gradient) go out in one write too
        out_read, out_write = os.pipe()
        try:
            socket.send_fds(self.control, [b'{"op": "spawn"}'], [theirs.fileno(), out_write])
            self._expect("spawned", self.answer_seconds)
        except (OSError, WorkerError):
            session.close()
            os.close(out_read)
            self.stop()
            raise WorkerError("the worker could not be started (the sandbox stopped answering)") from None
        finally:
            theirs.close()
            os.close(out_write)
        return session, out_read

    def finish(self, kill: bool = True) -> int | None:
        """End the current child (if ``kill``) and return its exit code once it is gone."""
        self.memory_kills, self.tampered = 0, False
        try:
            if kill:
                self.control.send(b'{"op": "kill"}')
            reply = self._expect("exited", self.answer_seconds)
        except (OSError, WorkerError, AttributeError):
            if self.cgroup is not None:  # the kernel's word: still true of a zygote slow to clean up
                self.memory_kills += self.cgroup.new_oom_kills()
            self.stop()  # a zygote that does not answer is replaced, never trusted
            return None
        kills = reply.get("memory_kills")
        self.memory_kills = kills if isinstance(kills, int) and not isinstance(kills, bool) else 0
        if self.cgroup is not None:
            self.memory_kills += self.cgroup.new_oom_kills()
        self.tampered = reply.get("tampered") is True
        self._count_cpu(reply.get("cpu"))
        if reply.get("retire") is not False:  # it could not undo what the child did
            stages.count("sandbox retired")
            self.stop()
        return reply["exited"] if isinstance(reply["exited"], int) else None

    def _count_cpu(self, said) -> None:
        """Stage figures: the CPU the zygote says its students' processes and it have used
        since the last one (only ever a benchmark's figure; never a score's)."""
        if not stages.ON or not (isinstance(said, list) and len(said) == 2
                                 and all(type(v) is float and 0 <= v < 1e9 for v in said)):
            return
        before, self._cpu = self._cpu, (self.proc, said)
        if before is not None and before[0] is self.proc:
            for stage, now, then in zip(("student processes", "zygote"), said, before[1], strict=True):
                stages.add(f"{stage} (cpu)", max(now - then, 0.0))
        else:  # a new zygote: what it used before its first student is its start
            stages.add("student processes (cpu)", said[0])
            stages.add("zygote (cpu)", said[1])

    def _expect(self, key: str, seconds: float) -> dict:
        """The zygote's next message, which must hold ``key``."""
        ready, _, _ = select.select([self.control], [], [], seconds)
        message = self.control.recv(4096) if ready else b""
        try:
            reply = json.loads(message) if message else None
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or reply.get(key) is None:
            raise WorkerError("the sandbox stopped answering")
        return reply


def _seccomp_line(said) -> str:
    """What the zygote said about its seccomp filter (its own proof, before any student), in words."""
    if isinstance(said, dict) and said.get("on") is True:
        return f"seccomp: on (every student process; refused: {str(said.get('denies', ''))[:600]})"
    why = str(said.get("why", "?"))[:300] if isinstance(said, dict) else "the sandbox did not say"
    return f"seccomp: off ({why})"


def _large_buffers(sock: socket.socket, size: int = 4 << 20) -> None:
    """Let a whole request (arrays of a 784-50-10 net) go out in one write, not 64 KiB pings."""
    for option in (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, size)
            return
        except (OSError, TypeError):  # SO_SNDBUFFORCE needs privileges; SO_SNDBUF is capped
            continue


_zygotes: dict[tuple, Zygote] = {}


def zygote_for(limits: sandbox.Limits, mode: str, uid: int, hide: tuple[Path, ...]) -> Zygote:
    """The (lazily started) zygote of this process for these settings."""
    key = (limits, mode, uid, hide)
    if key not in _zygotes:
        _zygotes[key] = Zygote(limits, mode, uid, hide)
    return _zygotes[key]


@atexit.register
def stop_zygotes(uid: int | None = None) -> None:
    """Stop this process's zygotes (those running as ``uid`` only, if given)."""
    for zygote in list(_zygotes.values()):
        if uid is None or zygote.uid == uid:
            zygote.stop()
