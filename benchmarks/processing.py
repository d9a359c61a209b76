"""Processing: monthly means of the large demo cube as a Cubeport job vs plain xarray, on one machine.

The cube is `baltic-large` of `cubeport demo --large` (0.01 degree over the Baltic, 2200 x 1350 px, 365
daily steps, variables chl and sst as float32, level 0 chunked 1 x 256 x 256). Every route computes the
same thing, the mean of each calendar month of both variables (12 steps out).

Routes
  embedded      a job of process `temporal-aggregate` (period month, method mean) through
                `context.processing.submit` and a dispatcher on the embedded executor: one fresh local
                (forkserver) process runs the job, dask's threads compute the result into the job's staging
                Zarr, then `Ingestion` publishes it as a cube (level 0, pyramid, catalogue, STAC)
  dask-1        the same job with `processing.scheduler` set to a `distributed.LocalCluster` of 1 worker
  dask-2        ... of 2 workers (processes=True, --threads threads each)
  plain         `xarray.open_zarr(level 0).resample(time="1MS").mean().to_zarr(folder)` with dask's
                default (threaded) scheduler: what a user writes by hand
  plain-dask-2  the same computed on the 2-worker cluster through a distributed Client: the like-for-like
                baseline of dask-2 (same scheduler, same workers)
  plain-fix     plain (and plain-dask-2-fix: plain-dask-2) with the input opened in the dask chunks of the fix
                below: what the hand-written route costs with the same graph as the *-fix jobs
  *-fix         embedded, dask-1 and dask-2 again with a prototype of the proposed fix: the job opens its
                input cube with dask chunks of PROCESSING_CHUNK steps x PROCESSING_TILE px (32 MiB of
                float32; a multiple of the stored 1 x 256 x 256 chunks) instead of one dask chunk per
                stored chunk, so the graph has ~40 times fewer tasks (94,000 -> 2,400). It is installed in
                the job's own process (the forkserver child or the Dask worker) by a module in the
                user-processes folder that replaces `runner._fetch`; src/ is unchanged

A job's wall time runs from `submit` until the job is seen finished (polled every 0.1 s); the
dispatcher is started before and stopped after, untimed, as a server has one running. The job's own steps
(scheduling, fetching, processing, ingesting) are read from `context.jobs.get(id).steps`. Routes are
interleaved in every repetition (so page-cache warm-up and drift hit all alike); the table gives the best
of --repeats and every run. Ratios: each job route's best / plain's best (the issue asks for Dask within
1.3x of plain xarray) and dask-1 / dask-2 (2 workers should be faster than 1).

The data root given is only read: the cube's folder is linked into a temporary data root (its own
catalogue, database and job scratch folder), which is deleted afterwards.

    .venv/bin/cubeport demo --large --data-root ../bench-data     # once (about 15 min)
    .venv/bin/python benchmarks/processing.py                      # about 2 hours on 2 cores
    .venv/bin/python benchmarks/processing.py --routes plain,dask-1-fix,dask-2-fix   # a few minutes
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, environment, run_and_report, table  # noqa: E402

from cubeport.auth.principal import Principal  # noqa: E402
from cubeport.config import load_settings  # noqa: E402
from cubeport.context import Context  # noqa: E402
from cubeport.cubes import cf  # noqa: E402
from cubeport.cubes.store import CUBES_DIR, CubeStore  # noqa: E402
from cubeport.processes import runner  # noqa: E402
from cubeport.processes.runner import unpublish  # noqa: E402

PROCESS = "temporal-aggregate"
INPUTS = {"period": "month", "method": "mean"}
USER = "bench"
POLL_SECONDS = 0.1
JOB_ROUTES = ("embedded", "dask-1", "dask-2")
FIX_ROUTES = tuple(f"{name}-fix" for name in JOB_ROUTES)
ROUTES = (*JOB_ROUTES, "plain", "plain-dask-2", *FIX_ROUTES, "plain-fix", "plain-dask-2-fix")
PROCESSING_CHUNK = 32  # time steps per dask chunk of the fix (32 x 512 x 512 float32 = 32 MiB)
PROCESSING_TILE = 512  # y/x size of a dask chunk of the fix (2 x 2 stored chunks)


# -- the data root -----------------------------------------------------------------------------------------
def prepare_root(source_root: Path, cube: str, work: Path) -> tuple[Path, Path]:
    """A temporary data root holding a link to the cube's folder, the cube in its catalogue and the
    benchmark's user; returns the root and the cube's level-0 Zarr."""
    source = Context(load_settings(data_root=str(source_root)))
    if not source.cubes.exists(cube):
        raise SystemExit(
            f"no cube {cube!r} under {source_root}: build it with "
            f"`.venv/bin/cubeport demo --large --data-root {source_root}` (about 15 min)"
        )
    pointer = source.cubes.pointer(cube)
    root = work / "root"
    (root / CUBES_DIR).mkdir(parents=True)
    (root / CUBES_DIR / cube).symlink_to((source_root / CUBES_DIR / cube).resolve(), target_is_directory=True)
    context = Context(load_settings(data_root=str(root)))
    context.catalogue.register(context.cubes.describe(cube), context.cubes)
    context.auth.directory.create_user(USER, role="editor")
    context.close()
    return root, root / CUBES_DIR / cube / pointer.version / "0.zarr"


def job_context(root: Path, work: Path, scheduler: str | None, user_processes: Path | None = None) -> Context:
    processing = {
        "scheduler": scheduler,
        "work_dir": str(work / "jobs"),
        "workers": 1,
        "user_processes": str(user_processes) if user_processes else None,
    }
    return Context(load_settings(data_root=str(root), processing=processing, log_level="warning"))


# -- the prototype of the fix -------------------------------------------------------------------------
def fix_chunks(level0: Path | Any) -> dict[str, int]:
    """The dask chunks of the fix for the cube whose level-0 Zarr (path or store) this is."""
    ydim, xdim = cf.spatial_dims(xr.open_zarr(level0, chunks=None))
    return {"time": PROCESSING_CHUNK, ydim: PROCESSING_TILE, xdim: PROCESSING_TILE}


def open_for_processing(cubes: CubeStore, cube_id: str) -> xr.Dataset:
    """A cube's level 0 with dask chunks of PROCESSING_CHUNK steps x PROCESSING_TILE px: one task reads
    2 x 2 x 32 stored chunks, where `CubeStore.open` makes one task per stored chunk."""
    pointer = cubes.pointer(cube_id)
    store = cubes.storage.zarr_store(CUBES_DIR, cube_id, pointer.version, "0.zarr", read_only=True)
    ds = xr.open_zarr(store, consolidated=True, chunks=fix_chunks(store))
    opened: xr.Dataset = ds.isel(time=slice(0, pointer.steps))
    return opened


def install_fix() -> None:
    """Make the runner of this process open cube inputs with `open_for_processing` (called in the job's
    process by the module `fix_folder` writes)."""
    original = runner._fetch
    if getattr(original, "prototype", False):
        return

    def fetch(platform: Any, process: Any, job: Any, running: Any) -> dict[str, Any]:
        values: dict[str, Any] = original(platform, process, job, running)
        for name, reference in process.references.items():
            if reference.kind == "cube" and values.get(name) is not None:
                values[name] = open_for_processing(platform.cubes, str(job.inputs[name]))
        return values

    fetch.prototype = True  # type: ignore[attr-defined]
    runner._fetch = fetch


def fix_folder(work: Path) -> Path:
    """A user-processes folder whose one module installs the fix in the process that loads it (the job's
    process loads user processes before it fetches the inputs)."""
    folder = work / "fix"
    folder.mkdir(exist_ok=True)
    (folder / "chunked_inputs.py").write_text(
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('cubeport_bench_processing', {__file__!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "module.install_fix()\n"
    )
    return folder


# -- routes ------------------------------------------------------------------------------------------------
def run_job(context: Context, cube: str) -> dict[str, Any]:
    """One temporal-aggregate job from submit to its end; its steps' durations; its output unpublished."""
    principal = Principal(USER, role="editor", via="password")
    dispatcher = context.start_dispatcher()  # the only one running: the queue holds just this job
    try:
        time.sleep(0.6)  # its first (empty) round is over; submit wakes it
        t0 = time.perf_counter()
        job = context.processing.submit(principal, PROCESS, {"cube": cube, **INPUTS})
        context.wake_dispatchers()
        while not (job := context.jobs.get(job.id)).done:
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - t0
    finally:
        context.stop_dispatcher(dispatcher)
    if job.status != "successful":
        log = "\n".join(text for _, _, text in context.jobs.logs(job.id))
        raise RuntimeError(f"job {job.id} {job.status}: {job.message}\n{log}")
    steps = {s.name: (s.finished - s.started).total_seconds() for s in job.steps if s.started and s.finished}
    in_worker = (job.finished - job.started).total_seconds() if job.finished and job.started else float("nan")
    unpublish(context, job)
    return {"seconds": wall, "job_s": in_worker, "steps_s": steps, "meters": job.meters}


