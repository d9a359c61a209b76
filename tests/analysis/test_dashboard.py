"""The analysis dashboard's numbers (classes, summer means, daily values, histogram) over the demo's water
bodies, against a plain numpy computation on the cube as xarray reads it; in-situ observations of stations."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from shapely.geometry import shape

from cubeport.config import load_settings
from cubeport.context import Context
from cubeport.demo import DEMO_CUBE, build_demo

DAYS = 20  # from 2024-06-01: every step is in summer


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    context = Context(load_settings(data_root=str(tmp_path_factory.mktemp("dashboard"))))
    build_demo(context, days=DAYS)
    yield context
    context.close()


def plain_values(context, geometry) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """(time, pixels) of the pixels whose centre lies in the geometry, with xarray and shapely alone."""
    version = context.cubes.pointer(DEMO_CUBE).version
    ds = xr.open_zarr(context.storage.path("cubes", DEMO_CUBE, version, "0.zarr"))
    lon, lat = np.meshgrid(ds["lon"].values, ds["lat"].values)
    inside = shapely.contains_xy(geometry, lon, lat)
    return ds["chl"].values[:, inside].astype(np.float64), pd.DatetimeIndex(ds["time"].values)


def test_water_body_classes_equal_a_plain_computation(client, context):
    body = context.places.feature("water-bodies", "1")  # Gulf of Finland
    limits = body["properties"]["chl_class_limits"]
    report = client.get(f"/dashboards/{DEMO_CUBE}/chl/places/water-bodies/1").json()
    values, times = plain_values(context, shape(body["geometry"]))
    valid = values[np.isfinite(values)]
    bounds = [-np.inf, *limits, np.inf]
    expected = [int(((valid >= lo) & (valid < hi)).sum()) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    assert [c["count"] for c in report["classes"]] == expected and sum(expected) == report["count"] > 1000
    assert [c["name"] for c in report["classes"]] == ["High", "Good", "Moderate", "Poor", "Bad"]
    assert report["limits"] == limits and report["place"]["name"] == "Gulf of Finland"
    assert report["summer"] == [
        {
            "year": 2024,
            "mean": pytest.approx(valid.mean(), rel=1e-9),
            "count": valid.size,
            "class": report["summer"][0]["class"],
        }
    ]
    assert (
        report["summer"][0]["class"]
        == ["High", "Good", "Moderate", "Poor", "Bad"][
            int(np.searchsorted(limits, valid.mean(), side="right"))
        ]
    )
    daily = report["daily"]
    assert len(daily) == DAYS == len(times)
    for row, step in zip(daily, values, strict=False):
        ok = step[np.isfinite(step)]
        assert row["count"] == ok.size
        assert row["mean"] == (pytest.approx(ok.mean(), rel=1e-9) if ok.size else None)
    histogram = report["histogram"]
    assert sum(histogram["values"]) == valid.size and histogram["edges"][-1] >= limits[-1]


def test_a_drawn_polygon_with_limits_and_the_bad_cases(client, context):
    polygon = {"type": "Polygon", "coordinates": [[[19, 57], [21, 57], [21, 58.5], [19, 58.5], [19, 57]]]}
    report = client.post(f"/dashboards/{DEMO_CUBE}/chl", params={"limits": "1,2,4,8"}, json=polygon).json()
    values, _ = plain_values(context, shape(polygon))
    assert report["count"] == int(np.isfinite(values).sum())
    for params, says in (
        ({}, "give the four class limits"),
        ({"limits": "1,2,4"}, "give 4 class limits"),
        ({"limits": "1,3,2,4"}, "must increase"),
        ({"limits": "a,b,c,d"}, "four numbers"),
    ):
        response = client.post(f"/dashboards/{DEMO_CUBE}/chl", params=params, json=polygon)
        assert response.status_code == 400 and says in response.json()["detail"], (params, response.text)
    station = client.get(f"/dashboards/{DEMO_CUBE}/chl/places/stations/LL7")
    assert station.status_code == 400 and "chl_class_limits" in station.json()["detail"]
    missing = client.get(f"/dashboards/{DEMO_CUBE}/chl/places/water-bodies/99")
    assert missing.status_code == 404 and "places: 1, 2" in missing.json()["detail"]


def test_station_observations(client, context):
    raw = context.storage.read_bytes("places", "stations.observations.csv")
    table = pd.read_csv(io.BytesIO(raw))
    expected = table[(table["station"] == "LL7") & (table["parameter"] == "chl")]
    answer = client.get("/places/stations/LL7/observations", params={"parameter": "chl"}).json()
    assert [o["value"] for o in answer["observations"]] == pytest.approx(expected["value"].tolist())
    assert all(o["time"].endswith("Z") and o["unit"] == "mg m-3" for o in answer["observations"])
    assert len(answer["observations"]) == len(expected) > 0
    assert client.get("/places/stations/nowhere/observations").status_code == 404


def test_observations_are_checked_before_they_replace_the_old(context):
    from cubeport.errors import InputError

    before = context.storage.read_bytes("places", "stations.observations.csv")
    for content, says in (
        (b"station,time,value\nLL7,2024-06-01,1\n", "lack columns parameter"),
        (b"station,time,parameter,value\nLL7,yesterday,chl,1\n", "row 2"),
    ):
        with pytest.raises(InputError, match=says):
            context.places.add_observations("stations", content)
    assert context.storage.read_bytes("places", "stations.observations.csv") == before


def test_what_the_review_found_gives_4xx(client, context):
    """Malformed limits on a feature, an empty geometry, a huge limit, a broken observations file: 4xx, not 500."""
    import json

    from cubeport.errors import InputError

    bodies = json.loads(context.storage.read_bytes("places", "water-bodies.geojson"))
    ring = bodies["features"][0]["geometry"]
    odd = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": str(i), "geometry": ring, "properties": {"chl_class_limits": limits}}
            for i, limits in enumerate(["2,3,6,10", ["a", "b", "c", "d"], 5, [1, None, 3, 4], {}])
        ],
    }
    context.places.add("odd", json.dumps(odd).encode())
    for i in range(5):
        response = client.get(f"/dashboards/{DEMO_CUBE}/chl/places/odd/{i}")
        assert response.status_code == 400 and "class limits" in response.json()["detail"], (i, response.text)
    huge = client.get(
        f"/dashboards/{DEMO_CUBE}/chl/places/water-bodies/1", params={"limits": "1,2,3,1.5e308"}
    )
    assert huge.status_code == 400
    with pytest.raises(InputError, match="empty"):
        context.places.add(
            "empty",
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "geometry": {"type": "Polygon", "coordinates": []},
                            "properties": {},
                        }
                    ],
                }
            ).encode(),
        )
    negative = client.get(
        f"/dashboards/{DEMO_CUBE}/chl/places/water-bodies/1", params={"limits": "-40,-30,-20,-8"}
    )
    edges = negative.json()["histogram"]["edges"]
    assert edges[0] < -40 and edges[-1] > negative.json()["summer"][0]["mean"]  # limits and data both shown
    before = context.storage.read_bytes("places", "stations.observations.csv")
    try:
        context.storage.write_bytes_atomic(
            b"station,time\nLL7,notatime\n", "places", "stations.observations.csv"
        )
        broken = client.get("/places/stations/LL7/observations")
        assert broken.status_code == 400 and "cannot be read" in broken.json()["detail"]
    finally:
        context.storage.write_bytes_atomic(before, "places", "stations.observations.csv")
    hidden = client.get("/places/nope")
    assert (
        hidden.status_code == 404 and "stations" not in hidden.json()["detail"]
    )  # no list of (hidden) groups
