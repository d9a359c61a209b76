"""Small in-process caches: `TtlCache` for values that change rarely but are asked for often (access rules,
who a credential belongs to; a few seconds of staleness across processes is fine), `ByteLru` for tiles and decoded chunks."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Thread-safe; entries live `seconds` (or less, per entry); emptied when it grows past `size`."""

    def __init__(self, seconds: float, size: int = 10_000) -> None:
        self.seconds, self.size = seconds, size
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, key: K, value: V, seconds: float | None = None) -> None:
        lifetime = self.seconds if seconds is None else min(seconds, self.seconds)
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + lifetime, value)

    def pop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class ByteLru(Generic[K, V]):
    """Least-recently-used values, bounded by their total size (`len`, or `sizeof`): tiles, decoded chunks."""

    # the default `len` fits sized values (bytes); caches of other values pass their own `sizeof`
    def __init__(self, max_bytes: int, sizeof: Callable[[V], int] = len) -> None:  # type: ignore[assignment]
        self.max_bytes, self.bytes, self.sizeof = max_bytes, 0, sizeof
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: K, value: V) -> None:
        size = self.sizeof(value)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self.bytes -= self.sizeof(old) if old is not None else 0
            self._entries[key] = value
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.bytes -= self.sizeof(evicted)
