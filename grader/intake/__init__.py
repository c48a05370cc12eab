"""Intake: find each student's hand-in (folders, .py files, notebooks) and stage a clean copy."""
from grader.intake.submission import Staged, Submission, discover, stage

__all__ = ["Staged", "Submission", "discover", "stage"]
