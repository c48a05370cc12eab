"""Stage 2 of the pipeline: run a submission in a sandboxed worker process.

``server.py`` and ``protocol.py`` run inside the sandbox and import nothing from the
grader; ``client.py`` is the grader's side (start, deadline, restart, proxies).
"""
from pathlib import Path

WORKER_DIR = Path(__file__).resolve().parent
