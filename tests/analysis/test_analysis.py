"""Time series and statistics against plain xarray computations on the original sample files."""

import json

import numpy as np
import pytest
import shapely
import xarray as xr
from fastapi.testclient import TestClient
from helpers import SAMPLE_CUBES, context_with
from pyproj import Transformer
from shapely.geometry import Point, shape

from cubeport.analysis import windows
from cubeport.analysis.statistics import statistics
from cubeport.analysis.timeseries import time_series
from cubeport.api.app import create_app
from cubeport.context import Context

NDVI_POLYGON = {
    "type": "Polygon",
    "coordinates": [
        [[14.553, 45.867], [14.5618, 45.8665], [14.562, 45.8731], [14.5545, 45.8735], [14.553, 45.867]]
    ],
}
SST_POLYGON = {
    "type": "Polygon",
    "coordinates": [[[18.1, 57.05], [21.9, 56.9], [22.3, 59.8], [18.4, 60.1], [18.1, 57.05]]],
}


@pytest.fixture(scope="module")
def context(tmp_path_factory, data):
    context = context_with(tmp_path_factory.mktemp("analysis"), data, {"ndvi": "ndvi", "sst": "sst"})
    yield context
    context.close()


def original(data, cube_id):
    return xr.open_zarr(data / "cubes" / SAMPLE_CUBES[cube_id])


def plain_mask(ds, polygon, xdim, ydim, to_cube=None, all_touched=False):
    """Which pixels the polygon covers, from shapely alone: centres inside, or cells that intersect."""
    local = shapely.transform(polygon, to_cube, interleaved=False) if to_cube else polygon
    xs, ys = ds[xdim].values, ds[ydim].values
    gx, gy = np.meshgrid(xs, ys)
    if not all_touched:
        return xr.DataArray(shapely.contains_xy(local, gx, gy), dims=(ydim, xdim))
    dx, dy = abs(xs[1] - xs[0]) / 2, abs(ys[1] - ys[0]) / 2
    cells = shapely.box(gx - dx, gy - dy, gx + dx, gy + dy)
    return xr.DataArray(shapely.intersects(cells, local), dims=(ydim, xdim))


def test_point_series_equals_the_original_file(context, data):
    lon, lat = 14.558, 45.870
    got = time_series(context.cubes, "ndvi", "ndvi", Point(lon, lat), ["mean"])
    assert context.cubes.pointer("ndvi").timeseries  # 68 steps: read from the time-chunked twin
    source = original(data, "ndvi")
    x, y = Transformer.from_crs(4326, 32633, always_xy=True).transform(lon, lat)
    want = source["ndvi"].sel(x=x, y=y, method="nearest").values
    assert len(got) == 68 == len(want)
    np.testing.assert_allclose([r["mean"] if r["mean"] is not None else np.nan for r in got], want, rtol=1e-6)


def test_polygon_series_equals_xarray_on_the_original_file(context, data):
    methods = ["mean", "median", "std", "min", "max", "count"]
    got = time_series(context.cubes, "ndvi", "ndvi", shape(NDVI_POLYGON), methods)
    source = original(data, "ndvi")
    to_utm = Transformer.from_crs(4326, 32633, always_xy=True).transform
    mask = plain_mask(source, shape(NDVI_POLYGON), "x", "y", to_utm)
    inside = source["ndvi"].where(mask)
    want = {
        "mean": inside.mean(("y", "x")),
        "median": inside.median(("y", "x")),
        "std": inside.std(("y", "x")),
        "min": inside.min(("y", "x")),
        "max": inside.max(("y", "x")),
        "count": inside.count(("y", "x")),
    }
    assert int(mask.sum()) > 1000
    for method in methods:
        values = [r[method] if r[method] is not None else np.nan for r in got]
        np.testing.assert_allclose(values, want[method].values, rtol=1e-5, atol=1e-7, err_msg=method)


def test_all_touched_counts_every_pixel_the_polygon_touches(context, data):
    source = original(data, "sst")
    polygon = shape(SST_POLYGON)
    centres = time_series(context.cubes, "sst", "analysed_sst", polygon, ["mean", "count"])
    touched = time_series(context.cubes, "sst", "analysed_sst", polygon, ["mean", "count"], all_touched=True)
    for rows, touched_mask in ((centres, False), (touched, True)):
        mask = plain_mask(source, polygon, "lon", "lat", all_touched=touched_mask)
        inside = source["analysed_sst"].where(mask)
        np.testing.assert_array_equal([r["count"] for r in rows], inside.count(("lat", "lon")).values)
        np.testing.assert_allclose([r["mean"] for r in rows], inside.mean(("lat", "lon")).values, rtol=1e-6)
    assert touched[0]["count"] > centres[0]["count"]


