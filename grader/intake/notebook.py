"""Notebook hand-ins: the files a student wrote, read back from their notebook's cells.

A cell belongs to a file by its metadata (``metadata["grader"]["file"]``), else by its
``# file:`` first line, else by the class or function it defines (an exercise's target
tells its file); other cells are scratch work and are not graded. Shell and magic lines
(``!pip``, ``%timeit``) are commented out, never run. Outputs are ignored.

Flat imports: in a notebook every cell shares one namespace, so the generated notebook
drops the files' imports of each other (``grader.authoring.notebook``). When a file is
extracted they are put back as ``from <sibling> import *`` lines, so every name of the
sibling is visible, as it was in the notebook.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_NOTEBOOK_BYTES = 64 << 20      # outputs (plots) make notebooks big; the code is capped per file
MAX_FILE_BYTES = 1 << 20           # as for a .py file
MARKER = re.compile(r"^#\s*file:\s*(\S+\.py)\s*$")
GRADE_MARK = "# Autograded:"
_MAGIC = re.compile(r"^(\s*)(?:[!%].*|[\w.,\s\[\]]+=\s*[!%].*)$")


class NotebookError(ValueError):
    """A notebook that cannot be read; the message names the file."""


def parse(code: str) -> ast.Module | None:
    """``ast.parse`` for a student's code: None, never an exception (null bytes, absurd nesting)."""
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def defines(code: str) -> set[str]:
    """Top-level class and function names defined in ``code`` (best effort if it does not parse)."""
    tree = parse(code)
    if tree is None:
        return set(re.findall(r"^(?:class|def|async\s+def)\s+(\w+)", code, flags=re.M))
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)}



@dataclass
class Extracted:
    """The files found in a notebook and what the grader should tell the student about it."""

    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cells: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)  # file -> (cell, first, last line)

    def where(self, file: str, line: int) -> str | None:
        """``"cell 4, line 20"`` for line ``line`` of an extracted file, if it came from a cell."""
        for number, first, last in self.cells.get(file, []):
            if first <= line <= last:
                return f"cell {number}, line {line - first + 1}"
        return None


def load(path: Path) -> dict:
    """Parse a notebook file; raise NotebookError naming it if it is not one."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            raise NotebookError(f"{path.name} is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB "
                                "(clear the outputs and submit again); it was not read")
        data = path.read_bytes()
    except OSError as exc:
        raise NotebookError(f"{path.name} could not be read: {exc.strerror or exc}") from None
    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{path.name} is not a notebook: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise NotebookError(f"{path.name} is not a valid notebook: broken JSON at line {exc.lineno}, "
                            f"column {exc.colno} ({exc.msg}). Was it saved completely?") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", nb.get("worksheets")), list):
        raise NotebookError(f"{path.name} is not a Jupyter notebook (no list of cells)")
    return nb


def _cells(nb: dict) -> list[dict]:
    if "cells" in nb:
        cells = nb["cells"]
    else:  # nbformat 3: worksheets, code in "input"
        cells = [dict(c, source=c.get("input", c.get("source", "")))
                 for ws in nb["worksheets"] if isinstance(ws, dict) for c in ws.get("cells", [])]
    return [c for c in cells if isinstance(c, dict)]


def _text(value: object) -> str:
    text = "".join(value) if isinstance(value, list) else value if isinstance(value, str) else ""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def comment_magics(code: str) -> tuple[str, int]:
    """Comment out IPython magic and shell lines; line numbers are kept.

    Only done when the cell is not Python as it stands (a ``%`` line may continue an
    expression). An indented magic becomes ``pass  # ...`` so its block stays valid.
    """
    if parse(code) is not None:
        return code, 0
    lines, count = code.split("\n"), 0
    for i, line in enumerate(lines):
        match = _MAGIC.match(line)
        if match and not line.lstrip().startswith("!="):
            indent = match.group(1)
            lines[i] = f"{indent}{'pass  ' if indent else ''}# {line.lstrip()}"
            count += 1
    return "\n".join(lines), count


def _named(cell: dict, code: str) -> tuple[str | None, str | None, str]:
    """The file a cell's metadata names, the one its ``# file:`` first line names, and that line."""
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    ours = meta.get("grader") if isinstance(meta.get("grader"), dict) else {}
    first = next((line.strip() for line in code.split("\n") if line.strip()), "")
    marked = MARKER.match(first)
    return (ours["file"] if isinstance(ours.get("file"), str) else None,
            marked.group(1) if marked else None, first)


def declared_files(nb: dict) -> set[str]:
    """The files a parsed notebook's cells name, by metadata or by a ``# file:`` first line."""
    return {f for cell in _cells(nb) for f in _named(cell, _text(cell.get("source", "")))[:2] if f}


def _is_grade_cell(cell: dict, code: str) -> bool:
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    ours = meta.get("grader") if isinstance(meta.get("grader"), dict) else {}
    theirs = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
    first = next((line.strip() for line in code.split("\n") if line.strip()), "")
    return "part" in ours or (theirs.get("grade") is True and not theirs.get("solution")) \
        or first.startswith(GRADE_MARK)


