"""Soak: a real `cubeport serve` under `--clients` concurrent clients for `--seconds`, on a mix of map tiles
(xcube route and WMTS), point and polygon time series, STAC search and feature pages.

Reports requests, errors (any answer other than 2xx/304, and any exception) and p50/p95/p99 per kind after
the warm-up, and the server's RSS after the warm-up and at the end. Exits non-zero on any error or on an RSS
growth of 10 % or more. Every request goes to the server on 127.0.0.1; every client loop ends at the
deadline or after `--max-requests`, whichever comes first.

Data: the demo set (`cubeport demo`: the 0.05 degree Baltic cube, stations, water bodies) built into a
temporary folder, with one STAC item (an OSTIA NetCDF from the sample data) and a public feature collection
of 5,000 points to page through; or `--data-root` with a data root of your own (`--cube`, `--variable`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import morecantile
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DATA,
    cubeport_process_class,
    environment,
    percentile,
    process_tree_rss_mb,
    run_and_report,
    square,
    table,
)

# kind: share of the requests
MIX = {
    "tile": 25,
    "wmts": 15,
    "point series": 15,
    "polygon series": 10,
    "stac search": 15,
    "feature page": 20,
}
PRODUCT = "netcdf/20170605120000-UKMO-L4_GHRSST-SSTfnd-OSTIAanom-GLOB-v02.0-fv02.0.nc"
POINTS = ("bench", "points")  # the feature collection built for paging
POINT_COUNT = 5000
RSS_LIMIT_PERCENT = 10.0
WEB_MERCATOR = morecantile.tms.get("WebMercatorQuad")


def build_data(root: Path, days: int) -> None:
    """The demo set, one STAC item and a collection of POINT_COUNT points, all public."""
    from cubeport.config import load_settings
    from cubeport.context import Context
    from cubeport.cubes.readers import open_fragment
    from cubeport.demo import BALTIC, DEMO_CUBE, build_demo
    from cubeport.features.schema import CollectionSpec

    context = Context(load_settings(data_root=str(root)))
    try:
        build_demo(context, days=days)
        context.products.keep(DEMO_CUBE, [open_fragment(str(DATA / PRODUCT))])
        database, name = POINTS
        context.features.create(CollectionSpec(database, name, {"name": "string", "value": "number"}))
        rng = random.Random(19)
        west, south, east, north = BALTIC
        context.features.insert(
            database,
            name,
            (
                {
                    "type": "Feature",
                    "geometry": {
                        "type": "Point",
                        "coordinates": [rng.uniform(west, east), rng.uniform(south, north)],
                    },
                    "properties": {"name": f"p{i}", "value": rng.random()},
                }
                for i in range(POINT_COUNT)
            ),
        )
        context.policy.set_access("collection", f"{database}.{name}", public=True)
    finally:
        context.close()


@dataclass
class Plan:
    """What the clients ask for: the cube's variable, extent and times, tiles over it, feature collections."""

    cube: str
    variable: str
    bbox: tuple[float, float, float, float]
    times: list[str]
    tiles: list[morecantile.Tile]
    collections: list[str]

    @classmethod
    def of(cls, root: Path, cube: str, variable: str, zooms: range, seed: int) -> Plan:
        from cubeport.config import load_settings
        from cubeport.context import Context

        context = Context(load_settings(data_root=str(root)))
        try:
            bbox = context.catalogue.get(cube).bbox
            times = [f"{t.isoformat()}Z" for t in context.cubes.open(cube)["time"].to_index()]
            collections = [c.id for c in context.features.list()]
        finally:
            context.close()
        west, south, east, north = bbox
        tiles = [t for z in zooms for t in WEB_MERCATOR.tiles(west, south, east, north, zooms=[z])]
        random.Random(seed).shuffle(tiles)
        return cls(cube, variable, bbox, times, tiles[:2000], collections)

    def _spot(self, rng: random.Random) -> tuple[float, float]:
        west, south, east, north = self.bbox
        return rng.uniform(west, east), rng.uniform(south, north)

    def request(self, kind: str, rng: random.Random) -> tuple[str, str, Any]:
        """(method, path with query, JSON body or None) of one request of `kind`."""
        if kind == "tile":
            t = rng.choice(self.tiles)
            when = rng.choice(self.times)
            return "GET", f"/tiles/{self.cube}/{self.variable}/{t.z}/{t.y}/{t.x}?time={when}", None
        if kind == "wmts":
            t = rng.choice(self.tiles)
            when = rng.choice([*self.times[-3:], "current"])
            layer = f"{self.cube}.{self.variable}"
            return (
                "GET",
                f"/wmts/1.0.0/tile/{layer}/default/{when}/WebMercatorQuad/{t.z}/{t.y}/{t.x}.png",
                None,
            )
        if kind == "point series":
            lon, lat = self._spot(rng)
            point = {"type": "Point", "coordinates": [lon, lat]}
            return "POST", f"/timeseries/{self.cube}/{self.variable}?aggMethods=mean", point
        if kind == "polygon series":
            lon, lat = self._spot(rng)
            return (
                "POST",
                f"/timeseries/{self.cube}/{self.variable}?aggMethods=mean,max",
                square(lon, lat, 30),
            )
        if kind == "stac search":
            lon, lat = self._spot(rng)
            box = f"{lon - 2:.3f},{lat - 1:.3f},{lon + 2:.3f},{lat + 1:.3f}"
            if rng.random() < 0.5:
                return "GET", f"/stac/search?bbox={box}&limit=10&datetime=2017-01-01T00:00:00Z/..", None
            return "POST", "/stac/search", {"intersects": square(lon, lat, 200), "limit": 10}
        if kind == "feature page":
            collection = rng.choice(self.collections)
            offset = rng.randrange(0, POINT_COUNT, 100) if collection == ".".join(POINTS) else 0
            return "GET", f"/features/collections/{collection}/items?limit=100&offset={offset}", None
        raise ValueError(kind)


