"""How deep JSON nests, measured without a recursive parser.

Parsers recurse once per level: Python's `json` stops with a RecursionError, the `cql2` library's Rust parser
and validator overflow the stack (the whole process dies) or use memory that grows with every level. So a
request's JSON is measured first: text by a scan of its brackets outside strings, an already parsed value by
a walk with a stack of its own. Real documents nest a few levels: a GeoJSON MultiPolygon in a
FeatureCollection is 8 deep."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 64  # levels of objects and arrays one request body may nest

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a JSON string, escapes included
_STRING_END = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # the rest of a string begun before
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = np.frombuffer(b"[{", np.uint8)


def text_depth(text: bytes | str) -> int:
    """How deep JSON text nests (0 for a scalar): the most brackets open at once outside strings. Linear in
    C and numpy (20-90 ms a megabyte: more for many short strings)."""
    return DepthScan().feed(text.encode() if isinstance(text, str) else text)


class DepthScan:
    """`text_depth` of text that comes in pieces (a request body as it arrives): each piece is scanned once,
    with what a piece may leave open (a string, an escape in it, the brackets) carried to the next, so the
    work per piece is bounded by its size and the caller can let others run between pieces."""

    def __init__(self) -> None:
        self.depth = 0  # brackets open now
        self.deepest = 0  # the most open at once so far
        self.in_string = False  # the last piece ended inside a string
        self.escaped = False  # ... just after a backslash there

    def feed(self, piece: bytes) -> int:
        """Scan the next piece; the most brackets open at once so far."""
        start = 0
        if self.escaped and piece:  # the piece's first byte is the escaped one
            start, self.escaped = 1, False
        if self.in_string:
            end = _STRING_END.match(piece, start)
            if end is None:  # the string goes on past this piece
                self.escaped = _ends_escaped(piece[start:])
                return self.deepest
            start, self.in_string = end.end(), False
        outside = _STRING.sub(b"", piece[start:] if start else piece)
        opened = outside.find(b'"')  # a string no later quote ends (complete ones are gone): it goes on
        if opened >= 0:
            self.in_string, self.escaped = True, _ends_escaped(outside[opened + 1 :])
            outside = outside[:opened]
        brackets = np.frombuffer(outside.translate(None, _NOT_BRACKETS), np.uint8)
        if brackets.size:
            levels = self.depth + np.cumsum(np.where(np.isin(brackets, _OPENING), 1, -1))
            self.deepest = max(self.deepest, int(levels.max()))
            self.depth = int(levels[-1])
        return self.deepest


def _ends_escaped(text: bytes) -> bool:
    """Whether string content (begun fresh, not after a backslash) ends in an escape: an odd backslash run."""
    return (len(text) - len(text.rstrip(b"\\"))) % 2 == 1


def value_depth(value: Any, limit: int) -> int:
    """How deep a parsed JSON value (dicts and lists) nests, walked without recursion; the walk stops as soon
    as it is past `limit` (and returns limit + 1), so a deep value costs no more than a shallow one."""
    return value_extent(value, limit)[0]


def value_extent(value: Any, max_depth: int, max_chars: float = math.inf) -> tuple[int, int]:
    """How deep a parsed JSON value nests and about how many characters it takes as compact JSON (strings
    counted without escapes), in one walk without recursion. The walk stops as soon as it is past either
    limit, so a value of millions of nodes costs no more than one at the limits: the depth it returns is
    then at least what it saw, the characters past `max_chars`."""
    deepest = chars = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            # {"k":v,...}: braces, and per member its quoted key, a colon and a comma
            chars += 1 + max(4 * len(item), 1)
            if chars <= max_chars:  # (a dict of a million keys is past the limit without reading them)
                chars += sum(len(str(key)) for key in item)
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            chars += 1 + max(len(item), 1)  # brackets and commas
            children = item
        else:
            chars += _scalar_chars(item)
            if chars > max_chars:
                return deepest, chars
            continue
        depth += 1
        if depth > max_depth:
            return depth, chars
        deepest = max(deepest, depth)
        if chars > max_chars:
            return deepest, chars
        stack.extend((child, depth) for child in children)
    return deepest, chars


def _scalar_chars(value: Any) -> int:
    """The characters of a JSON scalar (a huge integer's digits from its bits: str() of one raises)."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, bool):
        return 5 if not value else 4
    if isinstance(value, int):
        return len(str(value)) if value.bit_length() < 4000 else value.bit_length() * 30103 // 100000 + 2
    if isinstance(value, float):
        return len(repr(value))
    return 4 if value is None else len(str(value))
