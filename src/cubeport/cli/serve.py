"""`cubeport serve` (the API and viewer over HTTP) and `cubeport demo` (the Baltic demo set)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from cubeport.cli.base import DataRoot, app, context_for, out, progress_bar


@app.command()
def serve(
    data_root: DataRoot = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: 8080]")] = None,
) -> None:
    """Serve the platform's API (and viewer) over HTTP."""
    import uvicorn

    from cubeport.api.app import create_app
    from cubeport.logs import configure_logging

    context = context_for(data_root, host=host, port=port)
    settings = context.settings
    configure_logging(settings)
    _ = context.db  # migrate before the first request
    # a log line, not a print: with log_format json every line on standard error is JSON
    logging.getLogger("cubeport.serve").info(
        "Cubeport serving %s on http://%s:%s/",
        settings.data_root,
        settings.host,
        settings.port,
        extra={"event_type": "service_started"},
    )
    uvicorn.run(
        create_app(context),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # keep configure_logging's handler and format
    )


@app.command()
def demo(
    data_root: DataRoot = None,
    large: Annotated[
        bool, typer.Option("--large", help="Also build the large benchmark cube (0.01 deg, 365 days)")
    ] = False,
    days: Annotated[int, typer.Option(min=2, max=366, help="Days in the demo cubes")] = 122,
) -> None:
    """Build the Baltic Sea demo set (synthetic chlorophyll and SST cubes, stations, water bodies)."""
    from cubeport.demo import build_demo

    context = context_for(data_root)
    with progress_bar() as progress:
        task = progress.add_task("demo", total=None)

        def report(label: str, done: int, total: int) -> None:
            progress.update(task, description=label, completed=done, total=total)

        written = build_demo(context, large=large, days=days, progress=report)
    for line in written:
        out.print(line)
    password = context.auth.ensure_admin()
    if password:
        out.print(
            f"created the first admin: user [bold]admin[/], password [bold]{password}[/] (shown once; "
            "change it with `cubeport users set admin --password-stdin`)"
        )
