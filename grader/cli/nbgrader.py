"""``grader nbgrader ...``: run the assignment as an nbgrader course, graded outside the kernel."""
from __future__ import annotations

import re
from pathlib import Path

import click

from grader.cli.common import Refusal, assignment_of, course_options

TEMPLATE = "nbgrader_config.py.j2"


@click.group("nbgrader")
def nbgrader() -> None:
    """Jupyter courses: the same checks and scores through nbgrader's own commands.

    \b
    Example:
        grader nbgrader init nbcourse
        cd nbcourse && nbgrader generate_assignment backprop
    """


def render_config(course_id: str, timeout: int, execute: bool, config: Path | None, course: Path | None,
                  assignment: str) -> str:
    """The course's nbgrader_config.py: our preprocessors around nbgrader's own."""
    import jinja2

    from grader import __version__
    from grader.sandbox import Limits

    env = jinja2.Environment(loader=jinja2.PackageLoader("grader", "templates"), autoescape=False,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["tojson"] = repr  # a Python literal, not JSON
    return env.get_template(TEMPLATE).render(
        version=__version__, course_id=course_id, timeout=timeout, execute=execute,
        config=str(config.resolve()) if config else "", course=str(course.resolve()) if course else "",
        assignment=assignment, limits=Limits())


@nbgrader.command()
@click.argument("course_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--assignment", help="The grader's assignment [default: the course's only or default one].")
@click.option("--nbgrader-id", help="nbgrader's assignment id [default: the assignment's name].")
@click.option("--course-id", help="nbgrader course id [default: the folder's name].")
@click.option("--timeout", default=120, show_default=True, type=click.IntRange(5),
              help="Seconds per notebook cell when nbgrader executes it.")
@click.option("--execute/--no-execute", default=True, show_default=True,
              help="Run notebooks in nbgrader's kernel (students see their outputs in feedback); "
                   "--no-execute: student code runs only in the grader's sandbox.")
@course_options
@click.option("--force", is_flag=True, help="Overwrite the config and source files if they exist.")
def init(course_dir: Path, assignment: str | None, nbgrader_id: str | None, course_id: str | None, timeout: int,
         execute: bool, course, force: bool) -> None:
    """Write an nbgrader course: config, source notebook, the helper modules it imports and the
    students' self-check.

    \b
    Example:
        grader nbgrader init nbcourse --assignment backprop
        cd nbcourse && nbgrader generate_assignment backprop
    """
    from grader.authoring import notebook
    from grader.authoring.release import ReleaseError, notebook_companions

    chosen = assignment_of(course, assignment)
    nbgrader_id = nbgrader_id or chosen.name
    course_id = course_id or course_dir.resolve().name
    for label, value in (("--nbgrader-id", nbgrader_id), ("--course-id", course_id)):
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", value):
            raise click.BadParameter(f"{value!r}: use letters, digits and . _ - only", param_hint=label)
    files = {
        course_dir / "nbgrader_config.py": render_config(course_id, timeout, execute, course.config,
                                                         course.root, chosen.name).encode("utf-8"),
    }
    source = course_dir / "source" / nbgrader_id
    try:
        files[source / chosen.notebook] = notebook.dumps(notebook.source_notebook(chosen)).encode("utf-8")
        # the self-check and the helpers its grade cells and the students' code import; generate_assignment
        # copies them into release/ as they are
        files.update({source / path: data for path, data in notebook_companions(chosen).items()})
    except (OSError, ReleaseError, SyntaxError) as exc:
        raise Refusal(f"cannot build the notebook from {chosen.folder}: {exc}") from None
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        raise Refusal(f"{', '.join(existing)} already exist(s); use --force to overwrite.")
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        click.echo(f"wrote {path}")
    try:
        import nbgrader as _  # noqa: F401
    except ImportError:
        click.echo("note: nbgrader is not installed here (pip install nbgrader==0.9.6).", err=True)
    a = nbgrader_id
    steps = [(f"nbgrader generate_assignment {a} --force", f"release/{a}/: for students"),
             (f"nbgrader collect {a}", f"or copy to submitted/<student>/{a}/"),
             (f"nbgrader autograde {a} --force", "scores from the grader's sandbox"),
             ("nbgrader export", "grades.csv"),
             (f"nbgrader generate_feedback {a} --force", f"feedback/<student>/{a}/")]
    width = max(len(command) for command, _ in steps)
    click.echo(f"\nNext, in {course_dir}:")
    for command, what in steps:
        click.echo(f"  {command.ljust(width)}   # {what}")