def run_plain(level0: Path, out: Path, client: Any = None, fix: bool = False) -> dict[str, Any]:
    """The hand-written route: open, resample, mean, to_zarr (threaded dask, or `client`'s cluster); with
    `fix`, opened in the dask chunks of the fix."""
    t0 = time.perf_counter()
    ds = xr.open_zarr(level0, chunks=fix_chunks(level0) if fix else {})
    result = ds.resample(time="1MS").mean()
    tasks = len(result.__dask_graph__())
    delayed = result.to_zarr(out, mode="w", zarr_format=2, consolidated=True, compute=False)
    if client is None:
        delayed.compute()
    else:
        client.compute(delayed).result()
    seconds = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "tasks": tasks}


WARM_MODULES = ("cubeport.context", "cubeport.processes.runner", "cubeport.processes.builtin")


@contextlib.contextmanager
def cluster(workers: int | None, threads: int) -> Iterator[Any]:
    """A local Dask cluster (worker processes, `threads` threads each) for one run, its workers' imports
    done, closed after the run; None when `workers` is None. Started per run because idle clusters left
    running took ~0.3 of a core here (heartbeats, event loops), slowing whatever ran beside them."""
    if workers is None:
        yield None
        return
    from distributed import Client, LocalCluster

    made = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        dashboard_address=":0",
        memory_limit="auto",
        silence_logs=logging.ERROR,
    )
    try:
        with Client(made, set_as_default=False) as client:  # type: ignore[no-untyped-call]
            for module in WARM_MODULES:  # as on a long-running cluster: the job's code is imported
                client.run(importlib.import_module, module)
        yield made
    finally:
        made.close()


