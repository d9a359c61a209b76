"""Cubes as an object store shows them: the published objects of each Zarr store (keys, sizes, times, ETags),
placed in the buckets of the S3 route and listed page by page as S3 lists them (prefix, delimiter).

What is published is a cube-store rule, so it lives here and not in a router: metadata objects are what
`CubeStore.published_object` serves (cut to the published steps), and a chunk that an unfinished append wrote
beyond those steps is neither listed nor read. A listing, a HEAD and a GET therefore always agree.

Buckets (the layout of xcube server's `/s3`, plus the twin):
- `datasets`:   `{cube}.zarr/{key}`            the full-resolution store `0.zarr`;
- `pyramids`:   `{cube}.levels/{n}.zarr/{key}` pyramid level `n`;
- `timeseries`: `{cube}.zarr/{key}`            the time-chunked twin, for cubes that have one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from cubeport.cubes.store import CUBES_DIR, TIMESERIES, CubeStore, Pointer, check_cube_id, is_object_key
from cubeport.errors import InputError, NotFoundError
from cubeport.storage import Storage

BUCKETS = ("datasets", "pyramids", "timeseries")
METADATA = frozenset({".zmetadata", ".zgroup", ".zattrs", ".zarray"})  # Zarr v2, as Cubeport writes
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class StoreObject:
    key: str
    size: int
    modified: datetime
    etag: str  # quoted, as in HTTP


@dataclass(frozen=True)
class Page:
    """One page of a listing: objects and common prefixes in key order; `last` is where the next page starts."""

    objects: list[StoreObject]
    prefixes: list[str]
    truncated: bool
    last: str | None


@dataclass(frozen=True)
class _Array:
    chunks: tuple[int, ...]
    time_axis: int | None
    separator: str


# -- where things are --------------------------------------------------------------------------------------
def cube_of_key(key: str) -> str:
    """The cube a bucket key belongs to: its first part without `.zarr` or `.levels` (what the guard checks)."""
    first = key.split("/", 1)[0]
    for suffix in (".zarr", ".levels"):
        if first.endswith(suffix):
            return first.removesuffix(suffix)
    return first


def stores_of(bucket: str, cube_id: str, pointer: Pointer) -> list[tuple[str, str]]:
    """(key prefix, store name) of the cube's stores in `bucket`, e.g. ("c.levels/1.zarr/", "1.zarr")."""
    if bucket == "datasets":
        return [(f"{cube_id}.zarr/", "0.zarr")]
    if bucket == "timeseries":
        return [(f"{cube_id}.zarr/", f"{TIMESERIES}.zarr")] if pointer.timeseries else []
    if bucket == "pyramids":
        return [(f"{cube_id}.levels/{n}.zarr/", f"{n}.zarr") for n in range(pointer.levels)]
    raise NotFoundError(f"no bucket {bucket!r}; buckets: {', '.join(BUCKETS)}")


def locate(bucket: str, key: str, pointer: Pointer) -> tuple[str, str]:
    """(store name, key in the store) of a bucket key of the cube `cube_of_key(key)`; NotFoundError if none."""
    for prefix, store in stores_of(bucket, cube_of_key(key), pointer):
        if key.startswith(prefix) and len(key) > len(prefix):
            return store, key[len(prefix) :]
    raise NotFoundError(f"no object {key[:120]!r} in bucket {bucket!r}")


def pointer_of(cubes: CubeStore, cube_id: str) -> Pointer:
    """The cube's pointer; a name that cannot be a cube is simply not found (an object key, not an input)."""
    try:
        check_cube_id(cube_id)
    except InputError:
        raise NotFoundError(f"cube {cube_id[:128]!r} not found") from None
    return cubes.pointer(cube_id)


