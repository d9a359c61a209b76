"""`cubeport seaice`: ICEYE deliveries checked, processed into ice charts and published; drift of two scenes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cubeport.cli.base import DataRoot, app, context_for, err, out, progress_bar, split
from cubeport.errors import InputError

if TYPE_CHECKING:
    from cubeport.context import Context
    from cubeport.seaice.publish import Published

seaice_app = typer.Typer(
    help="Sea ice from ICEYE SAR: validate deliveries, process them into ice charts, measure drift.",
    no_args_is_help=True,
)
app.add_typer(seaice_app, name="seaice")

Delivery = Annotated[
    str,
    typer.Argument(
        metavar="DELIVERY",
        help="A delivery: a folder, a zip, or an image or sidecar file (GeoTIFF + XML, COG + JSON)",
        show_default=False,
    ),
]
Quarantine = Annotated[
    bool,
    typer.Option(
        "--quarantine/--no-quarantine",
        help="Move a rejected delivery to the quarantine folder (seaice.quarantine) with a .reason.json",
    ),
]


def _quarantine_folder(context: Context) -> Path:
    folder = context.settings.seaice.quarantine
    if folder:
        return Path(folder)
    if context.storage.is_s3:
        return Path("seaice-quarantine")
    return Path(context.storage.root) / "seaice" / "quarantine"


@seaice_app.command("validate")
def seaice_validate(delivery: Delivery, quarantine: Quarantine = False, data_root: DataRoot = None) -> None:
    """Check a delivery without processing it; every problem is listed (exit code 2 if there is one)."""
    from cubeport.seaice.delivery import quarantine as move_to_quarantine
    from cubeport.seaice.delivery import validate_delivery

    context = context_for(data_root)
    limits = context.settings.seaice
    validation = validate_delivery(
        delivery, max_files=limits.max_delivery_files, max_bytes=limits.max_delivery_bytes
    )
    if validation.ok and validation.product is not None:
        m = validation.product.metadata
        out.print(
            f"valid: ICEYE {m.product_level} {m.mode} {m.polarisation}, image {m.image_id}, "
            f"{m.width} x {m.height} px, {m.start:%Y-%m-%d %H:%M:%S} UTC, {m.orbit_direction.lower()}, "
            f"incidence {m.incidence_near:.2f}-{m.incidence_far:.2f} deg"
        )
        return
    for problem in validation.problems:
        err.print(f"problem: {problem}", markup=False, highlight=False)
    if quarantine:
        moved = move_to_quarantine(validation, _quarantine_folder(context))
        err.print(f"moved to quarantine: {moved}", markup=False, highlight=False)
    raise typer.Exit(2)


@seaice_app.command("process")
def seaice_process(
    delivery: Delivery,
    steps: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated steps to run [default: all: validate,calibrate,correct,rectify,mask,classify,chart]"
        ),
    ] = None,
    out_folder: Annotated[
        Path, typer.Option("--out", help="Folder the scene's products are written to (one folder a scene)")
    ] = Path("seaice-scenes"),
    publish: Annotated[
        bool,
        typer.Option(
            "--publish/--no-publish",
            help="Add the scene to the ice cube (seaice.cube), STAC and the ice-chart collection",
        ),
    ] = True,
    quarantine: Quarantine = True,
    data_root: DataRoot = None,
) -> None:
    """Process a delivery into calibrated, rectified backscatter, ice classes and an ice chart."""
    from cubeport.seaice.chain import DeliveryRejected, check_steps, process_delivery
    from cubeport.seaice.delivery import quarantine as move_to_quarantine

    context = context_for(data_root)
    chosen = check_steps(split(steps))
    if publish and "rectify" not in chosen:
        raise typer.BadParameter(
            "publishing needs the rectify step; add it or give --no-publish", param_hint="--steps"
        )
    with progress_bar() as progress:
        task = progress.add_task("sea-ice chain", total=len(chosen))

        def started(step: str) -> None:
            progress.update(task, description=f"sea-ice chain: {step}", completed=chosen.index(step))

        try:
            scene = process_delivery(
                delivery, out_folder, context.settings.seaice, steps=chosen, progress=started
            )
        except DeliveryRejected as rejected:
            for problem in rejected.validation.problems:
                err.print(f"problem: {problem}", markup=False, highlight=False)
            if quarantine:
                moved = move_to_quarantine(rejected.validation, _quarantine_folder(context))
                err.print(f"moved to quarantine: {moved}", markup=False, highlight=False)
            raise typer.Exit(2) from None
        progress.update(task, completed=len(chosen), description="sea-ice chain: done")
    out.print(scene.summary(), markup=False, highlight=False)
    out.print(f"products: {scene.folder}", markup=False, highlight=False)
    if scene.class_fractions:
        out.print(
            "classes: " + ", ".join(f"{k} {v:.0%}" for k, v in scene.class_fractions.items() if v),
            markup=False,
        )
    if publish:
        context.storage.check()
        _print_published(scene.scene_id, context.seaice.scene(scene))


@seaice_app.command("drift")
def seaice_drift(
    first: Annotated[
        str, typer.Argument(metavar="SCENE1", help="A processed scene folder", show_default=False)
    ],
    second: Annotated[str, typer.Argument(metavar="SCENE2", help="Another, overlapping", show_default=False)],
    out_folder: Annotated[Path, typer.Option("--out", help="Folder the drift files are written to")] = Path(
        "seaice-drift"
    ),
    step: Annotated[int, typer.Option(help="Pixels between vectors", min=4)] = 32,
    patch: Annotated[int, typer.Option(help="Side (pixels) of the matched patches", min=8)] = 32,
    publish: Annotated[
        bool,
        typer.Option("--publish/--no-publish", help="Add the vectors to the seaice.ice_drift collection"),
    ] = False,
    data_root: DataRoot = None,
) -> None:
    """Ice drift between two overlapping processed scenes: vectors (GeoPackage, GeoParquet) and a NetCDF grid."""
    from cubeport.seaice.pairs import drift_between

    drift = drift_between(first, second, out_folder, step_px=step, patch_px=patch)
    field, vectors = drift.field, drift.field.vectors
    speeds = vectors["speed"] if len(vectors) else None
    out.print(
        f"{len(vectors)} vectors"
        + (
            f", speed median {float(speeds.median()):.3f} m/s, max {float(speeds.max()):.3f} m/s"
            if speeds is not None
            else ""
        )
        + (
            f"; rejected: {', '.join(f'{k} {v}' for k, v in field.rejected.items())}"
            if field.rejected
            else ""
        ),
        markup=False,
    )
    for kind, path in drift.files.items():
        out.print(f"{kind}: {path}", markup=False, highlight=False)
    if publish:
        context = context_for(data_root)
        added = context.seaice.drift(drift)
        out.print(f"published: {added} vectors in seaice.ice_drift", markup=False)


def _print_published(scene_id: str, done: Published) -> None:
    features = "".join(f", {n} features in seaice.{c}" for c, n in done.features.items())
    out.print(
        f"published {scene_id}: cube {done.cube} (item {done.item}){features}", markup=False, highlight=False
    )


def _scene_folders(folder: Path) -> list[Path]:
    """A processed scene folder, or every one directly inside `folder`."""
    if (folder / "scene.json").is_file():
        return [folder]
    found = sorted(p.parent for p in folder.glob("*/scene.json"))
    if not found:
        raise InputError(f"{folder}: no processed scene in it (no scene.json); run `cubeport seaice process`")
    return found


@seaice_app.command("publish")
def seaice_publish(
    folder: Annotated[Path, typer.Argument(help="A processed scene folder, or a folder of them")],
    archive: Annotated[
        Path | None,
        typer.Option(help="Also keep the scenes in this folder, where later scenes find their drift partner"),
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Publish processed scenes: their day in the ice cube, STAC, the ice-chart collection. Publishing a scene
    again replaces what it published before."""
    from cubeport.seaice.chain import Scene

    context = context_for(data_root)
    context.storage.check()
    for path in _scene_folders(folder):
        scene = Scene.load(path)
        _print_published(scene.scene_id, context.seaice.scene(scene))
        if archive is not None:
            kept = archive / scene.scene_id
            partial = archive / f".{scene.scene_id}.part"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(path, partial)
            shutil.rmtree(kept, ignore_errors=True)
            partial.rename(kept)


