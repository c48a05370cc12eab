"""An assignment is a folder of data; the engine knows none of them by name.

``solutions/<name>/`` holds::

    assignment.toml     the manifest: title, the files students write, notebook, helpers
    *.py                the reference solution, with ``### BEGIN/END SOLUTION`` regions
    README.md, ...      anything else students get (a self-check, a helper module)
    hidden/             never released: the exercise declarations (``exercises.py`` or an
                        ``exercises/`` package defining ``EXERCISES``) and the hidden tests
                        (``test_*.py``, ``conftest.py``), run by pytest

The student release (``grader release NAME``) is generated from it: every file but the
manifest and ``hidden/``, each solution region turned into a stub.
"""
from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Annotated

import msgspec

MANIFEST = "assignment.toml"
HIDDEN = "hidden"
_FILE = r"^[A-Za-z_][\w]*(/[A-Za-z_][\w]*)*\.py$"


class AssignmentError(ValueError):
    """An assignment folder that cannot be used; the message names the file."""


_File = Annotated[str, msgspec.Meta(pattern=_FILE)]


class Manifest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: str
    files: list[_File]                                      # what students write, in import order
    notebook: str | None = None                             # default: <name>.ipynb
    helpers: list[_File] = msgspec.field(default_factory=list)  # given to students, imported by them


def module_name(file: str) -> str:
    """``common/helpers.py`` -> ``common.helpers``."""
    return file[: -len(".py")].replace("/", ".")


_lock = threading.Lock()


@dataclass(frozen=True, eq=False)
class Assignment:
    name: str
    folder: Path
    manifest: Manifest

    def __reduce__(self):
        """Sent to job processes as its folder: loaded there (declarations hold lambdas)."""
        return (Assignment.load, (self.folder,))

    @classmethod
    def load(cls, folder: Path) -> Assignment:
        folder = Path(folder).resolve()
        path = folder / MANIFEST
        try:
            spec = msgspec.toml.decode(path.read_bytes(), type=Manifest)
        except OSError as exc:
            raise AssignmentError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        except msgspec.DecodeError as exc:
            raise AssignmentError(f"{path}: {exc}") from None
        if not spec.files:
            raise AssignmentError(f"{path}: `files` must name at least one file students write")
        missing = [f for f in [*spec.files, *spec.helpers] if not (folder / f).is_file()]
        if missing:
            raise AssignmentError(f"{path}: {', '.join(missing)} not found in {folder}")
        return cls(folder.name, folder, spec)

    # -- what students write and get ------------------------------------------------------
    @property
    def title(self) -> str:
        return self.manifest.title

    @property
    def files(self) -> tuple[str, ...]:
        """The files a student hands in, in import order."""
        return tuple(self.manifest.files)

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(module_name(f) for f in self.files)

    @property
    def helpers(self) -> tuple[str, ...]:
        """Files students import but do not write: shipped to them, and read-only into the sandbox."""
        return tuple(self.manifest.helpers)

    @property
    def notebook(self) -> str:
        return self.manifest.notebook or f"{self.name}.ipynb"

    @property
    def hidden(self) -> Path:
        return self.folder / HIDDEN

    def sources(self) -> dict[str, str]:
        """The reference files (solution regions included), by file name."""
        return {f: (self.folder / f).read_text(encoding="utf-8") for f in self.files}

    def helper_sources(self) -> dict[str, str]:
        return {f: (self.folder / f).read_text(encoding="utf-8") for f in self.helpers}

    @cached_property
    def sibling_imports(self) -> dict[str, tuple[str, ...]]:
        """file -> the other student modules its reference imports (a notebook drops them)."""
        import ast

        modules = set(self.modules)
        found = {}
        for file, source in self.sources().items():
            tree = ast.parse(source, filename=file)
            names = [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 0
                     and n.module in modules]
            names += [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names
                      if a.name in modules]
            found[file] = tuple(dict.fromkeys(names))
        return found

    # -- what grading uses -----------------------------------------------------------------
    @cached_property
    def key(self) -> str:
        """A short private prefix for the modules loaded from this folder."""
        return "_grader_" + hashlib.sha256(str(self.folder).encode()).hexdigest()[:12]

    @cached_property
    def exercises(self) -> list:
        """The exercise declarations, in grading order (``EXERCISES`` in hidden/exercises)."""
        package = self.hidden / "exercises"
        path = package / "__init__.py" if package.is_dir() else self.hidden / "exercises.py"
        if not path.is_file():
            return []
        module = _load_module(f"{self.key}_exercises", path,
                              [str(package)] if package.is_dir() else None)
        found = getattr(module, "EXERCISES", None)
        if not isinstance(found, list | tuple):
            raise AssignmentError(f"{path}: define EXERCISES, the list of the assignment's exercises")
        parts = [e.part for e in found]
        if len(set(parts)) != len(parts):
            raise AssignmentError(f"{path}: two exercises share a part name ({parts})")
        return list(found)

    def part(self, name: str):
        """The exercise of part ``name``."""
        for exercise in self.exercises:
            if exercise.part == name:
                return exercise
        raise KeyError(f"{self.name} has no part {name!r} (its parts: {', '.join(self.parts)})")

    @property
    def parts(self) -> list[str]:
        return [e.part for e in self.exercises]

    @property
    def max_points(self) -> float:
        return sum(e.max_points for e in self.exercises)

    def labels(self) -> dict[str, str]:
        """part -> its short column header (declared with the exercise, else derived)."""
        from grader.reports import short_label

        return {e.part: getattr(e, "short", "") or short_label(e.part) for e in self.exercises}

    def targets(self) -> dict[str, tuple[str, str, float]]:
        """Class or function name -> (part, file, points): where each exercise lives."""
        found = {}
        for e in self.exercises:
            found[e.target] = (e.part, e.file, float(e.max_points))
        return found

    @cached_property
    def reference(self) -> dict[str, ModuleType]:
        """The reference modules (trusted, in the grader's process), by module name.

        Loaded under private names, so they never shadow or are shadowed by a student's
        ``layers`` or anything else; while one executes, its siblings resolve through their
        plain names, as they do in a student's folder.
        """
        files = [*self.helpers, *self.files]
        names = [module_name(f) for f in files]
        loaded: dict[str, ModuleType] = {}
        with _lock:
            saved = {n: sys.modules.get(n) for n in names}
            try:
                for file, name in zip(files, names, strict=True):
                    sys.modules.update(loaded)
                    loaded[name] = _load_module(f"{self.key}_reference.{name}", self.folder / file)
            finally:
                for name, module in saved.items():
                    if module is None:
                        sys.modules.pop(name, None)
                    else:
                        sys.modules[name] = module
        return loaded


def _load_module(name: str, path: Path, package: list[str] | None = None) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=package)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
