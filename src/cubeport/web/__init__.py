"""The browser viewer's built files (`static/`, made from `web/` by `make web`), served at / and /viewer/."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"


def asset(name: str) -> Path | None:
    """The built file `name` (a plain file name, nothing below or above `static/`), or None."""
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    path = STATIC / name
    return path if path.is_file() else None
