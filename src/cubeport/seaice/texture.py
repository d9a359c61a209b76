"""Local mean and texture of backscatter (dB) in square windows: the classifier's features.

In dB, multiplicative speckle becomes additive with a constant spread, so a smooth surface (open water, new
and level ice) shows the speckle's spread whatever its brightness, and ridges and rubble add to it. Texture
is measured at two scales: the standard deviation in a small window, and the roughness in a large window
(the root mean square of each pixel's departure from its small-window mean). The large-scale measure is
taken around the small-scale mean rather than the large-window mean so the step between two smooth classes
(a lead's edge) does not read as rough ice for half a window on either side.

Box means cost the same for any window size (cv2.boxFilter, ten times faster than
scipy.ndimage.uniform_filter with the same mirrored edges); a window only needs `halo()` pixels of its
neighbours, so blocks with that halo give the same numbers as the whole image. No-data (NaN) pixels are
left out of every window rather than spreading NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

SCALES: tuple[int, int] = (5, 15)  # window sizes (pixels) of the small and the large scale
FEATURES: tuple[str, ...] = ("mean_db_5", "std_db_5", "roughness_db_15")
MIN_FRACTION = 0.2  # a window with fewer valid pixels than this share gives NaN
# Values are centred on this dB level before squaring, so float32 variances keep their digits.
_OFFSET = np.float32(-15.0)


def halo(scales: Sequence[int] = SCALES) -> int:
    """Pixels of neighbours a block needs on each side so its features equal the whole image's: the large
    window around pixels whose small-window means are themselves needed."""
    small, large = scales
    return large // 2 + small // 2


def box_mean(x: NDArray[np.float32], size: int) -> NDArray[np.float32]:
    """The mean of each size x size window, edges mirrored (scipy's 'reflect')."""
    out = cv2.boxFilter(x, -1, (size, size), normalize=True, borderType=cv2.BORDER_REFLECT)
    return np.asarray(out, np.float32)


def local_stats(x: NDArray[np.floating], size: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Mean and standard deviation of the finite values of `x` in each `size` x `size` window (NaN where
    fewer than MIN_FRACTION of the window is finite)."""
    valid, values, count = _prepare(x, size)
    return _stats(values, count, size)


def features(sigma0_db: NDArray[np.floating], scales: Sequence[int] = SCALES) -> NDArray[np.float32]:
    """The classifier's features, (3, rows, cols) float32 in the order of FEATURES: the local mean (dB) at
    the small scale (speckle averaged down, so classes a few dB apart separate pixel by pixel), the local
    standard deviation (dB) at the small scale and the roughness (dB) at the large scale. NaN where a
    window is mostly no-data."""
    small, large = scales
    valid, values, count = _prepare(sigma0_db, small)
    mean, std = _stats(values, count, small)
    departure = np.where(valid & np.isfinite(mean), values - (mean - _OFFSET), np.float32(0))
    valid_large = valid & np.isfinite(mean)
    count_large = box_mean(valid_large.astype(np.float32), large) if not valid_large.all() else None
    squares = box_mean(departure * departure, large)
    if count_large is None:
        roughness = np.sqrt(np.maximum(squares, 0))
    else:
        enough = count_large >= MIN_FRACTION
        roughness = np.where(
            enough, np.sqrt(np.maximum(squares / np.where(enough, count_large, 1), 0)), np.nan
        )
    return np.stack([mean, std, roughness.astype(np.float32)])


def _prepare(
    x: NDArray[np.floating], size: int
) -> tuple[NDArray[np.bool_], NDArray[np.float32], NDArray[np.float32] | None]:
    """Validity, values centred on _OFFSET (0 where invalid) and the valid share of each window (None when
    every pixel is valid, which saves a filter)."""
    x = np.asarray(x, np.float32)
    valid = np.isfinite(x)
    if valid.all():
        return valid, x - _OFFSET, None
    values = np.where(valid, x - _OFFSET, np.float32(0))
    return valid, values, box_mean(valid.astype(np.float32), size)


def _stats(
    values: NDArray[np.float32], count: NDArray[np.float32] | None, size: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    total = box_mean(values, size)
    squares = box_mean(values * values, size)
    if count is None:
        mean = total
        std = np.sqrt(np.maximum(squares - mean * mean, np.float32(0)))
        return (mean + _OFFSET).astype(np.float32), std.astype(np.float32)
    enough = count >= MIN_FRACTION
    safe = np.where(enough, count, np.float32(1))
    average = total / safe
    std = np.sqrt(np.maximum(squares / safe - average * average, np.float32(0)))
    nan = np.float32(np.nan)
    return np.where(enough, average + _OFFSET, nan).astype(np.float32), np.where(enough, std, nan).astype(
        np.float32
    )
