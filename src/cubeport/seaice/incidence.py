"""Incidence angle of a GRD scene and the correction of backscatter (dB) to a reference angle.

The angle comes from ICEYE's polynomial over ground range in metres (not pixels: seaice-facts.md section
1); a GRD image is in ground range, so it is one value per column, constant along azimuth. The correction
is the linear one of sea-ice practice, sigma0_ref = sigma0 - slope * (theta - theta_ref), with one slope
or one per ice class (section 3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dask.array as da
import numpy as np

from cubeport.cubes.readers.iceye import IceyeMetadata, far_column, incidence_at
from cubeport.errors import InputError
from cubeport.seaice.strips import in_strips

CLASS_NODATA = 255

# dask.array is untyped: its functions through typed names
_map_blocks: Callable[..., Any] = da.map_blocks
_asarray: Callable[..., Any] = da.asarray
_from_array: Callable[..., Any] = da.from_array


def incidence_grid(metadata: IceyeMetadata, cols: int | None = None) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Incidence angle (degrees, float32) of each of `cols` columns (default: the metadata's width):
    ground range col * range_spacing metres from the first column, through the polynomial."""
    n = metadata.width if cols is None else cols
    if n <= 0:
        raise InputError(f"image {metadata.image_id or '?'}: no columns to give incidence angles to ({n})")
    if metadata.range_spacing <= 0:
        raise InputError(f"image {metadata.image_id or '?'}: the range spacing must be positive")
    if not metadata.incidence_coefficients:
        raise InputError(f"image {metadata.image_id or '?'}: the metadata has no incidence-angle polynomial")
    ground_range = np.arange(n, dtype=np.float64) * metadata.range_spacing
    return np.asarray(incidence_at(metadata, ground_range), dtype=np.float32)


def incidence_problems(metadata: IceyeMetadata, tolerance: float = 0.01) -> list[str]:
    """Whether the incidence polynomial agrees with the stated near and far angles (within `tolerance`
    degrees) at ground range 0 and at the far corner's column times the range spacing: metadata where it
    does not would give a wrong incidence grid and correction."""
    if not metadata.incidence_coefficients:
        return ["no incidence-angle polynomial in the metadata"]
    if not metadata.range_spacing > 0:
        return [f"range spacing {metadata.range_spacing} m is not positive"]
    far_range = far_column(metadata) * metadata.range_spacing
    problems = []
    for where, ground_range, stated in (
        ("near", 0.0, metadata.incidence_near),
        ("far", far_range, metadata.incidence_far),
    ):
        value = incidence_at(metadata, ground_range)
        if not abs(value - stated) <= tolerance:
            problems.append(
                f"the incidence polynomial gives {value:.4f} deg at {where} range ({ground_range:.1f} m), the "
                f"metadata says {stated:.4f} deg (tolerance {tolerance} deg)"
            )
    return problems


def _slope_table(slope: float, class_slopes: Mapping[int, float]) -> np.ndarray[Any, np.dtype[np.float32]]:
    table = np.full(256, slope, dtype=np.float32)
    for code, value in class_slopes.items():
        if not 0 <= int(code) < CLASS_NODATA:
            raise InputError(f"class code {code} has a slope but is not a class (0-254)")
        table[int(code)] = value
    return table


def _correct_block(
    sigma0_db: np.ndarray[Any, Any],
    incidence: np.ndarray[Any, Any],
    reference: float,
    slope: float,
    classes: np.ndarray[Any, Any] | None,
    table: np.ndarray[Any, Any] | None,
    out: np.ndarray[Any, np.dtype[np.float32]] | None = None,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """One block, into `out` if given."""
    delta = np.asarray(incidence, dtype=np.float32) - np.float32(reference)
    if out is None:
        out = np.empty(np.shape(sigma0_db), dtype=np.float32)
    np.copyto(out, sigma0_db, casting="unsafe")
    if classes is None or table is None:
        out -= np.float32(slope) * delta
    else:
        out -= table[np.asarray(classes, dtype=np.uint8)] * delta
    return out


def _chunked_like(array: Any, chunks: Any) -> Any:
    if isinstance(array, da.Array):
        return array.rechunk(chunks)  # type: ignore[no-untyped-call]
    return _from_array(np.asarray(array), chunks=chunks, name=False)


def linear_correction(
    incidence_deg: np.ndarray[Any, Any], reference: float = 25.0, slope: float = -0.2
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The factor on linear power that `correct` applies in dB: 10 ** (-slope * (theta - reference) / 10).
    One multiplication per pixel instead of a logarithm and a power, for the chain's big frames."""
    theta = np.asarray(incidence_deg, dtype=np.float64)
    return np.asarray(10 ** (-slope * (theta - reference) / 10), dtype=np.float32)


def correct(
    sigma0_db: Any,
    incidence_deg: Any,
    reference: float = 25.0,
    slope: float = -0.2,
    classes: Any = None,
    class_slopes: Mapping[int, float] | None = None,
) -> Any:
    """Backscatter (dB) as if seen at `reference` degrees: sigma0 - slope * (theta - reference).

    `incidence_deg` is one angle per column (from `incidence_grid`) or per pixel. With `classes` (uint8
    IceClass codes) and `class_slopes` ({code: dB/deg}), each pixel takes its class's slope, and classes
    not named (and no-data, 255) take `slope`. Numpy in, numpy out; dask in, dask out (lazily, per chunk).
    """
    theta = incidence_deg
    shape = tuple(sigma0_db.shape)
    if np.ndim(theta) == 1:
        if theta.shape[0] != shape[-1]:
            raise InputError(f"{theta.shape[0]} incidence angles for an image of {shape[-1]} columns")
        theta = theta[None, :]
    elif np.ndim(theta) == 2 and tuple(theta.shape) != shape:
        raise InputError(f"incidence angles of shape {tuple(theta.shape)} for an image of shape {shape}")
    use_classes = classes is not None and class_slopes
    if classes is not None and tuple(classes.shape) != shape:
        raise InputError(f"classes of shape {tuple(classes.shape)} for an image of shape {shape}")
    table = _slope_table(slope, class_slopes) if use_classes and class_slopes else None

    if not any(isinstance(a, da.Array) for a in (sigma0_db, theta, classes)):
        values = np.asarray(sigma0_db)
        angles = np.asarray(theta)
        labels = np.asarray(classes) if use_classes else None
        out = np.empty(shape, dtype=np.float32)

        def strip(rows: slice) -> None:
            part = angles if angles.shape[0] == 1 else angles[rows]
            _correct_block(
                values[rows],
                part,
                reference,
                slope,
                None if labels is None else labels[rows],
                table,
                out[rows],
            )

        in_strips(shape[0], strip)
        return out
    sigma = _chunked_like(sigma0_db, "auto" if not isinstance(sigma0_db, da.Array) else sigma0_db.chunks)
    if np.ndim(theta) == 2 and theta.shape[0] == 1:
        theta_lazy = _asarray(theta).rechunk((1, sigma.chunks[1]))
    else:
        theta_lazy = _chunked_like(theta, sigma.chunks)
    if use_classes:
        return _map_blocks(
            _correct_block,
            sigma,
            theta_lazy,
            reference,
            slope,
            _chunked_like(classes, sigma.chunks),
            table,
            dtype=np.float32,
        )
    return _map_blocks(_correct_block, sigma, theta_lazy, reference, slope, None, None, dtype=np.float32)
