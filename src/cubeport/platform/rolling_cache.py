"""The rolling cache ("DCMS"): remote data, whole objects or byte ranges over HTTP(S), kept in the platform's
storage (a local folder or S3) under a quota, so that reading the same source again costs no download.

- **Index and counters in the database.** Every entry (key, URL, range, size, SHA-256, times, pin, hits) and
  the counters are rows, so several API workers see one cache, one used-bytes figure and the same numbers.
- **Nothing partial is stored or served.** A download is checked against Content-Length, and a ranged one
  against 206 and Content-Range, before it is written; writes are atomic (a temporary name renamed into
  place locally, one PUT on S3). A hit reads the stored bytes and checks their size and SHA-256: a missing
  or corrupt file is a miss and is fetched again.
- **Quota.** When an insertion takes the used bytes above the high watermark, the least recently used
  unpinned entries go until the used bytes are at most the low watermark. Entries older than the TTL are
  fetched again, never served. Pinned entries are neither evicted nor expired until they are unpinned.
- **One download per key in a process** (single flight): concurrent requests for a key wait for the first
  one's download and share its bytes (or its error). Two processes may both download the same key; each
  write is atomic and the last one wins, and the SHA-256 check on every hit makes a file and an index row
  from different downloads a miss, never wrong bytes. Eviction is serialised within a process; across
  processes the used bytes may pass the high watermark briefly, until the next insertion evicts.

- **Kept per source.** A fetch for a source (a registered STAC source: its name, its headers, the URLs it
  owns) is keyed `source:{name}|{url}`, so what one source's credentials fetched is never served through
  another; a fetch without one (`cubeport cache fetch URL`) sends no headers and is keyed by its URL.
- **Credentials go nowhere else.** A source's URL and every redirect of it must be one the source owns
  (at most three redirects, each checked before it is followed); cookies are never kept.

Objects are held in memory while they are checked (at most `cache.max_object_bytes`): larger data should be
fetched in byte ranges. Everyone who may use a source shares its entries: do not cache answers that differ
per user.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import httpx
from sqlalchemy import ColumnElement, CursorResult, delete, false, func, select, update
from sqlalchemy.orm import Session

from cubeport.config import CacheSettings, Settings
from cubeport.db import Database, as_utc
from cubeport.db.models import CacheCounterRecord, CacheEntryRecord
from cubeport.errors import (
    ConflictError,
    InputError,
    LimitError,
    NotFoundError,
    StorageError,
    UnavailableError,
)
from cubeport.storage import Storage, describe_storage_error

log = logging.getLogger("cubeport.cache")
COUNTERS = ("hits", "misses", "bytes_fetched", "bytes_served", "evictions")
MAX_KEY_BYTES = 2048  # the key is the primary key: PostgreSQL indexes keys of up to about 2.7 kB
MAX_REDIRECTS = 3
SOURCE_PREFIX = "source:"
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
ByteRange = tuple[int, int]  # (start, end), end exclusive as in Python slices
Clock = Callable[[], datetime]
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


class CacheSource(Protocol):
    """Whom a fetch is for (e.g. a registered STAC source): its name keeps its entries apart, its headers
    (credentials) are sent, and only URLs it owns are fetched, redirects included."""

    @property
    def name(self) -> str: ...

    @property
    def headers(self) -> dict[str, str]: ...

    def owns(self, url: str) -> bool: ...


def cache_key(url: str, byte_range: ByteRange | None = None, source: str | None = None) -> str:
    """The key of an entry: `source:{name}|` for a source's, the URL, and for a range `#bytes=first-last` as
    the Range header says it (a URL with a fragment is refused, so no key is ambiguous)."""
    key = url if source is None else f"{SOURCE_PREFIX}{source}|{url}"
    return key if byte_range is None else f"{key}#bytes={byte_range[0]}-{byte_range[1] - 1}"


def source_of(key: str) -> str | None:
    """The source of an entry's key (None: fetched for nobody in particular)."""
    return key.removeprefix(SOURCE_PREFIX).split("|", 1)[0] if key.startswith(SOURCE_PREFIX) else None


