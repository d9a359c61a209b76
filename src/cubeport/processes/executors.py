"""Where jobs run: local worker processes of the server (the default) or a Dask distributed cluster, and the
dispatcher that feeds them from the job table, stops dismissed jobs and recovers those whose worker died."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import psutil

from cubeport.processes.jobs import Job, now
from cubeport.processes.runner import Platform, run_job, unpublish, work_root

log = logging.getLogger(__name__)
OpenPlatform = Callable[[], Platform]  # picklable (e.g. functools.partial(Context, settings))
DISMISS_GRACE_SECONDS = 2.0  # a dismissed job may stop by itself this long before it is stopped hard


class Executor(Protocol):
    """Runs jobs somewhere; the dispatcher asks it for free slots and for runs that ended."""

    name: str

    def free(self) -> int: ...
    def start(self, job: Job) -> None: ...
    def ended(self) -> list[tuple[str, str | None]]:
        """Runs that ended since the last call: (job id, None if it ended normally, else why not)."""
        ...

    def running(self) -> set[str]: ...
    def stop(self, job_id: str) -> None: ...
    def close(self) -> None: ...


# ------------------------------------------------------------------------------------ local processes


def _local_main(job_id: str, open_platform: OpenPlatform, server_pid: int) -> None:
    """A job's own process: it leaves when the server is gone (so a restarted server finds it dead)."""

    def watch() -> None:
        while alive(server_pid):
            time.sleep(1)
        os._exit(70)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's; it stops its jobs itself
    threading.Thread(target=watch, daemon=True).start()
    platform = open_platform()
    run_job(job_id, platform, runner=local_runner())


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def local_runner(pid: int | None = None) -> str:
    return f"local:{socket.gethostname()}:{pid or os.getpid()}"


class LocalExecutor:
    """One fresh process per job (forkserver: started from a clean, preloaded parent, not from the server's
    threads), at most `workers` at once. A process can be stopped at once, and it measures only its job."""

    name = "local"

    def __init__(self, open_platform: OpenPlatform, workers: int) -> None:
        self.open_platform, self.workers = open_platform, workers
        self.mp = multiprocessing.get_context("forkserver")
        # each job process forks from a server that has imported these once: start-up in well under a second
        opener = getattr(open_platform, "func", open_platform)
        self.mp.set_forkserver_preload(
            ["cubeport.processes.runner", "cubeport.processes.builtin", getattr(opener, "__module__", "")]
        )
        self.children: dict[str, Any] = {}

    def free(self) -> int:
        return self.workers - len(self.children)

    def start(self, job: Job) -> None:
        child = self.mp.Process(
            target=_local_main,
            args=(job.id, self.open_platform, os.getpid()),
            name=f"cubeport-job-{job.id[:8]}",
        )
        child.start()
        self.children[job.id] = child

    def ended(self) -> list[tuple[str, str | None]]:
        done = []
        for job_id, child in list(self.children.items()):
            if child.is_alive():
                continue
            child.join()
            del self.children[job_id]
            code = child.exitcode
            done.append((job_id, None if code == 0 else f"its worker process ended {_exit_text(code)}"))
        return done

    def running(self) -> set[str]:
        return set(self.children)

    def stop(self, job_id: str) -> None:
        child = self.children.get(job_id)
        if child is not None and child.is_alive():
            child.terminate()
            child.join(3)
            if child.is_alive():
                child.kill()
                child.join(3)

    def close(self) -> None:
        for job_id in list(self.children):
            self.stop(job_id)


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"by signal {signal.Signals(-code).name}"
    return f"with code {code}"


# ------------------------------------------------------------------------------------ Dask distributed

_worker_platforms: dict[bytes, Platform] = {}


def _dask_main(job_id: str, open_platform: OpenPlatform) -> None:
    """A job as a Dask task: the platform is opened once per worker and settings; the job's own arrays are
    computed on the cluster (see `runner._compute`)."""
    from distributed import get_worker

    key = pickle.dumps(open_platform)
    platform = _worker_platforms.get(key)
    if platform is None:
        platform = _worker_platforms[key] = open_platform()
    run_job(job_id, platform, runner=f"dask:{get_worker().address}")


