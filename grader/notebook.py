"""The assignment as a Jupyter notebook, generated from the solutions, and read back.

Generation (``source_notebook``, ``student_notebook``): each solution file becomes
code cells - one for the module's top (docstring, imports, helpers) and one per
top-level class - whose first line names the file (``# file: layers.py``) and whose
metadata says it too (``metadata["grader"]["file"]``). Solution regions stay as
nbgrader solution regions in the source notebook; after the cells of a part's class
comes that part's grade cell, worth the exercise's ``max_points``, whose hidden
region is one call of the grader's installed check. The student version strips the
solution and hidden regions exactly as nbgrader's ``generate_assignment`` does.

Extraction (``extract``): the code cells of each file, in notebook order, become that
file again. A cell belongs to a file by its metadata, else by its ``# file:`` first
line, else by the class or function it defines (``class Affine`` -> layers.py); other
cells are scratch work and are not graded. Shell and magic lines (``!pip``,
``%timeit``) are commented out, never run. Outputs are ignored.

Flat imports: in a notebook every cell shares one namespace, so the notebook drops
the files' ``from layers import ...`` lines (they would fail in the kernel). When a
file is extracted, ``from layers import *`` is put back as its first line, so every
name of layers.py is visible, as it was in the notebook.
"""
from __future__ import annotations

import ast
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader import paths
from grader.release import solution_regions, strip_solutions
from grader.submission import FILES

NOTEBOOK = "backprop.ipynb"
IMPORTS = {"two_layer_net.py": ("layers",), "buy_apple_orange.py": ("layers",)}  # put back on extraction
MAX_NOTEBOOK_BYTES = 64 << 20      # outputs (plots) make notebooks big; the code is capped per file
MAX_FILE_BYTES = 1 << 20           # as for a .py file
MARKER = re.compile(r"^#\s*file:\s*(\S+\.py)\s*$")
GRADE_MARK = "# Autograded:"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
_MAGIC = re.compile(r"^(\s*)(?:[!%].*|[\w.,\s\[\]]+=\s*[!%].*)$")


class NotebookError(ValueError):
    """A notebook that cannot be read; the message names the file."""


# --------------------------------------------------------------------------- generation


def _cell_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:64]


def _chunks(source: str, name: str) -> list[tuple[str, str]]:
    """Split a module into (label, code): its top, then one chunk per top-level class.

    Imports of the sibling modules are dropped: the notebook shares one namespace.
    """
    tree = ast.parse(source, filename=name)
    lines = source.split("\n")
    siblings = {Path(f).stem for f in FILES}
    drop: set[int] = set()
    starts: list[tuple[int, str]] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in siblings:
            drop.update(range(node.lineno - 1, node.end_lineno or node.lineno))
        elif isinstance(node, ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            starts.append((first, node.name))
    bounds = [(0, "top")] + [s for s in starts if s[0] > 0]
    if starts and starts[0][0] == 0:
        bounds[0] = starts[0]
    chunks = []
    for i, (begin, label) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else len(lines)
        text = "\n".join(line for j, line in enumerate(lines[begin:end], begin) if j not in drop).strip("\n")
        if text.strip():
            chunks.append((label, text))
    return chunks


def _parse(code: str) -> ast.Module | None:
    """``ast.parse`` for a student's code: None, never an exception (null bytes, absurd nesting)."""
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _defines(code: str) -> set[str]:
    """Top-level class and function names defined in ``code`` (best effort if it does not parse)."""
    tree = _parse(code)
    if tree is None:
        return set(re.findall(r"^(?:class|def|async\s+def)\s+(\w+)", code, flags=re.M))
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)}


@functools.cache
def _targets() -> dict[str, tuple[str, str, float]]:
    """Class or function name -> (part, file, points), from the exercises."""
    from grader.exercises import ALL

    found = {}
    for e in ALL:
        name = getattr(e, "cls", None) or getattr(e, "function", None)
        found[name] = (e.part, f"{e.module}.py", float(e.max_points))
    return found


