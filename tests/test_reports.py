"""The REPORTS stage: files written from hand-built StudentResults.

No mocks: every test writes real files into tmp_path and reads them back (csv, json,
markdown-it for the Markdown, rich's recorder for the terminal table).
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import stat
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import BACKPROP
from markdown_it import MarkdownIt
from rich.console import Console

from grader.reports import (
    REPORT_CAP,
    TABLE_ROWS,
    atomic_write,
    display_text,
    md_inline,
    student_folder,
    student_link,
    summary_line,
    summary_table,
    terminal_summary,
    truncate_text,
    write_class_report,
    write_grades_csv,
    write_student,
)
from grader.results import StudentResult, points
from grader.results import TestResult as Check  # "Test*" names would be collected

PARTS = ["MulLayer", "AddLayer", "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss",
         "TwoLayerNet", "ShoppingGraph"]

# (part, test name, max points): a realistic slice of the chapter's checks.
CHECKS = [
    ("MulLayer", "MulLayer: dx, dy (x != y)", 1.0),
    ("MulLayer", "MulLayer: forward unchanged", 0.5),
    ("AddLayer", "AddLayer: dx, dy", 1.0),
    ("Relu", "Relu: dx (batch 3, no kinks near 0)", 1.0),
    ("Relu", "Relu: does not modify dout in place", 0.5),
    ("Sigmoid", "Sigmoid: dx", 1.0),
    ("Affine", "Affine: dx (non-square W)", 1.0),
    ("Affine", "Affine: dW (4-D input)", 1.0),
    ("Affine", "Affine: db (sum over batch)", 1.0),
    ("SoftmaxWithLoss", "SoftmaxWithLoss: dx (batch 3)", 2.0),
    ("TwoLayerNet", "TwoLayerNet: gradient vs numerical", 3.0),
    ("TwoLayerNet", "TwoLayerNet: gradient keys and shapes", 1.0),
    ("ShoppingGraph", "ShoppingGraph: all seven gradients", 2.0),
]
MAX = sum(m for _, _, m in CHECKS)

AFFINE_DW = """Affine: dW is wrong.
  largest relative error 1.0 at index (2, 0); expected shape (12, 5), got (12, 5)
  expected dW[2, 0] = 0.4131, got -0.1877
Your dW looks like dout.T @ x reshaped: dW must be x.T @ dout (x flattened to 2-D)."""

SOFTMAX = """SoftmaxWithLoss: dx is wrong (batch size 3).
  every entry is exactly 3x the numerical gradient
  relative error 2.0 (max over all entries)
Divide by the batch size: dx = (y - t) / batch_size."""

SIGMOID_TRACE = """Sigmoid.backward raised an exception.
Traceback (most recent call last):
  File "layers.py", line 58, in backward
    dx = dout * (1.0 - self.out) * self.out
