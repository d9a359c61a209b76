"""The guard (api/security.py) on a route of its own: it reads the resource from the declared path parameter
only, and an empty one is not found."""

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from cubeport.api import problems
from cubeport.api.security import resource
from cubeport.config import load_settings
from cubeport.context import Context


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    context = Context(load_settings(data_root=str(tmp_path_factory.mktemp("guard"))))
    context.auth.directory.create_group("syke")
    context.policy.set_access("cube", "secret", public=False, groups=["syke"])
    app = FastAPI()
    app.state.context = context
    problems.install(app)
    router = APIRouter()

    @router.get("/things/{cube:path}", dependencies=[Depends(resource("cube", "cube"))])
    def thing(cube: str) -> dict[str, str]:
        return {"cube": cube}

    app.include_router(router)
    with TestClient(app) as client:
        yield client
    context.close()


def test_the_guard_reads_the_path_parameter_only(client):
    assert client.get("/things/open").json() == {"cube": "open"}
    assert client.get("/things/secret").json()["detail"] == "cube 'secret' not found"
    # an empty path parameter: a query parameter of the same name must not stand in for it, neither to let
    # the request through (a public cube) nor to answer about another resource (a restricted one)
    for named in ("open", "secret"):
        response = client.get("/things/", params={"cube": named})
        assert response.status_code == 404 and response.json()["detail"] == "cube '' not found", named
