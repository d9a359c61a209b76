"""Runs inside Debian's QGIS Python (/usr/bin/python3, headless): installs the plugin zip, drives its actions
against a Cubeport server and writes what QGIS made of them as JSON. tests/test_qgis_plugin.py checks it.

Usage: drive_plugin.py SCENARIO.json REPORT.json. Only the QGIS desktop window is stood in for (a small
`iface` with a real map canvas and message bar): it cannot run here.
"""

import json
import os
import sys
import tempfile
import time
import traceback
import zipfile

from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsPointXY,
    QgsProject,
    QgsRaster,
    QgsRectangle,
    QgsSettings,
    QgsTask,
    QgsTemporalNavigationObject,
)
from qgis.gui import QgsMapCanvas, QgsMessageBar
from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtWidgets import QMainWindow, QMenu


class Iface:
    """What the plugin uses of QgisInterface: the main window, the map canvas, the message bar, the menu."""

    def __init__(self):
        self.window = QMainWindow()
        self.canvas = QgsMapCanvas(self.window)
        self.bar = QgsMessageBar(self.window)
        self.menu = QMenu("&Cubeport")
        self.messages = []
        push = self.bar.pushMessage

        def record(title, text, level=0, duration=0, **_):
            self.messages.append({"title": title, "text": text, "level": int(level)})
            push(title, text, level=level, duration=duration)

        self.bar.pushMessage = record

    def mainWindow(self):
        return self.window

    def mapCanvas(self):
        return self.canvas

    def messageBar(self):
        return self.bar

    def addPluginToMenu(self, menu, action):
        self.menu.addAction(action)

    def removePluginMenu(self, menu, action):
        self.menu.removeAction(action)


def wait(task, timeout=60):
    end = time.time() + timeout
    while task.status() not in (QgsTask.Complete, QgsTask.Terminated) and time.time() < end:
        QCoreApplication.processEvents()
        time.sleep(0.01)
    for _ in range(20):  # the finished() call and the signals after it
        QCoreApplication.processEvents()


def listed(dialog):
    return [dialog.list.item(r).data(Qt.UserRole) for r in range(dialog.list.count())]


def iso(qdatetime):
    return qdatetime.toUTC().toString(Qt.ISODate)


def describe(layer, points):
    """Bands, times, CRS, extent, style and the values of every band at `points` (in the layer's CRS)."""
    renderer = layer.renderer()
    properties = layer.temporalProperties()
    extent = layer.extent()
    shader = renderer.shader().rasterShaderFunction() if hasattr(renderer, "shader") else None
    values = []
    for x, y in points:
        results = layer.dataProvider().identify(QgsPointXY(x, y), QgsRaster.IdentifyFormatValue).results()
        values.append([results.get(band) for band in range(1, layer.bandCount() + 1)])
    return {
        "valid": layer.isValid(),
        "provider": layer.providerType(),
        "bands": layer.bandCount(),
        "band_names": [layer.bandName(b) for b in range(1, layer.bandCount() + 1)],
        "crs": layer.crs().authid(),
        "extent": [extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()],
        "temporal_active": properties.isActive(),
        "temporal_mode": int(properties.mode()),
        "temporal_range": [
            iso(properties.fixedTemporalRange().begin()),
            iso(properties.fixedTemporalRange().end()),
        ],
        "renderer": renderer.type(),
        "band": renderer.band() if hasattr(renderer, "band") else None,
        "value_range": [renderer.classificationMin(), renderer.classificationMax()] if shader else None,
        "colours": [i.color.name() for i in shader.colorRampItemList()] if shader else None,
        "values": values,
        "source": layer.source(),
        "size": [layer.width(), layer.height()],
    }


