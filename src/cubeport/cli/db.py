"""`cubeport db`: the database schema."""

from __future__ import annotations

import typer

from cubeport.cli.base import DataRoot, app, context_for, out

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(data_root: DataRoot = None) -> None:
    """Create or migrate the database schema to the newest version."""
    context = context_for(data_root)
    out.print(f"database {context.db.safe_url} at revision {context.db.revision()}")
