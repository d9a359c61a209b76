"""Helpers shared by the benchmark scripts: the S3 test server, environment facts, tables and JSON output."""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
# the sample data beside the checkout, as the tests take it (or $CUBEPORT_SAMPLE_DATA)
DATA = Path(os.environ.get("CUBEPORT_SAMPLE_DATA") or REPO.parent / "shared" / "data")

PACKAGES = (
    "cubeport",
    "zarr",
    "xarray",
    "dask",
    "numcodecs",
    "fsspec",
    "s3fs",
    "obstore",
    "rasterio",
    "rioxarray",
    "netCDF4",
    "h5netcdf",
    "numpy",
)


def s3_server_class():
    """`S3Server` from tests/services.py (a real SeaweedFS S3 server on loopback)."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from services import S3Server  # type: ignore[import-not-found]

    return S3Server


def cubeport_process_class() -> Any:
    """`CubeportProcess` from tests/services.py (`cubeport serve` on a free loopback port, its own process)."""
    tests = str(REPO / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from services import CubeportProcess  # type: ignore[import-not-found]  # tests/ is no package

    return CubeportProcess


def process_tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB (10^6 bytes)."""
    import psutil

    root = psutil.Process(pid)
    return float(sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 1e6)


def start_s3_server():
    """Start the SeaweedFS S3 server of tests/services.py; `.stop()` it when done."""
    server = s3_server_class()().start()
    # start() leaves a synchronous s3fs filesystem in a reference cycle; collect it here, in the main
    # thread, because when the collector finalises it inside zarr's event-loop thread s3fs closes its
    # session on the wrong loop and logs a "... attached to a different loop" traceback
    gc.collect()
    return server


def environment() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table: numbers right-aligned, text left-aligned."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], (int, float)) for row in rows) if rows else False for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=False)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def write_json(name: str, payload: dict[str, Any], out_dir: Path | None = None) -> Path:
    folder = out_dir or RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.json"
    target.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return target


def close_storage(storage: Any) -> None:
    """Close the S3 clients of a `cubeport.storage.Storage` (it has no close() of its own).

    Without this, every S3 Storage leaks two aiohttp sessions, and when the garbage collector finalises the
    synchronous one from inside zarr's event-loop thread, s3fs schedules its close on the wrong loop
    ("... attached to a different loop" tracebacks). The benchmarks keep their Storage objects alive while
    timing and close them here at the end.
    """
    if not getattr(storage, "is_s3", False):
        return
    close_async_fs(storage.__dict__.get("_async_fs"))  # the cached_property, only if it was created
    fs = storage.fs
    if getattr(fs, "_s3creator", None) is not None:
        with contextlib.suppress(Exception):
            fs.close_session(fs.loop, fs._s3creator)  # on fsspec's loop, where it was made


def close_async_fs(fs: Any) -> None:
    """Close an asynchronous s3fs filesystem whose session was opened on zarr's event loop."""
    if fs is None or getattr(fs, "_s3creator", None) is None:
        return
    from zarr.core.sync import sync

    with contextlib.suppress(Exception):
        sync(fs._s3creator.__aexit__(None, None, None))
    fs._s3 = fs._s3creator = None


def square(lon: float, lat: float, km: float) -> dict[str, Any]:
    """A GeoJSON square of `km` a side centred on (lon, lat): the polygon of the area benchmarks."""
    half_lat, half_lon = km / 2 / 111.32, km / 2 / (111.32 * math.cos(math.radians(lat)))
    ring = [
        [lon - half_lon, lat - half_lat],
        [lon + half_lon, lat - half_lat],
        [lon + half_lon, lat + half_lat],
        [lon - half_lon, lat + half_lat],
        [lon - half_lon, lat - half_lat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def run_and_report(name: str, run: Any, report: Any, args: Any) -> dict[str, Any]:
    """Run a benchmark, print its table and write its JSON, timing the whole run; the figures."""
    import time

    started = time.perf_counter()
    payload = run(args)
    payload["wall_s"] = time.perf_counter() - started
    print()
    print(report(payload))
    print(f"\nwrote {write_json(name, payload, args.out)} ({payload['wall_s']:.0f} s in all)")
    return payload
