"""ICEYE SAR products, both generations, read into one metadata model.

Legacy GRD: a GeoTIFF (uint16 amplitude) with an XML sidecar, a zip of both, or the same fields as GDAL
metadata tags. Current: a COG with a JSON (STAC) sidecar or the `ICEYE_PROPERTIES` tag. Field names and
meanings: ../shared/design/seaice-facts.md section 1.

The image stays in radar geometry (rows = azimuth, columns = ground range, near range at column 0); its
position on Earth is the GCPs (and RPCs) of the GeoTIFF, or the four corner coordinates when it has none.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, cast, overload
from xml.etree import ElementTree

import dask.array as darray
import numpy as np
import numpy.typing as npt
import pandas as pd
import rasterio
import xarray as xr
from pyproj import CRS
from rasterio.control import GroundControlPoint
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.rpc import RPC
from rasterio.windows import Window

from cubeport.cubes.readers.base import Georeference, Product, ReadOptions
from cubeport.errors import InputError

# legacy: ICEYE_<sat>_<product>_<mode>_<image_id>_<YYYYMMDDTHHMMSS>, e.g. ICEYE_X6_GRD_SM_453426_20231026T060946
LEGACY_NAME = re.compile(
    r"^ICEYE_(?P<sat>[A-Z0-9-]+)_(?P<product>GRD|SLC|QL)_(?P<mode>[A-Z]+)_(?P<image_id>\d+)_(?P<time>\d{8}T\d{6})"
)
# the icecube test samples: ICEYE_GRD_<image_id>_<YYYYMMDDTHHMMSS>...
SAMPLE_NAME = re.compile(r"^ICEYE_(?P<product>GRD|SLC)_(?P<image_id>\d+)_(?P<time>\d{8}T\d{6})")
# current: ICEYE_<geohash>_<YYYYMMDDTHHMMSSZ>_<image_id>_<sat>_<mode>_<product>
CURRENT_NAME = re.compile(
    r"^ICEYE_(?P<geohash>[0-9A-Z]+)_(?P<time>\d{8}T\d{6}Z)_(?P<image_id>\d+)_(?P<sat>[A-Z0-9]+)_(?P<mode>[A-Z]+)_(?P<product>GRD|SLC|QL|CSI|VID)"
)

IMAGE_SUFFIXES = (".tif", ".tiff")
SIDECAR_SUFFIXES = (".xml", ".json")
SUFFIXES = {*IMAGE_SUFFIXES, *SIDECAR_SUFFIXES, ".zip"}

# acquisition modes ICEYE names in metadata (lower case), and the codes of file names and `processing_mode`
KNOWN_MODES = frozenset({"scan", "stripmap", "spotlight"})
MODE_CODES = {
    "SC": "scan",
    "SCW": "scan",
    "SM": "stripmap",
    "SMH": "stripmap",
    "SL": "spotlight",
    "SLH": "spotlight",
    "SLF": "spotlight",
    "SLEA": "spotlight",
    "SLED": "spotlight",
    "SLEDF": "spotlight",
    "SLEDP": "spotlight",
}
CORNER_NAMES = ("first_near", "first_far", "last_near", "last_far")

# what the reader accepts in a zip it opens on its own (the sea-ice settings' defaults); a delivery is
# checked with the configured limits by cubeport.seaice.delivery before anything reads it
ZIP_MAX_FILES = 16
ZIP_MAX_BYTES = 8 * 2**30
SIDECAR_MAX_BYTES = 64 * 2**20  # the largest real sidecars are a few MB (orbit states, Doppler estimates)
LEGACY_KEYS = ("CALIBRATION_FACTOR", "PRODUCT_LEVEL", "INCIDENCE_NEAR", "NUMBER_OF_RANGE_SAMPLES")
PROPERTIES_TAG = "ICEYE_PROPERTIES"


@dataclass(frozen=True)
class Corner:
    """A corner of the scene: 0-based pixel (column, row) and its WGS84 position."""

    col: float
    row: float
    lat: float
    lon: float


@dataclass(frozen=True)
class IceyeMetadata:
    """What the chain needs from either generation's metadata, in one shape (SI units, degrees, UTC)."""

    generation: str  # "legacy" or "current"
    image_id: str
    satellite: str
    product_level: str  # GRD or SLC
    mode: str  # acquisition mode as ICEYE names it, lower case: scan, stripmap, spotlight, ...
    polarisation: str  # VV
    orbit_direction: str  # ASCENDING or DESCENDING
    look_side: str  # LEFT or RIGHT
    start: datetime  # naive UTC
    end: datetime  # naive UTC
    width: int  # range samples (columns)
    height: int  # azimuth samples (rows)
    range_spacing: float  # metres per column in ground range
    azimuth_spacing: float  # metres per row
    calibration_factor: float | None
    incidence_near: float
    incidence_far: float
    incidence_coefficients: tuple[float, ...]  # polynomial in ground range (metres) from incidence_origin
    incidence_origin: float
    ground_to_slant_coefficients: tuple[float, ...] = ()
    ground_to_slant_origin: float = 0.0
    slant_range_near: float | None = None
    corners: dict[str, Corner] = field(default_factory=dict)  # first_near, first_far, last_near, last_far
    raw: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class NameInfo:
    """What an ICEYE file name says: its pattern's generation, product level, mode code, image id, time."""

    generation: str  # "legacy" (also the icecube samples) or "current"
    product: str
    mode_code: str  # "" when the name has none (the icecube samples)
    image_id: str
    time: datetime  # naive UTC, whole seconds
    satellite: str


