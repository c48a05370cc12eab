"""Turn graded results into files: per-student reports, grades.csv, a class report.

Layout written by the pipeline (``folder`` arguments are chosen by the caller)::

    REPORTS/grades.csv                          one row per student (write_grades_csv)
    REPORTS/class.html, class.md                class statistics (write_class_report)
    REPORTS/grader-errors.log                   the grader's own failures, if any
    REPORTS/students/<student>/report.json      StudentResult.to_json() (write_student)
    REPORTS/students/<student>/report.md        readable report (Markdown)
    REPORTS/students/<student>/report.html      readable report (standalone HTML, no JS)
    REPORTS/students/<student>/results.json     Gradescope autograder format

Student reports have a namespace of their own (``student_folder``): a student id is a
folder name in the submissions, so it may be anything a class-level file is called
(``grades.csv``, ``class.html``); and the folder's name *is* the id, for ``--resume`` too.

Everything is deterministic (same results -> same bytes), every file is written
atomically, and each per-student file stays under ``REPORT_CAP`` bytes however much a
submission printed: long output, feedback and notes are cut with a visible
``[... truncated N bytes]`` marker. The cut is applied once, to a copy of the result,
so report.json, report.md, report.html and results.json all show the same text, and
report.json is exactly that copy's ``to_json()``.

Text that comes from a submission (its output, exception messages quoted in feedback,
the student id) is HTML-escaped by Jinja2's autoescape in the HTML, escaped or fenced
in Markdown, and passed to rich as plain ``Text`` (never as markup).
"""
from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import statistics
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import jinja2

from grader import __version__, stages
from grader.causes import root_causes
from grader.results import NOT_CHECKED, STATUSES, StudentResult, TestResult, points

if TYPE_CHECKING:  # rich is imported lazily: only the terminal summary needs it
    from rich.table import Table

REPORT_CAP = 256 * 1024
"""Upper bound, in bytes, of every file ``write_student`` writes."""

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATUS_LABELS = {"passed": "passed", "failed": "failed", "error": "error",
                 "timeout": "timed out"}


# --------------------------------------------------------------------------- files

def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: os.umask is process-wide