@seaice_app.command("drift-previous")
def seaice_drift_previous(
    folder: Annotated[Path, typer.Argument(help="A processed scene folder, or a folder of them")],
    archive: Annotated[Path, typer.Option(help="Folder of earlier scenes (seaice publish --archive)")],
    out_folder: Annotated[Path, typer.Option("--out", help="Folder the drift files are written to")] = Path(
        "seaice-drift"
    ),
    publish: Annotated[
        bool,
        typer.Option("--publish/--no-publish", help="Add the vectors to the seaice.ice_drift collection"),
    ] = True,
    data_root: DataRoot = None,
) -> None:
    """Drift of each scene against the latest earlier scene in the archive that overlaps it (within 3 days);
    a scene without one is reported and skipped."""
    from cubeport.seaice.pairs import drift_between, previous_overlapping

    context = context_for(data_root) if publish else None
    for path in _scene_folders(folder):
        partner = previous_overlapping(path, archive)
        if partner is None:
            out.print(f"{path.name}: no earlier overlapping scene within 3 days; no drift", markup=False)
            continue
        drift = drift_between(partner, path, out_folder)
        out.print(f"{partner.name} -> {path.name}: {len(drift.field.vectors)} vectors", markup=False)
        if context is not None:
            added = context.seaice.drift(drift)
            out.print(f"published: {added} vectors in seaice.ice_drift", markup=False)
