"""Failed checks grouped by root cause (grader.causes) and the report built on them."""
from __future__ import annotations

import re

import pytest

from grader.causes import root_causes
from grader.reports import fmt_stat, render_student, summary_line
from grader.results import NOT_CHECKED, StudentResult, TestResult

pytestmark = pytest.mark.fast


def check(part, name, feedback="", status="failed", score=0.0, top=1.0, mid=None) -> TestResult:
    return TestResult(f"{part}: {name}", part, score, top, status, feedback, mid)


def ok(part, name, top=1.0) -> TestResult:
    return TestResult(f"{part}: {name}", part, top, top, "passed", "fine")


MISSING = "the constructor raised AttributeError: module 'layers' has no attribute 'AddLayer'"


def test_one_missing_class_is_one_cause_naming_the_whole_part():
    tests = [ok("MulLayer", "dx")] + [check("AddLayer", f"c{i}", MISSING, "error", mid="duplicate-class")
                                      for i in range(7)]
    causes = root_causes(tests)
    assert len(causes) == 1
    assert causes[0].title([t.name for t in tests]) == "AddLayer: all 7 checks fail for one reason"
    assert causes[0].tests == list(range(1, 8)) and causes[0].lost == 7


def test_an_exception_links_parts_and_the_earliest_part_names_it():
    error = "raised AttributeError: 'SoftmaxWithLoss' object has no attribute 'x'"
    tests = [check("SoftmaxWithLoss", "forward", f"SoftmaxWithLoss.forward {error}", "error"),
             ok("SoftmaxWithLoss", "dx"),
             check("TwoLayerNet", "loss", f"TwoLayerNet.loss {error}", "error"),
             check("TwoLayerNet", "W1", f"TwoLayerNet.gradient {error}\n  more", "error", top=2)]
    (cause,) = root_causes(tests)
    assert cause.parts == ["SoftmaxWithLoss", "TwoLayerNet"] and cause.lost == 4
    assert cause.reason.startswith("SoftmaxWithLoss.forward raised")
    assert cause.title([t.name for t in tests]) == "SoftmaxWithLoss, TwoLayerNet: 3 checks fail for one reason"


def test_the_same_message_with_other_numbers_is_one_cause_another_quantity_is_not():
    tests = [check("Affine", "dx 2-D", "Affine.backward: dx: shape (3, 5), expected (4, 3)."),
             check("Affine", "dx 4-D", "Affine.backward: dx: shape (12, 6), expected (4, 3, 2, 2)."),
             check("Affine", "dW", "Affine.backward: dW: shape (3, 5), expected (4, 3)."),
             ok("Affine", "db")]
    causes = root_causes(tests)
    assert sorted(c.tests for c in causes) == [[0, 1], [2]]
    two = next(c for c in causes if len(c.tests) == 2)
    assert two.title([t.name for t in tests]) == "Affine: 2 of 4 checks fail for one reason"


def test_unrelated_failures_stay_apart_and_the_costliest_comes_first():
    tests = [check("Relu", "dx", "Relu.backward: dx: wrong sign", top=1),
             check("Sigmoid", "dx", "Sigmoid.backward: dx: missing y(1-y)", top=3),
             check("Relu", "protocol", NOT_CHECKED + "Relu.backward gives no gradient", "error")]
    causes = root_causes(tests)
    assert [c.tests for c in causes] == [[1], [0, 2]]  # 3 points, then 2 (the protocol item joins Relu)
    assert causes[0].title([t.name for t in tests]) == "Sigmoid: dx"


def test_the_same_misconception_in_two_parts_is_two_causes():
    tests = [check("Relu", "dx", "a", mid="undefined-name"), check("Affine", "dx", "b", mid="undefined-name")]
    assert len(root_causes(tests)) == 2


def test_passed_checks_make_no_cause():
    assert root_causes([ok("Relu", "dx"), ok("Relu", "fwd")]) == []


def test_report_shows_fix_first_then_one_card_per_cause():
    tests = [check("AddLayer", f"c{i}", MISSING, "error", mid="duplicate-class") for i in range(6)]
    tests.append(check("Relu", "dx", "Relu.backward: dx: largest relative error 5e+02", top=3))
    result = StudentResult("s1", tests)
    md = render_student(result, {"duplicate-class": "a class defined twice"})["report.md"]
    first = md.index("## Fix first: AddLayer: all 6 checks fail for one reason (6 points)")
    assert first < md.index("## Score per part")
    assert "2. Relu: dx (3 points)" in md
    cards = re.findall(r"^### \d+\. ", md, re.M)
    assert len(cards) == 2
    assert md.count("module 'layers' has no attribute 'AddLayer'") == 2  # fix first + the card, not 7 times
    html = render_student(result)["report.html"]
    assert html.index('class="card fixfirst"') < html.index("Score per part")
    assert html.count('<article class="card test') == 2


@pytest.mark.parametrize("value, text", [(71.8182, "71.8"), (85.0, "85"), (0.04, "0"), (-0.01, "0"), (9.96, "10")])
def test_statistics_are_formatted_for_people(value, text):
    assert fmt_stat(value) == text


def test_summary_line_rounds_the_mean_not_the_grades():
    results = [StudentResult(s, [TestResult("t", "p", v, 88.0, "failed")]) for s, v in
               (("a", 70.0), ("b", 71.0), ("c", 74.5))]
    assert summary_line(results).startswith("3 students: mean 71.8/88, median 71,")
