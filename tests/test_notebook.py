"""The notebook form of the assignment: generated from the solutions, read back into files.

Generation and extraction are checked on real notebooks; grading goes through the real
sandbox (``grade`` fixture, conftest) or the real CLI, and the in-kernel ``check`` runs
in its own interpreter so that anything it wrote to stderr would be seen. The students'
self-check in the grade cells runs in a real Jupyter kernel (nbclient), as a student runs it.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from conftest import BACKPROP, COURSE, RELEASE, REPO, SOLUTIONS, execute_notebook, fill_in, solutions_of

from grader.authoring import notebook as authoring
from grader.authoring.release import solution_lines
from grader.cli import main
from grader.intake import notebook as intake_nb
from grader.intake.submission import Submission, stage
from grader.reports import student_folder

EXAMPLES = REPO / "examples" / "class"


def code_cells(nb) -> list:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def as_notebook(files: dict[str, str], *, tag: str = "metadata") -> dict:
    """A hand-made notebook with one cell per file, tagged by metadata, marker or nothing."""
    cells = [nbformat.v4.new_markdown_cell("# my work")]
    for name, text in files.items():
        meta = {"grader": {"file": name}} if tag == "metadata" else {}
        source = f"# file: {name}\n{text}" if tag == "marker" else text
        cells.append(nbformat.v4.new_code_cell(source, metadata=meta))
    return nbformat.v4.new_notebook(cells=cells)


def write_nb(path: Path, nb) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb) if hasattr(nb, "cells") else json.dumps(nb), encoding="utf-8")
    return path


def reference_files() -> dict[str, str]:
    return {name: (SOLUTIONS / name).read_text(encoding="utf-8") for name in BACKPROP.files}


def part_scores(result) -> dict[str, float]:
    return {part: totals["score"] for part, totals in result.parts().items()}


# ------------------------------------------------------------------ generation


def test_source_notebook_has_one_grade_cell_per_part_worth_its_max_points():
    nb = authoring.source_notebook(BACKPROP)
    grades = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert [c.metadata.nbgrader.grade_id for c in grades] == BACKPROP.parts
    assert {c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points for c in grades} == \
        {e.part: float(e.max_points) for e in BACKPROP.exercises}
    for cell in grades:
        assert cell.metadata.nbgrader.locked and not cell.metadata.nbgrader.solution
        hidden = authoring.strip_hidden(cell.source)
        secret = [line for line in cell.source.splitlines() if line not in hidden.splitlines()]
        part = cell.metadata.nbgrader.grade_id
        # the hidden region is one call of the installed check: no test code in the notebook
        assert secret == [authoring.BEGIN_HIDDEN, f"from grader.nb import check; check({part!r}, 'backprop')",
                          authoring.END_HIDDEN]


def test_each_grade_cell_follows_the_cell_defining_its_class():
    nb = authoring.source_notebook(BACKPROP)
    for i, cell in enumerate(nb.cells):
        part = cell.metadata.get("grader", {}).get("part")
        if part:
            exercise = next(e for e in BACKPROP.exercises if e.part == part)
            name = getattr(exercise, "cls", None) or exercise.function
            assert f"\n{'class' if getattr(exercise, 'cls', None) else 'def'} {name}" in nb.cells[i - 1].source


def test_source_notebook_keeps_every_solution_region_as_an_nbgrader_solution_cell():
    nb = authoring.source_notebook(BACKPROP)
    for name in BACKPROP.files:
        regions = (SOLUTIONS / name).read_text(encoding="utf-8").count("### BEGIN SOLUTION")
        cells = [c for c in nb.cells if c.metadata.get("grader", {}).get("file") == name]
        assert sum(c.source.count("### BEGIN SOLUTION") for c in cells) == regions
        for cell in cells:
            assert bool(cell.metadata.get("nbgrader", {}).get("solution")) == ("BEGIN SOLUTION" in cell.source)
            assert cell.source.startswith(f"# file: {name}\n")


def test_student_notebook_has_no_solution_no_hidden_line_and_a_stub_per_region():
    nb = json.loads((RELEASE / BACKPROP.notebook).read_text(encoding="utf-8"))
    text = "\n".join("".join(c["source"]) for c in nb["cells"])
    rows = text.splitlines()
    lines = {line.strip() for line in rows} | {line.split("#")[0].strip() for line in rows}
    for name in BACKPROP.files:
        secret = solution_lines((SOLUTIONS / name).read_text(encoding="utf-8"))
        assert secret and not secret & lines, f"solution lines of {name} leaked into the notebook"
    regions = sum((SOLUTIONS / n).read_text("utf-8").count("### BEGIN SOLUTION") for n in BACKPROP.files)
    code = "\n".join("".join(c["source"]) for c in code_cells(nb))
    assert code.count("raise NotImplementedError()") == code.count("# YOUR CODE HERE") == regions
    assert "SOLUTION" not in text and "HIDDEN" not in text and "grader.nb" not in text
    assert all("nbgrader" not in c["metadata"] for c in nb["cells"])
    nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))


def test_released_notebook_is_the_py_stubs_as_cells():
    """Single source: the notebook's files are the released .py files, statement for statement."""
    extracted = intake_nb.extract(RELEASE / BACKPROP.notebook, BACKPROP)
    for name in BACKPROP.files:
        def statements(text: str) -> list[str]:
            return [ast.dump(node) for node in ast.parse(text).body
                    if not (isinstance(node, ast.ImportFrom) and node.module in ("layers", "two_layer_net"))]
        assert statements(extracted.sources[name]) == statements((RELEASE / name).read_text("utf-8"))


