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

from grader.intake.reading import Budget, HandinError, OverBudget, Tree, read_bytes, shown

MAX_NOTEBOOK_BYTES = 64 << 20      # outputs (plots) make notebooks big; the code is capped per file
MAX_FILE_BYTES = 1 << 20           # as for a .py file
MAX_CODE_BYTES = 2 << 20           # code cells read per notebook, all together
MAX_CELLS = 20_000                 # cells looked at per notebook
MAX_SCRATCH_NOTES = 20             # cells named one by one as not graded; the rest are counted
MAX_NOTEBOOKS = 4                  # notebooks tried in one student's folder
MARKER = re.compile(r"#[ \t]*file:[ \t]*(\S+\.py)")
GRADE_MARK = "# Autograded:"
_DEFINES = re.compile(r"^(?:class|def|async[ \t]+def)[ \t]+(\w+)", re.M)


class NotebookError(ValueError):
    """A notebook that cannot be read; the message names the file."""


def parse(code: str, budget: Budget | None = None) -> ast.Module | None:
    """``ast.parse`` for a student's code: None, never an exception (null bytes, absurd
    nesting); charged to ``budget`` if given (None once it is spent)."""
    try:
        return budget.parse(code, "cell") if budget is not None else ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverBudget):
        return None


def defines(code: str, tree: ast.Module | None | bool = False) -> set[str]:
    """Top-level class and function names defined in ``code`` (best effort if it does not
    parse); ``tree``: ``code`` parsed already (None: it does not parse)."""
    tree = parse(code) if tree is False else tree
    if tree is None:
        return set(_DEFINES.findall(code))
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
    """Parse a notebook file; raise NotebookError naming it if it is not one (a FIFO, a
    device, too big, not JSON, nested beyond reason, no list of cells)."""
    path = Path(path)
    try:
        data, cut = read_bytes(path, MAX_NOTEBOOK_BYTES)
    except HandinError as exc:
        raise NotebookError(str(exc)) from None
    if cut:
        raise NotebookError(f"{shown(path.name)} is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB "
                            "(clear the outputs and submit again); it was not read")
    try:
        nb = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{shown(path.name)} is not a notebook: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise NotebookError(f"{shown(path.name)} is not a valid notebook: broken JSON at line {exc.lineno}, "
                            f"column {exc.colno} ({exc.msg}). Was it saved completely?") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise NotebookError(f"{shown(path.name)} is not a valid notebook ({type(exc).__name__}: "
                            "nested too deeply or numbers too long)") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", nb.get("worksheets")), list):
        raise NotebookError(f"{shown(path.name)} is not a Jupyter notebook (no list of cells)")
    return nb


def _cells(nb: dict) -> list[dict]:
    """The notebook's cells (nbformat 3's worksheets too); anything that is not a cell is
    not one (a NotebookError names the first)."""
    if "cells" in nb:
        cells = nb["cells"]
    else:  # nbformat 3: worksheets, code in "input"
        sheets = nb.get("worksheets")
        sheets = [ws for ws in (sheets if isinstance(sheets, list) else []) if isinstance(ws, dict)]
        if not all(isinstance(ws.get("cells", []), list) for ws in sheets):
            raise NotebookError("the notebook is not a Jupyter notebook (a worksheet has no list of cells)")
        cells = [dict(c, source=c.get("input", c.get("source", "")))
                 for ws in sheets for c in ws.get("cells", []) if isinstance(c, dict)]
    if not isinstance(cells, list):
        raise NotebookError("the notebook is not a Jupyter notebook (its cells are not a list)")
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict):
            raise NotebookError(f"the notebook is not a valid notebook: cell {number} is not a cell")
        source = cell.get("source", "")
        if not (isinstance(source, str) or isinstance(source, list) and all(isinstance(x, str) for x in source)):
            raise NotebookError(f"the notebook is not a valid notebook: the source of cell {number} is not text")
    return cells


def _text(value: object) -> str:
    text = "".join(value) if isinstance(value, list) else value if isinstance(value, str) else ""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _magic(line: str) -> str | None:
    """The indentation of an IPython magic or shell line (``%timeit f()``, ``!pip``,
    ``files = !ls``), else None. Linear in the line (no regular expression to backtrack)."""
    stripped = line.lstrip()
    if not stripped:
        return None
    indent = line[:len(line) - len(stripped)]
    if stripped[0] in "!%":
        return None if stripped.startswith("!=") else indent
    target, equals, value = stripped.partition("=")
    value = value.lstrip()
    if equals and target.strip() and value[:1] in ("!", "%") and not value.startswith("!=") \
            and all(c.isalnum() or c.isspace() or c in "_.,[]" for c in target):
        return indent
    return None


