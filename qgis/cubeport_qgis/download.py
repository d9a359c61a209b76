"""Download a planned subset: the chunks of the window fetched from the server's `/zarr` route into a local
partial Zarr store, read by GDAL's Zarr driver (in QGIS's GDAL since 3.4) and written as a tiled GeoTIFF
with one band per time step, each band carrying its time range (description `start/end`, metadata
TIME_START and TIME_END).

No Qt here: the function runs in a QgsTask's thread, or in any Python with GDAL's bindings.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

from .client import Cancelled, PluginError
from .subset import DownloadPlan

Progress = Callable[[float], bool]  # fraction done -> go on?
Fetch = Callable[[str], "bytes | None"]  # a key of the store -> its bytes (None: a chunk not stored)
METADATA_DOMAIN = ""  # the default domain: what gdalinfo and QGIS's layer properties show
WORKERS = 4


def needed_chunks(plan: DownloadPlan, name: str, zarray: dict, dims: list[str]) -> list[str]:
    """The chunk keys of array `name` that the plan's window touches (all chunks of coordinate arrays)."""
    axes = dict(zip(dims, (plan.time, plan.y, plan.x), strict=False)) if name == plan.variable else {}
    ranges = []
    for dim, size, chunk in zip(dims, zarray["shape"], zarray["chunks"], strict=False):
        axis = axes.get(dim)
        if axis is None:
            ranges.append(range(math.ceil(size / chunk)))
        else:
            lo, hi = min(axis.start, axis.stop - axis.step), max(axis.start, axis.stop - axis.step)
            ranges.append(range(lo // chunk, hi // chunk + 1))
    separator = zarray.get("dimension_separator") or "."
    return [f"{name}/{separator.join(map(str, index))}" for index in itertools.product(*ranges)]


def fetch_store(fetch: Fetch, plan: DownloadPlan, folder: str, progress: Progress, share: float) -> None:
    """Copy the store's metadata and the chunks the plan needs to `folder`, a few requests at a time;
    Cancelled when `progress` says stop. The plugin fetches (not GDAL's HTTP reader) so that the API key
    goes to this server only and every chunk is read once, completely, or the download fails."""
    consolidated = fetch(".zmetadata")
    if consolidated is None:
        raise PluginError("the cube's store has no consolidated metadata (.zmetadata)")
    metadata = json.loads(consolidated)["metadata"]
    for key, value in metadata.items():
        _write(os.path.join(folder, key), json.dumps(value).encode())
    _write(os.path.join(folder, ".zmetadata"), consolidated)
    keys = []
    for key in metadata:
        if key.endswith("/.zarray"):
            name = key.removesuffix("/.zarray")
            dims = metadata.get(f"{name}/.zattrs", {}).get("_ARRAY_DIMENSIONS", [])
            if name == plan.variable or dims == [name]:  # the variable and coordinates
                keys += needed_chunks(plan, name, metadata[key], dims)
    done = 0
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {pool.submit(fetch, key): key for key in keys}
        try:
            for future in as_completed(futures):
                data = future.result()
                if data is not None:
                    _write(os.path.join(folder, futures[future]), data)
                done += 1
                if not progress(share * done / len(keys)):
                    raise Cancelled("The download was cancelled.")
        finally:
            for future in futures:
                future.cancel()


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as out:
        out.write(data)


def download(
    plan: DownloadPlan,
    fetch: Fetch,
    path: str,
    progress: Progress = lambda fraction: True,
    metadata: dict[str, str] | None = None,
) -> str:
    """Write `plan` to the GeoTIFF `path` (through `path.part`, renamed when complete). Raises Cancelled
    when `progress` returns False, PluginError when a request or GDAL fails."""
    from osgeo import gdal

    part, store = path + ".part", path + ".zarr.part"
    cancelled = []
    fetched = 0.8  # of the progress bar: the rest is GDAL writing the GeoTIFF

    def callback(fraction: float, message: str, data: object) -> int:
        if progress(fetched + (1 - fetched) * max(0.0, min(1.0, fraction))):
            return 1
        cancelled.append(True)
        return 0

    try:
        fetch_store(fetch, plan, store, progress, fetched)
        gdal.ErrorReset()
        try:
            opened = gdal.OpenEx(f'ZARR:"{store}"', gdal.OF_MULTIDIM_RASTER | gdal.OF_VERBOSE_ERROR)
        except RuntimeError:
            opened = None
        if opened is None:
            raise PluginError(f"GDAL could not open the cube's Zarr store: {gdal.GetLastErrorMsg()}")
        array = opened.GetRootGroup().OpenMDArray(plan.variable)
        if array is None:
            raise PluginError(f"the cube's store has no array {plan.variable!r}")
        view = array.GetView(plan.view())
        classic = view.AsClassicDataset(2, 1) if view is not None else None
        if classic is None:
            raise PluginError(f"GDAL could not read {plan.variable}{plan.view()}: {gdal.GetLastErrorMsg()}")
        nodata = array.GetNoDataValueAsDouble()
        if nodata is None and plan.dtype.startswith("float"):
            nodata = math.nan
        west, south, east, north = plan.bounds
        predictor = "3" if plan.dtype.startswith("float") else "2"
        translate = gdal.TranslateOptions(
            format="GTiff",
            outputSRS=plan.crs,
            outputBounds=[west, north, east, south],
            noData="nan" if nodata is not None and math.isnan(nodata) else nodata,
            creationOptions=[
                "TILED=YES",
                "COMPRESS=DEFLATE",
                f"PREDICTOR={predictor}",
                "INTERLEAVE=BAND",
                "BIGTIFF=IF_SAFER",
            ],
            callback=callback,
        )
        try:
            result = gdal.Translate(part, classic, options=translate)
        except RuntimeError as exc:  # when something in the process called gdal.UseExceptions()
            if not cancelled:
                raise PluginError(f"GDAL could not download the data: {exc}") from None
            result = None
        if cancelled:
            raise Cancelled("The download was cancelled.")
        if result is None:
            raise PluginError(f"GDAL could not download the data: {gdal.GetLastErrorMsg()}")
        annotate(result, plan, metadata or {})
        result.FlushCache()
        result = None
        os.replace(part, path)
        return path
    finally:
        opened = array = view = classic = None  # GDAL closes the store before it is removed
        shutil.rmtree(store, ignore_errors=True)
        if os.path.exists(part):
            os.remove(part)


def annotate(dataset: object, plan: DownloadPlan, metadata: dict[str, str]) -> None:
    """Each band's time range as its description and metadata (what gdalinfo and other tools show); the cube
    and variable on the dataset."""
    dataset.SetMetadata(
        {**metadata, "CUBEPORT_CUBE": plan.cube_id, "CUBEPORT_VARIABLE": plan.variable},  # type: ignore[attr-defined]
        METADATA_DOMAIN,
    )
    for index, (start, end) in enumerate(plan.band_times, start=1):
        band = dataset.GetRasterBand(index)  # type: ignore[attr-defined]
        band.SetDescription(f"{start}/{end}")
        band.SetMetadata(
            {"TIME_START": start, "TIME_END": end, "TIME": plan.times[index - 1]}, METADATA_DOMAIN
        )
