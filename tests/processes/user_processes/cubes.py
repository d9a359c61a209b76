"""Cube processes on a real input cube: `scaled` (lazy arithmetic, computed where the job runs) and
`scaled-fragile`, the same but not safe to run again. Both may wait `delay` seconds first (with progress),
so a test can catch them running."""

import time

import xarray as xr

from cubeport.processes import Cube, JobContext, process


def scale(job: JobContext, cube: xr.Dataset, factor: float, offset: float, delay: float) -> xr.Dataset:
    end = time.monotonic() + delay
    while time.monotonic() < end:
        time.sleep(0.05)
        job.progress(0.5 * (1 - (end - time.monotonic()) / delay))
    job.log(f"scaling {', '.join(map(str, cube.data_vars))} by {factor}, plus {offset}")
    return cube * factor + offset


@process("scaled", title="Scaled cube", keywords=["test"])
def scaled(
    job: JobContext, cube: Cube, factor: float = 2.0, offset: float = 0.0, delay: float = 0.0
) -> xr.Dataset:
    """Every variable of `cube` times `factor` plus `offset`, lazily."""
    return scale(job, cube, factor, offset, delay)


@process("scaled-fragile", title="Scaled cube, once only", keywords=["test"], retry_safe=False)
def scaled_fragile(
    job: JobContext, cube: Cube, factor: float = 2.0, offset: float = 0.0, delay: float = 0.0
) -> xr.Dataset:
    """As `scaled`, but a try that dies must not be repeated."""
    return scale(job, cube, factor, offset, delay)
