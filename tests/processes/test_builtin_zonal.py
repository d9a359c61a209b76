"""`zonal-statistics` against shapely masks and numpy on the real OLCI cube (lon/lat) with its sample
places, and on the projected NDVI cube; features outside, ids, properties and validation."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, box, shape

from cubeport.errors import InputError
from cubeport.processes.builtin import zonal_statistics
from cubeport.processes.builtin.zonal import COLUMNS

NDVI_POLYGON = shape(
    {
        "type": "Polygon",
        "coordinates": [
            [[14.553, 45.867], [14.5618, 45.8665], [14.562, 45.8731], [14.5545, 45.8735], [14.553, 45.867]]
        ],
    }
)


@pytest.fixture(scope="module")
def places(data) -> gpd.GeoDataFrame:
    """Three stations (points) and one area (a polygon) on the Belgian coast, as the xcube demo has them;
    the stations sit exactly on pixel corners (1.5, 52.1), so they are moved a quarter pixel north-east
    to have one pixel under each."""
    frame = gpd.read_file(data / "places" / "inside-cube.geojson")
    points = frame.geom_type == "Point"
    frame.loc[points, "geometry"] = frame.loc[points].geometry.translate(0.000625, 0.000625)
    return frame


def expected_statistics(values: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per step, over the masked pixels with finite values."""
    inside = values[:, mask]
    rows = []
    for step in inside:
        valid = step[np.isfinite(step)]
        rows.append(
            (valid.mean(), valid.min(), valid.max(), valid.std(), valid.size)
            if valid.size
            else (np.nan, np.nan, np.nan, np.nan, 0)
        )
    return dict(zip(("mean", "min", "max", "std", "count"), np.array(rows).T, strict=True))


def rows_of(result: gpd.GeoDataFrame, feature_id) -> pd.DataFrame:
    return result[result["feature_id"] == feature_id].sort_values("time")


def test_polygons_and_points_on_a_lonlat_cube(olci, places, job):
    result = zonal_statistics(job, olci, places, "conc_chl", properties=["Name"])
    assert list(result.columns) == [*COLUMNS, "Name", "geometry"]
    assert len(result) == len(places) * olci.sizes["time"]
    assert result.crs == places.crs
    assert str(result["time"].dt.tz) == "UTC"
    chl = olci["conc_chl"]
    lats, lons = olci["lat"].values, olci["lon"].values
    for position, feature in places.iterrows():
        rows = rows_of(result, position)
        assert (rows["Name"] == feature["Name"]).all()
        assert rows.geometry.iloc[0].equals(feature.geometry)
        np.testing.assert_array_equal(rows["time"].dt.tz_localize(None).values, olci["time"].values)
        if isinstance(feature.geometry, Point):  # the pixel under the station
            row = int(np.argmin(np.abs(lats - feature.geometry.y)))
            col = int(np.argmin(np.abs(lons - feature.geometry.x)))
            values = chl.isel(lat=[row], lon=[col]).values
            mask = np.ones((1, 1), dtype=bool)
        else:  # centres inside the polygon, on a window around it
            west, south, east, north = feature.geometry.bounds
            window = chl.sel(lat=slice(north + 0.01, south - 0.01), lon=slice(west - 0.01, east + 0.01))
            gx, gy = np.meshgrid(window["lon"].values, window["lat"].values)
            mask = shapely.contains_xy(feature.geometry, gx, gy)
            values = window.values
            assert mask.sum() > 10_000
        expected = expected_statistics(values, mask)
        for name in ("mean", "min", "max", "std"):
            np.testing.assert_allclose(rows[name].values, expected[name], rtol=1e-9, equal_nan=True)
        np.testing.assert_array_equal(rows["count"].values, expected["count"])
    assert (result["count"] > 0).any() and (result["count"] < 10_000).any()
    assert job.fractions[-1] == 1.0


