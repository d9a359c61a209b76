"""Small real inputs made from the shared samples for the tests that need many files."""

import os
import subprocess
import sys
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


SAMPLE_CUBES = {
    "olci": "olci-north-sea-chl-5steps.zarr",
    "ndvi": "s2-ndvi-slovenia-68steps.zarr",
    "sst": "ostia-sst-baltic-3steps.zarr",
}


def context_with(root: Path, data: Path, cubes: dict[str, str], **ingest_options):  # type: ignore[no-untyped-def]
    """A Context on `root` with sample cubes ingested and in the catalogue: {cube id: sample name}, where a
    sample name is a key of SAMPLE_CUBES or a folder name under ../shared/data/cubes."""
    from cubeport.config import load_settings
    from cubeport.context import Context

    context = Context(load_settings(data_root=str(root)))
    for cube_id, sample in cubes.items():
        context.ingestion([str(data / "cubes" / SAMPLE_CUBES.get(sample, sample))], cube_id, **ingest_options)
    return context


TEAM = (("leo", "editor", "fmi"), ("mia", "viewer", "syke"), ("eva", "editor", "syke"))


def add_users(context, users=TEAM) -> None:  # type: ignore[no-untyped-def]
    """Users with a role, each in a group (created on first use): (name, role, group)."""
    directory = context.auth.directory
    for name, role, group in users:
        directory.create_user(name, role=role)
        if group not in {g.name for g in directory.groups()}:
            directory.create_group(group)
        directory.add_member(group, name)


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`cubeport ARGS...` in a fresh process, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "cubeport", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def write_cube(store, sources, cube_id: str, **options):  # type: ignore[no-untyped-def]
    """The cube layer alone (plan and write, no catalogue, no STAC): for tests of the store itself."""
    from cubeport.cubes.ingest import plan_ingest, run_ingest

    return run_ingest(store, plan_ingest(store, sources, cube_id, **options))
