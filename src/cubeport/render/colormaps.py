"""Colour maps as lookup tables: matplotlib's and cmocean's, with xcube's `_r` (reversed) and `_alpha`
(transparent at the low end) suffixes. A table has 255 colours; index 255 of a tile is "no data"."""

from __future__ import annotations

from functools import lru_cache

import cmocean  # noqa: F401  (registers the `cmo.*` colour maps with matplotlib)
import matplotlib as mpl
import numpy as np

from cubeport.errors import InputError

COLOURS = 255  # palette entries for values; entry 255 is transparent no-data
NODATA_INDEX = 255


def _resolve(name: str) -> tuple[str, bool]:
    """The matplotlib name of a colour map, and whether `_alpha` was asked for."""
    alpha = name.endswith("_alpha")
    base = name.removesuffix("_alpha")
    for candidate in (base, f"cmo.{base}"):
        if candidate in mpl.colormaps:
            return candidate, alpha
    raise InputError(
        f"colour map {name!r} unknown; use a matplotlib or cmocean name such as viridis, "
        "RdYlBu_r or thermal, optionally with _r and _alpha"
    )


def check_colormap(name: str) -> str:
    _resolve(name)
    return name


@lru_cache(maxsize=256)
def lookup_table(name: str) -> np.ndarray:
    """RGBA uint8 table of shape (256, 4): 255 colours from low to high, then transparent no-data."""
    resolved, alpha = _resolve(name)
    colormap = mpl.colormaps[resolved]
    table = np.zeros((256, 4), dtype=np.uint8)
    table[:COLOURS] = np.round(colormap(np.linspace(0.0, 1.0, COLOURS)) * 255).astype(np.uint8)
    if alpha:
        table[:COLOURS, 3] = np.round(np.linspace(0.0, 255.0, COLOURS)).astype(np.uint8)
    table.setflags(write=False)
    return table


@lru_cache(maxsize=256)
def categorical_table(name: str) -> np.ndarray:
    """RGBA table for class values 0..254: a qualitative map's own colours repeated (tab20: 20 colours)."""
    resolved, _ = _resolve(name)
    colormap = mpl.colormaps[resolved]
    count = min(colormap.N, COLOURS)  # a listed map such as tab20 has N = 20; integers index its colours
    table = np.zeros((256, 4), dtype=np.uint8)
    colours = np.round(colormap(np.arange(COLOURS) % count) * 255).astype(np.uint8)
    table[:COLOURS] = colours
    table.setflags(write=False)
    return table


def names() -> list[str]:
    """Colour map names, without reversed copies (every name also works with `_r`)."""
    return sorted(n for n in mpl.colormaps if not n.endswith("_r"))
