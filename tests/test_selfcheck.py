"""The students' public self-check, run exactly as a student runs it: ``pytest`` in the folder.

Each run uses a temporary copy of ``assignments/backprop`` (never the folder itself) in
a fresh interpreter, with a JUnit report for per-test outcomes. What the student reads
(message first, only their own lines, nothing cut) is checked on pytest's real output.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import COURSE, RELEASE, REPO, SOLUTIONS

pytestmark = pytest.mark.slow

IGNORED = ("__pycache__", ".pytest_cache")
STUDENT_FILES = ("layers.py", "two_layer_net.py", "buy_apple_orange.py")
TIME_LIMIT = 10.0  # seconds for one whole self-check run (acceptance item)
SELF_CHECK_TESTS = {
    "test_mul_layer": "MulLayer.backward",
    "test_add_layer": "AddLayer.backward",
    "test_activation[Relu]": "Relu.backward",
    "test_activation[Sigmoid]": "Sigmoid.backward",
    "test_affine[2-D input]": "Affine.backward",
    "test_affine[4-D input]": "Affine.backward",
    "test_softmax_with_loss[one-hot]": "SoftmaxWithLoss.backward",
    "test_softmax_with_loss[class indices]": "SoftmaxWithLoss.backward",
    "test_two_layer_net_gradient": "TwoLayerNet.gradient",
    "test_shopping_graph": "buy_apple_orange",
}


def env() -> dict[str, str]:
    """The caller's environment minus anything that would change how pytest runs."""
    clean = {k: v for k, v in os.environ.items() if k not in {"PYTEST_ADDOPTS", "PYTHONPATH"}}
    clean["PYTHONDONTWRITEBYTECODE"] = "1"
    return clean


def student_copy(tmp_path: Path, solved: bool = False, assignment=None) -> Path:
    """A fresh copy of the release (backprop's, or ``assignment``'s); ``solved`` swaps in the
    reference files."""
    release, solutions = RELEASE, SOLUTIONS
    if assignment is not None:
        release, solutions = REPO / "assignments" / assignment.name, assignment.folder
    folder = tmp_path / release.name
    shutil.copytree(release, folder, ignore=shutil.ignore_patterns(*IGNORED))
    if solved:
        for name in (assignment.files if assignment else STUDENT_FILES):
            shutil.copyfile(solutions / name, folder / name)
    return folder


SEEDING_CONFTEST = """
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seed(request):
    request.module.rng = np.random.default_rng({seed})
    np.random.seed({seed})
"""


def run_selfcheck(folder: Path, *args: str, seed: int | None = None, columns: int | None = None,
                  tests=SELF_CHECK_TESTS):
    """Run ``pytest *args`` in ``folder``; return (process, {test: (outcome, message)}, seconds).

    ``seed`` adds to the release's conftest.py a fixture that reseeds the self-check's
    random inputs before each test, for runs whose expected outcome must not depend on the
    draw; ``columns`` is the terminal's width; ``tests`` are the self-check's tests, all of
    which must have run (unless ``--part`` chose some).
    """
    if seed is not None:  # beside the release's own conftest.py, which loads the reporter
        with open(folder / "conftest.py", "a", encoding="utf-8") as conftest:
            conftest.write(SEEDING_CONFTEST.format(seed=seed))
    report = folder.parent / "report.xml"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", f"--junitxml={report}", *args],
        cwd=folder, env={**env(), **({"COLUMNS": str(columns)} if columns else {})},
        capture_output=True, text=True, timeout=120,
    )
    elapsed = time.perf_counter() - start
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in {"failure", "error", "skipped"}:
                outcome, message = child.tag, child.get("message", "")
        outcomes[case.get("name")] = (outcome, message)
    if "--part" not in args:
        assert set(outcomes) == set(tests), "the self-check's test set changed"
    return proc, outcomes, elapsed


def plant(folder: Path, name: str, original: str, bug: str) -> int:
    """Replace ``original`` (found once) in the student's file ``name``; return its line number."""
    path = folder / name
    source = path.read_text(encoding="utf-8")
    assert source.count(original) == 1, f"cannot plant the bug: {original!r} not found once"
    path.write_text(source.replace(original, bug), encoding="utf-8")
    return source[: source.index(original)].count("\n") + 1