def is_iceye_name(path: str) -> bool:
    """True when the file name follows one of ICEYE's naming patterns."""
    return parse_name(Path(path).name) is not None


def parse_name(name: str) -> NameInfo | None:
    """The fields of an ICEYE file name (either generation or the icecube samples), None for other names."""
    name = PurePosixPath(name.replace("\\", "/")).name
    if m := CURRENT_NAME.match(name):
        stamp = datetime.strptime(m["time"], "%Y%m%dT%H%M%SZ")
        return NameInfo("current", m["product"], m["mode"], m["image_id"], stamp, m["sat"])
    if m := LEGACY_NAME.match(name):
        stamp = datetime.strptime(m["time"], "%Y%m%dT%H%M%S")
        return NameInfo("legacy", m["product"], m["mode"], m["image_id"], stamp, m["sat"])
    if m := SAMPLE_NAME.match(name):
        stamp = datetime.strptime(m["time"], "%Y%m%dT%H%M%S")
        return NameInfo("legacy", m["product"], "", m["image_id"], stamp, "")
    return None


# --- values ---------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)\b", re.IGNORECASE)


def parse_numbers(text: str | Iterable[Any]) -> tuple[float, ...]:
    """The numbers of a numpy repr ("[ 3.16e+01  8.74e-05\\n -7.0e-11]"), a JSON list or a separated string.

    ICEYE's GDAL tags hold arrays as numpy prints them: brackets, runs of spaces, line breaks, nesting.
    A summarised repr ("...") has lost values, so it is refused rather than read short.
    """
    if not isinstance(text, str):
        return tuple(float(v) for v in np.asarray(list(text), dtype=float).ravel())
    if "..." in text:
        raise ValueError("a summarised array ('...') has lost values")
    values = _NUMBER.findall(text)
    if not values:
        raise ValueError(f"no numbers in {text[:60]!r}")
    return tuple(float(v) for v in values)


def _clean_text(value: str) -> str:
    """A plain word from values such as "('ICEYE-XY',)", "['VV']" or " right "."""
    return re.sub(r"[\[\]()'\",]", " ", value).split()[0] if value.strip(" []()'\",") else ""


def _utc(value: Any) -> datetime:
    """A naive UTC datetime from ISO text with or without a zone ("Z", "+00:00") or fraction digits."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(UTC).tz_localize(None)
    result: datetime = stamp.to_pydatetime()
    return result


def normalise_mode(value: str) -> str:
    """ICEYE's lower-case mode name from a metadata value or a file-name code ("SC" -> "scan")."""
    word = value.strip().lower().replace("-", "_").replace(" ", "_")
    return MODE_CODES.get(word.upper(), word)


@overload
def incidence_at(metadata: IceyeMetadata, ground_range_m: float) -> float: ...
@overload
def incidence_at(
    metadata: IceyeMetadata, ground_range_m: npt.NDArray[np.floating[Any]]
) -> npt.NDArray[np.float64]: ...
def incidence_at(
    metadata: IceyeMetadata, ground_range_m: float | npt.NDArray[np.floating[Any]]
) -> float | npt.NDArray[np.float64]:
    """Ellipsoid incidence angle (degrees) at a ground range in metres from the first column.

    ICEYE's polynomial takes ground range in metres ((column) * range_spacing for 0-based columns) from
    its origin, not pixels: on the real samples poly(0) is INCIDENCE_NEAR and poly(11747 * 0.5 m) is
    INCIDENCE_FAR (facts file section 1).
    """
    x = np.asarray(ground_range_m, dtype=np.float64) - metadata.incidence_origin
    values = np.polynomial.polynomial.polyval(
        x, np.asarray(metadata.incidence_coefficients, dtype=np.float64)
    )
    if np.ndim(values) == 0:
        return float(values)
    return np.asarray(values, dtype=np.float64)