def comment_magics(code: str, valid: bool | None = None, budget: Budget | None = None) -> tuple[str, int]:
    """Comment out IPython magic and shell lines; line numbers are kept.

    Only done when the cell is not Python as it stands (a ``%`` line may continue an
    expression). An indented magic becomes ``pass  # ...`` so its block stays valid.
    ``valid``: whether the cell parses, if that is known already.
    """
    lines = code.split("\n")
    found = [(i, indent) for i, line in enumerate(lines) if (indent := _magic(line)) is not None]
    if not found or (valid if valid is not None else parse(code, budget) is not None):
        return code, 0
    for i, indent in found:
        lines[i] = f"{indent}{'pass  ' if indent else ''}# {lines[i].lstrip()}"
    return "\n".join(lines), len(found)


def _named(cell: dict, code: str) -> tuple[str | None, str | None, str]:
    """The file a cell's metadata names, the one its ``# file:`` first line names, and that line."""
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    ours = meta.get("grader") if isinstance(meta.get("grader"), dict) else {}
    first = next((line.strip() for line in code.split("\n") if line.strip()), "")
    marked = MARKER.fullmatch(first)
    return (ours["file"] if isinstance(ours.get("file"), str) else None,
            marked.group(1) if marked else None, first)


def declared_files(nb: dict) -> set[str]:
    """The files a parsed notebook's cells name, by metadata or by a ``# file:`` first line."""
    return {f for cell in _cells(nb) for f in _named(cell, _text(cell.get("source", "")))[:2] if f}


def _is_grade_cell(cell: dict, code: str) -> bool:
    """A cell the release made to run the grader's checks (metadata or its first line)."""
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    ours = meta.get("grader") if isinstance(meta.get("grader"), dict) else {}
    theirs = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
    first = next((line.strip() for line in code.split("\n") if line.strip()), "")
    return "part" in ours or (theirs.get("grade") is True and not theirs.get("solution")) \
        or first.startswith(GRADE_MARK)


class _Cell:
    """One code cell as intake sees it: its text, parsed at most once (on demand)."""

    def __init__(self, cell: dict, number: int, budget: Budget):
        self.cell, self.number, self.budget = cell, number, budget
        self.code = _text(cell.get("source", ""))
        self._tree: ast.Module | None | bool = False  # False: not parsed yet

    @property
    def tree(self) -> ast.Module | None:
        if self._tree is False:
            self._tree = parse(self.code, self.budget)
        return self._tree

    @property
    def valid(self) -> bool | None:
        """Whether it parses, if that is known already."""
        return None if self._tree is False else self._tree is not None

    @property
    def first(self) -> str:
        return next((line.strip() for line in self.code.split("\n") if line.strip()), "")


def _file_of(cell: _Cell, notes: list[str], assignment) -> str | None:
    files, targets = assignment.files, assignment.targets()
    by_metadata, marked, first = _named(cell.cell, cell.code)
    if by_metadata in files:
        return by_metadata
    if marked in files:
        return marked
    if marked:
        notes.append(f"Cell {cell.number} says `{first[:80]}`, but the files are {', '.join(files)}; "
                     "it was not graded.")
        return None
    named = defines(cell.code, cell.tree) & set(targets)
    owners = {targets[name][1] for name in named}
    if len(owners) == 1:
        owner = owners.pop()
        notes.append(f"Cell {cell.number} has no `# file:` line; it defines {', '.join(sorted(named))}, "
                     f"so it was graded as part of {owner}.")
        return owner
    if any(not line.lstrip().startswith("#") for line in cell.code.split("\n") if line.strip()):
        notes.append(_SCRATCH.format(number=cell.number, first=first[:60]))
    return None


_SCRATCH = "Cell {number} (`{first}`) is not part of any file and was not graded."