def failure_sections(output: str) -> dict[str, list[str]]:
    """test -> the lines of its section under pytest's FAILURES header (``___ test ___``)."""
    sections: dict[str, list[str]] = {}
    current, inside = None, False
    for line in output.splitlines():
        if re.fullmatch(r"=+ FAILURES =+", line):
            inside = True
        elif inside and re.fullmatch(r"=+ .+ =+", line):
            break
        elif inside and (header := re.fullmatch(r"_+ (.+?) _+", line)):
            current = header.group(1)
            sections[current] = []
        elif current:
            sections[current].append(line)
    return sections


def what_to_fix(output: str) -> dict[str, str]:
    """test -> its line in the "what to fix" list at the end."""
    listed = output.split(" what to fix ", 1)[1].split("\n", 1)[1]
    found = re.findall(r"^FAILED test_backprop\.py::(.+?) - (.*)$", listed, flags=re.M)
    return dict(found)


def checker_lines() -> set[str]:
    """The lines of the self-check's own code (tests, helper, reporter), as a student must never see them."""
    lines = set()
    for name in ("test_backprop.py", "gradcheck.py", "selfcheck.py", "conftest.py"):
        for line in (RELEASE / name).read_text(encoding="utf-8").splitlines():
            if len(line.strip()) > 8 and not line.strip().startswith("#"):
                lines.add(line.strip())
    return lines


def test_fresh_release_fails_every_test_with_not_implemented(tmp_path):
    """Untouched stubs: every test fails, each saying which method is not implemented yet."""
    proc, outcomes, elapsed = run_selfcheck(student_copy(tmp_path))
    assert proc.returncode == 1, proc.stdout
    assert elapsed < TIME_LIMIT
    for test, name in SELF_CHECK_TESTS.items():
        outcome, message = outcomes[test]
        assert outcome == "failure", f"{test}: {outcome}"
        assert name in message and "is not implemented yet" in message, f"{test}: {message}"
    # what the student reads: one line per test, the whole sentence
    assert failure_sections(proc.stdout) == {test: [f"{name} is not implemented yet"]
                                             for test, name in SELF_CHECK_TESTS.items()}, proc.stdout
    assert what_to_fix(proc.stdout) == {test: f"{name} is not implemented yet"
                                        for test, name in SELF_CHECK_TESTS.items()}


def test_reference_solutions_pass_every_test(tmp_path):
    """With the reference files dropped in, the self-check must be green (as students run it)."""
    proc, outcomes, elapsed = run_selfcheck(student_copy(tmp_path, solved=True))
    failed = {test: result for test, result in outcomes.items() if result[0] != "passed"}
    assert not failed, failed
    assert proc.returncode == 0, proc.stdout
    assert elapsed < TIME_LIMIT


@pytest.mark.parametrize(
    ("original", "bug", "failing"),
    [
        pytest.param(
            "self.db = np.sum(dout, axis=0)",
            "self.db = np.mean(dout, axis=0)",
            {
                "test_affine[2-D input]": ("Affine.backward: db", "largest relative error"),
                "test_affine[4-D input]": ("Affine.backward: db", "largest relative error"),
                # TwoLayerNet is built from Affine layers, so its check must catch it too
                "test_two_layer_net_gradient": ("TwoLayerNet.gradient: ",),
            },
            id="Affine db as mean",
        ),
        pytest.param(
            "dx = dx.reshape(*self.original_x_shape)",
            "pass",
            {"test_affine[4-D input]": ("Affine.backward: dx", "shape (3, 6)", "(3, 2, 1, 3)")},
            id="Affine dx not reshaped",
        ),
    ],
)
def test_one_bug_fails_exactly_the_affected_tests(tmp_path, original, bug, failing):
    """A single wrong line flags exactly the tests that use it, with a message naming it.

    Seeded (seed 0 passes every test on the reference, see the sweep below), so that a
    false failure elsewhere cannot blur which tests the bug affects.
    """
    folder = student_copy(tmp_path, solved=True)
    plant(folder, "layers.py", original, bug)
    proc, outcomes, elapsed = run_selfcheck(folder, seed=0)
    assert elapsed < TIME_LIMIT
    assert proc.returncode == 1
    failed = {test for test, (outcome, _) in outcomes.items() if outcome != "passed"}
    assert failed == set(failing), {t: outcomes[t] for t in failed ^ set(failing)}
    for test, fragments in failing.items():
        outcome, message = outcomes[test]
        assert outcome == "failure"
        for fragment in fragments:
            assert fragment in message, f"{test}: {message}"


