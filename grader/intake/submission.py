"""Stage 1: find each student's files and stage a clean, read-only copy to run.

Students' own files are never modified: they are read (size-capped), decoded,
normalised (BOM, Windows line endings) and written to a staging folder that the
sandbox mounts read-only. A file with a syntax error is salvaged: the top-level
block holding the error is blanked out, so the other classes are still graded, and
the note says exactly what was left out.
"""
from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_BYTES = 1 << 20
_ID = re.compile(r"^[\w.@+-]{1,100}$")


@dataclass
class Submission:
    """One student's hand-in: a folder, or a single notebook (``notebook``, ``folder`` its parent)."""

    student: str
    folder: Path
    notebook: Path | None = None

    @classmethod
    def of(cls, path: Path) -> Submission:
        """The hand-in at ``path``: a student's folder, or one notebook file."""
        path = Path(path)
        if path.is_file():
            return cls(path.stem, path.parent, path)
        return cls(path.name, path)


@dataclass
class Staged:
    """The staged copy and what static reading found (for notes and diagnoses)."""

    folder: Path
    notes: list[str] = field(default_factory=list)
    duplicates: dict[str, list[int]] = field(default_factory=dict)   # class -> lines
    left_out: dict[str, str] = field(default_factory=dict)           # class -> why


def discover(root: Path) -> tuple[list[Submission], list[str]]:
    """One submission per sub-folder of ``root``, or per ``STUDENT.ipynb`` file in it; the
    second list explains what was skipped.

    A symbolic link is skipped: it would be graded as its target (``solutions/``,
    another student's folder) under this student's name.
    """
    found, skipped = [], []
    entries = sorted(e for e in Path(root).iterdir() if not e.name.startswith("."))
    folders = {e.name for e in entries if e.is_dir() and not e.is_symlink()}
    for entry in entries:
        loose = entry.suffix == ".ipynb" and not entry.is_dir()
        student = entry.stem if loose else entry.name
        if entry.is_symlink():
            skipped.append(f"{entry.name}: a symbolic link (to {os.readlink(entry)}); "
                           "links are never followed, so it was not graded")
        elif not entry.is_dir() and not loose:
            skipped.append(f"{entry.name}: not a folder or a notebook (one folder or one "
                           "STUDENT.ipynb per student is expected)")
        elif not _ID.match(student):
            skipped.append(f"{entry.name!r}: a student id may use letters, digits and . _ - + @ only")
        elif loose and student in folders:
            skipped.append(f"{entry.name}: {student}/ is a folder too; the folder was graded, not this notebook")
        else:
            found.append(Submission(student, entry.parent, entry) if loose else Submission(student, entry))
    return found, skipped


def stage(submission: Submission, target: Path, assignment) -> Staged:
    """Write the student's files of ``assignment``, cleaned, into ``target``, with the
    assignment's own helper modules beside them (the student's copies never count);
    record what was found."""
    target.mkdir(parents=True, exist_ok=True)
    staged = Staged(target)
    for name, text in assignment.helper_sources().items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text, encoding="utf-8")
    notebook = _notebook(submission, staged.notes, assignment)
    for name in assignment.files:
        if notebook is not None:
            text = notebook.get(name)
            if text is None:
                staged.notes.append(f"{name} is missing (no cell of the notebook belongs to it).")
                continue
        else:
            source = locate(submission.folder, name, staged.notes)
            if source is None:
                staged.notes.append(f"{name} is missing.")
                continue
            text = read_text(source, staged.notes)
        if not text.strip():
            staged.notes.append(f"{name} is empty.")
        text, tree = salvage(text, name, staged)
        if tree is not None:
            find_duplicates(tree, name, staged)
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text, encoding="utf-8")
    return staged


def _notebook(submission: Submission, notes: list[str], assignment) -> dict[str, str] | None:
    """The files extracted from the hand-in's notebook: a loose STUDENT.ipynb, or one in a
    folder that has none of the .py files; None when the .py files are to be graded."""
    from grader.intake import notebook  # only notebook submissions need it

    if submission.notebook is not None:
        return notebook.from_file(submission.notebook, notes, assignment)
    if any(locate(submission.folder, name, []) for name in assignment.files):
        return None
    return notebook.from_folder(submission.folder, notes, assignment)


def locate(folder: Path, name: str, notes: list[str]) -> Path | None:
    """The file at the top of the folder, or the only one with that name below it."""
    direct = folder / name
    if direct.is_file() and not direct.is_symlink():
        return direct
    below = [p for p in folder.rglob(name) if p.is_file() and not p.is_symlink()]
    if len(below) == 1:
        notes.append(f"{name} was found at {below[0].relative_to(folder)}, not at the top; it was used.")
        return below[0]
    return None


