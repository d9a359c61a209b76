"""NetCDF (classic and NetCDF-4) products."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from cubeport.cubes.readers.base import Product, ReadOptions, georeference_of

SUFFIXES = {".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf5"}


class NetcdfReader:
    name = "netcdf"

    def can_open(self, path: str) -> bool:
        return Path(path).suffix.lower() in SUFFIXES

    def open(self, path: str, options: ReadOptions | None = None) -> Product:
        ds = xr.open_dataset(path, engine=netcdf_engine(path), chunks={}, decode_timedelta=False)
        return Product(path, self.name, ds, georeference_of(ds, path), dict(ds.attrs))


def netcdf_engine(path: str) -> str:
    """The xarray engine that notices a truncated file of this NetCDF flavour (netCDF-C reads zeros)."""
    with open(path, "rb") as f:
        signature = f.read(8)
    if signature.startswith(b"CDF"):
        return "scipy"  # classic and 64-bit offset formats
    if signature.startswith(b"\x89HDF"):
        return "h5netcdf"  # NetCDF-4 / HDF5
    return "netcdf4"
