"""Memory cgroups: all of a student's memory charged together, memory of no process included.

RLIMIT_AS caps each process's address space and the zygote's watcher sums the resident
memory of a submission's processes, but neither sees pages that are in no process's
RSS: a memfd or a tmpfs file filled with ``write()``, SysV shared memory detached
again. The kernel's memory controller charges every page to the cgroup of the process
that made it. Each grading slot's zygote is moved, once, into a cgroup of its own
(``Cgroup``), limited to ``memory_mb`` (swap included); each student's process is forked
there, so it is charged from its first instruction without a move of its own (a move
costs ~16 ms of cgroup v1's locking, per student). The zygote's own memory was charged
before its move; a student's process asks the OOM killer to take it first
(``oom_score_adj``). Over the limit, the kernel's OOM killer stops the submission, and
``oom_kills`` says so: every kill in the slot's cgroup while a student runs is theirs.

Possible as root, below the grader's own memory cgroup: cgroup v1's memory hierarchy,
or a cgroup v2 folder whose ``cgroup.subtree_control`` hands the memory controller down.
Elsewhere ``support()`` says why not, and ``grader doctor`` shows it.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

PREFIX = "grader-"


@dataclass(frozen=True)
class Support:
    """Where student cgroups go (``parent``, ``version``), or why they cannot (``why``)."""

    parent: Path | None = None
    version: int = 0
    why: str = ""

    @property
    def ok(self) -> bool:
        return self.parent is not None

    def describe(self, memory_mb: int) -> str:
        if not self.ok:
            return (f"memory cgroup: not available ({self.why}); memory that is in no process's RSS "
                    "(memfd, tmpfs, shared memory) is not charged to a submission")
        return (f"memory cgroup: on (cgroup v{self.version} below {self.parent}): all of a submission's "
                f"memory, memfd, tmpfs and shared memory included, is charged together to {memory_mb} MB")


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, file system type, super options) of every mount."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 5 and len(rest) >= 3:
            out.append((fields[4].replace("\\040", " "), rest[0], rest[2]))
    return out


@functools.cache
def support() -> Support:
    """Whether student cgroups can be made here, and where (cached)."""
    if os.geteuid() != 0:
        return Support(why="the grader does not run as root")
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return Support(why="no /proc/self/cgroup (cgroups are not in this kernel)")
    groups = {}
    for line in own:
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            groups[controller] = path
    mounts = _mounts()
    if "memory" in groups:  # cgroup v1
        root = next((m for m, kind, opts in mounts if kind == "cgroup" and "memory" in opts.split(",")), None)
        if root is None:
            return Support(why="cgroup v1 memory controller not mounted")
        parent = Path(root) / groups["memory"].lstrip("/")
        return _writable(parent, 1)
    root = next((m for m, kind, _ in mounts if kind == "cgroup2"), None)
    if root is None or "" not in groups:
        return Support(why="no memory controller (neither a cgroup v1 memory hierarchy nor cgroup v2)")
    parent = Path(root) / groups[""].lstrip("/")
    try:
        delegated = "memory" in (parent / "cgroup.subtree_control").read_text().split()
    except OSError as exc:
        return Support(why=f"cgroup v2 at {parent} cannot be read ({exc.strerror})")
    if not delegated:
        return Support(why=f"cgroup v2: {parent} does not hand the memory controller to its children "
                           "(cgroup.subtree_control); run the grader in a cgroup that does, e.g. "
                           "systemd-run --scope -p Delegate=yes")
    return _writable(parent, 2)


def _writable(parent: Path, version: int) -> Support:
    """A trial cgroup below ``parent``: made and removed, or why not."""
    trial = parent / f"{PREFIX}probe-{os.getpid()}"
    try:
        trial.mkdir()
        trial.rmdir()
    except OSError as exc:
        return Support(why=f"cannot make a cgroup in {parent} ({exc.strerror})")
    return Support(parent, version)


class Cgroup:
    """A memory cgroup for one grading slot's student processes."""

    def __init__(self, path: Path, version: int):
        self.path, self.version = path, version
        self._oom_seen = self.oom_kills()

    @classmethod
    def make(cls, memory_mb: int) -> Cgroup | None:
        """A fresh cgroup limited to ``memory_mb`` (swap included); None where unsupported.
        Raises OSError when the machine supports it but this one cannot be made."""
        found = support()
        if not found.ok:
            return None
        sweep(found.parent)
        path = found.parent / f"{PREFIX}{os.getpid()}-{_start_time(os.getpid())}-{next(_serial)}"
        path.mkdir()
        group = cls(path, found.version)
        try:
            limit = str(memory_mb << 20)
            if found.version == 1:
                group._write("memory.limit_in_bytes", limit)
                if (path / "memory.memsw.limit_in_bytes").exists():
                    group._write("memory.memsw.limit_in_bytes", limit)
            else:
                group._write("memory.max", limit)
                if (path / "memory.swap.max").exists():
                    group._write("memory.swap.max", "0")
        except OSError:
            group.remove()
            raise
        group._oom_seen = group.oom_kills()
        return group

    def _write(self, name: str, value: str) -> None:
        with open(self.path / name, "w") as fh:
            fh.write(value)

    def add(self, pid: int) -> None:
        """Move process ``pid`` (a host pid) into this cgroup; its children follow it."""
        self._write("cgroup.procs", str(pid))

    def oom_kills(self) -> int:
        """Processes the kernel killed in this cgroup for its limit, so far."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in (self.path / name).read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def new_oom_kills(self) -> int:
        """OOM kills since the last call (or since the cgroup was made)."""
        now = self.oom_kills()
        new, self._oom_seen = max(now - self._oom_seen, 0), now
        return new

    def remove(self, seconds: float = 1.0) -> bool:
        """Remove the cgroup once its processes are gone (they may be dying still)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.path.rmdir()
                return True
            except FileNotFoundError:
                return True
            except OSError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)


def _serial_numbers():
    n = 0
    while True:
        n += 1
        yield n


_serial = _serial_numbers()


def _start_time(pid: int) -> int | None:
    from grader.host import start_time

    return start_time(pid)


def sweep(parent: Path) -> list[Path]:
    """Remove the cgroups that grading processes since gone left behind (SIGKILLed runs):
    named after a pid and start time that no longer name a live process, and empty."""
    removed = []
    try:
        entries = [p for p in parent.iterdir() if p.name.startswith(PREFIX)]
    except OSError:
        return removed
    for path in entries:
        parts = path.name[len(PREFIX):].split("-")
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        if str(_start_time(int(parts[0]))) == parts[1]:
            continue  # its grading process is alive
        try:
            path.rmdir()
            removed.append(path)
        except OSError:
            continue
    return removed


def nspid(pid: int) -> int | None:
    """The pid process ``pid`` (a host pid) has in its own, innermost PID namespace."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def children(pid: int) -> list[int]:
    """Host pids of process ``pid``'s children."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(n) for n in fh.read().split()]
    except (OSError, ValueError):
        from grader.sandbox import _children

        return _children(pid)


def host_pid(root: int, inner: int, depth: int = 4) -> int | None:
    """The host pid of the process below ``root`` (itself included, ``depth`` levels down)
    whose own PID namespace calls it ``inner``."""
    level = [root]
    for _ in range(depth + 1):
        for pid in level:
            if nspid(pid) == inner:
                return pid
        level = [c for pid in level for c in children(pid)]
    return None
