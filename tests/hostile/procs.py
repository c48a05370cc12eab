"""Killing a `grader grade` run the way a crash does, without leaving litter behind.

Used by tests/test_resume.py and tests/test_hostile.py, which start the CLI in its own
process group (``start_new_session=True``) and SIGKILL it mid-batch.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time


def wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def group_alive(pgid: int) -> list[str]:
    """``"pid stat args"`` of the processes still in the group (zombies are not counted).

    ``ps -ww``: without it ps cuts ``args`` to $COLUMNS, which pytest sets.
    """
    out = subprocess.run(["ps", "-ww", "-eo", "pgid=,pid=,stat=,args="], capture_output=True,
                         text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines()]
    return [" ".join(r[1:]) for r in rows if len(r) >= 3 and r[0] == str(pgid) and not r[2].startswith("Z")]


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the run: the CLI, its forkserver and job processes (their sandboxes die with
    them). multiprocessing's resource tracker is left to notice and remove the run's named
    semaphores from /dev/shm, as after any crash; it is killed only if it stays."""
    for _ in range(20):  # the forkserver may fork a job process while we look
        living = [line.split(None, 2) for line in group_alive(proc.pid)]
        targets = [int(row[0]) for row in living if "resource_tracker" not in " ".join(row[1:])]
        if not targets:
            break
        for pid in targets:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    proc.wait()
    if not wait_until(lambda: not group_alive(proc.pid), 5):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
