"""Load the reference solutions into the grader's own process (trusted code only).

The solutions are flat modules that import each other (``from layers import ...``),
as the students' files do. They are loaded under private names so they can never be
confused with, or shadowed by, a module called ``layers`` elsewhere.
"""
from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

from grader import paths

MODULES = ("layers", "two_layer_net", "buy_apple_orange")
_lock = threading.Lock()
_cache: dict[Path, dict[str, ModuleType]] = {}


def load(solutions: Path = paths.SOLUTIONS) -> dict[str, ModuleType]:
    """Return ``{"layers": module, "two_layer_net": module, ...}`` for ``solutions``."""
    solutions = Path(solutions).resolve()
    with _lock:
        if solutions not in _cache:
            _cache[solutions] = _load(solutions)
        return _cache[solutions]


def _load(folder: Path) -> dict[str, ModuleType]:
    prefix = f"_grader_reference_{len(_cache)}"
    loaded: dict[str, ModuleType] = {}
    saved = {name: sys.modules.get(name) for name in MODULES}
    try:
        for name in MODULES:
            spec = importlib.util.spec_from_file_location(f"{prefix}.{name}", folder / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            # while a module executes, its siblings resolve through their plain names
            sys.modules.update(loaded)
            spec.loader.exec_module(module)
            loaded[name] = module
            sys.modules[f"{prefix}.{name}"] = module
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return loaded
