"""The plugin's three dialogs: server settings, the cube list of "Add data cube", and the download (or
stream) options of "Load layer". They only collect choices; the plugin acts on them."""

from __future__ import annotations

from collections.abc import Sequence

from qgis.core import QgsCoordinateReferenceSystem, QgsRectangle
from qgis.gui import QgsExtentWidget
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .client import AUTH_KINDS, Cube, PluginError, ServerSettings
from .settings import PluginSettings
from .subset import human_size, plan_download, resolution_label

AUTH_LABELS = {
    "none": "None (public cubes only)",
    "api-key": "API key (X-API-Key)",
    "bearer": "Bearer token (Authorization header)",
}


def _buttons(dialog: QDialog) -> QDialogButtonBox:
    buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


class SettingsDialog(QDialog):
    def __init__(self, settings: PluginSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Cubeport settings")
        form = QFormLayout(self)
        self.url = QLineEdit(settings.server.url)
        self.url.setPlaceholderText("https://cubes.example.org")
        self.auth = QComboBox()
        for kind in AUTH_KINDS:
            self.auth.addItem(AUTH_LABELS[kind], kind)
        self.auth.setCurrentIndex(AUTH_KINDS.index(settings.server.auth))
        self.secret = QLineEdit(settings.server.secret)
        self.secret.setEchoMode(QLineEdit.Password)
        self.secret.setPlaceholderText("cpk_... or an access token")
        self.max_mb = QDoubleSpinBox()
        self.max_mb.setRange(1, 1_000_000)
        self.max_mb.setSuffix(" MB")
        self.max_mb.setValue(settings.max_mb)
        self.folder = QLineEdit(settings.folder)
        form.addRow("Server URL", self.url)
        form.addRow("Sign in with", self.auth)
        form.addRow("API key or token", self.secret)
        form.addRow("Largest download", self.max_mb)
        form.addRow("Download folder", self.folder)
        form.addRow(_buttons(self))

    def settings(self) -> PluginSettings:
        server = ServerSettings(
            url=self.url.text().strip(), auth=self.auth.currentData(), secret=self.secret.text().strip()
        )
        return PluginSettings(server, self.max_mb.value(), self.folder.text().strip())


class AddCubeDialog(QDialog):
    """The cubes the server lets this user see; nothing is downloaded."""

    def __init__(self, cubes: Sequence[Cube], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add data cube")
        layout = QVBoxLayout(self)
        self.list = QListWidget()
        for cube in cubes:
            variables = ", ".join(v.name for v in cube.variables)
            item = QListWidgetItem(f"{cube.title} ({cube.id}): {len(cube.times)} time steps; {variables}")
            item.setData(Qt.UserRole, cube.id)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(self.accept)
        layout.addWidget(
            QLabel(
                f"{len(cubes)} cubes on the server"
                if cubes
                else "The server offers no cubes "
                "to you: sign in (Plugins > Cubeport > Settings) to see restricted ones."
            )
        )
        layout.addWidget(self.list)
        layout.addWidget(_buttons(self))

    def cube_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.UserRole) if item is not None else None

    def select(self, cube_id: str) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.UserRole) == cube_id:
                self.list.setCurrentRow(row)


