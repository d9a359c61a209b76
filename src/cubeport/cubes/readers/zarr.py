"""Zarr stores (v2 and v3), opened lazily."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from cubeport.cubes.readers.base import Product, ReadOptions, georeference_of


class ZarrReader:
    name = "zarr"

    def can_open(self, path: str) -> bool:
        p = Path(path)
        return p.suffix.lower() == ".zarr" or (
            p.is_dir() and ((p / ".zgroup").exists() or (p / "zarr.json").exists())
        )

    def open(self, path: str, options: ReadOptions | None = None) -> Product:
        ds = xr.open_zarr(path, chunks={}, decode_timedelta=False)
        return Product(path, self.name, ds, georeference_of(ds, path), dict(ds.attrs))
