"""Autograder for the backpropagation chapter of *Deep Learning from Scratch*.

The pipeline, one module per stage: ``submission`` (find and read a student's files)
-> ``worker`` (run them in a sandboxed process) -> ``checks`` (compare with the
reference and with numerical gradients) -> ``scoring`` -> ``reports``. Exercise
content lives in ``grader.exercises``; the CLI in ``grader.cli`` only wires it up.
"""

__version__ = "0.1.0"
