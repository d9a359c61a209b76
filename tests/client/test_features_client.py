"""The geoDB-like Python client against a running server: a notebook's session with GeoDataFrames, on the
Natural Earth countries, with paging, CQL2 queries, reprojection on insert, sharing and export; on
SQLite and on PostGIS."""

from __future__ import annotations

import uuid

import geopandas
import pytest
from services import AppServer

from cubeport.api.app import create_app
from cubeport.client import FeatureClient, FeatureClientError


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request, tmp_path_factory):
    """A server on SQLite, then on a new PostgreSQL + PostGIS database."""
    from cubeport.config import load_settings
    from cubeport.context import Context

    url = (
        None
        if request.param == "sqlite"
        else request.getfixturevalue("pg_server").new_database(f"t_{uuid.uuid4().hex[:12]}")
    )
    context = Context(
        load_settings(data_root=str(tmp_path_factory.mktemp("features-client")), database_url=url)
    )
    directory = context.auth.directory
    for name in ("eva", "leo"):
        directory.create_user(name, role="editor")
    directory.create_group("balticaims", kind="project")
    directory.add_member("balticaims", "leo")
    keys = {name: context.auth.create_key(name)[1] for name in ("eva", "leo")}
    server = AppServer(create_app(context))
    yield server.url, keys
    server.stop()
    context.close()


def test_a_notebook_session(served, data, tmp_path, monkeypatch):
    url, keys = served
    countries = geopandas.read_file(data / "land/naturalearth_lowres/naturalearth_lowres.shp")
    geodb = FeatureClient(url, api_key=keys["eva"], database="eva")
    geodb.create_collection(
        "countries",
        {"name": "string", "continent": "string", "pop_est": "number"},
        crs=3035,
        title="Countries (LAEA Europe)",
        licence="public domain",
    )
    # Russia crosses the antimeridian: in LAEA Europe it becomes self-intersecting, and the server refuses it
    europe = countries[(countries.continent == "Europe") & (countries.name != "Russia")][
        ["name", "continent", "pop_est", "geometry"]
    ]
    assert geodb.insert_into_collection("countries", europe, chunk=10) == len(europe)
    collections = geodb.get_my_collections("eva")
    assert list(collections.collection) == ["countries"] and collections.owner[0] == "user:eva"
    assert geodb.get_collection_info("countries")["storageCrs"].endswith("/3035")
    assert geodb.count_collection_rows("countries") == len(europe)
    assert (
        geodb.count_collection_rows("countries", query="pop_est > 1e7")
        == int((europe.pop_est > 1e7).sum())
        > 5
    )
    assert 0 < geodb.count_collection_rows("countries", exact=False) <= 2 * len(europe)
    geodb.update_collection_metadata("countries", description="Natural Earth 1:110m", keywords=["borders"])
    info = geodb.get_collection_info("countries")
    assert (info["description"], info["keywords"], info["title"]) == (
        "Natural Earth 1:110m",
        ["borders"],
        "Countries (LAEA Europe)",
    )
    with pytest.raises(Exception, match="400: time property .name. is not a datetime property"):
        geodb.update_collection_metadata("countries", time_property="name")
    # pages of 7: the client follows them up to the limit
    monkeypatch.setattr("cubeport.client.features.PAGE", 7)
    everything = geodb.get_collection("countries", sortby="name")
    assert list(everything.name) == sorted(europe.name) and everything.crs.to_epsg() == 4326
    finland = everything[everything.name == "Finland"].geometry.iloc[0]
    original = europe[europe.name == "Finland"].geometry.iloc[0]
    assert abs(finland.area - original.area) / original.area < 1e-3  # reprojected there and back
    window = geodb.get_collection("countries", limit=10, offset=5, sortby="name")
    assert list(window.name) == sorted(europe.name)[5:15]
    big = geodb.get_collection("countries", query="pop_est > 20000000")
    assert set(big.name) == set(europe[europe.pop_est > 2e7].name)
    nordic = geodb.get_collection_by_bbox("countries", (20.0, 59.0, 30.0, 70.0), query="name <> 'Sweden'")
    assert {"Finland", "Estonia"} <= set(nordic.name) and "Sweden" not in set(nordic.name)
    # changes by query
    assert (
        geodb.update_collection(
            "countries", {"continent": "Nordic"}, "name IN ('Finland', 'Sweden', 'Norway')"
        )
        == 3
    )
    assert geodb.delete_from_collection("countries", "continent = 'Nordic'") == 3
    assert len(geodb.get_collection("countries")) == len(europe) - 3
    # upsert: a row whose index is an existing id replaces that feature
    row = geodb.get_collection("countries", query="name = 'Estonia'").to_crs(3035)
    row["pop_est"] = 1.0
    assert geodb.insert_into_collection("countries", row, upsert=True) == 1
    assert geodb.get_collection("countries", query="name = 'Estonia'").pop_est.tolist() == [1.0]
    # sharing
    leo = FeatureClient(url, api_key=keys["leo"])
    with pytest.raises(FeatureClientError, match="404"):
        leo.get_collection("countries", database="eva")
    geodb.grant_access("countries", user="leo")
    assert len(leo.get_collection("countries", database="eva", limit=3)) == 3
    with pytest.raises(FeatureClientError, match="403"):
        leo.delete_from_collection("countries", "id > 0", database="eva")
    geodb.revoke_access("countries", user="leo")
    with pytest.raises(FeatureClientError, match="404"):
        leo.get_collection("countries", database="eva")
    geodb.grant_access("countries", project="balticaims")  # leo is a member
    assert len(leo.get_collection("countries", database="eva", limit=3)) == 3
    geodb.revoke_access("countries", project="balticaims")
    with pytest.raises(ValueError, match="exactly one of user, group or project"):
        geodb.grant_access("countries", user="leo", project="balticaims")
    geodb.publish_collection("countries")
    anonymous = FeatureClient(url, database="eva")
    assert len(anonymous.get_collection("countries", limit=2)) == 2
    # export and rename, copy, drop
    saved = geodb.export_collection("countries", tmp_path / "europe.gpkg", query="pop_est > 20000000")
    assert set(geopandas.read_file(saved).name) == set(big.name) - {"Norway", "Sweden", "Finland"}
    geodb.rename_collection("countries", "europe")
    geodb.copy_collection("europe", "europe-2")
    assert sorted(geodb.get_my_collections("eva").collection) == ["europe", "europe-2"]
    geodb.drop_collection("europe-2")
    with pytest.raises(FeatureClientError, match="not valid cql2-text"):
        geodb.get_collection("europe", query="name = ")