def test_put_back_imports_match_what_the_solution_files_import():
    for name in BACKPROP.files:
        tree = ast.parse((SOLUTIONS / name).read_text(encoding="utf-8"))
        siblings = tuple(n.module for n in tree.body if isinstance(n, ast.ImportFrom)
                         and n.module in {Path(f).stem for f in BACKPROP.files})
        assert BACKPROP.sibling_imports.get(name, ()) == siblings
        cells = [c.source for c in authoring.source_notebook(BACKPROP).cells
                 if c.metadata.get("grader", {}).get("file") == name]
        assert not any(f"from {m} import" in s for s in cells for m in siblings), "dropped in the notebook"


def test_generation_is_deterministic():
    first = authoring.dumps(authoring.student_notebook(BACKPROP))
    assert first == authoring.dumps(authoring.student_notebook(BACKPROP))
    assert authoring.dumps(authoring.student_notebook(BACKPROP)) == \
        (RELEASE / BACKPROP.notebook).read_text(encoding="utf-8")


# ------------------------------------------------------------------ extraction


def test_cells_are_found_by_metadata_then_marker_then_class_name(tmp_path):
    files = reference_files()
    for tag in ("metadata", "marker", "none"):
        got = intake_nb.extract(write_nb(tmp_path / f"{tag}.ipynb", as_notebook(files, tag=tag)), BACKPROP)
        assert sorted(got.sources) == sorted(BACKPROP.files), tag
        assert "class Affine" in got.sources["layers.py"]
        assert got.sources["two_layer_net.py"].startswith("from layers import *")
        if tag == "none":
            assert any("has no `# file:` line" in n and "graded as part of layers.py" in n for n in got.notes)


def test_a_files_cells_are_joined_in_order_and_scratch_cells_are_left_out(tmp_path):
    nb = as_notebook({"layers.py": "import numpy as np\nA = 1"})
    nb.cells.append(nbformat.v4.new_code_cell("print(A)  # trying things"))
    nb.cells.append(nbformat.v4.new_code_cell("# file: layers.py\nB = A + 1"))
    nb.cells.append(nbformat.v4.new_code_cell("# just a note"))
    got = intake_nb.extract(write_nb(tmp_path / "x.ipynb", nb), BACKPROP)
    assert got.sources["layers.py"] == "import numpy as np\nA = 1\n\n# file: layers.py\nB = A + 1\n"
    assert any("Cell 3 (`print(A)  # trying things`) is not part of any file" in n for n in got.notes)
    assert not any("Cell 5" in n for n in got.notes), "a comment-only cell is not worth a note"
    assert got.where("layers.py", 5) == "cell 4, line 2"


def test_grade_cells_are_never_code_of_a_file(tmp_path):
    nb = authoring.source_notebook(BACKPROP)  # grade cells hold the check call (as after autograde)
    got = intake_nb.extract(write_nb(tmp_path / "src.ipynb", nb), BACKPROP)
    assert not any("grader.nb" in text or "Autograded" in text for text in got.sources.values())


