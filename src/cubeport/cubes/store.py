"""The cube store: list, open, describe, write, append and delete Zarr cubes below a data root.

Layout of one cube (`id`) below the data root::

    cubes/{id}/cube.json               the pointer: current version, time steps, levels, twin
    cubes/{id}/{version}/0.zarr        full resolution, chunked for maps (time chunk 1)
    cubes/{id}/{version}/1.zarr ...    pyramid levels, each halving the resolution
    cubes/{id}/{version}/timeseries.zarr   optional time-chunked twin for fast time series

The pointer is the single commit point. A new cube or a replacement is written to a fresh version folder and
becomes visible only when the pointer, one small object, is replaced; a failed write leaves the old version as
it was. An append writes new time steps into the current version (old chunks are not rewritten) and then
raises the pointer's step count; readers slice every level to that count, so a half-done append is invisible,
and the next append first trims what an interrupted one left behind.

An update replaces one step the cube has (a corrected product, a daily mosaic that grows scene by scene): the
new step is staged like an append, after the published ones, the pointer records that it is staged, and then it
is copied over the old step chunk by chunk. Every chunk is replaced whole (one atomic write), so a reader sees
the old or the new step in each chunk, never a torn one; a writer interrupted while copying is finished by the
next one (the staged step is complete before the pointer names it). The pointer's revision then rises, so
caches keyed on it forget the old step.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numcodecs
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from cubeport.config import CubeLayoutSettings
from cubeport.cubes import cf
from cubeport.cubes.chunks import fast_reads
from cubeport.cubes.pyramid import build_levels, level_count
from cubeport.errors import ConflictError, InputError, NotFoundError
from cubeport.storage import Storage

if TYPE_CHECKING:
    from zarr.abc.store import Store

CUBES_DIR = "cubes"
POINTER = "cube.json"
TIMESERIES = "timeseries"
# see docs/architecture.md: every client in the field (GDAL 3.6, xcube, QGIS) reads v2
ZARR_FORMAT: Literal[2] = 2
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_COMPRESSOR = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
# nanoseconds: exact for any input time, so re-ingesting a step finds it again
_TIME_ENCODING = {
    "units": "nanoseconds since 1970-01-01T00:00:00",
    "calendar": "proleptic_gregorian",
    "dtype": "int64",
}


def check_cube_id(cube_id: str) -> str:
    """InputError unless `cube_id` is a safe name (letters, digits, `_.-`, at most 128 characters)."""
    if not _ID_PATTERN.match(cube_id or "") or ".." in cube_id:
        raise InputError(
            f"invalid cube id {cube_id!r}: use letters, digits, '_', '.', '-' (start with a letter or digit)"
        )
    return cube_id


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Pointer:
    """What `cube.json` records: the version readers open and how much of it is published."""

    version: str
    steps: int
    levels: int
    timeseries: bool
    zarr_format: int = ZARR_FORMAT
    updated: str = field(default_factory=_now)
    revision: int = 0  # rises when published steps are changed in place (an update)
    staged_for: int | None = None  # an update under way: the step (index) that the staged one replaces

    @property
    def tag(self) -> str:
        """Changes whenever published data changes, except by appended steps (callers add the step count)."""
        return f"{self.version}.{self.revision}"


@dataclass(frozen=True)
class VariableInfo:
    name: str
    dtype: str
    dims: tuple[str, ...]
    units: str | None
    long_name: str | None
    attrs: dict[str, Any]


@dataclass(frozen=True)
class CubeInfo:
    """A cube's shape and metadata, as `cubeport cubes info` shows it."""

    id: str
    dims: dict[str, int]
    variables: list[VariableInfo]
    time_start: str
    time_end: str
    crs: str
    bounds: tuple[float, float, float, float]
    bbox: tuple[float, float, float, float]
    resolution: tuple[float, float]
    levels: int
    timeseries: bool
    version: str
    attrs: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_object_key(key: str) -> bool:
    """Whether `key` can name an object of a store: relative, no `.`/`..` parts, and nothing a file system
    refuses (NUL, a part over 255 bytes: ENAMETOOLONG)."""
    return (
        bool(key)
        and "\x00" not in key
        and all(
            part not in ("", ".", "..") and len(part.encode("utf-8", "surrogatepass")) <= 255
            for part in key.split("/")
        )
    )


