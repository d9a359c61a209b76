"""What to download, planned from a cube's description alone: the pixel window of a bbox at a resolution (a
level of the cube's pyramid), the time steps of a time range, the raster's georeferencing, its size against
the budget, and the time range of every band.

Qt-free and GDAL-free, unit-tested in the project's environment. A band covers its time step until the
next step of the cube (the last one for the cube's typical step), so QGIS's Temporal Controller always
has one band to show anywhere within the cube's time extent.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import median

from .client import Cube, PluginError, Style, TooLargeError

DEFAULT_MAX_MB = 1024


def parse_time(text: str) -> datetime:
    """An ISO 8601 instant (the server's `...Z` form, or naive meaning UTC) as an aware datetime."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def band_times(times: Sequence[str]) -> list[tuple[str, str]]:
    """(start, end) of each step: from the step to the next one; the last lasts the median step (a day for
    a single step). The end is exclusive."""
    instants = [parse_time(t) for t in times]
    steps = [b - a for a, b in zip(instants, instants[1:], strict=False) if b > a]
    last = median(steps) if steps else timedelta(days=1)
    ends = instants[1:] + ([instants[-1] + last] if instants else [])
    return [(iso(a), iso(b)) for a, b in zip(instants, ends, strict=False)]


def step_at(begin: datetime, end: datetime | None, ranges: Sequence[tuple[str, str]]) -> int | None:
    """The index of the band to show for the frame [begin, end): the one holding `begin`, else the first
    that starts within the frame; None when the frame misses every band."""
    parsed = [(parse_time(a), parse_time(b)) for a, b in ranges]
    for index, (start, stop) in enumerate(parsed):
        if start <= begin < stop:
            return index
    if end is not None:
        for index, (start, _) in enumerate(parsed):
            if begin <= start < end:
                return index
    return None


@dataclass(frozen=True)
class Axis:
    """Indices start, start + step, ... (stop exclusive; step -1 walks backwards) of one array dimension."""

    start: int
    stop: int
    step: int

    @property
    def size(self) -> int:
        return len(range(self.start, self.stop, self.step))

    def view(self) -> str:
        """GDAL's multidimensional slicing text for this axis (numpy-like, negative steps allowed)."""
        if self.step == 1:
            return f"{self.start}:{self.stop}"
        return f"{self.start}:{self.stop}:-1" if self.stop >= 0 else f"{self.start}::-1"


@dataclass(frozen=True)
class DownloadPlan:
    cube_id: str
    variable: str
    dtype: str
    crs: str
    times: tuple[str, ...]
    band_times: tuple[tuple[str, str], ...]
    time: Axis
    y: Axis
    x: Axis
    geotransform: tuple[float, float, float, float, float, float]
    level: int = 0  # of the cube's pyramid: 0 is full resolution, each level halves it

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.time.size, self.y.size, self.x.size

    @property
    def nbytes(self) -> int:
        bands, height, width = self.shape
        return bands * height * width * itemsize(self.dtype)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """west, south, east, north of the raster's outer pixel edges."""
        x0, dx, _, y0, _, dy = self.geotransform
        return x0, y0 + dy * self.y.size, x0 + dx * self.x.size, y0

    def view(self) -> str:
        return f"[{self.time.view()},{self.y.view()},{self.x.view()}]"

    def file_name(self) -> str:
        key = hashlib.sha1(repr((self.bounds, self.times, self.level)).encode()).hexdigest()[:8]
        first, last = (t[:10].replace("-", "") for t in (self.times[0], self.times[-1]))
        return safe_name(f"{self.cube_id}.{self.variable}.{first}-{last}.{key}") + ".tif"


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:150]


def itemsize(dtype: str) -> int:
    if dtype in ("bool", "|b1"):
        return 1
    digits = re.findall(r"\d+", dtype)
    if not digits:
        return 8
    size = int(digits[-1])
    return size // 8 if dtype.lstrip("<>|=").startswith(("int", "uint", "float", "complex")) else size