# -- one store -------------------------------------------------------------------------------------------
def store_objects(cubes: CubeStore, cube_id: str, pointer: Pointer, store: str) -> Iterator[StoreObject]:
    """The published objects of one store, in key order (one listing; metadata objects are read)."""
    storage = cubes.storage
    base = storage.path(CUBES_DIR, cube_id, pointer.version, store)
    arrays = _arrays(storage, cube_id, pointer.version, store)
    # a fresh listing (not s3fs's cached one): appends add chunks
    found: Mapping[str, dict[str, Any]] = storage.fs.find(base, detail=True, refresh=True)
    for path in sorted(found):
        info = found[path]
        key = path[len(base) + 1 :]
        if info.get("type") != "file" or not key or key.endswith("/"):
            continue  # folder markers of some S3 servers
        if key.rsplit("/", 1)[-1] in METADATA:
            yield _metadata(cubes, cube_id, pointer, store, key, info)
        elif _published_chunk(arrays, key, pointer.steps):
            yield _chunk(storage, key, info, storage.url(CUBES_DIR, cube_id, pointer.version, store, key))


def stat(cubes: CubeStore, cube_id: str, pointer: Pointer, store: str, key: str) -> StoreObject:
    """Size, time and ETag of one published object (a chunk is not read); NotFoundError otherwise."""
    storage = cubes.storage
    parts = (CUBES_DIR, cube_id, pointer.version, store, key)
    chunk = _check_key(storage, cube_id, pointer, store, key)
    try:
        info = storage.fs.info(storage.path(*parts), refresh=True)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        info = None
    if info is None or info.get("type") != "file":
        raise NotFoundError(f"no {key[:120]!r} in {cube_id}/{store}")
    if not chunk:
        return _metadata(cubes, cube_id, pointer, store, key, info)
    return _chunk(storage, key, info, storage.url(*parts))


def read(
    cubes: CubeStore,
    cube_id: str,
    pointer: Pointer,
    store: str,
    key: str,
    start: int = 0,
    end: int | None = None,
) -> bytes:
    """Bytes `start`..`end` (exclusive; None: to the end) of one published object."""
    storage = cubes.storage
    if not _check_key(storage, cube_id, pointer, store, key):
        return cubes.published_object(cube_id, store, key, pointer)[start:end]
    try:
        data: bytes = storage.fs.cat_file(  # fsspec has no type hints
            storage.path(CUBES_DIR, cube_id, pointer.version, store, key), start=start, end=end
        )
        return data
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise NotFoundError(f"no {key[:120]!r} in {cube_id}/{store}") from None


def _check_key(storage: Storage, cube_id: str, pointer: Pointer, store: str, key: str) -> bool:
    """True for a published chunk, False for a metadata object; NotFoundError for anything else (stray
    files, chunks of unpublished steps, paths out of the store)."""
    if not is_object_key(key):
        raise NotFoundError(f"no {key[:120]!r} in {cube_id}/{store}")
    if key.rsplit("/", 1)[-1] in METADATA:
        return False
    if _published_chunk(_arrays(storage, cube_id, pointer.version, store), key, pointer.steps):
        return True
    raise NotFoundError(f"no {key[:120]!r} in {cube_id}/{store}")


def _metadata(
    cubes: CubeStore, cube_id: str, pointer: Pointer, store: str, key: str, info: dict[str, Any]
) -> StoreObject:
    data = cubes.published_object(cube_id, store, key, pointer)  # cut to the published steps
    return StoreObject(key, len(data), _modified(info), f'"{hashlib.md5(data).hexdigest()}"')


def _chunk(storage: Storage, key: str, info: dict[str, Any], url: str) -> StoreObject:
    # chunks are not read to list them: the ETag changes with the object's URL (its version), size and time
    size, modified = int(info["size"]), _modified(info)
    tag = hashlib.md5(f"{url}\n{size}\n{modified.isoformat()}".encode()).hexdigest()
    return StoreObject(key, size, modified, f'"{tag}"')


def _modified(info: dict[str, Any]) -> datetime:
    """The object's time in whole seconds: S3 lists milliseconds but HEAD answers seconds, and the ETag made
    from it must not depend on which of the two was asked."""
    value = info.get("LastModified") or info.get("mtime") or info.get("created")
    if isinstance(value, datetime):
        when = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        when = datetime.fromtimestamp(float(value), UTC) if value is not None else _EPOCH
    return when.replace(microsecond=0)


