"""News items (issue 23): the core on SQLite and PostgreSQL, the Atom feed read back by a parser, the HTTP
routes with real keys (public reads, admin writes), and `cubeport news`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from cubeport.cli import app as cli_app
from cubeport.config import load_settings
from cubeport.context import Context
from cubeport.errors import CubeportError, InputError, NotFoundError
from cubeport.platform.news import ATOM, MAX_BODY_BYTES, News, atom

A = f"{{{ATOM}}}"
NASTY = "<script>alert('x')</script> & Co </content><b>"


def test_post_list_update_delete(database):
    news = News(database)
    first = news.post(
        "Sea ice charts", "Daily *charts* of the Baltic.", "ada", links=["https://example.org/ice"]
    )
    second = news.post(
        "  New   cube  ", "", "ada", links=[{"href": "/viewer/index.html", "title": "the viewer"}]
    )
    assert second.title == "New cube" and second.body == ""
    assert [i.id for i in news.list()] == [second.id, first.id]
    assert [i.id for i in news.list(limit=1)] == [second.id]
    assert [i.id for i in news.list(before=second.created)] == [first.id]  # the next page
    assert news.get(first.id).links[0].href == "https://example.org/ice"

    edited = news.update(first.id, body="Daily charts, now at 40 m.")
    assert (edited.title, edited.body, edited.created) == (
        "Sea ice charts",
        "Daily charts, now at 40 m.",
        first.created,
    )
    assert edited.updated > first.updated and news.get(first.id).links == first.links  # unchanged: kept
    assert news.update(first.id, links=[]).links == ()

    news.delete(first.id)
    assert [i.id for i in news.list()] == [second.id]
    for call in (
        lambda: news.get(first.id),
        lambda: news.delete(first.id),
        lambda: news.update(first.id, title="x"),
    ):
        with pytest.raises(NotFoundError, match=f"news item {first.id} not found"):
            call()


def test_limits_refuse_and_change_nothing(database):
    news = News(database)
    item = news.post("t" * 200, "b" * MAX_BODY_BYTES, "ada")  # exactly at the limits
    refused = {
        "title: at most 200": lambda: news.post("t" * 201, "", "ada"),
        "title: give a title": lambda: news.post(" \n ", "body", "ada"),
        "body: at most 64 KiB": lambda: news.post("t", "é" * (MAX_BODY_BYTES // 2 + 1), "ada"),  # bytes count
        "body: character U\\+0000": lambda: news.post("t", "a\x00b", "ada"),
        "title: character U\\+001B": lambda: news.post("a\x1bb", "", "ada"),
        "links: 'javascript:alert\\(1\\)' is neither": lambda: news.post(
            "t", "", "ada", ["javascript:alert(1)"]
        ),
        "links: '//evil.example/x' is neither": lambda: news.post("t", "", "ada", ["//evil.example/x"]),
        "links: at most 20": lambda: news.post("t", "", "ada", ["https://a.example/"] * 21),
        "author": lambda: news.post("t", "", " "),
        "limit: between 1 and 500": lambda: news.list(limit=0),
        "before: a time with its offset": lambda: news.list(before=datetime(2026, 1, 1)),
        "body: at most": lambda: news.update(item.id, body="x" * (MAX_BODY_BYTES + 1)),
    }
    for message, call in refused.items():
        with pytest.raises(InputError, match=message):
            call()
    assert [(i.id, i.title, len(i.body)) for i in news.list()] == [(item.id, "t" * 200, MAX_BODY_BYTES)]


def test_atom_feed_parses_validates_and_escapes(database):
    news = News(database)
    plain = news.post("Processes", "Run *NDVI* on a cube.", "ada", links=["/api.html"])
    nasty = news.post(
        NASTY,
        NASTY + "\n\nline two",
        "bob & <eve>",
        links=[{"href": "https://x.example/?a=1&b=<2>", "title": NASTY}],
    )
    news.update(plain.id, title="Processes, edited")
    feed_bytes = atom("https://cubeport.example:8443/", news.list())
    assert feed_bytes.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert b"<script>" not in feed_bytes and b"&lt;script&gt;" in feed_bytes and b"&amp; Co" in feed_bytes
    feed = ET.fromstring(feed_bytes)

    assert feed.tag == f"{A}feed"
    assert feed.findtext(f"{A}id") == "tag:cubeport.example,2026:news"
    assert feed.findtext(f"{A}title") == "Cubeport news"
    self_link = feed.find(f"{A}link[@rel='self']")
    assert self_link is not None and self_link.get("href") == "https://cubeport.example:8443/news.atom"
    assert feed.find(f"{A}author/{A}name") is not None
    entries = feed.findall(f"{A}entry")
    assert len(entries) == 2
    items = {i.id: i for i in news.list()}
    ids = set()
    for entry in entries:
        for tag in ("id", "title", "updated", "published", "content", "author/" + A + "name"):
            assert entry.find(A + tag) is not None, tag
        ids.add(entry.findtext(f"{A}id"))
        item_id = int(entry.findtext(f"{A}id").rsplit("/", 1)[1])
        item = items[item_id]
        # the text survives the round trip exactly, as text (not HTML)
        assert entry.findtext(f"{A}title") == item.title and entry.findtext(f"{A}content") == item.body
        assert (
            entry.find(f"{A}content").get("type") == "text" and entry.find(f"{A}title").get("type") == "text"
        )
        assert entry.findtext(f"{A}author/{A}name") == item.author
        alternate = entry.find(f"{A}link[@rel='alternate']")
        assert alternate.get("href") == f"https://cubeport.example:8443/news/{item_id}"
        for moment, tag in ((item.updated, "updated"), (item.created, "published")):  # RFC 3339, UTC
            text = entry.findtext(f"{A}{tag}")
            assert text.endswith("Z") and datetime.fromisoformat(text) == moment.replace(microsecond=0)
    assert len(ids) == 2 and all(i.startswith("tag:cubeport.example,20") for i in ids)
    assert feed.findtext(f"{A}updated") == max(e.findtext(f"{A}updated") for e in entries)
    related = {e.find(f"{A}link[@rel='related']").get("href") for e in entries}
    assert related == {"https://cubeport.example:8443/api.html", "https://x.example/?a=1&b=<2>"}
    assert entries[0].find(f"{A}link[@rel='related']").get("title") == NASTY  # newest first: the nasty one
    assert nasty.id == int(entries[0].findtext(f"{A}id").rsplit("/", 1)[1])

    empty = ET.fromstring(atom("http://localhost:8000", [], now=datetime(2026, 3, 1, tzinfo=UTC)))
    assert empty.findtext(f"{A}updated") == "2026-03-01T00:00:00Z" and not empty.findall(f"{A}entry")


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    context = Context(load_settings(data_root=str(tmp_path_factory.mktemp("news"))))
    directory = context.auth.directory
    directory.create_user("root", role="admin")
    directory.create_user("mia", role="editor")
    yield context
    context.close()


@pytest.fixture(scope="module")
def keys(context):
    return {name: context.auth.create_key(name)[1] for name in ("root", "mia")}


def test_http_routes(client, keys):
    admin, editor = {"X-API-Key": keys["root"]}, {"X-API-Key": keys["mia"]}
    item = {"title": NASTY, "body": "**Markdown** & text", "links": [{"href": "https://docs.example/"}]}
    assert client.post("/news", json=item).status_code == 401
    assert client.post("/news", json=item, headers=editor).status_code == 403
    posted = client.post("/news", json=item, headers=admin)
    assert posted.status_code == 201, posted.text
    made = posted.json()
    assert made["author"] == "root" and made["title"] == NASTY and made["created"].endswith("Z")
    item_id = made["id"]
    second = client.post("/news", json={"title": "Second"}, headers=admin).json()

    listed = client.get("/news", params={"limit": 1})  # anonymous: public
    assert listed.status_code == 200 and "public" in listed.headers["cache-control"]
    assert [i["id"] for i in listed.json()["items"]] == [second["id"]]
    following = next(link["href"] for link in listed.json()["links"] if link["rel"] == "next")
    assert [i["id"] for i in client.get(following).json()["items"]] == [item_id]
    assert client.get(f"/news/{item_id}").json()["body"] == "**Markdown** & text"

    feed = client.get("/news.atom")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml")
    entries = ET.fromstring(feed.content).findall(f"{A}entry")
    assert [e.findtext(f"{A}title") for e in entries] == ["Second", NASTY]
    assert b"<script>" not in feed.content

    for method in ("put", "delete"):
        assert client.request(method, f"/news/{item_id}", json=item).status_code == 401
        assert client.request(method, f"/news/{item_id}", json=item, headers=editor).status_code == 403
    edited = client.put(f"/news/{item_id}", json={"title": "Edited"}, headers=admin)
    assert edited.status_code == 200 and (edited.json()["body"], edited.json()["links"]) == (
        "",
        [],
    )  # replaced

    too_long = client.post("/news", json={"title": "t" * 201}, headers=admin)
    assert too_long.status_code == 400 and "title: at most 200" in too_long.json()["detail"]
    bad_link = client.put(
        f"/news/{item_id}", json={"title": "x", "links": [{"href": "javascript:x"}]}, headers=admin
    )
    assert bad_link.status_code == 400 and client.get(f"/news/{item_id}").json()["title"] == "Edited"
    assert client.post("/news", json={"body": "no title"}, headers=admin).status_code == 422

    assert client.delete(f"/news/{item_id}", headers=admin).status_code == 204
    assert client.get(f"/news/{item_id}").status_code == 404
    assert client.delete(f"/news/{item_id}", headers=admin).status_code == 404
    assert client.get("/news", params={"before": "yesterday"}).status_code == 422


def test_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("CUBEPORT_DATA_ROOT", str(tmp_path / "root"))
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli_app, ["news", *args], prog_name="cubeport")
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    body = tmp_path / "body.md"
    body.write_text("# Hello\n\nFirst [light] & more.", encoding="utf-8")
    assert "posted news item 1: Hello [world]" in run(
        "post", "Hello [world]", "--body-file", str(body), "--author", "ops"
    )
    posted = json.loads(
        run(
            "post",
            "Second",
            "--body",
            "text",
            "--link",
            "https://docs.example/ The docs",
            "--link",
            "/api",
            "--json",
        )
    )
    assert posted["links"] == [
        {"href": "https://docs.example/", "title": "The docs"},
        {"href": "/api", "title": ""},
    ]
    listed = json.loads(run("list", "--json"))
    assert [(i["id"], i["title"], i["author"]) for i in listed] == [
        (2, "Second", posted["author"]),
        (1, "Hello [world]", "ops"),
    ]
    assert listed[1]["body"] == "# Hello\n\nFirst [light] & more."
    assert "Hello [world]" in run("list")
    assert "removed news item 1" in run("remove", "1")
    assert [i["id"] for i in json.loads(run("list", "--json"))] == [2]

    for args, error in (
        (("remove", "1"), NotFoundError),
        (("post", "x" * 201), InputError),
        (("post", "t", "--link", "file:///etc/passwd"), InputError),
        (("post", "t", "--body", "a", "--body-file", str(body)), InputError),
    ):
        result = runner.invoke(cli_app, ["news", *args], prog_name="cubeport")
        assert isinstance(result.exception, error), (args, result.output, result.exception)
        assert isinstance(result.exception, CubeportError)
