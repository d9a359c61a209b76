"""One ICEYE delivery through the chain: validate -> calibrate -> correct -> rectify -> mask -> classify -> chart.

Every step's product is written into a staging folder beside the output, which is renamed into place only
when all requested steps are done: a crash or a bad input leaves no half-processed scene. A delivery that
fails validation raises `DeliveryRejected` with every problem; the caller decides on quarantine.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
from affine import Affine
from pyproj import CRS

from cubeport.config import SeaIceSettings
from cubeport.cubes.readers.iceye import Corner, IceyeMetadata
from cubeport.errors import InputError
from cubeport.seaice.calibration import calibrate
from cubeport.seaice.charts import chart_polygons, write_chart
from cubeport.seaice.classify import CLASS_NODATA, IceClass, classify
from cubeport.seaice.delivery import Validation, validate_delivery
from cubeport.seaice.grid import Grid
from cubeport.seaice.incidence import correct, incidence_grid, linear_correction
from cubeport.seaice.landmask import land_mask
from cubeport.seaice.rectify import rectify, scene_grid, write_cog

log = logging.getLogger("cubeport.seaice")

STEPS = ("validate", "calibrate", "correct", "rectify", "mask", "classify", "chart")
NEEDS = {  # a step and the one it builds on
    "calibrate": "validate",
    "correct": "calibrate",
    "rectify": "calibrate",
    "mask": "rectify",
    "classify": "rectify",
    "chart": "classify",
}
Progress = Callable[[str], None]  # called with the name of each step as it starts
# dask.array is untyped: its functions through typed names
_from_array: Callable[..., Any] = da.from_array
_broadcast_to: Callable[..., Any] = da.broadcast_to


class DeliveryRejected(InputError):
    """A delivery that failed validation; `validation.problems` names every problem."""

    def __init__(self, validation: Validation) -> None:
        self.validation = validation
        super().__init__(f"{validation.path}: rejected: " + "; ".join(validation.problems))


@dataclass
class Scene:
    """A processed scene: its folder, files by role, grid, metadata and what each step took (seconds)."""

    scene_id: str
    folder: Path
    metadata: IceyeMetadata
    files: dict[str, str] = field(default_factory=dict)  # role -> file name in `folder`
    grid: Grid | None = None
    steps: dict[str, float] = field(default_factory=dict)
    class_fractions: dict[str, float] = field(default_factory=dict)

    @property
    def time(self) -> datetime:
        return self.metadata.start

    def path(self, role: str) -> Path:
        return self.folder / self.files[role]

    @classmethod
    def load(cls, folder: str | Path) -> Scene:
        """A processed scene from its folder (`scene.json`), to publish it later without the delivery."""
        folder = Path(folder)
        record_path = folder / "scene.json"
        if not record_path.is_file():
            raise InputError(
                f"{folder}: not a processed scene (no scene.json); run `cubeport seaice process` first"
            )
        record = json.loads(record_path.read_text())
        if "metadata" not in record:
            raise InputError(
                f"{folder}: processed by an older version (scene.json has no metadata); process it again"
            )
        grid = record.get("grid")
        return cls(
            record["scene_id"],
            folder,
            _metadata(record["metadata"]),
            dict(record["files"]),
            Grid(CRS.from_wkt(grid["crs"]), Affine(*grid["transform"]), grid["shape"][1], grid["shape"][0])
            if grid
            else None,
            dict(record.get("steps_seconds", {})),
            dict(record.get("class_fractions", {})),
        )

    def summary(self) -> str:
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in self.steps.items())
        return f"scene {self.scene_id} ({self.time:%Y-%m-%d %H:%M} UTC): {', '.join(self.files)} [{timing}]"


def check_steps(steps: Iterable[str] | None) -> list[str]:
    """The requested steps in chain order; InputError names an unknown step or a missing prerequisite."""
    chosen = list(STEPS) if steps is None else [s.strip() for s in steps if s.strip()]
    unknown = [s for s in chosen if s not in STEPS]
    if unknown:
        raise InputError(f"unknown step {', '.join(unknown)}; steps: {', '.join(STEPS)}")
    for step in chosen:
        need = NEEDS.get(step)
        if need and need not in chosen:
            raise InputError(f"step {step} needs {need}: add it to the steps")
    return [s for s in STEPS if s in chosen]


def scene_id(metadata: IceyeMetadata) -> str:
    """The scene's id in file and cube names: ICEYE's image id and the start time."""
    return f"ICEYE_{metadata.image_id}_{metadata.start:%Y%m%dT%H%M%S}"


def process_delivery(
    delivery: str | Path,
    out: str | Path,
    settings: SeaIceSettings | None = None,
    *,
    steps: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> Scene:
    """Run the chain on one delivery into `out/<scene id>/`; DeliveryRejected if it is not valid."""
    settings = settings or SeaIceSettings()
    chosen = check_steps(steps)
    note = progress or (lambda step: None)
    timings: dict[str, float] = {}

    started = time.perf_counter()
    note("validate")
    validation = validate_delivery(
        delivery, max_files=settings.max_delivery_files, max_bytes=settings.max_delivery_bytes
    )
    if not validation.ok or validation.product is None:
        raise DeliveryRejected(validation)
    product = validation.product
    metadata: IceyeMetadata = product.metadata
    timings["validate"] = time.perf_counter() - started

    scene = Scene(scene_id(metadata), Path(out) / scene_id(metadata), metadata, steps=timings)
    staging = scene.folder.with_name(f".{scene.scene_id}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _run_steps(product, scene, staging, chosen, settings, note)
        (staging / "scene.json").write_text(json.dumps(_record(scene), indent=1))
        scene.files["record"] = "scene.json"
        if scene.folder.exists():  # the scene again (a re-delivery): the new products replace the old
            shutil.rmtree(scene.folder)
        staging.rename(scene.folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return scene


def _run_steps(
    product: Any, scene: Scene, staging: Path, chosen: list[str], settings: SeaIceSettings, note: Progress
) -> None:
    """The steps after validation; each writes its products into `staging` and times itself."""
    metadata = scene.metadata
    timings = scene.steps
    dn = product.data["amplitude"].data  # lazy (dask): a 16,000 x 16,000 frame is read block by block

    def timed(step: str) -> float:
        note(step)
        return time.perf_counter()

    if "calibrate" not in chosen:
        return
    start = timed("calibrate")
    angles = incidence_grid(metadata, dn.shape[1])  # one per column: GRD is constant in azimuth
    incidence = _broadcast_to(_from_array(angles, chunks=dn.chunks[1]), dn.shape, chunks=dn.chunks)
    sigma0 = calibrate(dn, metadata)  # linear power, lazily
    timings["calibrate"] = time.perf_counter() - start

    if "correct" in chosen:
        start = timed("correct")
        factor = linear_correction(angles, settings.reference_angle, settings.slope_db_per_degree)
        sigma0 = sigma0 * _from_array(factor, chunks=dn.chunks[1])[None, :]
        timings["correct"] = time.perf_counter() - start

    if "rectify" not in chosen:
        _write_radar_geometry(staging / f"{scene.scene_id}_sigma0_db.tif", _db(sigma0), product.georef)
        scene.files["sigma0_db"] = f"{scene.scene_id}_sigma0_db.tif"
        return
    start = timed("rectify")
    grid = scene_grid(product.georef, settings.chart_crs, settings.resolution, shape=tuple(dn.shape))
    # averaged in linear power (multilooking), not in dB, which would bias the mean low under speckle
    warped = rectify(
        {"sigma0": sigma0, "incidence": incidence}, product.georef, grid, resampling=settings.resampling
    )
    rectified = {"sigma0_db": _db(warped["sigma0"]), "incidence": warped["incidence"]}
    scene.grid = grid
    timings["rectify"] = time.perf_counter() - start

    land = None
    if "mask" in chosen:
        start = timed("mask")
        land = land_mask(grid, settings.land_polygons, settings.coastal_buffer_m)
        for name in rectified:
            rectified[name][land] = np.nan
        timings["mask"] = time.perf_counter() - start

    classes = None
    if "classify" in chosen:
        start = timed("classify")
        classes = classify(rectified["sigma0_db"], land=land, model=settings.classifier_model)
        if settings.class_slopes:  # the published backscatter corrected with each class's own slope
            rectified["sigma0_db"] = _class_corrected(rectified, classes, settings)
        valid = classes != CLASS_NODATA
        total = max(int(valid.sum()), 1)
        scene.class_fractions = {c.label: float((classes == c).sum()) / total for c in IceClass}
        write_cog(
            staging / f"{scene.scene_id}_classes.tif", {"ice_class": classes}, grid, nodata=CLASS_NODATA
        )
        scene.files["classes"] = f"{scene.scene_id}_classes.tif"
        timings["classify"] = time.perf_counter() - start

    write_cog(staging / f"{scene.scene_id}.tif", rectified, grid, band_names=list(rectified))
    scene.files["backscatter"] = f"{scene.scene_id}.tif"

    if "chart" in chosen and classes is not None:
        start = timed("chart")
        polygons = chart_polygons(classes, grid)
        for suffix in ("gpkg", "shp"):
            write_chart(polygons, staging / f"{scene.scene_id}_chart.{suffix}")
            scene.files[f"chart_{suffix}"] = f"{scene.scene_id}_chart.{suffix}"
        timings["chart"] = time.perf_counter() - start


def _db(power: Any) -> Any:
    """10 log10 of linear power (numpy or dask), NaN where there is none."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (10 * np.log10(power)).astype(np.float32)


