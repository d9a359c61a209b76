"""The `cubeport` command line: serve, demo, ingest, cubes, db.

Exit codes: 0 success, 2 usage or input error, 1 any other failure; errors go to stderr as one line.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cubeport.config import load_settings
from cubeport.context import Context
from cubeport.errors import ConfigError, CubeportError, InputError, NotFoundError

app = typer.Typer(
    name="cubeport", help="Cubeport: Earth-observation data cubes, maps and time series.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
cubes_app = typer.Typer(help="List, inspect, edit and delete cubes.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(cubes_app, name="cubes")
app.add_typer(db_app, name="db")
out = Console()
err = Console(stderr=True)

DataRoot = Annotated[Optional[str], typer.Option(
    "--data-root", envvar="CUBEPORT_DATA_ROOT", show_envvar=True,
    help="Local folder or s3://bucket/prefix holding the data [default: ./cubeport-data]")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _context(data_root: str | None, **overrides: Any) -> Context:
    return Context(load_settings(data_root=data_root, **overrides))


@app.callback()
def _main(
    config: Annotated[Optional[str], typer.Option(
        "--config", envvar="CUBEPORT_CONFIG", help="YAML settings file (see docs/configuration.md)")] = None,
) -> None:
    if config:
        os.environ["CUBEPORT_CONFIG"] = config


@app.command()
def serve(
    data_root: DataRoot = None,
    host: Annotated[Optional[str], typer.Option(help="Address to listen on [default: 127.0.0.1]")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port to listen on [default: 8080]")] = None,
) -> None:
    """Serve the platform's API (and viewer) over HTTP."""
    import uvicorn

    from cubeport.api.app import create_app

    context = _context(data_root, host=host, port=port)
    context.db  # migrate before the first request
    settings = context.settings
    err.print(f"Cubeport serving {settings.data_root} on http://{settings.host}:{settings.port}/")
    uvicorn.run(create_app(context), host=settings.host, port=settings.port, log_level=settings.log_level)


@app.command()
def demo(
    data_root: DataRoot = None,
    large: Annotated[bool, typer.Option("--large", help="Also build the large benchmark cube (0.01 deg, 365 days)")] = False,
    days: Annotated[int, typer.Option(min=2, max=366, help="Days in the demo cubes")] = 122,
) -> None:
    """Build the Baltic Sea demo set (synthetic chlorophyll and SST cubes, stations, water bodies)."""
    from cubeport.demo import build_demo

    context = _context(data_root)
    with _progress() as progress:
        task = progress.add_task("demo", total=None)

        def report(label: str, done: int, total: int) -> None:
            progress.update(task, description=label, completed=done, total=total)

        written = build_demo(context, large=large, days=days, progress=report)
    for line in written:
        out.print(line)