def test_a_polygon_on_a_projected_cube_given_in_another_crs(ndvi, job):
    features = gpd.GeoDataFrame({"id": ["field-7"]}, geometry=[NDVI_POLYGON], crs=4326).to_crs(3857)
    result = zonal_statistics(job, ndvi, features, "ndvi", start="2016-01-01", end="2016-12-31")
    times = ndvi["time"].values
    chosen = (times >= np.datetime64("2016-01-01")) & (times <= np.datetime64("2016-12-31"))
    assert len(result) == chosen.sum()
    assert (result["feature_id"] == "field-7").all()  # an `id` column gives the ids
    local = shapely.transform(
        NDVI_POLYGON, Transformer.from_crs(4326, 32633, always_xy=True).transform, interleaved=False
    )
    gx, gy = np.meshgrid(ndvi["x"].values, ndvi["y"].values)
    mask = shapely.contains_xy(local, gx, gy)
    assert 100 < mask.sum() < mask.size
    expected = expected_statistics(ndvi["ndvi"].values[chosen], mask)
    for name in ("mean", "min", "max", "std"):
        np.testing.assert_allclose(result[name].values, expected[name], rtol=1e-6)
    np.testing.assert_array_equal(result["count"].values, expected["count"])
    assert result.crs.to_epsg() == 3857


def test_features_that_cover_no_pixel_have_count_zero(olci, job):
    features = gpd.GeoDataFrame(
        geometry=[box(20, -10, 21, -9), box(2.0001, 51.0001, 2.0002, 51.0002), None], crs=4326
    ).set_index(pd.Index(["africa", "sliver", "none"], name="fid"))
    result = zonal_statistics(job, olci, features, "kd489", end="2017-01-26")
    steps = (olci["time"].values <= np.datetime64("2017-01-26")).sum()
    assert 1 < steps < olci.sizes["time"]
    assert len(result) == 3 * steps
    assert set(result["feature_id"]) == {"africa", "sliver", "none"}  # no `id` column: the index
    assert (result["count"] == 0).all()
    assert result[["mean", "min", "max", "std"]].isna().all().all()


def test_the_result_is_a_collection_the_runner_can_write(olci, places, job, tmp_path):
    result = zonal_statistics(job, olci, places.iloc[:2], "conc_tsm")
    path = tmp_path / "zonal.parquet"
    result.to_parquet(path)
    back = gpd.read_parquet(path)
    assert list(back.columns) == [*COLUMNS, "geometry"]
    pd.testing.assert_series_equal(back["mean"], result["mean"])


def test_zonal_refusals(olci, places, job):
    with pytest.raises(InputError, match="the features have no property 'name'; properties: Name, ID"):
        zonal_statistics(job, olci, places, "conc_chl", properties=["name"])
    renamed = places.rename(columns={"Name": "mean"})
    with pytest.raises(InputError, match="property 'mean' has the name of a result column"):
        zonal_statistics(job, olci, renamed, "conc_chl", properties=["mean"])
    with pytest.raises(InputError, match="variable 'chl' is not in the cube; variables: c2rcc_flags"):
        zonal_statistics(job, olci, places, "chl")
    with pytest.raises(InputError, match="no time step"):
        zonal_statistics(job, olci, places, "conc_chl", start="2020-01-01")
    inputs = zonal_statistics.validate({"cube": "olci", "features": "demo.places", "variable": "chl"})
    with pytest.raises(InputError, match="variable 'chl' is not in the cube"):
        zonal_statistics.check(inputs, lambda cube_id: olci)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"features": "demo.places"}, r"input 'variable'.*required"),
        ({"features": 7, "variable": "conc_chl"}, r"input 'features'"),
        ({"features": "demo.places", "variable": ""}, r"input 'variable'"),
        ({"features": "demo.places", "variable": "conc_chl", "properties": "Name"}, r"input 'properties'"),
        ({"features": "demo.places", "variable": "conc_chl", "all_touched": True}, "no input 'all_touched'"),
    ],
)
def test_zonal_inputs_are_validated_at_submission(inputs, message):
    with pytest.raises(InputError, match=message):
        zonal_statistics.validate({"cube": "olci", **inputs})
