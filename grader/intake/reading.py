"""Reading a hand-in without trusting it: what it may cost the grader is bounded.

Staging runs in the grader's own process (and in nbgrader's), so nothing a submission
holds may make it block, loop or grow without bound:

- only regular files are read, never through a link, and never more than a cap
  (a FIFO named ``x.ipynb`` would block ``open``, a device would never end);
- folders are walked breadth-first, without recursion, to a depth and a number of
  entries (a chain of 1,200 folders stops ``os.walk`` with a RecursionError);
- parsing student code goes through a ``Budget``: a number of bytes per hand-in
  (deterministic: the same hand-in stops at the same place on any machine) and a
  wall-clock deadline, a safety net that the byte caps keep far away.

Whatever goes wrong while reading is the student's: ``HandinError``, a message that
names the file and says why, never a grader failure.
"""
from __future__ import annotations

import ast
import itertools
import os
import stat
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

PARSE_BYTES = 6 << 20     # student code parsed per hand-in, all attempts together
SECONDS = 30.0            # reading one hand-in, whatever it holds (the caps keep it to ~1 s)
MAX_DEPTH = 16            # folder levels searched below a student's folder
MAX_ENTRIES = 20_000      # files and folders looked at in a student's folder


class HandinError(Exception):
    """The hand-in cannot be read as it is; the message is for the student (it names the file)."""


class OverBudget(HandinError):
    """Reading this hand-in would cost more than its budget."""


_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket", stat.S_IFLNK: "a symbolic link",
          stat.S_IFDIR: "a folder"}


def kind(mode: int) -> str:
    """What a file of this mode is, in words (for messages)."""
    return "a regular file" if stat.S_ISREG(mode) else _KINDS.get(stat.S_IFMT(mode), "a special file")


def shown(name: str, limit: int = 120) -> str:
    """A file name from a submissions folder, safe to print anywhere: every control or
    invisible character (ANSI escapes, bidi overrides) written as an escape, cut to ``limit``."""
    text = "".join(c if c.isprintable() and c not in "\\" else
                   ("\\\\" if c == "\\" else repr(c)[1:-1]) for c in str(name)[:limit])
    return text + ("..." if len(str(name)) > limit else "")


class Budget:
    """What reading one hand-in may still cost: bytes of code to parse, and time."""

    def __init__(self, parse_bytes: int = PARSE_BYTES, seconds: float = SECONDS):
        self.left, self.seconds = parse_bytes, seconds
        self.deadline = time.monotonic() + seconds

    def check(self, what: str) -> None:
        """HandinError once the deadline has passed (``what``: where we were)."""
        if time.monotonic() > self.deadline:
            raise HandinError(f"reading {what} took longer than {self.seconds:g} s; it was stopped")

    def parse(self, source: str, filename: str) -> ast.Module:
        """``ast.parse``, charged to the budget (OverBudget when it is spent)."""
        self.check(filename)
        if len(source) > self.left:
            raise OverBudget(f"{filename}: the hand-in holds more code than the grader reads "
                             f"({PARSE_BYTES >> 20} MB of parsing in all)")
        self.left -= len(source)
        return ast.parse(source, filename=filename)


def read_bytes(path: Path, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the regular file ``path`` and whether there was more.

    Anything else (a FIFO, a device, a link, a folder) is a HandinError before it is
    opened for reading; ``O_NONBLOCK``/``O_NOFOLLOW`` and a check of what was opened
    hold even if the file is swapped in between.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            raise HandinError(f"{shown(path.name)} is {kind(st.st_mode)}, not a regular file; it was not read")
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise HandinError(f"{shown(path.name)} could not be read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise HandinError(f"{shown(path.name)} is {kind(st.st_mode)}, not a regular file; it was not read")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise HandinError(f"{shown(path.name)} could not be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    return data[:limit], len(data) > limit


@dataclass
class Tree:
    """The regular files of a student's folder (paths relative to it), found by ``walk``."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    cut: str = ""    # why the walk stopped early ("" if it saw everything)

    def named(self, name: str) -> list[Path]:
        """Files whose path ends with ``name`` (``net.py``, ``pkg/helpers.py``)."""
        parts = Path(name).parts
        return [f for f in self.files if f.parts[-len(parts):] == parts]


def walk(folder: Path, budget: Budget | None = None, max_depth: int = MAX_DEPTH,
         max_entries: int = MAX_ENTRIES) -> Tree:
    """Every regular file below ``folder``, breadth-first (shallow files first), never
    following a link, at most ``max_depth`` levels and ``max_entries`` entries down."""
    folder = Path(folder)
    tree, seen = Tree(folder), 0
    queue: deque[tuple[Path, int]] = deque([(Path(), 0)])
    while queue:
        relative, depth = queue.popleft()
        if budget is not None:
            budget.check(f"the folder {shown(folder.name)}")
        try:
            with os.scandir(folder / relative) as found:  # never more than the rest of the cap in memory
                entries = sorted(itertools.islice(found, max_entries - seen + 1), key=lambda e: e.name)
        except OSError:
            continue  # unreadable or gone: nothing of it is found
        for entry in entries:
            seen += 1
            if seen > max_entries:
                tree.cut = f"it holds more than {max_entries} files and folders; only the first were looked at"
                return tree
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if depth + 1 < max_depth:
                        queue.append((relative / entry.name, depth + 1))
                    elif not tree.cut:
                        tree.cut = f"its folders go more than {max_depth} levels deep; deeper ones were not read"
                elif entry.is_file(follow_symlinks=False):
                    tree.files.append(relative / entry.name)
            except OSError:
                continue
    return tree