@dataclass
class Record:
    at: float  # seconds since the start
    kind: str
    ms: float
    status: int | str  # an exception's class name when there was no answer


def ok(record: Record) -> bool:
    return isinstance(record.status, int) and (200 <= record.status < 300 or record.status == 304)


async def client(
    index: int, base: str, plan: Plan, started: float, args: argparse.Namespace, out: list[Record]
) -> None:
    """One client over its own connection: requests one after another until the deadline or the cap."""
    rng = random.Random(args.seed * 1000 + index)
    kinds, weights = list(MIX), list(MIX.values())
    async with httpx.AsyncClient(base_url=base, timeout=args.timeout) as http:
        for _ in range(args.max_requests):
            if time.monotonic() - started >= args.seconds:
                return
            kind = rng.choices(kinds, weights)[0]
            method, url, body = plan.request(kind, rng)
            sent = time.monotonic()
            status: int | str
            try:
                response = await http.request(method, url, json=body)
                status = response.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            out.append(Record(sent - started, kind, (time.monotonic() - sent) * 1000, status))
            if not ok(out[-1]) and args.verbose:
                print(f"error: {method} {url} -> {status}", flush=True)


async def rss_samples(pid: int, started: float, args: argparse.Namespace) -> list[tuple[float, float]]:
    """(seconds, MB) every few seconds while the clients run."""
    samples = []
    while time.monotonic() - started < args.seconds:
        samples.append((time.monotonic() - started, process_tree_rss_mb(pid)))
        await asyncio.sleep(args.rss_every)
    return samples


