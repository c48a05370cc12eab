"""Grade correctly wherever a course installs the grader (issue 11).

Each install layout of ``layouts.build.SPECS`` (a venv inside the clone, clone and venv
under /tmp or /var/tmp, pyenv in a 0700 home, Debian's python3, a conda-like prefix, a
non-editable install run from elsewhere, homes of mode 0700 and 0750; as root and as a
normal user) is built in temp folders from one snapshot of this repository and one
wheelhouse, and in each one ``grader grade`` grades two students of examples/class: a
correct hand-in (ada-book, full marks) and a buggy one (db-mean: Affine loses its db items).
``grader doctor`` must run there too.

Run as root, the "user" layouts run as throwaway users (made with useradd and removed at
the end); run as a normal user, they run as that user, and what needs root is skipped
with the reason. Everything that is built is removed at the end (GRADER_LAYOUT_KEEP=1
keeps it). See layouts/build.py for the knobs (GRADER_LAYOUT_SOURCE, _METHOD, _JOBS, ...).

    python -m pytest tests/test_layouts.py -m layouts
"""
from __future__ import annotations

import re
import shutil
import warnings

import pytest
from layouts import build

pytestmark = [pytest.mark.layouts, pytest.mark.slow]

# doctor's verdict: the line "isolation: full", possibly followed by " (how it knows)"
FULL = re.compile(r"isolation: full(?:\s.*)?$")
LAYOUTS = pytest.mark.parametrize("spec", build.SPECS, ids=[s.id for s in build.SPECS])


@pytest.fixture(scope="session")
def lab(request):
    """One snapshot, one wheelhouse and the throwaway users for the session.

    Every layout that the selected tests need starts building at once in the background,
    in test order, so installs overlap the grading of the layouts built before them.
    """
    lab = build.Lab()
    for line in lab.swept:
        warnings.warn(line, stacklevel=1)
    wanted = {}
    for item in request.session.items:
        spec = getattr(getattr(item, "callspec", None), "params", {}).get("spec")
        if isinstance(spec, build.Spec):
            wanted.setdefault(spec.id, spec)
    lab.prefetch(list(wanted.values()))
    yield lab
    for line in lab.close():
        warnings.warn(line, stacklevel=1)


def _layout(lab: build.Lab, spec: build.Spec) -> build.Layout:
    try:
        return lab.layout(spec)
    except build.Unavailable as exc:
        pytest.skip(f"{spec.id}: {exc}")


@LAYOUTS
def test_grades_the_class(spec, lab):
    """Exit 0, grades.csv, the right total and part scores for both students, no grader failure."""
    layout = _layout(lab, spec)
    problems = build.grade_problems(layout)
    run = layout.grade()
    assert not problems, (f"{layout.describe()}\n" + "\n".join(f"- {p}" for p in problems)
                          + run.describe())
    print(layout.describe(), run.describe(60))  # shown with -rA: where it was, how long it took


@LAYOUTS
def test_doctor(spec, lab, record_property):
    """``grader doctor`` exits 0; as root with bubblewrap it says full isolation; as a normal
    user it never claims full isolation unless grading in that layout works."""
    layout = _layout(lab, spec)
    run = layout.doctor()
    record_property("doctor", run.stdout)
    print(layout.describe(), run.describe(60))  # what doctor said, for every layout (-rA)
    said = [line.strip() for line in run.stdout.splitlines() if line.strip().startswith("isolation:")]
    assert run.returncode == 0, f"{spec.id}: grader doctor exited {run.returncode} (see its output below)"
    full = any(FULL.match(line) for line in said)
    if layout.account.uid == 0 and shutil.which("bwrap"):
        assert full, (f"{spec.id}: root with bubblewrap, doctor must print a line 'isolation: full'; "
                      f"it said {said}")
    elif full:
        problems = build.grade_problems(layout)
        assert not problems, (f"{spec.id}: doctor says 'isolation: full', but grading here fails:\n"
                              + "\n".join(f"  - {p}" for p in problems))
