"""Download a planned subset with GDAL: the cube's Zarr store read over HTTP (`/vsicurl/` + GDAL's Zarr
driver, which QGIS's GDAL has since 3.4), one band per time step, written as a tiled GeoTIFF whose bands
carry their time range (description `start/end`, metadata TIME_START and TIME_END).

No Qt here: the function runs in a QgsTask's thread, or in any Python with GDAL's bindings. The credentials
are thread-local GDAL options, so they go to this server in this download only.
"""

from __future__ import annotations

import json
import math
import os
from typing import Callable

from .client import Cancelled, PluginError
from .subset import DownloadPlan

Progress = Callable[[float], bool]  # fraction done -> go on?

METADATA_DOMAIN = ""  # the default domain: what gdalinfo and QGIS's layer properties show
HTTP_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # the server lists no folders; do not ask it to
    "GDAL_HTTP_MAX_RETRY": "2",
    "GDAL_HTTP_RETRY_DELAY": "1",
}


def header_lines(headers: dict[str, str]) -> str:
    return "\r\n".join(f"{k}: {v}" for k, v in headers.items())


def download(plan: DownloadPlan, zarr_url: str, headers: dict[str, str], path: str,
             progress: Progress = lambda fraction: True, metadata: dict[str, str] | None = None,
             timeout: float = 60) -> str:
    """Write `plan` to the GeoTIFF `path` (through `path.part`, renamed when complete). Raises Cancelled
    when `progress` returns False, PluginError when GDAL fails (the caller may then ask the server why)."""
    from osgeo import gdal

    options = {**HTTP_OPTIONS, "GDAL_HTTP_TIMEOUT": str(int(timeout)),
               "GDAL_HTTP_HEADERS": header_lines(headers) or None}
    previous = {k: gdal.GetThreadLocalConfigOption(k, None) for k in options}
    part = path + ".part"
    cancelled = []

    def callback(fraction: float, message: str, data: object) -> int:
        if progress(max(0.0, min(1.0, fraction))):
            return 1
        cancelled.append(True)
        return 0

    try:
        for key, value in options.items():
            gdal.SetThreadLocalConfigOption(key, value)
        gdal.ErrorReset()
        try:
            source = gdal.OpenEx(f'ZARR:"/vsicurl/{zarr_url}"', gdal.OF_MULTIDIM_RASTER | gdal.OF_VERBOSE_ERROR)
        except RuntimeError:
            source = None
        if source is None:
            raise PluginError(f"GDAL could not open the cube's Zarr store: {gdal.GetLastErrorMsg()}")
        array = source.GetRootGroup().OpenMDArray(plan.variable)
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
            format="GTiff", outputSRS=plan.crs, outputBounds=[west, north, east, south],
            noData="nan" if nodata is not None and math.isnan(nodata) else nodata,
            creationOptions=["TILED=YES", "COMPRESS=DEFLATE", f"PREDICTOR={predictor}", "INTERLEAVE=BAND",
                             "BIGTIFF=IF_SAFER"],
            callback=callback)
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
        for key, value in previous.items():
            gdal.SetThreadLocalConfigOption(key, value)
        gdal.VSICurlClearCache()  # nothing of a restricted cube stays in memory for other readers
        if os.path.exists(part):
            os.remove(part)


def annotate(dataset: object, plan: DownloadPlan, metadata: dict[str, str]) -> None:
    """Each band's time range as its description and metadata; the cube, variable and all band times on the
    dataset, so the plugin can re-attach time stepping when a project is opened again."""
    dataset.SetMetadata({**metadata, "CUBEPORT_CUBE": plan.cube_id, "CUBEPORT_VARIABLE": plan.variable,  # type: ignore[attr-defined]
                         "CUBEPORT_BAND_TIMES": json.dumps(plan.band_times)}, METADATA_DOMAIN)
    for index, (start, end) in enumerate(plan.band_times, start=1):
        band = dataset.GetRasterBand(index)  # type: ignore[attr-defined]
        band.SetDescription(f"{start}/{end}")
        band.SetMetadata({"TIME_START": start, "TIME_END": end, "TIME": plan.times[index - 1]}, METADATA_DOMAIN)


def read_band_times(path: str) -> list[tuple[str, str]] | None:
    """The band times a downloaded GeoTIFF carries, or None for another file."""
    from osgeo import gdal

    dataset = gdal.Open(path)
    if dataset is None:
        return None
    text = dataset.GetMetadataItem("CUBEPORT_BAND_TIMES")
    return [tuple(pair) for pair in json.loads(text)] if text else None  # type: ignore[misc]