def main(scenario_path, report_path):
    with open(scenario_path) as f:
        scenario = json.load(f)
    report = {}
    QgsApplication.setOrganizationName("cubeport-tests")  # a profile of its own, not the user's
    app = QgsApplication([], True)
    app.initQgis()
    import qgis.utils

    try:
        plugins = tempfile.mkdtemp()
        zipfile.ZipFile(scenario["zip"]).extractall(plugins)
        sys.path.insert(0, plugins)
        iface = Iface()
        qgis.utils.iface = iface
        assert qgis.utils.loadPlugin("cubeport_qgis") and qgis.utils.startPlugin("cubeport_qgis")
        plugin = qgis.utils.plugins["cubeport_qgis"]
        report["menu"] = [a.text() for a in iface.menu.actions()]
        navigation = QgsTemporalNavigationObject()  # the Temporal Controller of the desktop
        iface.canvas.setTemporalController(navigation)
        settings = QgsSettings()

        def configure(url, auth="none", secret="", max_mb=1024):
            for key, value in (
                ("url", url),
                ("auth", auth),
                ("secret", secret),
                ("max_mb", max_mb),
                ("folder", scenario["folder"]),
            ):
                settings.setValue("cubeport/" + key, value)

        def last_message():
            return iface.messages[-1] if iface.messages else None

        configure(scenario["url"])
        # Add data cube: the list, then one cube into the session; nothing is downloaded
        dialog = plugin.add_cube_dialog()
        report["listed"] = listed(dialog)
        dialog.select("ndvi")
        dialog.accept()
        plugin.add_cube(dialog.cube_id())
        report["session"] = sorted(plugin.session)
        report["groups"] = [g.name() for g in QgsProject.instance().layerTreeRoot().children()]
        report["files_after_add"] = (
            os.listdir(scenario["folder"]) if os.path.isdir(scenario["folder"]) else []
        )

        # Load layer: the dialog's defaults (the canvas extent) and a download with progress
        iface.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
        iface.canvas.resize(400, 400)
        iface.canvas.setExtent(QgsRectangle(*scenario["canvas_extent"]))
        canvas = iface.canvas.extent()
        report["canvas_extent"] = [canvas.xMinimum(), canvas.yMinimum(), canvas.xMaximum(), canvas.yMaximum()]
        dialog = plugin.load_layer_dialog()
        dialog.variable.setCurrentIndex(dialog.variable.findData("ndvi"))
        report["choice"] = dialog.choice()
        report["summary"] = dialog.summary.text()
        task = plugin.load_layer(**dialog.choice())
        progress = []
        task.progressChanged.connect(progress.append)
        wait(task)
        report["progress"] = progress
        report["download"] = describe(plugin.last_layer, scenario["points"])
        report["message"] = last_message()
        frames = {}
        for frame in scenario["frames"]:
            navigation.setCurrentFrameNumber(frame)
            QCoreApplication.processEvents()
            frames[frame] = {
                "band": plugin.last_layer.renderer().band(),
                "begin": iso(navigation.dateTimeRangeForFrameNumber(frame).begin()),
            }
        report["frames"] = frames
        report["frame_count"] = len(navigation.availableTemporalRanges())

        # a time range
        first, last = scenario["time_range"]
        wait(plugin.load_layer("ndvi", "ndvi", start=first, end=last))
        report["time_range"] = describe(plugin.last_layer, [])

        # cancel: nothing added, nothing left on disk
        layers = len(QgsProject.instance().mapLayers())
        task = plugin.load_layer("ndvi", "ndvi")
        task.cancel()
        wait(task)
        report["cancel"] = {
            "message": last_message(),
            "added": len(QgsProject.instance().mapLayers()) - layers,
            "parts": [f for f in os.listdir(scenario["folder"]) if f.endswith(".part")],
        }

        # stream as map tiles
        iface.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
        layer = plugin.load_layer("ndvi", "ndvi", stream=True)
        report["stream"] = {
            "valid": layer.isValid(),
            "provider": layer.providerType(),
            "crs": layer.crs().authid(),
            "source": layer.source(),
            "temporal_active": layer.temporalProperties().isActive(),
        }
        navigation.setCurrentFrameNumber(3)
        QCoreApplication.processEvents()
        report["stream"]["source_at_frame_3"] = layer.source()
        report["stream"]["valid_at_frame_3"] = layer.isValid()

        # errors: a restricted cube, a download too large, a server that is down
        plugin.add_cube("olci")
        report["restricted"] = last_message()
        configure(scenario["url"], max_mb=0.01)
        report["too_large_result"] = plugin.load_layer("ndvi", "ndvi") is None
        report["too_large"] = last_message()
        configure(scenario["down_url"])
        report["down_result"] = plugin.add_cube_dialog() is None
        report["down"] = last_message()

        # signed in: the restricted cube with an API key, then as a bearer token
        for auth in ("api-key", "bearer"):
            configure(scenario["url"], auth=auth, secret=scenario["key"])
            dialog = plugin.add_cube_dialog()
            report[f"listed_{auth}"] = listed(dialog)
        task = plugin.load_layer("olci", "conc_chl", bbox=tuple(scenario["olci_bbox"]))
        wait(task)
        report["olci"] = describe(plugin.last_layer, scenario["olci_points"])
        # a coarser resolution: level 2 of the cube's pyramid, chosen in the dialog
        dialog = plugin.load_layer_dialog()
        dialog.cube.setCurrentIndex(dialog.cube.findData("olci"))
        report["resolutions"] = [dialog.resolution.itemText(i) for i in range(dialog.resolution.count())]
        dialog.variable.setCurrentIndex(dialog.variable.findData("conc_chl"))
        dialog.resolution.setCurrentIndex(2)
        choice = {**dialog.choice(), "bbox": tuple(scenario["olci_bbox"])}
        report["level_choice"] = choice["level"]
        wait(plugin.load_layer(**choice))
        report["olci_level_2"] = describe(plugin.last_layer, scenario["olci_level_points"])
        report["olci_level_2"]["message"] = last_message()
        report["bad_level"] = plugin.load_layer("olci", "conc_chl", level=9) is None and last_message()
        layer = plugin.load_layer("olci", "conc_chl", stream=True)
        report["olci_stream_valid"] = layer.isValid()
        report["messages"] = iface.messages
        plugin.unload()
        report["menu_after_unload"] = len(iface.menu.actions())
    except Exception:  # noqa: BLE001 (the test reads the traceback from the report)
        report["error"] = (
            traceback.format_exc() + "\nmessages: " + json.dumps(getattr(qgis.utils.iface, "messages", None))
        )
    with open(report_path, "w") as out:
        json.dump(report, out)
    sys.stdout.flush()
    os._exit(0)  # exitQgis() can crash headless


if __name__ == "__main__":
    main(*sys.argv[1:3])
