"""QGIS layers of a cube variable: the downloaded GeoTIFF (styled, one band per time step) and the WMTS
stream, and the `TimeStepper` that shows the band (or tile time) of the map canvas's temporal frame.

QGIS 3.22 knows only one fixed time range per raster layer; from 3.38 it knows a range per band. The layer
carries its steps as custom properties (saved with the project), and the stepper switches bands itself where
QGIS cannot.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from qgis.core import (
    Qgis,
    QgsColorRampShader,
    QgsDataProvider,
    QgsDateTimeRange,
    QgsInterval,
    QgsMapLayer,
    QgsNetworkAccessManager,
    QgsProject,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterLayerTemporalProperties,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
    QgsTemporalNavigationObject,
    QgsUnitTypes,
)
from qgis.PyQt.QtCore import QDateTime, QObject, Qt
from qgis.PyQt.QtGui import QColor, QImage

from .client import ServerSettings, Style
from .subset import parse_time, ramp_values, step_at

BAND_TIMES = "cubeport/band_times"  # [[start, end], ...] of the bands (end exclusive)
TIMES = "cubeport/times"  # the cube's time labels of the bands, as the server names them (WMTS dimension)
KIND = "cubeport/kind"  # "download" or "wmts"
PER_BAND = getattr(getattr(Qgis, "RasterTemporalMode", None), "FixedRangePerBand", None)  # QGIS >= 3.38


def qdatetime(text: str) -> QDateTime:
    return QDateTime.fromMSecsSinceEpoch(int(parse_time(text).timestamp() * 1000), Qt.UTC)


def time_ranges(band_times: Sequence[Sequence[str]]) -> list[QgsDateTimeRange]:
    return [QgsDateTimeRange(qdatetime(a), qdatetime(b), True, False) for a, b in band_times]


# --- style -------------------------------------------------------------------------------------------------
def ramp_colours(colorbar: tuple[bytes, bool] | None, name: str | None, count: int) -> list[QColor]:
    """`count` colours along the cube's colour map: sampled from the server's ramp image, else a QGIS ramp of
    that name (QGIS names matplotlib's maps with a capital: Viridis, RdYlGn, ...), else Viridis."""
    positions = [i / max(count - 1, 1) for i in range(count)]
    if colorbar is not None:
        image = QImage.fromData(colorbar[0])
        if not image.isNull():
            row = image.height() // 2
            colours = [image.pixelColor(round(p * (image.width() - 1)), row) for p in positions]
            return colours[::-1] if colorbar[1] else colours
    base = (name or "").removesuffix("_alpha")
    reverse = base.endswith("_r")
    base = base.removesuffix("_r").removeprefix("cmo.")
    style = QgsStyle.defaultStyle()
    names = {n.lower(): n for n in style.colorRampNames()}
    ramp = style.colorRamp(names.get(base.lower(), names.get("viridis", "Viridis")))
    colours = [ramp.color(1 - p if reverse else p) for p in positions]
    return colours


def apply_style(
    layer: QgsRasterLayer, style: Style, colorbar: tuple[bytes, bool] | None, band: int = 1
) -> None:
    """The variable's colour map and value range (the server's, else the band's minimum and maximum); `norm:
    cat` gives one exact colour per class, `log` stops spaced geometrically."""
    vmin, vmax = style.vmin, style.vmax
    if vmin is None or vmax is None or not vmin < vmax:
        stats = layer.dataProvider().bandStatistics(band, QgsRasterBandStats.Min | QgsRasterBandStats.Max)
        vmin, vmax = stats.minimumValue, stats.maximumValue
    stops = ramp_values(style, vmin, vmax)
    colours = ramp_colours(colorbar, style.colormap, len(stops))
    shader_function = QgsColorRampShader(vmin, vmax)
    exact = style.norm == "cat"
    shader_function.setColorRampType(QgsColorRampShader.Exact if exact else QgsColorRampShader.Interpolated)
    shader_function.setColorRampItemList(
        [
            QgsColorRampShader.ColorRampItem(value, colour, f"{value:g}")
            for (value, _), colour in zip(stops, colours, strict=False)
        ]
    )
    shader_function.setClip(not exact)
    shader = QgsRasterShader(vmin, vmax)
    shader.setRasterShaderFunction(shader_function)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), band, shader)
    renderer.setClassificationMin(vmin)
    renderer.setClassificationMax(vmax)
    layer.setRenderer(renderer)


# --- time --------------------------------------------------------------------------------------------------
def make_time_aware(
    layer: QgsMapLayer, times: Sequence[str], band_times: Sequence[Sequence[str]], kind: str
) -> None:
    """Mark the layer's time steps: QGIS's own per-band ranges where it has them, else the whole range (the
    layer shows within it only) with the stepper choosing the band."""
    layer.setCustomProperty(BAND_TIMES, json.dumps([list(pair) for pair in band_times]))
    layer.setCustomProperty(TIMES, json.dumps(list(times)))
    layer.setCustomProperty(KIND, kind)
    ranges = time_ranges(band_times)
    properties = layer.temporalProperties()
    properties.setIsActive(True)
    if kind == "download" and PER_BAND is not None:
        properties.setMode(PER_BAND)
        properties.setFixedRangePerBand({band: r for band, r in enumerate(ranges, start=1)})
        return
    properties.setMode(QgsRasterLayerTemporalProperties.ModeFixedTemporalRange)
    properties.setFixedTemporalRange(QgsDateTimeRange(ranges[0].begin(), ranges[-1].end(), True, False))