def _intro() -> str:
    from grader.exercises import ALL

    rows = "\n".join(f"| {e.part} | {e.max_points:g} |" for e in ALL)
    total = sum(e.max_points for e in ALL)
    return f"""# Backpropagation (chapter 5): implement the backward passes

Each code cell below belongs to one of the assignment's files; its first line says which
(`# file: layers.py`). The forward passes are written: replace every
`# YOUR CODE HERE` / `raise NotImplementedError()` with your code, then run all cells.

- The cells of a file are graded together as that file. Cells without a `# file:` line
  are your scratch space and are not graded, so write everything your classes need in
  the file cells, and keep their first line.
- All cells share one namespace, so `two_layer_net.py` uses `Affine` without importing
  it; the grader adds `from layers import *` when it grades that file.
- Shell and magic lines (`!pip ...`, `%timeit ...`) are skipped by the grader.
- The cells titled *Autograded* run the grader's checks when your notebook is graded;
  leave them as they are.

| Part | Points |
|---|---:|
{rows}
| **Total** | **{total:g}** |"""


def _nbgrader(grade_id: str, *, grade: bool = False, solution: bool = False, locked: bool = False,
              points: float | None = None) -> dict:
    meta = {"schema_version": 3, "grade": grade, "solution": solution, "locked": locked,
            "grade_id": grade_id}
    if points is not None:
        meta["points"] = points
    return meta


