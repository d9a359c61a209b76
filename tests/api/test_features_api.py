"""The feature API over HTTP, on SQLite and on PostGIS: a geoDB-style life of a collection (create, fill,
query with CQL2, share, change, export, drop), and bad input that gets a 4xx saying what is wrong while
nothing is written."""

from __future__ import annotations

import io
import uuid

import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from helpers import add_users

GSHHG = "land/gshhg_full_baltic_9-31E_53-66.5N.gpkg"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def context(request, tmp_path_factory):
    from cubeport.config import load_settings
    from cubeport.context import Context

    root = tmp_path_factory.mktemp("features-api")
    url = (
        None
        if request.param == "sqlite"
        else request.getfixturevalue("pg_server").new_database(f"t_{uuid.uuid4().hex[:12]}")
    )
    context = Context(load_settings(data_root=str(root), database_url=url))
    add_users(context)
    yield context
    context.close()


@pytest.fixture(scope="module")
def as_user(client, context):
    keys = {name: context.auth.create_key(name)[1] for name in ("eva", "leo", "mia")}

    def call(name: str | None) -> TestClient:
        client.headers.clear()
        if name:
            client.headers["X-API-Key"] = keys[name]
        return client

    return call


def cities(data):
    meta, _, wkb, fields = pyogrio.raw.read(data / "land/naturalearth_cities/naturalearth_cities.shp")
    return [
        {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(g),
            "properties": {"name": n, "rank": i % 10},
        }
        for i, (g, n) in enumerate(zip(shapely.from_wkb(wkb), fields[0], strict=False))
    ]


