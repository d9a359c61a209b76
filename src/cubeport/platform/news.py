"""News items of the platform (issue 23, "information dissemination"): admins post them, everyone reads them,
as JSON and as an Atom 1.0 feed (RFC 4287).

- **Text in, text out.** A body is Markdown or plain text and is stored and fed as it was written: the feed's
  `<content type="text">` makes a feed reader show it as text, never run it as HTML. ElementTree escapes `&`,
  `<` and `>`; characters XML 1.0 cannot carry at all (NUL, most C0 controls) are refused on input, since no
  escaping could put them in a feed that parses.
- **Links are web links.** An item's links must be http(s) URLs or paths on this server, so a page that shows
  them cannot be made to run `javascript:`.
- **Stable ids.** Feed and entry ids are tag URIs (RFC 4151) from the server's host name and a fixed date (the
  entry's: the day it was first posted), so editing an item updates the entry rather than making a new one.
"""

from __future__ import annotations

import builtins
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from cubeport.db import Database, as_utc
from cubeport.db.models import NewsRecord
from cubeport.errors import InputError, NotFoundError

MAX_TITLE_CHARS = 200
MAX_BODY_BYTES = 64 * 1024  # UTF-8 bytes
MAX_AUTHOR_CHARS = 128
MAX_LINKS = 20
MAX_HREF_CHARS = 2048
MAX_LIST = 500
ATOM = "http://www.w3.org/2005/Atom"
FEED_TAG_DATE = "2026"  # the tag URI date of the feed: fixed, so the feed's id never changes
# what XML 1.0 cannot represent (tab, newline and carriage return are allowed); also lone surrogates
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclass(frozen=True)
class NewsLink:
    """A link of an item: where to read more (documentation, a service, a data set)."""

    href: str
    title: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"href": self.href, "title": self.title}


@dataclass(frozen=True)
class NewsItem:
    id: int
    title: str
    body: str
    author: str
    created: datetime
    updated: datetime
    links: tuple[NewsLink, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "author": self.author,
            "created": rfc3339(self.created),
            "updated": rfc3339(self.updated),
            "links": [link.to_dict() for link in self.links],
        }


LinkInput = NewsLink | dict[str, str] | str


