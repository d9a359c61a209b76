"""Feature store: insert rate of the GSHHG coastline polygons, and a bbox query of about 10,000 features as
GeoJSON through the HTTP API against the same query run directly through psycopg on the same PostGIS.

Insert: `store.insert` of all 31,363 GSHHG "full" polygons of the Baltic (the importer's path: shapely
geometries plus two properties) into a fresh collection, on SQLite and on PostGIS; features/s. On PostGIS
a psycopg `COPY` of the same rows (hex EWKB) into a table of the same shape, GiST index included, is the floor.

Query: a bbox over the Archipelago Sea that selects about 10,000 polygons (found by counting, 2:1 in
degrees, the count is reported). `GET /features/collections/bench.gshhg/items?bbox=...&limit=10000` is
timed from this process with httpx (response fully read) against a real uvicorn server (its own process,
one worker) on the PostGIS database, and on a SQLite one. The floor is the same selection straight through
psycopg on the same PostGIS, one SQL statement that returns the FeatureCollection as text; a plain fetch of
the rows with `ST_AsBinary` is a second reference. Goal: Cubeport within 1.5x the raw GeoJSON query.

PostgreSQL + PostGIS come from `tests/services.py` (`PostgresServer`, Debian packages, fsync off).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyogrio
import shapely
import sqlalchemy as sa
from pyproj import Transformer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO, environment, median, run_and_report, table  # noqa: E402
from cube_server import Server  # noqa: E402  (a server process on a free port, stopped by process group)

sys.path.insert(0, str(REPO / "tests"))
from services import PostgresServer  # noqa: E402  (a throw-away PostgreSQL + PostGIS cluster)

from cubeport.config import load_settings  # noqa: E402
from cubeport.context import Context  # noqa: E402
from cubeport.db import Database  # noqa: E402
from cubeport.features.backends import feature_store  # noqa: E402
from cubeport.features.geojson import geojson_features  # noqa: E402
from cubeport.features.schema import CollectionSpec  # noqa: E402
from cubeport.features.store import FeatureStore, Selection, table_name  # noqa: E402

GSHHG = DATA / "land" / "gshhg_full_baltic_9-31E_53-66.5N.gpkg"
DATABASE, COLLECTION = "bench", "gshhg"
PROPERTIES = {"gshhg_id": "integer", "area_km2": "number"}
GOAL = 1.5
LIMIT = 10_000  # the API's largest page
RAW = "raw psycopg, GeoJSON from SQL (floor)"
RAW_JSON_AGG = "raw psycopg, json_agg(ST_AsGeoJSON(t.*))"
RAW_WKB = "raw psycopg, rows with ST_AsBinary"


# -- data ---------------------------------------------------------------------------------------------------------
def read_gshhg() -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray]:
    """The polygons, as the importer hands them to the store (shapely geometry, properties), and vertex counts.
    The file has no attributes; the source fid and the area (km², in ETRS89-LAEA) stand in for them."""
    _, fids, wkb, _ = pyogrio.raw.read(GSHHG, return_fids=True)
    geometries = shapely.from_wkb(wkb)
    laea = Transformer.from_crs(4326, 3035, always_xy=True).transform
    areas = (
        shapely.area(shapely.transform(geometries, lambda xy: np.column_stack(laea(xy[:, 0], xy[:, 1]))))
        / 1e6
    )
    features = [
        {"geometry": g, "properties": {"gshhg_id": int(f), "area_km2": round(float(a), 6)}}
        for g, f, a in zip(geometries, fids, areas, strict=False)
    ]
    return geometries, features, shapely.get_num_coordinates(geometries)


def find_bbox(
    geometries: np.ndarray, center: tuple[float, float], target: int
) -> tuple[float, float, float, float]:
    """The largest bbox (2:1 in degrees, about square on the ground at 60 N, rounded to 0.001 degrees) around
    `center` that meets at most `target` polygons, by bisection on its half-height."""
    tree = shapely.STRtree(geometries)
    cx, cy = center

    def box(h: float) -> tuple[float, float, float, float]:
        return tuple(round(v, 3) for v in (cx - 2 * h, cy - h, cx + 2 * h, cy + h))  # type: ignore[return-value]

    def count(h: float) -> int:
        return len(tree.query(shapely.box(*box(h)), predicate="intersects"))

    lo, hi = 0.001, 6.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if count(mid) > target else (mid, hi)
    return box(lo)


# -- insert -------------------------------------------------------------------------------------------------------
def time_insert(store: FeatureStore, name: str, features: list[dict[str, Any]]) -> float:
    store.create(
        CollectionSpec(
            database=DATABASE,
            name=name,
            properties=PROPERTIES,
            geometry_type="Polygon",
            title="GSHHG full, Baltic",
        )
    )
    started = time.perf_counter()
    written = store.insert(DATABASE, name, features)
    elapsed = time.perf_counter() - started
    assert written == len(features), (written, len(features))
    return elapsed


def time_copy(conninfo: str, features: list[dict[str, Any]]) -> float:
    """The floor for inserting into PostGIS: binary COPY of (id, WKB, properties) into a table shaped like the
    store's (same columns, GiST index made first, ANALYZE after), in one transaction. The hex EWKB is
    made before the clock starts."""
    import psycopg

    ewkb = shapely.to_wkb(
        shapely.set_srid(np.array([f["geometry"] for f in features]), 4326), hex=True, include_srid=True
    )  # the text form PostGIS reads in COPY
    rows = [
        (i + 1, g, f["properties"]["gshhg_id"], f["properties"]["area_km2"])
        for i, (g, f) in enumerate(zip(ewkb, features, strict=False))
    ]
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE copy_floor (id bigint PRIMARY KEY, geometry geometry(GEOMETRY, 4326) "
            "NOT NULL, gshhg_id bigint, area_km2 double precision)"
        )
        connection.execute("CREATE INDEX copy_floor_gix ON copy_floor USING GIST (geometry)")
        started = time.perf_counter()
        with connection.transaction():
            with connection.cursor().copy(
                "COPY copy_floor (id, geometry, gshhg_id, area_km2) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            connection.execute("ANALYZE copy_floor")
        elapsed = time.perf_counter() - started
        assert connection.execute("SELECT count(*) FROM copy_floor").fetchone()[0] == len(rows)
        connection.execute("DROP TABLE copy_floor")
    return elapsed


# -- query --------------------------------------------------------------------------------------------------------
def raw_queries(table: str, bbox: tuple[float, float, float, float]) -> dict[str, str]:
    envelope = f"ST_MakeEnvelope({', '.join(map(repr, bbox))}, 4326)"
    selected = (
        f'SELECT id, geometry, gshhg_id, area_km2 FROM "{table}" WHERE ST_Intersects(geometry, {envelope}) '
        f"ORDER BY id LIMIT {LIMIT}"
    )
    properties = ", ".join(f"'{p}', {p}" for p in PROPERTIES)
    feature = (
        """'{"type":"Feature","id":' || id || ',"geometry":' || ST_AsGeoJSON(geometry) || """
        f"""',"properties":' || json_build_object({properties})::text || '}}'"""
    )
    return {
        # the floor: the whole FeatureCollection made in the database as text (features shaped as Cubeport's:
        # id, geometry, properties) and fetched as one value; the cheapest of the forms tried
        "geojson": (
            """SELECT '{"type":"FeatureCollection","features":[' || """
            f"""coalesce(string_agg({feature}, ',' ORDER BY id), '') || ']}}' FROM ({selected}) t"""
        ),
        # the same feature texts, one row each (for the profile's suggestions)
        "feature_rows": f"SELECT {feature} FROM ({selected}) t ORDER BY id",
        # the usual textbook form: json_agg of ST_AsGeoJSON(record) (the id lands among the properties)
        "geojson_json_agg": (
            "SELECT json_build_object('type', 'FeatureCollection', 'features', "
            "coalesce(json_agg(ST_AsGeoJSON(t.*)::json ORDER BY id), '[]'::json))::text "
            f"FROM ({selected}) t"
        ),
        "wkb": selected.replace("SELECT id, geometry,", "SELECT id, ST_AsBinary(geometry),", 1),
    }


def fetch_geojson(connection: Any, sql: str) -> str:
    return connection.execute(sql).fetchone()[0]


def fetch_rows(connection: Any, sql: str) -> list[Any]:
    return connection.execute(sql).fetchall()


def get_items(client: httpx.Client, path: str) -> bytes:
    response = client.get(path)
    response.raise_for_status()
    return response.content


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def measure(
    cases: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """One warm-up each, then `repeats` rounds with the cases interleaved (drift hits them alike); ms."""
    results = {name: call() for name, call in cases.items()}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, call in cases.items():
            ms, _ = timed(call)
            times[name].append(ms)
    return times, results


def start_cubeport(database_url: str, root: Path, log: Path) -> Server:
    return Server(
        "cubeport",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "cubeport.api.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--workers",
            "1",
            "--log-level",
            "warning",
        ],
        {"CUBEPORT_DATA_ROOT": str(root), "CUBEPORT_DATABASE_URL": database_url},
        "/health",
        log,
    )


# -- profile ------------------------------------------------------------------------------------------------------
def handler_steps(store: FeatureStore, selection: Selection, repeats: int) -> dict[str, Any]:
    """The items handler's steps in process (as `api/routers/features.py` runs them), each timed on its own
    (median ms), the rows-only part of `store.query` split out, and a cProfile of the whole sequence."""
    spec = store.get(DATABASE, COLLECTION)
    data = store._table(spec)
    chosen = list(spec.properties)
    query = (
        sa.select(data.c.id, store._wkb(data), *(data.c[p] for p in chosen))
        .where(*store._where(spec, data, selection))
        .order_by(data.c.id)
        .limit(LIMIT)
    )

    def rows_only() -> list[Any]:
        with store.engine.connect() as connection:
            return connection.execute(query).fetchall()

    def handler() -> str:
        store.get(DATABASE, COLLECTION)
        found = list(store.geojson(DATABASE, COLLECTION, selection, limit=LIMIT + 1))
        matched = len(found) if len(found) <= LIMIT else store.count(DATABASE, COLLECTION, selection)
        head = (
            f'{{"type":"FeatureCollection","numberMatched":{matched},"numberReturned":{len(found)},"links":[]'
        )
        return head + f',"features":[{",".join(found[:LIMIT])}]}}'

    geojson_query = (
        sa.select(
            data.c.id,
            sa.func.ST_AsGeoJSON(data.c.geometry, 15).label("geojson"),
            *(data.c[p] for p in chosen),
        )
        .where(*store._where(spec, data, selection))
        .order_by(data.c.id)
        .limit(LIMIT)
    )

    def geojson_in_sql() -> str:
        """A suggestion, for a collection in EPSG:4326: the geometry as GeoJSON text from the database,
        the feature text assembled in Python, no shapely at all."""
        with store.engine.connect() as connection:
            rows = connection.execute(geojson_query).all()
        return ",".join(
            f'{{"type":"Feature","id":{r[0]},"geometry":{r[1]},"properties":'
            f"{json.dumps(dict(zip(chosen, r[2:], strict=False)))}}}"
            for r in rows
        )

    texts_query = raw_queries(data.name, selection.bbox)["feature_rows"]  # type: ignore[arg-type]

    def texts_in_sql() -> str:
        """A suggestion: each feature's whole text made in the SELECT, the page joined in Python."""
        with store.engine.connect() as connection:
            return ",".join(r[0] for r in connection.exec_driver_sql(texts_query))

    found = list(store.query(DATABASE, COLLECTION, selection, limit=LIMIT))
    texts = geojson_features(spec.crs, found)
    rows = rows_only()
    wkbs = [r.wkb for r in rows]
    steps: dict[str, Callable[[], Any]] = {
        "store.get (collection spec)": lambda: store.get(DATABASE, COLLECTION),
        "store.geojson, listed (feature texts made in SQL: what the handler runs)": lambda: list(
            store.geojson(DATABASE, COLLECTION, selection, limit=LIMIT + 1)
        ),
        "the Python path (SQLite's): store.query + geojson_features": lambda: geojson_features(
            spec.crs, list(store.query(DATABASE, COLLECTION, selection, limit=LIMIT))
        ),
        "store.query, listed (SQL + shapely.from_wkb + dicts)": lambda: list(
            store.query(DATABASE, COLLECTION, selection, limit=LIMIT)
        ),
        "  of which: the same SELECT, rows only (fetchall, no server cursor)": rows_only,
        "  of which: shapely.from_wkb of the rows, one call per row": lambda: [
            shapely.from_wkb(w) for w in wkbs
        ],
        "store.count (numberMatched when the page is full; not needed here)": lambda: store.count(
            DATABASE, COLLECTION, selection
        ),
        "geojson_features (shapely.to_geojson + json.dumps per feature)": lambda: geojson_features(
            spec.crs, found
        ),
        "  of which: shapely.to_geojson of the geometries (one call)": lambda: shapely.to_geojson(
            [f["geometry"] for f in found]
        ),
        "joining the response text": lambda: ",".join(texts),
        "the whole handler body": handler,
        "alternative: shapely.from_wkb, one call for all rows": lambda: shapely.from_wkb(wkbs),
        "alternative: ST_AsGeoJSON in the SELECT, text joined in Python": geojson_in_sql,
        "alternative: each feature's text made in the SELECT, joined in Python": texts_in_sql,
    }
    times, _ = measure(steps, repeats)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        handler()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    return {"median_ms": {name: median(t) for name, t in times.items()}, "cprofile_tottime_top": _top(out)}


