"""HTTP byte ranges (RFC 9110 §14): the one `Range: bytes=` parser of the routes that serve files, so that
GDAL's /vsicurl/, s3fs and browsers read parts of objects the same way everywhere."""

from __future__ import annotations


class UnsatisfiableRange(Exception):
    """The range lies past the end of the object (HTTP 416, with `Content-Range: bytes */size`)."""

    def __init__(self, header: str, size: int) -> None:
        super().__init__(f"range {header!r} lies past the end of the object ({size:,} bytes)")
        self.header, self.size = header, size


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a single `bytes=` range. None (send the whole object) without one, or for one
    that servers may ignore (other units, several ranges, bad syntax); UnsatisfiableRange past the end."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    first, dash, last = spec.strip().partition("-")
    digits = (first + last).isascii() and (first + last).isdigit()  # not "²", which int() refuses
    if unit.strip().lower() != "bytes" or "," in spec or not dash or not digits:
        return None
    if first and last and int(last) < int(first):
        return None
    if first:
        start, end = int(first), min(int(last) + 1, size) if last else size
    else:
        start, end = max(size - int(last), 0), size
    if start >= size or end <= start:
        raise UnsatisfiableRange(header, size)
    return start, end


def content_range(start: int, end: int, size: int | None) -> str:
    return f"bytes {start}-{end - 1}/{size if size is not None else '*'}"