def step_through(navigation: Any, band_times: Sequence[Sequence[str]]) -> None:
    """Set up the Temporal Controller to step band by band (QGIS's irregular step: one frame per range)."""
    if not isinstance(navigation, QgsTemporalNavigationObject):
        return
    ranges = time_ranges(band_times)
    known = [r for r in navigation.availableTemporalRanges() if r not in ranges]
    everything = sorted(known + ranges, key=lambda r: r.begin().toMSecsSinceEpoch())
    navigation.setAvailableTemporalRanges(everything)
    navigation.setTemporalExtents(QgsDateTimeRange(everything[0].begin(), everything[-1].end(), True, False))
    navigation.setFrameDuration(QgsInterval(1, QgsUnitTypes.TemporalIrregularStep))
    if navigation.navigationMode() != QgsTemporalNavigationObject.Animated:
        navigation.setNavigationMode(QgsTemporalNavigationObject.Animated)
    navigation.setCurrentFrameNumber(0)


def band_for(layer: QgsMapLayer, frame: QgsDateTimeRange) -> int | None:
    """The 0-based step of `layer` to show in the temporal frame, or None."""
    text = layer.customProperty(BAND_TIMES)
    if not text or not frame.begin().isValid():
        return None
    end = instant(frame.end()) if frame.end().isValid() else None
    return step_at(instant(frame.begin()), end, [tuple(p) for p in json.loads(text)])


def instant(value: QDateTime) -> datetime:
    return datetime.fromtimestamp(value.toMSecsSinceEpoch() / 1000, UTC)


class TimeStepper(QObject):
    """Shows, in every Cubeport layer, the step of the canvas's temporal frame: the renderer's band of a
    download (QGIS < 3.38), the `Time` dimension of a WMTS layer."""

    def __init__(self, canvas: Any) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        canvas.temporalRangeChanged.connect(self.update)
        QgsProject.instance().layersAdded.connect(self._adopt)

    def _adopt(self, layers: Sequence[QgsMapLayer]) -> None:
        """Layers of a project read again, or added by hand: step them too."""
        for layer in layers:
            self.show(layer, self.canvas.temporalRange())

    def update(self) -> None:
        frame = self.canvas.temporalRange()
        for layer in QgsProject.instance().mapLayers().values():
            self.show(layer, frame)

    def show(self, layer: QgsMapLayer, frame: QgsDateTimeRange) -> None:
        kind = layer.customProperty(KIND)
        if kind not in ("download", "wmts") or (kind == "download" and PER_BAND is not None):
            return
        index = band_for(layer, frame)
        if index is None:
            return
        if kind == "download":
            renderer = layer.renderer()  # the plugin's style, unless the user chose another renderer
            if not isinstance(renderer, QgsSingleBandPseudoColorRenderer) or renderer.band() == index + 1:
                return
            renderer.setBand(index + 1)
            layer.triggerRepaint()
            layer.emitStyleChanged()
        else:
            times = json.loads(layer.customProperty(TIMES) or "[]")
            if index < len(times):
                set_wmts_time(layer, times[index])


# --- WMTS --------------------------------------------------------------------------------------------------
def wmts_uri(params: dict[str, str]) -> str:
    """QGIS's WMS provider URI: `key=value` pairs joined by `&`, the capabilities URL last and unencoded.
    Credentials are not in it: `sign_requests` adds them to this server's requests."""
    return "&".join(f"{k}={v}" for k, v in params.items() if k != "url") + f"&url={params['url']}"


def sign_requests(settings: ServerSettings) -> str:
    """Add the API key or token to every QGIS request to this server (WMTS tiles, capabilities), and to no
    other: QGIS 3.22's WMS provider cannot send custom headers. Returns the id to remove the hook with."""
    headers = [(k.encode(), v.encode()) for k, v in settings.headers().items()]

    def sign(request: Any) -> None:
        if headers and settings.covers(request.url().toString()):
            for name, value in headers:
                request.setRawHeader(name, value)

    return QgsNetworkAccessManager.setRequestPreprocessor(sign)


def set_wmts_time(layer: QgsRasterLayer, time: str) -> None:
    source = layer.source()
    head, _, url = source.partition("&url=")
    pairs, wanted = head.split("&"), f"tileDimensions=Time={time}"
    if wanted in pairs:
        return
    pairs = [p for p in pairs if not p.startswith("tileDimensions=")] + [wanted]
    layer.setDataSource(
        "&".join(pairs) + f"&url={url}", layer.name(), "wms", QgsDataProvider.ProviderOptions()
    )
    layer.triggerRepaint()
