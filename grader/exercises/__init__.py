"""The kinds of exercise an assignment declares its exercises with.

An assignment's ``hidden/exercises`` defines ``EXERCISES``, a list of these, in grading
order; each one holds everything about its exercise: the class or function graded, the
checked quantities and their points, the input cases, the known misconceptions.

- ``LayerExercise``: a layer class with forward/backward (``grader.exercises.layer``);
- ``NetworkExercise``: a network's ``gradient`` (``grader.exercises.network``);
- ``FunctionExercise``: a function returning a value and its gradients (``grader.exercises.function``).
"""
from grader.exercises.base import Case, Misconception, Quantity
from grader.exercises.function import FunctionExercise
from grader.exercises.layer import LayerExercise
from grader.exercises.network import NetworkExercise

__all__ = ["Case", "FunctionExercise", "LayerExercise", "Misconception", "NetworkExercise", "Quantity"]
