"""ICEYE SAR products, both generations, read into one metadata model.

Legacy GRD: a GeoTIFF (uint16 amplitude) with an XML sidecar, a zip of both, or the same fields as GDAL
metadata tags. Current: a COG with a JSON (STAC) sidecar or the `ICEYE_PROPERTIES` tag. Field names and
meanings: ../shared/design/seaice-facts.md section 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cubeport.cubes.readers.base import Product

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
    start: datetime
    end: datetime
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


def is_iceye_name(path: str) -> bool:
    """True when the file name follows one of ICEYE's naming patterns."""
    name = Path(path).name
    return bool(LEGACY_NAME.match(name) or SAMPLE_NAME.match(name) or CURRENT_NAME.match(name))


class IceyeReader:
    """Opens an ICEYE product (image, sidecar or zip) as amplitude in radar geometry with its metadata."""

    name = "iceye"

    def can_open(self, path: str) -> bool:
        return is_iceye_name(path) and Path(path).suffix.lower() in {".tif", ".tiff", ".xml", ".json", ".zip"}

    def open(self, path: str, options: object = None) -> Product:
        raise NotImplementedError("being written")  # helper: replace