def extract_cells(nb: dict, assignment, name: str | None = None, budget: Budget | None = None) -> Extracted:
    """``assignment``'s files from a parsed notebook (a dict, e.g. nbformat's NotebookNode).

    Bounded whatever the notebook holds: at most ``MAX_CELLS`` cells and ``MAX_CODE_BYTES``
    of code are read, each cell is parsed at most once and only when its owner or its
    magic lines need it, all charged to ``budget``. Metadata never hides a student's
    code: a cell that belongs to a file is graded even if it claims to be a grade cell.
    """
    budget = budget or Budget()
    name = name or assignment.notebook
    out = Extracted()
    parts: dict[str, list[tuple[int, str]]] = {f: [] for f in assignment.files}
    magics, code_bytes = 0, 0
    for number, raw in enumerate(_cells(nb), 1):
        if number > MAX_CELLS:
            out.notes.append(f"Your notebook has more than {MAX_CELLS} cells; the cells after {MAX_CELLS} "
                             "were not read.")
            break
        if raw.get("cell_type") != "code":
            continue
        budget.check(f"{shown(name)}, cell {number}")
        cell = _Cell(raw, number, budget)
        code_bytes += len(cell.code)
        if code_bytes > MAX_CODE_BYTES:
            out.notes.append(f"Your notebook holds more than {MAX_CODE_BYTES >> 20} MB of code; cells from "
                             f"{number} on were not read.")
            break
        grade = _is_grade_cell(raw, cell.code)
        owner = _file_of(cell, [] if grade else out.notes, assignment)
        if owner is None:
            continue
        code, count = comment_magics(cell.code, cell.valid, budget)
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
            out.notes.append(f"{file} (from {shown(name)}) is larger than {MAX_FILE_BYTES} bytes; "
                             "only the start was read.")
            text = text.encode("utf-8")[:MAX_FILE_BYTES].decode("utf-8", errors="ignore")
        out.sources[file] = text
        where.append(f"{file} from cell{'s' if len(spans) > 1 else ''} {', '.join(spans)}")
    summary = f"Your notebook {shown(name)} was graded" + (
        f" ({'; '.join(where)})." if where else
        f", but no cell of {', '.join(assignment.files)} was found in it.")
    out.notes.insert(0, summary)
    scratch = [n for n in out.notes if n.endswith(" is not part of any file and was not graded.")]
    if len(scratch) > MAX_SCRATCH_NOTES:
        unnamed = set(scratch[MAX_SCRATCH_NOTES:])
        out.notes = [n for n in out.notes if n not in unnamed]
        out.notes.append(f"{len(unnamed)} more cells are not part of any file and were not graded.")
    if magics:
        out.notes.append(f"{magics} magic or shell line(s) (`%...`, `!...`) were commented out, not run.")
    return out


def safe_extract(nb: dict, assignment) -> Extracted:
    """``extract_cells`` for a notebook someone else already read (nbgrader's): what could not be
    read is an empty result, never an exception."""
    try:
        return extract_cells(nb, assignment)
    except Exception:  # noqa: BLE001 - only used to point feedback at cells
        return Extracted()


def extract(path: Path, assignment, budget: Budget | None = None) -> Extracted:
    """The files' sources from the notebook at ``path``; NotebookError if it cannot be read."""
    try:
        return extract_cells(load(path), assignment, Path(path).name, budget)
    except NotebookError as exc:
        if str(exc).startswith("the notebook "):
            raise NotebookError(f"{shown(Path(path).name)}{str(exc)[len('the notebook'):]}") from None
        raise


def find(tree: Tree, preferred: str = "") -> list[Path]:
    """The notebooks in a student's folder (top first, then below; checkpoints and other
    hidden folders excluded), as paths relative to it."""
    found = [p for p in tree.files if p.suffix == ".ipynb" and not any(part.startswith(".") for part in p.parts)]
    return sorted(found, key=lambda p: (len(p.parts), p.name != preferred, str(p)))


def from_file(path: Path, notes: list[str], assignment, budget: Budget | None = None) -> dict[str, str]:
    """The files from one notebook; if it cannot be read, none, and a note that says why."""
    try:
        got = extract(path, assignment, budget)
    except NotebookError as exc:
        notes.append(f"{exc}. Nothing could be graded.")
        return {}
    notes.extend(got.notes)
    return got.sources


def from_folder(tree: Tree, notes: list[str], assignment, budget: Budget | None = None) -> dict[str, str] | None:
    """The files from the student's notebook, or None if the folder holds no notebook.

    Used when the folder has none of the .py files. With several notebooks, the one
    named as the assignment's at the top wins, else the first that holds any file's cells.
    """
    candidates = find(tree, assignment.notebook)
    if not candidates:
        return None
    chosen, errors = None, []
    for relative in candidates[:MAX_NOTEBOOKS]:
        try:
            got = extract(tree.folder / relative, assignment, budget)
        except NotebookError as exc:
            errors.append(str(exc))
            continue
        if chosen is None or (not chosen[1].sources and got.sources):
            chosen = (relative, got)
        if got.sources:
            break
    if chosen is None:
        notes.extend(f"{e}. Nothing could be graded." for e in errors)
        return {}
    relative, got = chosen
    notes.extend(got.notes)
    others = [shown(str(p)) for p in candidates if p != relative]
    if others:
        notes.append(f"Several notebooks were handed in; {shown(str(relative))} was graded, "
                     f"not {', '.join(others[:10])}{' ...' if len(others) > 10 else ''}.")
    return got.sources