def atomic_write(path: Path, data: str | bytes, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see the old file or the new one.

    ``str`` is encoded as UTF-8 before anything touches the disk, so unencodable text
    fails without side effects. The bytes go to a temporary file in the same folder,
    which is renamed over ``path`` (``os.replace`` is atomic on POSIX and Windows): a
    killed process leaves the old file or the new one, never half of one. ``durable``
    also fsyncs the file and the folder (against power loss); a batch writes its many
    files without and calls ``sync`` at checkpoints instead. On any error the temporary
    file is removed and ``path`` is untouched.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            if durable:
                f.flush()
                os.fsync(f.fileno())
                stages.count("fsync")
        # mkstemp creates 0600; give the file the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        _fsync_dir(path.parent)


def sync(folder: Path) -> None:
    """Make every write so far to ``folder``'s file system durable: one ``syncfs`` for a
    batch of non-durable ``atomic_write`` calls (``os.sync`` where there is none)."""
    with stages.timed("sync"):
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            os.sync()
            return
        try:
            import ctypes

            if ctypes.CDLL(None, use_errno=True).syncfs(fd) != 0:
                os.sync()
        except (AttributeError, OSError):  # no syncfs in this C library
            os.sync()
        finally:
            os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX only; a no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
        stages.count("fsync")
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------------ numbers

def fmt_points(value: float) -> str:
    """``10.0 -> "10"``, ``2.5 -> "2.5"``, ``1/3 -> "0.3333"``: same text everywhere."""
    v = points(value)
    if v == 0:
        return "0"  # also turns -0.0 into "0"
    if v == int(v):
        return str(int(v))
    return f"{v:.4f}".rstrip("0").rstrip(".")


@functools.lru_cache(maxsize=4096)  # a few distinct values, ~300 times a report
def fmt_score(value: float) -> str:
    """Points for people, to two decimals: ``11.6667 -> "11.67"``, ``2.5 -> "2.5"``. Reports a
    person reads use it; grades.csv and the JSON files keep the exact ``fmt_points``."""
    text = f"{points(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_stat(value: float) -> str:
    """A statistic for people, to one decimal: ``71.8182 -> "71.8"``, ``85.0 -> "85"``.
    A mean is a summary; a student's own points get ``fmt_score``."""
    text = f"{float(value):.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_percent(score: float, max_score: float) -> str:
    if max_score <= 0:
        return "–"
    return f"{100.0 * score / max_score:.0f}%"


def _ratio(score: float, max_score: float) -> float:
    return score / max_score if max_score > 0 else 0.0


# --------------------------------------------------------------------- truncation

_CUT_MARKER = "[... truncated {n} bytes]"


def truncate_text(text: str, limit: int) -> str:
    """Keep at most about ``limit`` UTF-8 bytes of ``text``: its head and its tail.

    The middle is replaced by ``[... truncated N bytes]`` (N counts the bytes removed).
    Cuts fall on line breaks when one is near, and never inside a character. Lone
    surrogates (from ``surrogateescape``-decoded output) become ``?`` so the result
    is always valid UTF-8. Text already within the limit comes back unchanged, so
    truncating twice (e.g. after ``--resume``) is a no-op.
    """
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return data.decode("utf-8")
    limit = max(limit, 0)
    head_len = limit * 3 // 4  # the start usually holds the first (real) error
    tail_len = limit - head_len  # the end holds the final traceback
    head = data[:head_len]
    newline = head.rfind(b"\n")
    if newline >= head_len // 2:
        head = head[: newline + 1]
    tail = data[len(data) - tail_len:] if tail_len else b""
    newline = tail.find(b"\n")
    if 0 <= newline < len(tail) // 2:
        tail = tail[newline + 1:]
    head_text = head.decode("utf-8", "ignore")
    tail_text = tail.decode("utf-8", "ignore")
    removed = len(data) - len(head_text.encode("utf-8")) - len(tail_text.encode("utf-8"))
    sep_before = "" if not head_text or head_text.endswith("\n") else "\n"
    sep_after = "\n" if tail_text else ""
    return f"{head_text}{sep_before}{_CUT_MARKER.format(n=removed)}{sep_after}{tail_text}"


def _fair_shares(sizes: Sequence[int], total: int, floor: int) -> list[int]:
    """Split ``total`` bytes among items so short ones keep everything (water-filling)."""
    shares = [0] * len(sizes)
    remaining = total
    order = sorted(range(len(sizes)), key=lambda i: (sizes[i], i))
    for k, i in enumerate(order):
        fair = max(floor, remaining // (len(order) - k))
        shares[i] = min(sizes[i], fair)
        remaining = max(0, remaining - shares[i])
    return shares


@dataclass(frozen=True)
class _Budget:
    output: int = 64 * 1024  # what the submission printed
    feedback: int = 96 * 1024  # all tests' feedback together
    notes: int = 8 * 1024  # all submission-level notes together
    text: int = 512  # each name, part, misconception id, isolation line
    student: int = 512  # the student id: never cut in practice (ids are at most 100 characters)

    def scaled(self, factor: float) -> _Budget:
        return _Budget(*(max(64, int(v * factor)) for v in (self.output, self.feedback, self.notes, self.text)),
                       self.student)


def cap_result(result: StudentResult, budget: _Budget | None = None) -> StudentResult:
    """A copy of ``result`` whose free text fits ``budget``; scores are unchanged."""
    b = budget or _Budget()

    def short(s: str | None, limit: int) -> str | None:
        return None if s is None else truncate_text(s, limit)

    fb_sizes = [len(t.feedback.encode("utf-8", "replace")) for t in result.tests]
    fb_caps = _fair_shares(fb_sizes, b.feedback, floor=256)
    note_sizes = [len(n.encode("utf-8", "replace")) for n in result.notes]
    note_caps = _fair_shares(note_sizes, b.notes, floor=256)
    tests = [
        replace(t, name=short(t.name, b.text), part=short(t.part, b.text),
                feedback=truncate_text(t.feedback, cap),
                misconception=short(t.misconception, b.text))
        for t, cap in zip(result.tests, fb_caps, strict=True)
    ]
    return StudentResult(
        student=short(result.student, b.student),
        tests=tests,
        isolation=short(result.isolation, b.text),
        notes=[truncate_text(n, cap) for n, cap in zip(result.notes, note_caps, strict=True)],
        output=truncate_text(result.output, b.output),
    )


# ----------------------------------------------------------------- display helpers

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
# C0 and C1 controls (a terminal reads U+009B as CSI, like ESC [) and the bidi overrides
# that make a line read other than it is
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SUSPECT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # all the above


def display_text(text: str) -> str:
    """Text as a person should read it: no ANSI colour codes, no stray control bytes.

    ``\\r\\n`` and lone ``\\r`` (progress bars) become newlines; other control
    characters become U+FFFD so they are visible but harmless.
    """
    if not _SUSPECT.search(text):  # most text, ~400 times a report: one scan, no copies
        return text
    text = _ANSI.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("\ufffd", text)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~$@])")
