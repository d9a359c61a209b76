"""Readers that turn product files (Zarr, NetCDF, GeoTIFF/COG) into normalised cube fragments.

Each reader opens lazily and checks what can be checked without reading the data, so that a bad file is
reported by name before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rioxarray
import xarray as xr

from cubeport.cubes import cf
from cubeport.errors import InputError

GEOTIFF_SUFFIXES = {".tif", ".tiff", ".gtiff", ".cog"}
NETCDF_SUFFIXES = {".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5"}
# tried in order on file names when neither metadata nor --time-pattern gives a time
DEFAULT_TIME_PATTERNS = ("%Y%m%dT%H%M%S", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y%m%d")
_DIRECTIVES = {
    "%Y": r"\d{4}",
    "%m": r"\d{2}",
    "%d": r"\d{2}",
    "%H": r"\d{2}",
    "%M": r"\d{2}",
    "%S": r"\d{2}",
    "%j": r"\d{3}",
    "%y": r"\d{2}",
}
_TIFF_TIME_TAGS = ("TIFFTAG_DATETIME", "ACQUISITION_START_UTC", "ACQUISITION_START", "DATETIME", "time")


@dataclass
class Fragment:
    """One input, opened lazily and normalised to cube conventions."""

    source: str
    dataset: xr.Dataset

    @property
    def times(self) -> np.ndarray:
        return self.dataset["time"].values


def kind_of(path: str) -> str:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".zarr" or (p.is_dir() and ((p / ".zgroup").exists() or (p / "zarr.json").exists())):
        return "zarr"
    if suffix in NETCDF_SUFFIXES:
        return "netcdf"
    if suffix in GEOTIFF_SUFFIXES:
        return "geotiff"
    if suffix in {".grib", ".grb", ".grib2", ".grb2"}:
        raise InputError(
            f"{path}: GRIB input is not supported yet; convert it to NetCDF (e.g. with cdo or xarray)"
        )
    raise InputError(f"{path}: unknown format {suffix or '(no suffix)'}; expected .zarr, .nc or .tif")


def open_fragment(path: str, time_pattern: str | None = None, time: datetime | None = None) -> Fragment:
    """Open one input as a normalised fragment; InputError names the file and the problem."""
    if not Path(path).exists():
        raise InputError(f"{path}: no such file or folder")
    kind = kind_of(path)
    try:
        if kind == "geotiff":
            ds = _open_geotiff(path, time_pattern, time)
        elif kind == "netcdf":
            ds = xr.open_dataset(path, engine=netcdf_engine(path), chunks={}, decode_timedelta=False)
        else:
            ds = xr.open_zarr(path, chunks={}, decode_timedelta=False)
    except InputError:
        raise
    except Exception as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot read {kind} ({first_line[:200]})") from None
    if "time" not in ds.dims and time is not None:
        ds = ds.expand_dims(time=[pd.Timestamp(time).to_datetime64()])
    elif "time" not in ds.dims and time_pattern:
        ds = ds.expand_dims(time=[time_from_name(path, time_pattern)])
    return Fragment(path, cf.normalise(ds, path))


def netcdf_engine(path: str) -> str:
    """The xarray engine that notices a truncated file of this NetCDF flavour (netCDF-C reads zeros)."""
    with open(path, "rb") as f:
        signature = f.read(8)
    if signature.startswith(b"CDF"):
        return "scipy"  # classic and 64-bit offset formats
    if signature.startswith(b"\x89HDF"):
        return "h5netcdf"  # NetCDF-4 / HDF5
    return "netcdf4"


def _open_geotiff(path: str, time_pattern: str | None, time: datetime | None) -> xr.Dataset:
    da = rioxarray.open_rasterio(path, masked=False, chunks={})
    if not isinstance(da, xr.DataArray):  # a Dataset or a list of them: several subdatasets
        raise InputError(f"{path}: holds several subdatasets; give one of them")
    if da.rio.crs is None:
        raise InputError(f"{path}: no CRS (the GeoTIFF has no georeferencing); add one with gdal_edit -a_srs")
    if da.rio.transform().is_identity:
        raise InputError(f"{path}: no geotransform (GCP-only rasters need georectifying first)")
    nodata = da.rio.nodata
    names = _band_names(da)
    variables = {}
    for i, name in enumerate(names):
        band = da.isel(band=i, drop=True)
        dtype = band.dtype
        attrs = {
            k: v
            for k, v in band.attrs.items()
            if k not in ("_FillValue", "scale_factor", "add_offset", "long_name", "AREA_OR_POINT")
        }
        if nodata is not None:
            band = band.where(band != nodata).astype("float32" if dtype.itemsize <= 4 else "float64")
        band.attrs = attrs
        if nodata is not None and np.issubdtype(dtype, np.integer):
            band.encoding = {"dtype": dtype, "_FillValue": dtype.type(nodata)}
        variables[name] = band
    ds = xr.Dataset(variables)
    if time is None:
        stamp = time_from_name(path, time_pattern) if time_pattern else _time_from_tags(path, da.attrs)
        if stamp is None:
            stamp = _guess_time_from_name(path)
        if stamp is None:
            raise InputError(
                f"{path}: no time in the file's metadata or name; give --time-pattern (e.g. '%Y%m%d') or --time"
            )
        ds = ds.expand_dims(time=[stamp])
    return ds


def _band_names(da: xr.DataArray) -> list[str]:
    described = da.attrs.get("long_name")
    if isinstance(described, (tuple, list)) and len(described) == da.sizes["band"]:
        names = [
            re.sub(r"\W+", "_", str(n)).strip("_").lower() or f"band_{i + 1}" for i, n in enumerate(described)
        ]
        if len(set(names)) == len(names):
            return names
    if isinstance(described, str) and da.sizes["band"] == 1:
        return [re.sub(r"\W+", "_", described).strip("_").lower() or "band_1"]
    return [f"band_{i + 1}" for i in range(da.sizes["band"])]


def _time_from_tags(path: str, attrs: dict[str, Any]) -> np.datetime64 | None:
    for tag in _TIFF_TIME_TAGS:
        value = attrs.get(tag)
        if not value:
            continue
        text = str(value).strip()
        text = re.sub(r"^(\d{4}):(\d{2}):(\d{2})", r"\1-\2-\3", text)  # TIFF's 'YYYY:MM:DD HH:MM:SS'
        try:
            return pd.Timestamp(text).tz_localize(None).to_datetime64()
        except (ValueError, TypeError):
            raise InputError(f"{path}: metadata {tag}={value!r} is not a time") from None
    return None


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regex that finds a strftime `pattern` (e.g. '%Y%m%dT%H%M%S') in a file name."""
    parts = re.split(r"(%[a-zA-Z])", pattern)
    out = []
    for part in parts:
        if part in _DIRECTIVES:
            out.append(_DIRECTIVES[part])
        elif part.startswith("%"):
            raise InputError(
                f"time pattern {pattern!r}: {part} is not supported; use {' '.join(_DIRECTIVES)}"
            )
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def time_from_name(path: str, pattern: str) -> np.datetime64:
    """The time that `pattern` finds in the file name of `path`; InputError if it finds none."""
    name = Path(path).name
    match = pattern_regex(pattern).search(name)
    if not match:
        raise InputError(f"{path}: time pattern {pattern!r} does not match the file name")
    try:
        return np.datetime64(datetime.strptime(match.group(0), pattern), "ns")
    except ValueError as exc:
        raise InputError(f"{path}: {match.group(0)!r} is not a valid time for {pattern!r} ({exc})") from None


def _guess_time_from_name(path: str) -> np.datetime64 | None:
    for pattern in DEFAULT_TIME_PATTERNS:
        try:
            return time_from_name(path, pattern)
        except InputError:
            continue
    return None