def _file_of(cell: dict, code: str, number: int, notes: list[str], assignment) -> str | None:
    files, targets = assignment.files, assignment.targets()
    by_metadata, marked, first = _named(cell, code)
    if by_metadata in files:
        return by_metadata
    if marked in files:
        return marked
    if marked:
        notes.append(f"Cell {number} says `{first}`, but the files are {', '.join(files)}; "
                     "it was not graded.")
        return None
    owners = {t[1] for name, t in targets.items() if name in defines(code)}
    if len(owners) == 1:
        owner = owners.pop()
        names = ", ".join(sorted(defines(code) & set(targets)))
        notes.append(f"Cell {number} has no `# file:` line; it defines {names}, "
                     f"so it was graded as part of {owner}.")
        return owner
    if code.strip() and any(not line.lstrip().startswith("#") for line in code.split("\n") if line.strip()):
        notes.append(f"Cell {number} (`{first[:60]}`) is not part of any file and was not graded.")
    return None


def extract_cells(nb: dict, assignment, name: str | None = None) -> Extracted:
    """``assignment``'s files from a parsed notebook (a dict, e.g. nbformat's NotebookNode)."""
    name = name or assignment.notebook
    out = Extracted()
    parts: dict[str, list[tuple[int, str]]] = {f: [] for f in assignment.files}
    magics = 0
    for number, cell in enumerate(_cells(nb), 1):
        if cell.get("cell_type") != "code":
            continue
        code = _text(cell.get("source", ""))
        if _is_grade_cell(cell, code):
            continue
        owner = _file_of(cell, code, number, out.notes, assignment)
        if owner is None:
            continue
        code, count = comment_magics(code)
        magics += count
        parts[owner].append((number, code))
    where = []
    for file, cells in parts.items():
        if not cells:
            continue
        lines = [f"from {m} import *  # added by the grader: notebook cells share one namespace"
                 for m in assignment.sibling_imports.get(file, ())]
        spans = []
        for number, code in cells:
            if lines:
                lines.append("")
            start = len(lines) + 1
            lines.extend(code.split("\n"))
            spans.append(f"{number} (lines {start}-{len(lines)})")
            out.cells.setdefault(file, []).append((number, start, len(lines)))
        text = "\n".join(lines)
        text += "" if text.endswith("\n") else "\n"
        if len(text.encode("utf-8")) > MAX_FILE_BYTES:
            out.notes.append(f"{file} (from {name}) is larger than {MAX_FILE_BYTES} bytes; "
                             "only the start was read.")
            text = text.encode("utf-8")[:MAX_FILE_BYTES].decode("utf-8", errors="ignore")
        out.sources[file] = text
        where.append(f"{file} from cell{'s' if len(spans) > 1 else ''} {', '.join(spans)}")
    summary = f"Your notebook {name} was graded" + (
        f" ({'; '.join(where)})." if where else
        f", but no cell of {', '.join(assignment.files)} was found in it.")
    out.notes.insert(0, summary)
    if magics:
        out.notes.append(f"{magics} magic or shell line(s) (`%...`, `!...`) were commented out, not run.")
    return out


def extract(path: Path, assignment) -> Extracted:
    """The files' sources from the notebook at ``path``; NotebookError if it cannot be read."""
    return extract_cells(load(path), assignment, Path(path).name)


def find(folder: Path, preferred: str = "") -> list[Path]:
    """The notebooks in a student's folder (top first, then below; checkpoints excluded)."""
    folder = Path(folder)
    found = [p for p in folder.rglob("*.ipynb")
             if p.is_file() and not p.is_symlink()
             and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), p.name != preferred, str(p)))


def from_file(path: Path, notes: list[str], assignment) -> dict[str, str]:
    """The files from one notebook; if it cannot be read, none, and a note that says why."""
    try:
        got = extract(path, assignment)
    except NotebookError as exc:
        notes.append(f"{exc}. Nothing could be graded.")
        return {}
    notes.extend(got.notes)
    return got.sources


def from_folder(folder: Path, notes: list[str], assignment) -> dict[str, str] | None:
    """The files from the student's notebook, or None if the folder holds no notebook.

    Used when the folder has none of the .py files. With several notebooks, the one
    named as the assignment's at the top wins, else the first that holds any file's cells.
    """
    candidates = find(folder, assignment.notebook)
    if not candidates:
        return None
    chosen, errors = None, []
    for path in candidates:
        try:
            got = extract(path, assignment)
        except NotebookError as exc:
            errors.append(str(exc))
            continue
        if chosen is None or (not chosen[1].sources and got.sources):
            chosen = (path, got)
        if got.sources:
            break
    if chosen is None:
        notes.extend(f"{e}. Nothing could be graded." for e in errors)
        return {}
    path, got = chosen
    notes.extend(got.notes)
    others = [str(p.relative_to(folder)) for p in candidates if p != path]
    if others:
        notes.append(f"Several notebooks were handed in; {path.relative_to(folder)} was graded, "
                     f"not {', '.join(others)}.")
    return got.sources