@app.command()
def ingest(
    sources: Annotated[list[str], typer.Argument(help="Input files: Zarr, NetCDF or GeoTIFF/COG", show_default=False)],
    cube: Annotated[str, typer.Option("--cube", help="Id of the cube to write", show_default=False)],
    data_root: DataRoot = None,
    append: Annotated[bool, typer.Option("--append", help="Add new time steps to an existing cube")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Rebuild an existing cube from these inputs")] = False,
    time_pattern: Annotated[Optional[str], typer.Option(
        "--time-pattern", help="strftime pattern that finds the time in file names, e.g. '%Y%m%dT%H%M%S'")] = None,
    time: Annotated[Optional[datetime], typer.Option(help="Time of a single input that has none")] = None,
    variables: Annotated[Optional[str], typer.Option(help="Comma-separated variables to keep [default: all]")] = None,
    title: Annotated[Optional[str], typer.Option(help="Title in the catalogue")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be written and stop")] = False,
) -> None:
    """Turn product files into a cube (or add time steps to one); published only when complete."""
    from cubeport.cubes.ingest import plan_ingest, run_ingest

    context = _context(data_root)
    context.storage.check()
    plan = plan_ingest(
        context.cubes, sources, cube, append=append, replace=replace, time_pattern=time_pattern, time=time,
        variables=[v.strip() for v in variables.split(",") if v.strip()] if variables else None,
    )
    out.print(plan.summary())
    if dry_run:
        out.print("dry run: nothing written")
        return
    if not plan.new_times:
        out.print(f"cube {cube} already has every time step; nothing written")
        return
    with _progress() as progress:
        task = progress.add_task(f"ingest {cube}", total=len(plan.new_times))
        info = run_ingest(context.cubes, plan, progress=lambda n: progress.advance(task, n))
    context.catalogue.register(info, context.cubes)
    if title:
        context.catalogue.update(cube, title=title)
    out.print(f"published {cube}: {info.dims.get('time', 0)} time steps, {len(info.variables)} variables, "
              f"{info.levels} levels{', time-series twin' if info.timeseries else ''}")


@cubes_app.command("list")
def cubes_list(data_root: DataRoot = None, as_json: AsJson = False) -> None:
    """List the cubes in the store."""
    context = _context(data_root)
    infos = [context.cubes.describe(c) for c in context.cubes.list()]
    if as_json:
        out.print_json(json.dumps([i.to_dict() for i in infos]))
        return
    table = Table("id", "time steps", "first", "last", "variables", "crs")
    for info in infos:
        table.add_row(info.id, str(info.dims.get("time", 0)), info.time_start[:19], info.time_end[:19],
                      ", ".join(v.name for v in info.variables), info.crs[:40])
    out.print(table if infos else "no cubes")


@cubes_app.command("info")
def cubes_info(cube_id: Annotated[str, typer.Argument(metavar="ID")], data_root: DataRoot = None,
               as_json: AsJson = False) -> None:
    """Show a cube's dims, variables, time range, CRS and levels."""
    context = _context(data_root)
    info = context.cubes.describe(cube_id)
    data = info.to_dict()
    try:
        entry = context.catalogue.get(cube_id)
        data["title"], data["description"] = entry.title, entry.description
        data["styles"] = {v.name: v.style.__dict__ for v in entry.variables}
        data["access"] = entry.access
    except NotFoundError:
        pass
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table(show_header=False)
    for key in ("id", "title", "crs", "time_start", "time_end", "levels", "timeseries", "version"):
        if key in data:
            table.add_row(key, str(data[key]))
    table.add_row("dims", ", ".join(f"{k}={v}" for k, v in info.dims.items()))
    table.add_row("bbox (lon/lat)", ", ".join(f"{v:.4f}" for v in info.bbox))
    for v in info.variables:
        table.add_row(f"variable {v.name}", f"{v.dtype} {v.units or ''} {v.long_name or ''}".strip())
    out.print(table)


@cubes_app.command("delete")
def cubes_delete(cube_id: Annotated[str, typer.Argument(metavar="ID")], data_root: DataRoot = None) -> None:
    """Delete a cube and its catalogue entry."""
    context = _context(data_root)
    context.cubes.delete(cube_id)
    context.catalogue.remove(cube_id)
    out.print(f"deleted {cube_id}")


@cubes_app.command("style")
def cubes_style(
    cube_id: Annotated[str, typer.Argument(metavar="ID")],
    variable: Annotated[str, typer.Argument(metavar="VARIABLE")],
    data_root: DataRoot = None,
    cmap: Annotated[Optional[str], typer.Option(help="Colour map name, e.g. viridis")] = None,
    vmin: Annotated[Optional[float], typer.Option(help="Value at the low end of the colour map")] = None,
    vmax: Annotated[Optional[float], typer.Option(help="Value at the high end of the colour map")] = None,
    norm: Annotated[Optional[str], typer.Option(help="lin, log or cat")] = None,
) -> None:
    """Change a variable's style without touching its data."""
    entry = _context(data_root).catalogue.set_style(cube_id, variable, colormap=cmap, vmin=vmin, vmax=vmax, norm=norm)
    style = entry.variable(variable).style
    out.print(f"{cube_id}/{variable}: {style.colormap} {style.vmin}..{style.vmax} ({style.norm})")


@cubes_app.command("edit")
def cubes_edit(
    cube_id: Annotated[str, typer.Argument(metavar="ID")],
    data_root: DataRoot = None,
    title: Annotated[Optional[str], typer.Option()] = None,
    description: Annotated[Optional[str], typer.Option()] = None,
    tags: Annotated[Optional[str], typer.Option(help="Comma-separated tags")] = None,
    themes: Annotated[Optional[str], typer.Option(help="Comma-separated themes")] = None,
) -> None:
    """Edit a cube's title, description, tags and themes."""
    split = lambda s: [t.strip() for t in s.split(",") if t.strip()] if s is not None else None  # noqa: E731
    entry = _context(data_root).catalogue.update(
        cube_id, title=title, description=description, tags=split(tags), themes=split(themes))
    out.print(f"{entry.id}: {entry.title}")


@db_app.command("upgrade")
def db_upgrade(data_root: DataRoot = None) -> None:
    """Create or migrate the database schema to the newest version."""
    context = _context(data_root)
    out.print(f"database {context.db.safe_url} at revision {context.db.revision()}")


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, transient=False, disable=not err.is_terminal and not os.environ.get("CUBEPORT_PROGRESS"))


def main() -> None:
    """Entry point: run the CLI and turn every error into one line on stderr and an exit code."""
    try:
        app(prog_name="cubeport", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except typer.TyperException as exc:  # usage errors: message and usage line, exit code 2
        exc.show()  # type: ignore[attr-defined]
        sys.exit(2)
    except (InputError, NotFoundError, ConfigError) as exc:
        _fail(str(exc), 2)
    except CubeportError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # the last resort: one line, never a traceback (CUBEPORT_DEBUG=1 shows it)
        if os.environ.get("CUBEPORT_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
              " (set CUBEPORT_DEBUG=1 for details)", 1)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"cubeport: error: {message}\n")
    sys.exit(code)
