"""What the built-in processes take and give as cubes: the input brought to cube conventions, its variables
checked, and a result made publishable (CF grid mapping, a sorted time axis, numeric variables, no encoding
left over from the input that would clash with the result's chunks)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

from cubeport.cubes import cf
from cubeport.errors import InputError

CheckHook = Callable[[Mapping[str, Any], Callable[[str], xr.Dataset]], None]


def as_cube(ds: xr.Dataset, what: str = "the cube") -> xr.Dataset:
    """`ds` in cube conventions (a cube from the store already is; a Zarr opened by hand may not be)."""
    return cf.normalise(ds, what)


def time_variables(ds: xr.Dataset) -> list[str]:
    """The names of the variables with dims (time, y, x) or (time, lat, lon)."""
    ydim, xdim = cf.spatial_dims(ds)
    return [str(name) for name, da in ds.data_vars.items() if {"time", ydim, xdim} <= set(da.dims)]


def require_variables(ds: xr.Dataset, names: Iterable[str]) -> None:
    """InputError naming the first of `names` that is not a time-dependent variable of the cube."""
    known = time_variables(ds)
    for name in names:
        if name not in known:
            raise InputError(f"variable {name!r} is not in the cube; variables: {', '.join(known)}")


def pick(ds: xr.Dataset, variables: Sequence[str] | None) -> xr.Dataset:
    """The cube with just `variables` (all time-dependent ones when None); InputError for an unknown one."""
    names = time_variables(ds) if variables is None else list(dict.fromkeys(variables))
    require_variables(ds, names)
    return ds[names]


def variables_check(*inputs: str) -> CheckHook:
    """A submission check (`@process(check=...)`): the variables named by these inputs (a name or a list of
    names) exist in the cube of the input `cube`. Opens the cube lazily; reads no data."""

    def check(values: Mapping[str, Any], open_cube: Callable[[str], xr.Dataset]) -> None:
        wanted: list[str] = []
        for name in inputs:
            value = values.get(name)
            if isinstance(value, str):
                wanted.append(value)
            elif value:
                wanted.extend(str(v) for v in value)
        if wanted:
            require_variables(as_cube(open_cube(values["cube"])), wanted)

    return check


_KEPT_ENCODING = ("_FillValue",)


def publishable(ds: xr.Dataset, like: xr.Dataset | None = None, what: str = "the result") -> xr.Dataset:
    """A result cube as the runner can write and ingest it: the grid mapping of the input cube `like` where
    a computation dropped it, booleans as uint8, encodings from the input dropped (their chunks and codecs
    describe other arrays), chunks Zarr can take, and cube conventions checked (`cf.normalise`: grid
    mapping `spatial_ref`, dims order, a strictly increasing time axis)."""
    ds = ds.copy()
    if like is not None and cf.GRID_MAPPING in like.coords and cf.GRID_MAPPING not in ds.variables:
        ds = ds.assign_coords({cf.GRID_MAPPING: like[cf.GRID_MAPPING]})
    for name, da in ds.data_vars.items():
        if da.dtype == np.bool_:
            ds[name] = da.astype(np.uint8)
        elif not (np.issubdtype(da.dtype, np.number)):
            raise InputError(f"{what}: variable {name!r} has type {da.dtype}, not a number")
    for variable in ds.variables.values():
        integer = np.issubdtype(variable.dtype, np.integer)
        variable.encoding = {k: v for k, v in variable.encoding.items() if integer and k in _KEPT_ENCODING}
    if not ds.sizes.get("time"):
        raise InputError(f"{what} has no time step")
    return _regular_chunks(cf.normalise(ds, what))


def _regular_chunks(ds: xr.Dataset) -> xr.Dataset:
    """Dask chunks that Zarr can take (equal along each dim but the last): a cut or a grouping leaves
    uneven ones, which are merged to the largest along that dim."""
    changes: dict[str, int] = {}
    for da in ds.data_vars.values():
        for dim, sizes in zip(da.dims, da.chunks or (), strict=False):
            if len(set(sizes[:-1])) > 1 or (len(sizes) > 1 and sizes[-1] > sizes[0]):
                changes[str(dim)] = max(changes.get(str(dim), 0), max(sizes))
    return ds.chunk(changes) if changes else ds


__all__ = [
    "CheckHook",
    "as_cube",
    "pick",
    "publishable",
    "require_variables",
    "time_variables",
    "variables_check",
]