def test_magics_are_commented_out_keeping_line_numbers(tmp_path):
    code = ("!pip install numpy\n%matplotlib inline\nfiles = !ls\nimport numpy as np\n"
            "def f(x):\n    %time y = x\n    return x\n\nclass MulLayer:\n    pass")
    nb = as_notebook({"layers.py": code})
    got = intake_nb.extract(write_nb(tmp_path / "m.ipynb", nb), BACKPROP)
    text = got.sources["layers.py"]
    assert len(text.splitlines()) == len(code.splitlines())
    compile(text, "layers.py", "exec")
    assert "# !pip install numpy" in text and "    pass  # %time y = x" in text
    assert any("4 magic or shell line(s)" in n for n in got.notes)
    valid = "x = (3\n% 2)\n"  # Python already: a leading % continues the expression
    assert intake_nb.comment_magics(valid) == (valid, 0)


def test_outputs_and_nbformat_3_are_handled(tmp_path):
    nb = as_notebook(reference_files())
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="E", evalue="x", traceback=["boom"]),
                           nbformat.v4.new_output("stream", name="stderr", text="w" * 100000)]
    got = intake_nb.extract(write_nb(tmp_path / "out.ipynb", nb), BACKPROP)
    assert got.sources["layers.py"] == (SOLUTIONS / "layers.py").read_text(encoding="utf-8")
    v3 = {"nbformat": 3, "worksheets": [{"cells": [
        {"cell_type": "code", "input": "# file: layers.py\nX = 1\n", "outputs": []}]}]}
    got = intake_nb.extract(write_nb(tmp_path / "v3.ipynb", v3), BACKPROP)
    assert got.sources == {"layers.py": "# file: layers.py\nX = 1\n"}


@pytest.mark.parametrize(("data", "message"), [
    (b'{"cells": [', "backprop.ipynb is not a valid notebook: broken JSON at line 1"),
    (b"\xff\xfe\x00", "backprop.ipynb is not a notebook: not UTF-8"),
    (b'["not", "a", "notebook"]', "backprop.ipynb is not a Jupyter notebook"),
], ids=["truncated", "binary", "not-a-notebook"])
def test_a_broken_notebook_is_named_in_the_error_and_in_the_notes(tmp_path, data, message):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "backprop.ipynb").write_bytes(data)
    with pytest.raises(intake_nb.NotebookError, match=message):
        intake_nb.extract(folder / "backprop.ipynb", BACKPROP)
    staged = stage(Submission("student", folder), tmp_path / "staged", BACKPROP)
    assert any(note.startswith(message) and "Nothing could be graded" in note for note in staged.notes)
    assert not list(staged.folder.glob("*.py"))


# ------------------------------------------------------------- the stage() hook


def test_stage_takes_a_renamed_notebook_and_ignores_checkpoints(tmp_path):
    folder = tmp_path / "alice"
    write_nb(folder / "Copy of backprop (1).ipynb", as_notebook(reference_files()))
    write_nb(folder / ".ipynb_checkpoints" / "backprop-checkpoint.ipynb", as_notebook({"layers.py": "bad ="}))
    staged = stage(Submission("alice", folder), tmp_path / "staged", BACKPROP)
    assert sorted(p.name for p in staged.folder.glob("*.py")) == sorted(BACKPROP.files)
    assert staged.notes[0].startswith("Your notebook Copy of backprop (1).ipynb was graded (layers.py from cell 2")
    assert "class Affine" in (staged.folder / "layers.py").read_text(encoding="utf-8")


def test_stage_prefers_py_files_over_a_notebook(tmp_path):
    folder = tmp_path / "bob"
    write_nb(folder / "backprop.ipynb", as_notebook({"layers.py": "X = 1"}))
    for name, text in reference_files().items():
        (folder / name).write_text(text, encoding="utf-8")
    staged = stage(Submission("bob", folder), tmp_path / "staged", BACKPROP)
    assert (staged.folder / "layers.py").read_text(encoding="utf-8") == reference_files()["layers.py"]
    assert not any("notebook" in n for n in staged.notes)


