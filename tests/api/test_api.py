"""The app factory: landing page, health, OpenAPI, catalogue routes and problem JSON for every error."""

import re

import pytest
from fastapi.testclient import TestClient

from cubeport.api.app import create_app
from cubeport.config import load_settings
from cubeport.context import Context


@pytest.fixture
def client(tmp_path, data):
    context = Context(load_settings(data_root=str(tmp_path / "root")))
    for cube_id in ("open-cube", "secret-cube"):
        context.ingestion([str(data / "cubes/ostia-sst-baltic-3steps.zarr")], cube_id)
    context.policy.set_access("cube", "secret-cube", public=False, groups=["syke"])
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        yield client
    context.close()


def test_landing_health_and_openapi(client):
    landing = client.get("/").json()
    assert {link["rel"] for link in landing["links"]} >= {
        "self",
        "service-desc",
        "service-doc",
        "data",
        "status",
    }
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["checks"] == {"database": "ok", "storage": "ok"}
    spec = client.get("/api").json()
    assert "/cubes/{cube_id}" in spec["paths"]
    refs = re.findall(r"'\$ref': '([^']*)'", str(spec))
    assert refs and all(ref.startswith("#/components/") for ref in refs)  # self-contained
    assert client.get("/api.html").status_code == 200
    assert set(spec["components"]["securitySchemes"]) == {"APIKeyHeader", "HTTPBearer", "APIKeyCookie"}


def test_catalogue_hides_restricted_cubes(client):
    ids = [c["id"] for c in client.get("/cubes").json()["cubes"]]
    assert ids == ["open-cube"]
    cube = client.get("/cubes/open-cube").json()
    assert cube["crs"] == "EPSG:4326" and cube["time_steps"] == 3
    assert {v["name"] for v in cube["variables"]} == {"analysed_sst", "sst_anomaly"}
    hidden = client.get("/cubes/secret-cube")
    assert hidden.status_code == 404  # restricted cubes are invisible, not forbidden


@pytest.mark.parametrize(
    "path, status",
    [("/cubes/nope", 404), ("/no/such/route", 404), ("/cubes/..%2Fetc", 404), ("/cubes/bad%20id", 422)],
)
def test_errors_are_problem_json(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["error"]["message"]