_MD_LINE_START = re.compile(r"^(\s*)(\d*)([#+\-=>.)])")
_MD_AUTOLINK = re.compile(r"(?i)(?<=www)\.|(?<=[a-z0-9+.-]):(?=//)")


def md_inline(text: object) -> str:
    """Escape text for Markdown prose or table cells (CommonMark backslash escapes).

    Escapes what could start emphasis, code, links, raw HTML, entities, table cells or
    maths, plus a block marker (``#``, ``-``, ``1.``) at the start, and what GitHub's
    Markdown turns into a link on its own (``www.x``, ``a@b.c``, ``scheme://``); the rest
    stays readable in the raw file.
    """
    s = display_text(str(text)).replace("\n", " ").replace("\t", " ")
    s = _MD_SPECIAL.sub(r"\\\1", s)
    s = _MD_AUTOLINK.sub(lambda m: "\\" + m[0], s)
    return _MD_LINE_START.sub(lambda m: f"{m[1]}{m[2]}\\{m[3]}", s)


def md_fence(text: str) -> str:
    """A fenced code block that ``text`` cannot break out of."""
    body = display_text(text).rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


STUDENTS = "students"
"""The folder of REPORTS that holds one folder per student, named by the student id."""


def student_folder(out: Path, student: str) -> Path:
    """Where ``student``'s reports are in the reports folder ``out``."""
    return Path(out) / STUDENTS / student


def student_link(student: str) -> str:
    """Relative link from the class report to a student's report.html."""
    return f"./{STUDENTS}/" + quote(student, safe="") + "/report.html"


def _env() -> jinja2.Environment:
    global _ENV
    if _ENV is None:
        _ENV = _Views(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",),
                                                default_for_string=True, default=False),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            bytecode_cache=_bytecode_cache(),
        )
        _ENV.filters.update(pts=fmt_score, stat=fmt_stat, md=md_inline, fence=md_fence)
    return _ENV


_ENV: jinja2.Environment | None = None


class _Views(jinja2.Environment):
    """The templates read the views (plain dicts) as ``t.name``: jinja tries the attribute
    first, raising and catching an AttributeError each time (~800 times a report). A dict
    key comes first here; anything else is looked up as jinja does."""

    def getattr(self, obj, attribute):
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (compiling them costs ~0.1 s of every start):
    jinja's own per-user cache folder, which it creates private and checks is ours."""
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):  # no usable temp folder: compile every run, as before
        return None


def warm_templates() -> None:
    """Load (on a first run: compile, ~0.2 s) the report templates in a background thread:
    started before the canary, it runs while the grading thread waits on the sandbox."""
    env = _env()  # made here: one environment, not one per thread

    def load() -> None:
        for name in ("student.md", "student.html", "class.md", "class.html"):
            try:
                env.get_template(name)
            except jinja2.TemplateError:  # the real render says so, in the grading thread
                pass

    threading.Thread(target=load, name="warm-templates", daemon=True).start()


def _render(template: str, **context: object) -> str:
    return _env().get_template(template).render(version=__version__, **context)


def _state(score: float, max_score: float) -> str:
    if max_score > 0 and points(score) >= points(max_score):
        return "full"
    return "zero" if score <= 0 else "partial"


# ------------------------------------------------------------------ student report

def _test_view(t: TestResult, number: str, hints: Mapping[str, str]) -> dict:
    return {
        "number": number,
        "name": display_text(t.name),
        "part": display_text(t.part),
        "score": t.score,
        "max_score": t.max_score,
        "status": t.status,
        "label": STATUS_LABELS.get(t.status, t.status),
        "feedback": display_text(t.feedback).rstrip("\n"),
        "misconception": t.misconception and display_text(t.misconception),
        "hint": display_text(hints[t.misconception]) if t.misconception in hints else "",
    }


def _numbers(result: StudentResult) -> list[str]:
    """Gradescope-style test numbers: part index . test index within the part."""
    part_index: dict[str, int] = {}
    within: dict[str, int] = {}
    numbers = []
    for t in result.tests:
        p = part_index.setdefault(t.part, len(part_index) + 1)
        within[t.part] = within.get(t.part, 0) + 1
        numbers.append(f"{p}.{within[t.part]}")
    return numbers


_WORST = ("timeout", "error", "failed")


def _cause_views(result: StudentResult, tests: Sequence[dict], hints: Mapping[str, str]) -> list[dict]:
    """The failed checks by root cause (``causes``), costliest first: one card each."""
    names = [t["name"] for t in tests]
    views = []
    for cause in root_causes(result.tests):
        members = [tests[i] for i in cause.tests]
        lead = next((t for t in members if not t["feedback"].startswith(NOT_CHECKED)), members[0])
        status = next(s for s in (*_WORST, "passed") if any(t["status"] == s for t in members))
        views.append({
            "title": display_text(cause.title(names)),
            "reason": display_text(cause.reason),
            "misconception": lead["misconception"],
            "hint": lead["hint"],
            "lost": cause.lost,
            "status": status,
            "label": STATUS_LABELS.get(status, status),
            "tests": members,
            "lead": lead,
            "others": _other_messages(members, lead),
        })
    return views


def _other_messages(members: Sequence[dict], lead: dict) -> list[dict]:
    """What the cause's other checks say, each distinct message once with the checks saying it."""
    said: dict[str, list[dict]] = {}
    for t in members:
        if t is not lead and t["feedback"] != lead["feedback"]:
            said.setdefault(t["feedback"], []).append(t)
    return [{"feedback": text, "tests": tests} for text, tests in said.items()]


def _student_view(result: StudentResult, hints: Mapping[str, str]) -> dict:
    tests = [_test_view(t, n, hints) for t, n in zip(result.tests, _numbers(result), strict=True)]
    counts = {s: sum(t["status"] == s for t in tests) for s in STATUSES}
    misconceptions = []
    for mid in result.misconceptions():
        misconceptions.append({
            "id": display_text(mid),
            "hint": display_text(hints.get(mid, "")),
            "tests": [t["name"] for t in tests if t["misconception"] == display_text(mid)],
        })
    output = display_text(result.output).rstrip("\n")
    causes = _cause_views(result, tests, hints)
    return {
        "student": display_text(result.student),
        "score": result.score,
        "max_score": result.max_score,
        "percent": fmt_percent(result.score, result.max_score),
        "ratio": min(1.0, max(0.0, _ratio(result.score, result.max_score))),
        "state": _state(result.score, result.max_score),
        "isolation": display_text(result.isolation),
        "notes": [display_text(n).rstrip("\n") for n in result.notes],
        "parts": [
            {"name": display_text(name), "score": p["score"], "max_score": p["max_score"],
             "percent": fmt_percent(p["score"], p["max_score"]),
             "ratio": min(1.0, max(0.0, _ratio(p["score"], p["max_score"]))),
             "state": _state(p["score"], p["max_score"])}
            for name, p in result.parts().items()
        ],
        "counts": counts,
        "n_tests": len(tests),
        "problems": [t for t in tests if t["status"] != "passed"],
        "causes": causes,
        "lost": points(sum(c["lost"] for c in causes)),
        "passed": [t for t in tests if t["status"] == "passed"],
        "misconceptions": misconceptions,
        "output": output,
        "output_lines": output.count("\n") + 1 if output else 0,
        "output_truncated": "[... truncated " in output,
    }


def _dump_json(data: object) -> str:
    """Indented two levels deep (one test per line), compact below: as readable, and
    written by json's C encoder (``indent=`` takes a pure-Python one, ~10x slower)."""
    return _json_block(data, 0) + "\n"


def _json_block(value: object, depth: int) -> str:
    if depth >= 2 or not isinstance(value, dict | list) or not value:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    pad = "  " * (depth + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(str(k), ensure_ascii=False)}: {_json_block(v, depth + 1)}"
                 for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
    return "[\n" + ",\n".join(pad + _json_block(v, depth + 1) for v in value) + "\n" + "  " * depth + "]"


