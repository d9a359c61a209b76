"""Times of products that do not carry a time axis: from metadata tags or from the file name."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cubeport.errors import InputError

# tried in order on file names when neither metadata nor --time-pattern gives a time
DEFAULT_TIME_PATTERNS = ("%Y%m%dT%H%M%S", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%Y%m%d")
_DIRECTIVES = {
    "%Y": r"\d{4}",
    "%m": r"\d{2}",
    "%d": r"\d{2}",
    "%H": r"\d{2}",
    "%M": r"\d{2}",
    "%S": r"\d{2}",
    "%j": r"\d{3}",
    "%y": r"\d{2}",
}
TIFF_TIME_TAGS = ("TIFFTAG_DATETIME", "ACQUISITION_START_UTC", "ACQUISITION_START", "DATETIME", "time")


def time_from_tags(path: str, attrs: dict[str, Any]) -> np.datetime64 | None:
    """The first time tag of a GeoTIFF; InputError if it is there but not a time."""
    for tag in TIFF_TIME_TAGS:
        value = attrs.get(tag)
        if not value:
            continue
        text = str(value).strip()
        text = re.sub(r"^(\d{4}):(\d{2}):(\d{2})", r"\1-\2-\3", text)  # TIFF's 'YYYY:MM:DD HH:MM:SS'
        try:
            return pd.Timestamp(text).tz_localize(None).to_datetime64()
        except (ValueError, TypeError):
            raise InputError(f"{path}: metadata {tag}={value!r} is not a time") from None
    return None


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A regex that finds a strftime `pattern` (e.g. '%Y%m%dT%H%M%S') in a file name."""
    parts = re.split(r"(%[a-zA-Z])", pattern)
    out = []
    for part in parts:
        if part in _DIRECTIVES:
            out.append(_DIRECTIVES[part])
        elif part.startswith("%"):
            raise InputError(
                f"time pattern {pattern!r}: {part} is not supported; use {' '.join(_DIRECTIVES)}"
            )
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def time_from_name(path: str, pattern: str) -> np.datetime64:
    """The time that `pattern` finds in the file name of `path`; InputError if it finds none."""
    name = Path(path).name
    match = pattern_regex(pattern).search(name)
    if not match:
        raise InputError(f"{path}: time pattern {pattern!r} does not match the file name")
    try:
        return np.datetime64(datetime.strptime(match.group(0), pattern), "ns")
    except ValueError as exc:
        raise InputError(f"{path}: {match.group(0)!r} is not a valid time for {pattern!r} ({exc})") from None


def guess_time_from_name(path: str) -> np.datetime64 | None:
    """The time of the first default pattern found in the file name, or None."""
    for pattern in DEFAULT_TIME_PATTERNS:
        try:
            return time_from_name(path, pattern)
        except InputError:
            continue
    return None
