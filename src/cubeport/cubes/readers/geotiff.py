"""GeoTIFF and COG products: bands become variables, the time comes from tags, the name or the options."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import rioxarray
import xarray as xr

from cubeport.cubes.readers.base import Georeference, Product, ReadOptions
from cubeport.cubes.readers.times import guess_time_from_name, time_from_name, time_from_tags
from cubeport.errors import InputError

SUFFIXES = {".tif", ".tiff", ".gtiff", ".cog"}


class GeotiffReader:
    name = "geotiff"

    def can_open(self, path: str) -> bool:
        return Path(path).suffix.lower() in SUFFIXES

    def open(self, path: str, options: ReadOptions | None = None) -> Product:
        options = options or ReadOptions()
        da = rioxarray.open_rasterio(path, masked=False, chunks={})
        if not isinstance(da, xr.DataArray):  # a Dataset or a list of them: several subdatasets
            raise InputError(f"{path}: holds several subdatasets; give one of them")
        if da.rio.crs is None:
            raise InputError(
                f"{path}: no CRS (the GeoTIFF has no georeferencing); add one with gdal_edit -a_srs"
            )
        if da.rio.transform().is_identity:
            raise InputError(f"{path}: no geotransform (GCP-only rasters need georectifying first)")
        georef = Georeference(crs=da.rio.crs, transform=da.rio.transform())
        ds = _bands_as_variables(da)
        if options.time is None:
            stamp = (
                time_from_name(path, options.time_pattern)
                if options.time_pattern
                else time_from_tags(path, da.attrs)
            )
            if stamp is None:
                stamp = guess_time_from_name(path)
            if stamp is None:
                raise InputError(
                    f"{path}: no time in the file's metadata or name; give --time-pattern (e.g. '%Y%m%d') or --time"
                )
            ds = ds.expand_dims(time=[stamp])
        return Product(path, self.name, ds, georef, dict(da.attrs))


def _bands_as_variables(da: xr.DataArray) -> xr.Dataset:
    nodata = da.rio.nodata
    variables = {}
    for i, name in enumerate(_band_names(da)):
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
    return xr.Dataset(variables)


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
