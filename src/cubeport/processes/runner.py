"""Running one job, in whatever worker the executor chose: its steps, log, heartbeat, metering and outputs.

Steps as Insula describes them: scheduling (until a worker takes it) -> fetching (inputs opened, files
downloaded) -> processing (the process function; a cube result is computed chunk-wise into a staging Zarr
in the job's scratch folder) -> ingesting (outputs published: a cube through `Ingestion`, a collection into
the feature store, a file into storage), each output private to the job's owner. A failure or dismissal at
any step removes what this try published; a try that finds an earlier one's traces (its worker died)
removes them first, or fails when the process is not safe to run again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Protocol

import httpx
import psutil
import xarray as xr

from cubeport.auth.policy import Policy
from cubeport.config import Settings
from cubeport.cubes.store import CUBES_DIR, CubeStore
from cubeport.errors import CubeportError, InputError
from cubeport.features.store import FeatureStore
from cubeport.ingestion import Ingestion
from cubeport.processes.definition import CubeFromFiles, Dismissed, Process
from cubeport.processes.jobs import Job, JobStore
from cubeport.processes.registry import ProcessRegistry
from cubeport.storage import Storage

JOB_OUTPUTS = "jobs"  # storage folder of file outputs: jobs/{job id}/{file}
OUTPUT_DATABASE = "jobs"  # feature database of collection outputs: jobs.{process}-{job}
MAX_DOWNLOAD_BYTES = 4 * 2**30
STAGED = "result.zarr"  # a cube result, computed into the job's scratch folder before it is ingested


class Platform(Protocol):
    """What a job needs of the platform (a `cubeport.context.Context` is one)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def storage(self) -> Storage: ...
    @property
    def cubes(self) -> CubeStore: ...
    @property
    def ingestion(self) -> Ingestion: ...
    @property
    def policy(self) -> Policy: ...
    @property
    def features(self) -> FeatureStore: ...
    @property
    def jobs(self) -> JobStore: ...
    @property
    def processes(self) -> ProcessRegistry: ...


def work_root(settings: Settings) -> Path:
    return Path(settings.processing.work_dir or Path(tempfile.gettempdir()) / "cubeport-jobs")


def processing_chunks(platform: Platform) -> dict[str, int]:
    """Dask chunks of a cube input: 32 steps by 2 x 2 stored map chunks. The stored chunks (one step of
    256 x 256) make a year of a Baltic cube some 40,000 tasks; scheduling them cost more than the work
    (`benchmarks/processing.py`: monthly means of 365 steps 227 s -> 76 s in a local job)."""
    side = 2 * platform.settings.layout.spatial_chunk
    return {"time": 32, "lat": side, "lon": side, "y": side, "x": side}


def output_name(job: Job) -> str:
    """The id of a job's published cube or collection name: process and the job's first 8 characters."""
    return f"{job.process_id}-{job.id[:8]}"


# ------------------------------------------------------------------------------------ metering


