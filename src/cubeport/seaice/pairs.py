"""Drift between two processed scenes: both read onto the grid they share, then `drift.estimate_drift`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from pyproj import CRS
from rasterio.warp import Resampling, reproject

from cubeport.errors import InputError
from cubeport.seaice.drift import DriftField, estimate_drift, write_grid, write_vectors
from cubeport.seaice.grid import Grid

MAX_DRIFT_GAP = timedelta(days=3)  # older partners: the ice has changed too much to match patterns


@dataclass(frozen=True)
class ProcessedScene:
    """A folder written by `chain.process_delivery`: its id, start time and backscatter COG."""

    scene_id: str
    start: datetime
    raster: Path

    @classmethod
    def open(cls, folder: str | Path) -> ProcessedScene:
        record_path = Path(folder) / "scene.json"
        if not record_path.is_file():
            raise InputError(
                f"{folder}: not a processed scene (no scene.json); run `cubeport seaice process` first"
            )
        record = json.loads(record_path.read_text())
        if "backscatter" not in record.get("files", {}):
            raise InputError(f"{folder}: the scene was not rectified; process it with the rectify step")
        return cls(
            record["scene_id"],
            datetime.fromisoformat(record["start"]),
            Path(folder) / record["files"]["backscatter"],
        )


def shared_grid(first: Path, second: Path) -> Grid:
    """The overlap of two rasters of one CRS, at the coarser of their resolutions."""
    with rasterio.open(first) as a, rasterio.open(second) as b:
        if CRS.from_user_input(a.crs) != CRS.from_user_input(b.crs):
            raise InputError(
                f"{first.name} and {second.name} are in different CRSs; process both with one chart_crs"
            )
        res = max(a.res[0], b.res[0])
        west, south = max(a.bounds.left, b.bounds.left), max(a.bounds.bottom, b.bounds.bottom)
        east, north = min(a.bounds.right, b.bounds.right), min(a.bounds.top, b.bounds.top)
        crs = CRS.from_user_input(a.crs)
    if east - west < 4 * res or north - south < 4 * res:
        raise InputError(f"{first.name} and {second.name} do not overlap")
    west, north = math.floor(west / res) * res, math.ceil(north / res) * res
    width, height = int((east - west) // res), int((north - south) // res)
    return Grid(crs, Affine(res, 0, west, 0, -res, north), width, height)


def read_on(
    path: Path,
    grid: Grid,
    band: str = "sigma0_db",
    resampling: Resampling = Resampling.bilinear,
    *,
    decibels: bool = False,
) -> NDArray[np.float32]:
    """One band of a scene raster resampled onto `grid` (NaN outside the scene). `decibels`: the band is in
    dB and is resampled as linear power (averaging dB would bias the mean low under speckle)."""
    values = np.full(grid.shape, np.nan, np.float32)
    with rasterio.open(path) as src:
        names = list(src.descriptions)
        index = names.index(band) + 1 if band in names else 1
        source = src.read(index).astype(np.float32)
        if decibels:
            source = np.power(np.float32(10), source / 10)
        reproject(
            source,
            values,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=np.nan,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            dst_nodata=np.nan,
            resampling=resampling,
        )
    if decibels:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = (10 * np.log10(values)).astype(np.float32)
    return values


@dataclass(frozen=True)
class Drift:
    """The drift from `first` to `second` (the earlier and the later scene) and its files by format."""

    field: DriftField
    first: ProcessedScene
    second: ProcessedScene
    files: dict[str, Path]


def drift_between(
    first: str | Path, second: str | Path, out: str | Path, *, step_px: int = 32, patch_px: int = 32
) -> Drift:
    """Drift from the earlier to the later of two processed scenes, written as GeoPackage, GeoParquet
    (vectors) and NetCDF (grid) into `out`."""
    a, b = sorted((ProcessedScene.open(first), ProcessedScene.open(second)), key=lambda s: s.start)
    seconds = (b.start - a.start).total_seconds()
    if seconds <= 0:
        raise InputError(f"{a.scene_id} and {b.scene_id} start at the same time: no drift to measure")
    grid = shared_grid(a.raster, b.raster)
    field = estimate_drift(
        read_on(a.raster, grid),
        read_on(b.raster, grid),
        grid,
        seconds,
        step_px=step_px,
        patch_px=patch_px,
        names=(a.scene_id, b.scene_id),
    )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"drift_{a.scene_id}_{b.scene_id}"
    files = {
        "gpkg": write_vectors(field, folder / f"{stem}.gpkg"),
        "parquet": write_vectors(field, folder / f"{stem}.parquet"),
        "netcdf": write_grid(field, folder / f"{stem}.nc"),
    }
    return Drift(field, a, b, files)


def previous_overlapping(
    scene: str | Path, archive: str | Path, max_gap: timedelta = MAX_DRIFT_GAP
) -> Path | None:
    """The latest scene folder in `archive` that started before `scene` (at most `max_gap` before) and
    overlaps it: the partner for drift in a near-real-time chain. None when there is none."""
    this = ProcessedScene.open(scene)
    candidates = []
    for folder in Path(archive).glob("*/scene.json"):
        try:
            other = ProcessedScene.open(folder.parent)
        except InputError:
            continue
        if this.start - max_gap <= other.start < this.start and other.scene_id != this.scene_id:
            candidates.append((other.start, folder.parent))
    for _, folder in sorted(candidates, reverse=True):
        try:
            shared_grid(this.raster, ProcessedScene.open(folder).raster)
        except InputError:  # no overlap (or another CRS)
            continue
        return folder
    return None
