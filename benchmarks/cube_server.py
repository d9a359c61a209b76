"""Cube server side by side: Cubeport against xcube server and TiTiler (titiler.xarray) on the same cube.

Map tiles: distinct Web Mercator tiles at zoom 4 to 9 over the cube, requested by `--clients` concurrent
clients (one process each), first cold (each tile once) then warm (the same tiles three times more);
tiles/s, p50/p95 latency, server RSS. Time series for the whole year: a point and a 50 km polygon mean, at
a new place each time, on the map-chunked cube and on its time-chunked copy (Cubeport reads its twin by
itself; xcube is given it as `TimeSeriesDataset`).

Every server runs as its own process on loopback with the same cube files: Cubeport's published level 0
(and twin) of `--cube` under `--data-root`, which `cubeport demo --large` builds (0.01 degree, 365 days).
The anchors come from `benchmarks/anchors.sh` (their own venvs). Ratios are Cubeport / anchor throughput.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import morecantile
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_DIR, REPO, environment, percentile, run_and_report, square, table  # noqa: E402

WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process on a free port; `rss_mb` sums the process tree (workers included)."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], ready_path: str, log: Path
    ) -> None:
        self.name, self.port = name, free_port()
        command = [part.replace("{port}", str(self.port)) for part in command]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + ready_path, timeout=5).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}")

    def rss_mb(self) -> float:
        root = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 1e6

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def tiles_over(bbox: tuple[float, float, float, float], zooms: range, limit: int, seed: int) -> list[Any]:
    """Up to `limit` distinct tiles per zoom over the bbox, in a random but repeatable order."""
    rng = random.Random(seed)
    chosen = []
    for z in zooms:
        tiles = list(WEB_MERCATOR.tiles(*bbox, zooms=[z]))
        rng.shuffle(tiles)
        chosen += tiles[:limit]
    rng.shuffle(chosen)
    return chosen


def _fetch_all(urls: list[str]) -> tuple[list[float], int]:
    """One client: the URLs one after another over one keep-alive connection; latencies and failures."""
    latencies, failures = [], 0
    with httpx.Client(timeout=120) as client:
        for url in urls:
            started = time.perf_counter()
            response = client.get(url)
            latencies.append((time.perf_counter() - started) * 1000)
            failures += response.status_code != 200
    return latencies, failures


def load(urls: list[str], clients: int) -> dict[str, float]:
    """Request every URL once with `clients` concurrent clients, each its own process (so that the clients do
    not queue for one GIL, which would count as server latency); throughput and latency."""
    with ProcessPoolExecutor(clients) as pool:
        list(pool.map(time.sleep, [0.2] * clients))  # start the processes before the clock does
        started = time.perf_counter()
        results = list(pool.map(_fetch_all, [urls[i::clients] for i in range(clients)]))
        elapsed = time.perf_counter() - started
    latencies = [ms for part, _ in results for ms in part]
    return {
        "requests": len(urls),
        "failures": sum(f for _, f in results),
        "per_s": len(urls) / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
    }


def time_series(
    post: Callable[[dict[str, Any]], httpx.Response], geometries: list[dict[str, Any]]
) -> dict[str, float]:
    """The first geometry warms up (opening the dataset is not what we time); each other one is a new place,
    so no server answers from chunks it decoded for the one before."""
    post(geometries[0])
    times = []
    for geometry in geometries[1:]:
        started = time.perf_counter()
        response = post(geometry)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return {"median_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}


def places(bbox: tuple[float, float, float, float], count: int, seed: int) -> list[tuple[float, float]]:
    """`count` places spread over the middle of the bbox, at least 0.7 degrees apart along x, in a repeatable
    order."""
    west, south, east, north = bbox
    rng = random.Random(seed)
    xs = [west + (east - west) * (0.2 + 0.6 * i / max(count - 1, 1)) for i in range(count)]
    rng.shuffle(xs)
    return [(x, south + (north - south) * rng.uniform(0.3, 0.7)) for x in xs]


def xcube_config(
    folder: Path, level0: str, twin: str | None, variable: str, vmin: float, vmax: float
) -> Path:
    datasets = [
        {
            "Identifier": "cube",
            "Title": "cube",
            "FileSystem": "file",
            "Path": level0,
            "Style": "bench",
            **({"TimeSeriesDataset": "cube_ts"} if twin else {}),
        }
    ]
    if twin:
        datasets.append({"Identifier": "cube_ts", "FileSystem": "file", "Path": twin, "Hidden": True})
    datasets.append(
        {
            "Identifier": "cube_map",
            "Title": "map-chunked only",
            "FileSystem": "file",
            "Path": level0,
            "Style": "bench",
        }
    )
    config = {
        "Datasets": datasets,
        "Styles": [
            {
                "Identifier": "bench",
                "ColorMappings": {variable: {"ColorBar": "viridis", "ValueRange": [vmin, vmax]}},
            }
        ],
    }
    path = folder / "xcube.json"
    path.write_text(json.dumps(config))
    return path


def run(args: argparse.Namespace) -> dict[str, Any]:
    from cubeport.config import load_settings
    from cubeport.context import Context

    given_data_root = args.data_root  # recorded as given: results hold no machine's paths
    args.data_root = str(Path(args.data_root).resolve())  # the anchors' configs live in another folder
    context = Context(load_settings(data_root=args.data_root))
    pointer = context.cubes.pointer(args.cube)
    entry = context.catalogue.get(args.cube)
    style = entry.variable(args.variable).style
    cube_dir = Path(args.data_root) / "cubes" / args.cube / pointer.version
    level0, twin = str(cube_dir / "0.zarr"), str(cube_dir / "timeseries.zarr") if pointer.timeseries else None
    times = [t.isoformat() for t in context.cubes.open(args.cube)["time"].to_index()]
    west, south, east, north = entry.bbox
    tiles = tiles_over(
        (west, south, east, north), range(args.zoom_min, args.zoom_max + 1), args.tiles_per_zoom, args.seed
    )
    time_label = times[len(times) // 2][:19] + "Z"
    work = Path(tempfile.mkdtemp(prefix="cube-server-bench-"))
    servers: dict[str, Server] = {}
    results: dict[str, Any] = {"tiles": {}, "timeseries": {}, "rss_mb": {}}
    style_query = f"vmin={style.vmin}&vmax={style.vmax}&cmap=viridis&time={time_label}"
    spots = places((west, south, east, north), args.repeats + 1, args.seed)
    shapes = {
        "point": [{"type": "Point", "coordinates": [lon, lat]} for lon, lat in spots],
        "polygon 50 km": [square(lon, lat, 50) for lon, lat in spots],
    }
    try:
        servers["cubeport"] = Server(
            "cubeport",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "cubeport.api.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--workers",
                str(args.workers),
                "--log-level",
                "warning",
            ],
            {"CUBEPORT_DATA_ROOT": args.data_root},
            "/health",
            work / "cubeport.log",
        )
        if not args.cubeport_only:
            config = xcube_config(work, level0, twin, args.variable, style.vmin, style.vmax)
            servers["xcube"] = Server(
                "xcube",
                [
                    str(BENCH_DIR / ".venv-xcube/bin/xcube"),
                    "serve",
                    "--port",
                    "{port}",
                    "--address",
                    "127.0.0.1",
                    "--config",
                    str(config),
                ],
                {},
                "/datasets",
                work / "xcube.log",
            )
            servers["titiler"] = Server(
                "titiler",
                [
                    str(BENCH_DIR / ".venv-titiler/bin/python"),
                    "-m",
                    "uvicorn",
                    "titiler.xarray.main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "{port}",
                    "--log-level",
                    "warning",
                ],
                {},
                "/healthz",
                work / "titiler.log",
            )
        paths = {
            "cubeport": lambda t: f"/tiles/{args.cube}/{args.variable}/{t.z}/{t.y}/{t.x}?{style_query}",
            "xcube": lambda t: f"/tiles/cube/{args.variable}/{t.z}/{t.y}/{t.x}?crs=EPSG:3857&{style_query}",
            "titiler": lambda t: (
                f"/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png?url={level0}&variable={args.variable}"
                f"&sel=time={time_label[:-1]}&sel_method=nearest&rescale={style.vmin},{style.vmax}"
                "&colormap_name=viridis"
            ),
        }
        for name, server in servers.items():
            urls = [server.url + paths[name](t) for t in tiles]
            cold = load(urls, args.clients)
            warm = load(urls * 3, args.clients)  # three rounds, for a steadier p95
            results["tiles"][name] = {"cold": cold, "warm": warm}
            results["rss_mb"][name] = server.rss_mb()
            print(f"{name}: cold {cold['per_s']:.0f} tiles/s, warm {warm['per_s']:.0f} tiles/s", flush=True)
        # Cubeport always reads its time-chunked twin; xcube gets the twin and, as a second dataset, level 0 alone
        series_cases = {
            "cubeport": [("time-chunked", args.cube)],
            "xcube": [("time-chunked", "cube"), ("map-chunked", "cube_map")],
        }
        for name, datasets in series_cases.items():
            if name not in servers:
                continue
            with httpx.Client(base_url=servers[name].url, timeout=300) as client:
                for label, geometries in shapes.items():
                    for chunking, ds_id in datasets:
                        url = f"/timeseries/{ds_id}/{args.variable}?aggMethods=mean"
                        post = functools.partial(lambda url, g: client.post(url, content=json.dumps(g)), url)
                        results["timeseries"].setdefault(f"{label}, {chunking}", {})[name] = time_series(
                            post, geometries
                        )
            results["rss_mb"][name + " after time series"] = servers[name].rss_mb()
    finally:
        for server in servers.values():
            server.stop()
    return {
        "environment": environment(),
        "settings": {**{k: v for k, v in vars(args).items() if k != "out"}, "data_root": given_data_root},
        "tile_count": len(tiles),
        "results": results,
    }


def report(payload: dict[str, Any]) -> str:
    tiles = payload["results"]["tiles"]
    rows = [
        [name, phase, r["requests"], r["failures"], r["per_s"], r["p50_ms"], r["p95_ms"]]
        for name, phases in tiles.items()
        for phase, r in phases.items()
    ]
    lines = [table(["server", "phase", "tiles", "failed", "tiles/s", "p50 ms", "p95 ms"], rows), ""]
    for anchor in ("xcube", "titiler"):
        if anchor in tiles:
            for phase in ("cold", "warm"):
                ratio = tiles["cubeport"][phase]["per_s"] / tiles[anchor][phase]["per_s"]
                lines.append(f"tiles {phase}: Cubeport {ratio:.1f}x the throughput of {anchor}")
    series = payload["results"]["timeseries"]
    rows = [
        [case, name, r["median_ms"], r["p95_ms"]] for case, by in series.items() for name, r in by.items()
    ]
    lines += ["", table(["time series (365 steps)", "server", "median ms", "p95 ms"], rows)]
    lines += ["", "RSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in payload["results"]["rss_mb"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root",
        default=str(REPO.parent / "bench-data"),
        help="data root holding the cube (`cubeport demo --large --data-root ...`)",
    )
    parser.add_argument("--cube", default="baltic-large")
    parser.add_argument("--variable", default="chl")
    parser.add_argument("--zoom-min", type=int, default=4)
    parser.add_argument("--zoom-max", type=int, default=9)
    parser.add_argument("--tiles-per-zoom", type=int, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="Cubeport's uvicorn workers (2 cores here)")
    parser.add_argument(
        "--repeats", type=int, default=25, help="timed time series of each kind, each at a new place"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cubeport-only", action="store_true", help="skip the anchors")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)"
    )
    run_and_report("cube_server", run, report, parser.parse_args(argv))


if __name__ == "__main__":
    main()
