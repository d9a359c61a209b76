"""Writes synthetic ICEYE-like GRD deliveries, both generations, for the reader, validation, chain and benchmark
tests; and spoils them in the ways real deliveries go wrong.

The metadata template is the real legacy GRD block of the icecube samples in ../shared/data/sar/ (read from
their GDAL tags); a delivery overrides the sizes (from the DN array), the geometry, calibration factor,
times, mode, level and image id, and names its files the way its generation does:

- legacy: ``ICEYE_X6_GRD_SC_54549_20210427T215124.tif`` with the metadata as GDAL tags (``style="tags"``),
  as an XML sidecar of the same stem (``"xml"``) or both in a zip of that stem (``"zip"``);
- current: ``ICEYE_<geohash>_20210427T215124Z_54549_X6_SC_GRD.tif``, a COG with a STAC item of the same stem
  (``style="json"``) or the properties in its ``ICEYE_PROPERTIES`` tag (``"tag"``).

Geometry: `sample_geometry` keeps the sample's real footprint, GCPs, RPCs and incidence polynomial at any
frame size (the pixel spacing follows); `scene_geometry` places a frame anywhere (default the Bothnian Bay)
with exact pixel positions (`Geometry.lonlat`), a GCP grid and a linear incidence ramp from near to far.

Images are tiled (512 x 512), deflate with predictor 2, uint16, written one row of tiles at a time from a
numpy array, a dask array or a callable, so a 16,000 x 16,000 frame never needs several copies in memory.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree

import numpy as np
import rasterio
import rasterio.shutil
from pyproj import CRS, Geod
from rasterio.control import GroundControlPoint
from rasterio.errors import NotGeoreferencedWarning
from rasterio.rpc import RPC
from rasterio.windows import Window

DATA = Path(os.environ.get("CUBEPORT_SAMPLE_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")
SAMPLE = DATA / "sar" / "ICEYE_GRD_54549_20210427T215124_hollow_10x10pixels_fake_0.tif"
SAMPLE_CF = 3.939204325311276e-08
SAMPLE_SCENE = (10779, 11748)  # rows, columns of the real scene the sample's corners and GCPs describe
MODE_CODE = {"scan": "SC", "stripmap": "SM", "spotlight": "SL"}
CURRENT_MODE_CODE = {"scan": "SC", "stripmap": "SM", "spotlight": "SLH"}
CORNERS = ("first_near", "first_far", "last_near", "last_far")
TILE = 512

Gcp = tuple[float, float, float, float]  # (row, col, lon, lat); pixel (row, col) of a pixel's centre, 0-based
Dn = Any  # a 2-D uint16 numpy or dask array, or a callable (row0, row1) -> rows [row0:row1] of the frame


@lru_cache(maxsize=1)
def _sample() -> tuple[dict[str, str], tuple[Gcp, ...], RPC | None]:
    if not SAMPLE.exists():
        raise FileNotFoundError(f"{SAMPLE}: the ICEYE samples of ../shared/data are needed (see its README)")
    with rasterio.open(SAMPLE) as ds:
        tags = {k: v for k, v in ds.tags().items() if k != "AREA_OR_POINT"}
        gcps = tuple((g.row, g.col, g.x, g.y) for g in ds.gcps[0])
        return tags, gcps, ds.rpcs


def template_tags() -> dict[str, str]:
    """The legacy GDAL tags of the real sample (a fresh copy)."""
    return dict(_sample()[0])


# --- geometry ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """Where a frame's pixels are and its incidence ramp: what a delivery's metadata and GCPs say.

    corners: name -> (col, row, lat, lon), 0-based pixel centres. gcps: (row, col, lon, lat). The incidence
    polynomial is in ground range metres from column 0 (as ICEYE's): linear from near at column 0 to far at
    the last column, the ramp of tests/seaice/scenes.py.
    """

    width: int
    height: int
    range_spacing: float
    azimuth_spacing: float
    corners: dict[str, tuple[float, float, float, float]]
    gcps: tuple[Gcp, ...]
    incidence_near: float
    incidence_far: float
    incidence_coefficients: tuple[float, ...]
    orbit_direction: str = "ASCENDING"
    look_side: str = "RIGHT"
    heading: float = 349.9
    rpcs: RPC | None = None
    origin: tuple[float, float] = (0.0, 0.0)  # lon, lat of pixel (0, 0)
    positions: Callable[[Any, Any], tuple[Any, Any]] | None = field(default=None, compare=False, repr=False)

    def lonlat(self, rows: Any, cols: Any) -> tuple[Any, Any]:
        """The true lon/lat of pixel centres (row, col), arrays broadcast: the truth rectification is held to."""
        if self.positions is None:
            raise ValueError("this geometry has no position model (only GCPs)")
        return self.positions(np.asarray(rows, float), np.asarray(cols, float))

    def tags(self) -> dict[str, str]:
        """The legacy tags this geometry sets."""
        tags = {
            "RANGE_SPACING": repr(self.range_spacing),
            "AZIMUTH_SPACING": repr(self.azimuth_spacing),
            "INCIDENCE_NEAR": repr(self.incidence_near),
            "INCIDENCE_FAR": repr(self.incidence_far),
            "INCIDENCE_CENTER": repr((self.incidence_near + self.incidence_far) / 2),
            "INCIDENCE_ANGLE_COEFFICIENTS": numpy_repr(self.incidence_coefficients),
            "INCIDENCE_ANGLE_GROUND_RANGE_ORIGIN": "0.0",
            "INCIDENCE_ANGLE_POLY_ORDER": str(len(self.incidence_coefficients) - 1),
            "ORBIT_DIRECTION": self.orbit_direction,
            "LOOK_SIDE": self.look_side.lower(),
            "HEADING": repr(self.heading),
        }
        for name, (col, row, lat, lon) in self.corners.items():
            tags[f"COORD_{name.upper()}"] = numpy_repr((col + 1, row + 1, lat, lon), precision=12)
        lat = float(np.mean([c[2] for c in self.corners.values()]))
        lon = float(np.mean([c[3] for c in self.corners.values()]))
        tags["COORD_CENTER"] = numpy_repr(((self.width + 1) // 2, (self.height + 1) // 2, lat, lon))
        return tags


def sample_geometry(width: int, height: int) -> Geometry:
    """The real sample's footprint (and GCPs, RPCs, incidence polynomial) as a frame of width x height:
    pixel spacing grows as the frame shrinks, so the ground ranges and incidence angles stay the real ones."""
    tags, gcps, rpcs = _sample()
    rows, cols = SAMPLE_SCENE
    kr, kc = (height - 1) / (rows - 1), (width - 1) / (cols - 1)
    points = tuple((_snap(r * kr), _snap(c * kc), lon, lat) for r, c, lon, lat in gcps)
    # corners from the GCPs on the corner pixels (the sample's COORD_* differ from them by about 0.3 m), so
    # that corners, GCPs and a fitted proj:transform tell one story
    corners = {}
    for name in CORNERS:
        col, row, _, _ = _numbers(tags[f"COORD_{name.upper()}"])
        col, row = (col - 1) * kc, (row - 1) * kr
        r, c, lon, lat = min(points, key=lambda p: abs(p[0] - row) + abs(p[1] - col))
        corners[name] = (c, r, lat, lon)
    scaled_rpcs = None
    if rpcs is not None:
        scaled_rpcs = replace_rpc(
            rpcs,
            line_off=rpcs.line_off * kr,
            line_scale=rpcs.line_scale * kr,
            samp_off=rpcs.samp_off * kc,
            samp_scale=rpcs.samp_scale * kc,
        )
    return Geometry(
        width=width,
        height=height,
        range_spacing=float(tags["RANGE_SPACING"]) / kc,
        azimuth_spacing=float(tags["AZIMUTH_SPACING"]) / kr,
        corners=corners,
        gcps=points,
        incidence_near=float(tags["INCIDENCE_NEAR"]),
        incidence_far=float(tags["INCIDENCE_FAR"]),
        incidence_coefficients=_numbers(tags["INCIDENCE_ANGLE_COEFFICIENTS"]),
        orbit_direction=tags["ORBIT_DIRECTION"],
        look_side=tags["LOOK_SIDE"].upper(),
        heading=float(tags["HEADING"]),
        rpcs=scaled_rpcs,
        origin=(corners["first_near"][3], corners["first_near"][2]),
    )


def scene_geometry(
    width: int,
    height: int,
    *,
    center: tuple[float, float] = (23.0, 64.5),
    range_spacing: float = 6.0,
    azimuth_spacing: float = 6.0,
    heading: float = 349.9,
    look_side: str = "RIGHT",
    incidence: tuple[float, float] = (21.0, 29.0),
    gcp_grid: tuple[int, int] = (12, 12),
) -> Geometry:
    """A frame at `center` (lon, lat; default the Bothnian Bay) flown along `heading`, looking to one side.

    Pixel (row, col) lies `row * azimuth_spacing` metres along the track and `col * range_spacing` metres
    across it (geodesics on WGS84) from the first near pixel: an exact model of a flat GRD frame, so tests
    can compare rectified positions with `lonlat`. GCPs: a grid of `gcp_grid` (rows, cols) points including
    the corners. Ascending when the heading points north.
    """
    geod = Geod(ellps="WGS84")
    across = heading + (90.0 if look_side.upper() == "RIGHT" else -90.0)
    half_along, half_across = (height - 1) * azimuth_spacing / 2, (width - 1) * range_spacing / 2
    lon, lat, _ = geod.fwd(center[0], center[1], heading + 180.0, half_along)
    lon0, lat0, _ = geod.fwd(lon, lat, across + 180.0, half_across)

    def positions(rows: Any, cols: Any) -> tuple[Any, Any]:
        rows, cols = np.broadcast_arrays(rows, cols)
        start_lon = np.full(rows.shape, lon0)
        start_lat = np.full(rows.shape, lat0)
        along_lon, along_lat, back = geod.fwd(
            start_lon, start_lat, np.full(rows.shape, heading), rows * azimuth_spacing
        )
        # keep the cross-track direction perpendicular to the track where the track point is
        az = np.asarray(back) + 180.0 + (90.0 if look_side.upper() == "RIGHT" else -90.0)
        out_lon, out_lat, _ = geod.fwd(along_lon, along_lat, az, cols * range_spacing)
        return np.asarray(out_lon), np.asarray(out_lat)

    corner_px = {"first_near": (0, 0), "first_far": (width - 1, 0), "last_near": (0, height - 1)}
    corner_px["last_far"] = (width - 1, height - 1)
    corners = {}
    for name, (col, row) in corner_px.items():
        clon, clat = positions(np.array(row, float), np.array(col, float))
        corners[name] = (float(col), float(row), float(clat), float(clon))
    gr = np.linspace(0, height - 1, gcp_grid[0])
    gc = np.linspace(0, width - 1, gcp_grid[1])
    rr, cc = np.meshgrid(gr, gc, indexing="ij")
    glon, glat = positions(rr, cc)
    gcps = tuple(
        (float(r), float(c), float(x), float(y))
        for r, c, x, y in zip(rr.ravel(), cc.ravel(), glon.ravel(), glat.ravel(), strict=True)
    )
    near, far = incidence
    far_range = (width - 1) * range_spacing
    direction = "ASCENDING" if math.cos(math.radians(heading)) >= 0 else "DESCENDING"
    return Geometry(
        width=width,
        height=height,
        range_spacing=range_spacing,
        azimuth_spacing=azimuth_spacing,
        corners=corners,
        gcps=gcps,
        incidence_near=near,
        incidence_far=far,
        incidence_coefficients=(near, (far - near) / far_range if far_range else 0.0, 0.0, 0.0, 0.0),
        orbit_direction=direction,
        look_side=look_side.upper(),
        heading=heading,
        origin=(lon0, lat0),
        positions=positions,
    )


# --- writers ----------------------------------------------------------------------------------------------


def write_legacy(
    folder: str | Path,
    dn: Dn,
    meta_overrides: Mapping[str, Any] | None = None,
    style: Literal["tags", "xml", "zip"] = "tags",
    *,
    geometry: Geometry | None = None,
    gcps: Sequence[Gcp] | None = None,
    corners: Mapping[str, tuple[float, float, float, float]] | None = None,
    calibration_factor: float | None = SAMPLE_CF,
    start: datetime | None = None,
    duration_s: float = 10.0,
    mode: str = "scan",
    level: str = "GRD",
    image_id: str = "54549",
    satellite: str = "X6",
    name: str | None = None,
    shape: tuple[int, int] | None = None,
    tile: int = TILE,
) -> Path:
    """Write a legacy GRD delivery into `folder`; the path of its image (tags, xml) or zip.

    meta_overrides: legacy tag names (upper case) set last; None removes a field. calibration_factor None
    leaves it out. geometry: default `sample_geometry` of the frame's size. name: the file stem, if not
    the consistent one (for mismatched names).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    height, width = _shape(dn, shape)
    geometry = geometry or sample_geometry(width, height)
    tags = _legacy_tags(
        width,
        height,
        geometry,
        corners,
        calibration_factor,
        start,
        duration_s,
        mode,
        level,
        image_id,
        satellite,
    )
    start_time = datetime.fromisoformat(tags["ACQUISITION_START_UTC"])
    stem = name or f"ICEYE_{satellite}_{level}_{_code(mode, MODE_CODE)}_{image_id}_{start_time:%Y%m%dT%H%M%S}"
    tags.update(PRODUCT_NAME=stem, PRODUCT_FILE=f"{stem}.tif")
    for key, value in (meta_overrides or {}).items():
        if value is None:
            tags.pop(key, None)
        else:
            tags[key] = str(value)
    points = tuple(gcps) if gcps is not None else geometry.gcps
    rpcs = geometry.rpcs if gcps is None else None
    image = folder / f"{stem}.tif"
    if style == "tags":
        write_tif(image, dn, tags=tags, gcps=points, rpcs=rpcs, shape=(height, width), tile=tile)
        return image
    write_tif(image, dn, tags={}, gcps=points, rpcs=rpcs, shape=(height, width), tile=tile)
    sidecar = image.with_suffix(".xml")
    sidecar.write_bytes(legacy_xml(tags))
    if style == "xml":
        return image
    archive = folder / f"{stem}.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(image, image.name, compress_type=zipfile.ZIP_STORED)
        z.write(sidecar, sidecar.name, compress_type=zipfile.ZIP_DEFLATED)
    image.unlink()
    sidecar.unlink()
    return archive


def write_current(
    folder: str | Path,
    dn: Dn,
    meta_overrides: Mapping[str, Any] | None = None,
    style: Literal["json", "tag"] = "json",
    *,
    geometry: Geometry | None = None,
    gcps: Sequence[Gcp] | None = None,
    corners: Mapping[str, tuple[float, float, float, float]] | None = None,
    calibration_factor: float | None = SAMPLE_CF,
    start: datetime | None = None,
    duration_s: float = 10.0,
    mode: str = "scan",
    level: str = "GRD",
    image_id: str = "54549",
    satellite: str = "X6",
    name: str | None = None,
    shape: tuple[int, int] | None = None,
    tile: int = TILE,
    cog: bool = True,
) -> Path:
    """Write a current-generation delivery (COG + STAC JSON, or COG with ICEYE_PROPERTIES); the image path.

    meta_overrides: STAC property names ("iceye:calibration_factor", "proj:shape", ...) set last; None
    removes one. cog False writes a tiled GeoTIFF without the COG copy (faster for large frames).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    height, width = _shape(dn, shape)
    geometry = geometry or sample_geometry(width, height)
    tags = _legacy_tags(
        width,
        height,
        geometry,
        corners,
        calibration_factor,
        start,
        duration_s,
        mode,
        level,
        image_id,
        satellite,
    )
    start_time = datetime.fromisoformat(tags["ACQUISITION_START_UTC"])
    corner_values = corners or geometry.corners
    c_lat = float(np.mean([c[2] for c in corner_values.values()]))
    c_lon = float(np.mean([c[3] for c in corner_values.values()]))
    code = _code(mode, CURRENT_MODE_CODE)
    stem = (
        name
        or f"ICEYE_{geohash(c_lat, c_lon)}_{start_time:%Y%m%dT%H%M%SZ}_{image_id}_{satellite}_{code}_{level}"
    )
    props = current_properties(tags, corner_values, stem, code)
    for key, value in (meta_overrides or {}).items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    points = tuple(gcps) if gcps is not None else geometry.gcps
    rpcs = geometry.rpcs if gcps is None else None
    image = folder / f"{stem}.tif"
    extra = {"ICEYE_PROPERTIES": json.dumps(props)} if style == "tag" else {}
    extra["PRODUCT_NAME"] = stem
    target = image.with_name(f".{stem}.tiled.tif") if cog else image
    write_tif(target, dn, tags=extra, gcps=points, rpcs=rpcs, shape=(height, width), tile=tile)
    if cog:
        rasterio.shutil.copy(
            target, image, driver="COG", compress="deflate", predictor=2, blocksize=tile, num_threads=2
        )
        target.unlink()
    if style == "json":
        image.with_suffix(".json").write_text(json.dumps(stac_item(props, corner_values, stem), indent=1))
    return image


def write_tif(
    path: str | Path,
    dn: Dn,
    *,
    tags: Mapping[str, str] | None = None,
    gcps: Sequence[Gcp] = (),
    rpcs: RPC | None = None,
    shape: tuple[int, int] | None = None,
    tile: int = TILE,
) -> Path:
    """A tiled deflate (predictor 2) uint16 GeoTIFF written one row of tiles at a time, with GCPs in
    EPSG:4326, RPCs and tags."""
    height, width = _shape(dn, shape)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint16",
        "tiled": True,
        "blockxsize": tile,
        "blockysize": tile,
        "compress": "deflate",
        "predictor": 2,
        "BIGTIFF": "IF_SAFER",
        "NUM_THREADS": "ALL_CPUS",  # compress blocks in parallel
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as ds:
            for r0 in range(0, height, tile):
                r1 = min(height, r0 + tile)
                rows = dn(r0, r1) if callable(dn) else dn[r0:r1]
                ds.write(np.asarray(rows, dtype=np.uint16), 1, window=Window(0, r0, width, r1 - r0))
            if gcps:
                points = [
                    GroundControlPoint(row=r, col=c, x=x, y=y, id=str(i + 1))
                    for i, (r, c, x, y) in enumerate(gcps)
                ]
                ds.gcps = (points, CRS.from_epsg(4326).to_wkt())
            if rpcs is not None:
                ds.rpcs = rpcs
            if tags:
                ds.update_tags(**tags)
    return Path(path)


def _legacy_tags(
    width: int,
    height: int,
    geometry: Geometry,
    corners: Mapping[str, tuple[float, float, float, float]] | None,
    calibration_factor: float | None,
    start: datetime | None,
    duration_s: float,
    mode: str,
    level: str,
    image_id: str,
    satellite: str,
) -> dict[str, str]:
    tags = template_tags()
    tags.update(geometry.tags())
    for corner, (col, row, lat, lon) in (corners or {}).items():
        tags[f"COORD_{corner.upper()}"] = numpy_repr((col + 1, row + 1, lat, lon), precision=12)
    tags.update(
        NUMBER_OF_RANGE_SAMPLES=str(width),
        NUMBER_OF_AZIMUTH_SAMPLES=str(height),
        ACQUISITION_MODE=mode,
        PRODUCT_LEVEL=level,
        SATELLITE_NAME=f"('ICEYE-{satellite}',)",
    )
    if calibration_factor is None:
        tags.pop("CALIBRATION_FACTOR", None)
    else:
        tags["CALIBRATION_FACTOR"] = repr(float(calibration_factor))
    # the sample's acquisition ends a day after it starts; a synthetic frame lasts duration_s
    first = start or datetime.fromisoformat(tags["ACQUISITION_START_UTC"])
    last = first + timedelta(seconds=duration_s)
    tags.update(
        ACQUISITION_START_UTC=first.isoformat(timespec="microseconds"),
        ACQUISITION_END_UTC=last.isoformat(timespec="microseconds"),
        ZERODOPPLER_START_UTC=first.isoformat(timespec="microseconds"),
        ZERODOPPLER_END_UTC=last.isoformat(timespec="microseconds"),
    )
    return tags


def current_properties(
    tags: Mapping[str, str], corners: Mapping[str, tuple[float, float, float, float]], stem: str, code: str
) -> dict[str, Any]:
    """STAC properties of the current generation from legacy tags (the mapping SNAP's JsonGRDHelper reads
    backwards), with `proj:transform` (GDAL order, as ICEYE writes it) fitted to the corners."""
    start = datetime.fromisoformat(tags["ACQUISITION_START_UTC"])
    end = datetime.fromisoformat(tags["ACQUISITION_END_UTC"])
    width, height = int(tags["NUMBER_OF_RANGE_SAMPLES"]), int(tags["NUMBER_OF_AZIMUTH_SAMPLES"])
    props: dict[str, Any] = {
        "datetime": _z(start + (end - start) / 2),
        "start_datetime": _z(start),
        "end_datetime": _z(end),
        "platform": _numbers_or_text(tags["SATELLITE_NAME"]),
        "constellation": "ICEYE",
        "sar:instrument_mode": tags["ACQUISITION_MODE"],
        "sar:product_type": tags["PRODUCT_LEVEL"],
        "sar:polarizations": [tags["POLARIZATION"]],
        "sar:observation_direction": tags["LOOK_SIDE"].lower(),
        "sar:pixel_spacing_range": float(tags["RANGE_SPACING"]),
        "sar:pixel_spacing_azimuth": float(tags["AZIMUTH_SPACING"]),
        "sar:frequency_band": "X",
        "sat:orbit_state": tags["ORBIT_DIRECTION"].lower(),
        "view:incidence_angle": float(tags["INCIDENCE_CENTER"]),
        "proj:code": "EPSG:4326",
        "proj:shape": [height, width],
        "proj:transform": _fit_transform(corners),
        "iceye:image_id": int(stem.split("_")[3]) if stem.count("_") >= 6 else tags.get("PRODUCT_NAME"),
        "iceye:filename": f"{stem}.tif",
        "iceye:processing_mode": code,
        "iceye:incidence_angle_near": float(tags["INCIDENCE_NEAR"]),
        "iceye:incidence_angle_far": float(tags["INCIDENCE_FAR"]),
        "iceye:incidence_angle_coeffs": list(_numbers(tags["INCIDENCE_ANGLE_COEFFICIENTS"])),
        "iceye:ground_to_slant_coeff": list(_numbers(tags["GRSR_COEFFICIENTS"])),
        "iceye:range_near": float(tags["SLANT_RANGE_TO_FIRST_PIXEL"]),
        "iceye:zero_doppler_start_datetime": _z(datetime.fromisoformat(tags["ZERODOPPLER_START_UTC"])),
        "iceye:zero_doppler_end_datetime": _z(datetime.fromisoformat(tags["ZERODOPPLER_END_UTC"])),
    }
    if "CALIBRATION_FACTOR" in tags:
        props["iceye:calibration_factor"] = float(tags["CALIBRATION_FACTOR"])
    return props


def stac_item(
    props: Mapping[str, Any], corners: Mapping[str, tuple[float, float, float, float]], stem: str
) -> dict[str, Any]:
    """The STAC item (GeoJSON Feature) of a current-generation delivery."""
    ring = [[corners[k][3], corners[k][2]] for k in ("first_near", "first_far", "last_far", "last_near")]
    ring.append(ring[0])
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        ],
        "id": stem,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": dict(props),
        "assets": {
            "data": {
                "href": f"./{stem}.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            }
        },
        "links": [],
    }


def legacy_xml(tags: Mapping[str, str]) -> bytes:
    """A legacy XML sidecar: <Metadata> with lower-case leaf elements, the incidence and GRSR polynomials as
    <Incidence_Angle_Coefficients>/<GRSR_Coefficients> blocks of <coefficient><value>."""
    root = ElementTree.Element("Metadata")
    blocks = {"INCIDENCE_ANGLE": "Incidence_Angle_Coefficients", "GRSR": "GRSR_Coefficients"}
    skip = {f"{p}_{s}" for p in blocks for s in ("COEFFICIENTS", "GROUND_RANGE_ORIGIN", "ZERO_DOPPLER_TIME")}
    for key, value in tags.items():
        if key not in skip:
            ElementTree.SubElement(root, key.lower()).text = _xml_text(value)
    for prefix, element in blocks.items():
        if f"{prefix}_COEFFICIENTS" not in tags:
            continue
        block = ElementTree.SubElement(root, element)
        for suffix in ("ZERO_DOPPLER_TIME", "GROUND_RANGE_ORIGIN"):
            if f"{prefix}_{suffix}" in tags:
                ElementTree.SubElement(block, suffix.lower()).text = tags[f"{prefix}_{suffix}"]
        for value in _numbers(tags[f"{prefix}_COEFFICIENTS"]):
            ElementTree.SubElement(ElementTree.SubElement(block, "coefficient"), "value").text = repr(value)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


# --- spoiling deliveries ----------------------------------------------------------------------------------


def truncate(path: str | Path, keep: float = 0.5) -> Path:
    """Cut a file to `keep` of its length (a transfer that stopped half way)."""
    path = Path(path)
    with path.open("r+b") as stream:
        stream.truncate(int(path.stat().st_size * keep))
    return path


def write_image_only(folder: str | Path, dn: Dn, name: str) -> Path:
    """An image without any metadata: no sidecar and no ICEYE tags (still with GCPs)."""
    height, width = _shape(dn, None)
    Path(folder).mkdir(parents=True, exist_ok=True)
    return write_tif(Path(folder) / name, dn, gcps=sample_geometry(width, height).gcps)


def add_zip_member(
    archive: str | Path, name: str, data: bytes = b"payload", *, symlink: bool = False
) -> Path:
    """Append a member named `name` as given (e.g. '../escape.txt' or '/etc/x'); `symlink` marks it a
    symbolic link (Unix mode in external_attr) whose target is `data`."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777 if symlink else 0o100644) << 16
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr(info, data)
    return Path(archive)


def declare_size(archive: str | Path, member: str, size: int) -> Path:
    """Make the zip's central directory lie: `member`'s uncompressed size becomes `size` (< 4 GiB), its
    data unchanged (a bomb that declares much, or a member that inflates to more than it declares)."""
    archive = Path(archive)
    data = bytearray(archive.read_bytes())
    wanted = member.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + name_len]) == wanted:
            struct.pack_into("<I", data, at + 24, size)
            archive.write_bytes(bytes(data))
            return archive
        at = data.find(b"PK\x01\x02", at + 46 + name_len)
    raise KeyError(member)


