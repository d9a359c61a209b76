"""`subset` and `resample` against plain xarray/numpy/pyproj on the real OLCI, NDVI and SST cubes; input
validation as a submitted job meets it (`Process.validate`, the `check` hook); a resampled cube publishes."""

import numpy as np
import pandas as pd
import pytest
from pyproj import CRS, Transformer

from cubeport.cubes import cf
from cubeport.errors import InputError, LimitError
from cubeport.processes.builtin import resample, subset


def overlapping(centres: np.ndarray, low: float, high: float) -> np.ndarray:
    """The coordinates whose cells overlap low..high, by their half step."""
    half = abs(centres[1] - centres[0]) / 2
    return centres[(centres + half > low) & (centres - half < high)]


def test_subset_of_a_lonlat_cube_equals_xarray_selection(olci, job):
    result = subset(job, olci, bbox=(2.0, 51.0, 2.5, 51.3), start="2017-01-20", variables=["conc_chl"])
    lats = overlapping(olci["lat"].values, 51.0, 51.3)
    lons = overlapping(olci["lon"].values, 2.0, 2.5)
    times = olci["time"].values[olci["time"].values >= np.datetime64("2017-01-20")]
    assert list(result.data_vars) == ["conc_chl"]
    np.testing.assert_array_equal(result["lat"].values, lats)
    np.testing.assert_array_equal(result["lon"].values, lons)
    np.testing.assert_array_equal(result["time"].values, times)
    assert result["conc_chl"].chunks is not None  # lazy until written
    expected = olci["conc_chl"].sel(time=times, lat=lats, lon=lons).values
    np.testing.assert_array_equal(result["conc_chl"].values, expected)
    assert job.fractions[-1] == 1.0


def test_subset_of_a_projected_cube_takes_the_bbox_extent_in_its_crs(ndvi, job):
    bbox = (14.555, 45.868, 14.560, 45.872)
    result = subset(job, ndvi, bbox=bbox, end="2015-09-01T00:00:00Z")
    xlo, ylo, xhi, yhi = Transformer.from_crs(4326, 32633, always_xy=True).transform_bounds(
        *bbox, densify_pts=21
    )
    xs, ys = overlapping(ndvi["x"].values, xlo, xhi), overlapping(ndvi["y"].values, ylo, yhi)
    assert 0 < xs.size < ndvi.sizes["x"] and 0 < ys.size < ndvi.sizes["y"]
    np.testing.assert_array_equal(result["x"].values, xs)
    np.testing.assert_array_equal(result["y"].values, ys)
    assert set(result.data_vars) == {"ndvi", "cloud_mask"}
    assert result["cloud_mask"].dtype == np.uint8
    times = ndvi["time"].values[ndvi["time"].values <= np.datetime64("2015-09-01")]
    for name in ("ndvi", "cloud_mask"):
        np.testing.assert_array_equal(result[name].values, ndvi[name].sel(time=times, x=xs, y=ys).values)
    assert cf.crs_of(result) == CRS.from_epsg(32633)
    assert result[cf.GRID_MAPPING].attrs["crs_wkt"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bbox": (10.0, 10.0, 11.0, 11.0)}, r"does not overlap the cube, which covers 0, 50, 5, 52\.5"),
        ({"bbox": (3.0, 51.0, 2.0, 52.0)}, r"west \(3\) must be less than east \(2\)"),
        ({"bbox": (0.0, 51.0, 2.0, 95.0)}, "latitudes must be within -90..90"),
        ({"start": "2018-01-01"}, "no time step between 2018-01-01 and the last; the cube has 5 steps"),
        ({"start": "2017-01-30", "end": "2017-01-20"}, "is after end"),
        ({"variables": ["chl"]}, r"variable 'chl' is not in the cube; variables: c2rcc_flags, conc_chl"),
    ],
)
def test_subset_that_leaves_nothing_says_what_the_cube_has(olci, job, options, message):
    with pytest.raises(InputError, match=message):
        subset(job, olci, **options)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"cube": "olci", "box": [0, 50, 1, 51]}, "process 'subset' has no input 'box'"),
        ({"cube": "olci", "bbox": [0, 50, 200, 52]}, r"input 'bbox\.2'.*less than or equal to 180"),
        ({"cube": "olci", "bbox": [0, -91, 1, 52]}, r"input 'bbox\.1'.*greater than or equal to -90"),
        ({"cube": "olci", "bbox": [2, 50, 1, 52]}, r"input 'bbox'.*west \(2\) must be less than east \(1\)"),
        ({"cube": "olci", "bbox": [0, 50, 1]}, r"input 'bbox'.*four numbers \[west, south, east, north\]"),
        ({"cube": "olci", "bbox": "0,50,1,52"}, r"input 'bbox'.*four numbers"),
        ({"cube": "olci", "bbox": [0, 50, "east", 52]}, r"input 'bbox\.2'.*valid number"),
        ({"cube": "olci", "start": "yesterday"}, r"input 'start'"),
        ({"cube": 5}, r"input 'cube'"),
        ({"cube": "olci", "variables": []}, r"input 'variables'"),
        ({"bbox": [0, 50, 1, 52]}, r"input 'cube'.*required"),
    ],
)
def test_subset_inputs_are_validated_at_submission(inputs, message):
    with pytest.raises(InputError, match=message):
        subset.validate(inputs)


