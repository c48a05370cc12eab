"""An assignment as a Jupyter notebook, generated from its reference.

Each of the assignment's files becomes code cells - one for the module's top
(docstring, imports, helpers) and one per top-level class - whose first line names
the file (``# file: <name>.py``) and whose metadata says it too
(``metadata["grader"]["file"]``). Solution regions stay as nbgrader solution regions
in the source notebook; after the cells of an exercise's class comes that part's grade
cell, worth the exercise's points, whose hidden region is one call of the grader's
installed check. When the assignment ships a self-check, the grade cell's visible line
runs that part of it on the notebook's code (``grader.authoring.selfcheck``); it prints,
returns nothing and does nothing under nbgrader's autograde, so the score stays the
hidden check's. The student version strips the solution and hidden regions exactly as
nbgrader's ``generate_assignment`` does. Reading a notebook back is intake's job
(``grader.intake.notebook``).

Flat imports: every cell shares one namespace, so the files' imports of each other are
dropped here and put back when a notebook is read.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from grader.authoring import selfcheck
from grader.authoring.release import solution_regions, strip_solutions
from grader.intake.notebook import GRADE_MARK, defines

BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def _cell_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", text)[:64]


def _chunks(source: str, name: str, siblings: set[str]) -> list[tuple[str, str]]:
    """Split a module into (label, code): its top, then one chunk per top-level class.

    Imports of the sibling modules are dropped: the notebook shares one namespace.
    """
    tree = ast.parse(source, filename=name)
    lines = source.split("\n")
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


def _intro(assignment) -> str:
    exercises = assignment.exercises
    rows = "\n".join(f"| {e.part} | {e.max_points:g} |" for e in exercises)
    total = sum(e.max_points for e in exercises)
    first = assignment.files[0]
    shared = [(f, m) for f, ms in assignment.sibling_imports.items() for m in ms]
    example = (f"so `{shared[0][0]}` uses the names of\n  `{shared[0][1]}.py` without importing them; the "
               f"grader adds `from {shared[0][1]} import *`\n  when it grades that file.") if shared else \
        "so no cell imports another file's names."
    autograded = ("Run a cell titled *Autograded*, after the cells above it, to self-check that part: one\n"
                  "  line per check, ✓ or ✗ and what to fix. It needs pytest and the files that came with\n"
                  f"  this notebook (`{selfcheck.PLUGIN}`, ...), and it does not change your grade: when your\n"
                  "  notebook is graded, the grader's checks run in these cells. Leave them as they are."
                  if selfcheck.tests(assignment) else
                  "The cells titled *Autograded* run the grader's checks when your notebook is graded;\n"
                  "  leave them as they are.")
    helpers = ("\n- Given, not graded (keep these files beside this notebook: the cells import them): "
               + ", ".join(f"`{f}`" for f in assignment.helpers) + ".") if assignment.helpers else ""
    return f"""# {assignment.title}

Each code cell below belongs to one of the assignment's files; its first line says which
(`# file: {first}`). Replace every `# YOUR CODE HERE` / `raise NotImplementedError()` with
your code, then run all cells.

- The cells of a file are graded together as that file. Cells without a `# file:` line
  are your scratch space and are not graded, so write everything your classes need in
  the file cells, and keep their first line.
- All cells share one namespace, {example}
- Shell and magic lines (`!pip ...`, `%timeit ...`) are skipped by the grader.{helpers}
- {autograded}

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


def source_notebook(assignment, sources: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The nbgrader source notebook: solution regions, one hidden-test grade cell per part.

    ``sources`` (file -> text) replaces the reference's files, e.g. to turn a student's .py
    hand-in into the notebook they would have handed in."""
    v4 = nbformat.v4
    targets = assignment.targets()
    siblings = set(assignment.modules)
    cells = [v4.new_markdown_cell(_intro(assignment), id="intro",
                                  metadata={"nbgrader": _nbgrader("intro", locked=True)})]
    placed: set[str] = set()
    for name, source in (sources or assignment.sources()).items():
        stem = Path(name).stem
        cells.append(v4.new_markdown_cell(f"## `{name}`", id=_cell_id(f"file-{stem}"),
                                          metadata={"nbgrader": _nbgrader(f"file-{stem}", locked=True)}))
        for label, code in _chunks(source, name, siblings):
            cell_id = _cell_id(f"{stem}-{label}")
            meta: dict = {"grader": {"file": name}}
            if solution_regions(code, f"{name} ({label})"):
                meta["nbgrader"] = _nbgrader(cell_id, solution=True)
            cells.append(v4.new_code_cell(f"# file: {name}\n{code}", id=cell_id, metadata=meta))
            for defined in sorted(defines(code), key=code.find):
                if defined in targets and targets[defined][1] == name:
                    cells.append(_grade_cell(*targets[defined][::2], assignment))
                    placed.add(targets[defined][0])
    for part, _, points in targets.values():  # a part whose class no file defines: at the end
        if part not in placed:
            cells.append(_grade_cell(part, points, assignment))
    nb = v4.new_notebook(cells=cells, metadata={"kernelspec": dict(KERNELSPEC),
                                                "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return nb


def _grade_cell(part: str, points: float, assignment) -> nbformat.NotebookNode:
    """The part's locked grade cell: the self-check's line for students (if the assignment
    has one; before the hidden line, whose value is the cell's score), then the hidden check."""
    if selfcheck.tests(assignment):
        visible = (f"{GRADE_MARK} {part} ({points:g} points). Run this cell to self-check {part}; it does not "
                   f"change your grade.\n# When your notebook is graded, the grader's checks run here.\n"
                   f"{selfcheck.call(part)}")
    else:
        visible = (f"{GRADE_MARK} {part} ({points:g} points). The grader's checks run here when your "
                   "notebook is graded.")
    source = (f"{visible}\n{BEGIN_HIDDEN}\nfrom grader.nb import check; "
              f"check({part!r}, {assignment.name!r})\n{END_HIDDEN}")
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


def student_notebook(assignment) -> nbformat.NotebookNode:
    """The student release: no solution, no hidden line, no nbgrader metadata."""
    nb = source_notebook(assignment)
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
        if cell.cell_type == "code":
            cell.source = strip_hidden(strip_solutions(cell.source, f"cell {cell.id}"))
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    """Deterministic JSON (sorted keys, fixed ids), so a release is reproducible byte for byte."""
    return nbformat.writes(nb) + "\n"