def far_column(metadata: IceyeMetadata) -> float:
    """The 0-based column of the far range edge: from the far corners, which describe the scene even where
    the image was cut (the hollow samples hold 10 columns of an 11748-column scene), else the width."""
    far = [metadata.corners[k].col for k in ("first_far", "last_far") if k in metadata.corners]
    return max(far) if far else float(metadata.width - 1)


# --- legacy metadata (GDAL tags or XML) -------------------------------------------------------------------


def has_iceye_tags(tags: Mapping[str, str]) -> bool:
    """True when GeoTIFF tags carry ICEYE metadata of either generation."""
    return PROPERTIES_TAG in tags or any(k in tags for k in LEGACY_KEYS)


class _Fields:
    """Reads typed fields from a mapping and remembers every missing or unreadable one, so that one error
    can name them all."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = values
        self.missing: list[str] = []
        self.bad: list[str] = []

    def _get(self, keys: tuple[str, ...]) -> tuple[str, Any] | None:
        for key in keys:
            value = self.values.get(key)
            if value is not None and value != "":
                return key, value
        return None

    def text(self, *keys: str, default: str | None = None) -> str:
        found = self._get(keys)
        if found is None:
            if default is None:
                self.missing.append(keys[0])
            return default or ""
        value = found[1]
        if isinstance(value, list | tuple):
            return "+".join(_clean_text(str(v)) for v in value)
        return _clean_text(str(value))

    def number(self, *keys: str, required: bool = True) -> float | None:
        found = self._get(keys)
        if found is None:
            if required:
                self.missing.append(keys[0])
            return None
        try:
            (value,) = parse_numbers(found[1]) if isinstance(found[1], str) else (float(found[1]),)
        except (TypeError, ValueError):
            self.bad.append(f"{found[0]}={str(found[1])[:40]!r}")
            return None
        return value

    def numbers(self, *keys: str, required: bool = True) -> tuple[float, ...]:
        found = self._get(keys)
        if found is None:
            if required:
                self.missing.append(keys[0])
            return ()
        try:
            return parse_numbers(found[1])
        except (TypeError, ValueError):
            self.bad.append(f"{found[0]}={str(found[1])[:40]!r}")
            return ()

    def time(self, *keys: str) -> datetime:
        found = self._get(keys)
        if found is None:
            self.missing.append(keys[0])
            return datetime(1970, 1, 1)
        try:
            return _utc(found[1])
        except (TypeError, ValueError):
            self.bad.append(f"{found[0]}={str(found[1])[:40]!r}")
            return datetime(1970, 1, 1)

    def raise_if_incomplete(self, source: str, kind: str) -> None:
        parts = []
        if self.missing:
            parts.append("lacks " + ", ".join(self.missing))
        if self.bad:
            parts.append("cannot read " + ", ".join(self.bad))
        if parts:
            raise InputError(
                f"{source}: {kind} {'; '.join(parts)}; the product needs a complete ICEYE GRD metadata set"
            )


def legacy_metadata(tags: Mapping[str, str], source: str) -> IceyeMetadata:
    """The model from legacy fields (GDAL tag names, upper case; XML names are upper-cased first).

    InputError names every missing or unreadable field at once. A missing calibration factor or an unknown
    mode is kept (None, the raw word) for validation to report; the image id is "" when no PRODUCT_NAME or
    PRODUCT_FILE says it.
    """
    tags = {k.upper(): v for k, v in tags.items()}
    f = _Fields(tags)
    named = [parse_name(tags[k]) for k in ("PRODUCT_NAME", "PRODUCT_FILE") if tags.get(k)]
    name = next((n for n in named if n is not None), None)
    width, height = f.number("NUMBER_OF_RANGE_SAMPLES"), f.number("NUMBER_OF_AZIMUTH_SAMPLES")
    corners: dict[str, Corner] = {}
    for corner in CORNER_NAMES:
        values = f.numbers(f"COORD_{corner.upper()}", required=False)
        if len(values) == 4:  # "col row lat lon", 1-based pixels
            corners[corner] = Corner(values[0] - 1, values[1] - 1, values[2], values[3])
        elif values:
            f.bad.append(f"COORD_{corner.upper()} (not 'col row lat lon')")
    metadata = IceyeMetadata(
        generation="legacy",
        image_id=name.image_id if name else "",
        satellite=f.text("SATELLITE_NAME", default=name.satellite if name else ""),
        product_level=f.text("PRODUCT_LEVEL", default=name.product if name else None).upper(),
        mode=normalise_mode(f.text("ACQUISITION_MODE", default=name.mode_code if name else "")),
        polarisation=f.text("POLARIZATION", "POLARISATION").upper(),
        orbit_direction=f.text("ORBIT_DIRECTION").upper(),
        look_side=f.text("LOOK_SIDE").upper(),
        start=f.time("ACQUISITION_START_UTC"),
        end=f.time("ACQUISITION_END_UTC"),
        width=int(width or 0),
        height=int(height or 0),
        range_spacing=f.number("RANGE_SPACING") or 0.0,
        azimuth_spacing=f.number("AZIMUTH_SPACING") or 0.0,
        calibration_factor=f.number("CALIBRATION_FACTOR", required=False),
        incidence_near=f.number("INCIDENCE_NEAR") or 0.0,
        incidence_far=f.number("INCIDENCE_FAR") or 0.0,
        incidence_coefficients=f.numbers("INCIDENCE_ANGLE_COEFFICIENTS"),
        incidence_origin=f.number("INCIDENCE_ANGLE_GROUND_RANGE_ORIGIN", required=False) or 0.0,
        ground_to_slant_coefficients=f.numbers("GRSR_COEFFICIENTS", required=False),
        ground_to_slant_origin=f.number("GRSR_GROUND_RANGE_ORIGIN", required=False) or 0.0,
        slant_range_near=f.number("SLANT_RANGE_TO_FIRST_PIXEL", required=False),
        corners=corners,
        raw={k: str(v) for k, v in tags.items()},
    )
    f.raise_if_incomplete(source, "ICEYE legacy metadata")
    return metadata


# XML blocks whose <coefficient><value> lists and origins become the GDAL tag names
_XML_BLOCKS = {"incidence_angle_coefficients": "INCIDENCE_ANGLE", "grsr_coefficients": "GRSR"}


def parse_legacy_xml(content: bytes, source: str) -> dict[str, str]:
    """The fields of a legacy XML sidecar as GDAL tag names (upper case) and text values.

    Leaf elements give their text; the `Incidence_Angle_Coefficients` and `GRSR_Coefficients` blocks give
    their coefficient values in order plus origin and time. Other blocks (orbit states, Doppler) are kept
    out. XML with a DOCTYPE is refused: a sidecar needs no entities, and refusing them stops entity bombs.
    """
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        raise InputError(f"{source}: XML with a DOCTYPE or entities is refused; an ICEYE sidecar has none")
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError as exc:
        raise InputError(f"{source}: not well-formed XML ({exc}); the metadata sidecar is damaged") from None
    tags: dict[str, str] = {}
    for element in root:
        tag = element.tag.rsplit("}", 1)[-1].lower()
        if tag in _XML_BLOCKS:
            prefix = _XML_BLOCKS[tag]
            values = [v.text.strip() for v in element.iter() if v.tag.endswith("value") and v.text]
            tags[f"{prefix}_COEFFICIENTS"] = "[" + " ".join(values) + "]"
            for child in element:
                name = child.tag.rsplit("}", 1)[-1].lower()
                if name in ("ground_range_origin", "zero_doppler_time") and child.text:
                    tags[f"{prefix}_{name.upper()}"] = child.text.strip()
        elif len(element) == 0 and element.text and element.text.strip():
            tags.setdefault(tag.upper(), element.text.strip())
    return tags


# --- current metadata (STAC JSON or the ICEYE_PROPERTIES tag) ------------------------------------------


def stac_properties(document: Any, source: str) -> tuple[dict[str, Any], str | None]:
    """The properties of a STAC item (or the flat properties object ICEYE_PROPERTIES holds) and the id."""
    if not isinstance(document, dict):
        raise InputError(f"{source}: the ICEYE JSON metadata is not an object")
    if isinstance(document.get("properties"), dict):
        item_id = document.get("id")
        return dict(document["properties"]), str(item_id) if item_id is not None else None
    return dict(document), None


def current_metadata(properties: Mapping[str, Any], source: str, item_id: str | None = None) -> IceyeMetadata:
    """The model from current-generation (STAC) properties; InputError names every missing field."""
    f = _Fields(properties)
    name = next(
        (
            n
            for n in (parse_name(str(v)) for v in (properties.get("iceye:filename"), item_id) if v)
            if n is not None
        ),
        None,
    )
    image_id = properties.get("iceye:image_id")
    shape = f.numbers("proj:shape")
    height, width = (int(shape[0]), int(shape[1])) if len(shape) == 2 else (0, 0)
    if shape and len(shape) != 2:
        f.bad.append("proj:shape (not [height, width])")
    level = f.text("sar:product_type", default=name.product if name else None).upper()
    mode_code = str(properties.get("iceye:processing_mode") or (name.mode_code if name else ""))
    metadata = IceyeMetadata(
        generation="current",
        image_id=str(image_id) if image_id is not None else (name.image_id if name else ""),
        satellite=f.text("platform", default=name.satellite if name else ""),
        product_level=re.split(r"[^A-Z]", level)[0] if level else "",
        mode=normalise_mode(f.text("sar:instrument_mode", "iceye:acquisition_mode", default=mode_code)),
        polarisation=f.text("sar:polarizations", "sar:polarization").upper(),
        orbit_direction=f.text("sat:orbit_state").upper(),
        look_side=f.text("sar:observation_direction").upper(),
        start=f.time("start_datetime", "datetime"),
        end=f.time("end_datetime", "datetime"),
        width=width,
        height=height,
        range_spacing=f.number("sar:pixel_spacing_range") or 0.0,
        azimuth_spacing=f.number("sar:pixel_spacing_azimuth") or 0.0,
        calibration_factor=f.number("iceye:calibration_factor", required=False),
        incidence_near=f.number("iceye:incidence_angle_near") or 0.0,
        incidence_far=f.number("iceye:incidence_angle_far") or 0.0,
        incidence_coefficients=f.numbers("iceye:incidence_angle_coeffs"),
        incidence_origin=0.0,
        ground_to_slant_coefficients=f.numbers("iceye:ground_to_slant_coeff", required=False),
        slant_range_near=f.number("iceye:range_near", required=False),
        corners=_corners_from_transform(properties.get("proj:transform"), width, height),
        raw={k: v if isinstance(v, str) else json.dumps(v) for k, v in properties.items()},
    )
    f.raise_if_incomplete(source, "ICEYE metadata")
    return metadata


def _corners_from_transform(transform: Any, width: int, height: int) -> dict[str, Corner]:
    """Corner positions from `proj:transform` (pixel to lon/lat, rotated).

    ICEYE writes it in GDAL order (x0, dx/dcol, dx/drow, y0, dy/dcol, dy/drow); the STAC projection
    extension's affine order (a, b, x0, d, e, y0) is accepted too: the order whose per-pixel steps are small
    (degrees per pixel) is the one meant.
    """
    try:
        t = parse_numbers(transform) if transform is not None else ()
    except (TypeError, ValueError):
        return {}
    if len(t) < 6 or width < 1 or height < 1:
        return {}
    if all(abs(t[i]) < 0.01 for i in (1, 2, 4, 5)):
        x0, xc, xr, y0, yc, yr = t[:6]
    elif all(abs(t[i]) < 0.01 for i in (0, 1, 3, 4)):
        xc, xr, x0, yc, yr, y0 = t[:6]
    else:
        return {}
    corners = {}
    for corner, col, row in zip(
        CORNER_NAMES, (0, width - 1, 0, width - 1), (0, 0, height - 1, height - 1), strict=True
    ):
        # the transform maps pixel edges; a corner coordinate is its pixel's centre
        lon = x0 + (col + 0.5) * xc + (row + 0.5) * xr
        lat = y0 + (col + 0.5) * yc + (row + 0.5) * yr
        corners[corner] = Corner(float(col), float(row), lat, lon)
    return corners


def _rpc_from_properties(properties: Mapping[str, Any]) -> RPC | None:
    """RPCs of the JSON (`iceye:rpc` object, or flat `iceye:rpc.*` keys), None when incomplete."""
    values = properties.get("iceye:rpc")
    if not isinstance(values, dict):
        values = {k.split(".", 1)[1]: v for k, v in properties.items() if k.startswith("iceye:rpc.")}
    try:
        scalars = {
            k: float(values[k])
            for k in (
                "height_off",
                "height_scale",
                "lat_off",
                "lat_scale",
                "line_off",
                "line_scale",
                "long_off",
                "long_scale",
                "samp_off",
                "samp_scale",
            )
        }
        lists = {
            k: [float(v) for v in parse_numbers(values[k])]
            for k in ("line_num_coeff", "line_den_coeff", "samp_num_coeff", "samp_den_coeff")
        }
    except (KeyError, TypeError, ValueError):
        return None
    errors = {k: float(values.get(k, -1.0)) for k in ("err_bias", "err_rand")}
    return RPC(**scalars, **lists, **errors)


# --- sidecars and zips ------------------------------------------------------------------------------------


def metadata_from_sidecar(name: str, content: bytes, source: str) -> IceyeMetadata:
    """The model from a sidecar's bytes: .xml is legacy, .json current (a STAC item or its properties)."""
    if name.lower().endswith(".xml"):
        return legacy_metadata(parse_legacy_xml(content, source), source)
    try:
        document = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{source}: not valid JSON ({exc}); the metadata sidecar is damaged") from None
    properties, item_id = stac_properties(document, source)
    return current_metadata(properties, source, item_id)


