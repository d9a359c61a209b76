"""Ingestion throughput: MB/s of input files turned into a published Cubeport cube.

Cases
  netcdf          the 3 OSTIA SST NetCDF files (720 x 1440, 2 packed int16 variables each)
  geotiff-series  a daily time series of GeoTIFFs generated from the Sentinel-1 sample
                  (bilinear upsampling to --size x --size float32, speckle noise, same CRS and footprint,
                  one file per day named s1_YYYYMMDD.tif, tiled 512 x 512, uncompressed)
  geotiff-raw     the real Sentinel-1 GeoTIFF once (268 x 217 px: mostly fixed overhead)

Routes, each timed --repeats times (default 3), the median is reported
  cubeport        plan_ingest + run_ingest into a fresh data root: validation, level 0 re-chunked to
                  1 x 256 x 256, pyramid levels, consolidation, atomic publish (and the time-chunked twin
                  once a cube has 16 steps)
  cubeport-l0     the same with pyramid and twin switched off (layout settings): level 0 only
  plain           what a user writes by hand: xarray.open_mfdataset / rioxarray.open_rasterio + concat +
                  to_zarr(zarr_format=2, consolidated=True) into a fresh folder (source chunking, xarray's
                  default encoding)
  cubeport (s3)   with --s3: the cubeport route into a SeaweedFS S3 server this script starts

MB = 10^6 bytes of input files (their size on disk). The ratio is cubeport time / plain time.

    .venv/bin/python benchmarks/ingest_throughput.py            # local folder target
    .venv/bin/python benchmarks/ingest_throughput.py --s3       # also Cubeport into S3
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import rioxarray
import xarray as xr
from pydantic import SecretStr
from rasterio.enums import Resampling

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, close_storage, environment, median, run_and_report, start_s3_server, table  # noqa: E402

from cubeport.config import CubeLayoutSettings, S3Settings  # noqa: E402
from cubeport.cubes.ingest import plan_ingest, run_ingest  # noqa: E402
from cubeport.cubes.store import CubeStore  # noqa: E402
from cubeport.storage import Storage  # noqa: E402

S1_FILE = DATA / "sar" / "S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"
NETCDF_GLOB = "netcdf/*.nc"
MB = 1e6


# -- inputs ----------------------------------------------------------------------------------------------
def make_geotiff_series(folder: Path, days: int, size: int, seed: int = 0) -> list[Path]:
    """`days` GeoTIFFs of `size` x `size` float32 px upsampled from the S1 sample, one per day."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with rasterio.open(S1_FILE) as src:
        base = src.read(1, out_shape=(size, size), resampling=Resampling.bilinear, masked=True)
        transform = src.transform * src.transform.scale(src.width / size, src.height / size)
        profile = {
            "driver": "GTiff",
            "dtype": "float32",
            "count": 1,
            "width": size,
            "height": size,
            "crs": src.crs,
            "transform": transform,
            "nodata": src.nodata,
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "compress": "none",
        }
        nodata = src.nodata
    first = date(2015, 3, 9)
    files = []
    for i in range(days):
        day = first + timedelta(days=i)
        speckle = rng.normal(0.0, 0.8, size=(size, size)).astype("float32")  # dB noise so days differ
        values = np.where(base.mask, np.float32(nodata), base.filled(0) + speckle + np.float32(0.1 * i))
        path = folder / f"s1_{day:%Y%m%d}.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values.astype("float32"), 1)
            dst.update_tags(AREA_OR_POINT="Area")
        files.append(path)
    return files


def _time_in_name(path: Path) -> pd.Timestamp:
    match = re.search(r"(\d{8})(T\d{6})?", path.name)
    if not match:
        raise ValueError(f"no date in {path.name}")
    return pd.Timestamp(match.group(0))


