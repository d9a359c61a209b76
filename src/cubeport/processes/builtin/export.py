"""Export: a cube (or a cut of it) as files others read, Cloud-Optimised GeoTIFFs, NetCDF or Zarr, and a
feature collection as GeoParquet or GeoPackage. Written with the libraries' own writers (rioxarray/GDAL,
xarray, geopandas/pyogrio) into the job's folder.

COG layout: one single-band COG per variable and time step, `{variable}/{variable}_{YYYYmmddTHHMMSS}.tif`
in a zip. A step per file keeps each file a plain map layer that every GIS opens, writes step by step in
bounded memory, and goes back into Cubeport as it is (`cubeport ingest cube-cog/conc_chl/*.tif`): the
time is in TIFFTAG_DATETIME (whole seconds) and the band description is the variable's name.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path
from typing import Annotated, Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from pydantic import Field

from cubeport.cubes import cf
from cubeport.processes.builtin.cubes import publishable, variables_check
from cubeport.processes.builtin.progress import JobProgress
from cubeport.processes.builtin.subset import select
from cubeport.processes.definition import Collection, Cube, JobContext, process
from cubeport.processes.types import BBox, End, Start, Variables

CubeFormat = Literal["cog", "netcdf", "zarr"]
CollectionFormat = Literal["geoparquet", "geopackage"]
CHUNK = 512  # spatial chunk of exported Zarr and NetCDF arrays


@process(
    "export-cube",
    title="Export a cube",
    version="1.0.0",
    keywords=["cube", "export", "download", "GeoTIFF", "COG", "NetCDF", "Zarr"],
    check=variables_check("variables"),
)
def export_cube(
    job: JobContext,
    cube: Annotated[Cube, Field(description="the cube to export")],
    format: Annotated[
        CubeFormat,
        Field(
            description="cog: a zip of single-band Cloud-Optimised GeoTIFFs, one per variable and time step; "
            "netcdf: one NetCDF-4 file (CF); zarr: a zipped Zarr v2 store"
        ),
    ] = "netcdf",
    bbox: BBox = None,
    start: Start = None,
    end: End = None,
    variables: Variables = None,
) -> Path:
    """The cube, or the part of it in a bbox, time range and list of variables, as a file to download:
    a zip of Cloud-Optimised GeoTIFFs (one per variable and time step, the time in TIFFTAG_DATETIME), a
    NetCDF-4 file following CF, or a zipped Zarr v2 store."""
    ds = publishable(select(cube, bbox, start, end, variables), what="the exported cube")
    job.log(f"exporting {dict(ds.sizes)} as {format}")
    if format == "cog":
        return _cogs(job, ds, job.workdir / "cube-cog.zip")
    ds = _regular(ds)
    if format == "netcdf":
        path = job.workdir / "cube.nc"
        encoding = {str(n): {"zlib": True, "complevel": 4} for n in ds.data_vars}
        with JobProgress(job, 0.0, 1.0, "writing NetCDF"):
            _plain_attrs(ds).to_netcdf(path, engine="netcdf4", format="NETCDF4", encoding=encoding)
        return path
    folder = job.workdir / "cube.zarr"
    shutil.rmtree(folder, ignore_errors=True)
    with JobProgress(job, 0.0, 0.9, "writing Zarr"):
        ds.to_zarr(folder, mode="w", zarr_format=2, consolidated=True)
    path = job.workdir / "cube.zarr.zip"
    _zip_folder(folder, path, root="cube.zarr")
    shutil.rmtree(folder)
    job.progress(1.0, "zipped")
    return path


def _regular(ds: xr.Dataset) -> xr.Dataset:
    """The cube chunked (1, 512, 512), which Zarr needs (equal chunks) and NetCDF readers like."""
    ydim, xdim = cf.spatial_dims(ds)
    return ds.chunk({"time": 1, ydim: min(CHUNK, ds.sizes[ydim]), xdim: min(CHUNK, ds.sizes[xdim])})


def _plain_attrs(ds: xr.Dataset) -> xr.Dataset:
    """Attributes NetCDF can hold: strings, numbers and lists of them (booleans as 0/1, the rest dropped)."""

    def plain(attrs: dict[Any, Any]) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for key, value in attrs.items():
            if isinstance(value, (bool, np.bool_)):
                value = int(value)
            if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
                value = np.asarray(value)
            if isinstance(value, (str, int, float, np.number, np.ndarray)):
                kept[str(key)] = value
        return kept

    ds = ds.copy()
    ds.attrs = plain(ds.attrs)
    for variable in ds.variables.values():
        variable.attrs = plain(variable.attrs)
    return ds


def _cogs(job: JobContext, ds: xr.Dataset, path: Path) -> Path:
    """One COG per variable and step, written one at a time into the zip."""
    ydim, xdim = cf.spatial_dims(ds)
    crs = cf.crs_of(ds)
    ds = ds.sortby(ydim, ascending=False)  # north-up rows
    names = [str(n) for n in ds.data_vars]
    times = pd.DatetimeIndex(ds["time"].values)
    total, done = len(names) * len(times), 0
    scratch = job.workdir / "cog-step.tif"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in names:
            for index, moment in enumerate(times):
                band = ds[name].isel(time=index, drop=True).load()
                band = band.drop_vars([c for c in band.coords if c not in (ydim, xdim)])
                band.rio.set_spatial_dims(x_dim=xdim, y_dim=ydim, inplace=True)
                band.rio.write_crs(crs.to_wkt(), inplace=True)
                band.attrs = {"long_name": name, "units": str(ds[name].attrs.get("units", ""))}
                if np.issubdtype(band.dtype, np.floating):
                    band.rio.write_nodata(np.nan, encoded=False, inplace=True)
                elif "_FillValue" in ds[name].encoding:
                    band.rio.write_nodata(ds[name].encoding["_FillValue"], encoded=False, inplace=True)
                band.rio.to_raster(
                    scratch,
                    driver="COG",
                    compress="DEFLATE",
                    tags={"TIFFTAG_DATETIME": moment.strftime("%Y:%m:%d %H:%M:%S")},
                )
                archive.write(scratch, f"{name}/{name}_{moment.strftime('%Y%m%dT%H%M%S')}.tif")
                done += 1
                job.progress(done / total, f"{name} {cf.iso(moment)}")
    scratch.unlink(missing_ok=True)
    return path


def _zip_folder(folder: Path, path: Path, root: str) -> None:
    """The files below `folder` into a zip under `root/` (stored: Zarr chunks are compressed already)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, f"{root}/{file.relative_to(folder).as_posix()}")


@process(
    "export-collection",
    title="Export a feature collection",
    version="1.0.0",
    keywords=["features", "export", "download", "GeoParquet", "GeoPackage"],
)
def export_collection(
    job: JobContext,
    features: Annotated[Collection, Field(description="the feature collection to export")],
    format: Annotated[
        CollectionFormat,
        Field(description="geoparquet (GeoParquet 1.x) or geopackage (one layer, 'features')"),
    ] = "geoparquet",
) -> Path:
    """The feature collection as one file: GeoParquet or a GeoPackage with one layer named 'features'.
    The features' ids are kept in a column `id`; the CRS is the collection's."""
    frame = features
    if "id" not in frame.columns and frame.index.name == "id":
        frame = frame.reset_index()
    job.log(f"exporting {len(frame)} features as {format}")
    if format == "geoparquet":
        path = job.workdir / "features.parquet"
        frame.to_parquet(path, index=False)
    else:
        path = job.workdir / "features.gpkg"
        path.unlink(missing_ok=True)
        gpd.GeoDataFrame(frame).to_file(path, driver="GPKG", layer="features", engine="pyogrio")
    job.progress(1.0, f"{len(frame)} features")
    return path


__all__ = ["export_collection", "export_cube"]
