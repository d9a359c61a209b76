"""The feature store on real data: Natural Earth countries and cities, the 31,363 GSHHG Baltic land polygons.
Bounding-box queries equal a brute-force shapely computation; bad input is refused with nothing written.
Every case runs on SQLite and on PostgreSQL + PostGIS."""

from __future__ import annotations

import json
import subprocess
import sys

import pyogrio
import pytest
import shapely

from cubeport.errors import ConflictError, InputError, NotFoundError
from cubeport.features.schema import CollectionSpec
from cubeport.features.store import feature_store


@pytest.fixture
def store(database):
    """The same cases on SQLite and on PostgreSQL + PostGIS (`database` is parametrised in conftest)."""
    return feature_store(database)


def read(path):
    """Features and geometries of a vector file, with pyogrio."""
    meta, _, wkb, fields = pyogrio.raw.read(path)
    geometries = shapely.from_wkb(wkb)
    names = list(meta["fields"])
    rows = [{n: (v.item() if hasattr(v, "item") else v) for n, v in zip(names, values)} for values in zip(*fields)]
    return geometries, rows


def test_countries_and_bbox_queries_equal_shapely(store, data):
    geometries, rows = read(data / "land/naturalearth_lowres/naturalearth_lowres.shp")
    store.create(CollectionSpec("ne", "countries", {"name": "string", "pop_est": "number", "iso_a3": "string"},
                                geometry_type="Polygon", title="Natural Earth countries", licence="public domain"))
    features = [{"geometry": g, "properties": {k: r[k] for k in ("name", "pop_est", "iso_a3")}}
                for g, r in zip(geometries, rows)]
    assert store.insert("ne", "countries", features, chunk=50) == len(features) == 177
    assert store.count("ne", "countries") == 177
    baltic = (9.0, 53.0, 31.0, 66.5)
    expected = [i + 1 for i, g in enumerate(geometries) if g.intersects(shapely.box(*baltic))]
    got = [f["id"] for f in store.query("ne", "countries", bbox=baltic)]
    assert got == expected and len(got) >= 8
    names = {f["properties"]["name"] for f in store.query("ne", "countries", bbox=baltic, properties=["name"])}
    assert {"Finland", "Sweden", "Estonia"} <= names
    page = [f["id"] for f in store.query("ne", "countries", bbox=baltic, offset=2, limit=3)]
    assert page == expected[2:5]
    assert store.count("ne", "countries", bbox=baltic) == len(expected)
    assert store.count("ne", "countries", bbox=baltic, exact=False) >= len(expected)  # index candidates
    # the same area in Web Mercator metres
    from pyproj import Transformer

    to_3857 = Transformer.from_crs(4326, 3857, always_xy=True)
    x0, y0 = to_3857.transform(baltic[0], baltic[1])
    x1, y1 = to_3857.transform(baltic[2], baltic[3])
    assert [f["id"] for f in store.query("ne", "countries", bbox=(x0, y0, x1, y1), bbox_crs="EPSG:3857")] == expected


def test_gshhg_streams_in_chunks(store, data):
    geometries, _ = read(data / "land/gshhg_full_baltic_9-31E_53-66.5N.gpkg")
    store.create(CollectionSpec("helcom", "land", {}, geometry_type="Polygon"))
    added = store.insert("helcom", "land", ({"geometry": g} for g in geometries))
    assert added == len(geometries) == 31_363
    area = (24.5, 59.9, 25.5, 60.3)  # Helsinki's archipelago
    expected = int(shapely.intersects(geometries, shapely.box(*area)).sum())
    assert store.count("helcom", "land", bbox=area) == expected > 100


def test_bad_input_is_refused_and_nothing_is_written(store):
    store.create(CollectionSpec("ne", "cities", {"name": "string", "population": "integer"}, geometry_type="Point"))
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
    for spec, says in ((CollectionSpec("ne", "Robert'); DROP TABLE users;--"), "collection name"),
                       (CollectionSpec("ne", "x", {"geometry": "string"}), "reserved"),
                       (CollectionSpec("ne", "x", {"a": "varchar"}), "types: string"),
                       (CollectionSpec("ne", "x", crs="EPSG:99999"), "not an EPSG CRS")):
        with pytest.raises(InputError, match=says):
            store.create(spec)
    with pytest.raises(ConflictError):
        store.create(CollectionSpec("ne", "cities"))
    with pytest.raises(InputError, match="unknown properties"):
        list(store.query("ne", "cities", properties=["name; DROP TABLE x"]))
    store.drop("ne", "cities")
    with pytest.raises(NotFoundError, match="collections of ne: none"):
        store.get("ne", "cities")