def human_size(nbytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if nbytes < 1024 or unit == "TB":
            return f"{nbytes:,.0f} {unit}" if unit == "bytes" else f"{nbytes:,.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _regular(values: Sequence[float], name: str) -> tuple[float, float]:
    """First centre and step of a regular coordinate, or a PluginError."""
    if len(values) < 2:
        raise PluginError(
            f"dimension {name!r} has {len(values)} coordinate(s): at least 2 are needed to place the raster"
        )
    first, step = float(values[0]), (float(values[-1]) - float(values[0])) / (len(values) - 1)
    if step == 0 or any(abs(float(v) - (first + i * step)) > 0.01 * abs(step) for i, v in enumerate(values)):
        raise PluginError(f"dimension {name!r} is not a regular grid; the plugin only loads regular grids")
    return first, step


def level_coordinates(values: Sequence[float], level: int) -> list[float]:
    """A regular coordinate at a level of the server's pyramid: each level averages pairs of pixels, an odd
    last pixel with the one it would have beyond the edge (as `cubeport.cubes.pyramid` builds the levels)."""
    current = [float(v) for v in values]
    for _ in range(level):
        if len(current) % 2:
            current.append(current[-1] + (current[-1] - current[-2] if len(current) > 1 else 1.0))
        current = [(a + b) / 2 for a, b in zip(current[::2], current[1::2], strict=False)]
    return current


def resolution_label(cube: Cube, level: int) -> str:
    """How fine a level is, as users read it: "300 m" or "0.0025°"."""
    size = cube.resolutions[level] if level < len(cube.resolutions) else math.nan
    if cube.crs.upper() in ("EPSG:4326", "OGC:CRS84") or size < 1:
        return f"{size:.4g}°"
    return f"{size:,.0f} m" if size < 10_000 else f"{size / 1000:,.3g} km"


def _window(
    first: float, step: float, size: int, lo: float, hi: float, descending: bool
) -> tuple[Axis, float]:
    """The indices of the pixels meeting [lo, hi] along one axis, ordered ascending (or descending) in
    coordinate, and the coordinate of the outer edge where the raster starts."""
    a, b = (lo - first) / step + 0.5, (hi - first) / step + 0.5
    a, b = min(a, b), max(a, b)
    start, stop = max(0, math.floor(a)), min(size, math.ceil(b))
    if stop <= start:
        raise PluginError("the chosen area does not overlap the cube")
    ascending_indices = (step > 0) != descending
    edges = (first + (start - 0.5) * step, first + (stop - 0.5) * step)
    origin = max(edges) if descending else min(edges)
    if ascending_indices:
        return Axis(start, stop, 1), origin
    return Axis(stop - 1, start - 1, -1), origin


def plan_download(
    cube: Cube,
    variable: str,
    bbox: tuple[float, float, float, float] | None = None,
    start: str | None = None,
    end: str | None = None,
    max_mb: float = DEFAULT_MAX_MB,
    level: int = 0,
) -> DownloadPlan:
    """The download of `variable` within `bbox` (west, south, east, north in the cube's CRS; None: all), the
    steps from `start` to `end` (ISO instants, both included; None: open), at pyramid `level` (0: full
    resolution). TooLargeError past `max_mb`."""
    levels = max(1, len(cube.resolutions))
    if not 0 <= level < levels:
        raise PluginError(f"cube {cube.id!r} has levels 0 (full resolution) to {levels - 1}, not {level}")
    var = cube.variable(variable)
    if len(var.dims) != 3 or var.dims[0] != "time":
        raise PluginError(
            f"variable {variable!r} has dimensions {', '.join(var.dims)}: the plugin loads "
            "(time, y, x) variables"
        )
    ydim, xdim = var.dims[1], var.dims[2]
    try:
        times, ys, xs = (cube.coords[d] for d in ("time", ydim, xdim))
    except KeyError as exc:
        raise PluginError(f"the server did not list the coordinates of dimension {exc.args[0]!r}") from None
    xs, ys = level_coordinates(xs, level), level_coordinates(ys, level)
    x0, dx = _regular(xs, xdim)
    y0, dy = _regular(ys, ydim)
    west, south, east, north = bbox if bbox is not None else (-math.inf, -math.inf, math.inf, math.inf)
    if not (west < east and south < north):
        raise PluginError("the chosen area is empty: west must be less than east and south less than north")
    x, left = _window(x0, dx, len(xs), max(west, -1e300), min(east, 1e300), descending=False)
    y, top = _window(y0, dy, len(ys), max(south, -1e300), min(north, 1e300), descending=True)
    lo = parse_time(start) if start else None
    hi = parse_time(end) if end else None
    if lo and hi and hi < lo:
        raise PluginError("the time range ends before it starts")
    chosen = [
        i
        for i, t in enumerate(times)
        if (lo is None or parse_time(t) >= lo) and (hi is None or parse_time(t) <= hi)
    ]
    if not chosen:
        raise PluginError("the cube has no time step in the chosen time range")
    ranges = band_times(times)
    plan = DownloadPlan(
        cube_id=cube.id,
        variable=variable,
        dtype=var.dtype,
        crs=cube.crs,
        times=tuple(times[chosen[0] : chosen[-1] + 1]),
        band_times=tuple(ranges[chosen[0] : chosen[-1] + 1]),
        time=Axis(chosen[0], chosen[-1] + 1, 1),
        y=y,
        x=x,
        geotransform=(left, abs(dx), 0.0, top, 0.0, -abs(dy)),
        level=level,
    )
    if plan.nbytes > max_mb * 1024 * 1024:
        bands, height, width = plan.shape
        raise TooLargeError(
            f"The download would be {human_size(plan.nbytes)} ({bands} time steps of {width} x {height} "
            f"{var.dtype} values), more than the limit of {human_size(max_mb * 1024 * 1024)} in Plugins > "
            "Cubeport > Settings. Choose a smaller area, fewer time steps or a coarser resolution, or stream "
            "it as map tiles."
        )
    return plan


# --- map tiles ---------------------------------------------------------------------------------------------
TILE_MATRIX_SETS = {
    "EPSG:3067": ("TM35FIN", "EPSG:3067"),
    "EPSG:4326": ("WorldCRS84Quad", "EPSG:4326"),
    "OGC:CRS84": ("WorldCRS84Quad", "EPSG:4326"),
}


def tile_matrix_set(canvas_crs: str) -> tuple[str, str]:
    """The server's tile matrix set (and its CRS) that needs no reprojection in a canvas in `canvas_crs`."""
    return TILE_MATRIX_SETS.get(canvas_crs.upper(), ("WebMercatorQuad", "EPSG:3857"))


def wmts_params(
    capabilities_url: str, cube_id: str, variable: str, time: str, canvas_crs: str
) -> dict[str, str]:
    """The parameters of QGIS's WMS provider URI for the layer `cube.variable` at one time step."""
    tms, crs = tile_matrix_set(canvas_crs)
    return {
        "contextualWMSLegend": "0",
        "crs": crs,
        "dpiMode": "7",
        "format": "image/png",
        "layers": f"{cube_id}.{variable}",
        "styles": "default",
        "tileMatrixSet": tms,
        "tileDimensions": f"Time={time}",
        "url": capabilities_url,
    }


# --- style ---------------------------------------------------------------------------------------------------
def ramp_values(style: Style, vmin: float, vmax: float, count: int = 32) -> list[tuple[float, float]]:
    """(value, position in the colour map 0..1) of the stops of a colour ramp from `vmin` to `vmax`:
    evenly spaced, geometric for `norm: log`, one stop per integer class (at most 256) for `norm: cat`."""
    if vmax <= vmin:
        return [(vmin, 0.0), (vmin, 1.0)]
    if style.norm == "cat":
        classes = [float(v) for v in range(math.ceil(vmin), math.floor(vmax) + 1)][:256]
        span = max(len(classes) - 1, 1)
        return [(v, i / span) for i, v in enumerate(classes)]
    fractions = [i / (count - 1) for i in range(count)]
    if style.norm == "log" and vmin > 0:
        ratio = vmax / vmin
        return [(vmin * ratio**f, f) for f in fractions]
    return [(vmin + (vmax - vmin) * f, f) for f in fractions]
