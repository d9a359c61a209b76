"""Tile matrix sets (morecantile): Web Mercator, WGS 84 (CRS84) and the Finnish ETRS-TM35FIN grid.

TM35FIN follows JHS 180: EPSG:3067, origin (-548576, 8388608), a 2,097,152 m square that is one 256 px
tile at zoom 0 (8192 m per pixel), halving per zoom level, as Finnish national map services tile it.
"""

from __future__ import annotations

from functools import cache

import morecantile
import numpy as np
from pyproj import CRS

from cubeport.errors import InputError, NotFoundError

TILE_SIZE = 256
TILE_MATRIX_SETS = ("WebMercatorQuad", "WorldCRS84Quad", "TM35FIN")
XCUBE_CRS = {
    "EPSG:3857": "WebMercatorQuad",
    "CRS84": "WorldCRS84Quad",
    "OGC:CRS84": "WorldCRS84Quad",
    "EPSG:4326": "WorldCRS84Quad",
}


@cache
def tile_matrix_set(name: str) -> morecantile.TileMatrixSet:
    if name == "TM35FIN":
        # `custom` has no return annotation in morecantile 7.1 (it builds a `cls`)
        tm35fin: morecantile.TileMatrixSet = morecantile.TileMatrixSet.custom(
            extent=[-548576.0, 6291456.0, 1548576.0, 8388608.0],
            crs=CRS.from_epsg(3067),
            id="TM35FIN",
            title="ETRS-TM35FIN (JHS 180)",
            minzoom=0,
            maxzoom=15,
        )
        return tm35fin
    if name not in TILE_MATRIX_SETS:
        raise NotFoundError(f"tile matrix set {name!r} unknown; use one of {', '.join(TILE_MATRIX_SETS)}")
    return morecantile.tms.get(name)


def for_xcube_crs(crs: str) -> morecantile.TileMatrixSet:
    """The tile matrix set that xcube's `crs=` parameter names."""
    if crs not in XCUBE_CRS:
        raise InputError(f"crs {crs!r} unknown; use EPSG:3857 or CRS84")
    return tile_matrix_set(XCUBE_CRS[crs])


def pixel_centres(tms: morecantile.TileMatrixSet, z: int, x: int, y: int) -> tuple[np.ndarray, np.ndarray]:
    """The x (left to right) and y (top to bottom) coordinates of a tile's pixel centres in the TMS CRS."""
    if not tms.minzoom <= z <= tms.maxzoom:
        raise InputError(f"zoom {z} outside {tms.minzoom}..{tms.maxzoom} of {tms.id}")
    matrix = tms.matrix(z)
    if not (0 <= x < matrix.matrixWidth and 0 <= y < matrix.matrixHeight):
        raise InputError(
            f"tile {z}/{y}/{x} outside the {matrix.matrixWidth}x{matrix.matrixHeight} tiles "
            f"of zoom {z} in {tms.id}"
        )
    bounds = tms.xy_bounds(morecantile.Tile(x, y, z))
    step_x = (bounds.right - bounds.left) / TILE_SIZE
    step_y = (bounds.top - bounds.bottom) / TILE_SIZE
    xs = bounds.left + (np.arange(TILE_SIZE) + 0.5) * step_x
    ys = bounds.top - (np.arange(TILE_SIZE) + 0.5) * step_y
    return xs, ys
