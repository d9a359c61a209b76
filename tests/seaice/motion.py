"""Synthetic drift pairs: a speckled ice scene and the same ice moved by a known displacement field.

The truth is exact by construction, so a drift estimate can be scored in pixels. The texture (floes, leads,
ridges at several scales) is what moves; each image gets its own speckle, as two SAR passes a day apart do,
so the matcher has to follow the ice and not the noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Field = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Motion:
    """A smooth displacement in pixels: rotation and shear about the image centre, a shift, and a gentle wave.

    `shift_x` is towards increasing columns (east on a north-up grid), `shift_y` towards increasing rows
    (south). The wave adds `wave_px` * sin(2 pi row / `wave_length`) to the x displacement, so the field is
    not affine and a first guess has to be refined locally.
    """

    shift_x: float = 0.0
    shift_y: float = 0.0
    rotation_deg: float = 0.0
    shear: float = 0.0
    wave_px: float = 0.0
    wave_length: float = 4000.0
    centre: tuple[float, float] | None = None  # (col, row); the image centre when None

    def field(
        self, cols: np.ndarray, rows: np.ndarray, shape: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(dx, dy) in pixels at these pixel positions (index coordinates: pixel centres are integers)."""
        cx, cy = self.centre if self.centre else ((shape[1] - 1) / 2, (shape[0] - 1) / 2)
        x, y = cols - cx, rows - cy
        a = np.deg2rad(self.rotation_deg)
        # clockwise on the image (rows grow downwards) = counter-clockwise on the map for a positive angle
        nx = np.cos(a) * x + np.sin(a) * y + self.shear * y
        ny = -np.sin(a) * x + np.cos(a) * y
        dx = nx - x + self.shift_x + self.wave_px * np.sin(2 * np.pi * rows / self.wave_length)
        dy = ny - y + self.shift_y
        return dx, dy


def texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Noise-free backscatter in dB: floes and leads (thresholded large-scale noise) with ridging at
    smaller scales, between open water near -22 dB and deformed ice near -6 dB."""
    h, w = shape
    total = np.zeros(shape, np.float32)
    for scale, weight in ((256, 1.0), (64, 0.6), (16, 0.45), (4, 0.35), (2, 0.25)):
        small = rng.standard_normal((max(2, h // scale + 2), max(2, w // scale + 2))).astype(np.float32)
        big = cv2.resize(small, (w + 2 * scale, h + 2 * scale), interpolation=cv2.INTER_CUBIC)
        total += weight * big[scale : scale + h, scale : scale + w]
    floes = cv2.GaussianBlur((total > -0.2).astype(np.float32), (0, 0), 1.5)  # leads are where it is low
    return (-21.0 + 11.0 * floes + 2.5 * total).astype(np.float32)


def speckle(db: np.ndarray, rng: np.random.Generator, looks: float) -> np.ndarray:
    """Multiplicative Gamma speckle of `looks` looks, applied in linear power and returned in dB."""
    noise = rng.gamma(looks, 1.0 / looks, size=db.shape).astype(np.float32)
    return (db + 10.0 * np.log10(noise)).astype(np.float32)


def pair(
    shape: tuple[int, int],
    seed: int,
    displacement: Motion | Field,
    looks: float = 4.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(first, second, truth_u, truth_v): float32 dB scenes and the displacement in pixels at each pixel of
    `first` (truth_u along columns, truth_v along rows), so ice at (col, row) in `first` is found at
    (col + truth_u, row + truth_v) in `second`.

    `displacement` is a Motion or any callable (cols, rows) -> (dx, dy) in pixels. The second scene samples
    the texture at the inverse positions (a fixed-point inverse of the smooth field), bicubic, outside the
    first scene is NaN; both scenes then get independent speckle.
    """
    rng = np.random.default_rng(seed)
    clean = texture(shape, rng)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)

    def move(c: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(displacement, Motion):
            return displacement.field(c, r, shape)
        return displacement(c, r)

    truth_u, truth_v = (a.astype(np.float32) for a in move(cols, rows))
    # the source p of each target q solves p + d(p) = q; the field is smooth, so iterating converges fast
    src_c, src_r = cols - truth_u, rows - truth_v
    for _ in range(4):
        du, dv = move(src_c, src_r)
        src_c, src_r = (cols - du).astype(np.float32), (rows - dv).astype(np.float32)
    second = cv2.remap(
        clean, src_c, src_r, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=float("nan")
    )
    del src_c, src_r, rows, cols
    first = speckle(clean, rng, looks)
    second = speckle(second, rng, looks)
    return first, second, truth_u, truth_v
