"""The rolling cache against a real HTTP server started here (Range support, and faults on demand: slow
answers, bodies cut short, lying lengths, wrong ranges), on a local folder and on the real S3 server."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from services import free_port

from cubeport.config import CacheSettings, load_settings
from cubeport.context import Context
from cubeport.db import Database
from cubeport.errors import InputError, LimitError, NotFoundError, UnavailableError
from cubeport.platform.rolling_cache import RollingCache, cache_key


class Upstream:
    """A real HTTP/1.1 server of named objects with byte ranges; `faults[name]` makes it misbehave:
    "short" (body cut in half), "lie" (Content-Length too large), "ignore-range" (200 to a ranged request),
    "wrong-range" (another Content-Range), "range-length" (Content-Length disagreeing with Content-Range),
    "500", "redirect:LOCATION" (a 302, also for names without an object). `delay` slows every answer down. It
    counts the requests per object on its side, keeps the headers of each, and sets a cookie on every
    answer."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.faults: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self.ranges: list[str] = []
        self.sent: list[tuple[str, dict[str, str]]] = []  # (name, request headers)
        self.delay = 0.0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that gave up: not the test's news
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def put(self, name: str, size: int, seed: int = 0) -> bytes:
        self.objects[name] = random.Random(f"{name}-{seed}").randbytes(size)
        return self.objects[name]

    def reset(self) -> None:
        self.objects.clear()
        self.faults.clear()
        self.requests.clear()
        self.ranges.clear()
        self.sent.clear()
        self.delay = 0.0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                name = self.path.lstrip("/").split("?")[0]
                with upstream.lock:
                    upstream.requests[name] += 1
                    upstream.sent.append((name, dict(self.headers)))
                    if "Range" in self.headers:
                        upstream.ranges.append(self.headers["Range"])
                time.sleep(upstream.delay)
                fault, data = upstream.faults.get(name), upstream.objects.get(name)
                if fault and fault.startswith("redirect:"):
                    self._answer(302, b"", {"Location": fault.removeprefix("redirect:")})
                    return
                if data is None or fault == "500":
                    self._answer(404 if data is None else 500, b"no", {})
                    return
                wanted = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
                if not wanted or fault == "ignore-range":
                    self._answer(200, data, {}, fault)
                    return
                first, last = int(wanted[1]), min(int(wanted[2]), len(data) - 1)
                if first >= len(data):
                    self._answer(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                    return
                shown = (first + 1, last + 1) if fault == "wrong-range" else (first, last)
                self._answer(
                    206,
                    data[first : last + 1],
                    {"Content-Range": f"bytes {shown[0]}-{shown[1]}/{len(data)}"},
                    fault,
                )

            def _answer(
                self, status: int, body: bytes, headers: dict[str, str], fault: str | None = None
            ) -> None:
                length = len(body) + (100 if fault == "lie" else 0)
                if fault == "range-length":
                    body = body[:-1]
                    length = len(body)
                self.send_response(status)
                self.send_header("Set-Cookie", "session=upstream-secret; Path=/")
                for name, value in {**headers, "Content-Length": str(length)}.items():
                    self.send_header(name, value)
                self.end_headers()
                if fault == "short":
                    body = body[: len(body) // 2]
                self.wfile.write(body)
                if fault in ("short", "lie"):
                    self.close_connection = True

        return Handler


class Clock:
    """A UTC clock the tests move on; every reading is 1 ms later, so use order is never a tie."""

    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, tzinfo=UTC)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            self.now += timedelta(milliseconds=1)
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def upstream():
    server = Upstream()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def make_cache(storage, tmp_path, upstream):
    """RollingCache(**settings) on the local or S3 storage, a fresh SQLite index and a test clock."""
    upstream.reset()
    db = Database(f"sqlite:///{tmp_path / 'cache.db'}")
    db.upgrade()
    made: list[RollingCache] = []

    def make(clock: Clock | None = None, **settings: object) -> RollingCache:
        cache = RollingCache(
            storage, db, CacheSettings(**{"quota_bytes": 10_000, **settings}), clock=clock or Clock()
        )
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.close()
    db.dispose()


def stored(cache: RollingCache) -> dict[str, int]:
    """Object name -> size of every file below the cache's folder (temporary files included)."""
    fs, root = cache.storage.fs, cache.storage.path(cache.prefix)
    fs.invalidate_cache()
    return {
        path.rsplit("/", 1)[-1]: int(info["size"])
        for path, info in fs.find(root, detail=True).items()
        if info["type"] == "file" and path.rstrip("/") != root
    }  # not SeaweedFS's folder markers


def test_a_fetch_is_stored_once_and_then_served_from_the_cache(make_cache, upstream):
    cache = make_cache()
    data = upstream.put("a.bin", 1000)
    first = cache.fetch(upstream.url("a.bin"))
    second = cache.fetch(upstream.url("a.bin"))
    assert first.data == second.data == data and not first.hit and second.hit
    assert upstream.requests["a.bin"] == 1
    stats = cache.stats()
    assert (stats.entries, stats.used_bytes, stats.hits, stats.misses) == (1, 1000, 1, 1)
    assert (stats.bytes_fetched, stats.bytes_served, stats.hit_ratio) == (1000, 2000, 0.5)
    [entry] = cache.entries()
    assert entry.key == upstream.url("a.bin") and entry.hits == 1 and entry.size == 1000
    assert entry.sha256 == first.sha256 and list(stored(cache).values()) == [1000]


def test_byte_ranges_are_cached_separately_and_correct(make_cache, upstream):
    cache = make_cache()
    data = upstream.put("r.bin", 3000)
    url = upstream.url("r.bin")
    parts = [cache.fetch(url, byte_range=r) for r in ((0, 100), (100, 1100), (2990, 3000))]
    assert [p.data for p in parts] == [data[:100], data[100:1100], data[2990:]]
    assert upstream.ranges == ["bytes=0-99", "bytes=100-1099", "bytes=2990-2999"]
    assert cache.fetch(url).data == data
    assert cache.fetch(url, byte_range=(100, 1100)).hit and upstream.requests["r.bin"] == 4
    assert {e.key for e in cache.entries()} == {
        url,
        f"{url}#bytes=0-99",
        f"{url}#bytes=100-1099",
        f"{url}#bytes=2990-2999",
    }
    tail = cache.fetch(url, byte_range=(2500, 4000))  # past the end: the object's last bytes, as HTTP says
    assert tail.data == data[2500:] and cache.entry(cache_key(url, (2500, 4000))).byte_range == (2500, 4000)
    with pytest.raises(InputError, match="beyond the end"):
        cache.fetch(url, byte_range=(5000, 5010))


def test_concurrent_requests_for_one_object_make_one_download(make_cache, upstream):
    cache = make_cache()
    data = upstream.put("busy.bin", 5000)
    upstream.delay = 0.3
    start = threading.Barrier(12)
    results: list[object] = []

    def fetch() -> None:
        start.wait()
        results.append(cache.fetch(upstream.url("busy.bin")))

    threads = [threading.Thread(target=fetch) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert upstream.requests["busy.bin"] == 1
    assert all(r.data == data for r in results) and sum(not r.hit for r in results) == 1
    stats = cache.stats()
    assert (stats.misses, stats.hits, stats.bytes_fetched, stats.bytes_served) == (1, 11, 5000, 60000)


def test_the_quota_holds_under_concurrent_load(make_cache, upstream):
    cache = make_cache(quota_bytes=64_000)
    objects = {f"o{i}": upstream.put(f"o{i}", random.Random(i).randint(1000, 6000)) for i in range(60)}
    used_after: list[int] = []
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        names = random.Random(worker).choices(sorted(objects), k=25)
        try:
            for name in names:
                assert cache.fetch(upstream.url(name)).data == objects[name]
                used_after.append(cache.stats().used_bytes)
        except BaseException as exc:  # reported below, with the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    stats = cache.stats()
    assert max(used_after) <= cache.high_bytes < 64_000 and stats.evictions > 0
    assert stats.used_bytes <= cache.high_bytes and stats.hits + stats.misses == 12 * 25
    files = stored(cache)  # the files are exactly the index: nothing left over, nothing missing
    assert sum(files.values()) == stats.used_bytes and len(files) == stats.entries
    assert not any(name.endswith(".partial") for name in files)


def test_eviction_is_least_recently_used_and_ends_at_the_low_watermark(make_cache, upstream):
    cache = make_cache(quota_bytes=1000, high_watermark=0.9, low_watermark=0.5)
    for name in "abcd":
        upstream.put(name, 200)
        cache.fetch(upstream.url(name))
    cache.fetch(upstream.url("c"))  # touch order now: a, b, d, c
    cache.fetch(upstream.url("a"))  # b, d, c, a
    assert cache.stats().evictions == 0 and cache.evict() == 0  # 800 bytes: below the high watermark
    upstream.put("e", 200)
    cache.fetch(upstream.url("e"))  # 1000 > 900: b, d and c go, down to 400 <= 500
    assert sorted(e.key[-1] for e in cache.entries()) == ["a", "e"]
    stats = cache.stats()
    assert stats.used_bytes == 400 <= cache.low_bytes and stats.evictions == 3 and len(stored(cache)) == 2


def test_pinned_entries_survive_eviction_and_the_ttl(make_cache, upstream):
    clock = Clock()
    cache = make_cache(clock, quota_bytes=1000, ttl_seconds=3600)
    for name in "abcd":
        upstream.put(name, 200)
        cache.fetch(upstream.url(name))
    assert cache.pin(upstream.url("a")).expires is None
    upstream.put("e", 200)
    cache.fetch(upstream.url("e"))  # 1000 > 900: a is the oldest but pinned; b and c go (600 <= 700)
    assert sorted(e.key[-1] for e in cache.entries()) == ["a", "d", "e"]
    clock.advance(7200)
    assert cache.fetch(upstream.url("a")).hit and upstream.requests["a"] == 1  # pinned: never expires
    assert not cache.fetch(upstream.url("d")).hit and upstream.requests["d"] == 2
    assert cache.purge(expired=True) == 1  # e; a is pinned and d was just fetched again
    assert cache.unpin(upstream.url("a")).expires is not None
    clock.advance(7200)
    assert not cache.fetch(upstream.url("a")).hit and upstream.requests["a"] == 2
    with pytest.raises(NotFoundError, match="not found"):
        cache.pin("http://nowhere/x")


def test_pinned_entries_that_fill_the_quota_refuse_new_ones(make_cache, upstream):
    cache = make_cache(quota_bytes=1000)
    for name in "ab":
        upstream.put(name, 450)
        cache.fetch(upstream.url(name))
        cache.pin(upstream.url(name))
    upstream.put("c", 300)
    with pytest.raises(LimitError, match="pinned entries fill its quota"):
        cache.fetch(upstream.url("c"))
    assert cache.stats().used_bytes == 900 and len(stored(cache)) == 2


def test_expired_entries_are_fetched_again_never_served(make_cache, upstream):
    clock = Clock()
    cache = make_cache(clock, ttl_seconds=60)
    upstream.put("t", 100, seed=1)
    cache.fetch(upstream.url("t"))
    clock.advance(30)
    assert cache.fetch(upstream.url("t")).hit
    new = upstream.put("t", 120, seed=2)  # the source changed meanwhile
    clock.advance(31)
    again = cache.fetch(upstream.url("t"))
    assert not again.hit and again.data == new and upstream.requests["t"] == 2
    entry = cache.entry(upstream.url("t"))
    assert entry.size == 120 and entry.expires > clock.now and cache.stats().used_bytes == 120


@pytest.mark.parametrize(
    "fault, byte_range, message",
    [
        ("short", None, "failed"),
        ("lie", None, "failed"),
        ("short", (0, 1000), "failed"),
        ("ignore-range", (0, 100), "ignored the Range header"),
        ("wrong-range", (0, 100), "sent bytes 1-100"),
        ("range-length", (0, 100), "Content-Length 99 with Content-Range 0-99"),
        ("500", None, "answered 500"),
    ],
)
def test_a_bad_download_raises_and_stores_nothing(make_cache, upstream, fault, byte_range, message):
    cache = make_cache()
    data = upstream.put("bad", 2000)
    upstream.faults["bad"] = fault
    with pytest.raises(UnavailableError, match=message):
        cache.fetch(upstream.url("bad"), byte_range=byte_range)
    assert cache.entries() == [] and stored(cache) == {} and cache.stats().bytes_fetched == 0
    del upstream.faults["bad"]
    good = cache.fetch(upstream.url("bad"), byte_range=byte_range)
    assert good.data == (data[slice(*byte_range)] if byte_range else data) and len(stored(cache)) == 1


def test_a_corrupt_or_missing_file_is_fetched_again(make_cache, upstream):
    cache = make_cache()
    data = upstream.put("c.bin", 500)
    url = upstream.url("c.bin")
    cache.fetch(url)
    [name] = stored(cache)
    path = cache.storage.path(cache.prefix, "objects", name[:2], name)
    cache.storage.fs.pipe_file(path, b"x" + data[1:])  # same size, other bytes
    assert not cache.fetch(url).hit and cache.fetch(url).data == data and upstream.requests["c.bin"] == 2
    cache.storage.fs.pipe_file(path, data[:100])  # truncated
    assert cache.fetch(url).data == data and upstream.requests["c.bin"] == 3
    cache.storage.fs.rm_file(path)
    assert cache.fetch(url).data == data and upstream.requests["c.bin"] == 4
    assert cache.fetch(url).hit and cache.stats().entries == 1


def test_remote_and_input_errors_are_domain_errors(make_cache, upstream):
    cache = make_cache(quota_bytes=10_000, timeout_seconds=0.5)
    with pytest.raises(
        NotFoundError, match=r"127.0.0.1:\d+/missing not found at its source \(404\)"
    ) as raised:
        cache.fetch(upstream.url("missing") + "?signature=secret")
    assert "secret" not in str(raised.value)  # signed URLs keep their query out of messages
    with pytest.raises(UnavailableError, match="failed .*ConnectError"):
        cache.fetch(f"http://127.0.0.1:{free_port()}/x")
    upstream.put("slow", 10)
    upstream.delay = 1.0
    with pytest.raises(UnavailableError, match="did not answer within 0.5 s"):
        cache.fetch(upstream.url("slow"))
    upstream.delay = 0.0
    upstream.put("big", 8000)  # more than the low watermark (7,000 bytes)
    with pytest.raises(LimitError, match="fetch it in byte ranges"):
        cache.fetch(upstream.url("big"))
    for url, kwargs in (
        ("ftp://host/x", {}),
        ("http://host/x#part", {}),
        ("http://host/x", {"byte_range": (5, 5)}),
        ("http://host/x", {"source": Owner("s", "http://host/", {"range": "bytes=0-1"})}),
        ("http://host/x", {"source": Owner("s", "http://host/y/")}),  # not under its base URL
    ):
        with pytest.raises(InputError):
            cache.fetch(url, **kwargs)
    assert cache.entries() == [] and stored(cache) == {}


@dataclass(frozen=True)
class Owner:
    """Whom a fetch is for (a CacheSource): a name, headers, and the URLs under `base`."""

    name: str
    base: str
    headers: dict[str, str] = field(default_factory=dict)

    def owns(self, url: str) -> bool:
        return url.startswith(self.base)


def test_entries_are_kept_per_source_with_its_own_headers(make_cache, upstream):
    cache = make_cache()
    data = upstream.put("shared/a.bin", 100)
    url = upstream.url("shared/a.bin")
    closed = Owner("closed", upstream.url("shared/"), {"X-Key": "right"})
    public = Owner("public", upstream.url("shared/"), {"X-Key": "wrong"})
    assert not cache.fetch(url, source=closed).hit and cache.fetch(url, source=closed).hit
    assert not cache.fetch(url, source=public).hit  # the same URL: not served from the closed source's entry
    assert not cache.fetch(url, byte_range=(0, 10), source=public).hit and not cache.fetch(url).hit
    assert [h.get("X-Key") for _, h in upstream.sent] == ["right", "wrong", "wrong", None]
    assert not [h for _, h in upstream.sent if "Cookie" in h]  # the upstream's cookie was never sent back
    entries = {e.key: e.to_dict()["source"] for e in cache.entries()}
    assert entries == {
        f"source:closed|{url}": "closed",
        f"source:public|{url}": "public",
        f"source:public|{url}#bytes=0-9": "public",
        url: None,
    }
    assert cache_key(url, (0, 10), "public") in entries and cache.fetch(url, source=closed).data == data
    assert cache.purge(prefix="source:public|") == 2 and cache.stats().entries == 2


def test_redirects_are_followed_only_within_the_source(make_cache, upstream):
    cache = make_cache()
    data = upstream.put("own/data", 100)
    upstream.put("elsewhere/data", 50)
    owner = Owner("own", upstream.url("own/"), {"X-Key": "right"})
    for name, location in (
        ("own/hop", "/own/data"),
        ("own/out", "/elsewhere/data"),
        ("own/port", f"http://127.0.0.1:{free_port()}/own/data"),
        ("own/loop", "/own/loop"),
        ("free/hop", "/elsewhere/data"),
    ):
        upstream.faults[name] = f"redirect:{location}"
    found = cache.fetch(upstream.url("own/hop"), source=owner)
    assert found.data == data and found.key == f"source:own|{upstream.url('own/hop')}"
    for name, message in (("own/out", "outside the base URL"), ("own/port", "outside the base URL")):
        with pytest.raises(UnavailableError, match=message):
            cache.fetch(upstream.url(name), source=owner)
    with pytest.raises(UnavailableError, match="more than 3 redirects"):
        cache.fetch(upstream.url("own/loop"), source=owner)
    assert upstream.requests["own/loop"] == 4 and upstream.requests["elsewhere/data"] == 0
    assert len(cache.fetch(upstream.url("free/hop")).data) == 50  # no source, no headers: followed
    assert [h.get("X-Key") for n, h in upstream.sent if n == "elsewhere/data"] == [None]


def test_purge_by_prefix_expired_and_everything(make_cache, upstream):
    clock = Clock()
    cache = make_cache(clock, ttl_seconds=60)
    for name in ("x/1", "x/2", "y/1", "y/2"):
        upstream.put(name, 100)
        cache.fetch(upstream.url(name))
    cache.pin(upstream.url("y/2"))
    with pytest.raises(InputError, match="say what to purge"):
        cache.purge()
    assert cache.purge(prefix=upstream.url("x/")) == 2
    assert cache.purge(prefix="http://other%host_/") == 0  # LIKE wildcards are taken literally
    clock.advance(61)
    assert cache.purge(expired=True) == 1 and [e.key for e in cache.entries()] == [upstream.url("y/2")]
    assert cache.purge(everything=True) == 0
    assert cache.purge(everything=True, include_pinned=True) == 1
    assert cache.stats().used_bytes == 0 and stored(cache) == {}


def test_cache_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CUBEPORT_CACHE__QUOTA_BYTES", "5000")
    monkeypatch.setenv("CUBEPORT_CACHE__TTL_SECONDS", "60")
    settings = load_settings(data_root=str(tmp_path))
    assert settings.cache.quota_bytes == 5000 and settings.cache.ttl_seconds == 60
    assert settings.cache.high_watermark == 0.9 and settings.cache.low_watermark == 0.7
    monkeypatch.setenv("CUBEPORT_CACHE__LOW_WATERMARK", "0.95")
    with pytest.raises(Exception, match="low_watermark must be below"):
        load_settings(data_root=str(tmp_path))


# -- the admin routes and the CLI, on a Context over a local or S3 data root ------------------------------


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def env(request, tmp_path, monkeypatch, upstream) -> dict[str, str]:
    """Settings (as environment variables, also set here) for a data root on a local folder or S3."""
    upstream.reset()
    values = {
        "CUBEPORT_DATABASE_URL": f"sqlite:///{tmp_path / 'cubeport.db'}",
        "CUBEPORT_CACHE__QUOTA_BYTES": "100000",
    }
    if request.param == "local":
        values["CUBEPORT_DATA_ROOT"] = str(tmp_path / "root")
    else:
        values.update(request.getfixturevalue("s3_server").env(f"t-{uuid.uuid4().hex[:10]}"))
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_admin_routes_report_purge_and_pin(env, upstream):
    from fastapi.testclient import TestClient

    from cubeport.api.app import create_app

    context = Context(load_settings())
    context.auth.directory.create_user("root", role="admin")
    context.auth.directory.create_user("mia", role="viewer")
    admin = {"X-API-Key": context.auth.create_key("root")[1]}
    viewer = {"X-API-Key": context.auth.create_key("mia")[1]}
    for name, size in (("a", 1000), ("b", 2000)):
        upstream.put(name, size)
        context.cache.fetch(upstream.url(name))
    context.cache.fetch(upstream.url("a"))
    context.cache.fetch(upstream.url("b"), byte_range=(0, 10))
    key = cache_key(upstream.url("b"), (0, 10))
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        assert client.get("/admin/cache").status_code == 401
        assert client.get("/admin/cache", headers=viewer).status_code == 403
        stats = client.get("/admin/cache", headers=admin).json()
        assert stats == {**context.cache.stats().to_dict()}
        assert (
            stats["quota_bytes"],
            stats["used_bytes"],
            stats["entries"],
            stats["hits"],
            stats["misses"],
        ) == (100_000, 3010, 3, 1, 3)
        assert (stats["bytes_fetched"], stats["bytes_served"], stats["evictions"]) == (3010, 4010, 0)
        assert stats["hit_ratio"] == 0.25 and (stats["high_watermark"], stats["low_watermark"]) == (0.9, 0.7)
        entries = client.get("/admin/cache/entries", headers=admin).json()["entries"]
        assert [e["key"] for e in entries] == [key, upstream.url("a"), upstream.url("b")]
        assert entries[0]["byte_range"] == [0, 10] and entries[1]["hits"] == 1
        prefixed = client.get("/admin/cache/entries", headers=admin, params={"prefix": upstream.url("b")})
        assert len(prefixed.json()["entries"]) == 2
        pinned = client.put(f"/admin/cache/entries/{quote(key, safe='')}/pin", headers=admin)
        assert pinned.status_code == 200 and pinned.json()["pinned"] and pinned.json()["expires"] is None
        assert context.cache.entry(key).pinned
        assert (
            client.put(f"/admin/cache/entries/{quote(key, safe='')}/pin", headers=viewer).status_code == 403
        )
        missing = client.put("/admin/cache/entries/http%3A%2F%2Fnowhere%2Fx/pin", headers=admin)
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        assert "not found" in missing.json()["detail"]
        refused = client.post("/admin/cache/purge", headers=admin, json={})
        assert refused.status_code == 400 and "say what to purge" in refused.json()["detail"]
        purged = client.post("/admin/cache/purge", headers=admin, json={"prefix": upstream.url("b")})
        assert purged.json() == {"removed": 1}  # the pinned range stays
        assert client.post("/admin/cache/purge", headers=admin, json={"expired": True}).json() == {
            "removed": 0
        }
        unpinned = client.delete(f"/admin/cache/entries/{quote(key, safe='')}/pin", headers=admin)
        assert unpinned.status_code == 200 and not unpinned.json()["pinned"]
        assert client.post("/admin/cache/purge", headers=admin, json={"all": True}).json() == {"removed": 2}
        assert client.get("/admin/cache", headers=admin).json()["entries"] == 0
    context.close()


def test_cli_commands(env, upstream):
    from typer.testing import CliRunner

    from cubeport.cli import app

    data = upstream.put("cli.bin", 3000)
    url = upstream.url("cli.bin")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["cache", *args], prog_name="cubeport", env=env)
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.stdout

    assert "fetched" in run("fetch", url) and "hit" in run("fetch", url)
    assert "fetched" in run("fetch", url, "--range", "0-99", "--pin")
    stats = json.loads(run("stats", "--json"))
    assert (
        stats["entries"],
        stats["used_bytes"],
        stats["hits"],
        stats["misses"],
        stats["pinned_entries"],
    ) == (2, 3100, 1, 2, 1)
    assert "hit ratio 33.3%" in " ".join(run("stats").split())
    listed = json.loads(run("list", "--json"))
    assert [e["key"] for e in listed] == [f"{url}#bytes=0-99", url] and listed[0]["pinned"]
    assert "cli.bin" in run("list")
    assert "unpinned" in run("unpin", f"{url}#bytes=0-99") and "pinned" in run("pin", url)
    assert "removed 1 entry" in run("purge", "--prefix", url)  # the pinned whole object stays
    assert "removed 1 entry" in run("purge", "--all", "--include-pinned")
    assert "the cache is empty" in run("list")
    for command in ("stats", "list", "fetch", "purge", "pin", "unpin"):
        result = runner.invoke(app, ["cache", command, "--help"], prog_name="cubeport")
        assert result.exit_code == 0 and "Usage: cubeport cache" in result.output
    assert Context(load_settings()).cache.fetch(url).data == data


def test_cli_errors_are_domain_errors_and_one_line_with_a_nonzero_exit(tmp_path):
    from typer.testing import CliRunner

    from cubeport.cli import app

    root = str(tmp_path / "root")
    for args, message in (
        (("purge",), "say what to purge"),
        (("fetch", "http://h/x", "--range", "9-1"), "give FIRST-LAST byte offsets"),
        (("fetch", "ftp://h/x"), "fetches http(s) URLs"),
    ):
        result = CliRunner().invoke(app, ["cache", *args, "--data-root", root], prog_name="cubeport")
        assert isinstance(result.exception, InputError) and message in str(result.exception)
    # the entry point turns them into one line on stderr and exit code 2 (input) or 1 (remote failures)
    result = subprocess.run(
        [sys.executable, "-m", "cubeport", "cache", "pin", "http://nowhere/x", "--data-root", root],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )
    assert (
        result.returncode == 2
        and result.stderr == "cubeport: error: cache entry 'http://nowhere/x' not found\n"
    )


def test_the_index_and_counters_on_sqlite_and_postgresql(database, tmp_path, upstream):
    from cubeport.storage import Storage

    upstream.reset()
    cache = RollingCache(
        Storage(str(tmp_path / "root")), database, CacheSettings(quota_bytes=1000), clock=Clock()
    )
    for name in "abcd":
        upstream.put(name, 200)
        cache.fetch(upstream.url(name))
    assert (
        cache.fetch(upstream.url("a")).hit and cache.fetch(upstream.url("a"), byte_range=(0, 50)).size == 50
    )
    cache.pin(upstream.url("b"))
    upstream.put("e", 200)
    cache.fetch(upstream.url("e"))  # 1050 > 900: c, d go (650 <= 700); a was used, b is pinned
    assert sorted(e.key for e in cache.entries(upstream.url(""))) == [
        upstream.url("a"),
        upstream.url("a") + "#bytes=0-49",
        upstream.url("b"),
        upstream.url("e"),
    ]
    stats = cache.stats()
    assert (stats.used_bytes, stats.evictions, stats.hits, stats.misses, stats.pinned_bytes) == (
        650,
        2,
        1,
        6,
        200,
    )
    assert (
        cache.purge(prefix=upstream.url("a")) == 2 and cache.purge(everything=True, include_pinned=True) == 2
    )
    cache.close()