def test_a_collection_from_creation_to_sharing_and_export(as_user, data):
    eva = as_user("eva")
    created = eva.post(
        "/features/collections",
        json={
            "database": "eva",
            "name": "cities",
            "properties": {"name": "string", "rank": "integer"},
            "geometry_type": "Point",
            "title": "Cities",
            "licence": "CC-BY-4.0",
            "keywords": ["towns"],
            "provenance": "Natural Earth",
            "metadata_url": "https://example.org/records/cities.xml",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["owner"] == "user:eva" and created.json()["licence"] == "CC-BY-4.0"
    assert any(link["rel"] == "describedby" for link in created.json()["links"])
    features = cities(data)
    assert eva.post(
        "/features/collections/eva.cities/items", json={"type": "FeatureCollection", "features": features}
    ).json() == {"written": 243}
    assert [d["name"] for d in eva.get("/features/databases").json()] == ["eva"]
    # private until shared: others do not see it at all
    for other in (None, "leo", "mia"):
        assert as_user(other).get("/features/collections/eva.cities").status_code == 404
        assert "eva.cities" not in as_user(other).get("/features/collections").text
    assert (
        as_user("leo").post("/features/collections", json={"database": "eva", "name": "mine"}).status_code
        == 409
    )
    assert (
        as_user("mia").post("/features/collections", json={"database": "mia", "name": "x"}).status_code == 403
    )
    # CQL2 text and JSON, sorting, paging, queryables
    eva = as_user("eva")
    queryables = eva.get("/features/collections/eva.cities/queryables").json()
    assert queryables["properties"]["rank"] == {"type": "integer", "title": "rank"}
    page = eva.get(
        "/features/collections/eva.cities/items",
        params={
            "filter": "rank >= 8 AND S_INTERSECTS(geometry, POLYGON((-30 30, 45 30, 45 75, -30 75, -30 30)))",
            "sortby": "-rank,name",
            "limit": 5,
        },
    ).json()
    expected = sorted(
        (
            f
            for f in features
            if f["properties"]["rank"] >= 8
            and shapely.geometry.shape(f["geometry"]).within(shapely.box(-30, 30, 45, 75))
        ),
        key=lambda f: (-f["properties"]["rank"], f["properties"]["name"]),
    )
    assert page["numberMatched"] == len(expected) > 5
    assert [f["properties"]["name"] for f in page["features"]] == [
        f["properties"]["name"] for f in expected[:5]
    ]
    assert page["links"][-1]["rel"] == "next" and "offset=5" in page["links"][-1]["href"]
    # the last page, a page that ends exactly at the end, and one past it count the same (known without a
    # second query for the first two)
    base = {"filter": "rank >= 8", "sortby": "-rank,name"}
    every = sum(f["properties"]["rank"] >= 8 for f in features)
    for offset, limit in ((every - 2, 5), (every - 3, 3), (every + 4, 2), (0, every)):
        page = eva.get(
            "/features/collections/eva.cities/items", params={**base, "offset": offset, "limit": limit}
        ).json()
        assert page["numberMatched"] == every
        assert page["numberReturned"] == len(page["features"]) == max(0, min(limit, every - offset))
        assert not any(link["rel"] == "next" for link in page["links"])
    as_json = eva.get(
        "/features/collections/eva.cities/items",
        params={
            "filter-lang": "cql2-json",
            "filter": '{"op": "=", "args": [{"property": "name"}, "Helsinki"]}',
        },
    ).json()
    assert [f["properties"]["name"] for f in as_json["features"]] == ["Helsinki"]
    # sharing: grant leo read, publish, revoke
    assert (
        eva.post(
            "/features/collections/eva.cities/access/grants", json={"subject_type": "user", "subject": "leo"}
        ).status_code
        == 200
    )
    assert (
        as_user("leo").get("/features/collections/eva.cities/items", params={"limit": 1}).status_code == 200
    )
    assert (
        as_user("leo")
        .delete("/features/collections/eva.cities/items", params={"filter": "id > 0"})
        .status_code
        == 403
    )  # read, not write
    assert as_user("leo").patch("/features/collections/eva.cities", json={"title": "x"}).status_code == 403
    # metadata, changed after creation: the fields sent change, the others stay
    eva = as_user("eva")
    record = "https://metadata.example.org/records/cities.xml"
    changed = eva.patch(
        "/features/collections/eva.cities",
        json={"title": "Populated places", "keywords": ["cities", "Natural Earth"], "metadata_url": record},
    ).json()
    assert changed["title"] == "Populated places" and changed["keywords"] == ["cities", "Natural Earth"]
    assert {"rel": "describedby", "href": record, "title": "metadata record"} in changed["links"]
    for bad, says in (
        ({"metadata_url": "javascript:alert(1)"}, "http(s) URL"),
        ({"time_property": "name"}, "not a datetime property"),
        ({"crs": 3067}, "crs"),
    ):
        response = eva.patch("/features/collections/eva.cities", json=bad)
        assert response.status_code in (400, 422) and says in response.text, (bad, response.text)
    kept = eva.get("/features/collections/eva.cities").json()
    assert (kept["title"], kept["keywords"], kept["storageCrs"][-4:]) == (
        changed["title"],
        changed["keywords"],
        "4326",
    )
    assert kept["provenance"] == "Natural Earth" and kept["licence"] == "CC-BY-4.0"  # not sent, so kept
    eva = as_user("eva")
    assert (
        eva.put("/features/collections/eva.cities/access", json={"public": True}).json()["access"] == "public"
    )
    assert as_user(None).get("/features/collections/eva.cities").status_code == 200
    eva = as_user("eva")
    eva.put("/features/collections/eva.cities/access", json={"public": False})
    eva.delete("/features/collections/eva.cities/access/grants/user/leo")
    assert as_user("leo").get("/features/collections/eva.cities").status_code == 404
    # changes by selection
    eva = as_user("eva")
    assert eva.patch(
        "/features/collections/eva.cities/items",
        params={"filter": "rank = 0"},
        json={"properties": {"rank": 100}},
    ).json()["updated"] == sum(f["properties"]["rank"] == 0 for f in features)
    assert eva.delete("/features/collections/eva.cities/items", params={"bbox": "-180,-90,0,90"}).json()[
        "deleted"
    ] == sum(shapely.geometry.shape(f["geometry"]).x <= 0 for f in features)
    left = eva.get("/features/collections/eva.cities/items", params={"limit": 1}).json()["numberMatched"]
    # export: every format reads back with the same features
    for format, suffix in (("geojson", ".geojson"), ("gpkg", ".gpkg"), ("parquet", ".parquet")):
        response = eva.get(
            "/features/collections/eva.cities/export", params={"format": format, "sortby": "name"}
        )
        assert response.status_code == 200 and suffix in response.headers["content-disposition"]
        if format == "parquet":
            import geopandas

            frame = geopandas.read_parquet(io.BytesIO(response.content))
            assert frame.crs.to_epsg() == 4326
        else:
            frame = pyogrio.read_dataframe(io.BytesIO(response.content))
        assert len(frame) == left and list(frame["name"]) == sorted(frame["name"])
        assert set(frame["rank"]) <= set(range(1, 10)) | {100}
    # rename and copy keep the access rules with the collection
    assert eva.post("/features/collections/eva.cities/rename", json={"name": "towns"}).status_code == 200
    assert as_user("leo").get("/features/collections/eva.towns").status_code == 404
    eva = as_user("eva")
    assert (
        eva.get("/features/collections/eva.towns/items", params={"limit": 1}).json()["numberMatched"] == left
    )
    copied = eva.post("/features/collections/eva.towns/copy", json={"database": "eva", "name": "towns-copy"})
    assert copied.status_code == 201 and copied.json()["id"] == "eva.towns-copy"
    assert eva.delete("/features/collections/eva.towns").status_code == 200
    assert eva.get("/features/collections/eva.towns").status_code == 404
    assert eva.get("/features/collections/eva.towns-copy/items").json()["numberMatched"] == left


def test_group_databases_are_shared_by_their_members(as_user):
    eva = as_user("eva")
    created = eva.post(
        "/features/collections",
        json={
            "database": "syke-shared",
            "name": "stations",
            "properties": {"code": "string"},
            "group": "syke",
        },
    )
    assert created.status_code == 201 and created.json()["owner"] == "group:syke"
    assert (
        as_user("mia").get("/features/collections/syke-shared.stations").status_code == 200
    )  # a member reads
    assert (
        as_user("mia")
        .post(
            "/features/collections/syke-shared.stations/items",
            json={"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}},
        )
        .status_code
        == 403
    )  # a viewer
    assert as_user("leo").get("/features/collections/syke-shared.stations").status_code == 404
    assert (
        as_user("eva")
        .post("/features/collections", json={"database": "fmi-db", "name": "x", "group": "fmi"})
        .status_code
        == 403
    )  # not her group


def test_project_databases_and_grants(as_user, context):
    """A project (the identity layer's kind of group) owns a database, and gets grants like a group."""
    context.admin.create_group("balticaims", kind="project", title="BalticAIMS", by="test")
    for name in ("eva", "leo"):
        context.admin.add_member("balticaims", name, by="test")  # the signed-in principals change at once
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [21.0, 58.0]}, "properties": {}}
    created = as_user("eva").post(
        "/features/collections", json={"database": "baltic", "name": "hotspots", "project": "balticaims"}
    )
    assert created.status_code == 201 and created.json()["owner"] == "project:balticaims"
    leo = as_user("leo")  # a member of the project, not of eva's group
    assert leo.post("/features/collections/baltic.hotspots/items", json=point).status_code == 201
    assert (
        leo.post("/features/collections", json={"database": "baltic", "name": "loads"}).json()["owner"]
        == "project:balticaims"
    )
    assert [d for d in leo.get("/features/databases").json() if d["name"] == "baltic"] == [
        {"name": "baltic", "owner": "project:balticaims"}
    ]
    assert as_user("mia").get("/features/collections/baltic.hotspots").status_code == 404  # not a member
    for body, status, says in (
        ({"project": "balticaims", "group": "syke"}, 400, "not both"),
        ({"project": "helcom"}, 403, "not a member of project 'helcom'"),
    ):
        response = as_user("eva").post(
            "/features/collections", json={"database": "other", "name": "x", **body}
        )
        assert response.status_code == status and says in response.json()["detail"], response.text
    # a grant to the project: its members read and (with write) change eva's own collection
    eva = as_user("eva")
    eva.post("/features/collections", json={"database": "eva", "name": "blocks"})
    grants = "/features/collections/eva.blocks/access/grants"
    assert eva.post(
        grants, json={"subject_type": "project", "subject": "balticaims", "permission": "write"}
    ).json()["writers"]["groups"] == ["balticaims"]
    assert as_user("leo").post("/features/collections/eva.blocks/items", json=point).status_code == 201
    assert as_user("mia").get("/features/collections/eva.blocks").status_code == 404
    assert as_user("eva").delete(f"{grants}/project/balticaims").json()["groups"] == []
    assert as_user("leo").get("/features/collections/eva.blocks").status_code == 404


def test_bad_input_gets_a_clear_4xx_and_writes_nothing(as_user):
    eva = as_user("eva")
    assert (
        eva.post(
            "/features/collections",
            json={
                "database": "eva",
                "name": "lakes",
                "crs": 3067,
                "properties": {"name": "string", "depth": "number"},
                "geometry_type": "Polygon",
            },
        ).status_code
        == 201
    )
    url = "/features/collections/eva.lakes/items"
    square = {
        "type": "Polygon",
        "coordinates": [
            [[380000, 6670000], [381000, 6670000], [381000, 6671000], [380000, 6671000], [380000, 6670000]]
        ],
    }
    good = {"type": "Feature", "geometry": square, "properties": {"name": "Lake", "depth": 3.5}}
    assert eva.post(url, json=good).status_code == 201
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    posts = [
        ({**good, "geometry": bowtie}, "Self-intersection"),
        ({**good, "geometry": {"type": "Polygon", "coordinates": [[[0, 0]]]}}, "no valid GeoJSON geometry"),
        ({**good, "properties": {"depth": "deep"}}, "must be number"),
        ({**good, "properties": {"colour": "blue"}}, "unknown properties colour"),
        ({**good, "properties": {"name; DROP TABLE users": 1}}, "unknown properties"),
        (
            {
                "type": "FeatureCollection",
                "features": [good, {**good, "geometry": {"type": "Point", "coordinates": [1, 2]}}],
            },
            "holds Polygon geometries",
        ),
        ({"type": "Topology"}, "FeatureCollection or Feature"),
    ]
    for body, says in posts:
        response = eva.post(url, json=body)
        assert 400 <= response.status_code < 500 and says in response.json()["detail"], (says, response.text)
    gets = [
        ({"filter": "name = 'x' OR 1=1; DROP TABLE users"}, "not valid cql2-text"),
        ({"filter": "colour = 'blue'"}, "unknown property 'colour'"),
        ({"filter": "depth > 'deep'"}, "compares a number with a string"),
        ({"filter": "name = 'x'", "filter-lang": "sql"}, "filter-lang"),
        ({"bbox": "1,2,3"}, "west,south,east,north"),
        ({"bbox": "3,2,1,4"}, "west <= east"),
        ({"bbox": "20,60,21,61", "bbox-crs": "EPSG:4326; DROP TABLE users"}, "bbox-crs"),
        (
            {"bbox": "20,60,21,61", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/999999"},
            "not an EPSG CRS",
        ),
        ({"sortby": "-colour"}, "unknown sort property colour"),
        ({"properties": "name,colour"}, "unknown properties colour"),
        ({"datetime": "2020-01-01T00:00:00Z"}, "no time property"),
        ({"limit": 100_000}, "less than or equal to 10000"),
        ({"offset": 2**63}, "less than or equal to 9223372036854775807"),  # found by fuzzing: a 500 on SQLite
    ]
    for params, says in gets:
        response = eva.get(url, params=params)
        assert 400 <= response.status_code < 500 and says in response.text, (params, response.text)
    creates = [
        ({"database": "eva", "name": "Robert'); DROP TABLE users;--"}, "collection name"),
        ({"database": "eva", "name": "x", "properties": {"a b": "string"}}, "property name"),
        ({"database": "eva", "name": "x", "properties": {"a": "varchar"}}, "types: string"),
        ({"database": "eva", "name": "x", "crs": "EPSG:99999"}, "not an EPSG CRS"),
        ({"database": "eva", "name": "x", "geometry_type": "Blob"}, "geometry type"),
        ({"database": "eva", "name": "lakes"}, "exists"),
    ]
    for body, says in creates:
        response = eva.post("/features/collections", json=body)
        assert 400 <= response.status_code < 500 and says in response.json()["detail"], (body, response.text)
    for method in ("GET", "PUT", "DELETE"):  # ids past 64 bits: 422, not the database's overflow
        assert eva.request(method, f"{url}/{2**63}", json=good).status_code == 422
    upsert = eva.post(url, params={"upsert": True}, json={**good, "id": 2**63})
    assert upsert.status_code == 400 and "below 2^63" in upsert.json()["detail"]
    # export checks its selection before the file starts (it used to answer 200 and break off)
    for params, says in (
        ({"sortby": "colour"}, "unknown sort property colour"),
        ({"filter": "colour = 'blue'", "format": "gpkg"}, "unknown property 'colour'"),
    ):
        response = eva.get("/features/collections/eva.lakes/export", params=params)
        assert response.status_code == 400 and says in response.json()["detail"], response.text
    assert eva.delete(url).status_code == 400  # deleting needs a selection
    assert eva.patch(url, params={"filter": "id > 0"}, json={"properties": {"depth": "x"}}).status_code == 400
    assert eva.get(url).json()["numberMatched"] == 1
    assert eva.get(url).json()["features"][0]["properties"] == {"name": "Lake", "depth": 3.5}
    assert [
        c["id"]
        for c in eva.get("/features/collections", params={"database": "eva"}).json()["collections"]
        if c["id"] == "eva.x"
    ] == []


def test_station_time_series_route(as_user, context, tmp_path):
    from cubeport.features.observations import Observations

    eva = as_user("eva")
    eva.post(
        "/features/collections",
        json={"database": "eva", "name": "stations", "properties": {"code": "string"}},
    )
    eva.post(
        "/features/collections/eva.stations/items",
        json={
            "type": "Feature",
            "properties": {"code": "LL7"},
            "geometry": {"type": "Point", "coordinates": [24.8, 59.9]},
        },
    )
    csv = tmp_path / "ll7.csv"
    csv.write_text(
        "station,time,parameter,value,unit,quality\n"
        + "".join(f"LL7,2024-06-{d:02d}T08:00:00Z,chl,{d / 2},mg m-3,ok\n" for d in range(1, 8))
    )
    Observations(context.features).import_csv("eva", "stations", csv, station_property="code")
    url = "/features/collections/eva.stations/items/1/observations"
    assert eva.get(url).json()["parameters"][0] | {"first": None, "last": None} == {
        "parameter": "chl",
        "unit": "mg m-3",
        "count": 7,
        "first": None,
        "last": None,
    }
    series = eva.get(url, params={"parameter": "chl", "datetime": "2024-06-03T00:00:00Z/.."}).json()
    assert series["unit"] == "mg m-3" and [o["value"] for o in series["observations"]] == [
        d / 2 for d in range(3, 8)
    ]
    assert series["observations"][0]["time"].startswith("2024-06-03T08:00:00")
    assert eva.get(url, params={"parameter": "oxygen"}).status_code == 400
    assert eva.get("/features/collections/eva.stations/items/99/observations").status_code == 404
    assert as_user("leo").get(url).status_code == 404


POINT = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [24.9, 60.2]}, "properties": {}}