def render_student(result: StudentResult, hints: Mapping[str, str] | None = None,
                   cap: int = REPORT_CAP, title: str = "") -> dict[str, str]:
    """The per-student files, as text, each at most ``cap`` UTF-8 bytes: report.json (the
    instructor's record), report.md and report.html, and each integration's file
    (``grader.integrations``: Gradescope's results.json).

    The free text is cut to a budget; if escaping still makes a file too large (HTML
    turns ``<`` into four bytes, JSON a control byte into six) the budget is halved
    until every file fits. Deterministic: same result, same text.
    """
    from grader.integrations import student_outputs

    hints = dict(hints or {})
    budget = _Budget()
    files: dict[str, str] = {}
    for attempt in range(16):
        capped = cap_result(result, budget.scaled(0.5 ** attempt))
        view = _student_view(capped, hints)
        files = {
            "report.json": _dump_json(capped.to_json()),
            "report.md": _render("student.md", r=view, title=title),
            "report.html": _render("student.html", r=view, title=title),
        }
        files.update({name: _dump_json(make(capped, hints)) for name, make in student_outputs().items()})
        if all(len(text.encode("utf-8")) <= cap for text in files.values()):
            break
    return files


def write_student(result: StudentResult, folder: Path, *,
                  hints: Mapping[str, str] | None = None, title: str = "") -> None:
    """Write report.json, report.md, report.html and results.json into ``folder``.

    ``hints`` optionally maps misconception ids to a one-line explanation shown next
    to the id; without it the id is shown alone.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in render_student(result, hints, title=title).items():
        atomic_write(folder / name, text)


# ----------------------------------------------------------------------- grades.csv

def _columns(results: Sequence[StudentResult], parts: Sequence[str]) -> list[str]:
    """The given parts, then (sorted) any part a result has that was not listed."""
    known = list(dict.fromkeys(parts))
    extra = sorted({t.part for r in results for t in r.tests} - set(known))  # r.parts()'s names
    return known + extra


def _sorted(results: Sequence[StudentResult]) -> list[StudentResult]:
    return sorted(results, key=lambda r: r.student)


def write_grades_csv(results: Sequence[StudentResult], parts: Sequence[str], path: Path) -> None:
    """``student, score, max_score, <part>...``: one row per student, sorted by id.

    A part a student has no tests for holds 0. Parts not in ``parts`` get extra
    columns at the end rather than being dropped, so the part columns always add up
    to ``score``. Duplicate student ids raise ValueError (a gradebook import would
    silently keep one of them).
    """
    duplicates = sorted(s for s, n in Counter(r.student for r in results).items() if n > 1)
    if duplicates:
        raise ValueError(f"duplicate student ids: {', '.join(duplicates)}")
    columns = _columns(results, parts)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", *map(csv_text, columns)])
    for r in _sorted(results):
        got = r.parts()
        writer.writerow([csv_text(r.student), fmt_points(r.score), fmt_points(r.max_score),
                         *(fmt_points(got.get(p, {}).get("score", 0.0)) for p in columns)])
    atomic_write(Path(path), buf.getvalue())


_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_text(text: str) -> str:
    """A text cell a spreadsheet shows as text: one that would start a formula (``= + - @``,
    or a tab or line break before one) gets a leading ``'``, as OWASP advises. Numbers are
    written by ``fmt_points`` and never pass through here."""
    return f"'{text}" if text.startswith(_FORMULA) else text


# --------------------------------------------------------------------- class report

def _problem_count(r: StudentResult, statuses: tuple[str, ...] = ("error", "timeout")) -> int:
    return sum(t.status in statuses for t in r.tests)


def _isolation_lines(results: Sequence[StudentResult]) -> list[dict]:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.isolation] = counts.get(r.isolation, 0) + 1
    return [{"text": display_text(k), "count": v}
            for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _distribution(results: Sequence[StudentResult]) -> list[dict]:
    """Students per 10% band of their own maximum; 100% is a band of its own."""
    bands = [{"label": f"{10 * i}–{10 * i + 9}%", "count": 0} for i in range(10)]
    bands.append({"label": "100%", "count": 0})
    for r in results:
        ratio = _ratio(r.score, r.max_score)
        if r.max_score > 0 and points(r.score) >= points(r.max_score):
            bands[10]["count"] += 1
        else:
            bands[min(9, max(0, int(ratio * 10 + 1e-9)))]["count"] += 1
    top = max((b["count"] for b in bands), default=0)
    for b in bands:
        b["ratio"] = b["count"] / top if top else 0.0
    return list(reversed(bands))  # best band first


def _test_stats(results: Sequence[StudentResult], columns: Sequence[str]) -> list[dict]:
    stats: dict[tuple[str, str], dict] = {}
    for r in _sorted(results):
        for t in r.tests:
            s = stats.get((t.part, t.name))
            if s is None:
                s = stats[(t.part, t.name)] = {"part": display_text(t.part), "name": display_text(t.name),
                                               "n": 0, "score": 0.0, "max_score": 0.0, **{k: 0 for k in STATUSES}}
            s["n"] += 1
            s[t.status] = s.get(t.status, 0) + 1
            s["score"] += t.score
            s["max_score"] += t.max_score
    order = {p: i for i, p in enumerate(columns)}
    first_seen = {key: i for i, key in enumerate(stats)}
    rows = []
    for key in sorted(stats, key=lambda k: (order.get(k[0], len(order)), first_seen[k])):
        s = stats[key]
        s["rate"] = s["passed"] / s["n"]
        s["rate_text"] = f"{100 * s['rate']:.0f}%"
        s["mean_score"] = points(s["score"] / s["n"])
        s["mean_max"] = points(s["max_score"] / s["n"])
        rows.append(s)
    return rows


def _student_refs(students: Sequence[str]) -> list[dict]:
    return [{"student": display_text(s), "link": student_link(s)} for s in sorted(set(students))]


def _misconceptions_by_part(results: Sequence[StudentResult], columns: Sequence[str],
                            hints: Mapping[str, str]) -> list[dict]:
    """Per part, the known mistakes found and who made them (links to their reports):
    what to go over in the lecture, and whom to talk to."""
    found: dict[str, dict[str, list[str]]] = {}
    for r in results:
        for t in r.tests:
            if t.misconception:
                found.setdefault(t.part, {}).setdefault(t.misconception, []).append(r.student)
    order = {p: i for i, p in enumerate(columns)}
    view = []
    for part in sorted(found, key=lambda p: (order.get(p, len(order)), p)):
        rows = [{"id": display_text(mid), "hint": display_text(hints.get(mid, "")),
                 "students": _student_refs(who), "n": len(set(who))}
                for mid, who in found[part].items()]
        rows.sort(key=lambda row: (-row["n"], row["id"]))
        view.append({"part": display_text(part), "rows": rows})
    return view


def _most_failed(results: Sequence[StudentResult], columns: Sequence[str], top: int = 10) -> list[dict]:
    """The checks most students did not pass, with those students and the known mistakes
    among them. Checks of one part failed by exactly the same students are one row (a net's
    W1, b1, W2, b2 usually fail together)."""
    failed: dict[tuple[str, str], set[str]] = {}
    mistakes: dict[tuple[str, str], Counter] = {}
    total: Counter = Counter()
    for r in results:
        for t in r.tests:
            total[(t.part, t.name)] += 1
            if t.status != "passed":
                failed.setdefault((t.part, t.name), set()).add(r.student)
                if t.misconception:
                    mistakes.setdefault((t.part, t.name), Counter())[t.misconception] += 1
    rows: dict[tuple[str, frozenset], dict] = {}
    for (part, name), who in failed.items():
        row = rows.setdefault((part, frozenset(who)), {"part": part, "names": [], "who": who,
                                                       "of": total[(part, name)], "mistakes": Counter()})
        row["names"].append(name)
        row["mistakes"] |= mistakes.get((part, name), Counter())  # the same students: the most of each
    order = {p: i for i, p in enumerate(columns)}
    ranked = sorted(rows.values(), key=lambda row: (-len(row["who"]), order.get(row["part"], len(order)),
                                                    row["names"][0]))
    return [{"part": display_text(row["part"]), "names": [display_text(n) for n in row["names"]],
             "n": len(row["who"]), "of": row["of"], "rate_text": fmt_percent(len(row["who"]), row["of"]),
             "mistakes": [{"id": display_text(mid), "n": n} for mid, n in row["mistakes"].most_common(3)],
             "students": _student_refs(row["who"])}
            for row in ranked[:top]]


def _part_stats(results: Sequence[StudentResult], columns: Sequence[str]) -> list[dict]:
    """Per part: mean points, mean maximum, students with full marks."""
    per_student = [r.parts() for r in results]
    rows = []
    for p in columns:
        got = [parts.get(p, {"score": 0.0, "max_score": 0.0}) for parts in per_student]
        mean = points(statistics.fmean(g["score"] for g in got)) if got else 0.0
        mean_max = points(statistics.fmean(g["max_score"] for g in got)) if got else 0.0
        full = sum(g["max_score"] > 0 and g["score"] >= g["max_score"] for g in got)
        rows.append({"name": display_text(p), "mean": mean, "max_score": mean_max,
                     "percent": fmt_percent(mean, mean_max),
                     "ratio": min(1.0, max(0.0, _ratio(mean, mean_max))),
                     "full": full, "n": len(got)})
    return rows


def _class_row(r: StudentResult, columns: Sequence[str]) -> dict:
    """One student's row of the class report (each sum made once: a class may be 10,000)."""
    score, top, got = r.score, r.max_score, r.parts()
    return {
        "student": display_text(r.student), "link": student_link(r.student),
        "score": score, "max_score": top,
        "percent": fmt_percent(score, top),
        "state": _state(score, top),
        "parts": [got.get(p, {}).get("score", 0.0) for p in columns],
        "errors": _problem_count(r, ("error",)), "timeouts": _problem_count(r, ("timeout",)),
        "misconceptions": [display_text(m) for m in r.misconceptions()],
    }


