"""Stage 1: find each student's files and stage a clean, read-only copy to run.

Students' own files are never modified: they are read (regular files only, size-capped,
see ``reading``), decoded, normalised (BOM, Windows line endings) and written to a
staging folder that the sandbox mounts read-only. A file with a syntax error is
salvaged: the top-level block holding the error is blanked out, so the other classes
are still graded, and the note says exactly what was left out.

Whatever a hand-in holds, reading it is bounded (``reading.Budget``) and never the
grader's failure: a hand-in that cannot be read at all is staged without the student's
files, with a note that says why, and graded as such.
"""
from __future__ import annotations

import ast
import os
import re
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from grader.intake.reading import Budget, HandinError, OverBudget, Tree, kind, read_bytes, shown, walk

MAX_BYTES = 1 << 20
# A student id names a folder, a spreadsheet row and a report: letters, digits and . _ - + @,
# starting with a letter, digit or _ (a leading = + - @ is a formula in a spreadsheet).
_ID = re.compile(r"\w[\w.@+-]{0,99}")


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


def valid_id(student: str) -> bool:
    """Whether ``student`` can be a student id (see ``_ID``)."""
    return _ID.fullmatch(student) is not None


def discover(root: Path) -> tuple[list[Submission], list[str]]:
    """One submission per sub-folder of ``root``, or per ``STUDENT.ipynb`` file in it; the
    second list explains what was skipped (names shown escaped: they are anyone's).

    A symbolic link is skipped: it would be graded as its target (``solutions/``,
    another student's folder) under this student's name. So is anything that is not a
    folder or a regular file: a FIFO named ``x.ipynb`` would block whoever opens it.
    """
    found, skipped = [], []
    entries = []
    for entry in sorted(e for e in Path(root).iterdir() if not e.name.startswith(".")):
        try:
            entries.append((entry, os.lstat(entry).st_mode))
        except OSError:  # gone since it was listed
            continue
    folders = {e.name for e, mode in entries if stat.S_ISDIR(mode)}
    for entry, mode in entries:
        loose = entry.suffix == ".ipynb" and stat.S_ISREG(mode)
        student = entry.stem if loose else entry.name
        name = shown(entry.name)
        if stat.S_ISLNK(mode):
            skipped.append(f"{name}: a symbolic link (to {shown(os.readlink(entry))}); "
                           "links are never followed, so it was not graded")
        elif entry.suffix == ".ipynb" and not loose and not stat.S_ISDIR(mode):
            skipped.append(f"{name}: {kind(mode)}, not a regular file; it was not read")
        elif not stat.S_ISDIR(mode) and not loose:
            skipped.append(f"{name}: not a folder or a notebook but {kind(mode)} (one folder or one "
                           "STUDENT.ipynb per student is expected)")
        elif not valid_id(student):
            skipped.append(f"{name}: a student id starts with a letter, a digit or _ and uses only letters, "
                           "digits and . _ - + @ (a leading = + - @ would be a formula in a spreadsheet); "
                           "rename it to grade it")
        elif loose and student in folders:
            skipped.append(f"{name}: {student}/ is a folder too; the folder was graded, not this notebook")
        else:
            found.append(Submission(student, entry.parent, entry) if loose else Submission(student, entry))
    return found, skipped


class Found:
    """A student's folder, walked once (lazily) when a file is not at its top."""

    def __init__(self, folder: Path, budget: Budget):
        self.folder, self.budget = Path(folder), budget

    @cached_property
    def tree(self) -> Tree:
        return walk(self.folder, self.budget)

    def locate(self, name: str, notes: list[str]) -> Path | None:
        """The file at the top of the folder, or the only one with that name below it."""
        direct = self.folder / name
        try:
            if stat.S_ISREG(os.lstat(direct).st_mode):
                return direct
        except OSError:
            pass
        below = self.tree.named(name)
        if len(below) == 1:
            notes.append(f"{name} was found at {shown(str(below[0]))}, not at the top; it was used.")
            return self.folder / below[0]
        return None

def stage(submission: Submission, target: Path, assignment, budget: Budget | None = None) -> Staged:
    """Write the student's files of ``assignment``, cleaned, into ``target``, with the
    assignment's own helper modules beside them (the student's copies never count);
    record what was found.

    Reading the hand-in never raises: whatever it holds (a folder chain too deep, a
    notebook of the wrong shape, more code than ``budget`` allows) becomes a note for
    the student, and the files that could not be read are missing. Writing the staged
    copy is the grader's own business, and its errors are the grader's.
    """
    target.mkdir(parents=True, exist_ok=True)
    staged = Staged(target)
    for name, text in assignment.helper_sources().items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text, encoding="utf-8")
    try:
        sources = _read(submission, staged, assignment, budget or Budget())
    except Exception as exc:  # noqa: BLE001 - anything in a hand-in is the student's to fix
        staged.duplicates.clear()
        staged.left_out.clear()
        why = str(exc) if isinstance(exc, HandinError) else f"{type(exc).__name__}: {shown(str(exc), 300)}"
        staged.notes.append(f"Your hand-in could not be read ({why}). Nothing of it was graded; "
                            "fix it and hand it in again (tell your instructor if you think this is wrong).")
        sources = {}
    for name, text in sources.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text, encoding="utf-8")
    return staged


