"""The catalogue of cubes over HTTP: list, read and edit entries, each through the access policy."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from cubeport.api.deps import get_context
from cubeport.api.security import listing, resource, visible_cubes
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.cubes.catalogue import CubeEntry

router = APIRouter(prefix="/cubes", tags=["cubes"])
CubeId = Annotated[str, Path(description="cube id", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")]
ContextDep = Annotated[Context, Depends(get_context)]


class CubeEdit(BaseModel):
    """Fields of a catalogue entry that editors change; omitted fields stay as they are."""

    title: str | None = Field(None, max_length=256)
    description: str | None = None
    tags: list[str] | None = None
    themes: list[str] | None = None


def _json(entry: CubeEntry, context: Context) -> dict[str, Any]:
    data = asdict(entry)
    for key in ("time_start", "time_end"):
        data[key] = data[key].isoformat() if data[key] else None
    data["access"] = "restricted" if context.policy.is_restricted("cube", entry.id) else "public"
    return data


@router.get("", summary="Cubes in the catalogue that the caller may see")
def list_cubes(
    context: ContextDep, principal: Annotated[Principal, Depends(listing("cube"))]
) -> dict[str, Any]:
    return {"cubes": [_json(e, context) for e in visible_cubes(context, principal, published=False)]}


@router.get(
    "/{cube_id}", summary="One cube's catalogue entry", dependencies=[Depends(resource("cube", "cube_id"))]
)
def get_cube(cube_id: CubeId, context: ContextDep) -> dict[str, Any]:
    return _json(context.catalogue.get(cube_id), context)


@router.patch(
    "/{cube_id}",
    summary="Edit a cube's title, description, tags or themes (editors with a write grant)",
    dependencies=[Depends(resource("cube", "cube_id", "write"))],
)
def edit_cube(cube_id: CubeId, edit: CubeEdit, context: ContextDep) -> dict[str, Any]:
    entry = context.catalogue.update(cube_id, **edit.model_dump())
    return _json(entry, context)