class News:
    """News items in the database: every API worker and the CLI see the same ones."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def post(self, title: str, body: str, author: str, links: Iterable[LinkInput] = ()) -> NewsItem:
        """Publish an item now; InputError names the field that is wrong."""
        record = NewsRecord(
            title=_title(title),
            body=_body(body),
            author=_author(author),
            links=[link.to_dict() for link in _links(links)],
        )
        now = datetime.now(UTC)
        record.created = record.updated = now
        with self.db.session() as session:
            session.add(record)
            session.flush()
            return _item(record)

    def update(
        self,
        item_id: int,
        *,
        title: str | None = None,
        body: str | None = None,
        links: Iterable[LinkInput] | None = None,
    ) -> NewsItem:
        """Change what is given (a feed reader sees the entry's new `updated` time); the rest stays."""
        values: dict[str, Any] = {}
        if title is not None:
            values["title"] = _title(title)
        if body is not None:
            values["body"] = _body(body)
        if links is not None:
            values["links"] = [link.to_dict() for link in _links(links)]
        with self.db.session() as session:
            record = session.get(NewsRecord, item_id)
            if record is None:
                raise _missing(item_id)
            for name, value in values.items():
                setattr(record, name, value)
            record.updated = datetime.now(UTC)
            session.flush()
            return _item(record)

    def delete(self, item_id: int) -> None:
        with self.db.session() as session:
            record = session.get(NewsRecord, item_id)
            if record is None:
                raise _missing(item_id)
            session.delete(record)

    def get(self, item_id: int) -> NewsItem:
        with self.db.session() as session:
            record = session.get(NewsRecord, item_id)
            if record is None:
                raise _missing(item_id)
            return _item(record)

    def list(self, limit: int = 20, before: datetime | None = None) -> builtins.list[NewsItem]:
        """The newest items first; `before` pages back (the `created` of the last item of the previous page)."""
        if not 1 <= limit <= MAX_LIST:
            raise InputError(f"limit: between 1 and {MAX_LIST}")
        query = select(NewsRecord).order_by(NewsRecord.created.desc(), NewsRecord.id.desc()).limit(limit)
        if before is not None:
            if before.tzinfo is None:
                raise InputError("before: a time with its offset (e.g. 2026-01-31T12:00:00Z)")
            query = query.where(NewsRecord.created < before.astimezone(UTC))
        with self.db.session() as session:
            return [_item(r) for r in session.scalars(query)]


def atom(
    base_url: str, items: Sequence[NewsItem], *, title: str = "Cubeport news", now: datetime | None = None
) -> bytes:
    """The items as an Atom 1.0 feed (UTF-8): `base_url` is the server's root as clients reach it, the feed is
    at `{base_url}/news.atom` and an item at `{base_url}/news/{id}`. An empty feed is `updated` `now`."""
    base = base_url.rstrip("/")
    host = urlsplit(base).hostname or "localhost"
    feed = ET.Element("feed", xmlns=ATOM)  # children unqualified: in Atom's namespace once parsed
    _text(feed, "id", f"tag:{host},{FEED_TAG_DATE}:news")
    _text(feed, "title", title, type="text")
    newest = max((i.updated for i in items), default=now or datetime.now(UTC))
    _text(feed, "updated", rfc3339(newest))
    ET.SubElement(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/news.atom")
    ET.SubElement(feed, "link", rel="alternate", type="text/html", href=f"{base}/")
    author = ET.SubElement(feed, "author")
    _text(author, "name", "Cubeport")
    _text(feed, "generator", "Cubeport")
    for item in items:
        entry = ET.SubElement(feed, "entry")
        _text(entry, "id", f"tag:{host},{item.created.astimezone(UTC):%Y-%m-%d}:news/{item.id}")
        _text(entry, "title", item.title, type="text")
        _text(entry, "published", rfc3339(item.created))
        _text(entry, "updated", rfc3339(item.updated))
        author = ET.SubElement(entry, "author")
        _text(author, "name", item.author)
        ET.SubElement(entry, "link", rel="alternate", type="application/json", href=f"{base}/news/{item.id}")
        for link in item.links:
            href = f"{base}{link.href}" if link.href.startswith("/") else link.href
            attributes = {"rel": "related", "href": href, **({"title": link.title} if link.title else {})}
            ET.SubElement(entry, "link", attributes)
        _text(entry, "content", item.body, type="text")
    feed_bytes: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return feed_bytes


def rfc3339(moment: datetime) -> str:
    """A time as RFC 3339 in UTC with a Z, to the second (what feed readers expect)."""
    return as_utc(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def _missing(item_id: int) -> NotFoundError:
    return NotFoundError(f"news item {item_id} not found")


def _xml_safe(name: str, text: str) -> str:
    if (found := _NOT_XML.search(text)) is not None:
        raise InputError(f"{name}: character U+{ord(found.group()):04X} cannot be published (XML forbids it)")
    return text


def _title(title: str) -> str:
    title = " ".join(title.split())  # one line: a feed reader shows titles on one
    if not title:
        raise InputError("title: give a title")
    if len(title) > MAX_TITLE_CHARS:
        raise InputError(f"title: at most {MAX_TITLE_CHARS} characters, not {len(title)}")
    return _xml_safe("title", title)


def _body(body: str) -> str:
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise InputError(f"body: at most {MAX_BODY_BYTES // 1024} KiB of UTF-8 text, not {size} bytes")
    return _xml_safe("body", body)


def _author(author: str) -> str:
    author = author.strip()
    if not author or len(author) > MAX_AUTHOR_CHARS:
        raise InputError(f"author: a name of 1 to {MAX_AUTHOR_CHARS} characters")
    return _xml_safe("author", author)


def _links(links: Iterable[LinkInput]) -> list[NewsLink]:
    found = [_link(link) for link in links]
    if len(found) > MAX_LINKS:
        raise InputError(f"links: at most {MAX_LINKS}, not {len(found)}")
    return found


def _link(link: LinkInput) -> NewsLink:
    if isinstance(link, str):
        link = NewsLink(link)
    elif isinstance(link, dict):
        if not isinstance(link.get("href"), str) or not isinstance(link.get("title", ""), str):
            raise InputError("links: each is {href, title} with text values")
        link = NewsLink(link["href"], link.get("title", ""))
    href, title = link.href.strip(), " ".join(link.title.split())
    if len(href) > MAX_HREF_CHARS or len(title) > MAX_TITLE_CHARS:
        raise InputError(f"links: href at most {MAX_HREF_CHARS} characters, title at most {MAX_TITLE_CHARS}")
    try:
        parts = urlsplit(href)
    except ValueError:
        raise InputError(f"links: {href!r} is not a URL") from None
    web = parts.scheme in ("http", "https") and bool(parts.netloc)
    local = href.startswith("/") and not href.startswith("//") and not parts.scheme
    if not (web or local) or any(c.isspace() for c in href):
        raise InputError(f"links: {href!r} is neither an http(s) URL nor a path on this server (/...)")
    return NewsLink(_xml_safe("links", href), _xml_safe("links", title))


def _item(record: NewsRecord) -> NewsItem:
    return NewsItem(
        id=record.id,
        title=record.title,
        body=record.body,
        author=record.author,
        created=as_utc(record.created),
        updated=as_utc(record.updated),
        links=tuple(NewsLink(link["href"], link.get("title", "")) for link in record.links or []),
    )
