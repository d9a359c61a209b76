"""Stored source credentials are lent to nobody: the asset proxy and the federated search send a source's
headers only to URLs under its base URL (no other path, host or port, no redirect out of it), paging tokens
are signed by the server, cache entries are kept per source, and a hidden source answers like a missing one.

The remote STAC APIs are real HTTP servers on 127.0.0.1 (two ports), which record every request they get."""

from __future__ import annotations

import base64
import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cubeport.api.app import create_app
from cubeport.cli import app as cli
from cubeport.config import load_settings
from cubeport.context import Context
from cubeport.stac.federation import Source

KEY = "X-Source-Key"
PRIVATE = b"only for the closed source's key"


class Remote:
    """A STAC API under /stac on its own port: /stac/search (3 items, `limit` a page, next links by ?page=),
    assets under /stac/assets/ (those under /stac/private/ only with header X-Source-Key: right), /admin/...
    outside the API, and /stac/redirect?to=URL (302). It records (method, path, headers) of every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.next_href: str | None = None  # a next link of its own choosing (a misbehaving remote)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self) -> list[str]:
        with self.lock:
            return [path for _, path, _ in self.seen]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._route()

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._route()

            def _route(self) -> None:
                with remote.lock:
                    remote.seen.append((self.command, self.path, dict(self.headers)))
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if parts.path == "/stac/search":
                    self._search(int(query.get("page", ["0"])[0]))
                elif parts.path == "/stac/redirect":
                    self._send(302, b"", {"Location": query["to"][0]})
                elif parts.path.startswith("/stac/private/"):
                    allowed = self.headers.get(KEY) == "right"
                    self._send(200 if allowed else 403, PRIVATE if allowed else b"no")
                else:  # anything else (assets, /admin/...): its path, so a test sees what it reached
                    self._send(200, parts.path.encode())

            def _search(self, page: int) -> None:
                base = remote.url
                items = [
                    {
                        "type": "Feature",
                        "stac_version": "1.0.0",
                        "id": f"r{n}",
                        "collection": "remote",
                        "geometry": None,
                        "properties": {"datetime": "2024-05-01T00:00:00Z"},
                        "links": [{"rel": "self", "href": f"{base}/stac/items/r{n}"}],
                        "assets": {"data": {"href": f"{base}/stac/assets/r{n}.bin"}},
                    }
                    for n in range(3)
                ][page : page + 1]
                links = []
                if page < 2:
                    href = remote.next_href or f"{base}/stac/search?page={page + 1}"
                    links.append({"rel": "next", "href": href, "method": "GET"})
                body = {"type": "FeatureCollection", "features": items, "links": links}
                self._send(200, json.dumps(body).encode(), {"Content-Type": "application/geo+json"})

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in {**(headers or {}), "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture(scope="module")
def remotes() -> Iterator[tuple[Remote, Remote]]:
    """The source's own server, and another one (another port) that must never be reached."""
    own, other = Remote(), Remote()
    yield own, other
    own.stop()
    other.stop()


@pytest.fixture
def site(tmp_path, remotes) -> Iterator[tuple[TestClient, Context, dict[str, dict[str, str]]]]:
    """An app with two sources on the same remote: `open` (public, a wrong key) and `closed` (group team only,
    the right key); mia is in team, an admin runs the cache. Yields the client, the context and headers."""
    own, other = remotes
    with own.lock, other.lock:
        own.seen.clear()
        other.seen.clear()
        own.next_href = None
    context = Context(load_settings(data_root=str(tmp_path / "root")))
    context.stac_sources.add(Source("open", f"{own.url}/stac", headers={KEY: "wrong"}))
    context.stac_sources.add(Source("closed", f"{own.url}/stac", headers={KEY: "right"}))
    context.policy.set_access("service", "stac-source:closed", public=False, groups=["team"])
    directory = context.auth.directory
    directory.create_user("mia")
    directory.create_group("team")
    directory.add_member("team", "mia")
    directory.create_user("root", role="admin")
    keys = {
        "mia": {"X-API-Key": context.auth.create_key("mia")[1]},
        "admin": {"X-API-Key": context.auth.create_key("root")[1]},
        "anonymous": {},
    }
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        yield client, context, keys
    context.close()


