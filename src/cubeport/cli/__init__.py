"""The `cubeport` command line: serve, demo, ingest, cubes, users, groups, keys, access, audit, db.

Exit codes: 0 success, 2 usage or input error, 1 any other failure; errors go to stderr as one line.
"""

from __future__ import annotations

import os
import sys

import typer

# each module registers its commands on `app`; the import order is the order of `cubeport --help`
# isort: off
from cubeport.cli import (  # noqa: F401
    rolling_cache,
    serve,
    ingest,
    cubes,
    places,
    features,
    processes,
    jobs,
    seaice,
    ops,
    news,
    db,
    identity,
    sources,
)

# isort: on
from cubeport.cli.base import app, err
from cubeport.errors import ConfigError, ConflictError, CubeportError, InputError, NotFoundError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: run the CLI and turn every error into one line on stderr and an exit code."""
    try:
        # without standalone mode, Click returns an exit code (e.g. 130 after Ctrl-C) rather than raising
        code = app(prog_name="cubeport", standalone_mode=False)
        if code == 130:
            _fail("interrupted", 130)
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except typer.TyperException as exc:  # usage errors: message and usage line, exit code 2
        # typer types it as TyperException, but only raises its Click subclasses, which have show()
        exc.show()  # type: ignore[attr-defined]
        sys.exit(2)
    except (InputError, NotFoundError, ConflictError, ConfigError) as exc:
        _fail(str(exc), 2)
    except CubeportError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # the last resort: one line, never a traceback (CUBEPORT_DEBUG=1 shows it)
        if os.environ.get("CUBEPORT_DEBUG"):
            raise
        _fail(
            f"unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            " (set CUBEPORT_DEBUG=1 for details)",
            1,
        )


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"cubeport: error: {message}\n")
    sys.exit(code)
