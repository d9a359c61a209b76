"""Anomalies: a cube minus its climatology, by month or by day of the year. The climatology is another cube
or the mean of the same cube over a reference period."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import xarray as xr
from pydantic import Field

from cubeport.cubes.store import check_same_grid
from cubeport.errors import InputError
from cubeport.processes.builtin.cubes import as_cube, pick, publishable, variables_check
from cubeport.processes.definition import Cube, JobContext, process
from cubeport.processes.types import OptionalCube, Variables, time_range

By = Literal["month", "dayofyear"]


def normals_of(ds: xr.Dataset, by: str) -> xr.Dataset:
    """The mean of each month (1..12) or day of the year (1..366) over the steps of `ds`, NaN skipped."""
    return ds.groupby(f"time.{by}").mean("time", skipna=True)


def subtract(ds: xr.Dataset, normals: xr.Dataset, by: str) -> xr.Dataset:
    """`ds` minus the climatology of each step's month or day of the year; InputError naming those the
    climatology lacks."""
    keys = getattr(ds["time"].dt, by).values
    missing = sorted(set(keys.tolist()) - set(normals[by].values.tolist()))
    if missing:
        shown = ", ".join(str(m) for m in missing[:12]) + (" ..." if len(missing) > 12 else "")
        label = "months" if by == "month" else "days of the year"
        raise InputError(f"the climatology has no values for the {label} {shown} of the cube's steps")
    matched = normals.sel({by: xr.DataArray(keys, dims="time", coords={"time": ds["time"]})}).drop_vars(by)
    return ds - matched


@process(
    "anomalies",
    title="Anomalies",
    version="1.0.0",
    keywords=["cube", "time", "anomaly", "climatology"],
    check=variables_check("variables"),
)
def anomalies(
    job: JobContext,
    cube: Annotated[Cube, Field(description="the cube whose anomalies to compute")],
    climatology: Annotated[
        OptionalCube,
        Field(
            description="a cube on the same grid whose steps are the normals: grouped by month or day of the "
            "year and averaged; left out, the climatology is the mean of the cube over the reference period"
        ),
    ] = None,
    by: Annotated[By, Field(description="month (default) or dayofyear (1..366)")] = "month",
    reference_start: Annotated[
        datetime | None,
        Field(description="start of the reference period (ISO 8601); the cube's first step when left out"),
    ] = None,
    reference_end: Annotated[
        datetime | None,
        Field(description="end of the reference period (ISO 8601); the cube's last step when left out"),
    ] = None,
    variables: Variables = None,
) -> xr.Dataset:
    """Each step of the cube minus the normal value of its month (or day of the year): the climatology
    cube's mean for that month, or the cube's own mean over the reference period (the whole cube when no
    period is given). NaN where either is missing. Variables keep their names and units."""
    ds = pick(as_cube(cube), variables)
    if climatology is not None:
        if reference_start is not None or reference_end is not None:
            raise InputError("give a climatology cube or a reference period, not both")
        other = as_cube(climatology, "the climatology cube")
        check_same_grid(ds, other, "the climatology cube")
        missing = [name for name in ds.data_vars if name not in other.data_vars]
        if missing:
            raise InputError(f"the climatology cube has no variable {missing[0]!r}")
        normals = normals_of(other[list(ds.data_vars)], by)
        job.log(f"climatology from a cube of {other.sizes['time']} steps")
    else:
        reference = ds.sel(time=time_range(reference_start, reference_end))
        if not reference.sizes["time"]:
            raise InputError(
                f"no step of the cube in the reference period {reference_start or '...'} to {reference_end or '...'}"
            )
        normals = normals_of(reference, by)
        job.log(f"climatology from {reference.sizes['time']} steps of the cube")
    result = subtract(ds, normals, by)
    for name in result.data_vars:
        result[name].attrs = {
            **{k: v for k, v in ds[name].attrs.items() if k == "units"},
            "long_name": f"anomaly of {ds[name].attrs.get('long_name', name)} from the {by} climatology",
        }
    job.progress(1.0, f"{result.sizes['time']} steps")
    return publishable(result.assign_attrs(ds.attrs), like=ds)


__all__ = ["anomalies", "normals_of", "subtract"]