def test_a_cell_missing_from_the_notebook_is_a_missing_file(tmp_path):
    files = reference_files()
    del files["buy_apple_orange.py"]
    folder = tmp_path / "carol"
    write_nb(folder / "backprop.ipynb", as_notebook(files))
    staged = stage(Submission("carol", folder), tmp_path / "staged", BACKPROP)
    assert "buy_apple_orange.py is missing (no cell of the notebook belongs to it)." in staged.notes
    assert sorted(p.name for p in staged.folder.glob("*.py")) == ["layers.py", "two_layer_net.py"]


@pytest.mark.parametrize("student", ["seed-000", "syntax-error", "no-transpose", "missing-class"])
def test_a_notebook_scores_exactly_as_the_same_py_files(tmp_path, grade, student):
    """The example class's files, pasted into notebook cells as they are: same score per part."""
    files = {n: (EXAMPLES / student / n).read_text(encoding="utf-8") for n in BACKPROP.files}
    as_files = grade(shutil.copytree(EXAMPLES / student, tmp_path / "py" / student))
    as_cells = grade(write_nb(tmp_path / "nb" / student / "hw.ipynb", as_notebook(files)).parent)
    assert part_scores(as_cells) == part_scores(as_files)
    assert [t.status for t in as_cells.tests] == [t.status for t in as_files.tests]


def test_grader_grade_accepts_nbgrader_submitted_layout(tmp_path):
    """`grader grade submitted/` on nbgrader's submitted/<student>/<assignment>/<nb>.ipynb."""
    root = tmp_path / "submitted"
    (root / "dave" / "backprop").mkdir(parents=True)
    shutil.copy(RELEASE / BACKPROP.notebook, root / "dave" / "backprop" / BACKPROP.notebook)
    write_nb(root / "erin" / "backprop" / "backprop.ipynb", authoring.source_notebook(BACKPROP))
    result = CliRunner().invoke(main, ["grade", str(root), "--out", str(tmp_path / "out"), "--jobs", "1",
                                       "--assignment", "backprop"])
    assert result.exit_code == 0, result.output
    erin = json.loads((student_folder(tmp_path / "out", "erin") / "report.json").read_text(encoding="utf-8"))
    dave = json.loads((student_folder(tmp_path / "out", "dave") / "report.json").read_text(encoding="utf-8"))
    assert erin["score"] == erin["max_score"] == sum(e.max_points for e in BACKPROP.exercises)
    assert 0 < dave["score"] < dave["max_score"] and dave["parts"]["ShoppingGraph"]["score"] == 0
    assert dave["notes"][0].startswith("Your notebook backprop.ipynb was graded")


def test_grader_grade_takes_loose_notebooks_one_per_student(tmp_path):
    """SUBMISSIONS/<student>.ipynb, as an LMS export hands them in: graded as the same notebook in a folder."""
    root, folders = tmp_path / "class", tmp_path / "folders"
    root.mkdir()
    write_nb(root / "gina.ipynb", authoring.source_notebook(BACKPROP))
    shutil.copy(RELEASE / BACKPROP.notebook, root / "hank.ipynb")
    files = reference_files()
    files["layers.py"] = files["layers.py"].replace("np.sum(dout, axis=0)", "np.mean(dout, axis=0)")
    write_nb(root / "iris.ipynb", as_notebook(files))
    write_nb(root / "jack.ipynb", as_notebook({"layers.py": "X = 1"}))  # jack/ is graded, not this
    shutil.copytree(EXAMPLES / "seed-000", root / "jack")
    (root / "notes.txt").write_text("not a hand-in", encoding="utf-8")
    (root / "kim.ipynb").write_bytes(b'{"cells": [')  # cut off while uploading
    write_nb(root / "bad id.ipynb", authoring.source_notebook(BACKPROP))
    for student in ("gina", "hank", "iris"):
        shutil.copy(root / f"{student}.ipynb", write_dir(folders / student) / "hw.ipynb")
    loose = CliRunner().invoke(main, ["grade", str(root), "--out", str(tmp_path / "out"), "--jobs", "2"])
    assert loose.exit_code == 0, loose.output
    assert "jack.ipynb: jack/ is a folder too" in loose.output and "notes.txt: not a folder" in loose.output
    assert "bad id.ipynb: a student id starts with" in loose.output
    kim = json.loads((student_folder(tmp_path / "out", "kim") / "report.json").read_text(encoding="utf-8"))
    assert kim["score"] == 0 and (student_folder(tmp_path / "out", "kim") / "report.html").is_file()
    assert any(n.startswith("kim.ipynb is not a valid notebook: broken JSON at line 1") and
               "Nothing could be graded" in n for n in kim["notes"]), kim["notes"]
    in_folders = CliRunner().invoke(main, ["grade", str(folders), "--out", str(tmp_path / "ref"), "--jobs", "1",
                                           "--assignment", "backprop"])
    assert in_folders.exit_code == 0, in_folders.output
    for student in ("gina", "hank", "iris"):
        got = json.loads((student_folder(tmp_path / "out", student) / "report.json").read_text(encoding="utf-8"))
        want = json.loads((student_folder(tmp_path / "ref", student) / "report.json").read_text(encoding="utf-8"))
        assert got["parts"] == want["parts"], student
        assert [(t["name"], t["score"]) for t in got["tests"]] == [(t["name"], t["score"]) for t in want["tests"]]
        assert got["notes"][0].startswith(f"Your notebook {student}.ipynb was graded"), got["notes"]
    scores = {s: json.loads((student_folder(tmp_path / "out", s) / "report.json").read_text("utf-8"))["score"]
              for s in ("gina", "hank", "iris", "jack")}
    assert scores["gina"] == sum(e.max_points for e in BACKPROP.exercises) and scores["iris"] == scores["gina"] - 3
    assert scores["hank"] < scores["gina"]
    jack = json.loads((student_folder(tmp_path / "out", "jack") / "report.json").read_text(encoding="utf-8"))
    assert not any("notebook" in n for n in jack["notes"]), "the folder, not the notebook, was graded"