def zip_bomb(archive: str | Path, name: str = "padding.bin", size: int = 64 * 2**20) -> Path:
    """Add a deflated member of `size` zero bytes: a few kilobytes on disk, `size` when extracted."""
    with (
        zipfile.ZipFile(archive, "a", compression=zipfile.ZIP_DEFLATED) as z,
        z.open(name, "w", force_zip64=True) as out,
    ):
        block = bytes(2**20)
        for _ in range(size // len(block)):
            out.write(block)
    return Path(archive)


def zip_folder(folder: str | Path, archive: str | Path) -> Path:
    """Zip every file of `folder` (flat) into `archive`."""
    Path(archive).parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as z:
        for path in sorted(Path(folder).iterdir()):
            z.write(path, path.name)
    return Path(archive)


def as_folder(path: str | Path, folder: str | Path) -> Path:
    """Move a written delivery's files (image and sidecar of the same stem, or a zip's members) into a
    folder of their own: a folder delivery."""
    path, folder = Path(path), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            z.extractall(folder)
        path.unlink()
        return folder
    for sibling in path.parent.glob(f"{path.stem}.*"):
        shutil.move(sibling, folder / sibling.name)
    return folder


# --- small helpers ----------------------------------------------------------------------------------------


def numpy_repr(values: Sequence[float], precision: int = 8) -> str:
    """Numbers printed as ICEYE's tags print arrays (numpy repr, 8 digits); more digits for positions."""
    return np.array2string(
        np.asarray(values, dtype=float), separator=" ", max_line_width=75, precision=precision
    )


def replace_rpc(rpc: RPC, **changes: float) -> RPC:
    values = rpc.to_dict()
    values.update(changes)
    return RPC(**values)


def geohash(lat: float, lon: float, length: int = 6) -> str:
    """The geohash of a point, upper case (ICEYE's scene id in current file names)."""
    alphabet = "0123456789bcdefghjkmnpqrstuvwxyz"
    lat_range, lon_range = [-90.0, 90.0], [-180.0, 180.0]
    bits, value, even, out = 0, 0, True, []
    while len(out) < length:
        span, x = (lon_range, lon) if even else (lat_range, lat)
        mid = (span[0] + span[1]) / 2
        value = value * 2 + (x >= mid)
        span[0 if x >= mid else 1] = mid
        even, bits = not even, bits + 1
        if bits == 5:
            out.append(alphabet[value])
            bits, value = 0, 0
    return "".join(out).upper()


def _shape(dn: Dn, shape: tuple[int, int] | None) -> tuple[int, int]:
    if shape is not None:
        return shape
    if callable(dn):
        raise ValueError("give `shape` with a callable dn")
    return int(dn.shape[0]), int(dn.shape[1])


def _snap(value: float) -> float:
    """A scaled pixel coordinate, without the float noise that would move it off an integer pixel."""
    return float(round(value)) if abs(value - round(value)) < 1e-6 else value


def _code(mode: str, codes: Mapping[str, str]) -> str:
    return codes.get(mode.lower(), "".join(ch for ch in mode.upper() if ch.isalpha())[:5] or "XX")


def _numbers(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.replace("[", " ").replace("]", " ").split())


def _numbers_or_text(value: str) -> str:
    return value.strip("()[],' ").split("'")[0].strip(",' ")


def _xml_text(value: str) -> str:
    """Tag values as an XML sidecar holds them: arrays as space-separated numbers, text as is."""
    stripped = value.strip()
    if stripped.startswith("[") and not stripped.startswith("['"):
        return " ".join(stripped.replace("[", " ").replace("]", " ").split())
    if stripped.startswith("('"):
        return _numbers_or_text(stripped)
    return value


def _z(stamp: datetime) -> str:
    return stamp.isoformat(timespec="microseconds") + "Z"


def _fit_transform(corners: Mapping[str, tuple[float, float, float, float]]) -> list[float]:
    """The affine (GDAL order: x0, dx/dcol, dx/drow, y0, dy/dcol, dy/drow) closest to the corners, for
    pixel edges (a corner coordinate is its pixel's centre)."""
    a = np.array([[1.0, c[0] + 0.5, c[1] + 0.5] for c in corners.values()])
    lon = np.array([c[3] for c in corners.values()])
    lat = np.array([c[2] for c in corners.values()])
    x = np.linalg.lstsq(a, lon, rcond=None)[0]
    y = np.linalg.lstsq(a, lat, rcond=None)[0]
    return [float(v) for v in (*x, *y)]


__all__ = [
    "SAMPLE",
    "SAMPLE_CF",
    "Geometry",
    "add_zip_member",
    "as_folder",
    "declare_size",
    "geohash",
    "legacy_xml",
    "sample_geometry",
    "scene_geometry",
    "template_tags",
    "truncate",
    "write_current",
    "write_image_only",
    "write_legacy",
    "write_tif",
    "zip_bomb",
    "zip_folder",
]
