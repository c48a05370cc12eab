"""Stage 1: find each student's files and stage a clean, read-only copy to run.

Students' own files are never modified: they are read (size-capped), decoded,
normalised (BOM, Windows line endings) and written to a staging folder that the
sandbox mounts read-only. A file with a syntax error is salvaged: the top-level
block holding the error is blanked out, so the other classes are still graded, and
the note says exactly what was left out.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

FILES = ("layers.py", "two_layer_net.py", "buy_apple_orange.py")
MAX_BYTES = 1 << 20
_ID = re.compile(r"^[\w.@+-]{1,100}$")


@dataclass
class Submission:
    student: str
    folder: Path


@dataclass
class Staged:
    """The staged copy and what static reading found (for notes and diagnoses)."""

    folder: Path
    notes: list[str] = field(default_factory=list)
    duplicates: dict[str, list[int]] = field(default_factory=dict)   # class -> lines
    left_out: dict[str, str] = field(default_factory=dict)           # class -> why


def discover(root: Path) -> tuple[list[Submission], list[str]]:
    """One submission per sub-folder of ``root``; the second list explains what was skipped."""
    found, skipped = [], []
    for entry in sorted(Path(root).iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            skipped.append(f"{entry.name}: not a folder (one folder per student is expected)")
        elif not _ID.match(entry.name):
            skipped.append(f"{entry.name!r}: a student id may use letters, digits and . _ - + @ only")
        else:
            found.append(Submission(entry.name, entry))
    return found, skipped


def stage(submission: Submission, target: Path) -> Staged:
    """Write the student's files, cleaned, into ``target``; record what was found."""
    target.mkdir(parents=True, exist_ok=True)
    staged = Staged(target)
    notebook = _notebook(submission.folder, staged.notes)
    for name in FILES:
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
        text = salvage(text, name, staged)
        find_duplicates(text, name, staged)
        (target / name).write_text(text, encoding="utf-8")
    return staged


def _notebook(folder: Path, notes: list[str]) -> dict[str, str] | None:
    """The files extracted from a Jupyter notebook when the folder has none of the .py files."""
    if any(locate(folder, name, []) for name in FILES):
        return None
    from grader import notebook  # only notebook submissions need it

    return notebook.from_folder(folder, notes)


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
    data = path.read_bytes()[: MAX_BYTES + 1]
    if len(data) > MAX_BYTES:
        notes.append(f"{path.name} is larger than {MAX_BYTES} bytes; only the start was read.")
        data = data[:MAX_BYTES]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        notes.append(f"{path.name} is not valid UTF-8 (byte {exc.start}); undecodable bytes were replaced.")
        text = data.decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def salvage(text: str, name: str, staged: Staged, attempts: int = 10) -> str:
    """Blank out each top-level block that does not compile; keep line numbers."""
    lines = text.split("\n")
    for _ in range(attempts):
        try:
            ast.parse("\n".join(lines), filename=name)
            return "\n".join(lines)
        except SyntaxError as exc:
            line = min(max((exc.lineno or 1) - 1, 0), len(lines) - 1)
            start, end = _block(lines, line)
            header = lines[start].strip()
            match = re.match(r"(?:class|def)\s+(\w+)", header)
            what = f"{'class' if header.startswith('class') else 'function'} {match.group(1)}" \
                if match else f"lines {start + 1}-{end}"
            staged.notes.append(f"{name}, line {exc.lineno}: {exc.msg} "
                                f"(`{(exc.text or '').strip()}`). {what} was left out; the rest is graded.")
            if match:
                staged.left_out[match.group(1)] = f"{name}, line {exc.lineno}: SyntaxError: {exc.msg}"
            lines[start:end] = [""] * (end - start)
    return "\n".join(lines)


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


def find_duplicates(text: str, name: str, staged: Staged) -> None:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return
    seen: dict[str, list[int]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            seen.setdefault(node.name, []).append(node.lineno)
    for cls, lines in seen.items():
        if len(lines) > 1:
            staged.duplicates[cls] = lines
            staged.notes.append(f"{name}: class {cls} is defined {len(lines)} times (lines "
                                f"{', '.join(map(str, lines))}); only the last one counts.")
