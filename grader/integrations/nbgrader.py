"""nbgrader preprocessors: the sandbox, not the student's kernel, decides every grade.

Where they plug in. ``nbgrader autograde`` converts each notebook twice: a sanitize
pass (clear outputs, restore locked and grade cells from the gradebook) and an
autograde pass, ``c.Autograde.autograde_preprocessors``, by default ``Execute,
IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
AssignLatePenalties, CheckCellMetadata``. SaveAutoGrades reads each grade cell's
outputs (``nbgrader.utils.determine_grade``) and writes the score to the gradebook.
The course's ``nbgrader_config.py`` adds:

* ``GradeInSandbox`` first, before ``Execute``: while no code of this notebook has run
  anywhere, it grades the notebook's cells, as held in nbgrader's own memory, through
  ``grader.grading`` (sandboxed worker), and keeps the result in the conversion's
  ``resources``, which only nbgrader's process can reach;
* ``RecordScores`` just before ``SaveAutoGrades``: it replaces every grade cell's
  outputs with our feedback (stdout) and our score (a plain float, scaled to the cell's
  points), so whatever the kernel printed, raised or wrote to stderr is gone.

Why the kernel cannot change a score: the score is computed before the kernel starts,
from the cell sources (the kernel can only add outputs, which are replaced), in a
process the kernel cannot reach, comparing in that process the arrays the sandbox
returns. What the kernel *can* do is what nbgrader lets any notebook do - it runs as
the grader's user - so the two preprocessors also watch what a kernel could change
while it runs: a kernel that rewrites ``gradebook.db`` (e.g. its own
``manual_score``) is undone and its notebook fails; a kernel that edits the reference
solutions, the hidden tests, the configs or nbgrader (or an installed grader) fails
with the list of files to restore. The rest of the run is unaffected: it grades with
what was loaded before the first kernel started. ``grader nbgrader init --no-execute``
leaves ``Execute`` out altogether.

``KeepReleaseMetadata`` runs first in nbgrader's *sanitize* pass: a cell keeps nbgrader
metadata only as the release made it (the gradebook's source cells), so a student's own
``grade: true``, or metadata copied from another notebook, cannot make ``OverwriteCells``
or ``DeduplicateIds`` crash on the notebook (a silent 0) or move a grade cell.

``ScrubFeedback`` (for ``generate_feedback``) removes hidden-test regions and any
error or stderr output from grade cells, so no hidden line or traceback reaches a
student.
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from grader import course as courses
from grader.authoring.notebook import strip_hidden
from grader.grading import Grading
from grader.intake.notebook import safe_extract
from grader.nb import cell_score, feedback, grade_notebook

KEY = "grader"  # our entry in nbconvert's resources


@dataclass
class _Trusted:
    """What was loaded before any notebook ran, and the files a later grading reads from disk."""

    grading: Grading
    watched: list[str]

    def fingerprint(self) -> dict[str, str]:
        return _fingerprint(self.watched)


_trusted: dict[tuple, _Trusted] = {}


def _watched_files(course: courses.Course, config: str) -> list[str]:
    """What the next autograde run would load from disk: reference, hidden tests, configs, code.

    A source checkout of the grader (pyproject.toml beside it) is left out: its owner edits it.
    """
    import nbgrader

    import grader

    package = Path(grader.__file__).parent
    roots = [Path(nbgrader.__file__).parent, course.solutions]
    if not (package.parent / "pyproject.toml").exists():
        roots.append(package)
    files = [p for root in roots if root.is_dir() for p in root.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".j2", ".css", ".md",
                                                                                ".html", ".toml", ".ini")]
    files += [p for p in (Path("nbgrader_config.py"), Path(config) if config else None, course.config)
              if p and p.is_file()]
    return sorted({str(p.resolve()) for p in files})


def _fingerprint(paths: list[str]) -> dict[str, str]:
    found = {}
    for path in paths:
        try:
            found[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            continue
    return found


def trusted(course: str, config: str, assignment: str) -> _Trusted:
    """Course, hidden tests and reference, loaded once per nbgrader run before any kernel starts."""
    key = (course, config, assignment)
    if key not in _trusted:
        found = courses.find(Path(course) if course else None, Path(config) if config else None)
        grading = Grading.of(found, assignment or None)
        grading.session()  # the hidden tests collected, the reference loaded: before any kernel
        _ = grading.assignment.reference
        _trusted[key] = _Trusted(grading, _watched_files(found, config))
    return _trusted[key]


class _Gradebook:
    """A copy of a SQLite gradebook taken before the kernel runs, to undo what it writes."""

    def __init__(self, db_url: str):
        self.path = Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite:///") else None
        self.copy: Path | None = None
        if self.path and self.path.is_file():
            self.copy = Path(tempfile.mkdtemp(prefix="grader-gradebook-")) / "gradebook.db"
            weakref.finalize(self, shutil.rmtree, self.copy.parent, True)  # if the notebook fails first
            shutil.copy2(self.path, self.copy)
            self.sidecars = self._sidecars()

    def _sidecars(self) -> set[str]:
        return {p.name for p in self.path.parent.glob(self.path.name + "-*")}

    def restore_if_changed(self) -> bool:
        """Put the copy back if the database or its journal changed; True if it had."""
        if self.copy is None:
            return False
        try:
            try:
                now = self.path.read_bytes()
            except OSError:  # deleted, or replaced by something unreadable
                now = None
            changed = now != self.copy.read_bytes() or self.path.is_symlink() or self._sidecars() != self.sidecars
            if changed:
                self.path.unlink(missing_ok=True)  # a symlink planted in its place is not followed
                shutil.copy2(self.copy, self.path)
                for name in self._sidecars() - self.sidecars:
                    (self.path.parent / name).unlink(missing_ok=True)
            return changed
        finally:
            shutil.rmtree(self.copy.parent, ignore_errors=True)
            self.copy = None


class KeepReleaseMetadata(NbGraderPreprocessor):
    """Sanitize pass, first: nbgrader metadata is the release's, never the student's.

    Each grade id the gradebook knows for this notebook stays on one cell (the one whose
    source is still the release's, else the last, as DeduplicateIds would keep), with the
    release's flags and points restored; every other cell's nbgrader metadata (an unknown
    id, a duplicate, no id, not a mapping) is removed, so the cell is plain student code.
    """

    def preprocess(self, nb: nbformat.NotebookNode, resources: dict) -> tuple[nbformat.NotebookNode, dict]:
        from nbgrader.api import Gradebook, MissingEntry

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            try:
                release = gradebook.find_notebook(info["notebook"], info["assignment"])
            except MissingEntry:
                return nb, resources  # nbgrader itself says what is wrong with the assignment
            source = {c.name: (c.source, bool(c.locked)) for c in release.source_cells}
            grades = {c.name: float(c.max_score) for c in release.grade_cells}
            solutions = {c.name for c in release.solution_cells}
            tasks = {c.name for c in release.task_cells}
        holders: dict[str, list[int]] = {}
        for i, cell in enumerate(nb.cells):
            meta = cell.get("metadata", {}).get("nbgrader")
            if meta is None:
                continue
            grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
            if isinstance(grade_id, str) and grade_id in source:
                holders.setdefault(grade_id, []).append(i)
            else:
                self._drop(cell, i, "its nbgrader metadata is not from the release")
        for grade_id, cells in holders.items():
            text, locked = source[grade_id]
            keep = next((i for i in cells if nb.cells[i].get("source") == text), cells[-1])
            for i in cells:
                if i != keep:
                    self._drop(nb.cells[i], i, f"a second cell claiming to be {grade_id!r}")
            meta = nb.cells[keep].metadata.nbgrader
            meta.update(grade=grade_id in grades, solution=grade_id in solutions, locked=locked)
            if grade_id in tasks:
                meta["task"] = True
            else:
                meta.pop("task", None)
            if grade_id in grades:
                meta["points"] = grades[grade_id]
            else:
                meta.pop("points", None)
        return nb, resources

    def _drop(self, cell: nbformat.NotebookNode, index: int, why: str) -> None:
        self.log.warning("cell %d: %s; it is graded as the student's own code", index, why)
        del cell.metadata["nbgrader"]


class GradeInSandbox(NbGraderPreprocessor):
    """Grade the notebook's code in the sandbox before nbgrader's kernel runs any of it."""

    course = Unicode(
        "", help="The grader's course folder (assignments and course.toml). Empty: found from the "
                 "working directory, else the course bundled with the grader."
    ).tag(config=True)
    course_config = Unicode(
        "", help="The grader's course settings (TOML: seed, limits), as for `grader grade --config`. "
                 "Empty: the course's course.toml, else the defaults."
    ).tag(config=True)
    assignment = Unicode(
        "", help="The grader's assignment to grade with. Empty: the one named like nbgrader's "
                 "assignment, else the course's default."
    ).tag(config=True)

    def _key(self, resources: dict) -> tuple[str, str, str]:
        name = self.assignment or resources["nbgrader"].get("assignment", "")
        found = courses.find(Path(self.course) if self.course else None)
        if name not in found.names():
            name = ""
        return self.course, self.course_config, name

    def preprocess(self, nb: nbformat.NotebookNode, resources: dict) -> tuple[nbformat.NotebookNode, dict]:
        key = self._key(resources)
        state = trusted(*key)
        student = resources["nbgrader"]["student"]
        data = nbformat.writes(nb).encode("utf-8")
        result = grade_notebook(data, student, state.grading)
        for error in result.grader_errors:
            self.log.error("grader error (the item scores 0 until regraded): %s", error)
        resources[KEY] = {"result": result, "extracted": safe_extract(nb, state.grading.assignment),
                          "gradebook": _Gradebook(resources["nbgrader"]["db_url"]), "key": key,
                          "files": state.fingerprint()}
        self.log.info("%s: graded in the sandbox (%s): %s / %s", student, result.isolation,
                      result.score, result.max_score)
        return nb, resources


class RecordScores(NbGraderPreprocessor):
    """Replace each grade cell's outputs with the sandbox's feedback and score."""

    def preprocess(self, nb: nbformat.NotebookNode, resources: dict) -> tuple[nbformat.NotebookNode, dict]:
        state = resources.get(KEY)
        if not state:
            raise RuntimeError("RecordScores needs GradeInSandbox earlier in "
                               "c.Autograde.autograde_preprocessors (before Execute)")
        student = resources["nbgrader"]["student"]
        if state["gradebook"].restore_if_changed():
            raise RuntimeError(f"{student}: the gradebook changed while this notebook ran: its code wrote "
                               "to it. The copy from before was put back; this notebook is not graded.")
        before, after = state["files"], trusted(*state["key"]).fingerprint()
        changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
        if changed:  # this run goes on from what it loaded before any kernel; the next run would not
            raise RuntimeError(f"while {student}'s notebook ran, its code changed files the grades depend on: "
                               f"{', '.join(changed[:5])}. This notebook is not graded. Restore those files "
                               "(e.g. reinstall, or copy them back) before the next autograde run.")
        result = state["result"]
        parts = trusted(*state["key"]).grading.assignment.parts
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type != "code" or not utils.is_grade(cell) or meta.get("grade_id") not in parts:
                continue
            part = meta["grade_id"]
            score = cell_score(result, part, meta.get("points"))
            claimed = _claimed(cell)
            if claimed != repr(score):
                self.log.warning("%s / %s: the kernel's output said %s; the sandbox's score is %s",
                                 student, part, claimed, score)
            cell.metadata.setdefault(KEY, {})["kernel_said"] = claimed
            cell.outputs = [
                nbformat.v4.new_output("stream", name="stdout",
                                       text=feedback(result, part, state["extracted"], parts[0]) + "\n"),
                nbformat.v4.new_output("execute_result", data={"text/plain": repr(score)},
                                       execution_count=cell.get("execution_count")),
            ]
        return nb, resources


def _claimed(cell: nbformat.NotebookNode) -> str | None:
    """What the kernel made this cell's score look like: its first result, or an error/stderr."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error" or output.get("name") == "stderr":
            return f"<{output.get('ename') or 'stderr'}: scores 0>"
        if output.get("output_type") == "execute_result":
            return str(output.get("data", {}).get("text/plain", ""))[:100]
    return None


class ScrubFeedback(NbGraderPreprocessor):
    """For generate_feedback: no hidden-test line, traceback or stderr in a grade cell."""

    def preprocess_cell(self, cell: nbformat.NotebookNode, resources: dict, index: int):
        if "HIDDEN TESTS" in cell.get("source", ""):
            cell.source = strip_hidden(cell.source)
        if cell.cell_type == "code" and utils.is_grade(cell):
            cell.outputs = [o for o in cell.outputs
                            if o.get("output_type") != "error" and o.get("name") != "stderr"]
        return cell, resources
