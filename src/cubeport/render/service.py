"""Tiles as a service: cubes opened once per version, styles from the catalogue, a size-bounded cache of
encoded tiles, ETags. The HTTP routes (xcube, WMTS, OGC API Tiles) are thin faces over `TileService.tile`."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from threading import Lock

import numpy as np

from cubeport.cubes import cf
from cubeport.cubes.catalogue import Catalogue, CubeEntry
from cubeport.cubes.source import CubeSource
from cubeport.cubes.store import Pointer
from cubeport.cubes.styles import Style
from cubeport.errors import CubeportError
from cubeport.memory_cache import ByteLru, TtlCache
from cubeport.render import png
from cubeport.render.colormaps import check_colormap
from cubeport.render.tiles import CubeLevels, Resampling, colour_indices, palette, render_values
from cubeport.render.tms import TILE_SIZE, tile_matrix_set

log = logging.getLogger("cubeport.render")


@dataclass(frozen=True)
class RenderedTile:
    content: bytes
    etag: str


class TileService:
    STYLE_SECONDS = 2.0  # how soon an edited style shows on the map

    def __init__(self, cubes: CubeSource, catalogue: Catalogue, cache_bytes: int = 128 << 20) -> None:
        self.cubes, self.catalogue = cubes, catalogue
        self.cache: ByteLru[str, bytes] = ByteLru(cache_bytes)
        self._entries: TtlCache[str, CubeEntry] = TtlCache(self.STYLE_SECONDS)
        self._opened: dict[str, tuple[Pointer, CubeLevels]] = {}
        self._lock = Lock()

    def levels(self, cube_id: str) -> CubeLevels:
        """The cube's levels, opened once per published version and step count."""
        pointer = self.cubes.pointer(cube_id)
        with self._lock:
            opened = self._opened.get(cube_id)
        if opened is None or opened[0] != pointer:
            opened = (pointer, CubeLevels(self.cubes, cube_id))
            with self._lock:
                self._opened[cube_id] = opened
        return opened[1]

    def warm_up(self, seconds: float = 10.0) -> list[str]:
        """Open the published cubes and their time-series twins, and render one tile (which loads the
        rendering code), before the first request would, for at most about `seconds`; returns the cubes
        opened. Best effort: whatever fails is logged and skipped, and its requests will say why."""
        deadline = time.monotonic() + seconds
        opened: list[str] = []
        try:
            cube_ids = self.cubes.list()
        except CubeportError as exc:
            log.warning("warm-up skipped: %s", exc)
            return []
        for cube_id in cube_ids:
            if time.monotonic() > deadline:
                break
            try:
                self.levels(cube_id)
                if self.cubes.pointer(cube_id).timeseries:
                    self.cubes.open(cube_id, timeseries=True, dask=False)
                entry = self.entry(cube_id)
                if not opened and entry.variables:
                    west, south, east, north = entry.bbox
                    lat = max(min((south + north) / 2, 85.0), -85.0)
                    centre = tile_matrix_set("WebMercatorQuad").tile((west + east) / 2, lat, 3)
                    self.tile(
                        cube_id,
                        entry.variables[0].name,
                        tms_name="WebMercatorQuad",
                        z=3,
                        x=centre.x,
                        y=centre.y,
                    )
            except Exception as exc:  # noqa: BLE001 - a warm-up must never keep the server from starting
                log.warning("warm-up skipped cube %s: %s", cube_id, exc)
                continue
            opened.append(cube_id)
        return opened

    def entry(self, cube_id: str) -> CubeEntry:
        """The cube's catalogue entry, read at most every few seconds (requests come often, edits rarely)."""
        entry = self._entries.get(cube_id)
        if entry is None:
            entry = self.catalogue.get(cube_id)
            self._entries.put(cube_id, entry)
        return entry

    def style(
        self,
        cube_id: str,
        variable: str,
        *,
        colormap: str | None = None,
        vmin: float | None = None,
        vmax: float | None = None,
        norm: str | None = None,
    ) -> Style:
        """The variable's catalogue style with the request's overrides (InputError for a bad one)."""
        base = self.entry(cube_id).variable(variable).style
        style = Style(
            colormap or base.colormap,
            base.vmin if vmin is None else vmin,
            base.vmax if vmax is None else vmax,
            norm or base.norm,
        )
        check_colormap(style.colormap)
        return style

    def tile(
        self,
        cube_id: str,
        variable: str,
        *,
        tms_name: str,
        z: int,
        x: int,
        y: int,
        time: str | None = None,
        style: Style | None = None,
        resampling: Resampling = "nearest",
        retina: bool = False,
    ) -> RenderedTile:
        """An encoded PNG tile, from the cache when it was made before."""
        cube = self.levels(cube_id)
        style = style or self.style(cube_id, variable)
        index = cf.nearest_step(cube.times, time)
        tms = tile_matrix_set(tms_name)
        key = "/".join(
            map(
                str,
                (
                    cube_id,
                    cube.tag,
                    len(cube.times),
                    variable,
                    index,
                    tms_name,
                    z,
                    x,
                    y,
                    style.colormap,
                    style.vmin,
                    style.vmax,
                    style.norm,
                    resampling,
                    retina,
                ),
            )
        )
        etag = '"' + hashlib.sha1(key.encode()).hexdigest()[:24] + '"'
        cached = self.cache.get(key)
        if cached is not None:
            return RenderedTile(cached, etag)
        if retina:  # 512 px: the four tiles of the next zoom level, side by side
            parts = [
                [
                    render_values(cube, variable, index, tms, z + 1, 2 * x + dx, 2 * y + dy, resampling)
                    for dx in (0, 1)
                ]
                for dy in (0, 1)
            ]
            values = (
                None
                if all(p is None for row in parts for p in row)
                else np.block(
                    [
                        [p if p is not None else np.full((TILE_SIZE, TILE_SIZE), np.nan) for p in row]
                        for row in parts
                    ]
                )
            )
        else:
            values = render_values(cube, variable, index, tms, z, x, y, resampling)
        size = TILE_SIZE * (2 if retina else 1)
        if values is None or not np.isfinite(values).any():
            content = png.empty(size)
        else:
            indices = colour_indices(values, style.vmin, style.vmax, style.norm)  # type: ignore[arg-type]
            content = png.encode(indices, palette(style.colormap, style.norm))  # type: ignore[arg-type]
        self.cache.put(key, content)
        return RenderedTile(content, etag)