@lru_cache(maxsize=256)
def _arrays(storage: Storage, cube_id: str, version: str, store: str) -> dict[str, _Array]:
    """The chunk layout of a store's arrays, from its consolidated metadata. A version folder never changes
    its arrays (appends only grow them), so this is read once per store version."""
    try:
        raw = storage.read_bytes(CUBES_DIR, cube_id, version, store, ".zmetadata")
    except FileNotFoundError:
        raise NotFoundError(f"cube {cube_id!r} has no store {store!r}") from None
    metadata = json.loads(raw)["metadata"]
    arrays = {}
    for name in metadata:
        if name.endswith("/.zarray"):
            path = name.removesuffix("/.zarray")
            dims = list(metadata.get(f"{path}/.zattrs", {}).get("_ARRAY_DIMENSIONS", []))
            array = metadata[name]
            arrays[path] = _Array(
                tuple(array.get("chunks", ())),
                dims.index("time") if "time" in dims else None,
                array.get("dimension_separator", "."),
            )
    return arrays


def _published_chunk(arrays: dict[str, _Array], key: str, steps: int) -> bool:
    """Whether `key` names a chunk of an array that holds published steps only or partly."""
    path, _, index = key.rpartition("/")
    array = arrays.get(path)
    if array is None and "/" in path:  # nested chunk keys ("a/0/1/2") of arrays with separator "/"
        for name, candidate in arrays.items():
            if candidate.separator == "/" and key.startswith(name + "/"):
                array, index = candidate, key[len(name) + 1 :]
                break
    if array is None:
        return False
    if not array.chunks:
        return index == "0"  # a 0-d array has one chunk, "0"
    numbers = index.split(array.separator)
    # ASCII digits only: str.isdigit() also holds for "²" or "١", which int() refuses or reads as another key
    if len(numbers) != len(array.chunks) or not all(n.isascii() and n.isdigit() for n in numbers):
        return False
    axis = array.time_axis
    return axis is None or int(numbers[axis]) * array.chunks[axis] < steps


# -- a bucket --------------------------------------------------------------------------------------------
def list_bucket(
    cubes: CubeStore,
    bucket: str,
    pointers: Mapping[str, Pointer],
    prefix: str = "",
    delimiter: str = "",
    after: str = "",
    limit: int = 1000,
) -> Page:
    """One page of the bucket's keys of the cubes in `pointers` (those the caller may see) that start with
    `prefix` and sort after `after`; keys holding `delimiter` past the prefix are rolled up into common
    prefixes, as S3 does. A store wholly rolled up into one prefix, or out of range, is not walked."""
    objects: list[StoreObject] = []
    prefixes: list[str] = []
    truncated = False
    for key, found in _entries(cubes, bucket, pointers, prefix, delimiter, after):
        if delimiter and found is not None and (cut := key.find(delimiter, len(prefix))) >= 0:
            key, found = key[: cut + len(delimiter)], None
        if key <= after or (found is None and prefixes and prefixes[-1] == key):
            continue
        if len(objects) + len(prefixes) >= limit:
            truncated = True
            break
        if found is None:
            prefixes.append(key)
        else:
            objects.append(replace(found, key=key))
    last = max([*(o.key for o in objects[-1:]), *prefixes[-1:]], default=None)
    return Page(objects, prefixes, truncated and limit > 0, last)


def _entries(
    cubes: CubeStore, bucket: str, pointers: Mapping[str, Pointer], prefix: str, delimiter: str, after: str
) -> Iterator[tuple[str, StoreObject | None]]:
    """(bucket key, object) in key order, or (common prefix, None) for a store that rolls up whole. Stores
    are contiguous key ranges, since no store prefix is the beginning of another."""
    stores = sorted(
        (key_prefix, cube_id, store)
        for cube_id, pointer in pointers.items()
        for key_prefix, store in stores_of(bucket, cube_id, pointer)
    )
    for key_prefix, cube_id, store in stores:
        if not (key_prefix.startswith(prefix) or prefix.startswith(key_prefix)):
            continue
        if after > key_prefix and not after.startswith(key_prefix):
            continue  # every key of this store sorts before `after`
        if (
            delimiter
            and key_prefix.startswith(prefix)
            and (cut := key_prefix.find(delimiter, len(prefix))) >= 0
        ):
            yield key_prefix[: cut + len(delimiter)], None
            continue
        for found in store_objects(cubes, cube_id, pointers[cube_id], store):
            key = key_prefix + found.key
            if key.startswith(prefix):
                yield key, found
