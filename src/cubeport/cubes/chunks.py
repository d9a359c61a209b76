"""Reading the Zarr arrays Cubeport writes straight from their chunks, for map tiles and time series.

zarr-python 3 sends every read through its event-loop thread, which for the small windows a tile or a time
series reads costs more than decoding: a 50 km polygon over a year took 22.7 ms through zarr and 10.7 ms here,
a point 3.6 and 1.4 ms. Cubeport writes plain Zarr v2 arrays (one numcodecs compressor, no filters, C order),
so reading them is short: fetch a chunk's bytes, decode, copy the overlap. Decoded chunks stay in a
size-bounded LRU shared by the process, so neighbouring tiles and nearby points decode a chunk once (a
version's chunks never change: a new version is a new folder).

`fast_reads` swaps such variables of an opened (dask-free) dataset for this reader through xarray's backend
array interface, so callers index them as usual; any other layout keeps zarr-python's reader.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
import zarr
from xarray.backends import BackendArray
from xarray.core import indexing
from zarr.core.metadata import ArrayV2Metadata

from cubeport import deadline
from cubeport.memory_cache import ByteLru

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12
    from zarr.abc.store import Store

DECODED_BYTES = 512 << 20  # decoded chunks kept per process
PARALLEL_FROM = 4  # chunks to decode before a read uses the thread pool (a point reads 3)

decoded: ByteLru[str, np.ndarray] = ByteLru(DECODED_BYTES, sizeof=lambda array: array.nbytes)
_pool = ThreadPoolExecutor(2, thread_name_prefix="cubeport-chunks")  # numcodecs decodes without the GIL
_scratch_buffers = threading.local()


class ChunkedArray(BackendArray):
    """One Zarr v2 array, read chunk by chunk without zarr-python's event loop."""

    def __init__(
        self, array: zarr.Array[Any], fetch: Callable[[str], Buffer], source: str, keep: bool = True
    ) -> None:
        meta = array.metadata
        if not isinstance(meta, ArrayV2Metadata):  # `fast_reads` passes plain v2 arrays only
            raise TypeError(f"{array.path}: not a Zarr v2 array")
        self.shape, self.dtype = tuple(array.shape), np.dtype(array.dtype)
        self.chunks: tuple[int, ...] = tuple(meta.chunks)
        self.compressor, self.fill_value = meta.compressor, meta.fill_value
        self.separator = meta.dimension_separator or "."
        self.fetch, self.source, self.prefix, self.keep = fetch, source, f"{array.path}/", keep

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        # typed Any by xarray; it returns what `read` returns, indexed further
        values: np.ndarray = indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.BASIC, self.read
        )
        return values

    def read(self, key: tuple[int | slice, ...]) -> np.ndarray:
        """The window of integer and step-1 slice keys (one per dimension), as a new array."""
        windows = [
            range(*k.indices(n)) if isinstance(k, slice) else range(k, k + 1)
            for k, n in zip(key, self.shape, strict=False)
        ]
        if any(w.step != 1 for w in windows):  # xarray's BASIC indexing can pass strided slices
            whole = self.read(tuple(slice(w.start, w.stop) if w else slice(0, 0) for w in windows))
            return whole[
                tuple(
                    0 if isinstance(k, int) else slice(None, None, w.step)
                    for k, w in zip(key, windows, strict=False)
                )
            ]
        out = np.empty([len(w) for w in windows], self.dtype)
        if out.size:
            chunk_ranges = [
                range(w.start // c, (w.stop - 1) // c + 1) for w, c in zip(windows, self.chunks, strict=False)
            ]
            indices = list(itertools.product(*chunk_ranges))
            if len(indices) >= PARALLEL_FROM:
                for _ in _pool.map(lambda i: self._copy(i, windows, out), indices):
                    deadline.check("reading the data")
            else:
                for index in indices:
                    deadline.check("reading the data")
                    self._copy(index, windows, out)
        return out[tuple(0 if isinstance(k, int) else slice(None) for k in key)]

    def _copy(self, index: tuple[int, ...], windows: list[range], out: np.ndarray) -> None:
        source, target = [], []
        for i, chunk, window in zip(index, self.chunks, windows, strict=False):
            lo, hi = max(window.start, i * chunk), min(window.stop, (i + 1) * chunk)
            source.append(slice(lo - i * chunk, hi - i * chunk))
            target.append(slice(lo - window.start, hi - window.start))
        out[tuple(target)] = self.chunk(index)[tuple(source)]

    def chunk(self, index: tuple[int, ...]) -> np.ndarray:
        """A decoded chunk (read-only), from the cache when it was decoded before. Without `keep` it is
        decoded into this thread's scratch buffer, valid until the thread's next decode: fresh memory for
        every chunk costs page faults (0.65 instead of 0.24 ms a 512 kB chunk here), which is not worth
        it where chunks are rarely read twice."""
        name = self.prefix + self.separator.join(map(str, index))
        cached = decoded.get(self.source + name) if self.keep else None
        if cached is not None:
            return cached
        try:
            raw = self.fetch(name)
        except FileNotFoundError:  # Zarr leaves chunks of only fill values unwritten
            array = np.full(
                self.chunks, 0 if self.fill_value is None else self.fill_value, self.dtype
            )  # as zarr
        else:
            if self.compressor is None:
                array = np.frombuffer(memoryview(raw), self.dtype).reshape(self.chunks)
            else:
                out = None if self.keep else _scratch(math.prod(self.chunks) * self.dtype.itemsize)
                array = np.frombuffer(self.compressor.decode(raw, out=out), self.dtype).reshape(self.chunks)
        if self.keep:
            array.flags.writeable = False
            decoded.put(self.source + name, array)
        return array


def _scratch(size: int) -> np.ndarray:
    """This thread's reusable decode buffer of at least `size` bytes."""
    buffer = getattr(_scratch_buffers, "buffer", None)
    if buffer is None or buffer.nbytes < size:
        buffer = _scratch_buffers.buffer = np.empty(size, np.uint8)
    return buffer[:size]


def fast_reads(ds: xr.Dataset, store: Store, source: str, keep: bool = True) -> xr.Dataset:
    """`ds` (opened from `store` without dask) with every variable that has the plain layout read by
    `ChunkedArray`; the others, and every variable of other kinds of stores, unchanged. `source` names the
    store uniquely (for the cache of decoded chunks); `keep` says whether to cache them."""
    fetch = _fetcher(store)
    if fetch is None:
        return ds
    group = zarr.open_group(store, mode="r")
    replaced = {}
    for name, variable in ds.variables.items():
        if name in ds.indexes:
            continue
        array = group.get(str(name))
        if isinstance(array, zarr.Array) and _plain(array, variable):
            lazy = indexing.LazilyIndexedArray(ChunkedArray(array, fetch, source, keep))
            replaced[name] = xr.Variable(variable.dims, lazy, variable.attrs, variable.encoding)
    return ds.assign(replaced) if replaced else ds


def _plain(array: zarr.Array[Any], variable: xr.Variable) -> bool:
    """Whether the chunks decode to exactly what xarray would give: Zarr v2, C order, no filters, and no
    scaling or masking by xarray (a float array whose fill value is NaN, or none)."""
    meta = array.metadata
    if not isinstance(meta, ArrayV2Metadata) or meta.order != "C" or meta.filters:
        return False
    if (
        any(k in variable.encoding for k in ("scale_factor", "add_offset"))
        or np.dtype(array.dtype) != variable.dtype
    ):
        return False
    fill = variable.encoding.get("_FillValue")
    return fill is None or (isinstance(fill, (float, np.floating)) and math.isnan(fill))


def _fetcher(store: Store) -> Callable[[str], Buffer] | None:
    """A synchronous `key -> bytes` (or a zero-copy buffer of them) for the store (FileNotFoundError for a
    missing key), or None."""
    if isinstance(store, zarr.storage.LocalStore):
        root = Path(store.root)
        return lambda key: (root / key).read_bytes()
    if isinstance(store, zarr.storage.ObjectStore):
        import obstore

        return lambda key: obstore.get(store.store, key).bytes()
    return None