def metadata_from_tags(tags: Mapping[str, str], source: str) -> IceyeMetadata | None:
    """The model from GeoTIFF tags (ICEYE_PROPERTIES JSON or legacy fields), None when they hold neither."""
    if PROPERTIES_TAG in tags:
        try:
            document = json.loads(tags[PROPERTIES_TAG])
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}: the {PROPERTIES_TAG} tag is not valid JSON ({exc})") from None
        properties, item_id = stac_properties(document, source)
        return current_metadata(properties, source, item_id)
    if any(k in tags for k in LEGACY_KEYS):
        return legacy_metadata(tags, source)
    return None


def zip_problems(
    path: str | Path, max_files: int = ZIP_MAX_FILES, max_bytes: int = ZIP_MAX_BYTES
) -> list[str]:
    """What makes a zip unsafe to read, from its central directory alone (nothing is decompressed).

    Names that climb out (`../`, absolute, drive letters), symbolic links (Unix mode in external_attr),
    more than `max_files` files, or a declared uncompressed total over `max_bytes`. Every problem is listed.
    A directory that lies about sizes is caught later by `read_member`, which stops at the declared size.
    """
    shown = Path(path).name
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        return [f"{shown}: not a readable zip ({exc})"]
    problems = []
    files = [i for i in infos if not i.is_dir()]
    for info in infos:
        if not is_safe_member_name(info.filename):
            problems.append(f"{shown}: member {info.filename!r} points outside the zip (path traversal)")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            problems.append(f"{shown}: member {info.filename!r} is a symbolic link")
    if len(files) > max_files:
        problems.append(f"{shown}: holds {len(files)} files, more than the {max_files} a delivery may hold")
    total = sum(i.file_size for i in files)
    if total > max_bytes:
        problems.append(
            f"{shown}: declares {total:,} bytes uncompressed, more than the limit of {max_bytes:,} bytes"
        )
    return problems