@dataclass(frozen=True)
class CachedObject:
    """What `fetch` returns: the bytes, checked, and whether they came from the cache."""

    key: str
    url: str
    byte_range: ByteRange | None
    data: bytes
    sha256: str
    hit: bool

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class CacheEntry:
    """An entry of the index; `expires` is None for a pinned entry."""

    key: str
    url: str
    byte_range: ByteRange | None
    size: int
    sha256: str
    created: datetime
    last_used: datetime
    pinned: bool
    hits: int
    expires: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "source": source_of(self.key),
            "url": self.url,
            "byte_range": list(self.byte_range) if self.byte_range else None,
            "size": self.size,
            "sha256": self.sha256,
            "created": self.created.isoformat(),
            "last_used": self.last_used.isoformat(),
            "pinned": self.pinned,
            "hits": self.hits,
            "expires": self.expires.isoformat() if self.expires else None,
        }


@dataclass(frozen=True)
class CacheStats:
    """The cache's size against its quota, and the counters of every process sharing its database."""

    quota_bytes: int
    used_bytes: int
    high_watermark: float
    low_watermark: float
    entries: int
    pinned_entries: int
    pinned_bytes: int
    hits: int
    misses: int
    bytes_fetched: int
    bytes_served: int
    evictions: int

    @property
    def hit_ratio(self) -> float | None:
        """Share of the requests answered without a download; None before the first request."""
        requests = self.hits + self.misses
        return self.hits / requests if requests else None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "hit_ratio": self.hit_ratio}


