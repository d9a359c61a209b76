"""The output grid of the chain: a CRS, an affine transform and a size (the ice-chart Mercator by default)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from pyproj import CRS, Transformer

from cubeport.config import SeaIceSettings

# The Mercator of Baltic ice charts: true scale at 61 deg 40 min N on WGS84 (seaice-facts.md section 4).
CHART_MERCATOR: str = SeaIceSettings.model_fields["chart_crs"].default


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid; `transform` maps (col, row) of pixel corners to CRS coordinates."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def resolution(self) -> float:
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the grid's CRS."""
        x0, y0 = self.transform.c, self.transform.f
        return x0, y0 + self.transform.e * self.height, x0 + self.transform.a * self.width, y0


def grid_covering(
    lons: list[float], lats: list[float], crs: str | CRS = CHART_MERCATOR, resolution: float = 50.0
) -> Grid:
    """The smallest grid of `resolution` metres, aligned on multiples of it, that covers these positions."""
    target = CRS.from_user_input(crs)
    to_grid = Transformer.from_crs("EPSG:4326", target, always_xy=True)
    xs, ys = to_grid.transform(lons, lats)
    xmin = math.floor(min(xs) / resolution) * resolution
    ymax = math.ceil(max(ys) / resolution) * resolution
    width = max(1, math.ceil((max(xs) - xmin) / resolution))
    height = max(1, math.ceil((ymax - min(ys)) / resolution))
    return Grid(target, Affine(resolution, 0, xmin, 0, -resolution, ymax), width, height)