def _class_corrected(rectified: dict[str, Any], classes: Any, settings: SeaIceSettings) -> Any:
    """The single-slope correction undone and redone with each class's slope (`seaice.class_slopes`)."""
    by_code = {IceClass[name.upper()].value: slope for name, slope in settings.class_slopes.items()}
    uncorrected = rectified["sigma0_db"] + settings.slope_db_per_degree * (
        rectified["incidence"] - settings.reference_angle
    )
    return correct(
        uncorrected,
        rectified["incidence"],
        reference=settings.reference_angle,
        slope=settings.slope_db_per_degree,
        classes=classes,
        class_slopes=by_code,
    )


def _write_radar_geometry(path: Path, array: Any, georef: Any) -> None:
    """A calibrated image not yet rectified: float32 GeoTIFF in radar geometry with the product's GCPs."""
    import rasterio

    data = np.asarray(array, dtype=np.float32)
    profile = {
        "driver": "GTiff",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": "float32",
        "nodata": float("nan"),
        "tiled": True,
        "compress": "deflate",
        "predictor": 3,
        "BIGTIFF": "IF_SAFER",
    }
    part = path.with_name(path.name + ".part")
    with rasterio.open(part, "w", **profile) as dst:
        dst.write(data, 1)
        if georef.gcps:
            dst.gcps = (list(georef.gcps), georef.gcps_crs)
    part.rename(path)