def test_statistics_equal_xarray(context, data):
    source = original(data, "sst")
    polygon = shape(SST_POLYGON)
    got = statistics(context.cubes, "sst", "analysed_sst", polygon, "2017-06-06T12:00:00Z")
    inside = (
        source["analysed_sst"]
        .sel(time="2017-06-06T12:00:00")
        .where(plain_mask(source, polygon, "lon", "lat"))
    )
    valid = inside.values[np.isfinite(inside.values)]
    assert got["time"] == "2017-06-06T12:00:00Z" and got["count"] == valid.size
    assert got["minimum"] == pytest.approx(valid.min()) and got["maximum"] == pytest.approx(valid.max())
    assert got["mean"] == pytest.approx(valid.mean(), rel=1e-6) and got["deviation"] == pytest.approx(
        valid.std(), rel=1e-5
    )
    assert sum(got["histogram"]["values"]) == valid.size and len(got["histogram"]["edges"]) == 101
    point = statistics(context.cubes, "sst", "analysed_sst", Point(20.0, 58.5))
    want = source["analysed_sst"].isel(time=-1).sel(lon=20.0, lat=58.5, method="nearest")
    assert point["value"] == pytest.approx(float(want))


def test_time_series_route_as_the_xcube_viewer_calls_it(client):
    body = json.dumps({"type": "Point", "coordinates": [14.558, 45.870]})
    response = client.post(
        "/timeseries/ndvi/ndvi",
        params={"aggMethods": "mean,std"},
        content=body,
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 200
    result = response.json()["result"]
    assert len(result) == 68 and set(result[0]) == {"time", "mean", "std"} and result[0]["time"].endswith("Z")
    window = client.post(
        "/timeseries/ndvi/ndvi",
        params={"startDate": "2016-01-01", "endDate": "2016-12-31"},
        json={"type": "Feature", "geometry": json.loads(body), "properties": {}},
    ).json()["result"]
    assert window and all(r["time"].startswith("2016") for r in window)
    valid = client.post("/timeseries/ndvi/ndvi", params={"maxValids": 3}, json=NDVI_POLYGON).json()["result"]
    assert len(valid) == 3 and valid[-1]["time"] == result[-1]["time"]
    stats = client.post("/statistics/sst/analysed_sst", json=SST_POLYGON).json()["result"]
    assert stats["count"] > 0 and stats["histogram"]["values"]


@pytest.mark.parametrize(
    "body, params, status, says",
    [
        ("{not json", {}, 400, "not JSON"),
        ({"type": "LineString", "coordinates": [[14.55, 45.86], [14.56, 45.87]]}, {}, 400, "not supported"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            {},
            400,
            "not valid",
        ),
        ({"type": "Point", "coordinates": [45.87, 514.55]}, {}, 400, "longitude, latitude"),
        ({"type": "Point", "coordinates": [30.0, 10.0]}, {}, 404, "outside the dataset"),
        ({"type": "Point"}, {}, 400, "invalid Point"),
        ({"type": "MultiPoint", "coordinates": [[30.0, 10.0]]}, {}, 400, "not supported"),
        ({"type": "FeatureCollection", "features": 5}, {}, 400, "FeatureCollection"),
        (
            {"type": "Point", "coordinates": [14.558, 45.870]},
            {"startDate": "3000-01-01"},
            400,
            "between 1678 and 2261",
        ),
        ({"type": "Point", "coordinates": [14.558, 45.870]}, {"aggMethods": "avg"}, 400, "aggregation 'avg'"),
        ({"type": "Point", "coordinates": [14.558, 45.870]}, {"startDate": "soon"}, 400, "startDate"),
    ],
)
def test_bad_geometries_and_parameters(client, body, params, status, says):
    content = body if isinstance(body, str) else json.dumps(body)
    response = client.post("/timeseries/ndvi/ndvi", params=params, content=content)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]


def test_size_budget_is_a_clear_422(client, monkeypatch):
    monkeypatch.setattr(windows, "MAX_VALUES", 1000)
    response = client.post("/timeseries/ndvi/ndvi", json=NDVI_POLYGON)
    assert response.status_code == 422 and "the limit is 1,000" in response.json()["detail"]
    assert response.json()["limit"] == "values" and response.json()["maximum"] == 1000
    assert client.get("/statistics/ndvi/nope", params={"lon": 14.558, "lat": 45.870}).status_code == 404


def test_time_budget_is_a_clear_422(context):
    """A request that outlives its time budget ends between two chunk reads with a problem naming the limit;
    the same requests pass with the default budget."""
    hurried = Context(context.settings.model_copy(update={"request_seconds": 1e-9}))
    generous = Context(context.settings)
    try:
        for ctx, expected in ((hurried, 422), (generous, 200)):
            with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
                responses = [
                    client.post("/timeseries/sst/analysed_sst", json=SST_POLYGON),
                    client.get("/tiles/sst/analysed_sst/4/4/8"),
                ]
            for response in responses:
                assert response.status_code == expected, response.text
                if expected == 422:
                    assert response.json()["limit"] == "seconds" and "1e-09 s" in response.json()["detail"]
    finally:
        hurried.close()
        generous.close()