def write_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


# ------------------------------------------------------------ the in-kernel check

CHECK = ("from grader.nb import check\nimport sys\nr = check({part!r}, 'backprop')\n"
         "print('RESULT', type(r).__name__, repr(r))\n")


def run_check(folder: Path, part: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK.format(part=part)], cwd=folder, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "NBGRADER_EXECUTION": "autograde"})


def test_check_prints_feedback_and_returns_a_plain_float_never_stderr(tmp_path):
    files = reference_files()
    files["layers.py"] = files["layers.py"].replace("np.sum(dout, axis=0)", "np.mean(dout, axis=0)")
    files["layers.py"] += "\nimport sys, warnings\nprint('to stderr', file=sys.stderr)\nwarnings.warn('noisy')\n"
    folder = tmp_path / "autograded" / "frank" / "backprop"
    write_nb(folder / "backprop.ipynb", as_notebook(files))
    done = run_check(folder, "Affine")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    top = BACKPROP.part("Affine").max_points
    assert done.stdout.splitlines()[-1] == f"RESULT float {top - 3}"
    assert f"Affine: {top - 3:g} / {top:g} points" in done.stdout and "FAILED Affine: db" in done.stdout
    assert "Known mistake: db as a mean over the batch" in done.stdout


def test_check_points_errors_at_notebook_cells(tmp_path):
    shutil.copy(RELEASE / BACKPROP.notebook, tmp_path / BACKPROP.notebook)
    done = run_check(tmp_path, "ShoppingGraph")
    assert done.stderr == "" and done.stdout.splitlines()[-1] == "RESULT float 0.0"
    assert re.search(r"raised NotImplementedError\n +buy_apple_orange\.py, line \d+ \(cell 21, line \d+\)",
                     done.stdout), done.stdout


def test_check_without_a_notebook_scores_zero_quietly(tmp_path):
    done = run_check(tmp_path, "Relu")
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines()[-1] == "RESULT float 0.0"
    assert "no notebook found" in done.stdout


# ------------------------------------------------------------------ the CLI