def _read(submission: Submission, staged: Staged, assignment, budget: Budget) -> dict[str, str]:
    """The student's files of ``assignment``, cleaned, by name (those found)."""
    folder = Found(submission.folder, budget)
    notebook = _notebook(submission, folder, staged.notes, assignment, budget)
    sources = {}
    for name in assignment.files:
        if notebook is not None:
            text = notebook.get(name)
            if text is None:
                staged.notes.append(f"{name} is missing (no cell of the notebook belongs to it).")
                continue
        else:
            source = folder.locate(name, staged.notes)
            if source is None:
                staged.notes.append(f"{name} is missing.")
                continue
            try:
                text = read_text(source, staged.notes)
            except HandinError as exc:
                staged.notes.append(f"{name}: {exc}.")
                continue
        if not text.strip():
            staged.notes.append(f"{name} is empty.")
        text, tree = salvage(text, name, staged, budget=budget)
        if tree is not None:
            find_duplicates(tree, name, staged)
        sources[name] = text
    if notebook is None and folder.__dict__.get("tree") is not None and folder.tree.cut:
        staged.notes.append(f"Your folder was not searched completely: {folder.tree.cut}.")
    return sources


def _notebook(submission: Submission, folder: Found, notes: list[str], assignment,
              budget: Budget) -> dict[str, str] | None:
    """The files extracted from the hand-in's notebook: a loose STUDENT.ipynb, or one in a
    folder that has none of the .py files; None when the .py files are to be graded."""
    from grader.intake import notebook  # only notebook submissions need it

    if submission.notebook is not None:
        return notebook.from_file(submission.notebook, notes, assignment, budget)
    if any(folder.locate(name, []) for name in assignment.files):
        return None
    return notebook.from_folder(folder.tree, notes, assignment, budget)


def read_text(path: Path, notes: list[str]) -> str:
    """At most ``MAX_BYTES`` of the regular file ``path``, decoded (HandinError if it is
    no regular file or cannot be read); only the start is read, so a huge (or sparse)
    file costs no memory."""
    data, cut = read_bytes(path, MAX_BYTES)
    if cut:
        notes.append(f"{path.name} is larger than {MAX_BYTES} bytes; only the start was read.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        notes.append(f"{path.name} is not valid UTF-8 (byte {exc.start}); undecodable bytes were replaced.")
        text = data.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# What ast.parse raises besides a located SyntaxError: a NUL byte (SyntaxError without a
# line, or ValueError on older Pythons), absurd nesting (RecursionError, MemoryError).
_UNPARSABLE = (ValueError, RecursionError, MemoryError)


def salvage(text: str, name: str, staged: Staged, attempts: int = 10,
            budget: Budget | None = None) -> tuple[str, ast.Module | None]:
    """Blank out each top-level block that does not compile; keep line numbers. Returns
    the text and its syntax tree (None if it still does not parse).

    Whatever the file holds (NUL bytes, nesting too deep for the compiler), the
    result is a note for the student naming the file and the lines, never an
    exception in the grader. Each attempt is charged to ``budget``: once it is spent,
    the text is staged as it stands (the sandbox, not the grader, then compiles it).
    """
    budget = budget or Budget()
    lines = text.split("\n")
    nul = [i for i, line in enumerate(lines) if "\0" in line]
    for i in nul:
        if "\0" in lines[i]:  # not blanked already with an earlier line's block
            _leave_out(lines, i, name, staged, "contains a NUL byte, which Python refuses "
                       "(was the file saved as UTF-16 or another encoding?)")
    for _ in range(attempts):
        try:
            return "\n".join(lines), _parse_or_leave_out(lines, name, staged, budget)
        except _Retry:
            continue
        except OverBudget as exc:
            staged.notes.append(f"{exc}; {name} was not checked for syntax errors beyond this point.")
            break
    return "\n".join(lines), None


class _Retry(Exception):
    """A block was left out: parse again."""


def _parse_or_leave_out(lines: list[str], name: str, staged: Staged, budget: Budget) -> ast.Module:
    """The tree of ``lines``, or leave out the block(s) to blame and raise _Retry."""
    try:
        return budget.parse("\n".join(lines), name)
    except SyntaxError as exc:
        if exc.lineno is None:  # not located: treated like the errors below
            _leave_out_unparsable(lines, name, staged, exc, budget)
        else:
            line = min(max(exc.lineno - 1, 0), len(lines) - 1)
            _leave_out(lines, line, name, staged, f"{exc.msg} (`{(exc.text or '').strip()}`)",
                       lineno=exc.lineno, error=f"SyntaxError: {exc.msg}")
    except _UNPARSABLE as exc:
        _leave_out_unparsable(lines, name, staged, exc, budget)
    raise _Retry


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


def _leave_out_unparsable(lines: list[str], name: str, staged: Staged, exc: BaseException,
                          budget: Budget) -> None:
    """Python cannot parse the file and does not say where: try each top-level block alone."""
    error = type(exc).__name__
    why = (f"too deeply nested for Python to compile ({error})" if isinstance(exc, RecursionError | MemoryError)
           else f"Python cannot compile this ({error}: {exc})")
    culprits = [(start, end) for start, end in _blocks(lines)
                if isinstance(_parse_error("\n".join(lines[start:end]), name, budget), _UNPARSABLE)]
    for start, end in culprits:  # end - 1: inside the block, even when it starts with a decorator
        _leave_out(lines, end - 1, name, staged, why, lineno=start + 1)
    if not culprits:  # no single block is to blame: nothing of the file can be graded
        staged.notes.append(f"{name}: {why}. The whole file was left out.")
        lines[:] = [""] * len(lines)


def _parse_error(source: str, name: str, budget: Budget) -> BaseException | None:
    try:
        budget.parse(source, name)
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
