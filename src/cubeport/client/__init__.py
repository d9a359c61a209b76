"""Cubeport from Python: open a served cube as a lazy xarray Dataset over HTTP, as a local one.

    >>> from cubeport.client import open_cube
    >>> ds = open_cube("https://cubes.example.org", "baltic-demo", api_key="cpk_...")
    >>> ds["chl"].sel(lat=60.2, lon=24.9, method="nearest").plot()

Only the chunks a computation touches are fetched; access is checked by the server on every request.
Feature collections: `FeatureClient` (geoDB-like calls, GeoDataFrames). Processing: `Processes` (submit a
process as a job, wait with a progress bar, open its result as xarray or a GeoDataFrame).
"""

from __future__ import annotations

import xarray as xr
import zarr

from cubeport.client.features import FeatureClient, FeatureClientError
from cubeport.client.processes import JobFailed, JobHandle, ProcessClientError, Processes

__all__ = [
    "FeatureClient",
    "FeatureClientError",
    "JobFailed",
    "JobHandle",
    "ProcessClientError",
    "Processes",
    "open_cube",
]


def open_cube(
    server: str,
    cube_id: str,
    *,
    api_key: str | None = None,
    token: str | None = None,
    level: int = 0,
    timeseries: bool = False,
) -> xr.Dataset:
    """A served cube, lazily: `level` picks a pyramid level, `timeseries=True` the time-chunked copy (fast
    for long series at a few places). Sign in with an API key (`cubeport keys create`) or a bearer token."""
    headers = {}
    if api_key:
        headers["X-API-Key"] = api_key
    if token:
        headers["Authorization"] = f"Bearer {token}"
    name = "timeseries.zarr" if timeseries else f"{level}.zarr"
    store = zarr.storage.FsspecStore.from_url(
        f"{server.rstrip('/')}/zarr/{cube_id}/{name}", storage_options={"headers": headers}, read_only=True
    )
    try:
        dataset: xr.Dataset = xr.open_zarr(store, consolidated=True, zarr_format=2)
    except FileNotFoundError:
        raise LookupError(
            f"no cube {cube_id!r} (level {level}) at {server} that these credentials may read"
        ) from None
    return dataset