def load_config(path: Path):
    """Read a config file the way traitlets (hence nbgrader) does. It sets GRADER_COURSE for
    nbgrader's kernels: put the environment back, or later tests would grade that course."""
    from traitlets.config.loader import PyFileConfigLoader

    saved = dict(os.environ)
    try:
        return PyFileConfigLoader(path.name, str(path.parent)).load_config()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_nbgrader_init_writes_a_course_and_refuses_to_overwrite(tmp_path):
    course = tmp_path / "course"
    runner = CliRunner()
    first = runner.invoke(main, ["nbgrader", "init", str(course), "--assignment", "backprop", "--no-execute",
                                 "--timeout", "90"])
    assert first.exit_code == 0, first.output
    c = load_config(course / "nbgrader_config.py")
    chain = [name.rsplit(".", 1)[1] for name in c.Autograde.autograde_preprocessors]
    assert chain == ["GradeInSandbox", "ClearMetadataPreprocessor", "LimitOutput", "RecordScores",
                     "SaveAutoGrades", "AssignLatePenalties", "CheckCellMetadata"]  # no Execute
    assert c.Execute.timeout == 90 and c.CourseDirectory.root == str(course.resolve())
    source = course / "source" / "backprop" / BACKPROP.notebook
    assert source.read_text(encoding="utf-8") == authoring.dumps(authoring.source_notebook(BACKPROP))
    # beside it, the students' self-check as `grader release` writes it (and no .py stub, no README)
    beside = {p.name for p in source.parent.iterdir()} - {BACKPROP.notebook}
    assert beside == {"selfcheck.py", "conftest.py", "test_backprop.py", "gradcheck.py", "pytest.ini"}
    assert all((source.parent / name).read_bytes() == (RELEASE / name).read_bytes() for name in beside)
    again = runner.invoke(main, ["nbgrader", "init", str(course), "--assignment", "backprop"])
    assert again.exit_code != 0 and "already exist" in again.output and "--force" in again.output
    forced = runner.invoke(main, ["nbgrader", "init", str(course), "--assignment", "backprop", "--force"])
    assert forced.exit_code == 0
    chain = load_config(course / "nbgrader_config.py").Autograde.autograde_preprocessors
    order = [chain.index(f"{p}.{n}") for p, n in [("grader.integrations.nbgrader", "GradeInSandbox"),
                                                  ("nbgrader.preprocessors", "Execute"),
                                                  ("grader.integrations.nbgrader", "RecordScores"),
                                                  ("nbgrader.preprocessors", "SaveAutoGrades")]]
    assert order == sorted(order)
    help_text = runner.invoke(main, ["nbgrader", "init", "--help"]).output
    assert "Example:" in help_text


# ------------------------------------------------------- the students' self-check

def student_notebook(tmp_path: Path, edits=(), unsolved=(),
                     assignment=BACKPROP) -> tuple[nbformat.NotebookNode, Path]:
    """A copy of ``assignment``'s release whose notebook has the reference in its file cells, with
    ``(old, new)`` edits; the cells of ``unsolved`` (ids) stay as released."""
    folder = shutil.copytree(REPO / "assignments" / assignment.name, tmp_path / assignment.name,
                             ignore=shutil.ignore_patterns("__pycache__"))
    nb = nbformat.read(folder / assignment.notebook, as_version=4)
    return fill_in(nb, solutions_of(authoring.source_notebook(assignment)), edits, unsolved), folder


def self_check(nb: nbformat.NotebookNode, part: str) -> list[str]:
    """What part's grade cell printed: stdout only (no error, no stderr), as lines."""
    cell = next(c for c in nb.cells if c.metadata.get("grader", {}).get("part") == part)
    assert cell.outputs, f"{part}'s cell printed nothing"
    assert all(o.output_type == "stream" and o.name == "stdout" for o in cell.outputs), cell.outputs
    return "".join(o.text for o in cell.outputs).splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("name", COURSE.names())
def test_grade_cells_self_check_the_notebooks_own_code(tmp_path, name):
    """The reference typed into the cells: every part's cell says ✓ for each of its checks."""
    assignment = COURSE.assignment(name)
    nb, folder = student_notebook(tmp_path, assignment=assignment)
    execute_notebook(nb, folder)
    for part in assignment.parts:
        lines = self_check(nb, part)
        assert lines[0] == f"Self-check of {part} (it does not change your grade):"
        assert lines[1:-1] and all(line.startswith("✓ test_") for line in lines[1:-1]), lines
        assert lines[-1] == ("It passes." if len(lines) == 3 else f"All {len(lines) - 2} pass.")


