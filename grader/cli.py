"""The ``grader`` command line: a thin shell over the pipeline's modules."""
from __future__ import annotations

from pathlib import Path

import click

from grader import paths


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="backprop-grader")
def main() -> None:
    """Autograder for the backpropagation chapter of Deep Learning from Scratch."""


@main.command()
@click.option("--source", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=paths.SOLUTIONS, show_default=True, help="Reference solutions.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=paths.ASSIGNMENT, show_default=True, help="Student release folder.")
def release(source: Path, out: Path) -> None:
    """Generate the student assignment from the reference solutions.

    \b
    Example:
        grader release            # rewrites assignments/backprop/
    """
    from grader.release import release as make_release

    for path in make_release(source, out):
        click.echo(f"wrote {path}")
