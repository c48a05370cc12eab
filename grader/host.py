"""What a grading process holds on this machine, given back even when it is SIGKILLed.

- A sandbox uid, leased machine-wide. ``RLIMIT_NPROC`` counts per host uid across PID
  namespaces, so two graders whose sandboxes shared a uid would share one process
  budget: a fork bomb in one run would stop the other run's workers from starting.
  Each grading process therefore locks a uid of its own (``flock`` on a lock file in
  a root-only folder) for as long as it grades; the kernel drops the lock when the
  process dies, however it dies.
- Staging folders. Each is locked by the process using it, so a folder nobody holds
  is litter from a killed run and is removed; a live run's folder never is, even one
  in another PID namespace (a pid check could not tell).
- Dying with the CLI. Job processes are forked by multiprocessing's forkserver, not
  by the CLI, so nothing stops them when the CLI is killed: ``exit_with`` makes each
  one watch the CLI's pidfd, and stop its sandboxes and exit when the CLI is gone.
"""
from __future__ import annotations

import fcntl
import os
import select
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grader import sandbox

LEASE_DIRS = (Path("/run/grader"), Path("/tmp/grader-uids"))  # the first one usable is used
# 65533 down to 65500, never 65534 ("nobody", the default of runner.grade and tools)
UIDS = range(sandbox.WORKER_UID - 1, sandbox.WORKER_UID - 35, -1)
STAGING_PREFIX = "grader-staging-locked-"
ORPHANED_EXIT = 70  # exit status of a job process whose CLI is gone


# --- sandbox uids ---------------------------------------------------------------------
@dataclass
class Lease:
    """A sandbox uid this process holds; ``fd`` carries the lock (None: nothing to lock)."""

    uid: int
    fd: int | None = None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor drops the flock
            self.fd = None


def lease_uid(poll: float = 0.2) -> Lease:
    """Lock the first free uid of ``UIDS`` for this process; wait while all are taken.

    Not root: the sandbox runs as the grader's own uid whatever uid it is given (a user
    namespace maps it), so there is nothing to share and nothing is locked.
    """
    if os.geteuid() != 0:
        return Lease(UIDS[0])
    folder = _lease_dir()
    waiting = False
    while True:
        for uid in UIDS:
            fd = os.open(folder / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)  # who holds it, for whoever wonders (the lock is what counts)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return Lease(uid, fd)
        if not waiting:
            waiting = True
            print(f"grader: all {len(UIDS)} sandbox uids are in use by other grading processes "
                  f"on this machine; waiting for one ({folder})", file=sys.stderr)
        time.sleep(poll)


_held: Lease | None = None


def process_uid() -> int:
    """A uid leased for the rest of this process: its zygote, started once, lives as long."""
    global _held
    if _held is None:
        _held = lease_uid()
    return _held.uid


def _lease_dir() -> Path:
    """A folder only root can write (students' processes run as the leased uids)."""
    for folder in LEASE_DIRS:
        try:
            folder.mkdir(mode=0o700, parents=False, exist_ok=True)
            st = folder.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
            if stat.S_IMODE(st.st_mode) != 0o700:
                os.chmod(folder, 0o700)
            return folder
    raise RuntimeError(f"no root-owned folder for the sandbox uid locks: tried {', '.join(map(str, LEASE_DIRS))}")


# --- staging folders ------------------------------------------------------------------
@contextmanager
def staging() -> Iterator[Path]:
    """A fresh folder (mode 0755: the sandbox uid reads it), locked while in use, then removed.

    A process killed while it holds one leaves it behind; ``sweep_staging`` removes it.
    """
    path, fd = _locked_folder()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def _locked_folder() -> tuple[Path, int]:
    """mkdtemp, then lock; a sweeper that got there between the two removed it: try again."""
    while True:
        path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX))
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a sweeper removes it
        try:
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                os.chmod(path, 0o755)
                return path, fd
        except FileNotFoundError:
            pass
        os.close(fd)


def sweep_staging(folder: Path | None = None) -> list[Path]:
    """Remove the staging folders in ``folder`` (default: the temp folder) that no process holds."""
    removed = []
    root = Path(folder or tempfile.gettempdir())
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(STAGING_PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:  # gone, or a link: not ours
            continue
        try:
            if os.fstat(fd).st_uid != os.geteuid():
                continue  # another user's: never ours to remove
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a live grader is using it
            os.close(fd)
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
        finally:
            os.close(fd)
    return removed


# --- dying with the CLI ---------------------------------------------------------------
_writing = threading.Lock()


_cli: int | None = None  # pidfd of the process this one ends with (``exit_with``)


@contextmanager
def writing() -> Iterator[None]:
    """Held while a report is written: once the CLI is gone, no new report is started.

    The watcher thread may not have run yet when the CLI has just died, so the pidfd is
    also looked at here, with the lock held.
    """
    with _writing:
        if _cli is not None and select.select([_cli], [], [], 0)[0]:
            _orphaned(locked=True)
        yield


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot): with the pid, it names one process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(data[data.rfind(b")") + 2:].split()[19])


def exit_with(pid: int, started: int | None) -> None:
    """End this process (and its sandboxes) as soon as process ``pid`` ends.

    ``started``: ``start_time(pid)`` taken by that process itself, so a pid reused by
    another process before this one looked is not mistaken for it.
    """
    global _cli
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        _orphaned()
    if started is not None and start_time(pid) != started:
        _orphaned()
    _cli = fd
    threading.Thread(target=_watch, args=(fd,), name=f"exit-with-{pid}", daemon=True).start()


def _watch(fd: int) -> None:
    select.select([fd], [], [])  # a pidfd becomes readable when its process ends
    _orphaned()


def _orphaned(locked: bool = False) -> None:
    """No more reports; stop this process's sandboxes; exit (within about a second, whatever hangs).

    ``locked``: the caller holds the report lock (``writing``)."""
    if not locked:
        _writing.acquire(timeout=2)  # a report being written is finished; no other one starts
    threading.Thread(target=lambda: (time.sleep(1.0), os._exit(ORPHANED_EXIT)), daemon=True).start()
    try:
        from grader.worker import client

        client.stop_zygotes()  # bubblewrap's --die-with-parent would get them too, a moment later
    finally:
        os._exit(ORPHANED_EXIT)