def proxy(client: TestClient, source: str, href: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return client.get(f"/stac/sources/{source}/proxy", params={"href": href}, headers=headers or {})


def sent_key(remote: Remote, path_start: str) -> list[str | None]:
    """The source key header of every request `remote` got for paths starting so."""
    with remote.lock:
        return [h.get(KEY) for _, path, h in remote.seen if path.startswith(path_start)]


# -- the asset proxy -------------------------------------------------------------------------------------


def test_the_proxy_fetches_only_under_the_source_base_url(site, remotes):
    client, _, _ = site
    own, other = remotes
    host, port = own.url.removeprefix("http://").split(":")
    fetched = proxy(client, "open", f"{own.url}/stac/assets/a.bin")
    assert fetched.status_code == 200 and fetched.content == b"/stac/assets/a.bin"
    for href in (
        f"{own.url}/admin/secret",  # same origin, outside the API
        f"{own.url}/stacked/secret",  # a longer name, not a path under /stac
        f"{own.url}/stac/../admin/secret",  # httpx would send /admin/secret
        f"{own.url}/stac/./../admin/secret",
        f"{own.url}/stac/%2e%2e/admin/secret",  # encoded traversal
        f"{own.url}/stac/%2E%2E%2Fadmin%2Fsecret",
        f"{own.url}/stac/..%2fadmin/secret",
        f"{own.url}/stac/..;/admin/secret",  # a dot segment with a parameter (Tomcat)
        f"{own.url}/stac\\..\\admin/secret",
        f"http://user:pw@{host}:{port}/stac/assets/a.bin",  # user info
        f"http://{host}:{port}@{other.url.removeprefix('http://')}/stac/assets/a.bin",
        f"http://localhost:{port}/stac/assets/a.bin",  # another host name
        f"{other.url}/stac/assets/a.bin",  # another port
        f"https://{host}:{port}/stac/assets/a.bin",  # another scheme
        f"{own.url}/stac/assets/a.bin\r\nX-Injected: 1",
    ):
        refused = proxy(client, "open", href)
        assert refused.status_code == 400, (href, refused.status_code, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    assert not [p for p in own.paths() if not p.startswith("/stac/assets/a.bin")], own.paths()
    assert other.paths() == []


def test_redirects_stay_under_the_base_url_and_never_carry_the_key_elsewhere(site, remotes):
    client, _, _ = site
    own, other = remotes
    inside = proxy(client, "open", f"{own.url}/stac/redirect?to={quote('/stac/assets/moved.bin')}")
    assert inside.status_code == 200 and inside.content == b"/stac/assets/moved.bin"
    for target in (f"{other.url}/steal", f"{own.url}/admin/secret", "/stac/../admin/secret"):
        refused = proxy(
            client, "closed", f"{own.url}/stac/redirect?to={quote(target, safe='')}", site[2]["mia"]
        )
        assert refused.status_code == 503, (target, refused.text)
        assert "redirect" in refused.json()["detail"]
    loop = f"{own.url}/stac/redirect?to={quote(f'{own.url}/stac/redirect?to=/stac/x', safe='')}"
    assert proxy(client, "open", loop).status_code == 200  # two hops under the base are fine
    endless = f"{own.url}/stac/redirect?to=%2Fstac%2Fredirect%3Fto%3D%252Fstac%252Fredirect%253Fto%253D"
    assert proxy(client, "open", endless).status_code == 503
    assert other.paths() == [] and sent_key(own, "/admin") == []


def test_the_cache_keeps_entries_per_source(site, remotes):
    client, context, keys = site
    own, _ = remotes
    href = f"{own.url}/stac/private/scene.tif"
    first = proxy(client, "closed", href, keys["mia"])
    assert first.status_code == 200 and first.content == PRIVATE and first.headers["x-cache"] == "miss"
    assert proxy(client, "closed", href, keys["mia"]).headers["x-cache"] == "hit"
    # the same URL through the public source: its own entry, fetched with its own (wrong) key, refused
    leaked = proxy(client, "open", href)
    assert leaked.status_code == 503 and PRIVATE not in leaked.content
    assert sent_key(own, "/stac/private/") == ["right", "wrong"]
    assert proxy(client, "closed", href).status_code == 404  # anonymous: the closed source is not there
    assert [e.key for e in context.cache.entries()] == [f"source:closed|{href}"]

    # the admin route and the CLI list, find by prefix and pin the per-source keys
    admin = keys["admin"]
    listed = client.get("/admin/cache/entries", params={"prefix": "source:closed|"}, headers=admin).json()
    assert [(e["key"], e["source"], e["url"]) for e in listed["entries"]] == [
        (f"source:closed|{href}", "closed", href)
    ]
    key = quote(f"source:closed|{href}", safe="")
    assert client.put(f"/admin/cache/entries/{key}/pin", headers=admin).json()["pinned"]
    root = ["--data-root", context.settings.data_root]
    shown = CliRunner().invoke(cli, ["cache", "list", "--json", *root], prog_name="cubeport")
    assert json.loads(shown.stdout)[0]["key"] == f"source:closed|{href}", shown.output
    warmed = CliRunner().invoke(
        cli,
        ["cache", "fetch", f"{own.url}/stac/assets/w.bin", "--source", "open", *root],
        prog_name="cubeport",
    )
    assert warmed.exit_code == 0 and f"source:open|{own.url}/stac/assets/w.bin" in warmed.stdout, (
        warmed.output
    )
    assert proxy(client, "open", f"{own.url}/stac/assets/w.bin").headers["x-cache"] == "hit"
    outside = CliRunner().invoke(
        cli, ["cache", "fetch", f"{own.url}/admin/x", "--source", "open", *root], prog_name="cubeport"
    )
    assert outside.exit_code != 0 and "/admin" not in "".join(own.paths())


# -- federated search ------------------------------------------------------------------------------------


def next_body(page: dict) -> dict | None:
    return next((link["body"] for link in page.get("links", []) if link["rel"] == "next"), None)


def test_federated_pages_follow_signed_tokens_only(site, remotes):
    client, _, keys = site
    own, _ = remotes
    body: dict | None = {"sources": ["closed"], "limit": 1}
    ids = []
    while body is not None:
        page = client.post("/stac/search", json=body, headers=keys["mia"]).json()
        assert "warnings" not in page, page
        ids += [i["id"] for i in page["features"]]
        body = next_body(page)
    assert ids == ["r0", "r1", "r2"] and set(sent_key(own, "/stac/search")) == {"right"}

    first = client.post("/stac/search", json={"sources": ["closed"], "limit": 1}, headers=keys["mia"])
    token = next_body(first.json())["token"]
    payload, _, signature = token.partition(".")
    state = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    requests_before = len(own.paths())
    for href in (f"{own.url}/admin/secret", f"{own.url}/stac/search?page=0"):
        state["closed"] = {"page": {"href": href, "method": "POST", "body": {"evil": True}}, "skip": 0}
        forged = base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
        for sent in (forged, f"{forged}.{signature}", f"{payload}.{'A' * len(signature)}", f"{payload}."):
            answer = client.post(
                "/stac/search", json={"sources": ["closed"], "limit": 1, "token": sent}, headers=keys["mia"]
            )
            assert answer.status_code == 400 and "token" in answer.json()["detail"], answer.text
    assert len(own.paths()) == requests_before and sent_key(own, "/admin") == []
    following = client.post(
        "/stac/search", json={"sources": ["closed"], "limit": 1, "token": token}, headers=keys["mia"]
    )
    assert [i["id"] for i in following.json()["features"]] == ["r1"]  # the genuine token still works


def test_a_next_link_that_leaves_the_base_url_is_not_followed(site, remotes):
    client, _, _ = site
    own, other = remotes
    for outside in (f"{own.url}/admin/next", f"{other.url}/stac/search", f"{own.url}/stac/../admin/next"):
        own.next_href = outside
        page = client.post("/stac/search", json={"sources": ["open"], "limit": 1}).json()
        body = next_body(page)
        while body is not None and "warnings" not in page:
            page = client.post("/stac/search", json=body).json()
            body = next_body(page)
        assert [w["source"] for w in page["warnings"]] == ["open"] and "next link" in str(page["warnings"])
    assert other.paths() == [] and sent_key(own, "/admin") == []


def test_tokens_hold_across_workers_sharing_a_secret(tmp_path, remotes, monkeypatch):
    own, _ = remotes
    own.next_href = None
    root = str(tmp_path / "root")
    monkeypatch.delenv("CUBEPORT_SECRET_KEY", raising=False)

    def search(token: str | None = None) -> dict:
        """One page of a search on a new worker (its own Context on the same data root and database)."""
        context = Context(load_settings(data_root=root))
        try:
            client = TestClient(create_app(context), raise_server_exceptions=False)
            body = {"sources": ["open"], "limit": 1, **({"token": token} if token else {})}
            answer = client.post("/stac/search", json=body)
            assert "warnings" not in answer.text, answer.text
            return {"status": answer.status_code, "token": (next_body(answer.json()) or {}).get("token")}
        finally:
            context.close()

    setup = Context(load_settings(data_root=root))
    setup.stac_sources.add(Source("open", f"{own.url}/stac"))
    setup.close()
    generated = search()["token"]
    assert search(generated)["status"] == 200  # another worker, the same generated secret
    kept = [p for p in Path(root).rglob("*") if p.is_file() and "secret" in p.name]
    assert len(kept) == 1 and stat.S_IMODE(kept[0].stat().st_mode) == 0o600, kept

    monkeypatch.setenv("CUBEPORT_SECRET_KEY", "a configured secret, long enough")
    assert search(generated)["status"] == 400  # signed with the generated secret, not the configured one
    configured = search()["token"]
    assert search(configured)["status"] == 200
    monkeypatch.setenv("CUBEPORT_SECRET_KEY", "another configured secret, as long")
    assert search(configured)["status"] == 400
    monkeypatch.setenv("CUBEPORT_SECRET_KEY", "short")
    with pytest.raises(Exception, match="secret_key"):
        load_settings(data_root=root)


# -- a hidden source answers like a missing one -----------------------------------------------------------


def test_a_hidden_source_answers_exactly_like_a_missing_one(site, remotes):
    client, _, keys = site
    own, _ = remotes

    def answers(name: str, headers: dict[str, str]) -> list[tuple[int, str]]:
        found = [
            client.get("/stac/search", params={"sources": name}, headers=headers),
            client.post("/stac/search", json={"sources": ["local", name]}, headers=headers),
            proxy(client, name, f"{own.url}/stac/assets/a.bin", headers),
        ]
        return [(r.status_code, r.text.replace(name, "{name}")) for r in found]

    hidden, missing = answers("closed", {}), answers("nothere", {})
    assert hidden == missing and all(status == 404 for status, _ in hidden), (hidden, missing)
    assert not any("open" in text or "local" in text for _, text in hidden)  # no list of other sources
    assert [status for status, _ in answers("closed", keys["mia"])] == [200, 200, 200]


def test_the_secret_is_generated_once_for_every_worker(storage):
    from cubeport.platform.secret_key import server_secret

    results: list[bytes] = []
    start = threading.Barrier(8)

    def read() -> None:
        start.wait()
        results.append(server_secret(None, storage))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1 and len(results[0]) >= 32
    assert server_secret(None, storage) == results[0]  # kept
    files = storage.fs.find(storage.path())
    assert len(files) == 1, files  # no temporary file left behind