DB_ERROR = re.compile(r"Affine\.backward: db: largest relative error \d\.\d\de[+-]\d\d at index \(\d+,\): "
                      r"yours -?\d[\d.e+-]*, numerical -?\d[\d.e+-]*")


def test_a_wrong_backward_says_its_message_first_whole_and_no_checker_code(tmp_path):
    """-q on a 60-column terminal: each failure is its message, uncut, then "what to fix" repeats it."""
    folder = student_copy(tmp_path, solved=True)
    plant(folder, "layers.py", "self.db = np.sum(dout, axis=0)", "self.db = np.mean(dout, axis=0)")
    proc, outcomes, _ = run_selfcheck(folder, "-q", seed=0, columns=60)
    out = proc.stdout
    sections = failure_sections(out)
    net = "test_two_layer_net_gradient"
    assert set(sections) == {"test_affine[2-D input]", "test_affine[4-D input]", net}, out
    fix = what_to_fix(out)
    for test in ("test_affine[2-D input]", "test_affine[4-D input]"):
        first = sections[test][0]
        assert DB_ERROR.fullmatch(first) and len(first) > 60, out
        assert sections[test] == [first], "the message only: no source, no traceback"
        assert fix[test] == first == outcomes[test][1]
    assert sections[net] == [fix[net]] and fix[net].startswith("TwoLayerNet.gradient: b1: largest relative error")
    shown = {line.strip() for line in out.splitlines()}
    assert not shown & checker_lines(), sorted(shown & checker_lines())
    assert not re.search(r"Traceback|^E |^>|gradcheck\.py|test_backprop\.py:\d|\.\.\.$", out, flags=re.M), out


def test_an_exception_in_student_code_names_the_method_and_shows_only_their_lines(tmp_path):
    """A NameError in Relu.backward: the sentence, then the student's file, line and code; no frame of ours."""
    folder = student_copy(tmp_path, solved=True)
    relu = plant(folder, "layers.py", "dx[self.mask] = 0", "dx[mask] = 0")
    net = plant(folder, "two_layer_net.py", "dout = layer.backward(dout)", "dout = layer.backward(dout)")
    proc, _, _ = run_selfcheck(folder, seed=0)
    sections = failure_sections(proc.stdout)
    raised = "raised NameError: name 'mask' is not defined"
    in_relu = [f"  layers.py, line {relu}, in Relu.backward", "    dx[mask] = 0"]
    assert sections == {
        "test_activation[Relu]": [f"Relu.backward {raised}", *in_relu],
        "test_two_layer_net_gradient": [f"Relu.backward (called by TwoLayerNet.gradient) {raised}",
                                        f"  two_layer_net.py, line {net}, in TwoLayerNet.gradient",
                                        "    dout = layer.backward(dout)", *in_relu],
    }, proc.stdout
    assert what_to_fix(proc.stdout)["test_activation[Relu]"] == f"Relu.backward {raised}"
    assert not re.search(r"(test_backprop|gradcheck|selfcheck|conftest)\.py, line|_pytest|site-packages",
                         proc.stdout), proc.stdout


PART_MARKS = """
import json, pytest


class Marks:
    def pytest_collection_modifyitems(self, items):
        self.found = {item.name: sorted(a for mark in item.iter_markers("part") for a in mark.args)
                      for item in items}


marks = Marks()
pytest.main(["--collect-only", "-qq"], plugins=[marks])
print(json.dumps(marks.found))
"""