class Meter:
    """CPU seconds, wall time, peak memory and bytes read and written of this worker process since start.

    Exact in the local executor (one process per job); on a Dask worker it counts the worker process, which
    may run other tasks at the same time."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.start = time.monotonic()
        self.cpu0 = self._cpu()
        self.read0, self.written0 = self._io()
        self.peak = self.process.memory_info().rss
        self.bytes_written = 0

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def _io(self) -> tuple[int, int]:
        try:
            io = self.process.io_counters()
            return int(getattr(io, "read_chars", io.read_bytes)), int(
                getattr(io, "write_chars", io.write_bytes)
            )
        except (psutil.AccessDenied, AttributeError):
            return 0, 0

    def sample(self) -> dict[str, float]:
        self.peak = max(self.peak, self.process.memory_info().rss)
        read, written = self._io()
        return {
            "cpu_seconds": round(self._cpu() - self.cpu0, 3),
            "wall_seconds": round(time.monotonic() - self.start, 3),
            "peak_memory_bytes": self.peak,
            "bytes_read": max(0, read - self.read0),
            "bytes_written": max(self.bytes_written, written - self.written0),
        }


# ------------------------------------------------------------------------------------ the running job


class RunningJob:
    """The JobContext a process gets, and the heartbeat that carries the meters and the dismissal flag."""

    def __init__(self, job: Job, jobs: JobStore, workdir: Path, heartbeat_seconds: float) -> None:
        self.job_id, self.owner, self.workdir = job.id, job.owner, workdir
        self.jobs = jobs
        self.meter = Meter()
        self.dismissed = threading.Event()
        self._stop = threading.Event()
        self._last_progress = -1
        self._beat = threading.Thread(target=self._heartbeat, args=(heartbeat_seconds,), daemon=True)
        self._beat.start()

    def log(self, message: str) -> None:
        self.jobs.log(self.job_id, message)

    def progress(self, fraction: float, message: str | None = None) -> None:
        self.check()
        percent = int(max(0.0, min(1.0, fraction)) * 100)
        if percent != self._last_progress or message:
            self._last_progress = percent
            self.jobs.step(self.job_id, "processing", "running", progress=percent, message=message or "")

    def check(self) -> None:
        if self.dismissed.is_set():
            raise Dismissed(self.job_id)

    def _heartbeat(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            with contextlib.suppress(Exception):  # a missed beat is retried; the job goes on
                if self.jobs.beat(self.job_id, self.meter.sample()):
                    self.dismissed.set()

    def close(self) -> dict[str, float]:
        self._stop.set()
        self._beat.join(5)
        return self.meter.sample()


# ------------------------------------------------------------------------------------ running


def run_job(job_id: str, platform: Platform, *, runner: str = "") -> None:
    """Run a claimed job to its end (successful, failed or dismissed); never raises for the process's sake."""
    jobs = platform.jobs
    job = jobs.start_try(job_id, runner or f"local:{socket.gethostname()}:{os.getpid()}")
    if job is None:
        return  # ended meanwhile (dismissed, or another try finished it)
    settings = platform.settings.processing
    workdir = work_root(platform.settings) / job.id
    shutil.rmtree(workdir, ignore_errors=True)  # traces of an earlier try whose worker died
    if job.attempt > 1:
        unpublish(platform, job)
        if not job.retry_safe or job.attempt > settings.max_attempts:
            jobs.finish(job.id, "failed", _died_message(job, settings.max_attempts))
            return
        jobs.log(
            job.id, f"try {job.attempt}: the worker of the previous try stopped; its traces were removed"
        )
    workdir.mkdir(parents=True)
    running = RunningJob(job, jobs, workdir, settings.heartbeat_seconds)
    step = "fetching"
    try:
        jobs.step(job.id, "scheduling", "successful")
        process = platform.processes.get(job.process_id)
        jobs.step(job.id, "fetching", "running")
        arguments = _fetch(platform, process, job, running)
        jobs.step(job.id, "fetching", "successful")
        step = "processing"
        jobs.step(job.id, "processing", "running", progress=0)
        result = process(running, **arguments) if process.wants_job else process(**arguments)
        staged = _stage(process, result, running)
        jobs.step(job.id, "processing", "successful")
        step = "ingesting"
        jobs.step(job.id, "ingesting", "running")
        running.check()
        results = _publish(platform, process, job, staged, running)
        meters = running.close()
        meters["bytes_written"] = max(meters["bytes_written"], running.meter.bytes_written)
        if not jobs.finish(job.id, "successful", "done", results=results, meters=meters):
            unpublish(platform, jobs.get(job.id), results)  # dismissed in the last moment
            jobs.finish(job.id, "dismissed", "dismissed as it ended; nothing was published", meters=meters)
        else:
            jobs.log(job.id, f"successful in {meters['wall_seconds']:.1f} s")
    except Dismissed:
        meters = running.close()
        unpublish(platform, jobs.get(job.id))
        jobs.finish(job.id, "dismissed", "dismissed while running", meters=meters)
        jobs.log(job.id, f"dismissed during {step}; nothing was published")
    except Exception as e:  # the job fails, the worker lives on
        meters = running.close()
        jobs.log(job.id, f"failed during {step}:\n{traceback.format_exc()}")
        with contextlib.suppress(Exception):
            unpublish(platform, jobs.get(job.id))
        jobs.finish(job.id, "failed", _message(e, workdir), meters=meters)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _died_message(job: Job, max_attempts: int) -> str:
    if not job.retry_safe:
        return f"the worker running it stopped, and process {job.process_id!r} is not safe to run again"
    return f"the worker running it stopped in each of {max_attempts} tries"


