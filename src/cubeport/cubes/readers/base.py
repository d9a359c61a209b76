"""The reader contract: a product file opened lazily as data, georeferencing and a metadata model.

Ingestion and the sea-ice chain both pick a reader through `cubeport.cubes.readers.reader_for`, so a new
format is one module here that satisfies `ProductReader`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import xarray as xr
from affine import Affine
from pyproj import CRS
from rasterio.control import GroundControlPoint
from rasterio.rpc import RPC

from cubeport.cubes import cf
from cubeport.errors import InputError


@dataclass(frozen=True)
class ReadOptions:
    """How to find the time of a product that has no time axis."""

    time_pattern: str | None = None
    time: datetime | None = None


@dataclass(frozen=True)
class Georeference:
    """Where a product's pixels are: a CRS with an affine transform, or GCPs/RPCs of a raw (radar) image."""

    crs: CRS | None = None
    transform: Affine | None = None
    gcps: tuple[GroundControlPoint, ...] = ()
    gcps_crs: CRS | None = None
    rpcs: RPC | None = None

    @property
    def is_gridded(self) -> bool:
        """True when pixels sit on a regular grid of a CRS (ready for a cube), not only on GCPs/RPCs."""
        return self.crs is not None and (self.transform is None or not self.transform.is_identity)


@dataclass
class Product:
    """One opened product: lazy `data`, its georeferencing and the format's metadata (a model or a dict)."""

    path: str
    format: str
    data: xr.Dataset
    georef: Georeference
    metadata: Any = field(default_factory=dict)


class ProductReader(Protocol):
    """A format: says whether it knows a path (cheaply, by name or signature) and opens it lazily."""

    name: str

    def can_open(self, path: str) -> bool: ...

    def open(self, path: str, options: ReadOptions | None = None) -> Product:
        """Open `path` without reading its data; InputError (naming the file) when it cannot be read."""
        ...


def georeference_of(ds: xr.Dataset, path: str) -> Georeference:
    """The CRS of a CF dataset (its grid is in its coordinates), or none when it does not say."""
    try:
        return Georeference(crs=cf.crs_of(ds))
    except InputError:
        return Georeference()
