"""Zarr chunk read latency: local folder vs S3, and fsspec/s3fs vs obstore as the S3 client.

The OLCI sample cube (5 x 1000 x 2000) is ingested with Cubeport once into a local data root and once into
the bucket of a SeaweedFS S3 server this script starts on loopback. Its full-resolution Zarr
(`cubes/olci/{version}/0.zarr`, chunks 1 x 256 x 256, float64, Blosc lz4) is then read chunk by chunk,
variable conc_chl, through three stores:

  local    zarr LocalStore                                   (Storage.zarr_store on a local root)
  fsspec   zarr FsspecStore over an async s3fs filesystem    (Storage.zarr_store on an s3:// root)
  obstore  zarr ObjectStore over obstore.store.S3Store
  fsspec-1get  (extra) as fsspec, with s3fs max_concurrency=1: s3fs 2024.12+ sends a HEAD before every
           whole-object GET when max_concurrency > 1 (default 10), to split large objects into parallel
           range requests; this row shows what that costs per chunk

Each read is `arr[t, y0:y0+256, x0:x0+256]` of one whole chunk, picked at random (seeded; the same list for
every store). Sequential: --reads reads one after another, --rounds times, stores interleaved per round;
p50/p95/mean over all timed reads, chunks/s = reads / time. Threaded: the same reads spread over --threads
threads (zarr's synchronous API from each thread), chunks/s = reads / wall time. Before timing, every store
reads a few chunks to open its connections, and all three are checked to return identical data.

    .venv/bin/python benchmarks/chunk_reads.py
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import zarr
import zarr.storage
from obstore.store import S3Store
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    DATA,
    close_async_fs,
    close_storage,
    environment,
    median,
    percentile,
    run_and_report,
    start_s3_server,
    table,
)

from cubeport.config import S3Settings  # noqa: E402
from cubeport.cubes.ingest import plan_ingest, run_ingest  # noqa: E402
from cubeport.cubes.store import CUBES_DIR, CubeStore  # noqa: E402
from cubeport.storage import Storage  # noqa: E402

CUBE = DATA / "cubes" / "olci-north-sea-chl-5steps.zarr"
CUBE_ID = "olci"
VARIABLE = "conc_chl"
CLIENTS = ("local", "fsspec", "obstore", "fsspec-1get")


def ingest(storage: Storage) -> tuple[tuple[str, ...], float]:
    """Ingest the OLCI cube below `storage`; the path parts of its level-0 Zarr and the seconds it took."""
    store = CubeStore(storage)
    t = time.perf_counter()
    run_ingest(store, plan_ingest(store, [str(CUBE)], CUBE_ID))
    seconds = time.perf_counter() - t
    return (CUBES_DIR, CUBE_ID, store.pointer(CUBE_ID).version, "0.zarr"), seconds


def obstore_zarr_store(server: Any, prefix: str) -> zarr.storage.ObjectStore:
    s3 = S3Store(
        server.bucket,
        prefix=prefix,
        endpoint=server.endpoint,
        access_key_id=server.access_key,
        secret_access_key=server.secret_key,
        region="us-east-1",
        virtual_hosted_style_request=False,
        client_options={"allow_http": True},
    )
    return zarr.storage.ObjectStore(s3, read_only=True)


def single_get_fsspec_store(storage: Storage, parts: tuple[str, ...]) -> zarr.storage.FsspecStore:
    """Like `storage.zarr_store(*parts)` on S3, but with max_concurrency=1: one GET per chunk, no HEAD."""
    options = {**storage._storage_options(), "max_concurrency": 1}
    fs = fsspec.filesystem("s3", asynchronous=True, **options)
    return zarr.storage.FsspecStore(fs, path=storage.path(*parts), read_only=True)


def chunk_list(
    shape: tuple[int, ...], chunks: tuple[int, ...], count: int, seed: int
) -> list[tuple[int, int, int]]:
    """`count` random chunk origins (t, y0, x0) of a (time, y, x) array."""
    rng = np.random.default_rng(seed)
    grid = [-(-s // c) for s, c in zip(shape, chunks, strict=False)]
    picks = np.stack([rng.integers(0, g, count) for g in grid], axis=1)
    return [(int(t), int(y) * chunks[1], int(x) * chunks[2]) for t, y, x in picks]


def read_chunk(arr: zarr.Array, origin: tuple[int, int, int], size: int) -> np.ndarray:
    t, y0, x0 = origin
    return arr[t, y0 : y0 + size, x0 : x0 + size]


def sequential(arr: zarr.Array, origins: list[tuple[int, int, int]], size: int) -> tuple[list[float], float]:
    latencies = []
    start = time.perf_counter()
    for origin in origins:
        t = time.perf_counter()
        read_chunk(arr, origin, size)
        latencies.append(time.perf_counter() - t)
    return latencies, time.perf_counter() - start


def threaded(arr: zarr.Array, origins: list[tuple[int, int, int]], size: int, threads: int) -> float:
    with ThreadPoolExecutor(threads) as pool:
        start = time.perf_counter()
        for _ in pool.map(lambda o: read_chunk(arr, o, size), origins):
            pass
        return time.perf_counter() - start


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="cubeport-bench-chunks-", dir=args.tmp))
    server = start_s3_server()
    s3_storage = None
    stores: dict[str, Any] = {}
    try:
        print(f"S3 server (SeaweedFS) at {server.endpoint}, bucket {server.bucket}")
        local_storage = Storage(str(work / "root"))
        s3_settings = S3Settings(
            endpoint_url=server.endpoint,
            access_key_id=SecretStr(server.access_key),
            secret_access_key=SecretStr(server.secret_key),
        )
        s3_storage = Storage(f"s3://{server.bucket}/bench", s3_settings)
        local_parts, local_s = ingest(local_storage)
        s3_parts, s3_s = ingest(s3_storage)
        print(f"ingested {CUBE.name}: local {local_s:.1f} s, S3 {s3_s:.1f} s")

        t = time.perf_counter()
        stores = {
            "local": local_storage.zarr_store(*local_parts, read_only=True),
            "fsspec": s3_storage.zarr_store(*s3_parts, read_only=True),
            "obstore": obstore_zarr_store(server, "/".join(["bench", *s3_parts])),
            "fsspec-1get": single_get_fsspec_store(s3_storage, s3_parts),
        }
        arrays, open_ms = {}, {}
        for name, store in stores.items():
            t = time.perf_counter()
            arrays[name] = zarr.open_array(store, path=VARIABLE, mode="r")
            open_ms[name] = (time.perf_counter() - t) * 1e3
        arr = arrays["local"]
        size = arr.chunks[1]
        if arr.chunks != (1, size, size):
            raise SystemExit(f"unexpected chunks {arr.chunks}; expected (1, n, n)")
        chunk_mb = size * size * arr.dtype.itemsize / 1e6
        origins = chunk_list(arr.shape, arr.chunks, args.reads, args.seed)

        # warm-up (connections, first requests) and a check that all stores give the same numbers
        first_ms = {}
        for name, a in arrays.items():
            t = time.perf_counter()
            read_chunk(a, origins[0], size)
            first_ms[name] = (time.perf_counter() - t) * 1e3
        for origin in origins[: args.warmup]:
            ref = read_chunk(arrays["local"], origin, size)
            for name in CLIENTS[1:]:
                if not np.array_equal(ref, read_chunk(arrays[name], origin, size), equal_nan=True):
                    raise SystemExit(f"{name} returned different data for chunk {origin}")

        latencies: dict[str, list[float]] = {n: [] for n in CLIENTS}
        seq_time: dict[str, float] = dict.fromkeys(CLIENTS, 0.0)
        thr_runs: dict[str, list[float]] = {n: [] for n in CLIENTS}
        for rnd in range(args.rounds):
            order = CLIENTS if rnd % 2 == 0 else CLIENTS[::-1]  # alternate so no store always goes first
            for name in order:
                lat, total = sequential(arrays[name], origins, size)
                latencies[name] += lat
                seq_time[name] += total
                wall = threaded(arrays[name], origins, size, args.threads)
                thr_runs[name].append(len(origins) / wall)
                print(
                    f"  round {rnd + 1} {name:11s} sequential {len(origins) / total:7.1f} chunks/s   "
                    f"{args.threads} threads {len(origins) / wall:7.1f} chunks/s",
                    flush=True,
                )

        results = []
        for name in CLIENTS:
            lat_ms = [x * 1e3 for x in latencies[name]]
            seq_rate = len(lat_ms) / seq_time[name]
            thr_rate = median(thr_runs[name])
            results.append(
                {
                    "client": name,
                    "target": "local" if name == "local" else "s3",
                    "store": type(stores[name]).__name__,
                    "reads": len(lat_ms),
                    "open_ms": open_ms[name],
                    "first_read_ms": first_ms[name],
                    "p50_ms": percentile(lat_ms, 50),
                    "p95_ms": percentile(lat_ms, 95),
                    "mean_ms": float(np.mean(lat_ms)),
                    "max_ms": float(np.max(lat_ms)),
                    "seq_chunks_per_s": seq_rate,
                    "seq_mb_per_s": seq_rate * chunk_mb,
                    "threads": args.threads,
                    "threaded_chunks_per_s": thr_rate,
                    "threaded_mb_per_s": thr_rate * chunk_mb,
                    "threaded_runs_chunks_per_s": thr_runs[name],
                }
            )
        return {
            "benchmark": "chunk_reads",
            "environment": environment(),
            "settings": {
                "reads": args.reads,
                "rounds": args.rounds,
                "threads": args.threads,
                "seed": args.seed,
                "variable": VARIABLE,
                "shape": list(arr.shape),
                "chunks": list(arr.chunks),
                "dtype": str(arr.dtype),
                "chunk_mb_decoded": chunk_mb,
                "ingest_s": {"local": local_s, "s3": s3_s},
            },
            "results": results,
        }
    finally:
        if s3_storage is not None:
            close_storage(s3_storage)
        if "fsspec-1get" in stores:
            close_async_fs(stores["fsspec-1get"].fs)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(payload: dict[str, Any]) -> str:
    rows = [
        [
            r["client"],
            r["target"],
            r["store"],
            r["reads"],
            r["p50_ms"],
            r["p95_ms"],
            r["mean_ms"],
            r["seq_chunks_per_s"],
            r["threaded_chunks_per_s"],
            r["threaded_mb_per_s"],
            r["first_read_ms"],
        ]
        for r in payload["results"]
    ]
    threads = payload["settings"]["threads"]
    lines = [
        table(
            [
                "client",
                "target",
                "zarr store",
                "reads",
                "p50 ms",
                "p95 ms",
                "mean ms",
                "seq chunks/s",
                f"{threads}-thr chunks/s",
                f"{threads}-thr MB/s",
                "first read ms",
            ],
            rows,
        ),
        "",
    ]
    by = {r["client"]: r for r in payload["results"]}
    fs, ob, lo = by["fsspec"], by["obstore"], by["local"]
    seq = ob["seq_chunks_per_s"] / fs["seq_chunks_per_s"]
    thr = ob["threaded_chunks_per_s"] / fs["threaded_chunks_per_s"]
    faster, ratio = ("obstore", seq) if seq >= 1 else ("fsspec/s3fs", 1 / seq)
    thr_faster, thr_ratio = ("obstore", thr) if thr >= 1 else ("fsspec/s3fs", 1 / thr)
    lines.append(
        f"S3 vs local: sequential p50 {fs['p50_ms']:.2f} ms (fsspec) / {ob['p50_ms']:.2f} ms (obstore) "
        f"vs {lo['p50_ms']:.2f} ms local"
    )
    lines.append(
        f"Conclusion: {faster} is the faster S3 client for sequential chunk reads, "
        f"{ratio:.2f}x the chunks/s of the other (p50 {fs['p50_ms']:.2f} vs {ob['p50_ms']:.2f} ms); "
        f"with {threads} threads {thr_faster} is {thr_ratio:.2f}x faster."
    )
    if "fsspec-1get" in by:
        one = by["fsspec-1get"]
        lines.append(
            f"s3fs with max_concurrency=1 (no HEAD before each GET): p50 {one['p50_ms']:.2f} ms, "
            f"{one['seq_chunks_per_s']:.0f} chunks/s sequential, {one['threaded_chunks_per_s']:.0f} "
            f"with {threads} threads; obstore is still "
            f"{ob['seq_chunks_per_s'] / one['seq_chunks_per_s']:.2f}x / "
            f"{ob['threaded_chunks_per_s'] / one['threaded_chunks_per_s']:.2f}x faster"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=200, help="random chunk reads per pass")
    parser.add_argument("--rounds", type=int, default=3, help="passes per store (sequential + threaded each)")
    parser.add_argument("--threads", type=int, default=4, help="threads of the concurrent pass")
    parser.add_argument("--warmup", type=int, default=10, help="untimed reads per store (also compared)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--tmp", default=None, help="folder for temporary files (default: system temp)")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)"
    )
    args = parser.parse_args(argv)
    run_and_report("chunk_reads", run, report, args)


if __name__ == "__main__":
    main()