def test_import_files_of_every_kind_from_the_command_line(tmp_path, data):
    import json

    from test_cli import cli

    root = str(tmp_path / "root")
    cities = data / "land/naturalearth_cities/naturalearth_cities.shp"
    geometries, rows = read(cities)
    csv = tmp_path / "stations.csv"  # monitoring data: coordinates in columns
    csv.write_text("Station Name,lon,lat,depth\n" + "".join(
        f'"{r["name"]}",{g.x},{g.y},{i % 7}\n' for i, (g, r) in enumerate(zip(geometries, rows))))
    geojson = tmp_path / "cities.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": shapely.geometry.mapping(g), "properties": r}
        for g, r in zip(geometries, rows)]}))
    for source, extra, expected in ((cities, [], 243), (data / "land/gshhg_full_baltic_9-31E_53-66.5N.gpkg", [], 31_363),
                                    (geojson, ["-c", "cities_json"], 243), (csv, ["--x", "lon", "--y", "lat"], 243)):
        result = cli("features", "import", str(source), "-d", "ne", *extra, "--data-root", root)
        assert result.returncode == 0, result.stderr
        assert f": {expected} features" in result.stdout
    listed = cli("features", "list", "--data-root", root).stdout
    import re

    assert re.search(r"ne\.naturalearth_cities\s+243 features\s+EPSG:4326", listed)
    assert re.search(r"ne\.gshhg_full_baltic_9_31e_53_66_5n\s+31363 features", listed) and "ne.stations" in listed
    from cubeport.config import load_settings
    from cubeport.context import Context

    context = Context(load_settings(data_root=root))
    try:
        spec = context.features.get("ne", "stations")
        assert spec.properties == {"station_name": "string", "depth": "integer"}
        helsinki = [f for f in context.features.query("ne", "stations", bbox=(24.8, 60.1, 25.1, 60.3))]
        assert [f["properties"]["station_name"] for f in helsinki] == ["Helsinki"]
    finally:
        context.close()
    again = cli("features", "import", str(cities), "-d", "ne", "--data-root", root)
    assert again.returncode == 2 and "exists" in again.stderr
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}, "properties": {"n": 1}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
         "properties": {"n": 2}}]}))
    failed = cli("features", "import", str(bad), "-d", "ne", "--data-root", root)
    assert failed.returncode == 2 and "nothing was imported" in failed.stderr and "Traceback" not in failed.stderr
    assert "ne.bad" not in cli("features", "list", "--data-root", root).stdout


def test_real_ogc_api_features_clients_read_collections(tmp_path, data):
    """OWSLib's OGC API Features client and GDAL's OAPIF driver (through pyogrio) against a running server."""
    from owslib.ogcapi.features import Features

    from cubeport.api.app import create_app
    from cubeport.config import load_settings
    from cubeport.context import Context
    from services import AppServer

    context = Context(load_settings(data_root=str(tmp_path / "root")))
    geometries, rows = read(data / "land/naturalearth_lowres/naturalearth_lowres.shp")
    context.features.create(CollectionSpec("ne", "countries", {"name": "string", "pop_est": "number"},
                                           title="Natural Earth countries", licence="public domain"))
    context.features.insert("ne", "countries", [{"geometry": g, "properties": {"name": r["name"],
                                                                                "pop_est": r["pop_est"]}}
                                                for g, r in zip(geometries, rows)])
    server = AppServer(create_app(context))
    try:
        api = Features(f"{server.url}/features")
        assert "ne.countries" in [c["id"] for c in api.collections()["collections"]]
        baltic = [9.0, 53.0, 31.0, 66.5]
        page = api.collection_items("ne.countries", bbox=baltic, limit=5)
        expected = [i + 1 for i, g in enumerate(geometries) if g.intersects(shapely.box(*baltic))]
        assert page["numberMatched"] == len(expected) and [f["id"] for f in page["features"]] == expected[:5]
        assert any(link["rel"] == "next" for link in page["links"])
        finland = [f for f in api.collection_items("ne.countries", bbox=baltic, limit=100)["features"]
                   if f["properties"]["name"] == "Finland"][0]
        assert shapely.geometry.shape(finland["geometry"]).equals_exact(geometries[expected[0] - 1], 1e-9) or \
            shapely.geometry.shape(finland["geometry"]).area > 30
        # pyogrio keeps the GIL while GDAL fetches, so it reads from another process than the server's.
        script = ("import json, sys, pyogrio; meta, _, wkb, fields = pyogrio.raw.read(sys.argv[1], layer='ne.countries');"
                  "names = list(fields[list(meta['fields']).index('name')]);"
                  "print(json.dumps({'count': len(wkb), 'crs': meta['crs'], 'names': names}))")
        run = subprocess.run([sys.executable, "-c", script, f"OAPIF:{server.url}/features"],
                             capture_output=True, text=True, timeout=60, check=True)
        gdal = json.loads(run.stdout)
        assert gdal["count"] == 177 and gdal["crs"] == "EPSG:4326"
        assert sorted(gdal["names"]) == sorted(r["name"] for r in rows)
    finally:
        server.stop()
        context.close()
