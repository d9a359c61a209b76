"""The near-real-time chain end to end on real servers: a synthetic ICEYE delivery appears on an FTPS server,
the watcher finds it, the built-in sea-ice suite fetches, validates, processes and publishes it, and the
chart is delivered to an SFTP portal; the runner is killed with -9 in the middle and started again. Nothing
is lost and nothing is done twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from helpers import context_with

sys.path.insert(0, str(Path(__file__).parents[1] / "seaice"))  # the sea-ice tests' delivery generator
from frames import write_frame  # noqa: E402

from cubeport.config import load_settings  # noqa: E402
from cubeport.context import Context  # noqa: E402
from cubeport.ops.remotes import Credentials  # noqa: E402
from cubeport.ops.suites import NodeState  # noqa: E402

pytestmark = pytest.mark.slow


def _runner(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cubeport", "ops", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_delivery_on_ftps_ends_as_a_published_chart_delivered_by_sftp(
    tmp_path, data, ftps_server, sftp_server, monkeypatch
):
    gshhg = str(data / "land" / "gshhg_full_baltic_9-31E_53-66.5N.gpkg")
    env = {
        "CUBEPORT_SEAICE__LAND_POLYGONS": gshhg,
        "CUBEPORT_SEAICE__RESOLUTION": "40",
        "CUBEPORT_SEAICE__CUBE_RESOLUTION": "1000",
        "CUBEPORT_OPS__CA_FILE": str(ftps_server.ca_file),
        "CUBEPORT_OPS__POLL_SECONDS": "0.2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    root = tmp_path / "platform"
    context_with(root, data, {}).close()
    context = Context(load_settings(data_root=str(root)))
    ops = context.ops

    inbox = ftps_server.home / "nrt-in"
    portal = sftp_server.home / "ibnet"
    inbox.mkdir()
    portal.mkdir()
    ops.watchers.add(
        "iceye",
        ftps_server.url("nrt-in"),
        "seaice",
        include="*.zip",
        interval_seconds=1,
        credentials=Credentials(ftps_server.user, ftps_server.password),
    )
    ops.deliveries.add_target(
        "ibnet",
        sftp_server.url("ibnet"),
        ["*.gpkg"],
        Credentials(sftp_server.user, sftp_server.password),
        host_key=sftp_server.host_key,
    )

    frame = write_frame(
        tmp_path / "made", gshhg, shape=(500, 500), start=datetime(2026, 2, 14, 4, 50), style="zip"
    )
    shutil.copy(frame.delivery, inbox / frame.delivery.name)  # the provider's upload

    runner_env = {**os.environ, "CUBEPORT_DATA_ROOT": str(root)}
    runner = _runner(runner_env)
    try:
        run = _wait(lambda: (ops.runs.runs("seaice", limit=1) or [None])[0], 60, "the watcher to start a run")
        assert run.variables["FILE"] == frame.delivery.name and run.cause.startswith("watcher iceye")

        def processing():
            states = ops.runs.state_of(run.id)
            return states["/seaice/scene/process"] in (NodeState.submitted, NodeState.active)

        _wait(processing, 120, "the scene to be processing")
        os.killpg(runner.pid, signal.SIGKILL)  # the runner dies; its task goes on without it
        runner.wait()
        runner = _runner(runner_env)
        _wait(
            lambda: ops.runs.run(run.id).state in (NodeState.complete, NodeState.aborted),
            300,
            "the run to end",
        )
    finally:
        os.killpg(runner.pid, signal.SIGTERM)
        runner.wait(timeout=30)

    tree = ops.runs.tree(run.id)
    assert ops.runs.run(run.id).state == NodeState.complete, tree.to_dict()

    def tries(view):
        return {view.path: view.try_no} | {k: v for c in view.children for k, v in tries(c).items()}

    assert set(tries(tree).values()) <= {0, 1} | {tree.try_no}  # no task ran twice, the crash included

    # published: the day in the ice cube, the chart in the feature store
    cube = context.cubes.open("baltic-ice")
    assert [str(t)[:10] for t in cube["time"].values] == ["2026-02-14"]
    assert context.features.count("seaice", "ice_charts") > 0
    # delivered once, to the SFTP portal, byte for byte
    delivered = ops.deliveries.recent()
    assert len(delivered) >= 1 and {d.state for d in delivered} == {"delivered"}
    for delivery in delivered:
        assert (portal / delivery.product).stat().st_size == delivery.size
    # the same file seen again is not a new delivery
    assert ops.watchers.look("iceye") == []
    assert len(ops.runs.runs("seaice")) == 1