def _message(error: BaseException, workdir: Path) -> str:
    """What the client sees of a failure: the error's text, never a traceback (that is in the log) nor the
    server's paths (an ingestion error names the staging Zarr in the job's scratch folder)."""
    if isinstance(error, CubeportError):
        message = str(error)
    else:
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        message = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return message.replace(str(workdir / STAGED), "the result").replace(str(workdir), "the job's folder")


# ------------------------------------------------------------------------------------ fetching


def _fetch(platform: Platform, process: Process, job: Job, running: RunningJob) -> dict[str, Any]:
    """The process's arguments: inputs validated again, references opened (cubes lazily), files fetched."""
    values = process.validate(job.inputs)
    for name, reference in process.references.items():
        value = values.get(name)
        if value is None:
            continue
        running.check()
        if reference.kind == "cube":
            values[name] = platform.cubes.open(str(value), dask=True, chunks=processing_chunks(platform))
            running.log(f"opened cube {value}")
        elif reference.kind == "collection":
            values[name] = _read_collection(platform, str(value))
            running.log(f"read collection {value}: {len(values[name])} features")
        else:
            values[name] = [_download(str(url), running) for url in value]
    return values


def _read_collection(platform: Platform, collection_id: str) -> Any:
    """A whole collection as a GeoDataFrame indexed by feature id, in the collection's CRS."""
    import geopandas as gpd

    database, _, name = collection_id.partition(".")
    spec = platform.features.get(database, name)
    features = list(platform.features.query(database, name))
    frame = gpd.GeoDataFrame(
        [f["properties"] for f in features],
        geometry=[f["geometry"] for f in features],
        index=[f["id"] for f in features],
        crs=f"EPSG:{spec.crs}",
    )
    frame.index.name = "id"
    return frame


def _download(url: str, running: RunningJob) -> Path:
    """An http(s) input file into the scratch folder, in blocks, at most MAX_DOWNLOAD_BYTES."""
    if not url.startswith(("http://", "https://")):
        raise InputError(f"input file {url!r}: give an http(s) URL")
    target = running.workdir / "inputs" / (Path(httpx.URL(url).path).name or "download")
    target.parent.mkdir(exist_ok=True)
    size = 0
    with httpx.stream("GET", url, timeout=60, follow_redirects=False) as response:
        if response.status_code != 200:
            raise InputError(f"input file {url}: HTTP {response.status_code}")
        with target.open("wb") as file:
            for block in response.iter_bytes(2**20):
                size += len(block)
                if size > MAX_DOWNLOAD_BYTES:
                    raise InputError(f"input file {url}: larger than {MAX_DOWNLOAD_BYTES // 2**30} GiB")
                file.write(block)
                running.check()
    running.log(f"fetched {url} ({size / 2**20:.1f} MiB)")
    return target


# ------------------------------------------------------------------------------------ processing


def _stage(process: Process, result: Any, running: RunningJob) -> Any:
    """A cube result is computed into a staging Zarr (chunk by chunk, where the executor's dask runs it)."""
    if process.output != "cube":
        return result
    if not isinstance(result, xr.Dataset):
        raise TypeError(f"process {process.id!r} returned {type(result).__name__}, not an xarray Dataset")
    from cubeport.processes.builtin.cubes import publishable

    path = running.workdir / STAGED
    dataset = publishable(result, what=f"the result of {process.id}")  # user processes get the same checks
    delayed = dataset.to_zarr(path, mode="w", compute=False, zarr_format=2, consolidated=True)
    _compute(delayed, running)
    running.meter.bytes_written += _folder_size(path)
    return path


def _compute(delayed: Any, running: RunningJob) -> None:
    """Compute on the Dask cluster when running on one of its workers, else with dask's local threads;
    progress is reported and the dismissal flag checked while it runs."""
    try:
        from distributed import get_worker, worker_client

        get_worker()
    except (ImportError, ValueError):
        from dask.callbacks import Callback

        class Progress(Callback):
            def _start_state(self, dsk: Any, state: Any) -> None:
                self.total = max(1, sum(len(state[k]) for k in ("ready", "waiting", "running")))

            def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
                running.progress(len(state["finished"]) / self.total)

        with Progress():  # type: ignore[no-untyped-call]
            delayed.compute()
        return
    with worker_client() as client:
        future = client.compute(delayed)
        while not future.done():
            time.sleep(0.2)
            if running.dismissed.is_set():
                future.cancel()
                running.check()
        future.result()