def _class_view(results: Sequence[StudentResult], parts: Sequence[str],
                hints: Mapping[str, str]) -> dict:
    columns = _columns(results, parts)
    ordered = _sorted(results)
    scores = [r.score for r in ordered]
    maxima = sorted({r.max_score for r in ordered})
    part_rows = _part_stats(ordered, columns)
    students = [_class_row(r, columns) for r in ordered]
    return {
        "n": len(ordered),
        "summary": summary_line(ordered),
        "mean": points(statistics.fmean(scores)) if scores else 0.0,
        "median": points(statistics.median(scores)) if scores else 0.0,
        "min": min(scores, default=0.0),
        "max": max(scores, default=0.0),
        "max_score": maxima[-1] if maxima else 0.0,
        "mixed_max": len(maxima) > 1,
        "full": sum(_state(r.score, r.max_score) == "full" for r in ordered),
        "with_problems": sum(_problem_count(r) > 0 for r in ordered),
        "isolation": _isolation_lines(ordered),
        "distribution": _distribution(ordered),
        "parts": part_rows,
        "columns": [display_text(c) for c in columns],
        "tests": _test_stats(ordered, columns),
        "by_part": _misconceptions_by_part(ordered, columns, hints),
        "most_failed": _most_failed(ordered, columns),
        "students": students,
    }


