"""`export-cube` and `export-collection`: the files read back with rasterio, xarray and geopandas equal the
cube's values and the features; the COGs are COGs and go back into Cubeport as they are."""

import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from pyproj import CRS

from cubeport.cubes import cf
from cubeport.cubes.readers import open_fragment
from cubeport.errors import InputError
from cubeport.processes.builtin import export_collection, export_cube

BBOX = (2.0, 51.0, 2.3, 51.2)


@pytest.fixture(scope="module")
def expected(olci):
    """What the OLCI cut should hold: two variables, the pixels overlapping BBOX, every step."""
    half = 0.00125
    lat, lon = olci["lat"].values, olci["lon"].values
    rows = lat[(lat + half > BBOX[1]) & (lat - half < BBOX[3])]
    cols = lon[(lon + half > BBOX[0]) & (lon - half < BBOX[2])]
    return olci[["conc_chl", "kd489"]].sel(lat=rows, lon=cols).load()


def test_cog_export_is_a_zip_of_one_cog_per_variable_and_step(olci, expected, job, tmp_path):
    path = export_cube(job, olci, "cog", bbox=BBOX, variables=["conc_chl", "kd489"])
    assert path.parent == job.workdir and path.name == "cube-cog.zip"
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        archive.extractall(tmp_path / "cogs")
    times = pd.DatetimeIndex(olci["time"].values)
    assert names == sorted(
        f"{v}/{v}_{t.strftime('%Y%m%dT%H%M%S')}.tif" for v in ("conc_chl", "kd489") for t in times
    )
    for variable in ("conc_chl", "kd489"):
        for step, moment in enumerate(times):
            tif = tmp_path / "cogs" / variable / f"{variable}_{moment.strftime('%Y%m%dT%H%M%S')}.tif"
            with rasterio.open(tif) as src:
                assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
                assert src.count == 1 and src.crs.to_epsg() == 4326
                assert src.descriptions == (variable,)
                assert src.tags()["TIFFTAG_DATETIME"] == moment.strftime("%Y:%m:%d %H:%M:%S")
                assert src.transform.e < 0  # north-up
                values = src.read(1)
                np.testing.assert_allclose(src.xy(0, 0), (expected["lon"][0], expected["lat"][0]), atol=1e-9)
            np.testing.assert_array_equal(values, expected[variable].isel(time=step).values)
    # back into Cubeport: the reader takes the variable name from the band and the time from the tag
    fragment = open_fragment(
        str(tmp_path / "cogs" / "conc_chl" / f"conc_chl_{times[1].strftime('%Y%m%dT%H%M%S')}.tif")
    )
    assert list(fragment.dataset.data_vars) == ["conc_chl"]
    assert pd.Timestamp(fragment.times[0]) == times[1].floor("s")
    np.testing.assert_array_equal(
        fragment.dataset["conc_chl"].values[0], expected["conc_chl"].isel(time=1).values
    )
    assert job.fractions[-1] == 1.0 and len(job.fractions) == 2 * len(times)


def test_netcdf_export_is_cf_and_equals_the_cube(ndvi, job):
    path = export_cube(job, ndvi, "netcdf", start="2016-01-01", end="2016-03-31")
    assert path.name == "cube.nc"
    with xr.open_dataset(path, engine="netcdf4") as back:
        times = ndvi["time"].values
        chosen = (times >= np.datetime64("2016-01-01")) & (times <= np.datetime64("2016-03-31"))
        np.testing.assert_array_equal(back["time"].values, times[chosen])
        for name in ("ndvi", "cloud_mask"):
            np.testing.assert_array_equal(back[name].values, ndvi[name].values[chosen])
        assert back["ndvi"].attrs["grid_mapping"] == cf.GRID_MAPPING
        assert cf.crs_of(back) == CRS.from_epsg(32633)
        assert back["ndvi"].encoding["zlib"]


def test_zarr_export_is_a_zipped_store(olci, expected, job, tmp_path):
    path = export_cube(job, olci, "zarr", bbox=BBOX, variables=["conc_chl", "kd489"], start="2017-01-20")
    assert path.name == "cube.zarr.zip"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path)
    back = xr.open_zarr(tmp_path / "cube.zarr")
    later = expected.sel(time=expected["time"] >= np.datetime64("2017-01-20"))
    np.testing.assert_array_equal(back["time"].values, later["time"].values)
    for name in ("conc_chl", "kd489"):
        np.testing.assert_array_equal(back[name].values, later[name].values)
    assert not (job.workdir / "cube.zarr").exists()  # only the zip is kept


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"format": "tiff"}, r"input 'format'"),
        ({"bbox": [2, 51, 181, 52]}, r"input 'bbox\.2'"),
        ({"variables": "conc_chl"}, r"input 'variables'"),
    ],
)
def test_export_inputs_are_validated_at_submission(inputs, message):
    with pytest.raises(InputError, match=message):
        export_cube.validate({"cube": "olci", **inputs})


def test_export_of_nothing_is_refused(olci, job):
    with pytest.raises(InputError, match="does not overlap the cube"):
        export_cube(job, olci, "netcdf", bbox=(10, 10, 11, 11))


@pytest.fixture(scope="module")
def countries(data) -> gpd.GeoDataFrame:
    frame = gpd.read_file(data / "land" / "naturalearth_lowres" / "naturalearth_lowres.shp")
    frame.index = pd.Index([f"c{i}" for i in range(len(frame))], name="id")  # as the Python client gives it
    return frame


@pytest.mark.parametrize(("format", "suffix"), [("geoparquet", ".parquet"), ("geopackage", ".gpkg")])
def test_collection_export_reads_back_the_same_features(countries, job, format, suffix):
    path = export_collection(job, countries, format)
    assert path.suffix == suffix and path.parent == job.workdir
    back = gpd.read_parquet(path) if format == "geoparquet" else gpd.read_file(path, layer="features")
    assert len(back) == len(countries) == 177
    assert back.crs == countries.crs
    assert list(back["id"]) == list(countries.index)
    for column in ("name", "continent", "pop_est"):
        assert list(back[column]) == list(countries[column])
    # the same shapes (a GeoPackage layer of polygons and multipolygons holds them all as multipolygons)
    assert back.geometry.geom_equals(countries.geometry.reset_index(drop=True)).all()


def test_collection_export_refuses_an_unknown_format():
    with pytest.raises(InputError, match=r"input 'format'"):
        export_collection.validate({"features": "demo.places", "format": "shapefile"})