def _record(scene: Scene) -> dict[str, Any]:
    """What `scene.json` keeps: enough to publish the scene later without the delivery."""
    m = scene.metadata
    record: dict[str, Any] = {
        "scene_id": scene.scene_id,
        "image_id": m.image_id,
        "satellite": m.satellite,
        "mode": m.mode,
        "polarisation": m.polarisation,
        "orbit_direction": m.orbit_direction,
        "look_side": m.look_side,
        "start": m.start.isoformat(),
        "end": m.end.isoformat(),
        "incidence": [m.incidence_near, m.incidence_far],
        "files": scene.files,
        "steps_seconds": {k: round(v, 3) for k, v in scene.steps.items()},
        "class_fractions": scene.class_fractions,
        "metadata": {
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(m).items() if k != "raw"
        },
    }
    if scene.grid is not None:
        record["grid"] = {
            "crs": scene.grid.crs.to_wkt(),
            "transform": list(scene.grid.transform)[:6],
            "shape": list(scene.grid.shape),
        }
    return record


def _metadata(record: dict[str, Any]) -> IceyeMetadata:
    """The metadata model back from `scene.json` (times as ISO text, corners and tuples as JSON lists)."""
    values = dict(record)
    for key in ("start", "end"):
        values[key] = datetime.fromisoformat(values[key])
    for key in ("incidence_coefficients", "ground_to_slant_coefficients"):
        values[key] = tuple(values.get(key, ()))
    values["corners"] = {k: Corner(**v) for k, v in values.get("corners", {}).items()}
    return IceyeMetadata(**values)
