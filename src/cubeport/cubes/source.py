"""What rendering and analysis read from cubes: the contract a new cube backend implements.

`CubeStore` (every read goes to storage) and `OpenCubes` (datasets kept open for a server) both satisfy it;
render/ and analysis/ depend on this protocol only, so another backend (a remote cube server, a cube held
in memory for a test) plugs in by implementing these three methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import xarray as xr

    from cubeport.cubes.store import Pointer


class CubeSource(Protocol):
    """Published cubes, read-only: their ids, the pointer of a cube and its levels as xarray Datasets."""

    def list(self) -> list[str]:
        """The ids of the published cubes."""
        ...

    def pointer(self, cube_id: str) -> Pointer:
        """The published version of the cube (its levels, steps, twin); NotFoundError if there is none."""
        ...

    def open(self, cube_id: str, *, level: int = 0, timeseries: bool = False, dask: bool) -> xr.Dataset:
        """Pyramid `level` of the cube, or its time-chunked twin, sliced to the published steps. With
        `dask=False` variables are lazily indexed arrays that read only the chunks a slice needs."""
        ...
