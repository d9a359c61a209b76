"""`cubeport processes`: the processes this installation offers, and new process packages from a template.

Processes come from installed packages (entry point `cubeport.processes`) and the folder of user processes
(`processing.user_processes`); run them with `cubeport jobs submit`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cubeport.cli.base import AsJson, DataRoot, app, context_for, err, out

processes_app = typer.Typer(
    help="Processes: typed functions that run as jobs next to the data (see `cubeport jobs`).",
    no_args_is_help=True,
)
app.add_typer(processes_app, name="processes")


@processes_app.command("list")
def processes_list(data_root: DataRoot = None, as_json: AsJson = False) -> None:
    """List every process offered here: built-in, installed packages and user processes.

    Example: cubeport processes list
    """
    processes = context_for(data_root).processes.all()
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {"id": p.id, "version": p.version, "title": p.title, "keywords": list(p.keywords)}
                    for p in processes
                ]
            )
        )
        return
    table = Table("id", "version", "title", "output")
    for p in processes:
        table.add_row(p.id, p.version, p.title, p.output)
    out.print(table if processes else "no processes")


@processes_app.command("info")
def processes_info(
    process_id: Annotated[str, typer.Argument(metavar="ID", help="a process id, e.g. temporal-aggregate")],
    data_root: DataRoot = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the OGC API - Processes description instead")
    ] = False,
) -> None:
    """Show a process: its description, inputs (type, default, meaning) and output.

    Example: cubeport processes info band-math
    """
    process = context_for(data_root).processes.get(process_id)
    document = process.description_document()
    if as_json:
        out.print_json(json.dumps(document))
        return
    out.print(f"[bold]{process.id}[/bold] {process.version}: {process.title}", highlight=False)
    if process.keywords:
        out.print(f"keywords: {', '.join(process.keywords)}", highlight=False)
    if process.description:
        out.print("")
        for paragraph in process.description.split("\n\n"):  # docstring lines rewrapped to the terminal
            out.print(" ".join(paragraph.split()), highlight=False, markup=False)
        out.print("")
    table = Table("input", "type", "default", "description", title="inputs", title_justify="left")
    for name, spec in document["inputs"].items():
        schema = spec["schema"]
        table.add_row(name, type_text(schema), _default(spec), spec["description"] or spec["title"])
    out.print(table)
    result = document["outputs"]["result"]
    out.print(f"output: {process.output}, {result['description']}", highlight=False)
    out.print(
        f"run it: cubeport jobs submit {process.id} "
        + " ".join(f"--input {name}=..." for name, spec in document["inputs"].items() if spec["minOccurs"])
        + " --as USER --wait",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _default(spec: dict[str, Any]) -> str:
    """`required`, the default (strings as they are typed on the command line), or nothing for None."""
    if spec["minOccurs"]:
        return "required"
    default = spec["schema"].get("default")
    return "" if default is None else default if isinstance(default, str) else json.dumps(default)


def type_text(schema: dict[str, Any]) -> str:
    """A JSON Schema as a short type for people: `number > 0`, `one of: month, season, year`, `cube id`."""
    if "anyOf" in schema:
        return " or ".join(dict.fromkeys(type_text(s) for s in schema["anyOf"] if s.get("type") != "null"))
    if "enum" in schema:
        return "one of: " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    kind = str(schema.get("type", "any"))
    fmt = schema.get("format")
    if fmt in ("cube-id", "collection-id"):
        return str(fmt).replace("-id", " id")
    if kind == "array" and isinstance(schema.get("prefixItems"), list):  # a tuple, e.g. a bbox
        kinds = {str(item.get("type", "any")) for item in schema["prefixItems"]}
        count = len(schema["prefixItems"])
        return f"list of {count} {kinds.pop()}s" if len(kinds) == 1 else f"list of {count} items"
    if kind == "array":
        items = schema.get("items")
        text = f"list of {type_text(items)}" if isinstance(items, dict) else "list"
        if "minItems" in schema and schema.get("minItems") == schema.get("maxItems"):
            text += f" ({schema['minItems']} items)"
        return text
    bounds = [
        f"{symbol} {schema[key]}"
        for key, symbol in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("exclusiveMaximum", "<"),
        )
        if key in schema
    ]
    return " ".join([kind, ", ".join(bounds)]) if bounds else kind


@processes_app.command("new")
def processes_new(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="package name: lower-case letters, digits and '-', e.g. sea-ice-tools"
        ),
    ],
    folder: Annotated[
        Path, typer.Option("--dir", help="Where the package's folder is made [default: here]")
    ] = Path("."),
) -> None:
    """Write a ready-to-edit package of processes: an example process, its test, and a README.

    The package goes to DIR/NAME (never over an existing folder). Try it in its folder:

        pip install -e ".\\[test]" && pytest && cubeport processes list

    Example: cubeport processes new sea-ice-tools --dir ~/src
    """
    from cubeport.processes.template import create_package

    created = create_package(name, folder)
    for path in created.files:
        err.print(f"  {path.relative_to(created.folder.parent)}", highlight=False)
    out.print(
        f"created {created.folder} with the example process {created.process_id} "
        f"in src/{created.package}/processes.py\n"
        f"next: cd {created.folder} && pip install -e '.[test]' && pytest && cubeport processes list",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
