"""The catalogue of cubes over HTTP (read-only for now; writes come with the identity layer)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from cubeport.api.deps import get_context
from cubeport.context import Context
from cubeport.cubes.catalogue import CubeEntry
from cubeport.errors import NotFoundError

router = APIRouter(prefix="/cubes", tags=["cubes"])
CubeId = Annotated[str, Path(description="cube id", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]


def visible(entry: CubeEntry) -> bool:
    """Until the identity layer lands, only public cubes are shown to anybody."""
    return entry.access == "public"


def _json(entry: CubeEntry) -> dict[str, Any]:
    data = asdict(entry)
    data.pop("groups")
    for key in ("time_start", "time_end"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


@router.get("", summary="Cubes in the catalogue")
def list_cubes(context: Annotated[Context, Depends(get_context)]) -> dict[str, Any]:
    return {"cubes": [_json(e) for e in context.catalogue.list() if visible(e)]}


@router.get("/{cube_id}", summary="One cube's catalogue entry")
def get_cube(cube_id: CubeId, context: Annotated[Context, Depends(get_context)]) -> dict[str, Any]:
    entry = context.catalogue.get(cube_id)
    if not visible(entry):
        raise NotFoundError(f"cube {cube_id!r} is not in the catalogue")
    return _json(entry)
