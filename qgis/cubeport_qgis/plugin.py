"""The plugin: Plugins > Cubeport > Add data cube, Load layer, Settings.

"Add data cube" keeps a cube's description in the session (and a layer group for it) without reading data;
"Load layer" downloads one variable in a QgsTask and adds it with one band per time step, or adds it as a WMTS
stream. Every failure is a message in the message bar that says what to do.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsLayerTreeGroup,
    QgsMessageLog,
    QgsNetworkAccessManager,
    QgsProject,
    QgsRasterLayer,
)
from qgis.PyQt.QtWidgets import QAction, QProgressBar, QPushButton

from . import settings as stored
from .client import Cancelled, Cube, CubeportClient, PluginError
from .dialogs import AddCubeDialog, LoadLayerDialog, SettingsDialog
from .layers import TimeStepper, apply_style, make_time_aware, sign_requests, step_through, wmts_uri
from .subset import DownloadPlan, band_times, plan_download, resolution_label, tile_matrix_set, wmts_params
from .task import DownloadTask

MENU = "&Cubeport"


class CubeportPlugin:
    def __init__(self, iface: Any) -> None:
        self.iface = iface
        self.session: dict[str, Cube] = {}  # the added cubes
        self.tasks: list[DownloadTask] = []  # running downloads (QgsTask objects must stay referenced)
        self.actions: list[QAction] = []
        self.stepper: TimeStepper | None = None
        self.last_layer: QgsRasterLayer | None = None
        self.signer: str | None = None  # the request hook that signs QGIS's own requests to the server

    # --- QGIS plugin interface ----------------------------------------------------------------------------
    def initGui(self) -> None:  # noqa: N802
        window = self.iface.mainWindow()
        for text, slot in (
            ("Add data cube…", self.run_add_cube),
            ("Load layer…", self.run_load_layer),
            ("Settings…", self.run_settings),
        ):
            action = QAction(text, window)
            action.triggered.connect(slot)
            self.iface.addPluginToMenu(MENU, action)
            self.actions.append(action)
        self.stepper = TimeStepper(self.iface.mapCanvas())
        self.sign(self.settings.server)  # map-tile layers of a saved project need the credentials too

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginMenu(MENU, action)
        self.actions.clear()
        for task in self.tasks:
            task.cancel()
        if self.stepper is not None:
            self.stepper.deleteLater()
            self.stepper = None
        self.sign(None)

    def sign(self, server: Any) -> None:
        """Sign QGIS's requests (map tiles) to `server` (ServerSettings), replacing the previous hook."""
        if self.signer is not None:
            QgsNetworkAccessManager.removeRequestPreprocessor(self.signer)
            self.signer = None
        if server is not None and server.headers():
            self.signer = sign_requests(server)

    # --- helpers ------------------------------------------------------------------------------------------
    @property
    def settings(self) -> stored.PluginSettings:
        return stored.load()

    def client(self) -> CubeportClient:
        return CubeportClient(self.settings.server)

    def message(self, title: str, text: str, level: Any = Qgis.Info, duration: int = 10) -> None:
        self.iface.messageBar().pushMessage(title, text, level=level, duration=duration)
        QgsMessageLog.logMessage(f"{title}: {text}", "Cubeport", level)

    def fail(self, error: PluginError) -> None:
        self.message(error.title, str(error), Qgis.Info if isinstance(error, Cancelled) else Qgis.Warning, 0)

    # --- Settings ------------------------------------------------------------------------------------------
    def run_settings(self) -> None:
        dialog = SettingsDialog(self.settings, self.iface.mainWindow())
        if dialog.exec_():
            stored.save(dialog.settings())
            self.sign(dialog.settings().server)

    # --- Add data cube ------------------------------------------------------------------------------------
    def run_add_cube(self) -> Cube | None:
        dialog = self.add_cube_dialog()
        if dialog is None or not dialog.exec_() or dialog.cube_id() is None:
            return None
        return self.add_cube(dialog.cube_id())

    def add_cube_dialog(self) -> AddCubeDialog | None:
        try:
            cubes = self.client().cubes()
        except PluginError as exc:
            self.fail(exc)
            return None
        return AddCubeDialog(cubes, self.iface.mainWindow())

    def add_cube(self, cube_id: str) -> Cube | None:
        """Describe the cube (variables, dimensions, style) and keep it in the session: no data is read."""
        try:
            cube = self.client().cube(cube_id)
        except PluginError as exc:
            self.fail(exc)
            return None
        self.session[cube.id] = cube
        self.group(cube)
        self.message(
            "Cubeport",
            f"Added cube {cube.title!r}: {len(cube.variables)} variables, "
            f"{len(cube.times)} time steps. Load one with Plugins > Cubeport > Load layer.",
        )
        return cube

    @staticmethod
    def group(cube: Cube) -> QgsLayerTreeGroup:
        root = QgsProject.instance().layerTreeRoot()
        return root.findGroup(cube.title) or root.insertGroup(0, cube.title)

    # --- Load layer ---------------------------------------------------------------------------------------
    def run_load_layer(self) -> None:
        dialog = self.load_layer_dialog()
        if dialog is not None and dialog.exec_():
            self.load_layer(**dialog.choice())  # type: ignore[arg-type]

    def load_layer_dialog(self) -> LoadLayerDialog | None:
        if not self.session and self.run_add_cube() is None:
            return None
        canvas = self.iface.mapCanvas()
        return LoadLayerDialog(
            list(self.session.values()),
            canvas.extent(),
            canvas.mapSettings().destinationCrs(),
            self.settings.max_mb,
            self.iface.mainWindow(),
        )

    def load_layer(
        self,
        cube_id: str,
        variable: str,
        bbox: tuple[float, float, float, float] | None = None,
        start: str | None = None,
        end: str | None = None,
        stream: bool = False,
        level: int = 0,
    ) -> Any:
        """Start the download of `variable` at pyramid `level` (returns its DownloadTask), or add its WMTS
        stream (returns the layer); None after a message saying why not."""
        try:
            cube = self.client().cube(cube_id)  # fresh: access and time steps may have changed
            self.session[cube.id] = cube
            if stream:
                return self.add_stream(cube, variable, start)
            plan = plan_download(cube, variable, bbox, start, end, max_mb=self.settings.max_mb, level=level)
        except PluginError as exc:
            self.fail(exc)
            return None
        return self.start_download(cube, plan)

    def start_download(self, cube: Cube, plan: DownloadPlan) -> DownloadTask:
        settings = self.settings
        os.makedirs(settings.folder, exist_ok=True)
        client = CubeportClient(settings.server)
        task = DownloadTask(
            plan,
            functools.partial(client.store_object, cube.id, level=plan.level),
            os.path.join(settings.folder, plan.file_name()),
            {"CUBEPORT_SERVER": client.settings.base},
            done=self.download_done,
        )
        self.tasks.append(task)
        self.show_progress(task)
        QgsApplication.taskManager().addTask(task)
        return task

    def show_progress(self, task: DownloadTask) -> None:
        """A progress bar with a Cancel button in the message bar (the task manager shows one too)."""
        bar = self.iface.messageBar()
        item = bar.createMessage("Cubeport", task.description())
        progress = QProgressBar()
        progress.setRange(0, 100)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(task.cancel)
        item.layout().addWidget(progress)
        item.layout().addWidget(cancel)
        task.progressChanged.connect(lambda value: progress.setValue(int(value)))
        task.taskCompleted.connect(lambda: bar.popWidget(item))
        task.taskTerminated.connect(lambda: bar.popWidget(item))
        bar.pushWidget(item, Qgis.Info)

    def download_done(self, task: DownloadTask) -> None:
        self.tasks = [t for t in self.tasks if t is not task]
        if task.error is not None:  # the server's reason (the plugin fetched the data), or GDAL's
            self.fail(task.error)
            return
        self.add_download(self.session[task.plan.cube_id], task.plan, task.path)

    def add_download(self, cube: Cube, plan: DownloadPlan, path: str) -> QgsRasterLayer | None:
        variable = cube.variable(plan.variable)
        layer = QgsRasterLayer(
            path, f"{variable.label} ({plan.times[0][:10]} to {plan.times[-1][:10]})", "gdal"
        )
        if not layer.isValid():
            self.fail(PluginError(f"QGIS could not open the downloaded file {path}"))
            return None
        try:
            colorbar = self.client().colorbar_png(variable.style.colormap)
        except PluginError:
            colorbar = None  # the style falls back to QGIS's ramp of that name
        apply_style(layer, variable.style, colorbar)
        make_time_aware(layer, plan.times, plan.band_times, "download")
        self.add_to_project(cube, layer, plan.band_times)
        bands, height, width = plan.shape
        self.message(
            "Cubeport",
            f"Loaded {variable.name} of {cube.title}: {bands} time steps of {width} x "
            f"{height} pixels of {resolution_label(cube, plan.level)}. Step through them with the "
            "Temporal Controller.",
        )
        return layer

    def add_stream(self, cube: Cube, variable: str, start: str | None = None) -> QgsRasterLayer | None:
        var = cube.variable(variable)
        canvas_crs = self.iface.mapCanvas().mapSettings().destinationCrs().authid()
        client = self.client()
        times = list(cube.times)
        first = start if start in times else times[0]
        params = wmts_params(client.wmts_capabilities_url(), cube.id, variable, first, canvas_crs)
        self.sign(client.settings)
        layer = QgsRasterLayer(wmts_uri(params), f"{var.label} (map tiles)", "wms")
        if not layer.isValid():
            error = layer.error().summary() or "the WMTS layer is not valid"
            self.fail(PluginError(f"QGIS could not add the map tiles of {cube.id}.{variable}: {error}"))
            return None
        ranges = band_times(times)
        make_time_aware(layer, times, ranges, "wmts")
        self.add_to_project(cube, layer, ranges)
        self.message(
            "Cubeport",
            f"Streaming {variable} of {cube.title} as map tiles ({tile_matrix_set(canvas_crs)[0]}).",
        )
        return layer

    def add_to_project(self, cube: Cube, layer: QgsRasterLayer, ranges: Any) -> None:
        QgsProject.instance().addMapLayer(layer, False)
        self.group(cube).insertLayer(0, layer)
        self.last_layer = layer
        step_through(self.iface.mapCanvas().temporalController(), ranges)  # the stepper shows the new frame