class CubeStore:
    """Cubes below one data root. Thread-safe for readers; one writer per cube at a time."""

    def __init__(self, storage: Storage, layout: CubeLayoutSettings | None = None) -> None:
        self.storage = storage
        self.layout = layout or CubeLayoutSettings()

    # -- reading ---------------------------------------------------------------------------------------
    def list(self) -> list[str]:
        """Ids of the published cubes."""
        return [c for c in self.storage.list_dirs(CUBES_DIR) if self.storage.exists(CUBES_DIR, c, POINTER)]

    def exists(self, cube_id: str) -> bool:
        return self.storage.exists(CUBES_DIR, check_cube_id(cube_id), POINTER)

    def pointer(self, cube_id: str) -> Pointer:
        check_cube_id(cube_id)
        try:
            raw = self.storage.read_bytes(CUBES_DIR, cube_id, POINTER)
        except FileNotFoundError:
            # no list of the cubes: some may be hidden from the caller; worded as a hidden one's 404
            raise NotFoundError(f"cube {cube_id!r} not found") from None
        return Pointer(**json.loads(raw))

    def open(
        self,
        cube_id: str,
        level: int = 0,
        timeseries: bool = False,
        dask: bool = True,
        chunks: Mapping[str, int] | None = None,
    ) -> xr.Dataset:
        """The cube as a lazy xarray Dataset at pyramid `level` or as its time-chunked twin.

        Dask chunks are the stored ones unless `chunks` asks for larger ones (by dimension name; names the
        cube lacks are ignored): whole-cube computations want fewer, bigger tasks.

        With `dask=False` variables are lazily indexed arrays instead: slicing one reads just the chunks it
        needs, without building a task graph and straight from the chunk files (`chunks.fast_reads`), which
        is what map tiles and time series want.
        """
        pointer = self.pointer(cube_id)
        if timeseries and not pointer.timeseries:
            raise NotFoundError(f"cube {cube_id!r} has no time-chunked twin")
        if not 0 <= level < pointer.levels:
            raise NotFoundError(f"cube {cube_id!r} has levels 0..{pointer.levels - 1}, not {level}")
        name = TIMESERIES if timeseries else str(level)
        ds = self._open_zarr(cube_id, pointer.version, name, dask, chunks, pointer.revision)
        return ds.isel(time=slice(0, pointer.steps))

    def _open_zarr(
        self,
        cube_id: str,
        version: str,
        name: str,
        dask: bool = True,
        chunks: Mapping[str, int] | None = None,
        revision: int = 0,
    ) -> xr.Dataset:
        parts = (CUBES_DIR, cube_id, version, f"{name}.zarr")
        store = self.storage.zarr_store(*parts, read_only=True)
        ds: xr.Dataset = xr.open_zarr(store, consolidated=True, chunks=dict(chunks or {}) if dask else None)
        if dask:
            return ds
        # map tiles share chunks with their neighbours; a time series at a new place rarely reads one again.
        # The revision is part of the decoded chunks' cache key: an update rewrites chunks under the same names.
        source = f"{self.storage.url(*parts)}@{revision}/"
        return fast_reads(ds, store, source, keep=name != TIMESERIES)

    def published_object(self, cube_id: str, name: str, key: str, pointer: Pointer | None = None) -> bytes:
        """An object of one of the cube's Zarr stores (`0.zarr`, `1.zarr`, ..., `timeseries.zarr`) as a remote
        reader may see it: array metadata shows only the published time steps, as `open` does. A server
        passes the `pointer` it holds, so that chunk requests do not read it again."""
        pointer = pointer or self.pointer(cube_id)
        stores = [f"{level}.zarr" for level in range(pointer.levels)] + (
            [f"{TIMESERIES}.zarr"] if pointer.timeseries else []
        )
        if name not in stores:
            raise NotFoundError(f"cube {cube_id!r} has no store {name!r}; stores: {', '.join(stores)}")
        if not is_object_key(key):
            raise InputError(f"invalid key {key[:80]!r} in a Zarr store")
        try:
            data = self.storage.read_bytes(CUBES_DIR, cube_id, pointer.version, name, key)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"no {key[:80]!r} in {cube_id}/{name}") from None
        if key == ".zmetadata":
            consolidated = json.loads(data)
            metadata = consolidated["metadata"]
            for path in [k.removesuffix("/.zarray") for k in metadata if k.endswith(".zarray")]:
                metadata[f"{path}/.zarray"] = _published_shape(
                    metadata[f"{path}/.zarray"], metadata.get(f"{path}/.zattrs", {}), pointer.steps
                )
            return json.dumps(consolidated).encode()
        if key.endswith(".zarray"):
            attrs_key = key.removesuffix(".zarray") + ".zattrs"
            attrs = json.loads(self.storage.read_bytes(CUBES_DIR, cube_id, pointer.version, name, attrs_key))
            return json.dumps(_published_shape(json.loads(data), attrs, pointer.steps)).encode()
        return data

    def describe(self, cube_id: str) -> CubeInfo:
        pointer = self.pointer(cube_id)
        ds = self.open(cube_id)
        ydim, xdim = cf.spatial_dims(ds)
        times = pd.DatetimeIndex(ds["time"].values)
        variables = [
            VariableInfo(
                name=str(name),
                dtype=str(var.dtype),
                dims=tuple(str(d) for d in var.dims),
                units=var.attrs.get("units"),
                long_name=var.attrs.get("long_name"),
                attrs=cf.json_attrs(var.attrs),
            )
            for name, var in ds.data_vars.items()
            if "time" in var.dims
        ]
        res = (
            float(abs(ds[xdim][1] - ds[xdim][0])) if ds.sizes[xdim] > 1 else 0.0,
            float(abs(ds[ydim][1] - ds[ydim][0])) if ds.sizes[ydim] > 1 else 0.0,
        )
        return CubeInfo(
            id=cube_id,
            dims={str(k): int(v) for k, v in ds.sizes.items()},
            variables=variables,
            time_start=times[0].isoformat() if len(times) else "",
            time_end=times[-1].isoformat() if len(times) else "",
            crs=cf.crs_name(cf.crs_of(ds)),
            bounds=cf.bounds(ds),
            bbox=cf.lonlat_bbox(ds),
            resolution=res,
            levels=pointer.levels,
            timeseries=pointer.timeseries,
            version=pointer.version,
            attrs=cf.json_attrs(ds.attrs),
        )

    # -- writing ---------------------------------------------------------------------------------------
    @contextmanager
    def create(self, cube_id: str, replace: bool = False) -> Iterator[CubeWriter]:
        """Write a new cube (or a new version of one) from time slabs; published on success only."""
        check_cube_id(cube_id)
        if not replace and self.exists(cube_id):
            raise ConflictError(f"cube {cube_id!r} exists; append to it or replace it")
        version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        writer = CubeWriter(self, cube_id, version, existing=None)
        try:
            yield writer
            writer.finish()
        except BaseException:
            self.storage.delete_tree(CUBES_DIR, cube_id, version)
            raise
        self._publish(cube_id, writer.pointer())

    @contextmanager
    def append(self, cube_id: str) -> Iterator[CubeWriter]:
        """Append time steps to the current version; the new steps appear together, on success only."""
        writer = self._writer(cube_id)
        yield writer
        if writer.steps_written:
            writer.finish()
            self._publish(cube_id, writer.pointer())

    @contextmanager
    def update(self, cube_id: str) -> Iterator[CubeWriter]:
        """Replace one time step the cube has: write it (a slab of that one time) to the writer. See the module
        docstring for how readers and an interrupted update are kept safe."""
        writer = self._writer(cube_id, updating=True)
        yield writer
        if writer.staged_for is not None:
            writer.finish()
            staged = replace(writer.pointer(), staged_for=writer.staged_for, updated=_now())
            self._publish(cube_id, staged)
            self._complete_update(cube_id, staged)

    def append_checker(self, cube_id: str) -> CubeWriter:
        """A writer that only checks inputs against the cube (for plans and dry runs); it writes nothing."""
        pointer = self.pointer(cube_id)
        return CubeWriter(self, cube_id, pointer.version, existing=pointer)

    def _writer(self, cube_id: str, updating: bool = False) -> CubeWriter:
        """A writer of the current version, after finishing an interrupted update and trimming what an
        interrupted append left."""
        pointer = self.pointer(cube_id)
        if pointer.staged_for is not None:
            pointer = self._complete_update(cube_id, pointer)
        self._trim(cube_id, pointer)
        return CubeWriter(self, cube_id, pointer.version, existing=pointer, updating=updating)

    def _complete_update(self, cube_id: str, pointer: Pointer) -> Pointer:
        """Copy the staged step (the one after the published steps) over the step it replaces, in every store,
        then publish the next revision. Safe to repeat: the staged step is not touched."""
        assert pointer.staged_for is not None
        source, target = pointer.steps, pointer.staged_for
        for _, array, axis in self._time_arrays(cube_id, pointer):
            step: list[Any] = [slice(None)] * array.ndim
            step[axis] = source
            values = array[tuple(step)]
            step[axis] = target
            array[tuple(step)] = values
        done = replace(pointer, staged_for=None, revision=pointer.revision + 1, updated=_now())
        self._publish(cube_id, done)
        self._trim(cube_id, done)
        return done

    def _trim(self, cube_id: str, pointer: Pointer) -> None:
        """Shrink every array back to the published step count (undoing an interrupted append or a staged
        update that was copied)."""
        changed: list[zarr.Group] = []
        for group, array, axis in self._time_arrays(cube_id, pointer):
            if array.shape[axis] != pointer.steps:
                shape = list(array.shape)
                shape[axis] = pointer.steps
                array.resize(tuple(shape))
                if not any(g is group for g in changed):
                    changed.append(group)
        for group in changed:
            zarr.consolidate_metadata(group.store, zarr_format=ZARR_FORMAT)

    def _time_arrays(
        self, cube_id: str, pointer: Pointer
    ) -> Iterator[tuple[zarr.Group, zarr.Array[Any], int]]:
        """Every array with a time axis in every store of the pointer's version, with that axis."""
        names = [str(level) for level in range(pointer.levels)] + ([TIMESERIES] if pointer.timeseries else [])
        for name in names:
            store = self.storage.zarr_store(CUBES_DIR, cube_id, pointer.version, f"{name}.zarr")
            # the per-array metadata is what may be ahead of the consolidated one
            group = zarr.open_group(store, mode="r+", zarr_format=ZARR_FORMAT, use_consolidated=False)
            for _, array in group.arrays():
                dims = array.attrs.get("_ARRAY_DIMENSIONS", [])
                if isinstance(dims, list) and "time" in dims:  # a JSON list in Zarr v2
                    yield group, array, dims.index("time")

    def _publish(self, cube_id: str, pointer: Pointer) -> None:
        self.storage.write_bytes_atomic(
            json.dumps(asdict(pointer), indent=1).encode(), CUBES_DIR, cube_id, POINTER
        )
        for version in self.storage.list_dirs(CUBES_DIR, cube_id):
            if version != pointer.version:  # old versions and leftovers of failed writes
                self.storage.delete_tree(CUBES_DIR, cube_id, version)

    def delete(self, cube_id: str) -> None:
        """Remove a cube: it disappears at once (pointer first), then its data is deleted."""
        self.pointer(cube_id)
        self.storage.delete_tree(CUBES_DIR, cube_id, POINTER)
        self.storage.delete_tree(CUBES_DIR, cube_id)


