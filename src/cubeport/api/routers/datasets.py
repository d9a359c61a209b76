"""xcube-compatible dataset routes: `/datasets`, `/datasets/{ds}`, `/datasets/{ds}/coords/{dim}`,
`/colorbars`, shaped as xcube server 1.14 answers them (see ../shared/design/xcube-viewer-compat.md)."""

from __future__ import annotations

import base64
import math
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query

from cubeport.api.deps import get_context
from cubeport.api.security import OPEN, listing, resource, visible_cubes
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.cubes import cf
from cubeport.cubes.catalogue import CubeEntry
from cubeport.errors import NotFoundError
from cubeport.render import png
from cubeport.render.colormaps import categorical_table, lookup_table, names

router = APIRouter(tags=["xcube"])
ContextDep = Annotated[Context, Depends(get_context)]
DatasetId = Annotated[str, Path(description="dataset (cube) id", max_length=128)]


def iso_times(values: np.ndarray) -> list[str]:
    """Times as xcube lists them: whole seconds, UTC, the first floored and the last ceiled (so that a
    viewer's time range holds every step)."""
    times = pd.DatetimeIndex(values)
    texts = cf.iso_all(times)
    if len(times) > 1:
        texts[-1] = cf.iso(times[-1].ceil("s"))
    if len(times):
        texts[0] = cf.iso(times[0].floor("s"))
    return texts


def coordinates(context: Context, cube_id: str, dim: str) -> dict[str, Any]:
    ds = context.tiles.levels(cube_id).levels[0]
    if dim not in ds.coords:
        raise NotFoundError(
            f"dimension {dim!r} not in dataset {cube_id!r}; dimensions: {', '.join(map(str, ds.dims))}"
        )
    var = ds[dim]
    if np.issubdtype(var.dtype, np.datetime64):
        values: list[Any] = iso_times(var.values)
    else:
        values = [float(v) if np.issubdtype(var.dtype, np.floating) else int(v) for v in var.values]
    return {"name": dim, "size": len(values), "dtype": str(var.dtype), "coordinates": values}


def dataset_summary(entry: CubeEntry) -> dict[str, Any]:
    return {"id": entry.id, "title": entry.title, "bbox": list(entry.bbox)}


def dataset_details(context: Context, entry: CubeEntry) -> dict[str, Any]:
    cube = context.tiles.levels(entry.id)
    base = cube.levels[0]
    west, south, east, north = entry.bbox
    twin_chunk = None
    pointer = context.open_cubes.pointer(entry.id)
    if pointer.timeseries:
        twin_chunk = context.settings.layout.timeseries_chunk
    degrees = abs(cube.grids[0].dx) if cube.crs.is_geographic else abs(cube.grids[0].dx) / 111_320.0
    # the zoom of xcube's geographic tiling scheme (180 degrees in a 256 px tile at zoom 0) whose pixels are
    # as fine as the cube's: viewers stop asking for new tiles beyond it and enlarge these
    tile_level_max = max(0, math.ceil(math.log2(180.0 / 256.0 / degrees)))
    variables = []
    dims: list[str] = []
    for variable in entry.variables:
        if variable.name not in base.data_vars:
            continue
        var = base[variable.name]
        style = variable.style
        variables.append(
            {
                "id": f"{entry.id}.{variable.name}",
                "name": variable.name,
                "dims": list(map(str, var.dims)),
                "shape": list(var.shape),
                "dtype": str(var.dtype),
                "units": variable.units or "",
                "title": variable.long_name or variable.name,
                "timeChunkSize": twin_chunk,
                "tileLevelMin": 0,
                "tileLevelMax": tile_level_max,
                "colorBarName": style.colormap,
                "colorBarMin": style.vmin,
                "colorBarMax": style.vmax,
                "colorBarNorm": style.norm,
                "attrs": cf.json_attrs(var.attrs, nan="NaN"),
            }
        )
        dims += [d for d in map(str, var.dims) if d not in dims]
    return {
        **dataset_summary(entry),
        "description": entry.description,
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
        },
        "spatialRef": entry.crs,
        "spatialUnits": "degrees" if cube.crs.is_geographic else "meters",
        "resolutions": [abs(g.dx) for g in cube.grids],
        "variables": variables,
        "dimensions": [coordinates(context, entry.id, d) for d in dims],
        "attrs": cf.json_attrs(base.attrs, nan="NaN"),
        "placeGroups": [],
        "tags": entry.tags,
        "themes": entry.themes,
    }


@router.get("/datasets", summary="Datasets the caller may see (xcube server compatible)")
def list_datasets(
    context: ContextDep,
    principal: Annotated[Principal, Depends(listing("cube"))],
    details: Annotated[bool, Query(description="include variables and dimensions")] = False,
) -> dict[str, Any]:
    return {
        "datasets": [
            dataset_details(context, e) if details else dataset_summary(e)
            for e in visible_cubes(context, principal)
        ]
    }


@router.get(
    "/datasets/{ds}",
    summary="One dataset with its variables and dimensions",
    dependencies=[Depends(resource("cube", "ds"))],
)
def get_dataset(ds: DatasetId, context: ContextDep) -> dict[str, Any]:
    return dataset_details(context, context.catalogue.get(ds))


@router.get(
    "/datasets/{ds}/coords/{dim}",
    summary="The coordinates of one dimension",
    dependencies=[Depends(resource("cube", "ds"))],
)
def get_coordinates(
    ds: DatasetId, dim: Annotated[str, Path(max_length=128)], context: ContextDep
) -> dict[str, Any]:
    context.catalogue.get(ds)
    return coordinates(context, ds, dim)


@router.get(
    "/colorbars",
    summary="The colour maps, with a preview of each (xcube's format)",
    dependencies=[Depends(OPEN)],
)
def colorbars() -> list[Any]:
    return _colorbars()


@lru_cache(maxsize=1)
def _colorbars() -> list[Any]:
    ramp = np.tile(np.arange(255, dtype=np.uint8), (2, 1))

    def preview(name: str, categorical: bool = False) -> str:
        table = categorical_table(name) if categorical else lookup_table(name)
        return base64.b64encode(png.encode(ramp, table)).decode()

    qualitative = {
        "tab10",
        "tab20",
        "tab20b",
        "tab20c",
        "Set1",
        "Set2",
        "Set3",
        "Paired",
        "Accent",
        "Dark2",
        "Pastel1",
        "Pastel2",
    }
    ocean = [n for n in names() if n.startswith("cmo.")]
    other = [n for n in names() if n not in qualitative and n not in ocean]
    return [
        [
            "Sequential and diverging",
            "matplotlib colour maps; add _r to reverse, _alpha to fade in",
            [[n, preview(n)] for n in other],
        ],
        [
            "Ocean",
            "cmocean colour maps (also without the cmo. prefix)",
            [[n.removeprefix("cmo."), preview(n)] for n in ocean],
        ],
        [
            "Qualitative",
            "for classes (norm=cat)",
            [[n, preview(n, True)] for n in sorted(qualitative) if n in names()],
        ],
    ]


@router.get(
    "/expressions/capabilities",
    summary="What band-math expressions may contain (the `band-math` process evaluates them)",
    dependencies=[Depends(OPEN)],
)
def expression_capabilities() -> dict[str, Any]:
    """xcube viewers ask this at start-up; the namespace is the one `processes/expressions.py` parses."""
    from cubeport.processes.expressions import capabilities

    return capabilities()