def test_only_the_owner_shares_and_can_never_be_revoked(as_user, context):
    """Writers write data; sharing, renaming and dropping are the owner's (or an admin's), and the owner
    keeps reading and writing whatever is revoked."""
    eva = as_user("eva")
    assert eva.post("/features/collections", json={"database": "eva", "name": "notes"}).status_code == 201
    url = "/features/collections/eva.notes"
    grants = f"{url}/access/grants"
    assert eva.post(grants, json={"subject_type": "user", "subject": "leo", "permission": "write"}).is_success
    leo = as_user("leo")  # an editor with a write grant, not the owner
    assert leo.post(f"{url}/items", json=POINT).status_code == 201
    for method, path, body in (
        ("PUT", f"{url}/access", {"public": True}),
        ("POST", grants, {"subject_type": "user", "subject": "mia", "permission": "write"}),
        ("DELETE", f"{grants}/user/eva", None),
        ("POST", f"{url}/rename", {"name": "leos"}),
        ("DELETE", url, None),
    ):
        response = leo.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    for other in (None, "mia"):
        assert as_user(other).get(url).status_code == 404  # still private
    assert as_user("eva").get(url).status_code == 200  # and still hers
    # the owner cannot be revoked: not by herself, not by an admin; she keeps reading and writing
    if "ada" not in {u.name for u in context.auth.directory.users()}:
        context.auth.directory.create_user("ada", role="admin")
    admin = {"X-API-Key": context.auth.create_key("ada")[1]}
    eva = as_user("eva")
    assert eva.delete(f"{grants}/user/eva").status_code == 400
    assert eva.delete("/admin/access/collection/eva.notes/grants/user/eva", headers=admin).status_code == 400
    assert eva.post(grants, json={"subject_type": "user", "subject": "eva", "permission": "read"}).is_success
    assert eva.put(
        "/admin/access/collection/eva.notes", json={"access": "restricted"}, headers=admin
    ).is_success
    eva = as_user("eva")
    assert eva.post(f"{url}/items", json=POINT).status_code == 201  # neither downgraded her
    assert eva.get(url).json()["id"] == "eva.notes"
    assert eva.get(f"{url}/access").json()["owner_user"] == "eva"
    # she shares (a grant to mia), an admin may too; then the writer is revoked and is out
    assert eva.post(grants, json={"subject_type": "user", "subject": "mia"}).is_success
    assert eva.delete(f"{grants}/user/leo").is_success
    assert as_user("leo").get(url).status_code == 404
    assert eva.put(f"{url}/access", json={"public": True}, headers=admin).json()["access"] == "public"