def is_safe_member_name(name: str) -> bool:
    """False for zip member names that would leave the folder they are extracted to."""
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        return False
    return ".." not in PurePosixPath(normal).parts


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """A member's bytes, never more than `cap` nor than its declared size.

    zipfile stops at the declared size and checks the CRC, so a member that inflates to more than its
    directory entry says fails here instead of filling memory.
    """
    if info.file_size > cap:
        raise InputError(f"{info.filename}: {info.file_size:,} bytes, more than the {cap:,} allowed")
    with archive.open(info) as stream:
        content = stream.read(cap + 1)
    if len(content) > cap:
        raise InputError(f"{info.filename}: larger than declared")
    return content


@dataclass(frozen=True)
class Pair:
    """An image and its metadata sidecar as found in a folder or zip (either may be missing)."""

    image: str | None
    sidecar: str | None


def pair_files(names: Iterable[str]) -> list[Pair]:
    """Images (.tif) and sidecars (.xml/.json) matched by stem; a lone image and a lone ICEYE-named sidecar
    with different stems are still paired (their ids are compared later). Other files are ignored; so are
    sidecars without an ICEYE name and without an image of their stem (a manifest, say)."""
    names = list(names)
    images = sorted(n for n in names if n.lower().endswith(IMAGE_SUFFIXES))
    by_stem = {_stem(n): n for n in sorted(names) if n.lower().endswith(SIDECAR_SUFFIXES)}
    pairs = [Pair(image, by_stem.pop(_stem(image), None)) for image in images]
    lone = [s for s in by_stem.values() if parse_name(s) is not None]
    if len(pairs) == 1 and pairs[0].sidecar is None and len(lone) == 1:
        return [Pair(pairs[0].image, lone[0])]
    return pairs + [Pair(None, s) for s in lone]


