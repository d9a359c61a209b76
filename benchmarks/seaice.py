"""Sea-ice chain: one 16,000 x 16,000 ICEYE-like GRD frame through the chain, and drift of two 8,000 x 8,000
frames, on this machine. Goals (issue 21): the chain under 60 s and 4 GiB peak on 2 cores; drift under 60 s.

Frame: the synthetic truth of tests/seaice/scenes.py (ice classes with their backscatter and texture, an
incidence ramp 21-29 degrees, a drawn coast, a no-data wedge) as uint16 DN of a legacy GRD delivery (GeoTIFF
+ XML sidecar, tiled, deflate) written by tests/seaice/deliveries.py, 6 m pixels (96 km, ICEYE Scan) in the
Bothnian Bay. Writing it is not timed. The chain (`seaice.chain.process_delivery`: validate -> calibrate ->
correct -> rectify to 50 m chart Mercator -> GSHHG land mask -> classify -> chart) runs in a fresh process,
whose wall time per step comes from the chain and whose peak memory is its maximum resident set size.

Drift: tests/seaice/motion.py makes two 8,000 x 8,000 rectified dB scenes, the second moved by a known field
(shift, 1 degree rotation, shear); `seaice.drift.estimate_drift` is timed and its error against the truth is
reported. No anchor runs here: SNAP and nansencenter/sea_ice_drift (nansat, GDAL bindings) are not
installable on this machine, so the figures stand against the issue's goals.

    .venv/bin/python benchmarks/seaice.py                    # about 5 minutes on 2 cores
    .venv/bin/python benchmarks/seaice.py --size 4000 --drift-size 2000   # a quick look
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import DATA, REPO, environment, table, write_json

sys.path.insert(0, str(REPO / "tests" / "seaice"))
GSHHG = DATA / "land" / "gshhg_full_baltic_9-31E_53-66.5N.gpkg"


def write_frame(
    folder: Path, size: int, spacing: float = 6.0, style: str = "xml", image_id: str = "9001"
) -> Path:
    """A legacy GRD delivery of a size x size frame in the Bothnian Bay, written block by block."""
    from deliveries import SAMPLE_CF, scene_geometry, write_legacy  # type: ignore[import-not-found]
    from scenes import scene_blocks  # type: ignore[import-not-found]

    geometry = scene_geometry(size, size, center=(22.6, 64.6), range_spacing=spacing, azimuth_spacing=spacing)
    dn = scene_blocks(
        (size, size),
        seed=11,
        field="dn",
        calibration_factor=SAMPLE_CF,
        incidence=(geometry.incidence_near, geometry.incidence_far),
    )
    return Path(write_legacy(folder, dn, style=style, geometry=geometry, image_id=image_id))


def run_chain(delivery: str, out: str, queue: Any) -> None:
    """In a fresh process: the whole chain, then its step times and its own peak memory."""
    from cubeport.config import SeaIceSettings
    from cubeport.seaice.chain import process_delivery

    settings = SeaIceSettings(resolution=50.0, land_polygons=str(GSHHG))
    started = time.perf_counter()
    scene = process_delivery(delivery, out, settings)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GiB
    queue.put({"wall_s": wall, "steps_s": scene.steps, "peak_gib": peak, "grid": list(scene.grid.shape)})


def chain(size: int, tmp: Path, work: Path | None) -> dict[str, Any]:
    """The chain on a frame written into `work` (kept and reused when given: writing it takes minutes)."""
    folder = work / f"frame-{size}" if work else tmp / "delivery"
    started = time.perf_counter()
    found = sorted(folder.glob("ICEYE_*.tif")) if folder.is_dir() else []
    delivery = found[0] if found else write_frame(folder, size)
    written = time.perf_counter() - started
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=run_chain, args=(str(delivery), str(tmp / "out"), queue))
    child.start()
    result = queue.get()
    child.join()
    return {"frame": [size, size], "input_gib": size * size * 2 / 2**30, "write_s": written, **result}


def drift(size: int) -> dict[str, Any]:
    from motion import Motion, pair  # type: ignore[import-not-found]
    from test_drift import chart_grid, pixel_errors  # type: ignore[import-not-found]

    from cubeport.seaice.drift import estimate_drift

    motion = Motion(shift_x=25.0, shift_y=-12.0, rotation_deg=1.0, shear=0.005, wave_px=3.0)
    first, second, truth_u, truth_v = pair((size, size), seed=5, displacement=motion)
    grid = chart_grid(size)
    started = time.perf_counter()
    field = estimate_drift(first, second, grid, seconds=6 * 3600.0)
    wall = time.perf_counter() - started
    v = field.vectors
    error = pixel_errors(field, grid, truth_u, truth_v)
    return {
        "frames": [size, size],
        "wall_s": wall,
        "vectors": len(v),
        "median_error_px": float(np.median(error)),
        "p90_error_px": float(np.percentile(error, 90)),
        "rejected": field.rejected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16_000, help="side of the GRD frame (pixels)")
    parser.add_argument("--drift-size", type=int, default=8_000, help="side of the drift frames (pixels)")
    parser.add_argument("--work", type=Path, default=None, help="folder that keeps the frame for later runs")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the frame (default: system temp)")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cubeport-seaice-bench-", dir=args.tmp))
    try:
        results = {"chain": chain(args.size, tmp, args.work)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["drift"] = drift(args.drift_size)

    c, d = results["chain"], results["drift"]
    print(table(["step", "seconds"], [*c["steps_s"].items(), ("whole chain (wall)", c["wall_s"])]))
    print(
        f"\nchain: {args.size} x {args.size} frame ({c['input_gib']:.2f} GiB of DN) -> {c['grid']} px at 50 m: "
        f"{c['wall_s']:.1f} s (goal 60 s, ratio {c['wall_s'] / 60:.2f}), peak {c['peak_gib']:.2f} GiB "
        f"(goal 4 GiB, ratio {c['peak_gib'] / 4:.2f}); writing (or finding) the frame took {c['write_s']:.0f} s (not timed)"
    )
    print(
        f"drift: {args.drift_size} x {args.drift_size} pair: {d['wall_s']:.1f} s (goal 60 s, ratio "
        f"{d['wall_s'] / 60:.2f}), {d['vectors']} vectors, error median {d['median_error_px']:.2f} px, "
        f"p90 {d['p90_error_px']:.2f} px"
    )
    print(
        write_json(
            "seaice",
            {
                "environment": environment(),
                "settings": {"size": args.size, "drift_size": args.drift_size},
                **results,
            },
            args.out,
        )
    )


if __name__ == "__main__":
    main()
