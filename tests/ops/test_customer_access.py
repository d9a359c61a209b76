"""A downstream customer (the icebreakers' portal) with its own API key: its group sees the sea-ice layers in
WMTS, with their time dimension, and nothing else of a platform whose data is restricted by default."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from helpers import add_users, context_with

from cubeport.config import load_settings
from cubeport.context import Context


@pytest.fixture(scope="module")
def portal(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("customer")
    context_with(root, data, {"baltic-ice": "sst", "olci": "olci"}).close()
    context = Context(load_settings(data_root=str(root)))
    add_users(context, (("ibnet-portal", "viewer", "ibnet"), ("ada", "admin", "fmi")))
    context.admin.set_access("cube", "baltic-ice", public=False, groups=["ibnet", "fmi"], by="ada")
    context.admin.set_access("cube", "olci", public=False, groups=["fmi"], by="ada")
    key = context.auth.create_key("ibnet-portal")[1]
    from cubeport.api.app import create_app

    with TestClient(create_app(context.settings)) as client:
        yield client, {"X-API-Key": key}
    context.close()


def test_the_customer_key_sees_only_the_sea_ice_layers(portal):
    client, key = portal
    capabilities = client.get("/wmts/1.0.0/WMTSCapabilities.xml", headers=key)
    assert capabilities.status_code == 200
    text = capabilities.text
    assert "baltic-ice" in text and "olci" not in text
    assert "<ows:Identifier>Time</ows:Identifier>" in text  # the time dimension
    anonymous = client.get("/wmts/1.0.0/WMTSCapabilities.xml").text
    assert "baltic-ice" not in anonymous
    hidden = client.get("/datasets/olci", headers=key)
    missing = client.get("/datasets/no-such-cube", headers=key)
    assert hidden.status_code == missing.status_code == 404
    assert client.get("/datasets/baltic-ice", headers=key).status_code == 200