# -- routes ----------------------------------------------------------------------------------------------
def cubeport_ingest(storage: Storage, sources: list[Path], layout: CubeLayoutSettings | None = None) -> dict:
    store = CubeStore(storage, layout)
    t0 = time.perf_counter()
    plan = plan_ingest(store, [str(s) for s in sources], "bench")
    t1 = time.perf_counter()
    info = run_ingest(store, plan)
    t2 = time.perf_counter()
    return {
        "seconds": t2 - t0,
        "plan_s": t1 - t0,
        "write_s": t2 - t1,
        "levels": info.levels,
        "timeseries": info.timeseries,
        "steps": info.dims.get("time"),
    }


def plain_netcdf(sources: list[Path], out: Path) -> dict:
    t0 = time.perf_counter()
    ds = xr.open_mfdataset([str(s) for s in sources], combine="by_coords")
    ds.to_zarr(str(out), mode="w", zarr_format=2, consolidated=True)
    return {"seconds": time.perf_counter() - t0}


def plain_geotiff(sources: list[Path], out: Path) -> dict:
    t0 = time.perf_counter()
    bands = [
        rioxarray.open_rasterio(str(s), chunks={}, masked=True)
        .squeeze("band", drop=True)
        .expand_dims(time=[_time_in_name(s)])
        for s in sources
    ]
    ds = xr.concat(bands, dim="time").to_dataset(name="band_1")
    ds.to_zarr(str(out), mode="w", zarr_format=2, consolidated=True)
    return {"seconds": time.perf_counter() - t0}


# -- driver ----------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="cubeport-bench-ingest-", dir=args.tmp))
    server = None
    s3_storages: list[Storage] = []  # kept alive while timing, closed at the end (see close_storage)
    try:
        netcdf = sorted(DATA.glob(NETCDF_GLOB))
        if len(netcdf) < 1 or not S1_FILE.exists():
            raise SystemExit(f"sample data missing below {DATA}")
        t = time.perf_counter()
        series = make_geotiff_series(work / "series", args.days, args.size)
        print(
            f"generated {len(series)} GeoTIFFs of {args.size}x{args.size} float32 in "
            f"{time.perf_counter() - t:.1f} s ({sum(p.stat().st_size for p in series) / MB:.0f} MB)"
        )
        cases = [
            ("netcdf", f"OSTIA NetCDF x{len(netcdf)}", netcdf, plain_netcdf),
            ("geotiff-series", f"S1 GeoTIFF {args.size}px x{len(series)}", series, plain_geotiff),
            ("geotiff-raw", "S1 GeoTIFF raw x1", [S1_FILE], plain_geotiff),
        ]
        s3_settings = None
        if args.s3:
            server = start_s3_server()
            s3_settings = S3Settings(
                endpoint_url=server.endpoint,
                access_key_id=SecretStr(server.access_key),
                secret_access_key=SecretStr(server.secret_key),
            )
            print(f"S3 server (SeaweedFS) at {server.endpoint}, bucket {server.bucket}")

        level0_only = CubeLayoutSettings(pyramid=False, timeseries_twin=False)
        counter = iter(range(10**6))

        def local_root() -> Storage:
            return Storage(str(work / f"root-{next(counter)}"))

        routes: list[tuple[str, str, Callable[[list[Path], Callable], dict]]] = [
            ("cubeport", "local", lambda src, plain: cubeport_ingest(local_root(), src)),
            ("plain", "local", lambda src, plain: plain(src, work / f"plain-{next(counter)}.zarr")),
        ]
        if not args.no_level0:
            routes.insert(
                1,
                ("cubeport-l0", "local", lambda src, plain: cubeport_ingest(local_root(), src, level0_only)),
            )

        def s3_root() -> Storage:
            s3_storages.append(Storage(f"s3://{server.bucket}/ingest-{next(counter)}", s3_settings))
            return s3_storages[-1]

        if server is not None:
            routes.append(("cubeport", "s3", lambda src, plain: cubeport_ingest(s3_root(), src)))

        results = []
        for case, label, sources, plain in cases:
            size = sum(p.stat().st_size for p in sources)
            runs: dict[tuple[str, str], list[dict]] = {(r, tgt): [] for r, tgt, _ in routes}
            for rep in range(args.repeats):  # routes interleaved, so drift and cache warm-up hit all alike
                for route, target, fn in routes:
                    out = fn(sources, plain)
                    runs[(route, target)].append(out)
                    print(
                        f"  {case:15s} {route:12s} {target:5s} run {rep + 1}: {out['seconds']:.2f} s",
                        flush=True,
                    )
                _clean(work)
            plain_median = median([r["seconds"] for r in runs[("plain", "local")]])
            for (route, target), outs in runs.items():
                secs = [o["seconds"] for o in outs]
                row = {
                    "case": case,
                    "label": label,
                    "files": len(sources),
                    "input_bytes": size,
                    "route": route,
                    "target": target,
                    "runs_s": [round(s, 4) for s in secs],
                    "median_s": median(secs),
                    "mb_per_s": size / MB / median(secs),
                    "ratio_vs_plain": median(secs) / plain_median,
                }
                if route.startswith("cubeport"):
                    row.update(
                        plan_s=median([o["plan_s"] for o in outs]),
                        write_s=median([o["write_s"] for o in outs]),
                        levels=outs[0]["levels"],
                        timeseries_twin=outs[0]["timeseries"],
                    )
                results.append(row)
        return {
            "benchmark": "ingest_throughput",
            "environment": environment(),
            "settings": {"repeats": args.repeats, "days": args.days, "size": args.size, "s3": args.s3},
            "results": results,
        }
    finally:
        for storage in s3_storages:
            close_storage(storage)
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _clean(work: Path) -> None:
    """Delete the cubes written so far (keeps the temp disk small; not timed)."""
    for p in work.iterdir():
        if p.name.startswith(("root-", "plain-")):
            shutil.rmtree(p, ignore_errors=True)