def _stem(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    return str(path.with_suffix("")).lower()


def vsizip(zip_path: str | Path, member: str) -> str:
    """The GDAL path of a zip member, read in place without extracting."""
    return f"/vsizip/{Path(zip_path).resolve()}/{member}"


# --- the reader -------------------------------------------------------------------------------------------


class IceyeReader:
    """Opens an ICEYE product (image, sidecar or zip) as amplitude in radar geometry with its metadata."""

    name = "iceye"

    def can_open(self, path: str) -> bool:
        return is_iceye_name(path) and Path(path).suffix.lower() in SUFFIXES

    def open(self, path: str, options: ReadOptions | None = None) -> Product:
        """Open lazily; InputError names the file and what is wrong with it."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix == ".zip":
            return open_zip(p)
        if suffix in SIDECAR_SUFFIXES:
            image = _sibling(p, IMAGE_SUFFIXES)
            if image is None:
                raise InputError(f"{path}: metadata without image (no {p.stem}.tif beside it)")
            return open_iceye(str(image), (p.name, _read_file(p)), str(image))
        sidecar = _sibling(p, SIDECAR_SUFFIXES)
        return open_iceye(str(p), (sidecar.name, _read_file(sidecar)) if sidecar else None, path)


def _sibling(path: Path, suffixes: tuple[str, ...]) -> Path | None:
    """The file beside `path` with the same stem and one of `suffixes` (any case)."""
    for suffix in suffixes:
        for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def _read_file(path: Path, cap: int = SIDECAR_MAX_BYTES) -> bytes:
    with path.open("rb") as stream:
        content = stream.read(cap + 1)
    if len(content) > cap:
        raise InputError(f"{path}: larger than {cap:,} bytes; not an ICEYE metadata sidecar")
    return content


def open_zip(path: Path, max_files: int = ZIP_MAX_FILES, max_bytes: int = ZIP_MAX_BYTES) -> Product:
    """Open the product in a zip of image and sidecar, read in place (/vsizip/) after `zip_problems`."""
    problems = zip_problems(path, max_files, max_bytes)
    if problems:
        raise InputError(f"{path}: refused: " + "; ".join(problems))
    with zipfile.ZipFile(path) as archive:
        infos = {i.filename: i for i in archive.infolist() if not i.is_dir()}
        pairs = [p for p in pair_files(infos) if p.image]
        if len(pairs) != 1:
            raise InputError(
                f"{path}: holds {len(pairs)} images; a delivery zip holds one image and its metadata"
            )
        pair = pairs[0]
        assert pair.image is not None
        sidecar = None
        if pair.sidecar:
            sidecar = (pair.sidecar, read_member(archive, infos[pair.sidecar], SIDECAR_MAX_BYTES))
    return open_iceye(vsizip(path, pair.image), sidecar, str(path))


def open_iceye(image: str, sidecar: tuple[str, bytes] | None, source: str | None = None) -> Product:
    """Open an ICEYE image (a file or GDAL path) with its sidecar (name, bytes) or its own tags.

    The sidecar wins over tags when both exist. Metadata the image's name or tags fill in: the image id
    (when the metadata does not say it) and, for the current generation, corners from the GCPs.
    """
    source = source or image
    try:
        with open_raster(image) as ds:
            tags = ds.tags()
            gcps, gcps_crs = ds.gcps
            rpcs = ds.rpcs
            shape, dtype, count = (ds.height, ds.width), ds.dtypes[0], ds.count
            block = ds.block_shapes[0]
            crs, transform = ds.crs, ds.transform
    except RasterioError as exc:
        raise InputError(f"{source}: not a readable GeoTIFF ({_first_line(exc)})") from None
    if sidecar is not None:
        metadata = metadata_from_sidecar(sidecar[0], sidecar[1], f"{source} ({sidecar[0]})")
        properties = _json_properties(sidecar)
    else:
        found = metadata_from_tags(tags, source)
        if found is None:
            raise InputError(
                f"{source}: image without metadata (no .xml/.json sidecar beside it and no ICEYE metadata "
                "tags); deliver the image with its metadata file"
            )
        metadata = found
        properties = _tag_properties(tags)
    if count < 1:
        raise InputError(f"{source}: the GeoTIFF has no band")
    if not metadata.image_id and (named := parse_name(Path(image).name)):
        metadata = replace(metadata, image_id=named.image_id)
    control = tuple(gcps)
    if not control and crs is not None and not transform.is_identity:
        control, gcps_crs = _gcps_from_transform(transform, shape), crs
    if control and (metadata.generation == "current" or not metadata.corners):
        # the TIFF's own GCPs on the corner pixels beat corners recomputed from a fitted proj:transform
        on_corners = _corners_from_gcps(control, shape)
        if len(on_corners) == 4 or not metadata.corners:
            metadata = replace(metadata, corners=on_corners)
    if not control and metadata.corners:
        control, gcps_crs = _gcps_from_corners(metadata.corners), None
    if rpcs is None and properties:
        rpcs = _rpc_from_properties(properties)
    georef = Georeference(
        gcps=_from_pixel_edges(control),
        gcps_crs=CRS.from_user_input(gcps_crs) if gcps_crs else CRS.from_epsg(4326),
        rpcs=rpcs,
    )
    amplitude = _lazy_band(image, shape, np.dtype(dtype), block)
    data = xr.Dataset({"amplitude": (("y", "x"), amplitude)})
    data["amplitude"].attrs.update(
        long_name="amplitude (digital number)", units="1", radar_geometry="rows azimuth, columns ground range"
    )
    return Product(source, "iceye", data, georef, metadata)


@contextmanager
def open_raster(path: str, **options: str) -> Iterator[Any]:
    """A rasterio dataset opened for reading only: GDAL keeps no .aux.xml beside it (reading a delivery
    must not write into it), and the warning that a radar image has no geotransform is expected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.Env(GDAL_PAM_ENABLED="NO"), rasterio.open(path, **options) as ds:
            yield ds


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _json_properties(sidecar: tuple[str, bytes]) -> dict[str, Any]:
    if not sidecar[0].lower().endswith(".json"):
        return {}
    return stac_properties(json.loads(sidecar[1]), sidecar[0])[0]


def _tag_properties(tags: Mapping[str, str]) -> dict[str, Any]:
    if PROPERTIES_TAG not in tags:
        return {}
    return stac_properties(json.loads(tags[PROPERTIES_TAG]), PROPERTIES_TAG)[0]


def _from_pixel_edges(gcps: tuple[GroundControlPoint, ...]) -> tuple[GroundControlPoint, ...]:
    """ICEYE's GCPs (and corners) name pixel centres, (0, 0) being the first pixel's centre; GDAL counts GCP
    pixel and line from the first pixel's outer corner. Half a pixel more puts each point where GDAL looks."""
    return tuple(
        GroundControlPoint(row=g.row + 0.5, col=g.col + 0.5, x=g.x, y=g.y, z=g.z, id=g.id, info=g.info)
        for g in gcps
    )


def _gcps_from_corners(corners: Mapping[str, Corner]) -> tuple[GroundControlPoint, ...]:
    return tuple(
        GroundControlPoint(row=c.row, col=c.col, x=c.lon, y=c.lat, id=name) for name, c in corners.items()
    )


def _gcps_from_transform(
    transform: Any, shape: tuple[int, int], n: int = 10
) -> tuple[GroundControlPoint, ...]:
    """A grid of GCPs from a (rotated) geotransform, so that the image stays in radar geometry."""
    rows = np.linspace(0, shape[0] - 1, n)
    cols = np.linspace(0, shape[1] - 1, n)
    points = []
    for row in rows:
        for col in cols:
            x, y = transform @ (col + 0.5, row + 0.5)
            points.append(GroundControlPoint(row=float(row), col=float(col), x=float(x), y=float(y)))
    return tuple(points)


def _corners_from_gcps(gcps: tuple[GroundControlPoint, ...], shape: tuple[int, int]) -> dict[str, Corner]:
    """Corners from the GCPs that sit on the image's corner pixels (within one pixel), when there are any."""
    height, width = shape
    corners = {}
    for name, col, row in zip(
        CORNER_NAMES, (0, width - 1, 0, width - 1), (0, 0, height - 1, height - 1), strict=True
    ):
        best = min(gcps, key=lambda g: math.hypot(g.col - col, g.row - row))
        if math.hypot(best.col - col, best.row - row) <= 1.0:
            corners[name] = Corner(float(best.col), float(best.row), float(best.y), float(best.x))
    return corners


class _Band:
    """Band 1 of a raster as an array-like for dask: each chunk opens the file and reads one window, so
    chunks can be read from several threads and a 16k x 16k frame is never held whole."""

    ndim = 2

    def __init__(self, path: str, shape: tuple[int, int], dtype: np.dtype[Any]) -> None:
        self.path, self.shape, self.dtype = path, shape, dtype

    def __getitem__(self, key: tuple[slice, slice]) -> npt.NDArray[Any]:
        rows, cols = key
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        with open_raster(self.path) as ds:
            return cast(npt.NDArray[Any], ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0)))


def _lazy_band(
    path: str, shape: tuple[int, int], dtype: np.dtype[Any], block: tuple[int, int]
) -> darray.Array:
    """Band 1 as a dask array in chunks of whole blocks, about 2048 x 2048 pixels."""
    chunks = tuple(min(size, max(b, (2048 // b) * b)) for size, b in zip(shape, block, strict=True))
    token = _token(path)
    array: darray.Array = darray.from_array(  # type: ignore[no-untyped-call]
        _Band(path, shape, dtype),
        chunks=chunks,
        asarray=False,
        lock=False,
        fancy=False,
        meta=np.empty((0, 0), dtype=dtype),
        name=f"iceye-amplitude-{token}",
    )
    return array


def _token(path: str) -> str:
    """A dask name that changes when the file does (path, size, modification time)."""
    local = path.split("/vsizip/", 1)[-1]
    for candidate in (Path(local), *Path(local).parents):
        if candidate.is_file():
            stat = candidate.stat()
            return hashlib.sha1(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return hashlib.sha1(path.encode()).hexdigest()[:16]