def _folder_size(path: Path) -> int:
    return (
        sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


# ------------------------------------------------------------------------------------ publishing


def _publish(
    platform: Platform, process: Process, job: Job, staged: Any, running: RunningJob
) -> dict[str, Any]:
    """Publish the output, private to the job's owner; returns the job's results record."""
    name = output_name(job)
    if process.output in ("cube", "ingest"):
        files = staged if isinstance(staged, CubeFromFiles) else CubeFromFiles([Path(staged)], name)
        name = files.cube_id or name
        plan = platform.ingestion.plan(  # every input checked before anything is published
            [str(p) for p in files.sources], name, time_pattern=files.time_pattern, variables=files.variables
        )
        platform.jobs.set_results(job.id, {"result": {"kind": "cube", "id": name, "publishing": True}})
        with platform.policy.db.engine.begin() as connection:
            platform.policy.restrict_new(connection, "cube", name, owner_user=job.owner)
        platform.policy.changed("cube", name)
        done = platform.ingestion.run(plan, title=f"{process.title} ({job.id[:8]})")
        running.log(done.summary())
        return {"result": {"kind": "cube", "id": name}}
    if process.output == "collection":
        from cubeport.features.importer import import_file

        path = running.workdir / f"{name}.parquet"
        if staged.crs is not None and staged.crs.to_epsg() is None:  # the store keeps EPSG CRSs only
            staged = staged.to_crs(4326)
        staged.to_parquet(path)
        platform.jobs.set_results(
            job.id, {"result": {"kind": "collection", "id": f"{OUTPUT_DATABASE}.{name}", "publishing": True}}
        )

        def private(connection: Any) -> None:
            platform.policy.restrict_new(
                connection, "collection", f"{OUTPUT_DATABASE}.{name}", owner_user=job.owner
            )

        spec, count = import_file(
            platform.features, path, OUTPUT_DATABASE, name, title=process.title, on_create=private
        )
        platform.policy.changed("collection", spec.id)
        running.log(f"published collection {spec.id}: {count} features")
        running.meter.bytes_written += path.stat().st_size
        return {"result": {"kind": "collection", "id": spec.id}}
    if process.output == "file":
        path = Path(staged)
        platform.jobs.set_results(job.id, {"result": {"kind": "file", "name": path.name, "publishing": True}})
        platform.storage.put_file_atomic(str(path), JOB_OUTPUTS, job.id, path.name)
        running.meter.bytes_written += path.stat().st_size
        running.log(f"kept file {path.name} ({path.stat().st_size / 2**20:.1f} MiB)")
        return {"result": {"kind": "file", "name": path.name, "size": path.stat().st_size}}
    return {"result": {"kind": "value", "value": staged}}


def unpublish(platform: Platform, job: Job, results: dict[str, Any] | None = None) -> None:
    """Remove what a job (or a try of it) published: nothing of a failed job stays visible."""
    for output in (results or job.results).values():
        kind = output.get("kind")
        with contextlib.suppress(CubeportError, FileNotFoundError):
            if kind == "cube":
                if platform.cubes.exists(output["id"]):
                    platform.cubes.delete(output["id"])
                # a try killed while ingesting wrote data but no pointer yet: remove the folder all the same
                platform.storage.delete_tree(CUBES_DIR, output["id"])
                platform.ingestion.catalogue.remove(output["id"])
                platform.ingestion.products.forget(output["id"])
                platform.policy.forget("cube", output["id"])
            elif kind == "collection":
                database, _, name = output["id"].partition(".")
                platform.features.drop(database, name)
                platform.policy.forget("collection", output["id"])
            elif kind == "file":
                platform.storage.delete_tree(JOB_OUTPUTS, job.id)
    platform.jobs.set_results(job.id, {})


__all__ = ["Platform", "RunningJob", "output_name", "run_job", "unpublish", "work_root"]
