"""Radiometric calibration of ICEYE GRD amplitude (DN) to sigma0, beta0 or gamma0, linear or dB.

GRD: sigma0 = CF * DN^2, with no sin(theta) factor: ICEYE applies it in GRD processing already (SNAP
applied it a second time until 2025, biasing sigma0 by 10 log10 sin(theta), some -2.8 dB at 30 deg).
beta0 = sigma0 / sin(theta); on a flat sea (the ellipsoid) gamma0 = sigma0 / cos(theta). Facts and
sources: seaice-facts.md section 2. DN 0 is no-data (NaN).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import dask.array as da
import numpy as np

from cubeport.cubes.readers.iceye import IceyeMetadata
from cubeport.errors import InputError
from cubeport.seaice.incidence import incidence_grid
from cubeport.seaice.strips import in_strips

Quantity = Literal["sigma0", "beta0", "gamma0"]
QUANTITIES: tuple[str, ...] = ("sigma0", "beta0", "gamma0")

# dask.array is untyped: its functions through typed names
_map_blocks: Callable[..., Any] = da.map_blocks
_asarray: Callable[..., Any] = da.asarray


def _calibrate_block(
    dn: np.ndarray[Any, Any],
    factor: float,
    incidence: np.ndarray[Any, Any] | None,
    quantity: str,
    db: bool,
    out: np.ndarray[Any, np.dtype[np.float32]] | None = None,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """One block, into `out` if given, in place after the first copy."""
    if out is None:
        out = np.empty(dn.shape, dtype=np.float32)
    np.copyto(out, dn, casting="unsafe")
    invalid = (out == 0) | np.isnan(out)
    out *= out
    out *= np.float32(factor)
    if quantity != "sigma0":
        assert incidence is not None
        theta = np.radians(np.asarray(incidence, dtype=np.float64))
        # flat-sea geometry: the ellipsoid incidence angle per column (or pixel)
        divisor = np.sin(theta) if quantity == "beta0" else np.cos(theta)
        out /= divisor.astype(np.float32)
    out[invalid] = np.nan
    if db:
        # 10 log10(x) as ln(x) * 10 / ln(10): numpy's float32 log is vectorised, log10 some 3x slower
        with np.errstate(divide="ignore", invalid="ignore"):
            np.log(out, out=out)
        out *= np.float32(10 / np.log(10))
    return out


def calibrate(
    dn: Any,
    metadata: IceyeMetadata,
    incidence_deg: Any = None,
    quantity: Quantity = "sigma0",
    db: bool = False,
) -> Any:
    """Calibrated backscatter (float32, NaN where DN is 0) from a GRD amplitude image (rows, cols).

    beta0 and gamma0 need the incidence angle: `incidence_deg` per column or per pixel, by default
    `incidence_grid(metadata)` over the image's columns. Numpy in, numpy out; dask in, dask out (per chunk).
    """
    name = metadata.image_id or "?"
    if quantity not in QUANTITIES:
        raise InputError(f"unknown backscatter quantity {quantity!r}: use one of {', '.join(QUANTITIES)}")
    if metadata.product_level.upper() != "GRD":
        raise InputError(
            f"image {name} is {metadata.product_level or 'of unknown level'}, not GRD: calibration handles "
            "ground-range detected amplitude only (SLC is complex, in slant range, and calibrates to beta0 "
            "with sin(theta) still to apply); order or deliver the GRD product"
        )
    factor = metadata.calibration_factor
    if factor is None or not np.isfinite(factor) or factor <= 0:
        raise InputError(
            f"image {name}: the metadata has no usable calibration factor ({factor}); without it DN cannot "
            "become backscatter. ICEYE Scan products are not radiometrically calibrated; ask ICEYE for a "
            "calibrated product or its CALIBRATION_FACTOR"
        )
    if len(dn.shape) != 2:
        raise InputError(f"image {name}: amplitude must be 2-D (rows, cols), not of shape {tuple(dn.shape)}")
    theta = None
    if quantity != "sigma0":
        theta = incidence_grid(metadata, dn.shape[1]) if incidence_deg is None else incidence_deg
        if np.ndim(theta) == 1:
            if theta.shape[0] != dn.shape[1]:
                raise InputError(f"image {name}: {theta.shape[0]} incidence angles for {dn.shape[1]} columns")
            theta = theta[None, :]
        elif np.ndim(theta) == 2 and tuple(theta.shape) != tuple(dn.shape):
            raise InputError(f"image {name}: incidence of shape {tuple(theta.shape)} for {tuple(dn.shape)}")
    if isinstance(dn, da.Array):
        if theta is None:
            return _map_blocks(_calibrate_block, dn, factor, None, quantity, db, dtype=np.float32)
        chunks = (1, dn.chunks[1]) if np.ndim(theta) == 2 and theta.shape[0] == 1 else dn.chunks
        lazy_theta = _asarray(theta).rechunk(chunks)
        return _map_blocks(_calibrate_block, dn, factor, lazy_theta, quantity, db, dtype=np.float32)
    values = np.asarray(dn)
    angles = None if theta is None else np.asarray(theta)
    out = np.empty(values.shape, dtype=np.float32)

    def strip(rows: slice) -> None:
        part = None if angles is None else angles if angles.shape[0] == 1 else angles[rows]
        _calibrate_block(values[rows], factor, part, quantity, db, out[rows])

    in_strips(values.shape[0], strip)
    return out
