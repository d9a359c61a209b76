"""Input types the built-in processes share: a bbox in longitude/latitude, times, variable names.

Each is an `Annotated` type, so pydantic validates it when a job is submitted (`Process.validate`, a 400
naming the input) and the process description shows its JSON Schema. The checks that a direct Python call
bypasses (a bbox's order) are also functions the processes call themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from cubeport.errors import InputError
from cubeport.processes.definition import Cube

Longitude = Annotated[float, Field(ge=-180, le=180)]
Latitude = Annotated[float, Field(ge=-90, le=90)]


def check_bbox(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The bbox as four floats; InputError unless -180 <= west < east <= 180 and -90 <= south < north <= 90."""
    try:
        west, south, east, north = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise InputError("bbox: four numbers west, south, east, north (longitude, latitude)") from None
    if not all(np.isfinite((west, south, east, north))):
        raise InputError("bbox: the numbers must be finite")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise InputError(f"bbox: longitudes must be within -180..180, not {west:g}, {east:g}")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise InputError(f"bbox: latitudes must be within -90..90, not {south:g}, {north:g}")
    if west >= east:
        raise InputError(f"bbox: west ({west:g}) must be less than east ({east:g})")
    if south >= north:
        raise InputError(f"bbox: south ({south:g}) must be less than north ({north:g})")
    return (west, south, east, north)


def _valid_bbox(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    try:
        return check_bbox(bbox)
    except InputError as e:  # pydantic reports ValueErrors as validation errors of the input
        raise ValueError(str(e).removeprefix("bbox: ")) from None


def _four_numbers(value: object) -> object:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ValueError("four numbers [west, south, east, north] (longitude, latitude)")
    return value


BBoxValue = Annotated[
    tuple[Longitude, Latitude, Longitude, Latitude],
    BeforeValidator(_four_numbers),
    AfterValidator(_valid_bbox),
]
BBox = Annotated[
    BBoxValue | None,
    Field(
        description="west, south, east, north in degrees of longitude and latitude (CRS84), "
        "west < east and south < north; the whole cube when left out"
    ),
]

VariableName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
Variables = Annotated[
    Annotated[list[VariableName], Field(min_length=1, max_length=256)] | None,
    Field(
        description="names of the cube's variables to use; all time-dependent variables when left out",
    ),
]
NewVariableName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$"),
    Field(description="name of the new variable: a letter, then letters, digits or '_' (at most 64)"),
]

# A cube input that may be left out (`Cube | None` cannot be written: a Union hashes its members, and a
# Reference holds a dict). The runner passes None when the id is left out.
OptionalCube = Cube | None  # a cube id, or null

Start = Annotated[datetime | None, Field(description="first time to include (ISO 8601; UTC when no zone)")]
End = Annotated[datetime | None, Field(description="last time to include (ISO 8601; UTC when no zone)")]


def utc64(moment: datetime | str | None) -> np.datetime64 | None:
    """A time given to a process as naive UTC datetime64[ns] (the cubes' time axis), None for None."""
    if moment is None:
        return None
    try:
        stamp = pd.Timestamp(moment)
    except (ValueError, TypeError):
        raise InputError(f"{moment!r} is not an ISO 8601 time") from None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(UTC).tz_localize(None)
    return stamp.as_unit("ns").to_datetime64()


def time_range(start: datetime | str | None, end: datetime | str | None) -> slice:
    """A time slice for `Dataset.sel`; InputError when start is after end."""
    first, last = utc64(start), utc64(end)
    if first is not None and last is not None and first > last:
        raise InputError(
            f"start ({pd.Timestamp(first).isoformat()}) is after end ({pd.Timestamp(last).isoformat()})"
        )
    return slice(first, last)


__all__ = [
    "BBox",
    "BBoxValue",
    "End",
    "Latitude",
    "Longitude",
    "NewVariableName",
    "OptionalCube",
    "Start",
    "VariableName",
    "Variables",
    "check_bbox",
    "time_range",
    "utc64",
]
