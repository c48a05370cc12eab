"""The reports in a real browser (headless Chromium): what a student and an instructor see
first, measured on the rendered pixels. ``python tests/screenshots.py REPORTS`` takes the
same screenshots of any graded class, to look at."""
from __future__ import annotations

import numpy as np
import pytest
from screenshots import browser, screenshot

from grader.reports import write_class_report, write_student
from grader.results import StudentResult, TestResult

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(browser() is None, reason="no Chromium (apt-get install -y chromium)")]

PIL = pytest.importorskip("PIL.Image")
BLUE = (9, 105, 218)     # the fix-first card's border and the links (_style.css)
PURPLE = (130, 80, 223)  # an error card's left border
PARTS = ["AddLayer", "Relu", "Affine"]


def student(name: str, broken: bool) -> StudentResult:
    tests = [TestResult(f"AddLayer: check {i}", "AddLayer", 0.0 if broken else 1.0, 1.0,
                        "error" if broken else "passed",
                        "the constructor raised AttributeError: module 'layers' has no attribute 'AddLayer'"
                        if broken else "ok", "duplicate-class" if broken else None) for i in range(7)]
    tests += [TestResult("Relu: dx", "Relu", 0.0, 3.0, "failed", "Relu.backward: dx: wrong", "relu-derivative-x"),
              TestResult("Affine: dW", "Affine", 2.0, 2.0, "passed", "ok")]
    return StudentResult(name, tests, output="hello\n" * 50)


def near(image, colour, tolerance=12) -> np.ndarray:
    """A mask of the pixels of ``image`` within ``tolerance`` of ``colour`` (rows x columns)."""
    rgb = np.asarray(image.convert("RGB"), dtype=int)
    return (np.abs(rgb - np.array(colour)) <= tolerance).all(axis=2)


def test_a_student_sees_what_to_fix_first_without_scrolling(tmp_path):
    result = student("ana", broken=True)
    write_student(result, tmp_path / "ana", hints={"duplicate-class": "a class defined twice"})
    png = screenshot(tmp_path / "ana" / "report.html", tmp_path / "ana.png", width=1000, height=800)
    image = PIL.open(png)
    assert image.size == (1000, 800)
    # the fix-first card's 2px blue border is on the first screen, and an error card follows it
    assert (near(image, BLUE, 0).sum(axis=1) > 700).any()
    tall = PIL.open(screenshot(tmp_path / "ana" / "report.html", tmp_path / "tall.png", 1000, 3000))
    top_blue = np.flatnonzero(near(tall, BLUE, 0).sum(axis=1) > 700)  # the card's top border
    first_card = np.flatnonzero(near(tall, PURPLE, 0)[:, :200].sum(axis=1) > 2)  # an error card's edge
    assert top_blue.size and first_card.size
    assert top_blue[0] < first_card[0]  # "fix first" comes before the cards it summarises


def test_the_class_report_renders_the_lecture_tables_with_links(tmp_path):
    results = [student(f"s{i}", broken=i % 2 == 0) for i in range(6)]
    for r in results:
        write_student(r, tmp_path / r.student)
    write_class_report(results, PARTS, tmp_path, title="Backprop")
    image = PIL.open(screenshot(tmp_path / "class.html", tmp_path / "class.png", 1200, 1400))
    # linked student names (blue text) inside the first 1400 px: the lecture sections lead
    assert near(image, BLUE, tolerance=40).sum() > 200
    html = (tmp_path / "class.html").read_text()
    assert html.index("For the lecture: most often failed") < html.index("Score distribution")