def test_valid_subset_inputs_come_out_typed(olci):
    inputs = subset.validate({"cube": "olci", "bbox": [0, 50.5, 1, 51], "start": "2017-01-20T10:00:00Z"})
    assert inputs["bbox"] == (0.0, 50.5, 1.0, 51.0)
    assert pd.Timestamp(inputs["start"]) == pd.Timestamp("2017-01-20T10:00:00Z")
    assert inputs["variables"] is None
    subset.check(inputs, lambda cube_id: olci)  # no variables named: nothing to refuse
    with pytest.raises(InputError, match="'chl' is not in the cube; variables: c2rcc_flags, conc_chl"):
        subset.check({**inputs, "variables": ["conc_chl", "chl"]}, lambda cube_id: olci)


def test_resample_to_twice_the_pixel_size_averages_2x2_blocks(olci, job):
    window = olci[["conc_chl"]].isel(time=slice(0, 2), lat=slice(0, 200), lon=slice(0, 300))
    result = resample(job, window, resolution=0.005, method="average")
    expected = window["conc_chl"].coarsen(lat=2, lon=2).mean()  # NaN skipped, as by GDAL's average
    assert result.sizes == {"time": 2, "lat": 100, "lon": 150}
    np.testing.assert_allclose(result["lat"].values, expected["lat"].values, atol=1e-9)
    np.testing.assert_allclose(result["lon"].values, expected["lon"].values, atol=1e-9)
    np.testing.assert_allclose(result["conc_chl"].values, expected.values, rtol=1e-6, equal_nan=True)
    assert job.fractions == [0.5, 1.0]


def test_resample_to_another_crs_takes_the_source_pixel_under_each_centre(sst, job, publish):
    result = resample(job, sst, crs=3035, resolution=25_000, method="nearest")
    assert cf.crs_of(result) == CRS.from_epsg(3035)
    assert result["analysed_sst"].dims == ("time", "y", "x")
    gx, gy = np.meshgrid(result["x"].values, result["y"].values)
    lon, lat = Transformer.from_crs(3035, 4326, always_xy=True).transform(gx, gy)
    lons, lats = sst["lon"].values.astype("float64"), sst["lat"].values.astype("float64")
    col = (lon - (lons[0] - 0.125)) / 0.25
    row = (lat - (lats[0] - 0.125)) / 0.25
    inside = (col >= 0) & (col < lons.size) & (row >= 0) & (row < lats.size)
    outside = (col < -0.15) | (col > lons.size + 0.15) | (row < -0.15) | (row > lats.size + 0.15)
    # GDAL approximates the transformation to 1/8 pixel (as gdalwarp does): compare away from cell edges
    clear = inside & (np.abs(col - np.round(col)) > 0.15) & (np.abs(row - np.round(row)) > 0.15)
    source = sst["analysed_sst"].values
    got = result["analysed_sst"].values
    for step in range(sst.sizes["time"]):
        expected = source[step][np.floor(row[clear]).astype(int), np.floor(col[clear]).astype(int)]
        np.testing.assert_array_equal(got[step][clear], expected)
        assert np.isnan(got[step][outside]).all()  # no source pixel: no data
    assert np.isfinite(got).sum() > 1000

    published = publish(result, "sst-laea")
    assert cf.crs_of(published) == CRS.from_epsg(3035)
    assert published[cf.GRID_MAPPING].attrs["grid_mapping_name"] == "lambert_azimuthal_equal_area"
    np.testing.assert_array_equal(published["time"].values, sst["time"].values)
    np.testing.assert_array_equal(published["analysed_sst"].values, got)


def test_resample_refusals(ndvi, sst, job):
    irregular = sst.assign_coords(lat=np.geomspace(53.125, 66.375, sst.sizes["lat"]))
    with pytest.raises(InputError, match="lat coordinates are not evenly spaced"):
        resample(job, irregular, resolution=0.5)
    with pytest.raises(InputError, match="give a target crs"):
        resample(job, ndvi)
    with pytest.raises(InputError, match="EPSG:1025 is not a known CRS"):
        resample(job, ndvi, crs=1025)
    with pytest.raises(LimitError, match="pixels per time step"):
        resample(job, ndvi, resolution=0.01)
    with pytest.raises(InputError, match=r"input 'crs'.*greater than or equal to 1024"):
        resample.validate({"cube": "ndvi", "crs": 5})
    with pytest.raises(InputError, match=r"input 'method'"):
        resample.validate({"cube": "ndvi", "crs": 4326, "method": "cubic"})
    with pytest.raises(InputError, match=r"input 'resolution'.*greater than 0"):
        resample.validate({"cube": "ndvi", "resolution": 0})
