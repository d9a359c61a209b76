"""No request crashes or stalls the server (issue 19, findings 1 and 4), against a real `cubeport serve`
process, so a crash shows as a dead process and a stall as a slow /health:

- a CQL2 filter nested deeper than `MAX_FILTER_DEPTH` (1,100 `NOT (` overflowed the cql2 parser's stack
  and killed the process) is a 400 on every route that takes a filter, and so is one longer than
  `MAX_FILTER`, as text or as an object;
- a body over `max_body_bytes` is a 413, at once for a Content-Length and as it streams when chunked;
  a JSON body nested deeper than `MAX_JSON_DEPTH` is a 400 before any parser sees it, measured as it
  arrives (four 15 MB bodies at once leave /health answering);
- big bodies (20,000 squares, 140,000 features, a STAC search) are parsed in a worker thread: /health
  answers within a second meanwhile, and a spent time budget in the geometry step, a feature write or an
  export is the 422 of every budget.

After every worst input the process must still run and answer /health within a second."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers import context_with
from services import CubeportProcess

from cubeport.api.app import create_app
from cubeport.config import load_settings
from cubeport.context import Context
from cubeport.errors import InputError
from cubeport.nesting import MAX_JSON_DEPTH
from cubeport.ogc.params import MAX_FILTER, MAX_FILTER_DEPTH, parse_cql2

DEEP_TEXT = "NOT (" * 1100 + "a = 1" + ")" * 1100  # 7.7 KB: overflowed the cql2 parser's stack
MAX_BODY = 16 * 2**20  # the default `max_body_bytes`
SERIES = "/timeseries/sst/analysed_sst"


def deep_not(levels: int) -> dict[str, Any]:
    """CQL2 JSON: `levels` nested NOTs around a comparison (2 * levels + 3 deep)."""
    node: dict[str, Any] = {"op": "=", "args": [{"property": "a"}, 1]}
    for _ in range(levels):
        node = {"op": "not", "args": [node]}
    return node


def squares(count: int = 20_000) -> bytes:
    """A FeatureCollection of `count` disjoint 0.04-degree squares over the Baltic (3.4 MB for 20,000)."""
    features = []
    for i in range(count):
        x, y = round(14 + (i % 200) * 0.05, 2), round(55 + (i // 200) * 0.05, 2)
        ring = [[x, y], [x + 0.04, y], [x + 0.04, y + 0.04], [x, y + 0.04], [x, y]]
        features.append(
            {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
        )
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory, data) -> Iterator[SimpleNamespace]:
    """A server with the OSTIA sample cube (public) and a feature collection of the admin's."""
    root = tmp_path_factory.mktemp("limits")
    context = context_with(root, data, {"sst": "sst"})
    context.auth.directory.create_user("root", role="admin")
    key = {"X-API-Key": context.auth.create_key("root")[1]}
    context.close()
    process = CubeportProcess(root)
    created = httpx.post(
        f"{process.url}/features/collections",
        json={"database": "root", "name": "spots", "properties": {"a": "integer"}, "geometry_type": "Point"},
        headers=key,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    yield SimpleNamespace(url=process.url, process=process, key=key)
    process.stop()


def assert_alive(server: SimpleNamespace) -> float:
    """The process runs and /health answers within a second; the seconds it took."""
    assert server.process.process.poll() is None, "the server process died"
    start = time.monotonic()
    response = httpx.get(f"{server.url}/health", timeout=30)
    took = time.monotonic() - start
    assert response.status_code == 200 and took < 1, (response.status_code, took)
    return took


def assert_problem(response: httpx.Response, status: int, *says: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    for text in says:
        assert text in response.json()["detail"], response.json()["detail"]


FILTER_ROUTES = [  # (method, path, filter-lang, admin key): every route a filter reaches
    ("GET", "/stac/search", None, False),
    ("POST", "/stac/search", "cql2-text", False),
    ("GET", "/stac/collections/sst/items", None, False),
    ("GET", "/stac/collections/nothing/items", None, False),
    *[("GET", f"/features/collections/root.spots/{r}", None, True) for r in ("items", "count", "export")],
    *[
        ("GET", f"/features/collections/nobody.nothing/{r}", None, False)
        for r in ("items", "count", "export")
    ],
]


def send_filter(server: SimpleNamespace, method: str, path: str, lang: str | None, keyed: bool, value: Any):
    headers = server.key if keyed else {}
    if method == "POST":
        body = {"filter": value, **({"filter-lang": lang} if lang else {})}
        return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=60)
    params = {"filter": value if isinstance(value, str) else json.dumps(value)}
    if lang:
        params["filter-lang"] = lang
    return httpx.get(f"{server.url}{path}", params=params, headers=headers, timeout=60)


@pytest.mark.parametrize(("method", "path", "lang", "keyed"), FILTER_ROUTES)
def test_a_deep_cql2_text_filter_is_a_400_and_the_server_survives(server, method, path, lang, keyed):
    response = send_filter(server, method, path, lang, keyed, DEEP_TEXT)
    if "nothing" in path:  # a collection that does not exist may be a 404 first
        assert response.status_code in (400, 404), response.text[:300]
    else:
        assert_problem(response, 400, f"filter nests deeper than {MAX_FILTER_DEPTH} levels")
    assert_alive(server)


@pytest.mark.parametrize(
    ("method", "path", "lang"),
    [
        ("GET", "/stac/search", "cql2-json"),  # JSON text in a query parameter
        ("POST", "/stac/search", "cql2-json"),  # an object in the body, under the body's own depth limit
        ("GET", "/features/collections/root.spots/items", "cql2-json"),
    ],
)
def test_a_deep_cql2_json_filter_is_a_400_before_the_validator_sees_it(server, method, path, lang):
    """16 NOTs (35 levels) took the cql2 validator 0.5 s and 300 MB; 400 NOTs (an 8 KB query) 53 s and 16 GB."""
    response = send_filter(server, method, path, lang, "features" in path, deep_not(16))
    assert_problem(response, 400, f"filter nests deeper than {MAX_FILTER_DEPTH} levels")
    response = send_filter(server, method, path, lang, "features" in path, deep_not(400))
    assert_problem(response, 400, "nests deeper than")  # in a body: refused as a body nested too deep
    assert_alive(server)


def test_filters_of_real_depth_still_work(server):
    nested = "a = 1 OR NOT (a = 2 AND (a = 3 OR S_INTERSECTS(geometry, POLYGON((0 0, 1 0, 1 1, 0 0)))))"
    for path, key in (("/stac/search", {}), ("/features/collections/root.spots/items", server.key)):
        response = httpx.get(f"{server.url}{path}", params={"filter": nested}, headers=key, timeout=30)
        assert response.status_code == 200, response.text
    body = {"filter": deep_not(14), "filter-lang": "cql2-json"}  # 31 levels: just within the limit
    assert httpx.post(f"{server.url}/stac/search", json=body, timeout=30).status_code == 200


def flat_or(count: int) -> dict[str, Any]:
    """CQL2 JSON: an OR of `count` comparisons, 4 levels deep however many (250,000: 12.4 MB)."""
    return {"op": "or", "args": [{"op": "=", "args": [{"property": "a"}, i]} for i in range(count)]}


def test_a_large_cql2_json_object_is_a_400_before_the_validator_sees_it(server):
    """A filter sent as an object had only the depth check: a flat OR of 250,000 comparisons (12.4 MB,
    anonymous) took 6 s to answer 200 and held /health for 2.3 s. Its size is measured in the walk that
    measures its depth, and refused past the text filter's limit (as compact JSON)."""
    body = json.dumps({"filter": flat_or(250_000), "filter-lang": "cql2-json"}).encode()
    start = time.monotonic()
    response = httpx.post(
        f"{server.url}/stac/search", content=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    took = time.monotonic() - start
    assert_problem(response, 400, f"longer than {MAX_FILTER:,} characters as CQL2 JSON", "IN (")
    assert took < 5, took  # mostly reading and parsing the 12.4 MB body
    wide = flat_or(250_000)
    start = time.monotonic()
    with pytest.raises(InputError, match="longer than"):  # the walk stops at the limit: no time at all
        parse_cql2(wide)
    assert time.monotonic() - start < 0.1
    within = {"filter": flat_or(300), "filter-lang": "cql2-json"}  # 12 KB as JSON: under the limit
    assert len(json.dumps(within["filter"], separators=(",", ":"))) < MAX_FILTER
    assert httpx.post(f"{server.url}/stac/search", json=within, timeout=30).status_code == 200
    not_a_filter = httpx.post(f"{server.url}/stac/search", json={"filter": [1] * 100_000}, timeout=30)
    assert_problem(not_a_filter, 400, "CQL2 text or a CQL2 JSON object")
    assert_alive(server)


@pytest.mark.parametrize(
    ("path", "keyed"),
    [
        (SERIES, False),  # parsed by the route (was a 500: RecursionError)
        ("/stac/search", False),  # parsed by FastAPI
        ("/features/collections/root.spots/items", True),  # 900 levels of coordinates were a 500
    ],
)
def test_a_deeply_nested_json_body_is_a_400(server, path, keyed):
    for levels in (900, 100_000):
        body = '{"type": "Polygon", "coordinates": ' + "[" * levels + "]" * levels + "}"
        response = httpx.post(
            f"{server.url}{path}",
            content=body,
            headers={"Content-Type": "application/json", **(server.key if keyed else {})},
            timeout=60,
        )
        assert_problem(response, 400, f"nests deeper than {MAX_JSON_DEPTH} levels")
        assert response.json()["limit"] == "depth"
    assert_alive(server)


def raw_request(server: SimpleNamespace, head: str, chunks: Iterable[bytes] = ()) -> bytes:
    """Send a request over a plain socket with its body as given (so it may lie about its length or never
    end), until the server answers or closes; the answer's first bytes (read meanwhile, in a thread)."""
    host, port = server.url.removeprefix("http://").split(":")
    answer: list[bytes] = []
    with socket.create_connection((host, int(port)), timeout=30) as connection:

        def read() -> None:
            try:
                answer.append(connection.recv(4096))
            except OSError:
                answer.append(b"")

        reader = threading.Thread(target=read)
        reader.start()
        connection.sendall(head.encode())
        for chunk in chunks:
            if answer:
                break
            try:
                connection.sendall(chunk)
            except OSError:  # the server answered and closed the connection
                break
        reader.join(30)
    return answer[0] if answer else b""


def test_a_body_over_the_limit_is_a_413_at_once_or_as_it_streams(server):
    path = "/stac/search"
    start = time.monotonic()
    answer = raw_request(  # a Content-Length over the limit, and no body at all: answered without waiting
        server,
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY + 1}\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer and time.monotonic() - start < 5

    sent = []

    def chunked() -> Iterator[bytes]:
        piece = b"[" + b"0," * (2**19)  # 1 MiB of a JSON array that never ends
        for _ in range(64):
            sent.append(len(piece))
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"

    answer = raw_request(
        server,
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunked(),
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sum(sent) < 2 * MAX_BODY  # cut off near the limit, not after the 64 MiB
    assert_alive(server)


def test_a_route_keeps_its_smaller_limit(server):
    points = {"type": "Point", "coordinates": [20.0, 60.0]}
    body = json.dumps({**points, "padding": "x" * (MAX_BODY // 2)})  # 8 MiB: over the route's 5 MB
    response = httpx.post(f"{server.url}{SERIES}", content=body, timeout=60)
    assert_problem(response, 413, "larger than 5,000,000 bytes")
    response = httpx.post(f"{server.url}{SERIES}", json=points, timeout=60)
    assert response.status_code == 200 and response.json()["result"], response.text


def post_polling_health(
    server: SimpleNamespace, path: str, body: bytes, headers: dict[str, str] | None = None, copies: int = 1
) -> tuple[httpx.Response, list[float]]:
    """POST `body` (`copies` times at once) in threads and ask /health every 50 ms until every answer has
    come: the first answer (the others must have its status) and the latencies."""
    answers: list[httpx.Response] = []

    def post() -> None:
        answers.append(httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=120))

    workers = [threading.Thread(target=post) for _ in range(copies)]
    for worker in workers:
        worker.start()
    latencies = []
    while any(worker.is_alive() for worker in workers):
        latencies.append(assert_alive(server))
        time.sleep(0.05)
    for worker in workers:
        worker.join()
    assert len(answers) == copies and len({a.status_code for a in answers}) == 1, answers
    return answers[0], latencies


def test_health_answers_within_a_second_while_a_huge_polygon_is_read(server):
    """A FeatureCollection of 20,000 squares (3.4 MB) took 9.4 s and held the event loop: /health waited
    7.8 s. Now it is parsed and united in a worker thread."""
    response, latencies = post_polling_health(server, SERIES, squares())
    assert response.status_code == 200, response.text[:300]
    assert [r["mean"] is not None for r in response.json()["result"]] == [True, True, True]
    assert len(latencies) >= 5, latencies  # /health was asked while the polygon was read
    assert max(latencies) < 1, latencies


def test_health_answers_within_a_second_while_a_large_feature_collection_is_parsed(server):
    """Feature writes take their GeoJSON as bytes and parse it in the worker thread: FastAPI's own parsing and
    validation of this 13 MB body as `dict[str, Any]` ran on the event loop (/health then waited up to 0.43 s,
    now 0.30 s, while 140,000 features are written); a body that is not JSON is a 400 saying what to send."""
    created = httpx.post(
        f"{server.url}/features/collections",
        json={"database": "root", "name": "bulk", "properties": {"a": "integer"}, "geometry_type": "Point"},
        headers=server.key,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    count = 140_000
    points = [
        {"type": "Feature", "properties": {"a": i}, "geometry": {"type": "Point", "coordinates": [20, 60]}}
        for i in range(count)
    ]
    body = json.dumps({"type": "FeatureCollection", "features": points}).encode()
    assert 12e6 < len(body) < 16 * 2**20
    headers = {**server.key, "Content-Type": "application/json"}
    response, latencies = post_polling_health(server, "/features/collections/root.bulk/items", body, headers)
    assert response.status_code == 201, response.text[:300]
    assert response.json() == {"written": count}
    assert len(latencies) >= 5 and max(latencies) < 1, latencies
    not_json = httpx.post(
        f"{server.url}/features/collections/root.bulk/items", content=b"{nope", headers=server.key
    )
    assert_problem(not_json, 400, "not JSON", "FeatureCollection")


def test_health_answers_within_a_second_while_a_search_body_is_parsed(server):
    """POST /stac/search takes its body as bytes and parses it (orjson) in the worker thread, as the feature
    writes do: FastAPI parsed it as a `dict` on the event loop, where json.loads held the loop for the whole
    parse (/health waited 1.5 s on 4 million numbers, now 0.5 s)."""
    body = b'{"padding": [' + b",".join([b"1e5"] * 4_100_000) + b"]}"
    assert 16e6 < len(body) < MAX_BODY
    headers = {"Content-Type": "application/json"}
    response, latencies = post_polling_health(server, "/stac/search", body, headers)
    assert_problem(response, 400, "unknown search member(s) padding")
    assert latencies and max(latencies) < 1, latencies
    not_json = httpx.post(f"{server.url}/stac/search", content=b"{nope", headers=headers, timeout=30)
    assert_problem(not_json, 400, "not JSON", "search")


def test_health_answers_within_a_second_while_four_string_heavy_bodies_are_measured(server):
    """The nesting of a JSON body is measured as its chunks arrive, a slice at a time on the event loop: one
    scan of the whole body (a regex call holding the GIL for 1.4 s on 15.5 MB of short strings) kept /health
    waiting 1.45 s, 2.9-3.6 s with four such bodies at once."""
    body = json.dumps({"padding": ["ab"] * 2_580_000}).encode()  # 2.6 million strings
    assert 15e6 < len(body) < MAX_BODY
    headers = {"Content-Type": "application/json"}
    # anonymous, to a route it may not write: every body is read and measured, none parsed
    path = "/features/collections/root.spots/items"
    response, latencies = post_polling_health(server, path, body, headers, copies=4)
    assert response.status_code == 404, response.text[:300]
    assert len(latencies) >= 5 and max(latencies) < 1, latencies


def test_a_budget_spent_in_the_geometry_step_is_a_422(tmp_path, data):
    """In process (the budget is a setting): 0.3 s do not reach past the parsing of 20,000 squares."""
    context_with(tmp_path, data, {"sst": "sst"}).close()
    context = Context(load_settings(data_root=str(tmp_path), request_seconds=0.3))
    try:
        with TestClient(create_app(context), raise_server_exceptions=False) as client:
            response = client.post(SERIES, content=squares())
        assert response.status_code == 422, response.text[:300]
        problem = response.json()
        assert problem["limit"] == "seconds" and problem["maximum"] == 0.3
        assert "GeoJSON" in problem["detail"], problem["detail"]
    finally:
        context.close()


def points(count: int) -> list[dict[str, Any]]:
    return [
        {"type": "Feature", "properties": {"a": i}, "geometry": {"type": "Point", "coordinates": [20, 60]}}
        for i in range(count)
    ]


def test_a_budget_spent_writing_or_exporting_features_is_a_422(tmp_path):
    """In process, with a 0.3 s budget: writing 140,000 features took 11.3 s (201) and a GeoPackage export
    4.2 s (200). Now the store checks the budget per chunk: the write is a 422 and writes nothing, and the
    export is a 422 before any byte is sent."""
    context = Context(load_settings(data_root=str(tmp_path), request_seconds=0.3))
    try:
        context.auth.directory.create_user("root", role="admin")
        key = {"X-API-Key": context.auth.create_key("root")[1]}
        with TestClient(create_app(context), raise_server_exceptions=False) as client:
            spec = {
                "database": "root",
                "name": "bulk",
                "properties": {"a": "integer"},
                "geometry_type": "Point",
            }
            assert client.post("/features/collections", json=spec, headers=key).status_code == 201
            context.features.insert("root", "bulk", points(40_000))  # outside a request: no budget
            url = "/features/collections/root.bulk"
            body = json.dumps({"type": "FeatureCollection", "features": points(140_000)})
            written = client.post(f"{url}/items", content=body, headers=key)
            exported = client.get(f"{url}/export", params={"format": "gpkg"}, headers=key)
            count = client.get(f"{url}/count", headers=key).json()["count"]
        for response, steps in ((written, ("writing",)), (exported, ("reading", "exporting"))):
            assert response.status_code == 422, response.text[:300]
            problem = response.json()
            assert problem["limit"] == "seconds" and problem["maximum"] == 0.3
            assert problem["detail"].split(" the features took longer than the 0.3 s")[0] in steps, problem
        assert count == 40_000  # the stopped write wrote nothing
    finally:
        context.close()
