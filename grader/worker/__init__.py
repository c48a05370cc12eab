"""Stage 2 of the pipeline: run a submission in a sandboxed worker process.

``inside/`` (server and wire protocol) is what the sandbox mounts; it imports
nothing from the grader. ``client.py`` is the grader's side: start, deadline,
restart, proxies.
"""
from pathlib import Path

WORKER_DIR = Path(__file__).resolve().parent / "inside"
