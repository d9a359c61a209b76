"""Place groups: the xcube sample places, filtered to a dataset, over the xcube routes and the CLI."""

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from cubeport.api.app import create_app
from cubeport.config import load_settings
from cubeport.context import Context
from cubeport.errors import InputError, NotFoundError


@pytest.fixture(scope="module")
def context(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("places")
    context = Context(load_settings(data_root=str(root)))
    context.ingestion([str(data / "cubes/olci-north-sea-chl-5steps.zarr")], "olci", variables=["conc_chl"])
    for name in ("inside-cube", "outside-cube"):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "cubeport",
                "places",
                "add",
                str(data / f"places/{name}.geojson"),
                "--data-root",
                str(root),
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
    yield context
    context.close()


def test_place_groups_over_the_xcube_routes(context, data):
    client = TestClient(create_app(context))
    groups = client.get("/places").json()["placeGroups"]
    assert [g["id"] for g in groups] == ["inside-cube", "outside-cube"]
    source = json.loads((data / "places/inside-cube.geojson").read_text())
    inside = client.get("/places/inside-cube").json()
    assert inside["type"] == "FeatureCollection" and len(inside["features"]) == len(source["features"])
    assert all("id" in f for f in inside["features"])
    assert len(client.get("/datasets/olci/places/inside-cube").json()["features"]) == len(source["features"])
    assert client.get("/datasets/olci/places/outside-cube").json()["features"] == []
    missing = client.get("/places/nope")
    # no names (some may be hidden), and worded as the 404 of a group the caller may not see
    assert missing.status_code == 404 and missing.json()["detail"] == "collection 'nope' not found"


def test_bad_place_groups_are_refused(context):
    with pytest.raises(InputError, match="FeatureCollection"):
        context.places.add("x", b'{"type": "Point", "coordinates": [0, 0]}')
    with pytest.raises(InputError, match="not valid"):
        context.places.add("../x", b'{"type": "FeatureCollection", "features": []}')
    bowtie = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            }
        ],
    }
    with pytest.raises(InputError, match="not valid"):
        context.places.add("bowtie", json.dumps(bowtie).encode())
    for broken, says in (
        ({"type": "Polygon", "coordinates": 5}, "invalid Polygon"),
        ({"type": "Blob", "coordinates": []}, "invalid Blob"),
        ({"type": "LineString", "coordinates": [[0, 0], [0, 100]]}, "longitude, latitude"),
    ):
        bad = {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": broken}],
        }
        with pytest.raises(InputError, match=says):
            context.places.add("broken", json.dumps(bad).encode())
    for never_written in ("bowtie", "broken", "../etc"):
        with pytest.raises(NotFoundError):
            context.places.get(never_written)