TypeError: unsupported operand type(s) for *: 'NoneType' and 'float'"""

XSS = "<script>alert(1)</script>"
XSS_FEEDBACK = """Relu.backward raised ValueError: <img src=x onerror=alert(2)>
Traceback (most recent call last):
  File "layers.py", line 31, in backward
    raise ValueError("<img src=x onerror=alert(2)>")"""

UNUSUAL_ID = "zoë.o'brien+lab_2 [b]&co"
HINTS = {"affine-dw-transposed": "dW = x.T @ dout, not dout.T @ x."}


def make(student: str, overrides: dict | None = None, **kwargs) -> StudentResult:
    """All checks passed, except ``overrides``: {test name: (score, status, feedback, mis)}."""
    overrides = overrides or {}
    tests = []
    for part, name, max_score in CHECKS:
        if name in overrides:
            score, status, feedback, mis = overrides[name]
            tests.append(Check(name, part, score, max_score, status, feedback, mis))
        else:
            tests.append(Check(name, part, max_score, max_score, "passed"))
    return StudentResult(student=student, tests=tests, **kwargs)


def full_marks() -> StudentResult:
    return make("s001", output="training... loss 2.302\n")


def partial() -> StudentResult:
    return make("s002", {
        "Affine: dW (4-D input)": (0.0, "failed", AFFINE_DW, "affine-dw-transposed"),
        # a share of a part: 1/3 of the points, which must still sum exactly
        "SoftmaxWithLoss: dx (batch 3)": (2 / 3, "failed", SOFTMAX,
                                          "softmax-missing-batch-division"),
        "TwoLayerNet: gradient vs numerical": (1.0, "failed", "W1, b1 wrong\n" + SOFTMAX,
                                               "softmax-missing-batch-division"),
    })


def broken() -> StudentResult:
    return make("s003", {
        "Sigmoid: dx": (0.0, "error", SIGMOID_TRACE, None),
        "TwoLayerNet: gradient vs numerical": (0.0, "timeout",
                                               "Timed out after 10 s (limit 10 s).", None),
        "TwoLayerNet: gradient keys and shapes": (0.0, "timeout", "", None),
    }, notes=["two_layer_net.py: killed after 10 s; its tests score 0"],
        isolation="isolation: partial (no network namespace; rlimits only)")


def hostile() -> StudentResult:
    huge = "".join(f"epoch {i}: loss {1 / (i + 1):.6f} é\n" for i in range(200_000))
    huge = (XSS + "\n" + huge)[: 5 * 1024 * 1024] + "\nlast line\n"
    return make("s004", {
        "Relu: dx (batch 3, no kinks near 0)": (0.0, "error", XSS_FEEDBACK, None),
    }, output=huge)


def unusual() -> StudentResult:
    return make(UNUSUAL_ID, {"MulLayer: dx, dy (x != y)": (0.0, "failed", "dx and dy swapped",
                                                           "mul-swapped-gradients")})


def everyone() -> list[StudentResult]:
    return [full_marks(), partial(), broken(), hostile(), unusual()]


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def write_all(results: list[StudentResult], root: Path) -> None:
    for r in results:
        write_student(r, student_folder(root, r.student), hints=HINTS)
    write_grades_csv(results, PARTS, root / "grades.csv")
    write_class_report(results, PARTS, root, hints=HINTS)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("REPORTS")
    write_all(everyone(), root)
    return root


# ------------------------------------------------------------------ report.json

@pytest.mark.parametrize("make_result", [full_marks, partial, broken, unusual])
def test_report_json_is_to_json_and_round_trips(written, make_result):
    r = make_result()
    text = read(student_folder(written, r.student) / "report.json")
    data = json.loads(text)
    assert data == r.to_json()
    assert list(data) == ["student", "score", "max_score", "parts", "tests", "isolation",
                          "notes", "output"]
    assert StudentResult.from_json(data).to_json() == data


def test_report_json_of_capped_result_round_trips(written):
    r = hostile()
    data = json.loads(read(student_folder(written, "s004") / "report.json"))
    back = StudentResult.from_json(data)
    assert back.to_json() == data
    assert data["score"] == r.score and data["parts"] == r.parts()
    assert data["tests"] == r.to_json()["tests"]  # only the output needed cutting
    assert "[... truncated " in data["output"]
    assert data["output"].startswith(XSS + "\n")
    assert data["output"].endswith("\nlast line\n")  # the tail is kept too


def test_rewriting_from_report_json_is_a_no_op(written, tmp_path):
    """--resume reads report.json back; writing it again must not change a byte."""
    for student in ("s002", "s004", UNUSUAL_ID):
        data = json.loads(read(student_folder(written, student) / "report.json"))
        write_student(StudentResult.from_json(data), tmp_path / student, hints=HINTS)
        assert tree(tmp_path / student) == tree(student_folder(written, student))


def test_statuses_kept(written):
    tests = json.loads(read(student_folder(written, "s003") / "report.json"))["tests"]
    assert {t["status"] for t in tests} == {"passed", "error", "timeout"}


# ------------------------------------------------------------------- grades.csv

def test_grades_csv(written):
    text = read(written / "grades.csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["student", "score", "max_score", *PARTS]
    body = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [row["student"] for row in body] == sorted(r.student for r in everyone())
    by_id = {row["student"]: row for row in body}
    assert by_id["s001"]["score"] == "16" and by_id["s001"]["max_score"] == "16"
    assert by_id["s002"]["Affine"] == "2"
    assert by_id["s002"]["SoftmaxWithLoss"] == "0.6667"
    assert by_id["s002"]["TwoLayerNet"] == "2"
    assert by_id["s003"]["Sigmoid"] == "0" and by_id["s003"]["TwoLayerNet"] == "0"
    assert by_id[UNUSUAL_ID]["MulLayer"] == "0.5"
    for r in everyone():
        row = by_id[r.student]
        assert float(row["score"]) == r.score
        assert float(row["max_score"]) == MAX
        assert points(sum(float(row[p]) for p in PARTS)) == r.score
    raw = (written / "grades.csv").read_bytes()  # read_text() would hide a \r
    assert b"\r" not in raw and raw.endswith(b"\n")


def test_grades_csv_extra_part_gets_a_column_and_duplicates_are_refused(tmp_path):
    r = make("s9")
    r.tests.append(Check("Bonus: im2col", "Bonus", 1.0, 1.0, "passed"))
    write_grades_csv([r], PARTS, tmp_path / "g.csv")
    header, row = list(csv.reader(io.StringIO(read(tmp_path / "g.csv"))))
    assert header == ["student", "score", "max_score", *PARTS, "Bonus"]
    assert sum(float(v) for v in row[3:]) == float(row[1]) == 17
    with pytest.raises(ValueError, match="duplicate"):
        write_grades_csv([make("a"), make("a")], PARTS, tmp_path / "dup.csv")


# ---------------------------------------------------------------- determinism

def test_same_results_same_bytes_whatever_the_order(written, tmp_path):
    shuffled = everyone()
    random.Random(5).shuffle(shuffled)
    write_all(shuffled, tmp_path)
    assert tree(tmp_path) == tree(written)


# -------------------------------------------------------------------- escaping

def test_html_escapes_everything_from_the_submission(written):
    html = read(student_folder(written, "s004") / "report.html")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    page = read(student_folder(written, UNUSUAL_ID) / "report.html")
    assert "zoë.o&#39;brien+lab_2 [b]&amp;co" in page
    assert "<script" not in read(written / "class.html").lower()


def test_class_html_escapes_ids_and_links_them_quoted(written):
    html = read(written / "class.html")
    assert f'href="./students/{quote(UNUSUAL_ID, safe="")}/report.html"' in html
    assert "[b]&amp;co" in html and "[b]&co" not in html
    for r in everyone():
        assert (student_folder(written, r.student) / "report.html").is_file()


def test_markdown_cannot_inject_html_or_break_its_fences(written, tmp_path):
    md = MarkdownIt("commonmark")  # raw HTML allowed: what a lax renderer would do
    rendered = md.render(read(student_folder(written, "s004") / "report.md"))
    assert "<script" not in rendered and "&lt;script&gt;" in rendered
    assert "<img" not in rendered
    sneaky = make("s5", {"Sigmoid: dx": (0.0, "failed", "```\n<script>x()</script>\n````", None)},
                  output="~~~\n<b>bold</b>")
    write_student(sneaky, tmp_path)
    rendered = md.render(read(tmp_path / "report.md"))
    assert "<script" not in rendered and "<b>" not in rendered
    rendered = md.render(read(student_folder(written, UNUSUAL_ID) / "report.md"))
    assert "zoë.o'brien+lab_2 [b]&amp;co" in rendered  # shown as typed, not a link


# -------------------------------------------------------------------- size cap

def test_every_student_file_is_under_the_cap(written):
    for r in everyone():
        for name in ("report.json", "report.md", "report.html", "results.json"):
            assert (student_folder(written, r.student) / name).stat().st_size <= REPORT_CAP, (r.student, name)
    assert "[... truncated " in read(student_folder(written, "s004") / "report.html")


@pytest.mark.parametrize("output", ["<" * 600_000, "\x00\x1b" * 300_000, "é😀" * 200_000])
def test_cap_holds_when_escaping_inflates_the_text(tmp_path, output):
    """HTML turns < into 4 bytes, JSON a NUL into 6: the cap is on the written file."""
    fb = "&" * 300_000
    r = make("s6", {name: (0.0, "failed", fb, "m") for _, name, _ in CHECKS}, output=output,
             notes=["<" * 100_000])
    write_student(r, tmp_path)
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= REPORT_CAP, p.name
        p.read_text(encoding="utf-8")  # valid UTF-8: no character cut in half
    data = json.loads(read(tmp_path / "report.json"))
    assert data["score"] == 0 and "[... truncated " in data["output"]


def test_display_text_removes_every_escape_and_control_and_nothing_else():
    """Against the rules written out character by character: ESC sequences (CSI, OSC, two-byte)
    go, CR LF and lone CR become LF, every other C0/C1 control and bidi override becomes
    U+FFFD; tab, newline and all else stay. Random text, mostly plain (display_text's fast
    path) and some with each kind of character."""
    controls = {chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0),
                                 *range(0x202A, 0x202F), *range(0x2066, 0x206A)]}
    escapes = ["\x1b[31m", "\x1b[0;1m", "\x1b]0;title\x07", "\x1b]8;;http://x\x1b\\", "\x1bM"]
    plain = list("ab \t\n1_é€∂λ") + ["\u2029", "\ufeff"]

    def expected(pieces: list[str]) -> str:
        out = "".join("" if p in escapes else p for p in pieces)
        out = out.replace("\r\n", "\n").replace("\r", "\n")
        return "".join("\ufffd" if ch in controls else ch for ch in out)

    rng = random.Random(7)
    for n in range(3000):
        kinds = [plain] if n % 2 else [plain, sorted(controls), escapes, ["\r", "\r\n"]]
        pieces = [rng.choice(rng.choice(kinds)) for _ in range(rng.randrange(0, 30))]
        assert display_text("".join(pieces)) == expected(pieces), pieces


def test_truncate_text_counts_what_it_removed():
    text = "".join(f"line {i}: ü\n" for i in range(10_000))
    cut = truncate_text(text, 1000)
    n = int(re.search(r"\[\.\.\. truncated (\d+) bytes\]", cut)[1])
    kept = cut.replace(f"[... truncated {n} bytes]\n", "").encode()
    assert len(kept) + n == len(text.encode())
    assert len(cut.encode()) < 1100
    assert cut.startswith("line 0: ü\n") and cut.endswith("line 9999: ü\n")
    assert truncate_text(cut, 1100) == cut  # idempotent
    assert truncate_text("short", 1000) == "short"
    assert truncate_text("a\udcff", 10) == "a?"  # surrogateescape'd byte: still UTF-8


# --------------------------------------------------------------- Gradescope

GS_TOP = {"score", "execution_time", "output", "output_format", "visibility",
          "stdout_visibility", "extra_data", "tests", "leaderboard"}
GS_TEST = {"score", "max_score", "status", "name", "number", "output", "output_format",
           "tags", "visibility", "extra_data"}


@pytest.mark.parametrize("student", ["s001", "s002", "s003", "s004", UNUSUAL_ID])
def test_results_json_is_gradescope_format(written, student):
    data = json.loads(read(student_folder(written, student) / "results.json"))
    report = json.loads(read(student_folder(written, student) / "report.json"))
    assert set(data) <= GS_TOP
    assert data["score"] == report["score"]
    assert data["output_format"] == "text" and data["visibility"] == "visible"
    assert len(data["tests"]) == len(report["tests"])
    for gs, ours in zip(data["tests"], report["tests"], strict=True):
        assert set(gs) <= GS_TEST
        assert {"name", "score", "max_score", "status", "output", "visibility",
                "output_format"} <= set(gs)
        assert gs["status"] in ("passed", "failed")
        assert gs["status"] == ("passed" if ours["status"] == "passed" else "failed")
        assert (gs["name"], gs["score"], gs["max_score"]) == (
            ours["name"], ours["score"], ours["max_score"])
        assert gs["visibility"] == "visible" and gs["output_format"] == "text"
        assert isinstance(gs["output"], str)
        if ours["status"] in ("error", "timeout"):
            assert gs["output"].startswith("[")
    assert sum(t["score"] for t in data["tests"]) == pytest.approx(data["score"])


def test_results_json_names_misconception_and_hint(written):
    tests = json.loads(read(student_folder(written, "s002") / "results.json"))["tests"]
    dw = next(t for t in tests if t["name"] == "Affine: dW (4-D input)")
    assert "affine-dw-transposed" in dw["output"] and HINTS["affine-dw-transposed"] in dw["output"]
    assert "dW must be x.T @ dout" in dw["output"]


# ---------------------------------------------------------------- student HTML

def test_student_report_order_and_content(written):
    html = read(student_folder(written, "s002") / "report.html")
    order = [html.index(s) for s in (
        "11.67", "isolation: full", "Fix first", "TwoLayerNet: gradient vs numerical", "Score per part",
        "What to fix: 3 causes, 3 checks (4.33 points)", "3. Affine: dW (4-D input)", "Passed tests (10)",
        "What your submission printed")]
    assert order == sorted(order)
    assert "11.6667" not in html  # points for people: two decimals
    assert "<pre>Affine: dW is wrong.\n  largest relative error" in html
    assert HINTS["affine-dw-transposed"].replace("'", "&#39;") in html
    assert "softmax-missing-batch-division" in html
    assert re.search(r"<details>\s*<summary>Show the 10 passed tests", html)
    md = read(student_folder(written, "s002") / "report.md")
    assert "**Score: 11.67 / 16 (73%)**" in md
    assert "```text\nAffine: dW is wrong." in md


def test_error_and_timeout_are_labelled(written):
    html = read(student_folder(written, "s003") / "report.html")
    assert '<span class="badge error">error</span>' in html
    assert '<span class="badge timeout">timed out</span>' in html
    assert "TypeError: unsupported operand type(s)" in html
    assert "two_layer_net.py: killed after 10 s" in html
    assert "isolation: partial (no network namespace; rlimits only)" in html


def test_full_marks_report(written):
    html = read(student_folder(written, "s001") / "report.html")
    assert "All 13 tests passed." in html and "What to fix: 0 causes" in html
    assert "Fix first" not in html and "Likely misconception" not in html


# ---------------------------------------------------------------- class report

def test_class_report_has_pass_rates_and_misconception_counts(written):
    html = read(written / "class.html")
    md = read(written / "class.md")
    for text in (html, md):
        # 5 students; s002 failed softmax and s002/s003 failed TwoLayerNet's numeric check
        assert "4 / 5 (80%)" in text
        assert "3 / 5 (60%)" in text
        assert "5 / 5 (100%)" in text
        assert "isolation: full" in text and "isolation: partial" in text
    # per part, each known mistake with its students, linked to their reports
    rows = re.findall(r"^\| \*\*(\S+)\*\*.* \| (\d+) \| (.*) \|$", md, re.M)
    assert {mid: (n, who) for mid, n, who in rows} == {
        "softmax-missing-batch-division": ("1", f"[s002]({student_link('s002')})"),
        "affine-dw-transposed": ("1", f"[s002]({student_link('s002')})"),
        "mul-swapped-gradients": ("1", f"[{md_inline(UNUSUAL_ID)}]({student_link(UNUSUAL_ID)})")}
    assert md.index("### MulLayer") < md.index("### Affine") < md.index("### SoftmaxWithLoss")
    assert f'<a href="{student_link("s002")}">s002</a>' in html
    # the per-test line of a specific test, with its failure counts
    line = next(x for x in md.splitlines() if x.startswith("| TwoLayerNet | TwoLayerNet: gradient vs numerical"))
    assert "| 3 / 5 (60%) | 1 | 0 | 1 |" in line
    assert "./students/s001/report.html" in html and "./students/s001/report.html" in md


def test_class_misconceptions_sorted_by_students(tmp_path):
    results = [make(f"s{i}", {"Affine: dW (4-D input)": (0.0, "failed", "x", "a-mis")})
               for i in range(3)] + [make("s9", {"Sigmoid: dx": (0.0, "failed", "y", "b-mis")})]
    results.append(make("s8", {"Affine: dW (4-D input)": (0.0, "failed", "x", "c-mis")}))
    write_class_report(results, PARTS, tmp_path)
    md = read(tmp_path / "class.md")
    affine = md[md.index("### Affine"):]
    assert affine.index("| **a-mis** | 3 |") < affine.index("| **c-mis** | 1 |")
    assert md.index("### Sigmoid") < md.index("### Affine")  # parts in the assignment's order
    # the most failed check: the four students, their mistakes counted
    line = next(x for x in md.splitlines() if x.startswith("| Affine: dW (4-D input) |"))
    assert "| 4 / 5 (80%) | a-mis 3, c-mis 1 |" in line and f"[s8]({student_link('s8')})" in line


def test_class_report_with_no_students(tmp_path):
    write_class_report([], PARTS, tmp_path)
    assert "0 students graded" in read(tmp_path / "class.html")


# -------------------------------------------------------------------- terminal

def test_summary_table_and_line():
    """Compact: short part headers carrying the maximum, plain numbers, counts of issues."""
    results = everyone()
    console = Console(record=True, width=250, color_system=None)
    console.print(summary_table(results, PARTS, BACKPROP.labels()))
    lines = console.export_text().splitlines()
    names = next(line for line in lines if "score" in line).split()
    assert names == ["score", "Mul", "Add", "Relu", "Sig", "Affine", "Soft", "Net", "Shop"]
    maxima = next(line for line in lines if "student" in line).split()
    assert maxima[0] == "student" and maxima[1] == "/16" and maxima[-1] == "issues"
    text = "\n".join(lines)
    assert UNUSUAL_ID in text  # [b] is shown, not read as markup
    row = next(line for line in lines if "s002" in line)
    assert "11.67" in row.split() and "0.67" in row.split()
    assert "2 known mistakes" in row
    row = next(line for line in lines if "s003" in line)
    assert "1 error, 2 timed out" in row
    ids = [line.strip() for line in lines if line.strip().startswith(("s0", "zo"))]
    assert [i.split()[0] for i in ids] == sorted(r.student.split()[0] for r in results)
    assert summary_line(results) == (
        "5 students: mean 13.7/16, median 15, 1 with full marks,"
        " 2 with errors/timeouts")


def test_a_big_class_gets_one_row_per_part_and_the_students_to_look_at():
    """Thousands of rows help nobody in a terminal: per part, then who hit errors."""
    results = [make(f"s{i:03d}") for i in range(TABLE_ROWS)]
    results += [make("x-mistake", {"Affine: dW (4-D input)": (0.0, "failed", "x", "a-mis")}),
                make("x-broken", {"Sigmoid: dx": (0.0, "timeout", "y", None)})]
    console = Console(record=True, width=200, color_system=None)
    console.print(terminal_summary(results, PARTS))
    text = console.export_text()
    assert "s000" not in text and f"{len(results)} students" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert set(PARTS) <= set(rows)
    assert "a-mis (1 students)" in rows["Affine"] and "61 (98%)" in rows["Affine"]
    assert "errors or timeouts: x-broken" in text and "x-mistake" not in text
    small = Console(record=True, width=200, color_system=None)
    small.print(terminal_summary(results[:3], PARTS))
    assert "s002" in small.export_text()  # a section still gets one row per student


# ----------------------------------------------------------------- atomic_write

def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "out" / "report.json"
    atomic_write(target, "first")
    atomic_write(target, b"second \xff")
    assert target.read_bytes() == b"second \xff"
    assert os.listdir(target.parent) == ["report.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "grades.csv"
    atomic_write(target, "old\n")
    with pytest.raises(UnicodeEncodeError):
        atomic_write(target, "new \ud800")  # unencodable: fails before touching disk
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["grades.csv"]


def test_failure_after_the_temp_file_was_written_cleans_up(tmp_path):
    """os.replace onto a non-empty directory fails after the data went to the temp file."""
    blocker = tmp_path / "report.html"
    blocker.mkdir()
    (blocker / "keep").write_text("x")
    with pytest.raises(OSError):
        atomic_write(blocker, "x" * 100_000)
    assert sorted(os.listdir(tmp_path)) == ["report.html"]
    assert os.listdir(blocker) == ["keep"]


def test_nothing_graded(tmp_path):
    """A submission that could not be graded at all still gets readable files."""
    r = StudentResult("s7", notes=["no layers.py in the submission"])
    write_student(r, tmp_path / "s7")
    html = read(tmp_path / "s7" / "report.html")
    assert "No test was run." in html and "All 0 tests" not in html
    assert "no layers.py in the submission" in html
    assert json.loads(read(tmp_path / "s7" / "results.json"))["tests"] == []
    write_grades_csv([r], PARTS, tmp_path / "g.csv")
    assert read(tmp_path / "g.csv").splitlines()[1] == "s7,0,0," + ",".join("0" * len(PARTS))
    console = Console(record=True, width=200, color_system=None)
    console.print(summary_table([], PARTS))
    console.print(summary_table([r], PARTS))
    assert "s7" in console.export_text()
    assert summary_line([r]) == ("1 student: mean 0/0, median 0, 0 with full marks,"
                                 " 0 with errors/timeouts")


def test_slim_results_keep_scores_drop_text_and_share_equal_checks():
    """A class of thousands stays small in the grader: equal outcomes are one object."""
    def student(name: str, db_score: float) -> StudentResult:
        return StudentResult(name, [Check("Affine: dW", "Affine", 2.0, 2.0, "passed", "long feedback " * 99),
                                    Check("Affine: db", "Affine", db_score, 1.0, "failed" if not db_score else
                                          "passed", "why", "db-mean" if not db_score else None)],
                             notes=["a note"], output="printed " * 999)
    a, b, c = student("a", 1.0).slim(), student("b", 1.0).slim(), student("c", 0.0).slim()
    assert a.tests[0] is b.tests[0] is c.tests[0] and a.tests[1] is b.tests[1]
    assert c.tests[1] is not a.tests[1] and c.tests[1].misconception == "db-mean"
    assert (a.score, c.score, c.parts()) == (3.0, 2.0, {"Affine": {"score": 2.0, "max_score": 3.0}})
    assert not any(t.feedback for t in a.tests + c.tests) and a.output == "" and a.notes == []
