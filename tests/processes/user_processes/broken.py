"""Processes that fail: `broken` raises from deep inside (a message for the client, a traceback for the log);
`broken-cube` returns a cube the ingestion refuses, so it fails while publishing its output."""

import xarray as xr

from cubeport.processes import Cube, JobContext, process


def deep_inside(what: str) -> None:
    raise ValueError(what)


@process("broken", title="Broken", keywords=["test"])
def broken(job: JobContext, what: str = "bad thing") -> int:
    """Always fails with ValueError(what)."""
    job.log("about to fail")
    deep_inside(what)
    return 0


@process("broken-cube", title="Broken cube", keywords=["test"])
def broken_cube(cube: Cube) -> xr.Dataset:
    """The spatial mean of each variable: a cube without space, which cannot be published."""
    return cube.mean(dim=[d for d in cube.dims if d != "time"])