def insert_profile(store: FeatureStore, features: list[dict[str, Any]]) -> str:
    """cProfile of one `store.insert` of the features into a fresh collection (dropped after): top by tottime."""
    store.create(
        CollectionSpec(database=DATABASE, name="profile", properties=PROPERTIES, geometry_type="Polygon")
    )
    profiler = cProfile.Profile()
    profiler.enable()
    store.insert(DATABASE, "profile", features)
    profiler.disable()
    store.drop(DATABASE, "profile")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    return _top(out)


def _top(out: io.StringIO) -> str:
    """The table of pstats output, with shorter file names."""
    text = out.getvalue().split("\n", 5)[-1].strip()
    for folder in (REPO / "src", Path(sa.__file__).parents[1], Path(json.__file__).parents[1]):
        text = text.replace(f"{folder}/", "")
    return text


# -- the run ------------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    geometries, features, vertices = read_gshhg()
    if args.quick:
        features = features[: len(features) // 4]
    bbox = find_bbox(geometries, (args.center_lon, args.center_lat), args.target)
    hits = shapely.STRtree(geometries).query(shapely.box(*bbox), predicate="intersects")
    hits = hits[hits < len(features)]  # with --quick, only the inserted ones
    print(
        f"read {len(geometries)} polygons, bbox {bbox} meets {len(hits)} ({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="cubeport-features-bench-", dir=args.tmp))
    pg = PostgresServer()
    servers: list[Server] = []
    result: dict[str, Any] = {"insert": {}, "query": {}}
    try:
        pg.start()
        pg_url = pg.new_database("bench_features")
        conninfo = pg_url.replace("postgresql+psycopg://", "postgresql://")
        pg_db = Database(pg_url)
        pg_db.upgrade()
        sqlite_ctx = Context(load_settings(data_root=str(work / "sqlite-root")))
        stores = {"postgis": feature_store(pg_db), "sqlite": sqlite_ctx.features}

        # insert: a fresh collection per run, the timed collection named `gshhg` kept for the query
        runs: dict[str, list[float]] = {"postgis": [], "sqlite": [], "postgis COPY (floor)": []}
        for i in range(args.insert_repeats):
            for backend, store in stores.items():
                name = COLLECTION if i == 0 else f"{COLLECTION}-{i}"
                runs[backend].append(time_insert(store, name, features))
                print(f"insert {backend}: {len(features) / runs[backend][-1]:.0f} features/s", flush=True)
                if i:
                    store.drop(DATABASE, name)
            runs["postgis COPY (floor)"].append(time_copy(conninfo, features))
        for case, seconds in runs.items():
            result["insert"][case] = {
                "features": len(features),
                "runs_s": seconds,
                "median_s": median(seconds),
                "features_per_s": len(features) / median(seconds),
            }

        selection = Selection(bbox=bbox)
        counts = {backend: store.count(DATABASE, COLLECTION, selection) for backend, store in stores.items()}
        expected = len(hits)
        assert counts == {"postgis": expected, "sqlite": expected}, (counts, expected)

        # query: Cubeport over HTTP on PostGIS, interleaved with the raw psycopg queries on the same database
        import psycopg

        sqls = raw_queries(table_name(DATABASE, COLLECTION), bbox)
        path = f"/features/collections/{DATABASE}.{COLLECTION}/items?bbox={','.join(map(str, bbox))}&limit={LIMIT}"
        server = start_cubeport(pg_url, work / "pg-root", work / "cubeport-postgis.log")
        servers.append(server)
        with (
            httpx.Client(base_url=server.url, timeout=120) as client,
            psycopg.connect(conninfo) as connection,
        ):
            versions = connection.execute("SELECT version(), postgis_lib_version()").fetchone()
            cases = {
                "cubeport HTTP, PostGIS": lambda: get_items(client, path),
                RAW: lambda: fetch_geojson(connection, sqls["geojson"]),
                RAW_JSON_AGG: lambda: fetch_geojson(connection, sqls["geojson_json_agg"]),
                RAW_WKB: lambda: fetch_rows(connection, sqls["wkb"]),
            }
            times, answers = measure(cases, args.repeats)
        server.stop()
        servers.remove(server)

        body = json.loads(answers["cubeport HTTP, PostGIS"])
        raw = json.loads(answers[RAW])
        textbook = json.loads(answers[RAW_JSON_AGG])
        ids = [f["id"] for f in body["features"]]
        assert len(ids) == body["numberReturned"] == body["numberMatched"] == expected, (len(ids), expected)
        assert (
            ids == [f["id"] for f in raw["features"]] == [f["properties"]["id"] for f in textbook["features"]]
        )
        assert ids == [row[0] for row in answers[RAW_WKB]]
        assert body["features"][0]["properties"] == raw["features"][0]["properties"]
        sizes = {
            "cubeport HTTP, PostGIS": len(answers["cubeport HTTP, PostGIS"]),
            RAW: len(answers[RAW].encode()),
            RAW_JSON_AGG: len(answers[RAW_JSON_AGG].encode()),
        }

        server = start_cubeport(
            sqlite_ctx.settings.effective_database_url, work / "sqlite-root", work / "cubeport-sqlite.log"
        )
        servers.append(server)
        with httpx.Client(base_url=server.url, timeout=120) as client:
            sqlite_times, sqlite_answers = measure(
                {"cubeport HTTP, SQLite": lambda: get_items(client, path)}, args.repeats
            )
        server.stop()
        servers.remove(server)
        assert json.loads(sqlite_answers["cubeport HTTP, SQLite"])["numberReturned"] == expected
        times.update(sqlite_times)
        sizes["cubeport HTTP, SQLite"] = len(sqlite_answers["cubeport HTTP, SQLite"])

        floor = median(times[RAW])
        for case, ms in times.items():
            result["query"][case] = {
                "runs_ms": ms,
                "median_ms": median(ms),
                "min_ms": min(ms),
                "x_raw_geojson": median(ms) / floor,
                "bytes": sizes.get(case),
            }
        ratio = median(times["cubeport HTTP, PostGIS"]) / floor
        result["ratio_http_postgis_to_raw_geojson"] = ratio
        result["goal_met"] = ratio <= GOAL
        if ratio > GOAL or args.profile:
            print(f"ratio {ratio:.2f} > {GOAL}: profiling the handler's steps in process", flush=True)
            result["profile_postgis"] = handler_steps(stores["postgis"], selection, args.repeats)
            result["profile_postgis"]["insert_cprofile_tottime_top"] = insert_profile(
                stores["postgis"], features
            )
        pg_db.dispose()
        sqlite_ctx.db.dispose()
    finally:
        for server in servers:
            server.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "environment": {**environment(), "postgresql": versions[0], "postgis": versions[1]},
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "tmp")},
        "data": {
            "file": GSHHG.name,  # the sample's name, not this machine's path
            "polygons": len(geometries),
            "inserted": len(features),
            "vertices": int(vertices.sum()),
        },
        "bbox": {
            "west_south_east_north": bbox,
            "features": expected,
            "vertices": int(vertices[hits].sum()),
            "largest_polygon_vertices": int(vertices[hits].max()),
            "url_path": path,
        },
        "goal": f"Cubeport HTTP within {GOAL}x the raw psycopg GeoJSON query",
        **result,
    }


