"""`cubeport seaice validate|process|drift` in real processes, on synthetic deliveries off the Oulu coast."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers import cli, context_with

sys.path.insert(0, str(Path(__file__).parents[1] / "seaice"))
from frames import OULU, write_frame  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("seaice-cli")
    return root, {
        "CUBEPORT_DATA_ROOT": str(root / "data"),
        "CUBEPORT_SEAICE__LAND_POLYGONS": str(data / "land" / "gshhg_full_baltic_9-31E_53-66.5N.gpkg"),
        "CUBEPORT_SEAICE__RESOLUTION": "40",
        "CUBEPORT_SEAICE__CUBE_RESOLUTION": "1000",
    }


@pytest.fixture(scope="module")
def gshhg(data):
    return str(data / "land" / "gshhg_full_baltic_9-31E_53-66.5N.gpkg")


def test_validate_names_every_problem_and_quarantines(env, gshhg):
    root, variables = env
    good = write_frame(root / "good", gshhg, shape=(200, 200))
    done = cli("seaice", "validate", str(good.delivery), env=variables)
    assert done.returncode == 0, done.stderr
    assert "valid: ICEYE GRD scan VV" in done.stdout and "200 x 200 px" in done.stdout

    bad = write_frame(root / "bad", gshhg, shape=(200, 200), image_id="555")
    xml = bad.delivery.with_suffix(".xml")
    xml.write_text(
        xml.read_text()
        .replace("<calibration_factor>", "<calibration_factor_gone>")
        .replace("</calibration_factor>", "</calibration_factor_gone>")
        .replace("<acquisition_mode>scan", "<acquisition_mode>bogus")
    )
    done = cli("seaice", "validate", str(bad.delivery), "--quarantine", env=variables)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    problems = [line for line in done.stderr.splitlines() if line.startswith("problem:")]
    assert len(problems) >= 2, done.stderr  # both named at once
    assert any("calibration" in p for p in problems) and any("mode" in p for p in problems)
    assert not bad.delivery.exists()
    reasons = list((root / "data" / "seaice" / "quarantine").glob("*.reason.json"))
    assert len(reasons) == 1 and json.loads(reasons[0].read_text())["problems"]


def test_process_publishes_and_drift_measures_a_known_shift(env, gshhg):
    root, variables = env
    out = root / "scenes"
    first = write_frame(root / "first", gshhg, shape=(500, 500), start=datetime(2026, 2, 14, 4, 50))
    # the same ice 400 m further east, one hour later: a drift of 0.111 m/s towards 90 degrees
    east = (OULU[0] + 400 / (111_320 * np.cos(np.radians(OULU[1]))), OULU[1])
    second = write_frame(
        root / "second",
        gshhg,
        shape=(500, 500),
        start=datetime(2026, 2, 14, 5, 50),
        center=east,
        image_id="4119893",
    )
    for frame in (first, second):
        done = cli("seaice", "process", str(frame.delivery), "--out", str(out), env=variables)
        assert done.returncode == 0, done.stderr
        assert ": cube baltic-ice" in done.stdout and "seaice.ice_charts" in done.stdout
    scenes = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(scenes) == 2 and all((s / "scene.json").is_file() for s in scenes)

    done = cli(
        "seaice",
        "drift",
        str(scenes[0]),
        str(scenes[1]),
        "--out",
        str(root / "drift"),
        "--publish",
        env=variables,
    )
    assert done.returncode == 0, done.stderr
    vectors = gpd.read_file(next((root / "drift").glob("*.gpkg")))
    assert len(vectors) > 20
    assert abs(np.median(vectors["speed"]) - 400 / 3600) < 0.02
    assert abs(np.median(vectors["direction"]) - 90) < 5

    context = context_with(root / "data", Path(), {})
    assert context.features.count("seaice", "ice_drift") == len(vectors)
    later = context.products.item("baltic-ice", scenes[1].name)  # the later scene's step carries the drift
    assert {"drift_gpkg", "drift_parquet", "drift_netcdf"} <= set(later["assets"])
    assert later["properties"]["cubeport:drift_from"] == scenes[0].name

    # the NRT suite's drift partner: the latest earlier scene that overlaps, none for the first
    from cubeport.seaice.pairs import previous_overlapping

    assert previous_overlapping(scenes[1], out) == scenes[0]
    assert previous_overlapping(scenes[0], out) is None


def test_process_only_some_steps_and_bad_steps(env, gshhg):
    root, variables = env
    frame = write_frame(root / "steps", gshhg, shape=(200, 200), image_id="999")
    done = cli(
        "seaice",
        "process",
        str(frame.delivery),
        "--steps",
        "validate,calibrate",
        "--no-publish",
        "--out",
        str(root / "steps-out"),
        env=variables,
    )
    assert done.returncode == 0, done.stderr
    assert len(list((root / "steps-out").glob("*/*_sigma0_db.tif"))) == 1
    done = cli("seaice", "process", str(frame.delivery), "--steps", "validate,chart", env=variables)
    assert done.returncode == 2 and "needs" in done.stderr and "Traceback" not in done.stderr
    done = cli("seaice", "drift", str(root / "steps-out"), str(root / "nowhere"), env=variables)
    assert done.returncode == 2 and "not a processed scene" in done.stderr