class _Flight:
    """One download under way, which later requests for the same key wait for."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: CachedObject | None = None
        self.error: BaseException | None = None


class RollingCache:
    """Remote objects and byte ranges kept in `storage` below `prefix`, indexed in `db`, under a quota."""

    def __init__(
        self,
        storage: Storage,
        db: Database,
        settings: CacheSettings | None = None,
        *,
        prefix: str = "cache",
        clock: Clock = utc_now,
    ) -> None:
        self.storage, self.db, self.prefix, self._clock = storage, db, prefix, clock
        self.settings = settings or CacheSettings()
        self._http = httpx.Client(
            timeout=self.settings.timeout_seconds,
            follow_redirects=False,  # followed in `_answer`, each target checked first
            cookies=CookieJar(
                DefaultCookiePolicy(allowed_domains=[])
            ),  # none kept: none go to another source
        )
        self._flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()
        self._quota_lock = threading.Lock()  # insertions and evictions of this process, one at a time

    @classmethod
    def from_settings(cls, settings: Settings, storage: Storage, db: Database) -> RollingCache:
        """The cache of `settings.cache`: its own root if one is set, else `cache/` under the data root."""
        if settings.cache.root:
            return cls(Storage(settings.cache.root, settings.s3), db, settings.cache, prefix="")
        return cls(storage, db, settings.cache)

    def close(self) -> None:
        self._http.close()

    # -- limits ----------------------------------------------------------------------------------------
    @property
    def high_bytes(self) -> int:
        return int(self.settings.quota_bytes * self.settings.high_watermark)

    @property
    def low_bytes(self) -> int:
        return int(self.settings.quota_bytes * self.settings.low_watermark)

    @property
    def largest_object(self) -> int:
        """Larger objects are refused: an eviction must be able to end at the low watermark with them."""
        return min(self.settings.max_object_bytes, self.low_bytes)

    # -- fetching --------------------------------------------------------------------------------------
    def fetch(
        self, url: str, *, byte_range: ByteRange | None = None, source: CacheSource | None = None
    ) -> CachedObject:
        """The bytes of `url` (or of `byte_range`, end exclusive), for `source` (with its headers, from its
        entries): from the cache when it holds them unexpired and intact, else downloaded, checked and
        stored. A request that waited for another's download of the same key counts as a hit."""
        key = self._checked_key(url, byte_range, source)
        found, shared = self._single_flight(key, lambda: self._get(key, url, byte_range, source))
        hit = found.hit or shared
        self._record_request(key, hit, found.size)
        return replace(found, hit=True) if hit and not found.hit else found

    def _checked_key(self, url: str, byte_range: ByteRange | None, source: CacheSource | None) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(f"the cache fetches http(s) URLs, not {url[:100]!r}")
        if "#" in url:
            raise InputError(
                f"{_safe(url)}: a URL with a fragment (#...) cannot be cached; drop the fragment"
            )
        if byte_range is not None:
            start, end = byte_range
            if start < 0 or end <= start:
                raise InputError(f"byte range {start}-{end} is empty or negative (the end is exclusive)")
        if source is not None and not source.owns(url):
            raise InputError(f"{_safe(url)} is not under the base URL of source {source.name!r}")
        if source is not None and any(n.lower() in ("range", "accept-encoding") for n in source.headers):
            raise InputError(
                "pass byte_range instead of a Range header (the cache sets Range and Accept-Encoding)"
            )
        key = cache_key(url, byte_range, source.name if source else None)
        if len(key.encode()) > MAX_KEY_BYTES:
            raise InputError(f"{_safe(url)}: the URL is longer than the cache's {MAX_KEY_BYTES - 48} bytes")
        return key

    def _single_flight(self, key: str, work: Callable[[], CachedObject]) -> tuple[CachedObject, bool]:
        """`work()` for the first caller of `key`; callers that come while it runs wait and share its result
        (second value True) or its error."""
        with self._flights_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return flight.result, True
        try:
            flight.result = work()
            return flight.result, False
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._flights_lock:
                del self._flights[key]
            flight.done.set()

    def _get(
        self, key: str, url: str, byte_range: ByteRange | None, source: CacheSource | None
    ) -> CachedObject:
        with self.db.session() as session:
            record = session.get(CacheEntryRecord, key)
            entry = _entry(record, self.settings.ttl_seconds) if record else None
        if entry is not None and (entry.expires is None or entry.expires > self._clock()):
            data = self._read_intact(entry)
            if data is not None:
                return CachedObject(key, url, byte_range, data, entry.sha256, hit=True)
        data = self._download(url, byte_range, source)
        digest = hashlib.sha256(data).hexdigest()
        self._store(key, url, byte_range, data, digest)
        return CachedObject(key, url, byte_range, data, digest, hit=False)

    def _read_intact(self, entry: CacheEntry) -> bytes | None:
        """The stored bytes if they are there and match the index (size and SHA-256), else None."""
        try:
            data = self.storage.read_bytes(*self._object(entry.key))
        except FileNotFoundError:
            log.warning("cache entry %s has no file; fetching it again", entry.key)
            return None
        except Exception as exc:
            raise StorageError(describe_storage_error(self.storage.root, exc)) from exc
        if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
            log.warning("cache entry %s is corrupt; fetching it again", entry.key)
            return None
        return data

    def _download(self, url: str, byte_range: ByteRange | None, source: CacheSource | None) -> bytes:
        """The checked bytes of `url` as its server stores them (identity encoding, nothing decoded)."""
        sent = {**(source.headers if source else {}), "Accept-Encoding": "identity"}
        if byte_range is not None:
            sent["Range"] = f"bytes={byte_range[0]}-{byte_range[1] - 1}"
        where = _safe(url)
        try:
            with self._answer(url, sent, source) as response:
                expected = _expected_length(where, response, byte_range)
                if expected is not None and expected > self.largest_object:
                    raise self._too_large(where, expected)
                data = bytearray()
                for chunk in response.iter_raw():
                    data += chunk
                    if len(data) > self.largest_object:
                        raise self._too_large(where, len(data))
        except httpx.TimeoutException:
            raise UnavailableError(
                f"{where} did not answer within {self.settings.timeout_seconds:g} s; nothing stored"
            ) from None
        except httpx.HTTPError as exc:
            raise UnavailableError(
                f"download of {where} failed ({_first_line(exc)}); nothing stored"
            ) from None
        if expected is not None and len(data) != expected:
            raise UnavailableError(
                f"download of {where} was cut short ({len(data)} of {expected} bytes); nothing stored"
            )
        return bytes(data)

    @contextlib.contextmanager
    def _answer(
        self, url: str, headers: dict[str, str], source: CacheSource | None
    ) -> Iterator[httpx.Response]:
        """The streamed answer to GET `url` after at most MAX_REDIRECTS redirects; for a source, each one
        only to a URL it owns (its headers go along), checked before it is followed."""
        for _ in range(MAX_REDIRECTS + 1):
            with self._http.stream("GET", url, headers=headers) as response:
                if not response.is_redirect:
                    yield response
                    return
                try:
                    target = str(response.url.join(response.headers["location"]))
                except httpx.InvalidURL:
                    raise UnavailableError(f"{_safe(url)} redirects to an invalid URL") from None
            if source is not None and not source.owns(target):
                raise UnavailableError(
                    f"{_safe(url)} redirects to {_safe(target)}, outside the base URL of source "
                    f"{source.name!r}; not followed"
                )
            url = target
        raise UnavailableError(f"{_safe(url)}: more than {MAX_REDIRECTS} redirects; not followed")

    def _too_large(self, where: str, size: int) -> LimitError:
        return LimitError(
            f"{where} has {size} bytes, more than the cache takes in one object "
            f"({self.largest_object}); fetch it in byte ranges or raise cache.max_object_bytes and "
            "cache.quota_bytes",
            "bytes",
            self.largest_object,
        )

    def _store(self, key: str, url: str, byte_range: ByteRange | None, data: bytes, digest: str) -> None:
        """Write the object atomically, then index it and evict in one transaction, so that no reader of the
        index ever sees the cache above its high watermark."""
        try:
            self.storage.write_bytes_atomic(data, *self._object(key))
        except Exception as exc:
            raise StorageError(describe_storage_error(self.storage.root, exc)) from exc
        now = self._clock()
        values = {
            "url": url,
            "range_start": byte_range[0] if byte_range else None,
            "range_end": byte_range[1] if byte_range else None,
            "size": len(data),
            "sha256": digest,
            "created": now,
            "last_used": now,
        }
        with self._quota_lock:
            try:
                evicted = _retry_once(lambda: self._index(key, values))
            except LimitError:
                self._delete_files([key])
                raise
        self._delete_files(evicted)

    def _index(self, key: str, values: dict[str, Any]) -> list[str]:
        """Index a new download of `key` (keeping its pin and hits if it was there) and evict for it; the keys
        evicted. The first statement writes, so a SQLite transaction holds the write lock from its start."""
        with self.db.session() as session:
            changed = session.execute(
                update(CacheEntryRecord).where(CacheEntryRecord.key == key).values(**values)
            )
            if not cast(CursorResult[Any], changed).rowcount:
                session.add(CacheEntryRecord(key=key, pinned=False, hits=0, **values))
                session.flush()
            _add(session, bytes_fetched=values["size"])
            evicted = self._evict_in(session)
            if _used(session) > self.settings.quota_bytes:  # pinned entries leave no room: roll it all back
                raise LimitError(
                    f"the cache cannot hold {_safe(values['url'])} ({values['size']} bytes): pinned "
                    f"entries fill its quota of {self.settings.quota_bytes} bytes; unpin some or "
                    "raise cache.quota_bytes",
                    "bytes",
                    self.settings.quota_bytes,
                )
        return evicted

    def _record_request(self, key: str, hit: bool, size: int) -> None:
        with self.db.session() as session:
            if hit:
                session.execute(
                    update(CacheEntryRecord)
                    .where(CacheEntryRecord.key == key)
                    .values(hits=CacheEntryRecord.hits + 1, last_used=self._clock())
                )
            _add(session, hits=int(hit), misses=int(not hit), bytes_served=size)

    # -- quota -----------------------------------------------------------------------------------------
    def evict(self) -> int:
        """Evict least recently used, unpinned entries down to the low watermark if the cache is above the
        high one (e.g. after the quota was lowered); the number evicted."""
        with self._quota_lock:
            with self.db.session() as session:
                evicted = self._evict_in(session)
            self._delete_files(evicted)
        return len(evicted)

    def _evict_in(self, session: Session) -> list[str]:
        """Within `session`: if the used bytes are above the high watermark, delete the index rows of the least
        recently used, unpinned entries until they are at most the low one; the keys deleted (their files go
        once the transaction is committed)."""
        used = _used(session)
        if used <= self.high_bytes:
            return []
        with self._flights_lock:
            busy = set(self._flights)  # being fetched here: evicting them would delete a new file
        victims: list[str] = []
        rows = session.execute(
            select(CacheEntryRecord.key, CacheEntryRecord.size)
            .where(CacheEntryRecord.pinned == false())
            .order_by(CacheEntryRecord.last_used, CacheEntryRecord.key)
            .execution_options(yield_per=1000)
        )
        for key, size in rows:
            if used <= self.low_bytes:
                break
            if key not in busy:
                victims.append(key)
                used -= size
        rows.close()
        if not victims:
            return []
        evicted = _delete_rows(session, CacheEntryRecord.key.in_(victims), CacheEntryRecord.pinned == false())
        _add(session, evictions=len(evicted))
        return evicted

    def _delete_files(self, keys: list[str]) -> None:
        paths = [self.storage.path(*self._object(key)) for key in keys]
        try:
            if self.storage.is_s3:
                for start in range(0, len(paths), 1000):  # one multi-object DELETE per 1000 keys
                    self.storage.fs.rm(paths[start : start + 1000])
            else:
                for path in paths:
                    with contextlib.suppress(FileNotFoundError):
                        self.storage.fs.rm_file(path)
        except Exception as exc:  # the index no longer has them: a left-over file is only wasted space
            log.warning("cache files not deleted: %s", describe_storage_error(self.storage.root, exc))

    # -- administration --------------------------------------------------------------------------------
    def stats(self) -> CacheStats:
        with self.db.session() as session:
            count, used = session.execute(
                select(func.count(), func.coalesce(func.sum(CacheEntryRecord.size), 0))
            ).one()
            pinned, pinned_bytes = session.execute(
                select(func.count(), func.coalesce(func.sum(CacheEntryRecord.size), 0)).where(
                    CacheEntryRecord.pinned.is_(True)
                )
            ).one()
            counters = dict(session.execute(select(CacheCounterRecord.name, CacheCounterRecord.value)).all())
        s = self.settings
        return CacheStats(
            quota_bytes=s.quota_bytes,
            used_bytes=int(used),
            high_watermark=s.high_watermark,
            low_watermark=s.low_watermark,
            entries=int(count),
            pinned_entries=int(pinned),
            pinned_bytes=int(pinned_bytes),
            **{name: int(counters.get(name, 0)) for name in COUNTERS},
        )

    def entries(self, prefix: str | None = None, limit: int = 1000) -> list[CacheEntry]:
        """Entries (whose key starts with `prefix`), most recently used first."""
        query = select(CacheEntryRecord).order_by(CacheEntryRecord.last_used.desc(), CacheEntryRecord.key)
        if prefix:
            query = query.where(CacheEntryRecord.key.startswith(prefix, autoescape=True))
        with self.db.session() as session:
            return [_entry(r, self.settings.ttl_seconds) for r in session.scalars(query.limit(limit))]

    def entry(self, key: str) -> CacheEntry:
        with self.db.session() as session:
            record = session.get(CacheEntryRecord, key)
            if record is None:
                raise NotFoundError(f"cache entry {key!r} not found")
            return _entry(record, self.settings.ttl_seconds)

    def pin(self, key: str) -> CacheEntry:
        """Keep an entry: it is neither evicted nor expired until it is unpinned."""
        return self._set_pinned(key, True)

    def unpin(self, key: str) -> CacheEntry:
        return self._set_pinned(key, False)

    def _set_pinned(self, key: str, pinned: bool) -> CacheEntry:
        with self.db.session() as session:
            changed = session.execute(
                update(CacheEntryRecord).where(CacheEntryRecord.key == key).values(pinned=pinned)
            )
            if not cast(CursorResult[Any], changed).rowcount:
                raise NotFoundError(f"cache entry {key!r} not found")
        return self.entry(key)

    def purge(
        self,
        *,
        everything: bool = False,
        expired: bool = False,
        prefix: str | None = None,
        include_pinned: bool = False,
    ) -> int:
        """Remove every entry, the expired ones, or those whose key starts with `prefix` (expired and prefix
        combine); pinned entries only with `include_pinned` (they never expire). The number removed."""
        if not (everything or expired or prefix):
            raise InputError(
                "say what to purge: everything, the expired entries, or the entries of a key prefix"
            )
        if everything and (expired or prefix):
            raise InputError("purge everything, or the expired entries or a key prefix, not both")
        conditions: list[ColumnElement[bool]] = []
        if expired or not include_pinned:
            conditions.append(CacheEntryRecord.pinned == false())
        if expired:
            cutoff = self._clock() - timedelta(seconds=self.settings.ttl_seconds)
            conditions.append(CacheEntryRecord.created <= cutoff)
        if prefix:
            conditions.append(CacheEntryRecord.key.startswith(prefix, autoescape=True))
        with self._quota_lock:
            with self.db.session() as session:
                removed = _delete_rows(session, *conditions)
            self._delete_files(removed)
            if everything and include_pinned:  # also files a crash left without an index row
                self.storage.delete_tree(*self._objects_dir())
        return len(removed)

    # -- layout ----------------------------------------------------------------------------------------
    def _objects_dir(self) -> tuple[str, ...]:
        return (self.prefix, "objects") if self.prefix else ("objects",)

    def _object(self, key: str) -> tuple[str, ...]:
        """Where an entry's bytes are: objects/{h[:2]}/{h}, h the SHA-256 of its key (any URL, a safe name)."""
        name = hashlib.sha256(key.encode()).hexdigest()
        return (*self._objects_dir(), name[:2], name)


