"""Hostile hand-ins made of their *shape*, not their code: notebooks that stall a parser,
special files where a notebook should be, folders too deep to walk, notebook JSON of the
wrong shape, ids that inject into spreadsheets, terminals and Markdown, names that clash
with the class's own files.

Each builder writes into a submissions folder (``root``) and returns the student id it
made (or the file name, for entries that are not students). Nothing here grades.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import mutants


def write(folder: Path, sources: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (sources or mutants.reference_sources()).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def notebook(cells: list[dict]) -> dict:
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def code_cell(source, **extra) -> dict:
    return {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": source, **extra}


def reference_cells() -> list[dict]:
    """The reference hand-in as notebook cells, one per file (``# file:`` first lines)."""
    return [code_cell(f"# file: {name}\n{text}") for name, text in mutants.reference_sources().items()
            if name != "layers.py"] + [code_cell(f"# file: layers.py\n{mutants.reference_sources()['layers.py']}")]


def stalling_notebook(root: Path, student: str = "stall-magic", spaces: int = 200_000) -> str:
    """The reference, plus a cell of layers.py that is not Python (so its magic lines are
    looked for) holding a magic line and a line of ``spaces`` spaces: a backtracking pattern
    over that line is quadratic (46 KB ~ 80 s, 1 MB hours)."""
    cells = reference_cells() + [code_cell("# file: layers.py\n%matplotlib inline\n" + " " * spaces + "?\n")]
    (root / f"{student}.ipynb").write_text(json.dumps(notebook(cells)), encoding="utf-8")
    return student


def class_cells_notebook(root: Path, student: str = "many-class-cells", megabytes: int = 10) -> str:
    """The reference, then ``megabytes`` MiB of unmarked cells that each define classes (each
    one is parsed to find which file it belongs to)."""
    body = "".join(f"class Extra{i}:\n    def f(self, x):\n        return x * {i} + {i}  # padding padding\n"
                   for i in range(12))
    count = (megabytes << 20) // len(body)
    cells = reference_cells() + [code_cell(body.replace("Extra", f"Extra{n}_")) for n in range(count)]
    (root / f"{student}.ipynb").write_text(json.dumps(notebook(cells)), encoding="utf-8")
    return student


def special_files(root: Path) -> list[str]:
    """A FIFO named like a loose notebook (opening it blocks until a writer comes), and a
    character device (/dev/zero's numbers: reading it never ends) named like one too."""
    os.mkfifo(root / "fifo.ipynb")
    try:
        os.mknod(root / "zero.ipynb", 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:  # a device takes CAP_MKNOD: as a normal user, the FIFO alone
        return ["fifo.ipynb"]
    return ["fifo.ipynb", "zero.ipynb"]


def deep_chain(root: Path, student: str = "deep-chain", depth: int = 1200) -> str:
    """layers.py and buy_apple_orange.py at the top; two_layer_net.py at the bottom of a chain
    of ``depth`` folders (looking for it below recursed once per level)."""
    folder = root / student
    sources = mutants.reference_sources()
    write(folder, {k: v for k, v in sources.items() if k != "two_layer_net.py"})
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):  # mkdir/open relative to the last folder: no path grows, no recursion
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        made = os.open("two_layer_net.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(made, sources["two_layer_net.py"].encode())
        os.close(made)
    finally:
        os.close(fd)
    return student


def remove_deep(folder: Path) -> None:
    """Remove a folder chain too deep for shutil.rmtree (it recurses), from the bottom up."""
    chain = [folder]
    while (chain[-1] / "d").is_dir():
        os.chdir(chain[-1])  # keep paths short: every step is one level
        chain.append(Path(os.getcwd()) / "d")
    for level in reversed(chain):
        os.chdir(level)
        for name in os.listdir("."):
            if not os.path.isdir(name):
                os.unlink(name)
        os.chdir("..")
        os.rmdir(level.name)
    os.chdir("/")


MALFORMED = {  # student -> notebook JSON (text)
    "ints-in-source": json.dumps(notebook([code_cell([1, 2, 3])])),
    "source-a-dict": json.dumps(notebook([code_cell({"a": 1}, metadata=5)])),
    "cells-not-cells": json.dumps(notebook([5, "x", None, [code_cell("x = 1")]])),
    "worksheet-cells-five": json.dumps({"worksheets": [{"cells": 5}], "nbformat": 3}),
    "cells-five": json.dumps({"cells": 5, "nbformat": 4}),
    "nested-deep": "[" * 100_000 + "]" * 100_000,
    "int-too-long": '{"cells": [], "nbformat": ' + "9" * 5000 + "}",
}


def malformed_notebooks(root: Path) -> list[str]:
    """Loose notebooks whose JSON parses but is no notebook, or does not parse for depth."""
    for student, text in MALFORMED.items():
        (root / f"{student}.ipynb").write_text(text, encoding="utf-8")
    return list(MALFORMED)


# ids a spreadsheet would run as formulas; names a terminal or rich would interpret;
# ids GitHub's Markdown would turn into links
FORMULA_IDS = ("+SUM(1)", "-2+3", "@SUM(A1)", "=1+1")
TERMINAL_NAMES = ("\x1b[31mred\x1b[0m", "\x1b]0;owned\x07title", "\u009b31mcsi", "[bold red]markup", "[link=x]y",
                  "\u202eright-to-left")
LINK_IDS = ("www.example.com", "alice@example.com")


def injecting_names(root: Path) -> None:
    """An honest hand-in under each name above."""
    for name in (*FORMULA_IDS, *TERMINAL_NAMES, *LINK_IDS):
        write(root / name)


CLASHING = ("grades.csv", "class.md", "grader-errors.log", "students", "class.html")


def clashing_names(root: Path) -> None:
    """Honest hand-ins named like the class's own files: folders, and a loose notebook whose
    student id is ``class.html``."""
    for name in CLASHING[:-1]:
        write(root / name)
    (root / "class.html.ipynb").write_text(json.dumps(notebook(reference_cells())), encoding="utf-8")