def test_a_group_databases_editors_share_and_the_group_stays(as_user):
    eva = as_user("eva")
    body = {"database": "syke-notes", "name": "sites", "group": "syke"}
    assert eva.post("/features/collections", json=body).status_code == 201
    url = "/features/collections/syke-notes.sites"
    assert as_user("mia").put(f"{url}/access", json={"public": True}).status_code == 403  # a viewer member
    eva = as_user("eva")
    assert eva.delete(f"{url}/access/grants/group/syke").status_code == 400  # the owning group stays
    assert eva.post(f"{url}/access/grants", json={"subject_type": "user", "subject": "leo"}).is_success
    assert as_user("mia").get(url).status_code == 200  # members read


def test_a_new_or_copied_collection_is_never_public(as_user, context, monkeypatch):
    """The private rule is written in the transaction that creates the table, so no reader, in this process
    or another, ever sees a new collection without it."""
    from sqlalchemy import select

    from cubeport.auth.policy import Policy
    from cubeport.auth.principal import ANONYMOUS
    from cubeport.db.models import ResourceAccessRecord
    from cubeport.features.schema import CollectionSpec
    from cubeport.features.sharing import FeatureSharing

    store = context.features
    rules_when_created = {}
    create_table = store._create_table

    def create_and_look(connection, spec, data):  # the real hook, then what the transaction holds
        create_table(connection, spec, data)
        rule = connection.execute(
            select(ResourceAccessRecord.public).where(
                ResourceAccessRecord.kind == "collection", ResourceAccessRecord.resource_id == spec.id
            )
        ).scalar()
        rules_when_created[spec.id] = rule

    monkeypatch.setattr(store, "_create_table", create_and_look)
    assert context.policy.allows(ANONYMOUS, "read", "collection", "eva.fresh")  # nothing there: the default
    another_worker = FeatureSharing(store, Policy(context.db))
    eva = context.auth.directory.principal("eva", "api-key")
    another_worker.create(eva, CollectionSpec("eva", "fresh", {"name": "string"}))
    assert not context.policy.allows(ANONYMOUS, "read", "collection", "eva.fresh")  # at once, here too
    assert as_user(None).get("/features/collections/eva.fresh").status_code == 404
    as_user("eva").post("/features/collections/eva.fresh/copy", json={"database": "eva", "name": "fresh-2"})
    assert rules_when_created == {"eva.fresh": False, "eva.fresh-2": False}
    assert as_user(None).get("/features/collections/eva.fresh-2").status_code == 404