def write_class_report(results: Sequence[StudentResult], parts: Sequence[str], folder: Path,
                       *, hints: Mapping[str, str] | None = None, title: str = "") -> None:
    """Write class.html and class.md into ``folder``.

    Links point to ``<folder>/students/<student>/report.html`` (student ids URL-quoted).
    """
    view = _class_view(results, parts, dict(hints or {}))
    folder = Path(folder)
    atomic_write(folder / "class.md", _render("class.md", c=view, title=title))
    atomic_write(folder / "class.html", _render("class.html", c=view, title=title))


# ------------------------------------------------------------------------ terminal

def summary_table(results: Sequence[StudentResult], parts: Sequence[str],
                  labels: Mapping[str, str] | None = None) -> Table:
    """One row per student (sorted by id): score/max, each part's points, misconceptions.

    Cells are ``rich.text.Text``, never markup strings, so an id like ``[red]x`` is
    shown as typed.
    """
    from rich.table import Table
    from rich.text import Text

    columns = _columns(results, parts)
    per_student = [r.parts() for r in results]
    maxima = {p: max((got.get(p, {}).get("max_score", 0) for got in per_student), default=0)
              for p in columns}
    total = max((r.max_score for r in results), default=0)
    from rich import box

    table = Table(title="Grades", title_justify="left", show_lines=False, box=box.SIMPLE_HEAD,
                  padding=(0, 1))
    table.add_column("student", overflow="fold", min_width=12)
    table.add_column(f"score\n/{fmt_score(total)}", justify="right", no_wrap=True, min_width=5)
    for p in columns:  # short headers with the maximum, so 8 parts fit an 80-column terminal
        header = (labels or {}).get(p) or short_label(p)
        table.add_column(Text(f"{header}\n/{fmt_score(maxima[p])}"), justify="right", no_wrap=True,
                         min_width=len(header))
    table.add_column("issues", overflow="fold")
    style = {"full": "green", "partial": "yellow", "zero": "red"}
    for r in _sorted(results):
        got = r.parts()
        cells = [Text(display_text(r.student)),
                 Text(fmt_score(r.score), style=style[_state(r.score, r.max_score)])]
        for p in columns:
            if p in got:
                s, m = got[p]["score"], got[p]["max_score"]
                cells.append(Text(fmt_score(s), style=style[_state(s, m)]))
            else:
                cells.append(Text("–", style="dim"))
        problems = [f"{n} {STATUS_LABELS[s]}{'s' * (s == 'error' and n != 1)}" for s in ("error", "timeout")
                    if (n := _problem_count(r, (s,)))]
        mistakes = len(r.misconceptions())
        text = Text(f"{mistakes} known mistake{'s' * (mistakes != 1)}" if mistakes else "")
        if problems:
            text.append(("; " if text else "") + ", ".join(problems), style="bold red")
        cells.append(text)
        table.add_row(*cells)
    return table


