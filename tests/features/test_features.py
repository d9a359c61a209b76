"""The feature store on real data: Natural Earth countries and cities, the 31,363 GSHHG Baltic land polygons.
Bounding-box queries equal a brute-force shapely computation; bad input is refused with nothing written.
Every case runs on SQLite and on PostgreSQL + PostGIS."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC

import pyogrio
import pytest
import shapely
import sqlalchemy

from cubeport.deadline import time_budget
from cubeport.errors import ConflictError, InputError, LimitError, NotFoundError
from cubeport.features.backends import feature_store
from cubeport.features.export import export
from cubeport.features.schema import CollectionSpec
from cubeport.features.store import Selection


@pytest.fixture
def store(database):
    """The same cases on SQLite and on PostgreSQL + PostGIS (`database` is parametrised in conftest)."""
    return feature_store(database)


def read(path):
    """Features and geometries of a vector file, with pyogrio."""
    meta, _, wkb, fields = pyogrio.raw.read(path)
    geometries = shapely.from_wkb(wkb)
    names = list(meta["fields"])
    rows = [
        {n: (v.item() if hasattr(v, "item") else v) for n, v in zip(names, values, strict=False)}
        for values in zip(*fields, strict=False)
    ]
    return geometries, rows


def test_countries_and_bbox_queries_equal_shapely(store, data):
    geometries, rows = read(data / "land/naturalearth_lowres/naturalearth_lowres.shp")
    store.create(
        CollectionSpec(
            "ne",
            "countries",
            {"name": "string", "pop_est": "number", "iso_a3": "string"},
            geometry_type="Polygon",
            title="Natural Earth countries",
            licence="public domain",
        )
    )
    features = [
        {"geometry": g, "properties": {k: r[k] for k in ("name", "pop_est", "iso_a3")}}
        for g, r in zip(geometries, rows, strict=False)
    ]
    assert store.insert("ne", "countries", features, chunk=50) == len(features) == 177
    assert store.count("ne", "countries") == 177
    baltic = (9.0, 53.0, 31.0, 66.5)
    expected = [i + 1 for i, g in enumerate(geometries) if g.intersects(shapely.box(*baltic))]
    got = [f["id"] for f in store.query("ne", "countries", Selection(bbox=baltic))]
    assert got == expected and len(got) >= 8
    names = {
        f["properties"]["name"]
        for f in store.query("ne", "countries", Selection(bbox=baltic), properties=["name"])
    }
    assert {"Finland", "Sweden", "Estonia"} <= names
    page = [f["id"] for f in store.query("ne", "countries", Selection(bbox=baltic), offset=2, limit=3)]
    assert page == expected[2:5]
    assert store.count("ne", "countries", Selection(bbox=baltic)) == len(expected)
    # quick estimates: the planner's statistics on PostgreSQL (exact for a small analysed table), the index's
    # candidates on SQLite
    assert store.count("ne", "countries", exact=False) == 177
    assert 0 < store.count("ne", "countries", Selection(bbox=baltic), exact=False) <= 177
    # the same area in Web Mercator metres
    from pyproj import Transformer

    to_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
    x0, y0 = to_3857.transform(baltic[0], baltic[1])
    x1, y1 = to_3857.transform(baltic[2], baltic[3])
    assert [
        f["id"]
        for f in store.query("ne", "countries", Selection(bbox=(x0, y0, x1, y1), bbox_crs="EPSG:3857"))
    ] == expected


def test_gshhg_streams_in_chunks(store, data):
    geometries, _ = read(data / "land/gshhg_full_baltic_9-31E_53-66.5N.gpkg")
    store.create(CollectionSpec("helcom", "land", {}, geometry_type="Polygon"))
    added = store.insert("helcom", "land", ({"geometry": g} for g in geometries))
    assert added == len(geometries) == 31_363
    area = (24.5, 59.9, 25.5, 60.3)  # Helsinki's archipelago
    expected = int(shapely.intersects(geometries, shapely.box(*area)).sum())
    assert store.count("helcom", "land", Selection(bbox=area)) == expected > 100


def test_a_spent_time_budget_stops_an_insert_a_page_and_an_export(store, data):
    """The request time budget (`deadline`) is checked per chunk of a write, a page and an export: 31,363
    polygons written in chunks of 1,000 under a 0.2 s budget stop with its LimitError after some chunks
    went to the database, and nothing is written (one transaction); reading them back as GeoJSON or
    exporting them (GeoPackage before any byte is sent, GeoJSON as it streams) stops the same way."""
    geometries, _ = read(data / "land/gshhg_full_baltic_9-31E_53-66.5N.gpkg")
    spec = store.create(CollectionSpec("helcom", "land", {}, geometry_type="Polygon"))
    taken: list[int] = []

    def features():
        for i, geometry in enumerate(geometries):
            taken.append(i)
            yield {"geometry": geometry}

    with time_budget(0.2), pytest.raises(LimitError, match="writing the features took longer") as spent:
        store.insert("helcom", "land", features(), chunk=1000)
    assert (spent.value.limit, spent.value.maximum) == ("seconds", 0.2)
    assert 1000 < len(taken) < len(geometries)  # stopped after at least one chunk was written
    assert store.count("helcom", "land") == 0
    assert store.insert("helcom", "land", ({"geometry": g} for g in geometries)) == 31_363  # no budget
    # reading them all as GeoJSON takes 0.2 s (PostGIS) to 0.8 s (SQLite), a GeoPackage export 0.9-1 s
    with time_budget(0.05), pytest.raises(LimitError, match="reading the features"):
        list(store.geojson("helcom", "land"))
    with time_budget(0.2), pytest.raises(LimitError, match="(reading|exporting) the features took longer"):
        export(store, spec, Selection(), "gpkg")  # at the call: the file is written before it is sent
    with time_budget(0.05), pytest.raises(LimitError, match="reading the features"):
        b"".join(export(store, spec, Selection(), "geojson", chunk=1000))


def test_bad_input_is_refused_and_nothing_is_written(store):
    store.create(
        CollectionSpec("ne", "cities", {"name": "string", "population": "integer"}, geometry_type="Point")
    )
    good = {"geometry": {"type": "Point", "coordinates": [24.9, 60.2]}, "properties": {"name": "Helsinki"}}
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    cases = [
        ({"geometry": {"type": "Point", "coordinates": []}}, "feature 1"),
        ({"geometry": bowtie}, "Self-intersection"),
        ({"geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}, "holds Point geometries"),
        ({**good, "properties": {"population": "many"}}, "must be integer"),
        ({**good, "properties": {"mayor": "x"}}, "unknown properties mayor"),
    ]
    for bad, says in cases:
        with pytest.raises(InputError, match=says):
            store.insert("ne", "cities", [good, bad])
        assert store.count("ne", "cities") == 0
    for spec, says in (
        (CollectionSpec("ne", "Robert'); DROP TABLE users;--"), "collection name"),
        (CollectionSpec("ne", "x", {"geometry": "string"}), "reserved"),
        (CollectionSpec("ne", "x", {"a": "varchar"}), "types: string"),
        (CollectionSpec("ne", "x", crs="EPSG:99999"), "not an EPSG CRS"),
    ):
        with pytest.raises(InputError, match=says):
            store.create(spec)
    with pytest.raises(ConflictError):
        store.create(CollectionSpec("ne", "cities"))
    with pytest.raises(InputError, match="unknown properties"):
        list(store.query("ne", "cities", properties=["name; DROP TABLE x"]))
    store.drop("ne", "cities")
    with pytest.raises(NotFoundError, match=r"^collection 'ne.cities' not found$"):
        store.get("ne", "cities")


def test_import_files_of_every_kind_from_the_command_line(tmp_path, data):
    import json

    from helpers import cli

    root = str(tmp_path / "root")
    cities = data / "land/naturalearth_cities/naturalearth_cities.shp"
    geometries, rows = read(cities)
    csv = tmp_path / "stations.csv"  # monitoring data: coordinates in columns
    csv.write_text(
        "Station Name,lon,lat,depth\n"
        + "".join(
            f'"{r["name"]}",{g.x},{g.y},{i % 7}\n'
            for i, (g, r) in enumerate(zip(geometries, rows, strict=False))
        )
    )
    geojson = tmp_path / "cities.geojson"
    geojson.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "geometry": shapely.geometry.mapping(g), "properties": r}
                    for g, r in zip(geometries, rows, strict=False)
                ],
            }
        )
    )
    parquet = tmp_path / "cities.parquet"
    import geopandas

    geopandas.read_file(cities).to_crs(3035).to_parquet(parquet)
    for source, extra, expected in (
        (cities, [], 243),
        (parquet, ["-c", "cities_laea"], 243),
        (data / "land/gshhg_full_baltic_9-31E_53-66.5N.gpkg", [], 31_363),
        (geojson, ["-c", "cities_json"], 243),
        (csv, ["--x", "lon", "--y", "lat"], 243),
    ):
        result = cli("features", "import", str(source), "-d", "ne", *extra, "--data-root", root)
        assert result.returncode == 0, result.stderr
        assert f": {expected} features" in result.stdout
    listed = cli("features", "list", "--data-root", root).stdout
    import re

    assert re.search(r"ne\.naturalearth_cities\s+243 features\s+EPSG:4326", listed)
    assert re.search(r"ne\.cities_laea\s+243 features\s+EPSG:3035", listed)
    assert (
        re.search(r"ne\.gshhg_full_baltic_9_31e_53_66_5n\s+31363 features", listed)
        and "ne.stations" in listed
    )
    from cubeport.config import load_settings
    from cubeport.context import Context

    context = Context(load_settings(data_root=root))
    try:
        spec = context.features.get("ne", "stations")
        assert spec.properties == {"station_name": "string", "depth": "integer"}
        helsinki = [
            f for f in context.features.query("ne", "stations", Selection(bbox=(24.8, 60.1, 25.1, 60.3)))
        ]
        assert [f["properties"]["station_name"] for f in helsinki] == ["Helsinki"]
    finally:
        context.close()
    again = cli("features", "import", str(cities), "-d", "ne", "--data-root", root)
    assert again.returncode == 2 and "exists" in again.stderr
    bad = tmp_path / "bad.geojson"
    bad.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [1, 2]},
                        "properties": {"n": 1},
                    },
                    {
                        "type": "Feature",
                        "geometry": {
                            "type": "Polygon",
                            "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                        },
                        "properties": {"n": 2},
                    },
                ],
            }
        )
    )
    failed = cli("features", "import", str(bad), "-d", "ne", "--data-root", root)
    assert (
        failed.returncode == 2
        and "nothing was imported" in failed.stderr
        and "Traceback" not in failed.stderr
    )
    assert "ne.bad" not in cli("features", "list", "--data-root", root).stdout
    # and out again: every format reads back with the features the filter selects
    nordic = [r["name"] for g, r in zip(geometries, rows, strict=False) if 10 < g.x < 32 and 54 < g.y < 70.5]
    for suffix in (".geojson", ".gpkg", ".parquet"):
        target = tmp_path / f"nordic{suffix}"
        done = cli(
            "features",
            "export",
            "ne.naturalearth_cities",
            str(target),
            "--filter",
            "S_INTERSECTS(geometry, POLYGON((10 54, 32 54, 32 70.5, 10 70.5, 10 54)))",
            "--data-root",
            root,
        )
        assert done.returncode == 0 and f"{len(nordic)} features" in done.stdout and len(nordic) > 4, (
            done.stderr
        )
        frame = geopandas.read_parquet(target) if suffix == ".parquet" else geopandas.read_file(target)
        assert sorted(frame["name"]) == sorted(nordic) and frame.crs.to_epsg() == 4326
    for args, says in (
        (["ne.naturalearth_cities", str(tmp_path / "x.csv")], ".geojson, .gpkg or .parquet"),
        (["ne.nowhere", str(tmp_path / "x.gpkg")], "not found"),
        (["ne.naturalearth_cities", str(tmp_path / "x.gpkg"), "-f", "mayor = 'x'"], "unknown property"),
    ):
        refused = cli("features", "export", *args, "--data-root", root)
        assert refused.returncode == 2 and says in refused.stderr and "Traceback" not in refused.stderr
    assert (
        sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("x.", ".x"))) == []
    )  # no partial files


def test_a_killed_import_leaves_no_collection(store, database, data):
    """SIGKILL in the middle of an import (10,000 of the 31,363 GSHHG polygons written): the collection is
    created and filled in one transaction, so nothing of it is left and the import can simply run again."""
    script = (
        "import os, signal, sys; from pathlib import Path; from cubeport.db import Database;"
        "from cubeport.features.importer import import_file; from cubeport.features.backends import feature_store;"
        "kill = lambda done, total: done >= 10_000 and os.kill(os.getpid(), signal.SIGKILL);"
        "import_file(feature_store(Database(sys.argv[1])), Path(sys.argv[2]), 'helcom', 'land', progress=kill)"
    )
    gshhg = data / "land/gshhg_full_baltic_9-31E_53-66.5N.gpkg"
    killed = subprocess.run(
        [sys.executable, "-c", script, database.url, str(gshhg)], capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -9, killed.stderr
    assert [c.id for c in store.list()] == []
    assert "f_helcom__land" not in sqlalchemy.inspect(store.engine).get_table_names()
    from cubeport.features.importer import import_file

    spec, count = import_file(store, gshhg, "helcom", "land")
    assert count == store.count("helcom", "land") == 31_363 and spec.geometry_type == "Polygon"


def test_real_ogc_api_features_clients_read_collections(tmp_path, data):
    """OWSLib's OGC API Features client and GDAL's OAPIF driver (through pyogrio) against a running server."""
    from owslib.ogcapi.features import Features
    from services import AppServer

    from cubeport.api.app import create_app
    from cubeport.config import load_settings
    from cubeport.context import Context

    context = Context(load_settings(data_root=str(tmp_path / "root")))
    geometries, rows = read(data / "land/naturalearth_lowres/naturalearth_lowres.shp")
    context.features.create(
        CollectionSpec(
            "ne",
            "countries",
            {"name": "string", "pop_est": "number"},
            title="Natural Earth countries",
            licence="public domain",
        )
    )
    context.features.insert(
        "ne",
        "countries",
        [
            {"geometry": g, "properties": {"name": r["name"], "pop_est": r["pop_est"]}}
            for g, r in zip(geometries, rows, strict=False)
        ],
    )
    server = AppServer(create_app(context))
    try:
        api = Features(f"{server.url}/features")
        assert "ne.countries" in [c["id"] for c in api.collections()["collections"]]
        baltic = [9.0, 53.0, 31.0, 66.5]
        page = api.collection_items("ne.countries", bbox=baltic, limit=5)
        expected = [i + 1 for i, g in enumerate(geometries) if g.intersects(shapely.box(*baltic))]
        assert page["numberMatched"] == len(expected) and [f["id"] for f in page["features"]] == expected[:5]
        assert any(link["rel"] == "next" for link in page["links"])
        finland = [
            f
            for f in api.collection_items("ne.countries", bbox=baltic, limit=100)["features"]
            if f["properties"]["name"] == "Finland"
        ][0]
        assert (
            shapely.geometry.shape(finland["geometry"]).equals_exact(geometries[expected[0] - 1], 1e-9)
            or shapely.geometry.shape(finland["geometry"]).area > 30
        )
        # pyogrio keeps the GIL while GDAL fetches, so it reads from another process than the server's.
        script = (
            "import json, sys, pyogrio; meta, _, wkb, fields = pyogrio.raw.read(sys.argv[1], layer='ne.countries');"
            "names = list(fields[list(meta['fields']).index('name')]);"
            "print(json.dumps({'count': len(wkb), 'crs': meta['crs'], 'names': names}))"
        )
        run = subprocess.run(
            [sys.executable, "-c", script, f"OAPIF:{server.url}/features"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        gdal = json.loads(run.stdout)
        assert gdal["count"] == 177 and gdal["crs"] == "EPSG:4326"
        assert sorted(gdal["names"]) == sorted(r["name"] for r in rows)
    finally:
        server.stop()
        context.close()


def countries(store, data):
    """Natural Earth countries in collection ne.countries; returns the geometries and rows (ids are 1..177)."""
    geometries, rows = read(data / "land/naturalearth_lowres/naturalearth_lowres.shp")
    store.create(
        CollectionSpec(
            "ne",
            "countries",
            {
                "name": "string",
                "continent": "string",
                "pop_est": "number",
                "iso_a3": "string",
                "updated": "datetime",
            },
        )
    )
    store.insert(
        "ne",
        "countries",
        [
            {
                "geometry": g,
                "properties": {
                    **{k: r[k] for k in ("name", "continent", "pop_est", "iso_a3")},
                    "updated": f"2020-01-{1 + i % 28:02d}T12:00:00+02:00",
                },
            }
            for i, (g, r) in enumerate(zip(geometries, rows, strict=False))
        ],
    )
    return geometries, rows


def ids(store, selection, **options):
    return [f["id"] for f in store.query("ne", "countries", selection, **options)]


def test_cql2_filters_time_and_sort_equal_python(store, data):
    from datetime import datetime

    from cubeport.ogc.params import parse_filter

    geometries, rows = countries(store, data)
    every = list(range(1, 178))

    def where(test):
        return [i for i in every if test(rows[i - 1], geometries[i - 1], i)]

    finland = shapely.Point(25.0, 62.0)
    cases = [
        (
            "continent = 'Europe' AND pop_est > 10000000",
            lambda r, g, i: r["continent"] == "Europe" and r["pop_est"] > 1e7,
        ),
        (
            "name LIKE 'Ma%' OR iso_a3 IN ('FIN', 'SWE')",
            lambda r, g, i: r["name"].startswith("Ma") or r["iso_a3"] in ("FIN", "SWE"),
        ),
        ("NOT (pop_est BETWEEN 1000000 AND 50000000)", lambda r, g, i: not 1e6 <= r["pop_est"] <= 5e7),
        ("CASEI(name) = casei('finland')", lambda r, g, i: r["name"].lower() == "finland"),
        ("pop_est / 1000000 > 100", lambda r, g, i: r["pop_est"] / 1e6 > 100),
        ("S_INTERSECTS(geometry, POINT(25 62))", lambda r, g, i: g.intersects(finland)),
        (
            "S_WITHIN(geometry, POLYGON((-30 30, 45 30, 45 75, -30 75, -30 30)))",
            lambda r, g, i: g.within(shapely.box(-30, 30, 45, 75)),
        ),
        ("T_AFTER(updated, TIMESTAMP('2020-01-20T10:00:00Z'))", lambda r, g, i: 1 + (i - 1) % 28 > 20),
        ("updated < DATE('2020-01-03')", lambda r, g, i: 1 + (i - 1) % 28 < 3),
        ("id <= 3", lambda r, g, i: i <= 3),
    ]
    for text, test in cases:
        expected = where(test)
        assert expected, text
        assert ids(store, Selection(filter=parse_filter(text))) == expected, text
        assert store.count("ne", "countries", Selection(filter=parse_filter(text))) == len(expected), text
    as_json = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "continent"}, "Europe"]},
            {
                "op": "s_intersects",
                "args": [{"property": "geometry"}, {"type": "Point", "coordinates": [25, 62]}],
            },
        ],
    }
    assert ids(store, Selection(filter=parse_filter(as_json, "cql2-json"))) == where(
        lambda r, g, i: r["continent"] == "Europe" and g.intersects(finland)
    )
    # the filter's geometry in another CRS, combined with a bbox and a time range
    x, y = Transformer_to(3857).transform(25.0, 62.0)
    chosen = Selection(
        bbox=(0, 50, 40, 72),
        filter=parse_filter(f"S_INTERSECTS(geometry, POINT({x} {y}))"),
        filter_crs=3857,
        datetime=(datetime(2020, 1, 1, tzinfo=UTC), None),
    )
    assert [rows[i - 1]["name"] for i in ids(store, chosen)] == ["Finland"]
    day = datetime(2020, 1, 5, 10, 0, tzinfo=UTC)  # 12:00 at +02:00
    assert ids(store, Selection(datetime=(day, day))) == where(lambda r, g, i: 1 + (i - 1) % 28 == 5)
    # sorting, then paging through the sorted result
    by_pop = sorted(every, key=lambda i: (-rows[i - 1]["pop_est"], i))
    assert ids(store, Selection(), sortby=["-pop_est"]) == by_pop
    assert ids(store, Selection(), sortby=["-pop_est"], offset=10, limit=5) == by_pop[10:15]
    by_continent = sorted(every, key=lambda i: (rows[i - 1]["continent"], rows[i - 1]["name"], i))
    assert ids(store, Selection(), sortby=["+continent", "name"]) == by_continent
    one = store.feature("ne", "countries", 1)["properties"]["updated"]
    assert one == datetime(2020, 1, 1, 10, 0, tzinfo=UTC)


def Transformer_to(code):
    from pyproj import Transformer

    return Transformer.from_crs(4326, code, always_xy=True)


def test_bad_filters_say_what_is_wrong(store, data):
    from cubeport.ogc.params import parse_filter

    countries(store, data)
    cases = [
        ("name = ", "not valid cql2-text"),
        ("name = 'x'; DROP TABLE users", "not valid cql2-text"),
        ("mayor = 'x'", "unknown property 'mayor'; queryables: geometry, id, name"),
        ("\"name; DROP TABLE users\" = 'x'", "unknown property"),
        ("pop_est = 'many'", "compares a number with a string"),
        ("name LIKE 5", "not valid cql2-text"),
        ("S_INTERSECTS(name, POINT(1 2))", "compares geometries"),
        ("T_AFTER(name, TIMESTAMP('2020-01-01T00:00:00Z'))", "needs a datetime property"),
        (
            "S_INTERSECTS(geometry, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))",
            "invalid geometry literal: Self-intersection",
        ),
    ]
    for text, says in cases:
        with pytest.raises(InputError, match=says):
            ids(store, Selection(filter=parse_filter(text)))
    with pytest.raises(InputError, match="filter-lang"):
        parse_filter("name = 'x'", "sql")
    with pytest.raises(InputError, match="not valid cql2-json"):
        parse_filter('{"op": "=", "args": [', "cql2-json")
    with pytest.raises(InputError, match="'drop' is not supported"):
        ids(
            store,
            Selection(filter=parse_filter('{"op": "drop", "args": [{"property": "name"}]}', "cql2-json")),
        )
    with pytest.raises(InputError, match="unknown sort property population"):
        ids(store, Selection(), sortby=["-population"])
    assert ids(store, Selection(filter=parse_filter("pop_est / 0 > 1"))) == []  # NULL, not a database error
    store.create(CollectionSpec("ne", "tagged", {"tags": "json"}))
    with pytest.raises(InputError, match="a json property has no order"):
        list(store.query("ne", "tagged", sortby=["tags"]))
    assert store.count("ne", "countries") == 177
    assert {t for t in store.engine.dialect.get_table_names(store.engine.connect())} >= {
        "users",
        "f_ne__countries",
    }


def test_upsert_update_delete_rename_and_copy(store, data):
    from cubeport.ogc.params import parse_filter

    geometries, rows = countries(store, data)
    europe = Selection(filter=parse_filter("continent = 'Europe'"))
    in_europe = sum(r["continent"] == "Europe" for r in rows)
    assert store.update("ne", "countries", europe, {"continent": "EU"}) == in_europe
    assert store.count("ne", "countries", Selection(filter=parse_filter("continent = 'EU'"))) == in_europe
    with pytest.raises(InputError, match="must be number"):
        store.update("ne", "countries", europe, {"pop_est": "lots"})
    with pytest.raises(InputError, match="unknown properties mayor"):
        store.update("ne", "countries", europe, {"mayor": "x"})
    # upsert: feature 1 is replaced, one without an id is added, one with a new id is added under it
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    written = store.insert(
        "ne",
        "countries",
        [
            {"id": 1, "geometry": square, "properties": {"name": "Replaced"}},
            {"geometry": square, "properties": {"name": "Added"}},
            {"id": 500, "geometry": square, "properties": {"name": "Chosen"}},
        ],
        upsert=True,
    )
    assert written == 3 and store.count("ne", "countries") == 179
    assert store.feature("ne", "countries", 1)["properties"]["name"] == "Replaced"
    assert store.feature("ne", "countries", 500)["properties"]["name"] == "Chosen"
    assert [
        f["properties"]["name"] for f in store.query("ne", "countries", Selection(bbox=(0.2, 0.2, 0.8, 0.8)))
    ] == ["Replaced", "Chosen", "Added"]  # by id (Added got 501); the index moved with the replaced geometry
    with pytest.raises(InputError, match="same id"):
        store.insert(
            "ne", "countries", [{"id": 7, "geometry": square}, {"id": 7, "geometry": square}], upsert=True
        )
    assert store.count("ne", "countries") == 179
    store.replace("ne", "countries", 500, {"geometry": {"type": "Point", "coordinates": [50, 50]}})
    assert store.feature("ne", "countries", 500)["properties"]["name"] is None
    with pytest.raises(NotFoundError):
        store.replace("ne", "countries", 9999, {"geometry": square})
    assert store.delete("ne", "countries", Selection(bbox=(0.2, 0.2, 0.8, 0.8))) == 2
    store.delete_feature("ne", "countries", 500)
    assert store.count("ne", "countries", Selection(bbox=(-1, -1, 60, 60))) == int(
        shapely.intersects(geometries[1:], shapely.box(-1, -1, 60, 60)).sum()
    )
    # rename keeps the features and the index; copy makes an independent collection
    store.rename("ne", "countries", "nations")
    assert [c.name for c in store.list("ne")] == ["nations"]
    copied = store.copy("ne", "nations", "work", "nations-2")
    assert copied.id == "work.nations-2" and store.count("work", "nations-2") == 176
    finland = Selection(filter=parse_filter("S_INTERSECTS(geometry, POINT(25 62))"))
    assert [f["properties"]["name"] for f in store.query("work", "nations-2", finland)] == ["Finland"]
    assert store.delete("work", "nations-2", finland) == 1
    assert store.count("ne", "nations", finland) == 1 and store.count("work", "nations-2") == 175
    store.create(CollectionSpec("ne", "countries"))  # the old name (and its index names) are free again
    with pytest.raises(ConflictError):
        store.rename("ne", "nations", "countries")


def test_observations_at_stations(store, tmp_path, data):
    from datetime import datetime, timedelta

    from cubeport.features.observations import Observations

    geometries, rows = read(data / "land/naturalearth_cities/naturalearth_cities.shp")
    store.create(CollectionSpec("syke", "stations", {"code": "string"}, geometry_type="Point"))
    baltic = [
        (g, r["name"])
        for g, r in zip(geometries, rows, strict=False)
        if r["name"] in ("Helsinki", "Stockholm", "Tallinn")
    ]
    store.insert(
        "syke", "stations", [{"geometry": g, "properties": {"code": name[:3].upper()}} for g, name in baltic]
    )
    start = datetime(2024, 5, 1, tzinfo=UTC)
    lines = ["station,time,parameter,value,unit,quality"] + [
        f"{code},{(start + timedelta(days=d)).isoformat()},chl,{1 + d * 0.5 + i},mg m-3,{'ok' if d % 3 else 'suspect'}"
        for i, code in enumerate(("HEL", "STO", "TAL"))
        for d in range(10)
    ]
    lines.append(f"HEL,{start.isoformat()},temp,12.5,degC,ok")
    path = tmp_path / "monitoring.csv"
    path.write_text("\n".join(lines))
    found = Observations(store)
    assert found.import_csv("syke", "stations", path, station_property="code") == 31
    helsinki = next(
        f["id"]
        for f in store.query("syke", "stations", properties=["code"])
        if f["properties"]["code"] == "HEL"
    )
    series = found.series("syke", "stations", helsinki, "chl")
    assert [o["value"] for o in series] == [1 + d * 0.5 for d in range(10)]
    assert series[0]["time"] == start and series[0]["quality"] == "suspect" and series[0]["unit"] == "mg m-3"
    assert [p["parameter"] for p in found.parameters("syke", "stations", helsinki)] == ["chl", "temp"]
    window = found.series("syke", "stations", helsinki, "chl", "2024-05-03T00:00:00Z/2024-05-05T00:00:00Z")
    assert [o["time"].day for o in window] == [3, 4, 5]
    # a corrected delivery replaces the stored values of the same station, parameter and time
    path.write_text(f"station,time,parameter,value\nHEL,{start.isoformat()},chl,9.0\n")
    assert found.import_csv("syke", "stations", path, station_property="code") == 1
    assert found.series("syke", "stations", helsinki, "chl")[0]["value"] == 9.0
    for text, says in (
        (f"station,time,parameter,value\nOSL,{start.isoformat()},chl,1\n", "unknown station 'OSL'"),
        ("station,time,parameter,value\nHEL,yesterday,chl,1\n", "not an ISO 8601 time"),
        (f"station,time,parameter,value\nHEL,{start.isoformat()},chl,high\n", "not a number"),
        ("station,when,parameter,value\n", "missing columns time"),
    ):
        path.write_text(text)
        with pytest.raises(InputError, match=says):
            found.import_csv("syke", "stations", path, station_property="code")
    assert len(found.series("syke", "stations", helsinki, "chl")) == 10
    with pytest.raises(InputError, match="parameters: chl, temp"):
        found.series("syke", "stations", helsinki, "oxygen")


def test_geojson_texts_carry_every_type_and_reproject(store, data):
    """The texts the API sends (made in SQL on PostGIS, in Python on SQLite) equal the stored features,
    reprojected to CRS84, with every property type, NULLs and strings that need escaping."""
    from datetime import datetime

    from pyproj import Transformer

    geometries, rows = read(data / "land/naturalearth_lowres/naturalearth_lowres.shp")
    kinds = {
        "name": "string",
        "pop": "integer",
        "gdp": "number",
        "big": "boolean",
        "seen": "datetime",
        "tags": "json",
    }
    store.create(CollectionSpec("ne", "laea", kinds, geometry_type="Polygon", crs=3035))
    to_laea = Transformer.from_crs(4326, 3035, always_xy=True).transform
    europe = [
        (g, r)
        for g, r in zip(geometries, rows, strict=False)
        if r["continent"] == "Europe" and r["name"] != "Russia"
    ]
    features = [
        {
            "geometry": shapely.transform(g, to_laea, interleaved=False),
            "properties": {
                "name": f'{r["name"]} "quoted" \\ ä' if i == 0 else r["name"],
                "pop": int(r["pop_est"]),
                "gdp": r["gdp_md_est"] if i else None,
                "big": r["pop_est"] > 1e7,
                "seen": datetime(2024, 6, 1 + i % 28, 12, 30, tzinfo=UTC),
                "tags": {"iso": r["iso_a3"], "n": [i]},
            },
        }
        for i, (g, r) in enumerate(europe)
    ]
    store.insert("ne", "laea", features)
    texts = list(store.geojson("ne", "laea", sortby=["-pop"], limit=5, offset=1))
    order = sorted(range(len(features)), key=lambda i: -features[i]["properties"]["pop"])[1:6]
    assert len(texts) == 5
    for text, i in zip(texts, order, strict=False):
        feature = json.loads(text)
        assert feature["type"] == "Feature" and feature["id"] == i + 1
        expected = {**features[i]["properties"], "seen": features[i]["properties"]["seen"].isoformat()}
        assert feature["properties"] == expected and list(feature["properties"]) == list(kinds)
        lonlat = shapely.geometry.shape(feature["geometry"])
        assert lonlat.equals_exact(europe[i][0], 1e-6), europe[i][1]["name"]
    first = json.loads(
        next(
            store.geojson(
                "ne",
                "laea",
                Selection(filter={"op": "=", "args": [{"property": "id"}, 1]}),
                properties=["name", "gdp"],
            )
        )
    )
    assert first["properties"] == {"name": features[0]["properties"]["name"], "gdp": None}


def test_a_geoparquet_in_a_crs_without_an_epsg_code_is_refused_not_taken_for_degrees(store, tmp_path, data):
    import geopandas

    from cubeport.features.importer import import_file

    cities = geopandas.read_file(data / "land" / "naturalearth_cities")
    mercator = "+proj=merc +lat_ts=61.6666666667 +lon_0=0 +datum=WGS84 +units=m +no_defs"  # no EPSG code
    parquet = tmp_path / "cities.parquet"
    cities.to_crs(mercator).to_parquet(parquet)
    with pytest.raises(InputError, match="not an EPSG CRS"):
        import_file(store, parquet, "ne")
    assert store.list("ne") == []
