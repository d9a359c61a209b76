"""Every real sample ingests with the right coordinates, CRS, time axis and values (checked against plain
rasterio/xarray reads of the originals)."""

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from helpers import write_cube

S1 = "sar/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif"


def test_netcdf_files_combine_along_time(store, data):
    files = sorted(str(p) for p in (data / "netcdf").glob("*.nc"))
    info = write_cube(store, files[::-1], "ostia")  # order of the arguments does not matter
    assert info.dims == {"time": 3, "lat": 720, "lon": 1440}
    assert info.crs == "EPSG:4326"
    assert info.time_start == "2017-06-05T12:00:00" and info.time_end == "2017-06-07T12:00:00"
    cube = store.open("ostia")
    for i, path in enumerate(files):
        with xr.open_dataset(path) as original:
            np.testing.assert_array_equal(cube["lat"].values, original["lat"].values)
            np.testing.assert_array_equal(cube["lon"].values, original["lon"].values)
            np.testing.assert_allclose(
                cube["analysed_sst"].isel(time=i).values,
                original["analysed_sst"].isel(time=0).values,
                rtol=1e-6,
                equal_nan=True,
            )
    assert cube["analysed_sst"].attrs["units"] == "kelvin"


def test_geotiff_time_from_file_name_and_values(store, data):
    info = write_cube(store, [str(data / S1)], "s1", time_pattern="%Y%m%dT%H%M%S")
    assert info.time_start == "2015-03-09T17:30:17"
    assert info.crs == "EPSG:32631"
    cube = store.open("s1")
    with rasterio.open(data / S1) as src:
        expected = src.read(1, masked=True).filled(np.nan)
        xs = np.array([src.xy(0, c)[0] for c in range(src.width)])
        ys = np.array([src.xy(r, 0)[1] for r in range(src.height)])
        assert src.nodata == -99
    np.testing.assert_allclose(cube["band_1"].isel(time=0).values, expected, equal_nan=True)
    np.testing.assert_allclose(cube["x"].values, xs)
    np.testing.assert_allclose(cube["y"].values, ys)
    assert "spatial_ref" in cube.coords and cube["band_1"].attrs["grid_mapping"] == "spatial_ref"
    reopened = xr.open_zarr(store.storage.zarr_store("cubes", "s1", info.version, "0.zarr", read_only=True))
    assert reopened.rio.crs.to_epsg() == 32631  # rioxarray/GDAL read our CF grid mapping


def test_geotiff_integer_bands_keep_dtype_and_nodata(local_store, data):
    path = data / "rasters/RGB.byte.tif"
    info = write_cube(local_store, [str(path)], "rgb", time=pd.Timestamp("2001-01-01").to_pydatetime())
    assert [v.name for v in info.variables] == ["band_1", "band_2", "band_3"]
    assert info.crs == "EPSG:32618"
    cube = local_store.open("rgb")
    assert cube["band_1"].encoding["dtype"] == np.uint8 and cube["band_1"].encoding["_FillValue"] == 0
    with rasterio.open(path) as src:
        for band in (1, 3):
            expected = src.read(band, masked=True).astype("float32").filled(np.nan)
            np.testing.assert_array_equal(cube[f"band_{band}"].isel(time=0).values, expected)


def test_zarr_cube_with_flags_and_pyramid(local_store, data):
    path = data / "cubes/olci-north-sea-chl-5steps.zarr"
    info = write_cube(local_store, [str(path)], "olci", variables=["conc_chl", "c2rcc_flags"])
    assert info.dims == {"time": 5, "lat": 1000, "lon": 2000}
    assert info.levels == 4  # 2000 px -> 1000 -> 500 -> 250 fits a 256 px tile
    original = xr.open_zarr(path)
    np.testing.assert_array_equal(local_store.open("olci")["time"].values, original["time"].values)
    level0 = local_store.open("olci")
    np.testing.assert_allclose(
        level0["conc_chl"].isel(time=2).values, original["conc_chl"].isel(time=2).values, equal_nan=True
    )
    level1 = local_store.open("olci", level=1)
    assert level1.sizes == {"time": 5, "lat": 500, "lon": 1000}
    block = original["conc_chl"].isel(time=2, lat=slice(100, 102), lon=slice(300, 302)).values
    if np.isfinite(block).any():
        assert level1["conc_chl"].isel(time=2, lat=50, lon=150).item() == pytest.approx(
            np.nanmean(block), rel=1e-5
        )
    # flags take the nearest source pixel: every value at level 1 is a value of level 0 (no averaged codes)
    flags0 = original["c2rcc_flags"].isel(time=0, lat=slice(0, 200, 2), lon=slice(0, 200, 2)).values
    flags1 = level1["c2rcc_flags"].isel(time=0, lat=slice(0, 100), lon=slice(0, 100)).values
    np.testing.assert_array_equal(flags1, flags0)


def test_projected_cube_gets_time_series_twin(store, data):
    path = data / "cubes/s2-ndvi-slovenia-68steps.zarr"
    info = write_cube(store, [str(path)], "ndvi")
    assert info.crs == "EPSG:32633" and info.dims == {"time": 68, "y": 101, "x": 100}
    assert info.timeseries  # 68 steps >= the twin threshold
    twin = store.open("ndvi", timeseries=True)
    assert twin["ndvi"].encoding["chunks"] == (128, 32, 32)
    original = xr.open_zarr(path)
    np.testing.assert_allclose(
        twin["ndvi"].isel(y=40, x=60).values, original["ndvi"].isel(y=40, x=60).values, equal_nan=True
    )
    np.testing.assert_allclose(store.open("ndvi")["x"].values, original["x"].values)


def test_zarr_v3_input(local_store, data, tmp_path):
    v3 = tmp_path / "ostia-v3.zarr"
    source = xr.open_zarr(data / "cubes/ostia-sst-baltic-3steps.zarr")
    for var in source.variables.values():
        var.encoding = {}  # the v2 codecs of the source do not apply to v3
    source.to_zarr(v3, zarr_format=3)
    assert (v3 / "zarr.json").exists()
    info = write_cube(local_store, [str(v3)], "ostia-v3")
    assert info.dims == {"time": 3, "lat": 54, "lon": 88}
    np.testing.assert_allclose(
        local_store.open("ostia-v3")["analysed_sst"].values,
        xr.open_zarr(v3)["analysed_sst"].values,
        equal_nan=True,
    )
