"""Default styles for cube variables: a colour map and a value range a map can start with.

Users edit styles in the catalogue later; these defaults only have to be sensible on first sight.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from cubeport.cubes.pyramid import is_categorical
from cubeport.errors import InputError

NORMS = ("lin", "log", "cat")
# variable-name hints, checked in order, for the colour map a user of such data expects
_COLORMAP_HINTS = (
    (("chl", "chlorophyll"), "viridis"),
    (("sst", "temperature", "temp"), "RdYlBu_r"),
    (("tsm", "turbidity", "kd"), "YlOrBr"),
    (("ndvi",), "RdYlGn"),
    (("ice", "sic"), "Blues_r"),
    (("sigma", "backscatter", "vv", "vh", "hh", "hv"), "gray"),
)


@dataclass(frozen=True)
class Style:
    colormap: str
    vmin: float
    vmax: float
    norm: str = "lin"

    def __post_init__(self) -> None:
        check_style(self.colormap, self.vmin, self.vmax, self.norm)


def check_style(colormap: str, vmin: float, vmax: float, norm: str) -> None:
    """InputError for a style no map could draw."""
    if not colormap or len(colormap) > 64:
        raise InputError("colormap must be a name such as 'viridis'")
    if not (np.isfinite(vmin) and np.isfinite(vmax)) or vmin >= vmax:
        raise InputError(f"value range {vmin}..{vmax} is empty: vmin must be less than vmax")
    if norm not in NORMS:
        raise InputError(f"norm {norm!r} unknown; use one of {', '.join(NORMS)}")
    if norm == "log" and vmin <= 0:
        raise InputError("a log norm needs vmin > 0")


def default_style(name: str, var: xr.DataArray) -> Style:
    """A style for `var` from its name and a sample of its values (valid_min/max attributes are often in
    packed units, so they are not trusted)."""
    if is_categorical(var):
        return Style("tab20", *_category_range(var), norm="cat")
    lowered = name.lower()
    colormap = next((cmap for words, cmap in _COLORMAP_HINTS if any(w in lowered for w in words)), "viridis")
    values = np.asarray(var.values, dtype="float64")
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Style(colormap, 0.0, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        low, high = (float(v) for v in np.percentile(values, [2, 98]))
    if low >= high:
        low, high = float(values.min()), float(values.max())
    if low >= high:
        high = low + 1.0
    return Style(colormap, _nice(low, "floor"), _nice(high, "ceil"))


def _category_range(var: xr.DataArray) -> tuple[float, float]:
    values = var.attrs.get("flag_values")
    if values is not None and np.size(values) > 1:
        return float(np.min(values)), float(np.max(values))
    return 0.0, 255.0


def _nice(value: float, how: str) -> float:
    """Round to two significant digits in the given direction, so ranges read well in a legend."""
    if value == 0:
        return 0.0
    scale = 10 ** (np.floor(np.log10(abs(value))) - 1)
    rounded = (np.floor if how == "floor" else np.ceil)(value / scale) * scale
    return float(np.round(rounded, 10))