def report(payload: dict[str, Any]) -> str:
    rows = []
    for r in payload["results"]:
        rows.append(
            [
                r["case"],
                r["files"],
                r["input_bytes"] / MB,
                r["route"],
                r["target"],
                r["median_s"],
                r["mb_per_s"],
                r["ratio_vs_plain"],
                r.get("plan_s", float("nan")),
                r.get("write_s", float("nan")),
                r.get("levels", "-"),
                " ".join(f"{s:.2f}" for s in r["runs_s"]),
            ]
        )
    text = [
        table(
            [
                "case",
                "files",
                "input MB",
                "route",
                "target",
                "median s",
                "MB/s",
                "x plain",
                "plan s",
                "write s",
                "levels",
                "runs (s)",
            ],
            rows,
        ),
        "",
    ]
    for case in dict.fromkeys(r["case"] for r in payload["results"]):
        by = {(r["route"], r["target"]): r for r in payload["results"] if r["case"] == case}
        cp, plain = by[("cubeport", "local")], by[("plain", "local")]
        line = (
            f"{case}: Cubeport {cp['mb_per_s']:.1f} MB/s vs plain to_zarr {plain['mb_per_s']:.1f} MB/s "
            f"-> Cubeport takes {cp['ratio_vs_plain']:.2f}x the plain time"
        )
        if ("cubeport-l0", "local") in by:
            line += f" (level 0 only: {by[('cubeport-l0', 'local')]['ratio_vs_plain']:.2f}x)"
        if ("cubeport", "s3") in by:
            line += f"; into S3 {by[('cubeport', 's3')]['mb_per_s']:.1f} MB/s"
        text.append(line)
    return "\n".join(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per route and case (median reported)")
    parser.add_argument(
        "--days", type=int, default=12, help="GeoTIFFs in the generated series (16+ adds the twin)"
    )
    parser.add_argument("--size", type=int, default=2000, help="width and height of each generated GeoTIFF")
    parser.add_argument(
        "--s3", action="store_true", help="also run Cubeport ingestion into a local S3 server"
    )
    parser.add_argument("--no-level0", action="store_true", help="skip the level-0-only Cubeport route")
    parser.add_argument("--tmp", default=None, help="folder for temporary files (default: system temp)")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)"
    )
    args = parser.parse_args(argv)
    run_and_report("ingest_throughput", run, report, args)


if __name__ == "__main__":
    main()