# -- driver ------------------------------------------------------------------------------------------------
WORKERS = {"dask-1": 1, "dask-2": 2, "plain-dask-2": 2}  # the cluster each route runs on (none: local)


def one_run(
    name: str, rep: int, args: argparse.Namespace, root: Path, level0: Path, work: Path
) -> dict[str, Any]:
    """One timed run of a route; its cluster and context are made before and closed after, untimed."""
    from distributed import Client

    base, fix = name.removesuffix("-fix"), name.endswith("-fix")
    with cluster(WORKERS.get(base), args.threads) as made:
        if base in JOB_ROUTES:
            address = made.scheduler_address if made is not None else None
            context = job_context(root, work, address, fix_folder(work) if fix else None)
            try:
                return run_job(context, args.cube)
            finally:
                context.close()
        out = work / f"plain-{rep}.zarr"
        if made is None:
            return run_plain(level0, out, fix=fix)
        with Client(made, set_as_default=False) as client:  # type: ignore[no-untyped-call]
            return run_plain(level0, out, client, fix)


def run(args: argparse.Namespace) -> dict[str, Any]:
    logging.getLogger("distributed").setLevel(logging.ERROR)  # the scheduler runs in this process
    chosen = [r for r in ROUTES if r in args.routes]
    work = Path(tempfile.mkdtemp(prefix="cubeport-bench-processing-", dir=args.tmp))
    try:
        root, level0 = prepare_root(Path(args.data_root).resolve(), args.cube, work)
        facts = cube_facts(args.cube, level0)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
        for rep in range(args.repeats):  # routes interleaved, so drift and cache warm-up hit all alike
            for name in chosen:
                load = os.getloadavg()[0]
                out = one_run(name, rep, args, root, level0, work)
                out |= {"load_before": load, "load_after": os.getloadavg()[0]}
                runs[name].append(out)
                print(f"  {name:16s} run {rep + 1}: {describe_run(out)}", flush=True)
        return {
            "benchmark": "processing",
            "environment": environment(),
            "settings": {
                "repeats": args.repeats,
                "threads_per_worker": args.threads,
                "processing_chunks_of_fix": [PROCESSING_CHUNK, PROCESSING_TILE, PROCESSING_TILE],
                "cube": facts,
            },
            "results": summarise(runs),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cube_facts(cube: str, level0: Path) -> dict[str, Any]:
    opened = xr.open_zarr(level0)
    facts: dict[str, Any] = {
        "cube": cube,
        "sizes": dict(opened.sizes),
        "variables": list(opened.data_vars),
        "chunks": {str(k): v[0] for k, v in opened.chunks.items()},
        "level0_bytes": sum(p.stat().st_size for p in level0.rglob("*") if p.is_file()),
        "decoded_bytes": int(sum(v.nbytes for v in opened.data_vars.values())),
    }
    print(
        f"cube {cube}: {facts['sizes']} chunks {facts['chunks']}, "
        f"{facts['decoded_bytes'] / 1e9:.2f} GB decoded, {facts['level0_bytes'] / 1e9:.2f} GB on disk"
    )
    return facts


def describe_run(out: dict[str, Any]) -> str:
    steps = out.get("steps_s", {})
    text = f"{out['seconds']:.1f} s"
    if steps:
        text += (
            f" (processing {steps.get('processing', 0):.1f} s, ingesting {steps.get('ingesting', 0):.1f} s)"
        )
    if "tasks" in out:
        text += f" ({out['tasks']} tasks)"
    return text + f", load {out['load_before']:.1f} -> {out['load_after']:.1f}"


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Best and every run of each route, the job's steps of its best run, and the ratios."""
    rows: dict[str, dict[str, Any]] = {}
    for name, outs in runs.items():
        best = min(outs, key=lambda o: o["seconds"])
        rows[name] = {
            "best_s": best["seconds"],
            "runs_s": [round(o["seconds"], 3) for o in outs],
            "load_1min": [[round(o["load_before"], 2), round(o["load_after"], 2)] for o in outs],
            **{k: best[k] for k in ("job_s", "steps_s", "meters", "tasks") if k in best},
        }

    def ratio(a: str, b: str) -> float | None:
        return rows[a]["best_s"] / rows[b]["best_s"] if a in rows and b in rows else None

    ratios = {f"{name}_vs_plain": ratio(name, "plain") for name in (*JOB_ROUTES, *FIX_ROUTES)}
    ratios |= {
        "dask-2_vs_plain-dask-2": ratio("dask-2", "plain-dask-2"),
        "plain-dask-2_vs_plain": ratio("plain-dask-2", "plain"),
        "dask-2_vs_dask-1": ratio("dask-2", "dask-1"),
        "dask-2-fix_vs_dask-1-fix": ratio("dask-2-fix", "dask-1-fix"),
        "dask-2-fix_vs_plain-dask-2-fix": ratio("dask-2-fix", "plain-dask-2-fix"),
        "embedded-fix_vs_plain-fix": ratio("embedded-fix", "plain-fix"),
        "plain-fix_vs_plain": ratio("plain-fix", "plain"),
    }
    return {"routes": rows, "ratios": {k: v for k, v in ratios.items() if v is not None}}


def report(payload: dict[str, Any]) -> str:
    routes, ratios = payload["results"]["routes"], payload["results"]["ratios"]
    plain = routes["plain"]["best_s"] if "plain" in routes else float("nan")
    rows = []
    for name, r in routes.items():
        steps = r.get("steps_s", {})
        rows.append(
            [
                name,
                r["best_s"],
                r["best_s"] / plain,
                r.get("job_s", float("nan")),
                steps.get("scheduling", float("nan")),
                steps.get("processing", float("nan")),
                steps.get("ingesting", float("nan")),
                " ".join(f"{s:.1f}" for s in r["runs_s"]),
            ]
        )
    headers = ["route", "best s", "x plain", "in job s", "sched s", "process s", "ingest s", "runs (s)"]
    lines = [table(headers, rows), ""]
    for route in ("dask-2", "dask-2-fix"):
        if f"{route}_vs_plain" in ratios:
            verdict = "within" if ratios[f"{route}_vs_plain"] <= 1.3 else "NOT within"
            lines.append(f"{route} vs plain xarray: {ratios[f'{route}_vs_plain']:.2f}x ({verdict} 1.3x)")
    for route, base in (
        ("dask-2", "plain-dask-2"),
        ("dask-2-fix", "plain-dask-2-fix"),
        ("embedded-fix", "plain-fix"),
    ):
        if f"{route}_vs_{base}" in ratios:
            lines.append(
                f"{route} vs {base} (same chunks, same scheduler): {ratios[f'{route}_vs_{base}']:.2f}x"
            )
    for route in ("dask-2", "dask-2-fix"):
        if f"{route}_vs_dask-1{route[6:]}" in ratios:
            value = ratios[f"{route}_vs_dask-1{route[6:]}"]
            lines.append(
                f"{route} vs 1 worker: {value:.2f}x the time ({'faster' if value < 1 else 'NOT faster'})"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-root",
        default=str(REPO.parent / "bench-data"),
        help="data root holding the cube (`cubeport demo --large --data-root ...`); only read",
    )
    parser.add_argument("--cube", default="baltic-large")
    parser.add_argument("--repeats", type=int, default=2, help="runs per route (the best is reported)")
    parser.add_argument("--threads", type=int, default=1, help="threads per Dask worker")
    parser.add_argument(
        "--routes",
        type=lambda text: [r.strip() for r in text.split(",") if r.strip()],
        default=list(ROUTES),
        help=f"comma-separated routes to run [default: all: {','.join(ROUTES)}]",
    )
    parser.add_argument("--tmp", default=None, help="folder for temporary files (default: system temp)")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)"
    )
    args = parser.parse_args(argv)
    unknown = set(args.routes) - set(ROUTES)
    if unknown:
        parser.error(f"unknown routes {sorted(unknown)}; known: {', '.join(ROUTES)}")
    run_and_report("processing", run, report, args)


if __name__ == "__main__":
    main()
