"""Make the student release from an assignment's reference: one source of truth.

Solution regions are marked as nbgrader marks them::

    ### BEGIN SOLUTION
    ...
    ### END SOLUTION

and become a ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` stub at the
marker's indentation. Every other file of the assignment folder is copied unchanged,
except its manifest and its ``hidden/`` folder, which students never see. The same
files also become the assignment's Jupyter notebook (``grader.authoring.notebook``), and
a self-check gets its reporter (``grader.authoring.selfcheck``).
"""
from __future__ import annotations

import shutil
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
SKIP = {"__pycache__"}  # and every dot-folder or dot-file (.pytest_cache, .benchmarks, ...)


class ReleaseError(ValueError):
    """A malformed solution region; the message names the file and line."""


def solution_regions(source: str, name: str = "<source>") -> list[tuple[int, int]]:
    """Return (begin, end) 0-based line indices of each marked region, markers included."""
    regions, start = [], None
    for i, line in enumerate(source.splitlines()):
        marker = line.strip()
        if ("BEGIN SOLUTION" in marker or "END SOLUTION" in marker) and marker not in (BEGIN, END):
            raise ReleaseError(f"{name}:{i + 1}: malformed marker {marker!r}; write {BEGIN!r} or {END!r}")
        if marker == BEGIN:
            if start is not None:
                raise ReleaseError(f"{name}:{i + 1}: BEGIN SOLUTION inside another region")
            start = i
        elif marker == END:
            if start is None:
                raise ReleaseError(f"{name}:{i + 1}: END SOLUTION without BEGIN SOLUTION")
            regions.append((start, i))
            start = None
    if start is not None:
        raise ReleaseError(f"{name}:{start + 1}: BEGIN SOLUTION is never closed")
    return regions


def strip_solutions(source: str, name: str = "<source>") -> str:
    """Replace each solution region with the student stub, keeping its indentation."""
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    last = 0
    for begin, end in solution_regions(source, name):
        out.extend(lines[last:begin])
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        out.extend(f"{indent}{stub}\n" for stub in STUB)
        last = end + 1
    out.extend(lines[last:])
    return "".join(out)


def solution_lines(source: str) -> set[str]:
    """The stripped, non-trivial lines inside solution regions (for leak checks)."""
    lines = source.splitlines()
    found = set()
    for begin, end in solution_regions(source):
        for line in lines[begin + 1 : end]:
            text = line.split("#")[0].strip()
            if len(text) > 8:
                found.add(text)
    return found


def release_files(assignment) -> dict[Path, bytes]:
    """Every file of the student release (relative path -> bytes), checked before anything is written.

    The assignment's own files (hidden/ and the manifest left out, solution regions
    stubbed), its notebook, and the self-check's reporter when it ships a self-check.
    """
    from grader.assignment import HIDDEN, MANIFEST
    from grader.authoring import notebook, selfcheck

    source_dir = Path(assignment.folder).resolve()
    files = {}
    for src in sorted(source_dir.rglob("*")):
        parts = src.relative_to(source_dir).parts
        if src.is_dir() or SKIP & set(parts) or any(p.startswith(".") for p in parts) \
                or parts[0] == HIDDEN or parts == (MANIFEST,):
            continue
        data = src.read_bytes()
        if src.suffix == ".py":
            data = strip_solutions(data.decode("utf-8"), str(src)).encode("utf-8")
        files[src.relative_to(source_dir)] = data
    for name, data in selfcheck.files(assignment).items():
        if Path(name) in files:
            raise ReleaseError(f"{source_dir / name}: the release writes this file for the self-check; "
                               "rename yours")
        files[Path(name)] = data
    files[Path(assignment.notebook)] = notebook.dumps(notebook.student_notebook(assignment)).encode("utf-8")
    return files


def notebook_companions(assignment) -> dict[Path, bytes]:
    """What a notebook student needs beside the notebook: the release minus the .py stubs
    (the notebook holds that code) and the README written for .py hand-ins."""
    skip = {Path(f) for f in assignment.files} | {Path(assignment.notebook)}
    return {path: data for path, data in release_files(assignment).items()
            if path not in skip and not (len(path.parts) == 1 and path.name.upper().startswith("README"))}


def release(assignment, target_dir: Path) -> list[Path]:
    """Write the student version of ``assignment`` into ``target_dir``; return its files.

    Every source is checked before anything is written; then ``target_dir`` is
    emptied, so a file removed from the source disappears from the release too.
    """
    source_dir, target_dir = Path(assignment.folder).resolve(), Path(target_dir).resolve()
    if target_dir == source_dir or source_dir.is_relative_to(target_dir) \
            or target_dir.is_relative_to(source_dir):
        raise ReleaseError(f"the release folder {target_dir} must be outside {source_dir}")
    files = release_files(assignment)
    if target_dir.exists():
        shutil.rmtree(target_dir)
    written = []
    for relative, data in files.items():
        dst = target_dir / relative
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        written.append(dst)
    return written
