"""The sea-ice chain's steps as processes (entry point `cubeport.processes: seaice`), so jobs run them.

Each step's process runs the chain up to that step on one delivery (given as the URLs of its files) and
returns that step's product: the validation report, a calibrated or corrected image in radar geometry,
the rectified (and land-masked) backscatter COG, the class COG, or the ice chart as a collection. Drift
takes two deliveries. The science parameters are the platform's `seaice` settings.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import geopandas as gpd
from pydantic import Field

from cubeport.config import SeaIceSettings, load_settings
from cubeport.processes.definition import Files, JobContext, process
from cubeport.seaice.chain import NEEDS, STEPS, Scene, process_delivery
from cubeport.seaice.delivery import validate_delivery
from cubeport.seaice.pairs import drift_between

Delivery = Annotated[
    Files,
    Field(
        description="http(s) URLs of the files of one ICEYE delivery: a GeoTIFF with its XML sidecar, a COG "
        "with its JSON sidecar, a zip of them, or a GeoTIFF with the metadata in its tags"
    ),
]
KEYWORDS = ["sea ice", "SAR", "ICEYE"]


def _settings() -> SeaIceSettings:
    return load_settings().seaice


def _delivery(files: list[Path], folder: Path) -> Path:
    """One file as it is; several moved into a folder of their own (a delivery is a folder of files)."""
    if len(files) == 1:
        return files[0]
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.move(path, folder / path.name)
    return folder


def steps_to(step: str) -> list[str]:
    """The chain's steps that `step` builds on, and itself, in order."""
    chosen = {step}
    while step in NEEDS:
        step = NEEDS[step]
        chosen.add(step)
    if "rectify" in chosen:
        chosen.add("correct")  # products on the map are always incidence-corrected
    if "classify" in chosen:
        chosen.add("mask")  # classes of land are not ice
    return [s for s in STEPS if s in chosen]


def _run(job: JobContext, files: list[Path], step: str, name: str = "delivery") -> Scene:
    chosen = steps_to(step)

    def started(current: str) -> None:
        job.log(f"step {current}")
        job.progress(chosen.index(current) / len(chosen), current)

    return process_delivery(
        _delivery(files, job.workdir / name),
        job.workdir / "scenes",
        _settings(),
        steps=chosen,
        progress=started,
    )


@process("seaice-validate", title="Validate an ICEYE delivery", keywords=[*KEYWORDS, "validation"])
def seaice_validate(job: JobContext, delivery: Delivery) -> dict[str, Any]:
    """Every problem of the delivery at once (missing or mismatched files, SLC, unknown mode, no calibration
    factor, corrupt TIFF, unsafe zip), and its metadata when it is valid."""
    limits = _settings()
    validation = validate_delivery(
        _delivery(delivery, job.workdir / "delivery"),
        max_files=limits.max_delivery_files,
        max_bytes=limits.max_delivery_bytes,
    )
    metadata = None
    if validation.ok and validation.product is not None:
        metadata = {k: v for k, v in asdict(validation.product.metadata).items() if k != "raw"}
    return {"valid": validation.ok, "problems": validation.problems, "metadata": metadata}


@process("seaice-calibrate", title="Calibrate an ICEYE GRD scene", keywords=[*KEYWORDS, "calibration"])
def seaice_calibrate(job: JobContext, delivery: Delivery) -> Path:
    """sigma0 in dB (GRD: calibration factor x DN squared) in radar geometry, as a GeoTIFF with the GCPs."""
    return _run(job, delivery, "calibrate").path("sigma0_db")


@process(
    "seaice-correct", title="Correct an ICEYE scene for incidence angle", keywords=[*KEYWORDS, "incidence"]
)
def seaice_correct(job: JobContext, delivery: Delivery) -> Path:
    """sigma0 (dB) corrected to the reference incidence angle, in radar geometry."""
    return _run(job, delivery, "correct").path("sigma0_db")


@process("seaice-rectify", title="Georectify an ICEYE scene", keywords=[*KEYWORDS, "georectification"])
def seaice_rectify(job: JobContext, delivery: Delivery) -> Path:
    """The corrected backscatter and the incidence angle on the ice-chart Mercator grid, as a COG."""
    return _run(job, delivery, "rectify").path("backscatter")


@process("seaice-mask", title="Mask land in an ICEYE scene", keywords=[*KEYWORDS, "land mask"])
def seaice_mask(job: JobContext, delivery: Delivery) -> Path:
    """The rectified scene with land and the coastal buffer as no-data, as a COG."""
    return _run(job, delivery, "mask").path("backscatter")


@process(
    "seaice-classify", title="Classify sea ice in an ICEYE scene", keywords=[*KEYWORDS, "classification"]
)
def seaice_classify(job: JobContext, delivery: Delivery) -> Path:
    """Ice classes (0 open water, 1 new/thin, 2 level, 3 deformed/ridged, 4 fast ice; 255 no data) as a COG."""
    return _run(job, delivery, "classify").path("classes")


@process("seaice-chart", title="Ice chart of an ICEYE scene", keywords=[*KEYWORDS, "ice chart", "SIGRID-3"])
def seaice_chart(job: JobContext, delivery: Delivery) -> gpd.GeoDataFrame:
    """Ice-chart polygons with SIGRID-3 attributes (CT, CA, SA, FA, POLY_TYPE, AREA) as a collection."""
    scene = _run(job, delivery, "chart")
    return gpd.read_file(scene.path("chart_gpkg"))


@process("seaice-drift", title="Sea-ice drift between two ICEYE scenes", keywords=[*KEYWORDS, "drift"])
def seaice_drift(
    job: JobContext,
    first: Annotated[Delivery, Field(description="the files of the first delivery")],
    second: Annotated[Delivery, Field(description="the files of the second, overlapping delivery")],
) -> gpd.GeoDataFrame:
    """Drift vectors (speed m/s, direction degrees from north, quality) from feature matching refined by
    pattern matching on a regular grid, between two overlapping scenes."""
    scenes = [_run(job, files, "rectify", name) for files, name in ((first, "first"), (second, "second"))]
    drift = drift_between(scenes[0].folder, scenes[1].folder, job.workdir / "drift")
    job.log(f"{len(drift.field.vectors)} vectors; rejected: {drift.field.rejected}")
    return drift.field.vectors