class DaskExecutor:
    """Jobs as tasks on a Dask distributed cluster, at most one per worker at a time. When a worker dies the
    scheduler runs the task again elsewhere; the runner then counts a second try (see `run_job`)."""

    def __init__(self, open_platform: OpenPlatform, address: str) -> None:
        from distributed import Client

        self.open_platform = open_platform
        self.client = Client(address, set_as_default=False, timeout=10)  # type: ignore[no-untyped-call]
        self.name = f"dask:{address}"
        self.futures: dict[str, Any] = {}

    def free(self) -> int:
        workers = len(self.client.scheduler_info().get("workers", {}))
        return max(0, max(1, workers) - len(self.futures))

    def start(self, job: Job) -> None:
        self.futures[job.id] = self.client.submit(
            _dask_main,
            job.id,
            self.open_platform,
            key=f"cubeport-job-{job.id}-{uuid.uuid4().hex[:6]}",
            pure=False,
        )

    def ended(self) -> list[tuple[str, str | None]]:
        done: list[tuple[str, str | None]] = []
        for job_id, future in list(self.futures.items()):
            if not future.done():
                continue
            del self.futures[job_id]
            if future.status == "finished":
                done.append((job_id, None))
            elif future.status == "cancelled":
                done.append((job_id, "its Dask task was cancelled"))
            else:
                error = future.exception()
                done.append((job_id, f"its Dask task failed ({type(error).__name__}: {error})"))
        return done

    def running(self) -> set[str]:
        return set(self.futures)

    def stop(self, job_id: str) -> None:
        future = self.futures.get(job_id)
        if future is not None:
            future.cancel()

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]


# ------------------------------------------------------------------------------------ the dispatcher


class Dispatcher:
    """Claims accepted jobs for its executor (`only`: just these jobs), stops dismissed ones, and fails or
    requeues jobs whose worker died: found by the executor, by a dead local process, or by a silent heartbeat."""

    def __init__(self, platform: Platform, executor: Executor, *, only: Iterable[str] | None = None) -> None:
        self.platform, self.executor = platform, executor
        self.settings = platform.settings.processing
        self.only = set(only) if only is not None else None
        self._dismissing: dict[str, float] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cubeport-dispatcher", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue now (a job was submitted) rather than at the next round."""
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.executor.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the loop must outlive a database hiccup
                log.exception("job dispatcher round failed")
            self._wake.wait(0.5)
            self._wake.clear()

    def tick(self) -> None:
        """One round: collect ended runs, stop dismissed jobs, recover dead ones, start waiting ones."""
        jobs = self.platform.jobs
        for job_id, reason in self.executor.ended():
            self._dismissing.pop(job_id, None)
            job = jobs.get(job_id)
            if not job.done:
                self.recover(job, reason or "its worker ended without finishing it")
        for job_id in self.executor.running():
            job = jobs.get(job_id)
            if job.dismiss_requested and not job.done:
                first = self._dismissing.setdefault(job_id, time.monotonic())
                if time.monotonic() - first > DISMISS_GRACE_SECONDS:
                    self.executor.stop(job_id)
                    self.remove_try(jobs.get(job_id))  # as it is now: it may have published meanwhile
                    jobs.finish(job_id, "dismissed", "dismissed while running (stopped)")
        self.recover_dead()
        while self.executor.free() > 0:
            claimed = jobs.claim(
                self.executor.name, max_per_owner=self.settings.max_jobs_per_user, only=self.only
            )
            if claimed is None:
                break
            jobs.log(claimed.id, f"taken by {self.executor.name}")
            self.executor.start(claimed)

    def recover_dead(self) -> None:
        """Running jobs of no live worker: a local process that is gone, or silent past `stale_seconds`."""
        mine = self.executor.running()
        silent = now() - dt.timedelta(seconds=self.settings.stale_seconds)
        host = socket.gethostname()
        for job in self.platform.jobs.running():
            if job.id in mine:
                continue
            kind, _, where = job.runner.partition(":")
            job_host, _, pid = where.rpartition(":")
            if kind == "local" and job_host == host and pid.isdigit() and not alive(int(pid)):
                self.recover(job, "its worker process is gone (the server stopped or it was killed)")
            elif job.heartbeat is not None and job.heartbeat < silent:
                self.recover(
                    job, f"no sign of life from its worker since {job.heartbeat:%Y-%m-%d %H:%M:%S} UTC"
                )

    def recover(self, job: Job, reason: str) -> None:
        """Remove what the dead try published, then run the job again if its process allows, else fail it.

        A try whose worker died before it began (`start_try` names the worker; until then the runner is the
        executor that claimed it) is counted here, or a worker that cannot start would loop forever."""
        jobs = self.platform.jobs
        self.remove_try(job)
        tries = job.attempt + 1 if job.runner == self.executor.name else job.attempt
        if job.dismiss_requested:
            jobs.finish(job.id, "dismissed", "dismissed while running (stopped)")
        elif job.retry_safe and tries < self.settings.max_attempts:
            jobs.requeue(job.id, reason, attempt=tries)
        else:
            jobs.finish(job.id, "failed", f"{reason}; nothing was published")
            jobs.log(job.id, f"failed: {reason}")

    def remove_try(self, job: Job) -> None:
        """What a stopped or dead try left: its published outputs and its scratch folder (a killed process
        never ran its own clean-up)."""
        unpublish(self.platform, job)
        shutil.rmtree(work_root(self.platform.settings) / job.id, ignore_errors=True)


def executor_for(open_platform: OpenPlatform, platform: Platform) -> Executor:
    settings = platform.settings.processing
    if settings.scheduler:
        return DaskExecutor(open_platform, settings.scheduler)
    return LocalExecutor(open_platform, settings.workers)
