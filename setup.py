"""Packages of the wheel: the grader, and the course's assignments as ``grader.bundled``.

solutions/ ships inside the wheel as grader/bundled (a source checkout finds it at
solutions/), so a plain ``pip install`` can grade and ``grader init`` a course. Everything
else is in pyproject.toml.
"""
from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["grader", "grader.*"]), "grader.bundled"],
      package_dir={"grader.bundled": "solutions"})
