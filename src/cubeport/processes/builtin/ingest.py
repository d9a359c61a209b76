"""`ingest`: product files at URLs into a new cube, as `cubeport ingest` does on the command line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import xarray as xr
from pydantic import Field, StringConstraints

from cubeport.errors import ConflictError, NotFoundError
from cubeport.processes.definition import CUBE_ID_SCHEMA, CubeFromFiles, Files, JobContext, process
from cubeport.processes.types import Variables

NewCubeId = Annotated[
    Annotated[str, StringConstraints(pattern=CUBE_ID_SCHEMA["pattern"])] | None,
    Field(description="id of the new cube [default: ingest-<first 8 characters of the job id>]"),
]


def _new_cube(inputs: Mapping[str, Any], open_cube: Callable[[str], xr.Dataset]) -> None:
    """Refuse at submission a cube id that is taken (a job never replaces a cube)."""
    cube_id = inputs.get("cube_id")
    if not cube_id:
        return
    try:
        open_cube(str(cube_id))
    except NotFoundError:
        return
    raise ConflictError(f"cube {cube_id!r} exists; choose another id")


@process(
    "ingest",
    title="Ingest files into a cube",
    keywords=["ingest", "netcdf", "geotiff", "zarr"],
    check=_new_cube,
)
def ingest(
    job: JobContext,
    files: Annotated[Files, Field(description="http(s) URLs of NetCDF or GeoTIFF/COG product files")],
    cube_id: NewCubeId = None,
    time_pattern: Annotated[
        str | None,
        Field(
            max_length=64, description="strftime pattern of the time in the file names, e.g. %Y%m%dT%H%M%S"
        ),
    ] = None,
    variables: Variables = None,
) -> CubeFromFiles:
    """Fetch the files, check them as one cube (grid, CRS, variables, times) and publish it with pyramids,
    a catalogue entry and the files as its STAC items; private to the job's owner."""
    job.log(f"{len(files)} files fetched")
    return CubeFromFiles(list(files), cube_id, time_pattern, list(variables) if variables else None)
