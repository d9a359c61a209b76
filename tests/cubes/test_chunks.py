"""The direct chunk reader gives exactly what xarray over zarr-python gives, on a local folder and on S3."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from cubeport.cubes import chunks
from cubeport.cubes.chunks import ChunkedArray, fast_reads

SELECTIONS = [
    {"time": slice(0, 7), "y": slice(3, 41), "x": slice(5, 60)},  # across chunk edges
    {"time": 2, "y": slice(None), "x": slice(None)},  # a whole map, edge chunks included
    {"time": slice(1, 7, 2), "y": 17, "x": slice(60, 5, -3)},  # strided and reversed
    {"time": [0, 4, 6], "y": slice(10, 20), "x": [3, 4, 69]},  # orthogonal lists
    {"time": slice(0, 7), "y": slice(0, 16), "x": slice(0, 16)},  # a chunk never written (all NaN)
    {"time": slice(3, 3), "y": slice(0, 4), "x": slice(0, 4)},  # empty
]


def write_sample(storage, name: str) -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(7, 45, 70)).astype(np.float32)
    values[:, :16, :16] = np.nan  # a whole chunk of NaN, which zarr leaves unwritten
    values[rng.random(values.shape) < 0.1] = np.nan
    packed = (rng.random((7, 45, 70)) * 100).astype(np.float32)
    ds = xr.Dataset(
        {"v": (("time", "y", "x"), values), "packed": (("time", "y", "x"), packed)},
        coords={"time": np.arange(7), "y": np.arange(45), "x": np.arange(70)},
    )
    encoding = {
        "v": {"chunks": (3, 16, 16)},
        "packed": {"chunks": (3, 16, 16), "dtype": "int16", "scale_factor": 0.01, "_FillValue": -1},
    }
    ds.to_zarr(storage.zarr_store(name), mode="w", zarr_format=2, consolidated=True, encoding=encoding)


def open_both(storage, keep: bool = True):
    write_sample(storage, "sample.zarr")
    store = storage.zarr_store("sample.zarr", read_only=True)
    plain = xr.open_zarr(store, consolidated=True, chunks=None)
    fast = fast_reads(
        xr.open_zarr(store, consolidated=True, chunks=None), store, storage.url("sample.zarr") + "/", keep
    )
    return plain, fast


@pytest.fixture
def opened(storage):
    return open_both(storage)


@pytest.mark.parametrize("keep", [True, False], ids=["cached", "scratch"])
def test_fast_reads_equal_zarr(storage, keep):
    plain, fast = open_both(storage, keep)
    assert isinstance(fast["v"].variable._data.array, ChunkedArray)  # the plain layout is read directly
    for selection in SELECTIONS:
        expected, got = plain["v"].isel(selection).values, fast["v"].isel(selection).values
        assert got.shape == expected.shape, selection
        np.testing.assert_array_equal(got, expected, err_msg=str(selection))


def test_scaled_variables_keep_xarrays_decoding(opened):
    plain, fast = opened
    assert not isinstance(getattr(fast["packed"].variable._data, "array", None), ChunkedArray)
    np.testing.assert_array_equal(fast["packed"].values, plain["packed"].values)


def test_decoded_chunks_are_shared_and_read_only(opened):
    _, fast = opened
    selection = {"time": slice(0, 3), "y": slice(16, 32), "x": slice(16, 32)}  # exactly one chunk
    _ = fast["v"].isel(selection).values
    hits = chunks.decoded.hits
    again = fast["v"].isel(selection).values
    assert chunks.decoded.hits == hits + 1
    again[:] = 0  # a caller's array is its own copy, not the cached chunk
    assert np.isfinite(fast["v"].isel(selection).values).sum() > 0
