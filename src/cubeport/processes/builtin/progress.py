"""Progress of a dask computation reported to its job: writers that compute a lazy cube in one call (NetCDF,
Zarr) report the share of finished tasks, and a dismissed job stops at its next report."""

from __future__ import annotations

import time
from typing import Any

from dask.callbacks import Callback

from cubeport.processes.definition import JobContext


class JobProgress(Callback):
    """Within `with JobProgress(job, start, end, message):`, dask's local schedulers report finished tasks
    to `job.progress` as a fraction between `start` and `end`, at most every `interval` seconds. The
    callbacks run in the scheduler's own thread, so `Dismissed` raised by `job.progress` ends the compute."""

    def __init__(
        self, job: JobContext, start: float, end: float, message: str, interval: float = 1.0
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.job, self.start, self.end, self.message, self.interval = job, start, end, message, interval
        self._last = 0.0

    def _start(self, dsk: Any) -> None:
        self._last = time.monotonic()

    def _posttask(self, key: Any, result: Any, dsk: Any, state: dict[str, Any], worker_id: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        done = len(state["finished"])
        total = done + sum(len(state[k]) for k in ("ready", "waiting", "running"))
        self.job.progress(self.start + (self.end - self.start) * done / max(total, 1), self.message)

    def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
        if not errored:
            self.job.progress(self.end, self.message)


__all__ = ["JobProgress"]
