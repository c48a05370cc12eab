"""The ``grader`` command line: a thin shell over the pipeline's modules.

Exit codes (also in ``grader --help`` and the README):

  0  every student graded
  2  bad usage or configuration (a wrong option, a course.toml error, no students found)
  3  graded, but the grader itself failed on some students (listed; regrade them with --resume)
  4  this machine cannot grade: the canary (the reference solution, graded end to end) did not
     score full marks, or full isolation was required and is not there
"""
from __future__ import annotations

import atexit
import gc
from pathlib import Path

import click

from grader.cli.common import CANNOT_GRADE, EPILOG, GRADER_FAILURES, Refusal, assignment_of, course_options
from grader.cli.gradescope import gradescope
from grader.cli.nbgrader import nbgrader

# numpy, pytest and jinja leave ~10^6 objects: moved out of the collector's sight, they cost
# nothing when the interpreter exits (measured: 0.2-0.3 s of every run)
atexit.register(gc.freeze)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(package_name="backprop-grader")
def main() -> None:
    """Autograder for backpropagation exercises: sandboxed, exact, for a whole class."""


main.add_command(nbgrader)
main.add_command(gradescope)


@main.command(epilog=EPILOG)
@click.argument("submissions", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for grades.csv, the class report and one folder per student.")
@click.option("--assignment", help="The assignment to grade [default: the course's only or default one].")
@course_options
@click.option("--jobs", default="auto", show_default=True,
              help="Students graded at once: a number, or 'auto' for one per core.")
@click.option("--sandbox", type=click.Choice(["auto", "required", "off"]),
              help="auto: strongest isolation available; required: refuse without full isolation.")
@click.option("--resume", is_flag=True, help="Keep students already graded in --out.")
@click.option("--select", metavar="EXPR", help="Only the hidden tests matching this pytest -k expression.")
@click.option("--scheduler", metavar="ADDRESS", help="Grade on the running Dask cluster at ADDRESS (tcp://HOST:8786).")
@click.option("--cluster", type=click.Choice(["slurm", "pbs"]),
              help="Start a Dask cluster with dask-jobqueue (the course's [cluster] settings) and grade on it.")
def grade(submissions: Path, out: Path, assignment: str | None, course, jobs: str, sandbox: str | None,
          resume: bool, select: str | None, scheduler: str | None, cluster: str | None) -> None:
    """Grade a folder of submissions (a sub-folder or STUDENT.ipynb per student) into scored reports.

    \b
    Example:
        grader grade examples/class --out reports
        grader grade submissions/ --out reports --assignment backprop --jobs 2 --resume
        grader grade submissions/ --out reports --scheduler tcp://10.0.0.5:8786
    """
    import os

    from grader import host
    from grader.grading import Grading

    workers = (os.cpu_count() or 1) if jobs == "auto" else int(jobs) if jobs.isdigit() else 0
    if workers < 1:
        raise click.BadParameter("a positive number or 'auto'", param_hint="--jobs")
    try:
        grading = Grading.of(course, assignment, sandbox=sandbox, select=select, handins=submissions)
    except ValueError as exc:
        raise Refusal(str(exc)) from None
    remote = None
    if scheduler or cluster:
        import dataclasses

        from grader.batch import Remote

        if scheduler and cluster:
            raise click.UsageError("--scheduler or --cluster, not both")
        remote = Remote(scheduler, dataclasses.replace(course.settings.cluster, kind=cluster) if cluster
                        else course.settings.cluster)
    else:
        grading.prestart(host.process_uid())  # warms up while the rest is imported

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.text import Text

    from grader import batch, reports
    from grader.hidden.session import HiddenTestsError

    SchedulerGone = _scheduler_gone() if remote else ()  # noqa: N806 - an exception class (or none)

    console = Console(stderr=True)
    console.print(f"assignment: {grading.assignment.name} ({grading.assignment.title})", highlight=False)
    if grading.settings.public_seed:
        console.print("[yellow]warning[/]: grading with a public or guessable seed (the default, or under 64 "
                      "bits): every input can be precomputed. Set a private `seed` in course.toml (`grader init` "
                      "writes 128 random bits).")
    try:
        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("checking the sandbox with the reference solution", total=None)
            result = batch.grade_class(
                submissions, out, grading, jobs=workers, resume=resume,
                on_start=lambda total: progress.update(task, total=total, description="grading"),
                on_done=lambda r: progress.update(task, advance=1, description=f"graded {escape(r.student)}"),
                remote=remote,
            )
    except batch.NoStudents as exc:
        raise Refusal(str(exc)) from None
    except HiddenTestsError as exc:
        raise Refusal(str(exc)) from None
    except SchedulerGone as exc:
        raise Refusal(f"{exc}\nWhat was graded is written; run the same command again with --resume "
                      "once a scheduler answers.", CANNOT_GRADE) from None
    except batch.CannotGrade as exc:
        raise Refusal(f"nobody was graded: the reference solution, graded first as a check, did not score "
                      f"full marks here.\n{exc}", CANNOT_GRADE) from None
    console.print(Text(result.canary.report() if result.canary else
                       "canary: run by every cluster worker before it took work" if remote else "canary: skipped"))
    for reason in result.skipped:
        console.print(Text.assemble(("skipped ", "yellow"), reports.display_text(reason)))
    out_console = Console()
    if not out_console.is_terminal:  # a file or a pipe has no width limit to respect
        out_console = Console(width=120)
    out_console.print(reports.terminal_summary(result.results, grading.assignment.parts,
                                               grading.assignment.labels()))
    click.echo(reports.summary_line(result.results))
    if result.resumed:
        click.echo(f"{result.resumed} student(s) kept from the earlier run (--resume).")
    click.echo(f"Reports: {out / 'grades.csv'}, {out / 'class.html'}, "
               f"{out / reports.STUDENTS}/<student>/report.html")
    if result.grader_errors:
        failed = result.failed_students
        console.print(Text.assemble((f"the grader itself failed on {len(failed)} student(s)", "red"),
                                    f": {', '.join(failed[:20])}{' ...' if len(failed) > 20 else ''}; see "
                                    f"{out / 'grader-errors.log'}. Their failed checks scored 0: fix the cause "
                                    "and run again with --resume."))
        raise SystemExit(GRADER_FAILURES)


@main.command("export")
@click.argument("reports", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--lms", type=click.Choice(["canvas", "moodle"]), required=True, help="The gradebook's format.")
@click.option("--roster", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV: one row per student, the hand-in id in column --key, the LMS's identity columns.")
@click.option("--key", default="student", show_default=True, help="The roster's column holding the hand-in ids.")
@click.option("--column", help="The grade column's name [default: the assignment's title].")
@click.option("--assignment", help="The assignment graded (for the column's name).")
@course_options
def export_(reports: Path, lms: str, roster: Path, key: str, column: str | None, assignment: str | None,
            course) -> None:
    """Write a gradebook Canvas or Moodle imports as it is, beside grades.csv.

    \b
    Example:
        grader export reports --lms canvas --roster canvas-export.csv --key "SIS Login ID"
    """
    from grader.integrations import lms as gradebook

    if not (reports / "grades.csv").is_file():
        raise Refusal(f"{reports} holds no grades.csv: grade the class first (grader grade ... --out {reports})")
    try:
        title = column or (course.assignment(assignment).title if assignment or len(course.names()) == 1
                           else "Assignment")
        rows = gradebook.read_roster(roster, key)
        scores, top = gradebook.read_scores(reports / "grades.csv")
        done = gradebook.export(lms, rows, key, scores, title, top)
    except ValueError as exc:
        raise Refusal(str(exc)) from None
    target = reports / f"{lms}.csv"
    target.write_text(done.text, encoding="utf-8")
    click.echo(f"wrote {target}: {len(rows) - len(done.missing)} of {len(rows)} roster students graded")
    if done.missing:
        click.echo(f"no hand-in (left empty): {', '.join(done.missing)}", err=True)
    if done.unmatched:
        click.echo(f"graded but not in the roster (left out): {', '.join(done.unmatched)}", err=True)


@main.command(epilog=EPILOG)
@course_options
@click.option("--assignment", help="The assignment whose reference is the canary [default: every one].")
@click.option("--measure", is_flag=True, help="Also time a sandboxed worker start.")
def doctor(course, assignment: str | None, measure: bool) -> None:
    """Prove this machine can grade (the reference, graded end to end) and show its isolation.

    \b
    Example:
        grader doctor --measure
    """
    from grader.doctor import doctor_lines

    ok = True
    names = [assignment_of(course, assignment).name] if assignment else course.names()
    if not names:
        raise Refusal(f"no assignment in {course.solutions}: nothing to prove the sandbox with")
    for line, good in doctor_lines(course, names, measure=measure):
        click.echo(line)
        ok = ok and good
    if not ok:
        raise SystemExit(CANNOT_GRADE)


@main.command()
@click.argument("names", nargs=-1)
@course_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Release folder [default: the course's assignments/NAME]; one assignment only.")
def release(names: tuple[str, ...], course, out: Path | None) -> None:
    """Generate what students get (stubs, notebook, self-check) from an assignment's reference.

    \b
    Example:
        grader release              # every assignment of the course, into assignments/NAME
        grader release backprop --out /tmp/backprop
    """
    from grader.authoring.release import ReleaseError
    from grader.authoring.release import release as make_release

    chosen = [assignment_of(course, n) for n in names] or [course.assignment(n) for n in course.names()]
    if out is not None and len(chosen) != 1:
        raise click.BadParameter("name one assignment with --out", param_hint="--out")
    for assignment in chosen:
        try:
            target = out or course.release_dir(assignment.name)
            for path in make_release(assignment, target):
                click.echo(f"wrote {path}")
        except (ReleaseError, ValueError) as exc:
            raise Refusal(str(exc)) from None


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Write into a folder that already holds a course.")
def init(folder: Path, force: bool) -> None:
    """Make a course folder: the bundled assignments, a private seed, and their student releases.

    \b
    Example:
        grader init mycourse && cd mycourse && grader grade submissions --out reports
    """
    from grader import course
    from grader.authoring.scaffold import init_course

    try:
        written = init_course(folder, force=force)
    except (ValueError, OSError) as exc:
        raise Refusal(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"\nNext: cd {folder}; edit {course.CONFIG}; `grader grade SUBMISSIONS --out reports`")


@main.command()
@click.argument("name")
@click.option("--from", "source", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder with the reference solution (.py files with ### BEGIN/END SOLUTION regions).")
@course_options
def new(name: str, source: Path, course) -> None:
    """Scaffold a new assignment from a reference solution.

    \b
    Example:
        grader new delta-rule --from ~/drafts/delta_rule
    """
    from grader.authoring.scaffold import new_assignment

    if course.root is None:
        raise Refusal("no course folder here: make one with `grader init DIR` (or pass --course DIR)")
    try:
        written = new_assignment(course, name, source)
    except (ValueError, OSError) as exc:
        raise Refusal(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path}")


def _scheduler_gone() -> type[Exception]:
    from grader.cluster import SchedulerGone

    return SchedulerGone
