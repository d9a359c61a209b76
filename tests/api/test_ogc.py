"""OGC API for cubes: conformance, collections, tile matrix sets (TM35FIN among them), map tiles, and EDR
position and area queries in CoverageJSON equal to a plain xarray computation."""

import morecantile
import numpy as np
import pytest
import shapely
import xarray as xr
from fastapi.testclient import TestClient
from helpers import context_with

from cubeport.api.app import create_app

POLYGON = "POLYGON((18.1 57.05, 21.9 56.9, 22.3 59.8, 18.4 60.1, 18.1 57.05))"


@pytest.fixture(scope="module")
def client(tmp_path_factory, data):
    context = context_with(tmp_path_factory.mktemp("ogc"), data, {"sst": "sst"})
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        yield client
    context.close()


def test_landing_conformance_collections_and_tile_matrix_sets(client):
    rels = {link["rel"] for link in client.get("/").json()["links"]}
    assert {"conformance", "data", "service-desc"} <= rels
    conforms = client.get("/conformance").json()["conformsTo"]
    assert any("ogcapi-tiles-1" in c for c in conforms) and any("ogcapi-edr-1" in c for c in conforms)
    collection = client.get("/collections").json()["collections"][0]
    assert collection["id"] == "sst" and collection["extent"]["spatial"]["bbox"][0][0] == pytest.approx(9.0)
    assert set(collection["parameter_names"]) == {"analysed_sst", "sst_anomaly"}
    assert collection["extent"]["temporal"]["interval"][0][0].startswith("2017-06-05")
    for tms in ("WebMercatorQuad", "WorldCRS84Quad", "TM35FIN"):
        parsed = morecantile.TileMatrixSet.model_validate(client.get(f"/tileMatrixSets/{tms}").json())
        assert parsed.id == tms  # a valid OGC TMS 2.0 document, read back by morecantile
    tm35fin = morecantile.TileMatrixSet.model_validate(client.get("/tileMatrixSets/TM35FIN").json())
    assert tm35fin.crs.to_epsg() == 3067 and tm35fin.matrix(0).cellSize == 8192.0
    assert client.get("/tileMatrixSets/Nope").status_code == 404


def test_map_tiles_per_collection_and_variable(client):
    sets = client.get("/collections/sst/map/tiles").json()["tilesets"]
    assert len(sets) == 3 and sets[0]["links"][1]["templated"] is True
    first = client.get("/collections/sst/map/tiles/TM35FIN/2/2/1", params={"variable": "analysed_sst"})
    anomaly = client.get("/collections/sst/map/tiles/TM35FIN/2/2/1", params={"variable": "sst_anomaly"})
    assert first.status_code == anomaly.status_code == 200 and first.content != anomaly.content
    assert client.get("/collections/sst/map/tiles/TM35FIN/2/2/1", params={"variable": "x"}).status_code == 404


def test_edr_position_and_area_equal_xarray(client, data):
    source = xr.open_zarr(data / "cubes/ostia-sst-baltic-3steps.zarr")
    point = client.get("/collections/sst/position", params={"coords": "POINT(20.1 58.4)"})
    assert point.status_code == 200 and point.headers["content-type"] == "application/prs.coverage+json"
    coverage = point.json()
    assert (
        coverage["domain"]["domainType"] == "PointSeries"
        and len(coverage["domain"]["axes"]["t"]["values"]) == 3
    )
    want = source["analysed_sst"].sel(lon=20.1, lat=58.4, method="nearest").values
    np.testing.assert_allclose(coverage["ranges"]["analysed_sst"]["values"], want, rtol=1e-6)
    assert coverage["parameters"]["analysed_sst"]["unit"]["symbol"] == "kelvin"
    area = client.get(
        "/collections/sst/area",
        params={"coords": POLYGON, "parameter-name": "sst_anomaly", "datetime": "2017-06-06T00:00:00Z/.."},
    ).json()
    polygon = shapely.from_wkt(POLYGON)
    gx, gy = np.meshgrid(source["lon"].values, source["lat"].values)
    inside = xr.DataArray(shapely.contains_xy(polygon, gx, gy), dims=("lat", "lon"))
    expected = source["sst_anomaly"].where(inside).mean(("lat", "lon")).values[1:]
    assert area["domain"]["domainType"] == "PolygonSeries" and list(area["ranges"]) == ["sst_anomaly"]
    np.testing.assert_allclose(area["ranges"]["sst_anomaly"]["values"], expected, rtol=1e-6)


@pytest.mark.parametrize(
    "path, params, status",
    [
        ("/collections/sst/position", {"coords": "POINT(20"}, 400),
        ("/collections/sst/position", {"coords": "POLYGON((18 57, 22 57, 22 60, 18 57))"}, 400),
        ("/collections/sst/area", {"coords": "POINT(20 58)"}, 400),
        ("/collections/sst/position", {"coords": "POINT(20 58.5)", "parameter-name": "nope"}, 404),
        ("/collections/sst/position", {"coords": "POINT(120 58.5)"}, 404),
        ("/collections/sst/position", {}, 422),
        ("/collections/sst/position", {"coords": "POINT(20 58.5)", "parameter-name": ","}, 400),
        ("/collections/sst/position", {"coords": "MULTIPOINT((20 58.5))"}, 400),
        ("/collections/nope", {}, 404),
    ],
)
def test_bad_edr_queries(client, path, params, status):
    response = client.get(path, params=params)
    assert response.status_code == status and response.json()["detail"]
