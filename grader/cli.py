"""The ``grader`` command line: a thin shell over the pipeline's modules."""
from __future__ import annotations

from pathlib import Path

import click

from grader import paths
from grader.cli_nbgrader import nbgrader


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="backprop-grader")
def main() -> None:
    """Autograder for the backpropagation chapter of Deep Learning from Scratch."""


main.add_command(nbgrader)


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


@main.command()
@click.option("--measure", is_flag=True, help="Also time a sandboxed worker start.")
def doctor(measure: bool) -> None:
    """Show what isolation this machine gives the worker, and how to get the rest.

    \b
    Example:
        grader doctor --measure
    """
    from grader.doctor import doctor_lines

    for line in doctor_lines(measure=measure):
        click.echo(line)


@main.command()
@click.argument("submissions", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for grades.csv, the class report and one folder per student.")
@click.option("--jobs", default="auto", show_default=True,
              help="Students graded at once: a number, or 'auto' for one per core.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Course configuration (TOML): seed and limits.")
@click.option("--sandbox", type=click.Choice(["auto", "required", "off"]),
              help="auto: strongest isolation available; required: refuse without full isolation.")
@click.option("--resume", is_flag=True, help="Keep students already graded in --out.")
def grade(submissions: Path, out: Path, jobs: str, config: Path | None, sandbox: str | None,
          resume: bool) -> None:
    """Grade a folder of submissions (a sub-folder or STUDENT.ipynb per student) into scored reports.

    \b
    Example:
        grader grade examples/class --out reports
        grader grade submissions/ --out reports --jobs 2 --config course.toml --resume
    """
    import dataclasses
    import os

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from grader import batch, course, reports
    from grader import sandbox as isolation
    from grader.exercises import PARTS

    try:
        settings = course.load(config)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if sandbox:
        settings = dataclasses.replace(settings, sandbox=sandbox)
    level = isolation.probe()
    if settings.sandbox == "required" and not level.full:
        raise click.ClickException(f"--sandbox required, but {level}. Run `grader doctor`.")
    workers = (os.cpu_count() or 1) if jobs == "auto" else int(jobs) if jobs.isdigit() else 0
    if workers < 1:
        raise click.BadParameter("a positive number or 'auto'", param_hint="--jobs")

    console = Console(stderr=True)
    console.print(str(level) if settings.sandbox != "off" else "isolation: reduced (sandbox off)")
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("grading", total=None)
        result = batch.grade_class(
            submissions, out, settings, jobs=workers, resume=resume,
            on_start=lambda total: progress.update(task, total=total),
            on_done=lambda r: progress.update(task, advance=1, description=f"graded {r.student}"),
        )
    for reason in result.skipped:
        console.print(f"[yellow]skipped[/] {reason}")
    out_console = Console()
    if not out_console.is_terminal:  # a file or a pipe has no width limit to respect
        out_console = Console(width=120)
    out_console.print(reports.terminal_summary(result.results, PARTS))
    click.echo(reports.summary_line(result.results))
    if result.grader_errors:
        console.print(f"[red]{result.grader_errors} check(s) failed inside the grader itself[/]; "
                      f"see {out / 'grader-errors.log'}. Those checks scored 0: fix and regrade.")
    if result.resumed:
        click.echo(f"{result.resumed} student(s) kept from the earlier run (--resume).")
    click.echo(f"Reports: {out / 'grades.csv'}, {out / 'class.html'}, {out}/<student>/report.html")