def report(payload: dict[str, Any]) -> str:
    box = payload["bbox"]
    lines = [
        f"{payload['data']['inserted']} GSHHG polygons inserted; bbox {tuple(box['west_south_east_north'])} "
        f"selects {box['features']} polygons, {box['vertices']} vertices "
        f"(largest {box['largest_polygon_vertices']})",
        "",
    ]
    rows = [
        [case, r["features"], r["median_s"], r["features_per_s"]] for case, r in payload["insert"].items()
    ]
    lines += [table(["insert", "features", "median s", "features/s"], rows), ""]
    rows = [
        [case, r["median_ms"], r["min_ms"], r["x_raw_geojson"], r["bytes"] or "-"]
        for case, r in payload["query"].items()
    ]
    lines += [
        table([f"bbox query, limit {LIMIT}", "median ms", "min ms", "x raw GeoJSON", "bytes"], rows),
        "",
    ]
    ratio = payload["ratio_http_postgis_to_raw_geojson"]
    lines.append(
        f"Cubeport HTTP / raw psycopg GeoJSON on PostGIS: {ratio:.2f}x (goal {GOAL}x: "
        f"{'met' if payload['goal_met'] else 'missed'})"
    )
    if "profile_postgis" in payload:
        steps = payload["profile_postgis"]["median_ms"]
        http = payload["query"]["cubeport HTTP, PostGIS"]["median_ms"]
        lines += [
            "",
            table(["items handler in process, PostGIS", "median ms"], [[k, v] for k, v in steps.items()]),
            f"HTTP request minus the handler body in process: {http - steps['the whole handler body']:.0f} ms "
            "(FastAPI, uvicorn, 2 processes on 2 cores, reading the response; measured apart, so rough)",
            "",
            "cProfile of the handler body, 3 calls, by tottime:",
            payload["profile_postgis"]["cprofile_tottime_top"],
            "",
            "cProfile of store.insert on PostGIS, by tottime:",
            payload["profile_postgis"]["insert_cprofile_tottime_top"],
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed queries per case after one warm-up")
    parser.add_argument(
        "--insert-repeats", type=int, default=3, help="inserts per backend, each a fresh collection"
    )
    parser.add_argument("--target", type=int, default=LIMIT, help="most features the bbox may select")
    parser.add_argument("--center-lon", type=float, default=21.0)
    parser.add_argument("--center-lat", type=float, default=60.0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a quarter of the polygons, one insert, 7 repeats "
        "(a smoke test: the bbox then selects fewer features)",
    )
    parser.add_argument("--profile", action="store_true", help="profile the handler even if the goal is met")
    parser.add_argument("--tmp", default=None, help="parent folder of the temporary folder")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.insert_repeats = min(args.repeats, 7), 1
    run_and_report("features", run, report, args)


if __name__ == "__main__":
    main()
