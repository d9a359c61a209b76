"""Cubes kept open for a server: each published version is opened once (consolidated metadata read, coordinates
decoded) instead of once per request. The pointer is re-read at most every few seconds, so a new version or
appended steps show up within that time."""

from __future__ import annotations

from threading import Lock

import xarray as xr

from cubeport.cubes.store import CubeStore, Pointer
from cubeport.errors import NotFoundError
from cubeport.memory_cache import TtlCache


class OpenCubes:
    """A read-only stand-in for `CubeStore.open`/`pointer` that reuses opened datasets (without dask)."""

    POINTER_SECONDS = 2.0

    def __init__(self, store: CubeStore) -> None:
        self.store = store
        self._pointers: TtlCache[str, Pointer] = TtlCache(self.POINTER_SECONDS)
        self._datasets: dict[tuple[str, str], tuple[Pointer, xr.Dataset]] = {}
        self._lock = Lock()

    def list(self) -> list[str]:
        return self.store.list()

    def pointer(self, cube_id: str) -> Pointer:
        pointer = self._pointers.get(cube_id)
        if pointer is None:
            pointer = self.store.pointer(cube_id)
            self._pointers.put(cube_id, pointer)
        return pointer

    def refresh(self) -> None:
        """Read pointers afresh on the next request (after another process published)."""
        self._pointers.clear()

    def exists(self, cube_id: str) -> bool:
        """Whether the cube has a published version (answered from the pointer cache when it can)."""
        try:
            self.pointer(cube_id)
        except NotFoundError:
            return False
        return True

    def open(self, cube_id: str, level: int = 0, timeseries: bool = False, dask: bool = False) -> xr.Dataset:
        if dask:
            return self.store.open(cube_id, level=level, timeseries=timeseries, dask=True)
        pointer = self.pointer(cube_id)
        key = (cube_id, "timeseries" if timeseries else str(level))
        with self._lock:
            opened = self._datasets.get(key)
        if opened is None or opened[0] != pointer:
            opened = (pointer, self.store.open(cube_id, level=level, timeseries=timeseries, dask=False))
            with self._lock:
                self._datasets[key] = opened
        return opened[1]