def _expected_length(where: str, response: httpx.Response, byte_range: ByteRange | None) -> int | None:
    """The body length the answer promises (None: not said, chunked), after checking that it is the answer
    asked for: 200 for a whole object, 206 with the asked-for Content-Range for a range."""
    status = response.status_code
    if status in (404, 410):
        raise NotFoundError(f"{where} not found at its source ({status})")
    if status == 416 and byte_range is not None:
        raise InputError(f"byte range {byte_range[0]}-{byte_range[1] - 1} lies beyond the end of {where}")
    if status in (401, 403):
        raise UnavailableError(f"{where} refused access ({status}); check the headers sent with the request")
    if status >= 400:
        raise UnavailableError(f"{where} answered {status} {response.reason_phrase}".rstrip())
    length_text = response.headers.get("content-length")
    if length_text is not None and not length_text.isdigit():
        raise UnavailableError(f"{where} sent an invalid Content-Length {length_text[:40]!r}")
    length = int(length_text) if length_text is not None else None
    if byte_range is None:
        if status != 200:
            raise UnavailableError(f"{where} answered {status} to a request for the whole object, not 200")
        return length
    if status != 206:
        raise UnavailableError(
            f"{where} ignored the Range header (answered {status}, not 206 Partial Content)"
        )
    found = _CONTENT_RANGE.match(response.headers.get("content-range", "").strip())
    if not found:
        raise UnavailableError(f"{where} answered 206 without a valid Content-Range")
    first, last, total = int(found[1]), int(found[2]), found[3]
    start, end = byte_range
    at_the_end = (
        total != "*" and last == int(total) - 1 and last < end - 1
    )  # the object ends inside the range
    if first != start or last < first or not (last == end - 1 or at_the_end):
        raise UnavailableError(f"{where} sent bytes {first}-{last} for the range {start}-{end - 1}")
    if length is not None and length != last - first + 1:
        raise UnavailableError(f"{where} sent Content-Length {length} with Content-Range {first}-{last}")
    return last - first + 1


