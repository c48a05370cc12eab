"""``grader nbgrader ...``: run the assignment as an nbgrader course, graded outside the kernel."""
from __future__ import annotations

import re
from pathlib import Path

import click

from grader import paths

TEMPLATE = "nbgrader_config.py.j2"


@click.group("nbgrader")
def nbgrader() -> None:
    """Jupyter courses: the same checks and scores through nbgrader's own commands.

    \b
    Example:
        grader nbgrader init course
        cd course && nbgrader generate_assignment backprop
    """


def render_config(course_id: str, timeout: int, execute: bool, config: Path | None) -> str:
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
        config=str(config.resolve()) if config else "", limits=Limits())


@nbgrader.command()
@click.argument("course_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--assignment", default="backprop", show_default=True, help="nbgrader assignment id.")
@click.option("--course-id", help="nbgrader course id [default: the folder's name].")
@click.option("--timeout", default=120, show_default=True, type=click.IntRange(5),
              help="Seconds per notebook cell when nbgrader executes it.")
@click.option("--execute/--no-execute", default=True, show_default=True,
              help="Run notebooks in nbgrader's kernel (students see their outputs in feedback); "
                   "--no-execute: student code runs only in the grader's sandbox.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Course configuration (TOML: seed, limits), as for `grader grade --config`.")
@click.option("--source", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=paths.SOLUTIONS, show_default=True, help="Reference solutions.")
@click.option("--force", is_flag=True, help="Overwrite the config and source notebook if they exist.")
def init(course_dir: Path, assignment: str, course_id: str | None, timeout: int, execute: bool,
         config: Path | None, source: Path, force: bool) -> None:
    """Write an nbgrader course: config and source notebook.

    \b
    Example:
        grader nbgrader init course --config course.toml
        cd course && nbgrader generate_assignment backprop
    """
    from grader import notebook
    from grader.release import ReleaseError

    course_id = course_id or course_dir.resolve().name
    for label, value in (("--assignment", assignment), ("--course-id", course_id)):
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", value):
            raise click.BadParameter(f"{value!r}: use letters, digits and . _ - only", param_hint=label)
    files = {
        course_dir / "nbgrader_config.py": render_config(course_id, timeout, execute, config),
    }
    try:
        files[course_dir / "source" / assignment / notebook.NOTEBOOK] = \
            notebook.dumps(notebook.source_notebook(source))
    except (OSError, ReleaseError, SyntaxError) as exc:
        raise click.ClickException(f"cannot build the notebook from {source}: {exc}") from None
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        raise click.ClickException(f"{', '.join(existing)} already exist(s); use --force to overwrite.")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")
    try:
        import nbgrader as _  # noqa: F401
    except ImportError:
        click.echo("note: nbgrader is not installed here (pip install nbgrader==0.9.6).", err=True)
    steps = [(f"nbgrader generate_assignment {assignment} --force", f"release/{assignment}/: for students"),
             (f"nbgrader collect {assignment}", f"or copy to submitted/<student>/{assignment}/"),
             (f"nbgrader autograde {assignment} --force", "scores from the grader's sandbox"),
             ("nbgrader export", "grades.csv"),
             (f"nbgrader generate_feedback {assignment} --force", f"feedback/<student>/{assignment}/")]
    width = max(len(command) for command, _ in steps)
    click.echo(f"\nNext, in {course_dir}:")
    for command, what in steps:
        click.echo(f"  {command.ljust(width)}   # {what}")