def part_marks(folder: Path) -> dict[str, list[str]]:
    """check -> the parts it is marked with, as pytest collects them in the release ``folder``."""
    script = folder.parent / "marks.py"
    script.write_text(PART_MARKS, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=folder, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", COURSE.names())
def test_every_part_has_checks_and_every_check_one_part(tmp_path, name):
    """The part marks are the notebook's part -> checks map (``--part``, ``selfcheck.run(part)``):
    in every release, each check names exactly one of the assignment's parts and each part has a check."""
    assignment = COURSE.assignment(name)
    marks = part_marks(student_copy(tmp_path, assignment=assignment))
    assert marks and all(len(parts) == 1 for parts in marks.values()), marks
    assert sorted({p for parts in marks.values() for p in parts}) == sorted(assignment.parts), marks


def test_pytest_part_runs_one_parts_checks_and_names_the_parts_of_a_typo(tmp_path):
    folder = student_copy(tmp_path, solved=True)
    assert set(part_marks(folder)) == set(SELF_CHECK_TESTS)
    proc, outcomes, _ = run_selfcheck(folder, "--part", "Affine", seed=0)
    assert proc.returncode == 0 and outcomes == {"test_affine[2-D input]": ("passed", ""),
                                                 "test_affine[4-D input]": ("passed", "")}, proc.stdout
    unknown = subprocess.run([sys.executable, "-m", "pytest", "--part", "Affin"], cwd=folder, env=env(),
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 4
    assert "no check is marked part(Affin); the parts: AddLayer, Affine, MulLayer" in unknown.stderr


SEED_SWEEP = r'''
import test_backprop as tb

cases = {
    "test_mul_layer": (tb.test_mul_layer, ()),
    "test_add_layer": (tb.test_add_layer, ()),
    "test_activation[Relu]": (tb.test_activation, ("Relu",)),
    "test_activation[Sigmoid]": (tb.test_activation, ("Sigmoid",)),
    "test_affine[2-D input]": (tb.test_affine, ((3, 6),)),
    "test_affine[4-D input]": (tb.test_affine, ((3, 2, 1, 3),)),
    "test_softmax_with_loss[one-hot]": (tb.test_softmax_with_loss, ("one-hot",)),
    "test_softmax_with_loss[class indices]": (tb.test_softmax_with_loss, ("class indices",)),
    "test_two_layer_net_gradient": (tb.test_two_layer_net_gradient, ()),
    "test_shopping_graph": (tb.test_shopping_graph, ()),
}
'''
SWEEP = r'''
import json, sys
import numpy as np, pytest

failures = []
for seed in range(int(sys.argv[1])):
    for name, (test, args) in cases.items():
        tb.rng = np.random.default_rng(seed)
        np.random.seed(seed)
        try:
            test(*args)
        except (AssertionError, pytest.fail.Exception) as error:
            failures.append([seed, name, str(error).splitlines()[0]])
print(json.dumps(failures))
'''


def sweep_failures(folder: Path, cases: str, seeds: int = 300) -> list:
    """Run the self-check's test bodies (``cases``: a script that imports its module as ``tb``
    and maps names to (function, args)) on ``folder`` for each seed; return the failures."""
    script = folder.parent / "sweep.py"
    script.write_text(cases + SWEEP, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), str(seeds)], cwd=folder,
        env={**env(), "PYTHONPATH": str(folder)}, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_reference_passes_the_self_check_for_every_seed(tmp_path):
    """The self-check draws fresh random inputs each run; correct code must pass all of them.

    Runs every self-check test body on the reference for 300 fixed seeds (~1.5 s), so a
    false failure rate of ~1% shows up deterministically instead of once in a while on a
    student's machine.
    """
    failures = sweep_failures(student_copy(tmp_path, solved=True), SEED_SWEEP)
    assert not failures, f"{len(failures)} false failures on correct code, e.g. {failures[:5]}"


# ----------------------------------------------- the project's own pytest run


def collected_outside_tests(*args: str) -> list[str]:
    """Run `pytest --collect-only` at the repo root; return the paths it names outside tests/.

    tests/ itself is ignored (glob on its contents), so nothing here imports this suite.
    Exclusion is core pytest configuration, so third-party plugins are not loaded.
    """
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q",
         f"--ignore-glob={REPO / 'tests'}/*", *args],
        cwd=REPO, env={**env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True, text=True, timeout=60,
    )
    output = run.stdout + run.stderr
    assert run.returncode in (0, 2, 5), output  # 2: someone else's collection error; 5: none
    return re.findall(r"(?<![\w/.])((?:assignments|solutions)/[\w/.-]+)", output)


def test_project_pytest_config_excludes_student_and_solution_folders():
    """`pytest` at the repo root must never collect the self-check in assignments/ or solutions/.

    Checked for a bare `pytest` (testpaths) and for `pytest .` (norecursedirs). The control
    runs, with each exclusion switched off, prove the probe would see those files if the
    exclusion were missing.
    """
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]
    assert config["ini_options"]["testpaths"] == ["tests"]
    assert collected_outside_tests() == []
    assert collected_outside_tests(".") == []
    controls = [
        collected_outside_tests("-o", "testpaths=tests assignments solutions"),
        collected_outside_tests("-o", "norecursedirs=.*", "."),
    ]
    for control in controls:
        for folder in ("assignments", "solutions"):
            assert f"{folder}/backprop/test_backprop.py" in control, control