TABLE_ROWS = 60  # above this, the terminal gets the class at a glance; class.html has every row


def terminal_summary(results: Sequence[StudentResult], parts: Sequence[str],
                     labels: Mapping[str, str] | None = None) -> Table:
    """The end-of-run table: one row per student for a section, per part for a big class."""
    return summary_table(results, parts, labels) if len(results) <= TABLE_ROWS else parts_table(results, parts)


def parts_table(results: Sequence[StudentResult], parts: Sequence[str]) -> Table:
    """One row per part: mean points, full marks, the commonest known mistake; then the
    students whose grading hit errors or timeouts (at most ten), who need a look first."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    columns = _columns(results, parts)
    table = Table(title=f"Grades by part ({len(results)} students; every student in class.html)",
                  title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))
    for name, justify in (("part", "left"), ("mean", "right"), ("full marks", "right"),
                          ("commonest known mistake", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    mistakes: dict[str, Counter] = {p: Counter() for p in columns}
    for r in results:
        for part, mid in {(t.part, t.misconception) for t in r.tests if t.misconception}:
            mistakes.setdefault(part, Counter())[mid] += 1
    for row, part in zip(_part_stats(results, columns), columns, strict=True):
        common = mistakes[part].most_common(1)
        table.add_row(Text(row["name"]), f"{fmt_stat(row['mean'])}/{fmt_score(row['max_score'])}",
                      f"{row['full']} ({fmt_percent(row['full'], row['n'])})",
                      Text(f"{common[0][0]} ({common[0][1]} students)" if common else ""))
    troubled = [r for r in _sorted(results) if _problem_count(r, ("error", "timeout"))]
    if troubled:
        shown = ", ".join(r.student for r in troubled[:10])
        more = f" and {len(troubled) - 10} more" if len(troubled) > 10 else ""
        table.caption = f"errors or timeouts: {shown}{more}"
        table.caption_justify = "left"
    return table


def short_label(part: str) -> str:
    """A column header for narrow tables when the exercise declares none: "XyzLayer" -> "Xyz"."""
    return part.removesuffix("Layer")[:8]


def summary_line(results: Sequence[StudentResult]) -> str:
    """``12 students: mean 7.5/10, median 8, 3 with full marks, 2 with errors/timeouts``."""
    if not results:
        return "0 students graded"
    scores = [r.score for r in results]
    maxima = {r.max_score for r in results}
    mean = fmt_stat(statistics.fmean(scores))
    if len(maxima) == 1:
        mean += f"/{fmt_score(next(iter(maxima)))}"
    full = sum(_state(r.score, r.max_score) == "full" for r in results)
    problems = sum(_problem_count(r) > 0 for r in results)
    noun = "student" if len(results) == 1 else "students"
    return (f"{len(results)} {noun}: mean {mean}, median {fmt_stat(statistics.median(scores))},"
            f" {full} with full marks, {problems} with errors/timeouts")
