"""The QGIS plugin in Debian's QGIS (headless, /usr/bin/python3) against a Cubeport server with real sample
cubes: the installable zip, its actions, the layers it makes (bands, band times, temporal stepping, CRS, style,
values at places against the cube), the WMTS option, and its messages for the failures users meet."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pyproj
import pytest
import xarray as xr
from helpers import SAMPLE_CUBES, add_users, context_with
from services import CubeportProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
QGIS_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def report(tmp_path_factory, data):
    """One QGIS run of every scenario (QGIS takes seconds to start); the tests read its report."""
    folder = tmp_path_factory.mktemp("qgis")
    context = context_with(folder / "root", data, {"ndvi": "ndvi", "olci": "olci"})
    add_users(context)
    context.policy.set_access("cube", "olci", public=False, groups=["syke"])
    key = context.auth.create_key("mia")[1]
    olci_level_2 = context.cubes.open("olci", level=2).load()
    context.close()
    server = CubeportProcess(folder / "root")
    try:
        zip_path = subprocess.run(
            [sys.executable, str(ROOT / "qgis/package.py"), str(folder / "cubeport.zip")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        ndvi = httpx.get(f"{server.url}/datasets/ndvi").json()
        west, south, east, north = ndvi["bbox"]
        cube = xr.open_zarr(data / "cubes" / SAMPLE_CUBES["ndvi"])
        times = [t for t in next(d for d in ndvi["dimensions"] if d["name"] == "time")["coordinates"]]
        scenario = {
            "zip": zip_path,
            "url": server.url,
            "down_url": f"http://127.0.0.1:{free_port()}",
            "key": key,
            "folder": str(folder / "downloads"),
            # a part of the cube's western half (the canvas widens it to its own shape)
            "canvas_extent": [
                west,
                south + 0.35 * (north - south),
                west + 0.3 * (east - west),
                south + 0.65 * (north - south),
            ],
            "points": [[float(cube.x[i]), float(cube.y[j])] for i, j in ((5, 40), (40, 60), (20, 50))],
            "frames": [0, 5, 67],
            "time_range": [times[10], times[19]],
            "olci_bbox": [1.0, 50.5, 3.0, 51.5],
            "olci_points": [[1.50125, 51.00125], [2.75125, 50.75125]],  # pixel centres
            "olci_level_points": [
                [
                    float(olci_level_2.lon.sel(lon=x, method="nearest")),  # level 2 pixel centres
                    float(olci_level_2.lat.sel(lat=y, method="nearest")),
                ]
                for x, y in ((1.5, 51.0), (2.7, 50.8))
            ],
        }
        (folder / "scenario.json").write_text(json.dumps(scenario))
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "HOME": str(folder / "home"),
            "XDG_RUNTIME_DIR": str(folder / "run"),
            "QGIS_CUSTOM_CONFIG_PATH": str(folder / "profile"),
        }
        (folder / "run").mkdir(mode=0o700)
        run = subprocess.run(
            [
                QGIS_PYTHON,
                str(ROOT / "tests/qgis/drive_plugin.py"),
                str(folder / "scenario.json"),
                str(folder / "report.json"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert (folder / "report.json").exists(), (
            f"QGIS did not report:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        )
        result = json.loads((folder / "report.json").read_text())
        assert "error" not in result, result["error"]
        yield {
            **result,
            "scenario": scenario,
            "times": times,
            "ndvi": ndvi,
            "cube": cube,
            "olci_cube": xr.open_zarr(data / "cubes" / SAMPLE_CUBES["olci"]),
            "olci_level_2_cube": olci_level_2,
        }
    finally:
        server.stop()


def iso(text):
    return text.replace(".000", "").replace("+00:00", "Z")


def assert_values(got, expected):
    expected = np.asarray(expected, dtype="float64")
    got = np.array([math.nan if v is None else v for v in got], dtype="float64")
    np.testing.assert_allclose(got, expected, rtol=1e-6, equal_nan=True)


def test_plugin_installs_from_its_zip_with_two_actions_and_settings(report):
    assert report["menu"] == ["Add data cube…", "Load layer…", "Settings…"]
    assert report["menu_after_unload"] == 0


def test_add_data_cube_lists_visible_cubes_and_downloads_nothing(report):
    assert report["listed"] == ["ndvi"]  # olci is restricted to group syke
    assert report["session"] == ["ndvi"]
    assert report["ndvi"]["title"] in report["groups"]
    assert report["files_after_add"] == []


def test_load_layer_has_one_band_per_time_step_with_its_time_range(report):
    layer, times = report["download"], report["times"]
    assert layer["valid"] and layer["provider"] == "gdal"
    assert layer["bands"] == len(times) == 68
    for name, start, end in zip(layer["band_names"], times, times[1:], strict=False):
        assert name.endswith(f"{start}/{end}")
    assert layer["temporal_active"]
    assert layer["temporal_range"][0] == iso(times[0])
    assert layer["temporal_range"][1] > iso(times[-1])  # the last step lasts a typical step
    assert max(report["progress"]) == 100 and len(report["progress"]) > 1
    assert "68 time steps" in report["message"]["text"]


def test_temporal_controller_steps_band_by_band(report):
    assert report["frame_count"] == 68
    for frame, shown in report["frames"].items():
        assert shown["band"] == int(frame) + 1
        assert shown["begin"] == iso(report["times"][int(frame)])


def test_layer_is_in_the_cube_crs_within_the_canvas_extent_with_the_cubes_values(report):
    layer, cube = report["download"], report["cube"]
    assert layer["crs"] == "EPSG:32633"
    # the canvas extent in the cube's CRS, clipped to the cube, to whole pixels
    canvas = pyproj.Transformer.from_crs(4326, 32633, always_xy=True).transform_bounds(
        *report["canvas_extent"]
    )
    x, y = cube.x.values, cube.y.values
    cube_box = (x.min() - 5, y.min() - 5, x.max() + 5, y.max() + 5)
    expected = [
        max(canvas[0], cube_box[0]),
        max(canvas[1], cube_box[1]),
        min(canvas[2], cube_box[2]),
        min(canvas[3], cube_box[3]),
    ]
    assert layer["extent"] == pytest.approx(expected, abs=10.5)
    assert layer["extent"][2] - layer["extent"][0] < 0.8 * (cube_box[2] - cube_box[0])  # not the whole cube
    for (px, py), got in zip(report["scenario"]["points"], layer["values"], strict=False):
        expected = cube.ndvi.sel(x=px, y=py, method="nearest").values
        assert_values(got, expected)


def test_layer_has_the_variables_style(report):
    layer = report["download"]
    variable = next(v for v in report["ndvi"]["variables"] if v["name"] == "ndvi")
    assert layer["renderer"] == "singlebandpseudocolor"
    assert layer["value_range"] == pytest.approx([variable["colorBarMin"], variable["colorBarMax"]])
    colours = layer["colours"]
    assert len(set(colours)) > 10  # RdYlGn: red to green
    red, green = (
        (int(colours[0][i : i + 2], 16) for i in (1, 3)),
        (int(colours[-1][i : i + 2], 16) for i in (1, 3)),
    )
    (r0, g0), (r1, g1) = red, green
    assert r0 > g0 and g1 > r1


def test_time_range_limits_the_bands(report):
    layer, times = report["time_range"], report["times"]
    assert layer["bands"] == 10
    assert layer["band_names"][0].endswith(f"{times[10]}/{times[11]}")
    assert layer["temporal_range"][0] == iso(times[10])


def test_cancel_adds_nothing_and_leaves_no_partial_file(report):
    cancel = report["cancel"]
    assert cancel["message"]["title"] == "Cancelled"
    assert cancel["added"] == 0 and cancel["parts"] == []


def test_stream_as_map_tiles_adds_a_valid_wmts_layer_with_time(report):
    stream, times = report["stream"], report["times"]
    assert stream["valid"] and stream["provider"] == "wms" and stream["crs"] == "EPSG:3857"
    assert "tileMatrixSet=WebMercatorQuad" in stream["source"] and "layers=ndvi.ndvi" in stream["source"]
    assert f"tileDimensions=Time={times[0]}" in stream["source"]
    assert stream["temporal_active"]
    assert f"tileDimensions=Time={times[3]}" in stream["source_at_frame_3"] and stream["valid_at_frame_3"]


def test_clear_messages_for_restricted_cube_too_large_download_and_server_down(report):
    assert report["restricted"]["title"] == "Cube not available"
    assert "'olci'" in report["restricted"]["text"] and "API key" in report["restricted"]["text"]
    assert report["too_large_result"] and report["too_large"]["title"] == "Download too large"
    assert "smaller area" in report["too_large"]["text"]
    assert report["down_result"] and report["down"]["title"] == "Cubeport server does not answer"
    assert "connection was refused" in report["down"]["text"]


def test_signed_in_with_api_key_or_bearer_token_loads_the_restricted_cube(report):
    assert "olci" in report["listed_api-key"] and "olci" in report["listed_bearer"]
    layer, cube = report["olci"], report["olci_cube"]
    assert layer["valid"] and layer["bands"] == cube.sizes["time"] == 5
    assert layer["crs"] == "EPSG:4326"
    for (px, py), got in zip(report["scenario"]["olci_points"], layer["values"], strict=False):
        assert_values(got, cube.conc_chl.sel(lon=px, lat=py, method="nearest").values)
    assert report["olci_stream_valid"]


def test_a_coarser_resolution_downloads_a_level_of_the_pyramid(report):
    assert report["resolutions"] == [
        "Full resolution, 0.0025°",
        "Level 1, 0.005°",
        "Level 2, 0.01°",
        "Level 3, 0.02°",
    ]
    assert report["level_choice"] == 2
    layer, full = report["olci_level_2"], report["olci"]
    assert layer["valid"] and layer["bands"] == 5 and layer["crs"] == "EPSG:4326"
    assert layer["size"] == [s // 4 for s in full["size"]] == [200, 100]  # 2° x 1° at 0.01°
    assert layer["extent"] == pytest.approx(full["extent"], abs=1e-9)
    for (px, py), got in zip(report["scenario"]["olci_level_points"], layer["values"], strict=False):
        assert_values(got, report["olci_level_2_cube"].conc_chl.sel(lon=px, lat=py).values)
    assert "0.01°" in layer["message"]["text"]
    assert "levels 0 (full resolution) to 3, not 9" in report["bad_level"]["text"]
