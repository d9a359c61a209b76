"""Near-real-time latency: from a delivery becoming visible on the provider's FTP server to its ice chart
published and delivered to the portal. Goal (issue 22): under 5 minutes for a 100 km ICEYE Scan scene at
15 m (about 7,000 x 7,000 pixels) with a 1-minute poll.

Real parts on loopback: pyftpdlib FTP (the provider) and an asyncssh SFTP server (the portal) from
tests/file_servers.py; `cubeport ops run` as its own process running the built-in sea-ice suite (fetch ->
validate -> process -> publish -> drift -> deliver), each task a `cubeport` command, as in operations. The
delivery (a legacy GRD zip written by tests/seaice/deliveries.py, not timed) is copied into the FTP folder
under a temporary name and renamed: the moment of the rename is when it becomes visible. A file counts as
delivered when its size is the same at two looks, so the watcher's poll costs between one and two poll
intervals; the report splits the latency into waiting for the watcher and the run's tasks. No anchor: no
other system here runs this chain (FMI's own runs under ecFlow; see `cubeport suites export-ecflow`).

    .venv/bin/python benchmarks/nrt.py                       # about 5 minutes
    .venv/bin/python benchmarks/nrt.py --size 2000 --poll 5  # a quick look
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import REPO, environment, table, write_json
from seaice import GSHHG, write_frame  # the frame of the chain's benchmark

sys.path.insert(0, str(REPO / "tests"))


def measure(size: int, spacing: float, poll: float, work: Path) -> dict[str, Any]:
    from file_servers import FtpServer, SftpServer  # type: ignore[import-not-found]

    from cubeport.config import load_settings
    from cubeport.context import Context
    from cubeport.ops.remotes import Credentials

    started = time.perf_counter()
    delivery = write_frame(work / "made", size, spacing, style="zip", image_id="7001")
    written = time.perf_counter() - started
    ftp, sftp = FtpServer().start(), SftpServer().start()
    env = {
        **os.environ,
        "CUBEPORT_DATA_ROOT": str(work / "platform"),
        "CUBEPORT_SEAICE__LAND_POLYGONS": str(GSHHG),
        "CUBEPORT_OPS__POLL_SECONDS": "1",
    }
    runner = None
    try:
        os.environ.update({k: v for k, v in env.items() if k.startswith("CUBEPORT_")})
        context = Context(load_settings())
        ops = context.ops
        (ftp.home / "in").mkdir()
        (sftp.home / "ibnet").mkdir()
        ops.watchers.add(
            "iceye",
            ftp.url("in"),
            "seaice",
            include="*.zip",
            interval_seconds=poll,
            credentials=Credentials(ftp.user, ftp.password),
        )
        ops.deliveries.add_target(
            "ibnet",
            sftp.url("ibnet"),
            ["*.gpkg", "*_classes.tif"],
            Credentials(sftp.user, sftp.password),
            host_key=sftp.host_key,
        )
        runner = subprocess.Popen(
            [sys.executable, "-m", "cubeport", "ops", "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(poll / 2)  # the file appears half-way between two looks, the average case
        partial = ftp.home / "in" / f".{delivery.name}.uploading"
        shutil.copy(delivery, partial)
        partial.rename(ftp.home / "in" / delivery.name)
        visible = datetime.now(UTC)
        deadline = time.monotonic() + 1800
        run = None
        while time.monotonic() < deadline:
            runs = ops.runs.runs("seaice", limit=1)
            run = runs[0] if runs else None
            done = [d for d in ops.deliveries.recent() if d.state == "delivered"]
            if (
                run
                and ops.runs.run(run.id).state.value in ("complete", "aborted")
                and (done or ops.runs.run(run.id).state.value == "aborted")
            ):
                break
            time.sleep(0.5)
        assert run is not None, "the watcher never started a run"
        tree = ops.runs.tree(run.id)
        if tree.state.value != "complete":
            raise SystemExit(f"the run ended {tree.state.value}: {tree.to_dict()}")
        delivered = max(d.delivered for d in ops.deliveries.recent() if d.delivered)
        published = context.features.count("seaice", "ice_charts")
    finally:
        if runner is not None:
            os.killpg(runner.pid, signal.SIGTERM)
            runner.wait(timeout=60)
        ftp.stop()
        sftp.stop()

    tasks = {}

    def visit(view: Any) -> None:
        if view.kind == "task" and view.started and view.ended:
            tasks[view.path] = (view.ended - view.started).total_seconds()
        for child in view.children:
            visit(child)

    visit(tree)
    return {
        "frame": [size, size],
        "spacing_m": spacing,
        "delivery_mib": delivery.stat().st_size / 2**20,
        "poll_s": poll,
        "write_s": written,
        "waiting_for_watcher_s": (run.created - visible).total_seconds(),
        "tasks_s": tasks,
        "run_s": ((tree.ended or delivered) - run.created).total_seconds(),
        "visible_to_delivered_s": (delivered - visible).total_seconds(),
        "chart_features": published,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=7_000, help="side of the GRD frame (pixels)")
    parser.add_argument("--spacing", type=float, default=15.0, help="pixel spacing (m)")
    parser.add_argument("--poll", type=float, default=60.0, help="the watcher's poll interval (s)")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cubeport-nrt-bench-"))
    try:
        result = measure(args.size, args.spacing, args.poll, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        table(
            ["task", "seconds"],
            [*result["tasks_s"].items(), ("run (first task to delivered)", result["run_s"])],
        )
    )
    total = result["visible_to_delivered_s"]
    print(
        f"\n{args.size} x {args.size} frame at {args.spacing:g} m ({result['delivery_mib']:.0f} MiB zip), poll "
        f"{args.poll:g} s: visible on FTP -> chart published and delivered by SFTP in {total:.0f} s "
        f"(goal 300 s, ratio {total / 300:.2f}); waiting for the watcher {result['waiting_for_watcher_s']:.0f} s"
    )
    print(write_json("nrt", {"environment": environment(), **result}, args.out))


if __name__ == "__main__":
    main()
