"""A synthetic ICEYE delivery off a real coast: the truth scene of scenes.py with GSHHG land at the true pixel
positions, written by deliveries.py. Shared by the chain, publishing, CLI, process and benchmark code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from deliveries import SAMPLE_CF, Geometry, scene_geometry, write_current, write_legacy
from numpy.typing import NDArray
from pyproj import Transformer
from scenes import Scene, to_dn, truth_scene

from cubeport.seaice.grid import CHART_MERCATOR, grid_covering
from cubeport.seaice.landmask import land_mask

# Off Oulu in the Bothnian Bay: the near range is sea, the far range reaches the Finnish coast.
OULU = (25.05, 65.05)


@dataclass(frozen=True)
class Frame:
    """A written delivery and the truth it was made from."""

    delivery: Path
    truth: Scene
    geometry: Geometry
    start: datetime


def land_in_radar_geometry(geometry: Geometry, polygons: str, resolution: float = 20.0) -> NDArray[np.bool_]:
    """GSHHG land at each pixel centre of the frame: rasterised on a fine chart grid, read at the positions."""
    rows, cols = np.mgrid[0 : geometry.height, 0 : geometry.width]
    lon, lat = geometry.lonlat(rows, cols)
    grid = grid_covering([lon.min(), lon.max()], [lat.min(), lat.max()], CHART_MERCATOR, resolution)
    land = land_mask(grid, polygons, 0.0)
    x, y = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True).transform(lon, lat)
    col, row = ~grid.transform @ (x, y)
    col = np.clip(np.floor(col).astype(int), 0, grid.width - 1)
    row = np.clip(np.floor(row).astype(int), 0, grid.height - 1)
    return np.asarray(land[row, col], dtype=bool)


def write_frame(
    folder: Path,
    polygons: str,
    *,
    shape: tuple[int, int] = (1000, 1000),
    seed: int = 7,
    spacing: float = 40.0,
    center: tuple[float, float] = OULU,
    start: datetime = datetime(2026, 2, 14, 4, 50, 12),
    generation: str = "legacy",
    style: str = "xml",
    image_id: str = "4119892",
    **options: Any,
) -> Frame:
    """A delivery of a `shape` frame (rows, cols) at `spacing` metres, its truth and geometry."""
    rows, cols = shape
    geometry = scene_geometry(cols, rows, center=center, range_spacing=spacing, azimuth_spacing=spacing)
    land = land_in_radar_geometry(geometry, polygons)
    truth = truth_scene(
        shape, seed, land=land, incidence=(geometry.incidence_near, geometry.incidence_far), **options
    )
    dn = to_dn(truth, SAMPLE_CF)
    folder.mkdir(parents=True, exist_ok=True)
    write = write_legacy if generation == "legacy" else write_current
    path = write(folder, dn, style=style, geometry=geometry, start=start, image_id=image_id)  # type: ignore[operator]
    return Frame(Path(path), truth, geometry, start)