class CubeWriter:
    """Writes time slabs of one cube version: level 0, its pyramid levels and, at the end, the twin."""

    def __init__(
        self, store: CubeStore, cube_id: str, version: str, existing: Pointer | None, updating: bool = False
    ) -> None:
        self.store = store
        self.cube_id = cube_id
        self.version = version
        self.existing = existing
        self.layout = store.layout
        self.levels = existing.levels if existing else 0
        self.timeseries = existing.timeseries if existing else False
        self.steps = existing.steps if existing else 0
        self.steps_written = 0
        self.updating = updating
        self.staged_for: int | None = None  # an update: the index of the step it replaces
        self.times = np.array([], "datetime64[ns]")
        self.template: xr.Dataset | None = None
        if existing:
            current = store.open(cube_id)
            self.template = current
            self.times = current["time"].values
        self.known_times: set[np.datetime64] = set(self.times)
        self.last_time: np.datetime64 | None = self.times[-1] if self.times.size else None

    def _zarr_store(self, name: str) -> Store:
        return self.store.storage.zarr_store(CUBES_DIR, self.cube_id, self.version, f"{name}.zarr")

    def new_times(self, slab: xr.Dataset) -> np.ndarray:
        """The times of `slab` that the cube lacks; InputError for a time that would go before the end."""
        times = slab["time"].values
        fresh = np.array([t for t in times if t not in self.known_times], dtype=times.dtype)
        if fresh.size and self.last_time is not None and fresh[0] <= self.last_time:
            raise InputError(
                f"time {pd.Timestamp(fresh[0]).isoformat()} falls before the cube's last time "
                f"{pd.Timestamp(self.last_time).isoformat()}; appending only adds later steps "
                "(re-ingest without --append to rebuild the cube)"
            )
        return fresh

    def check_compatible(self, slab: xr.Dataset, source: str) -> None:
        """InputError naming `source` when its grid or variables differ from the cube's."""
        if self.template is None:
            return
        check_same_grid(self.template, slab, source)
        ours = {str(v) for v in self.template.data_vars if "time" in self.template[v].dims}
        theirs = {str(v) for v in slab.data_vars if "time" in slab[v].dims}
        if ours != theirs:
            raise InputError(f"{source}: variables {sorted(theirs)} differ from the cube's {sorted(ours)}")

    def write(self, slab: xr.Dataset, source: str = "input") -> int:
        """Write the new time steps of `slab` (a normalised cube fragment); returns how many were new."""
        slab = cf.ns_time(slab)
        self.check_compatible(slab, source)
        fresh = self._updated_time(slab, source) if self.updating else self.new_times(slab)
        if not fresh.size:
            return 0
        slab = slab.sel(time=fresh).load()
        for var in slab.variables.values():
            var.encoding = _kept_encoding(var.encoding)
        if self.template is None:
            self.template = slab
            ydim, xdim = cf.spatial_dims(slab)
            self.levels = (
                level_count(slab.sizes[ydim], slab.sizes[xdim], self.layout.spatial_chunk)
                if self.layout.pyramid
                else 1
            )
        levels = [slab, *build_levels(slab, self.levels)]
        first = self.steps_written == 0 and self.existing is None
        for level, data in enumerate(levels):
            self._write_zarr(str(level), data, first, self._map_chunks())
        if self.timeseries and self.existing:
            self._write_zarr(TIMESERIES, slab, False, self._timeseries_chunks())
        self.steps_written += fresh.size
        if self.updating:
            self.staged_for = int(np.flatnonzero(self.times == fresh[0])[0])
        else:
            self.known_times.update(fresh)
            self.last_time = fresh[-1]
        return int(fresh.size)

    def _updated_time(self, slab: xr.Dataset, source: str) -> np.ndarray:
        """The one time of an update's slab, which the cube must have."""
        times = slab["time"].values
        if times.size != 1 or self.staged_for is not None:
            raise InputError(f"{source}: an update replaces one time step at a time")
        if times[0] not in self.known_times:
            raise InputError(
                f"{source}: the cube has no step at {pd.Timestamp(times[0]).isoformat()} to update "
                "(append new steps instead)"
            )
        return times

    def _map_chunks(self) -> dict[str, int]:
        c = self.layout.spatial_chunk
        return {"time": 1, "y": c, "x": c}

    def _timeseries_chunks(self) -> dict[str, int]:
        c = self.layout.timeseries_spatial_chunk
        return {"time": self.layout.timeseries_chunk, "y": c, "x": c}

    def _write_zarr(self, name: str, data: xr.Dataset, first: bool, chunks: dict[str, int]) -> None:
        store = self._zarr_store(name)
        if first:
            data.to_zarr(
                store,
                mode="w",
                encoding=encoding_for(data, chunks),
                consolidated=False,
                zarr_format=ZARR_FORMAT,
                compute=True,
            )
        else:
            timed = data.drop_vars([v for v in data.variables if "time" not in data[v].dims])
            timed.to_zarr(store, append_dim="time", consolidated=False, zarr_format=ZARR_FORMAT)

    def finish(self) -> None:
        """Consolidate what was written; build the twin once the cube has enough steps to profit from it."""
        if self.template is None:
            raise InputError("nothing to write: the input has no time steps")
        for name in [str(level) for level in range(self.levels)]:
            zarr.consolidate_metadata(self._zarr_store(name), zarr_format=ZARR_FORMAT)
        total = self.pointer().steps
        if not self.timeseries and self.layout.timeseries_twin and total >= self.layout.timeseries_min_steps:
            self._build_timeseries_twin()
            self.timeseries = True
        if self.timeseries:
            zarr.consolidate_metadata(self._zarr_store(TIMESERIES), zarr_format=ZARR_FORMAT)

    def _build_timeseries_twin(self) -> None:
        chunks = self._timeseries_chunks()
        level0 = self.store._open_zarr(self.cube_id, self.version, "0").isel(
            time=slice(0, self.steps + self.steps_written)
        )
        ydim, xdim = cf.spatial_dims(level0)
        block = max(self.layout.spatial_chunk // chunks["y"], 1) * chunks["y"]
        dask_chunks = {"time": chunks["time"], ydim: block, xdim: block}
        data = level0.chunk({k: v for k, v in dask_chunks.items() if k in level0.dims})
        for name in data.variables:
            data[name].encoding.pop("chunks", None)
            data[name].encoding.pop("preferred_chunks", None)
        data.to_zarr(
            self._zarr_store(TIMESERIES),
            mode="w",
            encoding=encoding_for(data, chunks),
            consolidated=False,
            zarr_format=ZARR_FORMAT,
        )

    def pointer(self) -> Pointer:
        """What to publish once the written steps are complete (an update's staged step is not counted)."""
        return Pointer(
            version=self.version,
            steps=self.steps + (0 if self.updating else self.steps_written),
            levels=self.levels,
            timeseries=self.timeseries,
            revision=self.existing.revision if self.existing else 0,
        )


def _published_shape(array: dict[str, Any], attrs: dict[str, Any], steps: int) -> dict[str, Any]:
    """Zarr v2 array metadata cut to the published number of time steps."""
    if (attrs.get("_ARRAY_DIMENSIONS") or [None])[0] == "time":
        array = {**array, "shape": [min(array["shape"][0], steps), *array["shape"][1:]]}
    return array


def encoding_for(ds: xr.Dataset, chunks: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Zarr encodings: our chunking and compressor; integers keep their fill value, floats use NaN."""
    ydim, xdim = cf.spatial_dims(ds)
    named = {"time": chunks["time"], ydim: chunks["y"], xdim: chunks["x"]}
    encoding: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        enc: dict[str, Any] = {}
        source = var.encoding
        if name == "time":
            enc.update(_TIME_ENCODING)
        elif var.ndim and name not in ds.dims:
            enc["chunks"] = tuple(
                min(named.get(str(d), n), n) if str(d) != "time" else named["time"]
                for d, n in zip(var.dims, var.shape, strict=False)
            )
            enc["compressors"] = (_COMPRESSOR,)
            dtype = np.dtype(source.get("dtype", var.dtype))
            if np.issubdtype(dtype, np.integer) and "_FillValue" in source:
                enc["dtype"] = dtype
                enc["_FillValue"] = source["_FillValue"]
            elif np.issubdtype(var.dtype, np.floating):
                enc["_FillValue"] = np.nan
            else:
                enc["_FillValue"] = None
        encoding[str(name)] = enc
    return encoding


def _kept_encoding(source: dict[str, Any]) -> dict[str, Any]:
    """What a cube keeps of a source's encoding: the dtype and fill value of masked integers, not packing."""
    if "scale_factor" in source or "add_offset" in source:
        return {}  # packed values are stored decoded, as floats
    dtype = source.get("dtype")
    if (
        dtype is not None
        and np.issubdtype(np.dtype(dtype), np.integer)
        and source.get("_FillValue") is not None
    ):
        return {"dtype": np.dtype(dtype), "_FillValue": source["_FillValue"]}
    return {}


def check_same_grid(reference: xr.Dataset, other: xr.Dataset, source: str) -> None:
    """InputError naming `source` when `other` is not on the grid of `reference`."""
    ry, rx = cf.spatial_dims(reference)
    try:
        oy, ox = cf.spatial_dims(other)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    if (ry, rx) != (oy, ox):
        raise InputError(f"{source}: dims ({oy}, {ox}) do not match the cube's ({ry}, {rx})")
    for dim in (ry, rx):
        a, b = reference[dim].values, other[dim].values
        if a.shape != b.shape or not np.allclose(
            a, b, rtol=0, atol=abs(float(a[1] - a[0])) * 1e-3 if a.size > 1 else 1e-9
        ):
            raise InputError(
                f"{source}: grid does not match the cube's: {dim} has {b.size} values "
                f"{b[0]:.6g}..{b[-1]:.6g}, expected {a.size} values {a[0]:.6g}..{a[-1]:.6g}"
            )
    if cf.crs_of(reference) != cf.crs_of(other):
        raise InputError(
            f"{source}: CRS {cf.crs_name(cf.crs_of(other))} differs from the cube's "
            f"{cf.crs_name(cf.crs_of(reference))}"
        )