def source_notebook(solutions: Path = paths.SOLUTIONS) -> nbformat.NotebookNode:
    """The nbgrader source notebook: solution regions, one hidden-test grade cell per part."""
    v4 = nbformat.v4
    targets = _targets()
    cells = [v4.new_markdown_cell(_intro(), id="intro",
                                  metadata={"nbgrader": _nbgrader("intro", locked=True)})]
    placed: set[str] = set()
    for name in FILES:
        stem = Path(name).stem
        source = (Path(solutions) / name).read_text(encoding="utf-8")
        cells.append(v4.new_markdown_cell(f"## `{name}`", id=_cell_id(f"file-{stem}"),
                                          metadata={"nbgrader": _nbgrader(f"file-{stem}", locked=True)}))
        for label, code in _chunks(source, name):
            cell_id = _cell_id(f"{stem}-{label}")
            meta: dict = {"grader": {"file": name}}
            if solution_regions(code, f"{name} ({label})"):
                meta["nbgrader"] = _nbgrader(cell_id, solution=True)
            cells.append(v4.new_code_cell(f"# file: {name}\n{code}", id=cell_id, metadata=meta))
            for defined in sorted(_defines(code), key=code.find):
                if defined in targets and targets[defined][1] == name:
                    cells.append(_grade_cell(*targets[defined][::2]))
                    placed.add(targets[defined][0])
    for part, _, points in targets.values():  # a part whose class no file defines: at the end
        if part not in placed:
            cells.append(_grade_cell(part, points))
    nb = v4.new_notebook(cells=cells, metadata={"kernelspec": dict(KERNELSPEC),
                                                "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return nb


def _grade_cell(part: str, points: float) -> nbformat.NotebookNode:
    source = (f"{GRADE_MARK} {part} ({points:g} points). The grader's checks run here when your "
              f"notebook is graded.\n{BEGIN_HIDDEN}\nfrom grader.nb import check; check({part!r})\n{END_HIDDEN}")
    meta = {"nbgrader": _nbgrader(part, grade=True, locked=True, points=points), "grader": {"part": part},
            "editable": False, "deletable": False}
    return nbformat.v4.new_code_cell(source, id=_cell_id(f"grade-{part}"), metadata=meta)


def strip_hidden(source: str) -> str:
    """Remove hidden-test regions (markers included), as nbgrader's ClearHiddenTests does."""
    out, hidden = [], False
    for line in source.split("\n"):
        if "BEGIN HIDDEN TESTS" in line:
            hidden = True
        elif "END HIDDEN TESTS" in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


def student_notebook(solutions: Path = paths.SOLUTIONS) -> nbformat.NotebookNode:
    """The student release: no solution, no hidden line, no nbgrader metadata."""
    nb = source_notebook(solutions)
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
        if cell.cell_type == "code":
            cell.source = strip_hidden(strip_solutions(cell.source, f"cell {cell.id}"))
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    """Deterministic JSON (sorted keys, fixed ids), so a release is reproducible byte for byte."""
    return nbformat.writes(nb) + "\n"


# --------------------------------------------------------------------------- extraction


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
    if _parse(code) is not None:
        return code, 0
    lines, count = code.split("\n"), 0
    for i, line in enumerate(lines):
        match = _MAGIC.match(line)
        if match and not line.lstrip().startswith("!="):
            indent = match.group(1)
            lines[i] = f"{indent}{'pass  ' if indent else ''}# {line.lstrip()}"
            count += 1
    return "\n".join(lines), count


def _is_grade_cell(cell: dict, code: str) -> bool:
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    ours = meta.get("grader") if isinstance(meta.get("grader"), dict) else {}
    theirs = meta.get("nbgrader") if isinstance(meta.get("nbgrader"), dict) else {}
    first = next((line.strip() for line in code.split("\n") if line.strip()), "")
    return "part" in ours or (theirs.get("grade") is True and not theirs.get("solution")) \
        or first.startswith(GRADE_MARK)


def _file_of(cell: dict, code: str, number: int, notes: list[str]) -> str | None:
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    ours = meta.get("grader") if isinstance(meta.get("grader"), dict) else {}
    if ours.get("file") in FILES:
        return ours["file"]
    first = next((line.strip() for line in code.split("\n") if line.strip()), "")
    marked = MARKER.match(first)
    if marked and marked.group(1) in FILES:
        return marked.group(1)
    if marked:
        notes.append(f"Cell {number} says `{first}`, but the files are {', '.join(FILES)}; "
                     "it was not graded.")
        return None
    owners = {t[1] for name, t in _targets().items() if name in _defines(code)}
    if len(owners) == 1:
        owner = owners.pop()
        names = ", ".join(sorted(_defines(code) & set(_targets())))
        notes.append(f"Cell {number} has no `# file:` line; it defines {names}, "
                     f"so it was graded as part of {owner}.")
        return owner
    if code.strip() and any(not line.lstrip().startswith("#") for line in code.split("\n") if line.strip()):
        notes.append(f"Cell {number} (`{first[:60]}`) is not part of any file and was not graded.")
    return None


def extract_cells(nb: dict, name: str = NOTEBOOK) -> Extracted:
    """The files' sources from a parsed notebook (a dict, e.g. nbformat's NotebookNode)."""
    out = Extracted()
    parts: dict[str, list[tuple[int, str]]] = {f: [] for f in FILES}
    magics = 0
    for number, cell in enumerate(_cells(nb), 1):
        if cell.get("cell_type") != "code":
            continue
        code = _text(cell.get("source", ""))
        if _is_grade_cell(cell, code):
            continue
        owner = _file_of(cell, code, number, out.notes)
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
                 for m in IMPORTS.get(file, ())]
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
    summary = f"Your notebook {name} was graded" + (f" ({'; '.join(where)})." if where else
                                                     ", but no cell of layers.py, two_layer_net.py or "
                                                     "buy_apple_orange.py was found in it.")
    out.notes.insert(0, summary)
    if magics:
        out.notes.append(f"{magics} magic or shell line(s) (`%...`, `!...`) were commented out, not run.")
    return out


def extract(path: Path) -> Extracted:
    """The files' sources from the notebook at ``path``; NotebookError if it cannot be read."""
    return extract_cells(load(path), Path(path).name)


def find(folder: Path) -> list[Path]:
    """The notebooks in a student's folder (top first, then below; checkpoints excluded)."""
    folder = Path(folder)
    found = [p for p in folder.rglob("*.ipynb")
             if p.is_file() and not p.is_symlink()
             and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), p.name != NOTEBOOK, str(p)))


def from_file(path: Path, notes: list[str]) -> dict[str, str]:
    """The files from one notebook; if it cannot be read, none, and a note that says why."""
    try:
        got = extract(path)
    except NotebookError as exc:
        notes.append(f"{exc}. Nothing could be graded.")
        return {}
    notes.extend(got.notes)
    return got.sources


def from_folder(folder: Path, notes: list[str]) -> dict[str, str] | None:
    """The files from the student's notebook, or None if the folder holds no notebook.

    Used when the folder has none of the .py files. With several notebooks, the one
    named backprop.ipynb at the top wins, else the first that holds any file's cells.
    """
    candidates = find(folder)
    if not candidates:
        return None
    chosen, errors = None, []
    for path in candidates:
        try:
            got = extract(path)
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