def _entry(record: CacheEntryRecord, ttl_seconds: float) -> CacheEntry:
    created = as_utc(record.created)
    last_used = as_utc(record.last_used)
    assert created is not None and last_used is not None
    byte_range = None
    if record.range_start is not None and record.range_end is not None:
        byte_range = (record.range_start, record.range_end)
    expires = None if record.pinned else created + timedelta(seconds=ttl_seconds)
    return CacheEntry(
        record.key,
        record.url,
        byte_range,
        record.size,
        record.sha256,
        created,
        last_used,
        record.pinned,
        record.hits,
        expires,
    )


def _used(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(CacheEntryRecord.size), 0))) or 0)


def _delete_rows(session: Session, *conditions: ColumnElement[bool]) -> list[str]:
    """Delete the index rows that match `conditions`; their keys."""
    query = delete(CacheEntryRecord).where(*conditions).returning(CacheEntryRecord.key)
    return list(session.scalars(query.execution_options(synchronize_session=False)))


def _add(session: Session, **amounts: int) -> None:
    """Add to counters in the database (one UPDATE each, so concurrent processes never lose a count)."""
    for name, amount in amounts.items():
        if amount:
            session.execute(
                update(CacheCounterRecord)
                .where(CacheCounterRecord.name == name)
                .values(value=CacheCounterRecord.value + amount)
            )


def _retry_once(action: Callable[[], T]) -> T:
    """Another process may insert the same key at the same moment: the second attempt updates its row."""
    try:
        return action()
    except ConflictError:
        return action()


def _safe(url: str) -> str:
    """A URL for messages and logs: without credentials or query (signed URLs carry secrets there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