async def soak(base: str, pid: int, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    records: list[Record] = []
    started = time.monotonic()
    sampler = asyncio.create_task(rss_samples(pid, started, args))
    await asyncio.sleep(0)
    warmed: dict[str, float] = {}

    async def after_warm_up() -> None:
        await asyncio.sleep(args.warmup)
        warmed["rss_mb"] = process_tree_rss_mb(pid)

    marker = asyncio.create_task(after_warm_up())
    await asyncio.gather(*(client(i, base, plan, started, args, records) for i in range(args.clients)))
    await marker
    samples = await sampler
    return {
        "elapsed_s": time.monotonic() - started,
        "records": records,
        "rss_warm_mb": warmed["rss_mb"],
        "rss_end_mb": process_tree_rss_mb(pid),
        "rss_samples": samples,
    }


def summarise(records: list[Record], warmup: float) -> list[dict[str, Any]]:
    rows = []
    for kind in [*MIX, "all"]:
        mine = [r for r in records if kind in (r.kind, "all")]
        steady = [r.ms for r in mine if r.at >= warmup and ok(r)]
        rows.append(
            {
                "kind": kind,
                "requests": len(mine),
                "errors": sum(not ok(r) for r in mine),
                "p50_ms": percentile(steady, 50),
                "p95_ms": percentile(steady, 95),
                "p99_ms": percentile(steady, 99),
                "statuses": dict(Counter(str(r.status) for r in mine)),
            }
        )
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="cubeport-soak-", dir=args.tmp))
    try:
        root = Path(args.data_root) if args.data_root else work / "root"
        if not args.data_root:
            print(f"building the demo data ({args.days} days) in {root} ...", flush=True)
            build_data(root, args.days)
        plan = Plan.of(root, args.cube, args.variable, range(args.zoom_min, args.zoom_max + 1), args.seed)
        server = cubeport_process_class()(root)
        try:
            print(f"{args.clients} clients for {args.seconds} s on {server.url} ...", flush=True)
            result = asyncio.run(soak(server.url, server.process.pid, plan, args))
        finally:
            server.stop()
        errors = [r for r in result["records"] if not ok(r)]
        log_tail = server.log.read_text()[-4000:] if errors else ""
    finally:
        shutil.rmtree(work, ignore_errors=True)
    growth = 100 * (result["rss_end_mb"] - result["rss_warm_mb"]) / result["rss_warm_mb"]
    # a leak grows RSS steadily; filling bounded caches levels off: the slope of the second half tells them apart
    late = [(t, mb) for t, mb in result["rss_samples"] if t >= (args.warmup + args.seconds) / 2]
    slope = float(np.polyfit(*zip(*late, strict=True), 1)[0]) * 60 if len(late) >= 3 else float("nan")
    return {
        "environment": environment(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "tmp")},
        "elapsed_s": result["elapsed_s"],
        "results": summarise(result["records"], args.warmup),
        "error_examples": [vars(r) for r in errors[:20]],
        "server_log_tail": log_tail,
        "rss_mb": {
            "after_warmup": result["rss_warm_mb"],
            "end": result["rss_end_mb"],
            "growth_percent": growth,
            "late_slope_mb_per_min": slope,
        },
        "rss_samples": result["rss_samples"],
    }


def report(payload: dict[str, Any]) -> str:
    rows = [
        [r["kind"], r["requests"], r["errors"], r["p50_ms"], r["p95_ms"], r["p99_ms"]]
        for r in payload["results"]
    ]
    total = payload["results"][-1]["requests"]
    rss = payload["rss_mb"]
    lines = [
        table(["kind", "requests", "errors", "p50 ms", "p95 ms", "p99 ms"], rows),
        "",
        f"{total / payload['elapsed_s']:.0f} requests/s in all; percentiles after the first "
        f"{payload['settings']['warmup']:.0f} s, answered requests only",
        f"server RSS: {rss['after_warmup']:.0f} MB after the warm-up, {rss['end']:.0f} MB at the end "
        f"({rss['growth_percent']:+.1f} %); {rss['late_slope_mb_per_min']:+.1f} MB a minute over the last half",
    ]
    for example in payload["error_examples"][:5]:
        lines.append(f"error: {json.dumps(example)}")
    return "\n".join(lines)


def failed(payload: dict[str, Any]) -> list[str]:
    reasons = []
    errors = payload["results"][-1]["errors"]
    if errors:
        reasons.append(f"{errors} errors")
    if payload["rss_mb"]["growth_percent"] >= RSS_LIMIT_PERCENT:
        reasons.append(
            f"RSS grew {payload['rss_mb']['growth_percent']:.1f} % (limit {RSS_LIMIT_PERCENT:.0f} %)"
        )
    return reasons


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument(
        "--warmup",
        type=float,
        default=90,
        help="seconds before the RSS baseline and timing: the server's tile and chunk caches (640 MB at most) "
        "fill in about that time under 64 clients",
    )
    parser.add_argument("--max-requests", type=int, default=100_000, help="cap on each client's requests")
    parser.add_argument("--timeout", type=float, default=60, help="seconds a client waits for an answer")
    parser.add_argument("--rss-every", type=float, default=5, help="seconds between RSS samples")
    parser.add_argument("--data-root", default=None, help="serve this data root instead of building one")
    parser.add_argument("--days", type=int, default=122, help="days of the demo cube when building it")
    parser.add_argument("--cube", default="baltic-demo")
    parser.add_argument("--variable", default="chl")
    parser.add_argument("--zoom-min", type=int, default=3)
    parser.add_argument("--zoom-max", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="print every error as it happens")
    parser.add_argument("--tmp", default=None, help="folder for temporary files (default: system temp)")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)"
    )
    args = parser.parse_args(argv)
    reasons = failed(run_and_report("soak", run, report, args))
    if reasons:
        sys.exit("soak failed: " + ", ".join(reasons))


if __name__ == "__main__":
    main()
