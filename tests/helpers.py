"""Small real inputs made from the shared samples for the tests that need many files."""

from pathlib import Path

import numpy as np
import rasterio

S1 = "sar/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"


def daily_geotiffs(data: Path, folder: Path, days: int, start_day: int = 1, size: int = 1) -> list[str]:
    """`days` GeoTIFFs named s1_201503DD.tif: the real S1 scene (tiled `size` x `size`), shifted by the day."""
    folder.mkdir(parents=True, exist_ok=True)
    with rasterio.open(data / S1) as src:
        values = src.read(1)
        profile = src.profile
    values = np.tile(values, (size, size))
    profile.update(height=values.shape[0], width=values.shape[1])
    paths = []
    for day in range(start_day, start_day + days):
        path = folder / f"s1_201503{day:02d}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.where(values == -99, values, values + day).astype("float32"), 1)
        paths.append(str(path))
    return paths
