"""Where the project's own files live, so every stage finds them the same way."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions" / "backprop"
ASSIGNMENT = ROOT / "assignments" / "backprop"
EXAMPLE_CLASS = ROOT / "examples" / "class"
