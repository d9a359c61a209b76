"""How deep JSON nests, measured without a recursive parser.

Parsers recurse once per level: Python's `json` stops with a RecursionError, the `cql2` library's Rust parser
and validator overflow the stack (the whole process dies) or use memory that grows with every level. So a
request's JSON is measured first: text by a scan of its brackets outside strings, an already parsed value by
a walk with a stack of its own. Real documents nest a few levels: a GeoJSON MultiPolygon in a
FeatureCollection is 8 deep."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 64  # levels of objects and arrays one request body may nest

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string, escapes included
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = np.frombuffer(b"[{", np.uint8)


def text_depth(text: bytes | str) -> int:
    """How deep JSON text nests (0 for a scalar): the most brackets open at once outside strings. Linear in
    C and numpy (about 20 ms a megabyte); an unterminated string is counted as brackets."""
    raw = text.encode() if isinstance(text, str) else text
    brackets = np.frombuffer(_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS), np.uint8)
    steps = np.where(np.isin(brackets, _OPENING), 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def value_depth(value: Any, limit: int) -> int:
    """How deep a parsed JSON value (dicts and lists) nests, walked without recursion; the walk stops as soon
    as it is past `limit` (and returns limit + 1), so a deep value costs no more than a shallow one."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        depth += 1
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest
