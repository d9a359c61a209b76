"""Synthetic SAR sea-ice scenes with a known truth, for the classification, delivery, drift and benchmark tests.

A scene is a frame of `shape` pixels (rows = azimuth, cols = range) drawn from a seed: a coast on the left
(or a land mask the caller gives, e.g. GSHHG rasterised by seaice/landmask.py), a band of fast ice along the
land, a flaw lead of open water between the fast ice and the pack, and in the pack sinuous open-water leads
with new ice on their margins, level-ice floes and zones of deformed (ridged) ice. Every class has a known
backscatter at the reference angle and a known texture; an incidence ramp across the columns applies a known
slope, so the incidence correction can be checked to remove it; multiplicative gamma speckle of a few looks
makes the pixels as noisy as a multi-looked GRD.

Any window of a frame is computed on its own, the same every time (smooth fields are interpolated from one
lattice of random values a seed; speckle comes from fixed tiles each seeded by its position), so the
benchmark can build a 16,000 x 16,000 frame block by block (`scene_blocks`, a dask array) without holding
several float64 copies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from cubeport.seaice.classify import CLASS_NODATA, IceClass

OW, NEW, LEVEL, DEFORMED, FAST = (int(c) for c in IceClass)
LAND = 254  # land in the backscatter table only; the truth raster says CLASS_NODATA there

# Backscatter (dB) at the reference angle: the class's mean level before texture and speckle. Deformed ice
# is a darker base with bright ridge lines (about -7 dB on average, and by far the roughest).
CLASS_DB: dict[int, float] = {OW: -21.0, NEW: -17.0, LEVEL: -13.0, DEFORMED: -10.5, FAST: -13.0, LAND: -8.0}
# Slow modulation (dB, standard deviation of a smooth field): wind on water, snow and thickness on ice.
CLASS_MODULATION_DB: dict[int, float] = {OW: 0.8, NEW: 0.5, LEVEL: 0.5, DEFORMED: 0.5, FAST: 0.5, LAND: 2.0}
RIDGE_DB = 9.0  # ridge lines in deformed ice: this much brighter at their crest
LOOKS = 4  # equivalent number of looks of the speckle (gamma distributed power, mean 1)
SPECKLE_TILE = 512  # speckle is drawn per tile of this size, each tile seeded by its position


@dataclass(frozen=True)
class Scene:
    """A window of a synthetic frame: backscatter, truth and geometry, all (rows, cols) of the window."""

    sigma0_db: NDArray[np.float32]  # sigma0 in dB with the incidence ramp and speckle; NaN where no data
    classes: NDArray[np.uint8]  # the truth: IceClass codes, CLASS_NODATA on land and where no data
    land: NDArray[np.bool_]
    valid: NDArray[np.bool_]  # the image has data here (False: NaN, DN 0)
    incidence: NDArray[np.float32]  # incidence angle (degrees) of each column of the window
    reference_angle: float
    slopes: dict[int, float]  # dB per degree, by class code (LAND included)
    window: tuple[int, int, int, int]  # (row0, col0, rows, cols) of the window in the frame
    frame: tuple[int, int]  # (rows, cols) of the whole frame
    looks: int = LOOKS
    incidence_near: float = 21.0
    incidence_far: float = 29.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.window[2], self.window[3]

    def incidence_grid(self) -> NDArray[np.float32]:
        """The incidence angle of every pixel (constant along azimuth, as for a GRD frame)."""
        return np.broadcast_to(self.incidence, self.shape)

    def corrected_db(self) -> NDArray[np.float32]:
        """sigma0 (dB) corrected to the reference angle with the true per-class slopes: what a perfect
        incidence correction gives (speckle stays)."""
        slope = np.full(self.shape, self.slopes[LEVEL], np.float32)
        for code, value in self.slopes.items():
            if code != LAND:
                slope[self.classes == code] = value
        slope[self.land] = self.slopes[LAND]
        return (self.sigma0_db - slope * (self.incidence_grid() - self.reference_angle)).astype(np.float32)


def truth_scene(
    shape: tuple[int, int],
    seed: int,
    *,
    land: Any = None,
    coast: bool = True,
    incidence: tuple[float, float] = (21.0, 29.0),
    reference_angle: float = 25.0,
    slope: float | Mapping[int, float] = -0.2,
    looks: int = LOOKS,
    nodata: bool = True,
    window: tuple[int, int, int, int] | None = None,
) -> Scene:
    """The scene of a `shape` frame drawn from `seed`, or of one `window` (row0, col0, rows, cols) of it.

    land: a bool mask of the frame (numpy, memmap or anything sliceable to numpy), e.g. GSHHG rasterised;
    None draws a coast along the left edge (`coast=False`: no land at all, hence no fast ice).
    incidence: (near, far) angles in degrees of the first and last column. slope: dB per degree applied
    across the ramp, one for all classes or per class code (classes not named get -0.2).
    nodata: a wedge of no data along the right edge (NaN, DN 0), as GRD frames have.
    """
    rows, cols = shape
    r0, c0, h, w = window or (0, 0, rows, cols)
    if h <= 0 or w <= 0 or r0 < 0 or c0 < 0 or r0 + h > rows or c0 + w > cols:
        raise ValueError(f"window {window} is not inside the frame {shape}")
    rr = np.arange(r0, r0 + h)
    cc = np.arange(c0, c0 + w)
    size = min(rows, cols)

    # Land and the distance to it (pixels), from the drawn coast or from the given mask.
    if land is None and coast:
        coast_col = cols * 0.08 + cols * 0.025 * _smooth1d(seed, 1, rows, max(size / 6, 16), rr)
        distance = (cc[None, :] - coast_col[:, None]).astype(np.float32)
        land_w = distance < 0
    elif land is None:
        distance = np.full((h, w), np.inf, np.float32)
        land_w = np.zeros((h, w), bool)
    else:
        if tuple(land.shape) != (rows, cols):
            raise ValueError(f"land mask of shape {land.shape}, the frame is {shape}")
        land_w = np.asarray(land[r0 : r0 + h, c0 : c0 + w], dtype=bool)
        distance = _distance_to_land(land, rr, cc)
        distance[land_w] = -1.0
    fast_width = size * 0.06 * (1.0 + 0.35 * _smooth1d(seed, 2, rows, max(size / 8, 16), rr))[:, None]
    flaw_width = max(10.0, size * 0.015)

    # The pack: sinuous leads (open water, new ice on their margins), polynyas, floes, deformed zones.
    lead = _smooth(seed, 3, shape, max(size / 5, 24), rr, cc)
    floe = _smooth(seed, 4, shape, max(size / 10, 16), rr, cc) + 0.5 * _smooth(
        seed, 5, shape, max(size / 20, 8), rr, cc
    )
    deformation = _smooth(seed, 6, shape, max(size / 7, 16), rr, cc)
    classes = np.full((h, w), LEVEL, np.uint8)
    classes[deformation > 0.32] = DEFORMED
    new = (np.abs(lead) < 0.18) | (floe < -0.5)
    water = (np.abs(lead) < 0.07) | (floe < -1.0)
    classes[new] = NEW
    classes[water] = OW
    classes[distance <= fast_width + flaw_width] = OW  # the flaw lead
    classes[distance <= fast_width] = FAST
    classes[land_w] = LAND

    # Backscatter at the reference angle: class level, slow modulation, ridges in deformed ice.
    modulation = _smooth(seed, 7, shape, max(size / 25, 8), rr, cc)
    level_db = np.zeros((h, w), np.float32)
    for code, value in CLASS_DB.items():
        inside = classes == code
        level_db[inside] = value + CLASS_MODULATION_DB[code] * modulation[inside]
    ridges = np.exp(-((_smooth(seed, 8, shape, 8.0, rr, cc) / 0.2) ** 2)).astype(np.float32)
    level_db += np.where(classes == DEFORMED, RIDGE_DB * ridges, 0).astype(np.float32)
    land_texture = _smooth(seed, 9, shape, 6.0, rr, cc)
    level_db += np.where(classes == LAND, 3.0 * land_texture, 0).astype(np.float32)

    # The incidence ramp across the columns, with each class's slope.
    near, far = incidence
    theta = (near + (far - near) * cc / max(cols - 1, 1)).astype(np.float32)
    slopes = {code: -0.2 for code in (*CLASS_DB,)}
    if isinstance(slope, Mapping):
        slopes.update({int(k): float(v) for k, v in slope.items()})
    else:
        slopes = {code: float(slope) for code in slopes}
    slope_px = np.zeros((h, w), np.float32)
    for code, value in slopes.items():
        slope_px[classes == code] = value
    level_db += slope_px * (theta[None, :] - np.float32(reference_angle))

    power = np.power(np.float32(10), level_db / np.float32(10)) * _speckle(seed, looks, r0, c0, h, w)
    sigma0_db = (10 * np.log10(np.maximum(power, np.float32(1e-12)))).astype(np.float32)
    valid = np.ones((h, w), bool)
    if nodata:
        valid = (cc[None, :] - (cols - 1)) + 0.08 * cols * (1 - rr[:, None] / max(rows - 1, 1)) <= 0
        sigma0_db[~valid] = np.nan
    truth = np.where(land_w | ~valid, CLASS_NODATA, classes).astype(np.uint8)
    return Scene(
        sigma0_db=sigma0_db,
        classes=truth,
        land=land_w,
        valid=valid,
        incidence=theta,
        reference_angle=reference_angle,
        slopes=slopes,
        window=(r0, c0, h, w),
        frame=(rows, cols),
        looks=looks,
        incidence_near=near,
        incidence_far=far,
    )


def to_dn(scene: Scene, calibration_factor: float) -> NDArray[np.uint16]:
    """The uint16 amplitude of an ICEYE GRD (sigma0 = CF x DN^2, so DN = sqrt(sigma0 / CF)); 0 where no
    data, at least 1 elsewhere (0 is the no-data value of ICEYE GRDs)."""
    return _dn(scene.sigma0_db, calibration_factor)


def _dn(sigma0_db: NDArray[np.float32], calibration_factor: float) -> NDArray[np.uint16]:
    power = np.power(10.0, sigma0_db.astype(np.float64) / 10.0)
    dn = np.rint(np.sqrt(power / calibration_factor))
    dn = np.clip(np.nan_to_num(dn, nan=0.0), 1, 65535)
    dn[~np.isfinite(sigma0_db)] = 0
    return dn.astype(np.uint16)


Field = Literal["sigma0_db", "classes", "land", "valid", "dn"]


def scene_blocks(
    shape: tuple[int, int],
    seed: int,
    field: Field = "sigma0_db",
    *,
    chunks: int = 2048,
    calibration_factor: float | None = None,
    **options: Any,
) -> Any:
    """One field of the frame as a lazy dask array, each block computed by `truth_scene(window=...)` on its
    own: a 16,000 x 16,000 frame costs a few blocks of memory at a time. `dn` needs `calibration_factor`."""
    import dask.array as da

    if field == "dn" and calibration_factor is None:
        raise ValueError("field 'dn' needs the calibration_factor")
    dtype = {"sigma0_db": np.float32, "classes": np.uint8, "land": bool, "valid": bool, "dn": np.uint16}[
        field
    ]

    def block(block_info: dict[Any, Any] | None = None) -> NDArray[Any]:
        assert block_info is not None
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        scene = truth_scene(shape, seed, window=(r0, c0, r1 - r0, c1 - c0), **options)
        if field == "dn":
            return to_dn(scene, float(calibration_factor))  # type: ignore[arg-type]
        return np.asarray(getattr(scene, field))

    return da.map_blocks(
        block, dtype=dtype, chunks=da.core.normalize_chunks(chunks, shape), meta=np.array((), dtype)
    )


# Smooth random fields: one lattice of standard normals per (seed, salt, spacing), interpolated with a
# smoothstep so any window of the frame is the same numbers wherever it is computed.


@lru_cache(maxsize=32)
def _lattice(seed: int, salt: int, rows: int, cols: int) -> NDArray[np.float64]:
    return np.random.default_rng([seed, salt, 1]).standard_normal((rows, cols))


def _weights(positions: NDArray[np.int64], spacing: float, first: int, count: int) -> NDArray[np.float64]:
    """(len(positions), count) interpolation weights of pixel centres on lattice nodes first..first+count."""
    t = (positions + 0.5) / spacing
    i = np.floor(t).astype(np.int64)
    f = t - i
    fade = f * f * (3 - 2 * f)
    out = np.zeros((len(positions), count))
    index = np.arange(len(positions))
    out[index, i - first] = 1 - fade
    out[index, i + 1 - first] = fade
    return out


def _smooth(
    seed: int,
    salt: int,
    shape: tuple[int, int],
    spacing: float,
    rr: NDArray[np.int64],
    cc: NDArray[np.int64],
) -> NDArray[np.float32]:
    """A smooth field of about unit variance with features `spacing` pixels apart, on the window rr x cc."""
    lattice = _lattice(seed, salt, math.ceil(shape[0] / spacing) + 2, math.ceil(shape[1] / spacing) + 2)
    i0, i1 = int((rr[0] + 0.5) // spacing), int((rr[-1] + 0.5) // spacing) + 2
    j0, j1 = int((cc[0] + 0.5) // spacing), int((cc[-1] + 0.5) // spacing) + 2
    wr = _weights(rr, spacing, i0, i1 - i0)
    wc = _weights(cc, spacing, j0, j1 - j0)
    # A smoothstep blend of unit normals has a variance of about 0.52 at the middle of a cell; scale back.
    return ((wr @ lattice[i0:i1, j0:j1] @ wc.T) / 0.75).astype(np.float32)


def _smooth1d(
    seed: int, salt: int, length: int, spacing: float, positions: NDArray[np.int64]
) -> NDArray[np.float64]:
    lattice = _lattice(seed, salt, 1, math.ceil(length / spacing) + 2)[0]
    i0 = int((positions[0] + 0.5) // spacing)
    i1 = int((positions[-1] + 0.5) // spacing) + 2
    return _weights(positions, spacing, i0, i1 - i0) @ lattice[i0:i1] / 0.75


def _speckle(seed: int, looks: int, r0: int, c0: int, h: int, w: int) -> NDArray[np.float32]:
    """Gamma-distributed power of mean 1 (`looks` looks), drawn tile by tile so any window is reproducible."""
    out = np.empty((h, w), np.float32)
    t = SPECKLE_TILE
    for ti in range(r0 // t, (r0 + h - 1) // t + 1):
        for tj in range(c0 // t, (c0 + w - 1) // t + 1):
            rng = np.random.default_rng([seed, 2, ti, tj])
            tile = rng.standard_gamma(looks, size=(t, t), dtype=np.float32) / np.float32(looks)
            a0, a1 = max(r0, ti * t), min(r0 + h, (ti + 1) * t)
            b0, b1 = max(c0, tj * t), min(c0 + w, (tj + 1) * t)
            out[a0 - r0 : a1 - r0, b0 - c0 : b1 - c0] = tile[
                a0 - ti * t : a1 - ti * t, b0 - tj * t : b1 - tj * t
            ]
    return out


_DISTANCE_CACHE: dict[int, tuple[Any, int, NDArray[np.float32]]] = {}


def _distance_to_land(land: Any, rr: NDArray[np.int64], cc: NDArray[np.int64]) -> NDArray[np.float32]:
    """Distance (pixels) to the nearest land pixel on the window, from a Euclidean distance transform of the
    mask reduced to at most 1024 pixels a side (computed once per mask), interpolated linearly."""
    rows, cols = land.shape
    cached = _DISTANCE_CACHE.get(id(land))
    if cached is None or cached[0] is not land:
        factor = max(1, math.ceil(max(rows, cols) / 1024))
        mask = np.asarray(land, dtype=bool)
        pad = (-rows % factor, -cols % factor)
        mask = np.pad(mask, ((0, pad[0]), (0, pad[1])))
        coarse = mask.reshape(mask.shape[0] // factor, factor, mask.shape[1] // factor, factor).any(
            axis=(1, 3)
        )
        distance = (
            ndimage.distance_transform_edt(~coarse).astype(np.float32) * factor
            if coarse.any()
            else np.full(coarse.shape, np.inf, np.float32)
        )
        _DISTANCE_CACHE.clear()
        _DISTANCE_CACHE[id(land)] = cached = (land, factor, distance)
    _, factor, distance = cached
    if not np.isfinite(distance).all():
        return np.full((len(rr), len(cc)), np.inf, np.float32)
    # Linear interpolation between the centres of the coarse cells.
    ti = np.clip((rr + 0.5) / factor - 0.5, 0, distance.shape[0] - 1)
    tj = np.clip((cc + 0.5) / factor - 0.5, 0, distance.shape[1] - 1)
    return ndimage.map_coordinates(
        distance, np.meshgrid(ti, tj, indexing="ij"), order=1, mode="nearest"
    ).astype(np.float32)
