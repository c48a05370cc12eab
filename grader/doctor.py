"""``grader doctor``: prove this machine can grade, say what isolation it gives, and how to get more.

"isolation: full" is only ever said after the canary - the course's reference solution,
graded end to end by a real sandboxed worker - scored full marks under full isolation.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

from grader import sandbox


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr \
        else "?"


def _userns_lines() -> tuple[list[str], list[str]]:
    """Lines about user namespaces, and hints if they are off."""
    lines, hints = [], []
    limit = _read("/proc/sys/user/max_user_namespaces")
    clone = _read("/proc/sys/kernel/unprivileged_userns_clone")
    apparmor = _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    state = "available" if limit not in (None, "0") and clone != "0" else "disabled"
    detail = [f"max_user_namespaces={limit}" if limit is not None else "no /proc/sys/user"]
    if clone is not None:
        detail.append(f"unprivileged_userns_clone={clone}")
    if apparmor is not None:
        detail.append(f"apparmor_restrict_unprivileged_userns={apparmor}")
    lines.append(f"user namespaces: {state} ({', '.join(detail)})")
    if os.geteuid() != 0:
        if limit == "0":
            hints.append("enable user namespaces: sysctl -w user.max_user_namespaces=15000")
        if clone == "0":
            hints.append("enable user namespaces: sysctl -w kernel.unprivileged_userns_clone=1")
        if apparmor == "1":
            hints.append("allow bubblewrap under AppArmor (Ubuntu 24.04+): add an AppArmor "
                         "profile for /usr/bin/bwrap with 'userns,' or run the grader as root")
    return lines, hints


def doctor_lines(course, assignments: list[str], measure: bool = False) -> list[tuple[str, bool]]:
    """(line, good) for an instructor; not good: this machine cannot grade (see the canary's lines).

    One canary per assignment: each one's reference graded end to end through the sandbox."""
    from grader import canary
    from grader.grading import Grading
    from grader.hidden.session import HiddenTestsError

    lines = [(line, True) for line in _machine_lines(measure)]
    lines.append((f"course: {course.label}", True))
    proofs = []
    for name in assignments:
        try:
            proof = canary.run(Grading.of(course, name))
        except HiddenTestsError as exc:
            proof = canary.Canary(False, "isolation: unknown", 0.0, [str(exc)], ["fix the hidden tests first"])
        proofs.append(proof)
        lines += [(f"{name}: {line}", proof.ok) for line in proof.report().splitlines()]
    if proofs and proofs[0].confinement:  # what the canary's sandbox had: its own proof of each
        lines += [(line, True) for line in proofs[0].confinement]
    if not all(p.ok for p in proofs):
        lines.append(("cannot grade here: nothing would be graded until the problem above is fixed", False))
    elif all(p.full for p in proofs):
        lines.append(("isolation: full (proven: the canary ran in the full sandbox)", True))
        lines.append(("full isolation: `--sandbox required` will work", True))
    else:
        lines.append((proofs[0].isolation, True))
        lines.append(("`--sandbox required` refuses to grade until full isolation is available; `auto` grades "
                      "with the reduced isolation above", True))
    return lines


def _machine_lines(measure: bool = False) -> list[str]:
    """What this machine offers; ``measure`` adds worker start times."""
    lines = [f"python: {platform.python_version()} at {sys.executable}"]
    try:
        import numpy

        lines.append(f"numpy: {numpy.__version__} at {Path(numpy.__file__).parent}")
    except ImportError as exc:
        lines.append(f"numpy: not importable ({exc}) - pip install numpy")
    lines.append(f"system: {platform.system()} {platform.release()}")

    hints: list[str] = []
    bwrap = sandbox.find_bwrap()
    if bwrap:
        lines.append(f"bubblewrap: {bwrap} ({_version([bwrap, '--version'])})")
    else:
        lines.append("bubblewrap: not found")
        hints.append(f"install bubblewrap: {sandbox.INSTALL_HINT}")
    tools = {name: sandbox._tool(name) for name in ("setpriv", "prlimit", "unshare")}
    lines.append("util-linux: " + ", ".join(f"{n} {'ok' if p else 'missing'}"
                                             for n, p in tools.items()))
    if not all(tools.values()):
        hints.append("install util-linux (setpriv, prlimit, unshare): apt-get install -y "
                     "util-linux")
    ns_lines, ns_hints = _userns_lines()
    lines += ns_lines

    level = sandbox.probe()
    plan = sandbox._plan(bwrap, sandbox.WORKER_UID)
    if os.geteuid() == 0 and plan.run_as is not None:
        how = "setpriv inside the sandbox" if level.full else "setpriv before exec"
        lines.append(f"running as: root; each grading process leases its own sandbox uid (65533 down to "
                     f"65500) and submissions run as it with no capabilities ({how}); the worker that "
                     "forks them keeps another uid, so they cannot signal it")
    elif os.geteuid() == 0:
        lines.append("running as: root; submissions would run as ROOT: without bubblewrap the "
                     f"interpreter is not reachable by uid {sandbox.WORKER_UID} (or setpriv "
                     "is missing) - install bubblewrap, or use a Python outside /root (e.g. a "
                     "venv made with /usr/bin/python3)")
    else:
        shared = ("; `processes` counts each sandbox's own processes (its user namespace), but they"
                  if sandbox._nproc_inside(sandbox.Limits()) else "; but they share your process limit and")
        lines.append(f"running as: uid {os.geteuid()} (not root): submissions run as this same uid inside "
                     f"a user namespace, with no capabilities and none of your files visible{shared} "
                     "could signal the sandbox's own worker (a student who does only fails themselves). "
                     "Run the grader as root to give submissions a uid of their own")
        hints += ns_hints

    if level.full:
        lines.append(f"inside the sandbox: Python standard library + "
                     f"{', '.join(sandbox.PACKAGES)}; the submission at "
                     f"{sandbox.SUBMISSION_PATH} (read-only), a private /tmp; no network, no "
                     "other processes, nothing else of this machine")
    limits = sandbox.Limits()
    lines.append(f"default limits: {limits.call_seconds:g} s per call, {limits.memory_mb} MB "
                 f"memory, {limits.cpu_seconds} s CPU, {limits.processes} processes, "
                 f"{limits.open_files} open files, {limits.file_size_mb} MB per file, "
                 f"{limits.output_bytes // 1024} KiB output kept")
    if not level.full:
        if bwrap and not any("bubblewrap" in h for h in hints):
            hints.append("bubblewrap is installed but cannot create namespaces here; in a "
                         "container, allow it (e.g. docker run --security-opt "
                         "seccomp=unconfined --security-opt apparmor=unconfined --cap-add "
                         "SYS_ADMIN) or grade on the host")
        lines.append(f"the sandbox here: {level}")
        lines.append("to get full isolation: " + ("; ".join(hints) if hints else "see above"))
    if measure:
        try:
            times = sandbox.measure_start(repeat=5)
        except Exception as exc:  # a report, not a failure
            lines.append(f"start time: could not measure ({type(exc).__name__}: {exc})")
        else:
            lines.append("start time (python -I -c 'import numpy', median of 5): " + ", ".join(
                f"{name} {seconds * 1000:.0f} ms" for name, seconds in times.items()))
    return lines