class LoadLayerDialog(QDialog):
    """Cube, variable, area (default: the map canvas extent), time range, resolution (a level of the cube's
    pyramid; default: full), and download or stream."""

    def __init__(
        self,
        cubes: Sequence[Cube],
        canvas_extent: QgsRectangle,
        canvas_crs: QgsCoordinateReferenceSystem,
        max_mb: float,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Load layer")
        self.cubes = {cube.id: cube for cube in cubes}
        self.canvas_extent, self.canvas_crs, self.max_mb = canvas_extent, canvas_crs, max_mb
        form = QFormLayout(self)
        self.cube = QComboBox()
        for cube in cubes:
            self.cube.addItem(f"{cube.title} ({cube.id})", cube.id)
        self.variable = QComboBox()
        self.extent = QgsExtentWidget()
        self.start, self.end = QComboBox(), QComboBox()
        self.resolution = QComboBox()
        self.stream = QCheckBox("Stream as map tiles (WMTS, with the time dimension) instead of downloading")
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        form.addRow("Cube", self.cube)
        form.addRow("Variable", self.variable)
        form.addRow("Area", self.extent)
        form.addRow("From", self.start)
        form.addRow("To", self.end)
        form.addRow("Resolution", self.resolution)
        form.addRow(self.stream)
        form.addRow(self.summary)
        form.addRow(_buttons(self))
        self.cube.currentIndexChanged.connect(self._cube_changed)
        for widget in (self.variable, self.start, self.end, self.resolution):
            widget.currentIndexChanged.connect(self._describe)
        self.extent.extentChanged.connect(self._describe)
        self.stream.toggled.connect(self._describe)
        self._cube_changed()

    def current_cube(self) -> Cube:
        return self.cubes[self.cube.currentData()]

    def _cube_changed(self) -> None:
        cube = self.current_cube()
        for combo, items in (
            (self.variable, [(v.label, v.name) for v in cube.variables]),
            (self.start, [(t, t) for t in cube.times]),
            (self.end, [(t, t) for t in cube.times]),
            (
                self.resolution,
                [
                    (
                        ("Full resolution, " if level == 0 else f"Level {level}, ")
                        + resolution_label(cube, level),
                        level,
                    )
                    for level in range(max(1, len(cube.resolutions)))
                ],
            ),
        ):
            combo.blockSignals(True)
            combo.clear()
            for label, value in items:
                combo.addItem(label, value)
            combo.blockSignals(False)
        self.end.setCurrentIndex(self.end.count() - 1)
        crs = QgsCoordinateReferenceSystem(cube.crs)
        self.extent.setOutputCrs(crs)
        self.extent.setOriginalExtent(self._cube_extent(cube), crs)
        self.extent.setCurrentExtent(self.canvas_extent, self.canvas_crs)
        self.extent.setOutputExtentFromCurrent()
        try:
            plan_download(cube, cube.variables[0].name, self.bbox(), max_mb=float("inf"))
        except PluginError:  # the canvas shows no part of the cube: take the whole cube
            self.extent.setOutputExtentFromOriginal()
        self._describe()

    @staticmethod
    def _cube_extent(cube: Cube) -> QgsRectangle:
        dims = cube.variables[0].dims if cube.variables else ()
        ys, xs = (cube.coords.get(d, ()) for d in dims[-2:]) if len(dims) >= 2 else ((), ())
        if len(xs) > 1 and len(ys) > 1:
            return QgsRectangle(min(xs), min(ys), max(xs), max(ys))
        return QgsRectangle(*cube.bbox)

    def bbox(self) -> tuple[float, float, float, float]:
        box = self.extent.outputExtent()
        return box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()

    def choice(self) -> dict[str, object]:
        return {
            "cube_id": self.current_cube().id,
            "variable": self.variable.currentData(),
            "bbox": self.bbox(),
            "start": self.start.currentData(),
            "end": self.end.currentData(),
            "stream": self.stream.isChecked(),
            "level": self.resolution.currentData() or 0,
        }

    def _describe(self) -> None:
        if self.stream.isChecked():
            self.summary.setText("Adds a WMTS layer: nothing is downloaded, the server renders the tiles.")
            return
        choice = self.choice()
        try:
            plan = plan_download(
                self.current_cube(),
                str(choice["variable"]),
                self.bbox(),
                str(choice["start"]),
                str(choice["end"]),
                max_mb=self.max_mb,
                level=int(choice["level"]),
            )  # type: ignore[call-overload]
            bands, height, width = plan.shape
            self.summary.setText(
                f"Downloads {bands} time steps of {width} x {height} pixels, {human_size(plan.nbytes)}."
            )
        except PluginError as exc:
            self.summary.setText(str(exc))
