"""``grader gradescope ...``: the Gradescope autograder, built from a course and run inside it."""
from __future__ import annotations

from pathlib import Path

import click

from grader.cli.common import CANNOT_GRADE, Refusal, assignment_of, course_options


@click.group("gradescope")
def gradescope() -> None:
    """Gradescope courses: the autograder zip, and what runs in it per submission.

    \b
    Example:
        grader gradescope build --assignment backprop --out autograder.zip
    """


@gradescope.command()
@click.option("--assignment", help="The assignment [default: the course's only or default one].")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The zip to write.")
@click.option("--visibility", type=click.Choice(["visible", "after_due_date", "after_published", "hidden"]),
              help="Who sees the results, when [default: the course's [gradescope] visibility, else visible].")
@course_options
def build(assignment: str | None, out: Path, visibility: str | None, course) -> None:
    """Write the autograder zip Gradescope runs (setup.sh, run_autograder, the course inside).

    \b
    Example:
        grader gradescope build --assignment backprop --out autograder.zip
    """
    from grader.integrations.autograder import build as make

    chosen = assignment_of(course, assignment)
    try:
        path = make(course, chosen.name, out, visibility)
    except (ValueError, OSError) as exc:
        raise Refusal(str(exc)) from None
    click.echo(f"wrote {path}: upload it as the assignment's autograder on Gradescope")


@gradescope.command()
@click.option("--assignment", help="The assignment [default: the course's only or default one].")
@click.option("--submission", default="/autograder/submission", show_default=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path), help="The student's files.")
@click.option("--results", default="/autograder/results/results.json", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Where Gradescope reads the results.")
@course_options
def run(assignment: str | None, submission: Path, results: Path, course) -> None:
    """Grade one Gradescope submission into results.json (run_autograder calls this).

    \b
    Example:
        grader gradescope run --course /autograder/source/course
    """
    from grader import batch
    from grader.hidden.session import HiddenTestsError
    from grader.integrations.autograder import run as grade_one

    chosen = assignment_of(course, assignment)
    try:
        data = grade_one(course, chosen.name, submission, results)
    except HiddenTestsError as exc:
        raise Refusal(str(exc)) from None
    except batch.CannotGrade as exc:
        raise Refusal(f"this autograder cannot grade here: nothing was written.\n{exc}", CANNOT_GRADE) from None
    click.echo(f"{results}: {data['score']:g} points ({len(data['tests'])} tests, "
               f"visibility {data['visibility']})")
