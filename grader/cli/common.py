"""What every command shares: exit codes, refusals, and how the course is found."""
from __future__ import annotations

import functools
from pathlib import Path

import click

OK, USAGE, GRADER_FAILURES, CANNOT_GRADE = 0, 2, 3, 4

EPILOG = """\b
Exit codes: 0 every student graded; 2 bad usage or configuration; 3 the grader failed
on some students (listed); 4 this machine cannot grade (the canary failed)."""


class Refusal(click.ClickException):
    """The command cannot do its job: say why and how to fix it, with a telling exit code."""

    def __init__(self, message: str, code: int = USAGE):
        super().__init__(message)
        self.exit_code = code


def course_options(func):
    """--course and --config, resolved into a ``Course`` passed as ``course``."""
    @click.option("--course", "course_folder", type=click.Path(file_okay=False, path_type=Path),
                  help="The course folder [default: found from the working directory, else the bundled one].")
    @click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
                  help="Course settings (TOML: seed, sandbox, limits) [default: the course's course.toml].")
    @functools.wraps(func)
    def wrapper(course_folder: Path | None, config: Path | None, **kwargs):
        from grader import course

        if config is not None and not config.is_file():
            raise click.BadParameter(f"{config} does not exist", param_hint="--config")
        try:
            kwargs["course"] = course.find(course_folder, config)
        except ValueError as exc:
            raise Refusal(str(exc)) from None
        return func(**kwargs)

    return wrapper


def assignment_of(course, name: str | None):
    try:
        return course.assignment(name)
    except ValueError as exc:
        raise Refusal(str(exc)) from None
