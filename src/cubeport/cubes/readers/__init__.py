"""Readers that turn product files into lazily opened products and normalised cube fragments.

One `ProductReader` a format (`zarr`, `netcdf`, `geotiff`, `iceye`), tried in order by `reader_for`. Each
opens lazily and checks what can be checked without reading the data, so that a bad file is reported by
name before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from cubeport.cubes import cf
from cubeport.cubes.readers.base import Georeference, Product, ProductReader, ReadOptions
from cubeport.cubes.readers.geotiff import GeotiffReader
from cubeport.cubes.readers.iceye import IceyeReader
from cubeport.cubes.readers.netcdf import NetcdfReader, netcdf_engine
from cubeport.cubes.readers.times import DEFAULT_TIME_PATTERNS, pattern_regex, time_from_name
from cubeport.cubes.readers.zarr import ZarrReader
from cubeport.errors import InputError

# the specific before the general: an ICEYE GeoTIFF is also a GeoTIFF
READERS: tuple[ProductReader, ...] = (IceyeReader(), ZarrReader(), NetcdfReader(), GeotiffReader())

__all__ = [
    "DEFAULT_TIME_PATTERNS",
    "READERS",
    "Fragment",
    "Georeference",
    "Product",
    "ProductReader",
    "ReadOptions",
    "kind_of",
    "netcdf_engine",
    "open_fragment",
    "open_product",
    "pattern_regex",
    "reader_for",
    "time_from_name",
]


@dataclass
class Fragment:
    """One input, opened lazily and normalised to cube conventions."""

    source: str
    dataset: xr.Dataset

    @property
    def times(self) -> np.ndarray:
        return self.dataset["time"].values


def reader_for(path: str) -> ProductReader:
    """The first reader that knows `path`; InputError saying what is expected otherwise."""
    for reader in READERS:
        if reader.can_open(path):
            return reader
    suffix = Path(path).suffix.lower()
    if suffix in {".grib", ".grb", ".grib2", ".grb2"}:
        raise InputError(
            f"{path}: GRIB input is not supported yet; convert it to NetCDF (e.g. with cdo or xarray)"
        )
    raise InputError(f"{path}: unknown format {suffix or '(no suffix)'}; expected .zarr, .nc or .tif")


def kind_of(path: str) -> str:
    """The name of the reader that opens `path`."""
    return reader_for(path).name


def open_product(path: str, options: ReadOptions | None = None) -> Product:
    """Open one product with its reader; InputError names the file and the problem."""
    if not Path(path).exists():
        raise InputError(f"{path}: no such file or folder")
    reader = reader_for(path)
    try:
        return reader.open(path, options)
    except InputError:
        raise
    except Exception as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot read {reader.name} ({first_line[:200]})") from None


def open_fragment(path: str, time_pattern: str | None = None, time: datetime | None = None) -> Fragment:
    """Open one input as a normalised cube fragment; InputError names the file and the problem."""
    product = open_product(path, ReadOptions(time_pattern, time))
    if not product.georef.is_gridded and product.georef.gcps:
        raise InputError(
            f"{path}: a {product.format} product in radar geometry (GCPs only); process it first "
            "(e.g. `cubeport seaice process`), then ingest its output"
        )
    ds = product.data
    if "time" not in ds.dims and time is not None:
        ds = ds.expand_dims(time=[pd.Timestamp(time).to_datetime64()])
    elif "time" not in ds.dims and time_pattern:
        ds = ds.expand_dims(time=[time_from_name(path, time_pattern)])
    return Fragment(path, cf.normalise(ds, path))