def read_text(path: Path, notes: list[str]) -> str:
    """At most ``MAX_BYTES`` of the file, decoded; never through a symbolic link.

    ``O_NOFOLLOW``: ``locate`` skipped links, but the file could be swapped for one
    since; and only the start is read, so a huge (or sparse) file costs no memory.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        notes.append(f"{path.name} is larger than {MAX_BYTES} bytes; only the start was read.")
        data = data[:MAX_BYTES]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        notes.append(f"{path.name} is not valid UTF-8 (byte {exc.start}); undecodable bytes were replaced.")
        text = data.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# What ast.parse raises besides a located SyntaxError: a NUL byte (SyntaxError without a
# line, or ValueError on older Pythons), absurd nesting (RecursionError, MemoryError).
_UNPARSABLE = (ValueError, RecursionError, MemoryError)


def salvage(text: str, name: str, staged: Staged, attempts: int = 10) -> tuple[str, ast.Module | None]:
    """Blank out each top-level block that does not compile; keep line numbers. Returns
    the text and its syntax tree (None if it still does not parse).

    Whatever the file holds (NUL bytes, nesting too deep for the compiler), the
    result is a note for the student naming the file and the lines, never an
    exception in the grader.
    """
    lines = text.split("\n")
    nul = [i for i, line in enumerate(lines) if "\0" in line]
    for i in nul:
        if "\0" in lines[i]:  # not blanked already with an earlier line's block
            _leave_out(lines, i, name, staged, "contains a NUL byte, which Python refuses "
                       "(was the file saved as UTF-16 or another encoding?)")
    for _ in range(attempts):
        try:
            return "\n".join(lines), ast.parse("\n".join(lines), filename=name)
        except SyntaxError as exc:
            if exc.lineno is None:  # not located: treated like the errors below
                _leave_out_unparsable(lines, name, staged, exc)
                continue
            line = min(max(exc.lineno - 1, 0), len(lines) - 1)
            _leave_out(lines, line, name, staged, f"{exc.msg} (`{(exc.text or '').strip()}`)",
                       lineno=exc.lineno, error=f"SyntaxError: {exc.msg}")
        except _UNPARSABLE as exc:
            _leave_out_unparsable(lines, name, staged, exc)
    return "\n".join(lines), None


def _leave_out(lines: list[str], index: int, name: str, staged: Staged, why: str,
               lineno: int | None = None, error: str | None = None) -> None:
    """Blank the top-level block holding line ``index``; say what was left out and why."""
    start, end = _block(lines, index)
    header = next((line for line in lines[start:end] if not line.startswith("@")), "").strip()
    match = re.match(r"(?:class|def)\s+(\w+)", header)
    what = f"{'class' if header.startswith('class') else 'function'} {match.group(1)}" \
        if match else f"lines {start + 1}-{end}"
    lineno = index + 1 if lineno is None else lineno
    staged.notes.append(f"{name}, line {lineno}: {why}. {what} was left out; the rest is graded.")
    if match:
        staged.left_out[match.group(1)] = f"{name}, line {lineno}: {error or why}"
    lines[start:end] = [""] * (end - start)


def _leave_out_unparsable(lines: list[str], name: str, staged: Staged, exc: BaseException) -> None:
    """Python cannot parse the file and does not say where: try each top-level block alone."""
    kind = type(exc).__name__
    why = (f"too deeply nested for Python to compile ({kind})" if isinstance(exc, RecursionError | MemoryError)
           else f"Python cannot compile this ({kind}: {exc})")
    culprits = [(start, end) for start, end in _blocks(lines)
                if isinstance(_parse_error("\n".join(lines[start:end])), _UNPARSABLE)]
    for start, end in culprits:  # end - 1: inside the block, even when it starts with a decorator
        _leave_out(lines, end - 1, name, staged, why, lineno=start + 1)
    if not culprits:  # no single block is to blame: nothing of the file can be graded
        staged.notes.append(f"{name}: {why}. The whole file was left out.")
        lines[:] = [""] * len(lines)


def _parse_error(source: str) -> BaseException | None:
    try:
        ast.parse(source)
    except (SyntaxError, *_UNPARSABLE) as exc:
        return exc
    return None


def _blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) of every top-level statement, decorators included."""
    out: list[tuple[int, int]] = []
    for i, line in enumerate(lines):
        if line and not line[0].isspace() and not line.startswith(("#", ")", "]", "}", "@")) \
                and (not out or i >= out[-1][1]):
            out.append(_block(lines, i))
    return out


def _block(lines: list[str], index: int) -> tuple[int, int]:
    """The top-level statement (with decorators and body) containing line ``index``."""
    def top(i: int) -> bool:
        s = lines[i]
        return bool(s) and not s[0].isspace() and not s.startswith(("#", ")", "]", "}"))

    start = index
    while start > 0 and not top(start):
        start -= 1
    while start > 0 and lines[start - 1].startswith("@"):
        start -= 1
    end = index + 1
    while end < len(lines) and not top(end):
        end += 1
    return start, end


def find_duplicates(tree: ast.Module, name: str, staged: Staged) -> None:
    """Note each class defined more than once: the last definition is the one graded."""
    seen: dict[str, list[int]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            seen.setdefault(node.name, []).append(node.lineno)
    for cls, lines in seen.items():
        if len(lines) > 1:
            staged.duplicates[cls] = lines
            staged.notes.append(f"{name}: class {cls} is defined {len(lines)} times (lines "
                                f"{', '.join(map(str, lines))}); only the last one counts.")