@pytest.mark.slow
def test_a_wrong_notebook_reads_message_first_and_its_own_cells(tmp_path):
    """A stub, a NameError and a wrong formula: one ✗ line each, the sentence first, only the student's cells."""
    nb, folder = student_notebook(tmp_path, unsolved={"layers-MulLayer"},
                                  edits=[("self.db = np.sum(dout, axis=0)", "self.db = np.mean(dout, axis=0)"),
                                         ("dx[self.mask] = 0", "dx[mask] = 0")])
    execute_notebook(nb, folder)
    assert self_check(nb, "MulLayer")[1:] == ["✗ test_mul_layer: MulLayer.backward is not implemented yet",
                                              "1 of 1 check failed."]
    relu_cell = next(c for c in nb.cells if c.id == "layers-Relu")
    line = relu_cell.source.splitlines().index("        dx[mask] = 0") + 1
    assert self_check(nb, "Relu")[1:] == [
        "✗ test_activation[Relu]: Relu.backward raised NameError: name 'mask' is not defined",
        f"      Cell In[{relu_cell.execution_count}], line {line}, in Relu.backward", "        dx[mask] = 0",
        "1 of 1 check failed."]
    affine = self_check(nb, "Affine")
    for got, shape in zip(affine[1:3], ("2-D", "4-D"), strict=True):
        assert re.fullmatch(rf"✗ test_affine\[{shape} input\]: Affine\.backward: db: largest relative error "
                            r"\S+ at index \(\d+,\): yours \S+, numerical \S+", got), affine
    assert affine[3:] == ["2 of 2 checks failed."]
    assert self_check(nb, "ShoppingGraph")[1] == \
        "✗ test_shopping_graph: MulLayer.backward (called by buy_apple_orange) is not implemented yet"
    for part in ("AddLayer", "Sigmoid", "SoftmaxWithLoss"):
        assert not any(line.startswith("✗") for line in self_check(nb, part)), part
    printed = "\n".join(line for part in BACKPROP.parts for line in self_check(nb, part))
    assert not re.search(r"Traceback|test_backprop|gradcheck|selfcheck\.py|site-packages", printed), printed


@pytest.mark.slow
def test_under_nbgrader_autograde_the_grade_cells_print_nothing(tmp_path):
    """The same wrong notebook in a kernel with nbgrader's autograde set: the released grade cells
    (the self-check's line only) print nothing and raise nothing, so the grader's hidden check,
    which follows that line in nbgrader's copy, is all the cell says."""
    nb, folder = student_notebook(tmp_path, unsolved={"layers-MulLayer"},
                                  edits=[("self.db = np.sum(dout, axis=0)", "self.db = np.mean(dout, axis=0)")])
    nb.cells.append(nbformat.v4.new_code_cell("import os; print(os.environ['NBGRADER_EXECUTION'])"))
    execute_notebook(nb, folder, env={"NBGRADER_EXECUTION": "autograde"})
    assert [o.get("text") for o in nb.cells[-1].outputs] == ["autograde\n"]  # what the kernel saw
    cells = [c for c in nb.cells if "part" in c.metadata.get("grader", {})]
    assert [c.metadata["grader"]["part"] for c in cells] == BACKPROP.parts
    assert all(c.execution_count and c.outputs == [] for c in cells), [c.outputs for c in cells]


RUN = """
import sys
exec(open(sys.argv[1]).read())  # the reference classes, defined in this script's globals as in a notebook
import selfcheck
selfcheck.run(sys.argv[2])
print("left behind:", sorted({"layers", "test_backprop", "gradcheck", "conftest"} & set(sys.modules)))
"""


@pytest.mark.parametrize(("part", "autograde", "said"), [
    ("Affine", False, ["Self-check of Affine (it does not change your grade):", "✓ test_affine[2-D input]",
                       "✓ test_affine[4-D input]", "All 2 pass."]),
    ("Affine", True, []),
    ("Affin", False, ["Self-check of Affin: no check ran (no check is marked part(Affin); the parts: AddLayer, "
                      "Affine, MulLayer, Relu, ShoppingGraph, Sigmoid, SoftmaxWithLoss, TwoLayerNet)."]),
], ids=["checks", "silent-under-autograde", "unknown-part"])
def test_selfcheck_run_prints_only_to_stdout_and_cleans_up(tmp_path, part, autograde, said):
    """Outside Jupyter too; nothing under nbgrader's autograde (the hidden check scores the cell there)."""
    folder = shutil.copytree(RELEASE, tmp_path / "backprop", ignore=shutil.ignore_patterns("__pycache__"))
    env = {"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1"}
    if autograde:
        env["NBGRADER_EXECUTION"] = "autograde"
    done = subprocess.run([sys.executable, "-c", RUN, str(SOLUTIONS / "layers.py"), part], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.splitlines() == [*said, "left behind: []"]
