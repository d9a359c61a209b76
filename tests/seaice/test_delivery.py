"""Delivery validation names every problem at once, for both ICEYE generations and every delivery form; good
deliveries pass untouched; rejected ones are quarantined whole with their reasons."""

from __future__ import annotations

import json
import os
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from deliveries import (
    add_zip_member,
    as_folder,
    declare_size,
    truncate,
    write_current,
    write_image_only,
    write_legacy,
    zip_bomb,
    zip_folder,
)

from cubeport.errors import InputError
from cubeport.seaice.delivery import Validation, quarantine, validate_delivery

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

SHAPE = (200, 300)
GENERATIONS = ["legacy", "current"]
SIDECAR = {"legacy": ".xml", "current": ".json"}
SAMPLES = [f"sar/ICEYE_GRD_54549_20210427T215124_hollow_10x10pixels_fake_{i}.tif" for i in range(3)]


@pytest.fixture(scope="module")
def dn() -> np.ndarray:
    return np.random.default_rng(11).integers(1, 6000, SHAPE).astype(np.uint16)


def validate(path: Path, max_files: int = 16, max_bytes: int = 2**30, **kwargs: Any) -> Validation:
    return validate_delivery(path, max_files=max_files, max_bytes=max_bytes, **kwargs)


def write(folder: Path, generation: str, dn: np.ndarray, style: str | None = None, **kwargs: Any) -> Path:
    """A delivery of `generation` (legacy: GeoTIFF + XML, current: COG + JSON unless `style` says)."""
    if generation == "legacy":
        return write_legacy(folder, dn, style=style or "xml", tile=128, **kwargs)  # type: ignore[arg-type]
    return write_current(folder, dn, style=style or "json", tile=128, **kwargs)  # type: ignore[arg-type]


def overrides(generation: str, legacy: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    return legacy if generation == "legacy" else current


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path below `root` with its size and modification time: what "writes nothing" compares."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            status = (Path(folder) / name).lstat()
            found[str(Path(folder) / name)] = (status.st_size, status.st_mtime_ns)
    return found


def one(validation: Validation, text: str) -> str:
    """The problem that mentions `text` (exactly one must)."""
    matching = [p for p in validation.problems if text in p]
    assert len(matching) == 1, f"{text!r} not once in {validation.problems}"
    return matching[0]


# --- good deliveries -----------------------------------------------------------------------------------------

FORMS = [
    ("legacy", "tags", "file"),
    ("legacy", "xml", "file"),
    ("legacy", "xml", "sidecar"),
    ("legacy", "xml", "folder"),
    ("legacy", "zip", "file"),
    ("legacy", "zip", "folder"),
    ("current", "json", "file"),
    ("current", "json", "sidecar"),
    ("current", "json", "folder"),
    ("current", "tag", "file"),
    ("current", "json", "zip"),
]


@pytest.mark.parametrize("generation, style, form", FORMS)
def test_good_deliveries_pass_and_validation_writes_nothing(
    tmp_path: Path, dn: np.ndarray, generation: str, style: str, form: str
) -> None:
    path = write(tmp_path / "inbox", generation, dn, style)
    if form == "folder":
        path = as_folder(path, tmp_path / "inbox" / "delivery")
    elif form == "sidecar":
        path = path.with_suffix(SIDECAR[generation])
    elif form == "zip":
        folder = as_folder(path, tmp_path / "staging")
        path = zip_folder(folder, tmp_path / "inbox" / f"{path.stem}.zip")
    before = snapshot(tmp_path)
    validation = validate(path)
    assert validation.ok and validation.problems == []
    assert snapshot(tmp_path) == before
    assert validation.product is not None
    metadata = validation.product.metadata
    assert (metadata.generation, metadata.image_id, metadata.width, metadata.height) == (
        generation,
        "54549",
        300,
        200,
    )
    np.testing.assert_array_equal(validation.product.data["amplitude"].values, dn)
    assert snapshot(tmp_path) == before  # reading the data (zip members too) writes nothing either


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_real_samples_pass_and_are_left_alone(data: Path, sample: str) -> None:
    """The hollow samples hold 10 of 11748 columns: the incidence check uses the far corner's column."""
    before = snapshot(data / "sar")
    validation = validate(data / sample)
    assert validation.ok, validation.problems
    assert (
        validation.product is not None
        and validation.product.metadata.calibration_factor == 3.939204325311276e-08
    )
    assert snapshot(data / "sar") == before


# --- what is wrong with the product --------------------------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS)
def test_image_without_metadata(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    image = write(tmp_path / "d", generation, dn)
    image.with_suffix(SIDECAR[generation]).unlink()
    for path in (image, tmp_path / "d"):
        validation = validate(path)
        assert "image without metadata" in one(validation, image.name) and validation.product is None
    bare = write_image_only(tmp_path / "bare", dn, "scene.tif")  # no ICEYE name, no tags, no sidecar
    assert "image without metadata" in one(validate(bare), "scene.tif")


@pytest.mark.parametrize("generation", GENERATIONS)
def test_metadata_without_image(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    image = write(tmp_path / "d", generation, dn)
    image.unlink()
    sidecar = image.with_suffix(SIDECAR[generation])
    for path in (sidecar, tmp_path / "d"):
        validation = validate(path)
        assert "metadata without image" in one(validation, sidecar.name)
        assert validation.product is None


@pytest.mark.parametrize("generation", GENERATIONS)
def test_mismatched_ids_between_names_and_metadata(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    other = overrides(
        generation, {"PRODUCT_NAME": "ICEYE_X6_GRD_SC_777_20210427T215124"}, {"iceye:image_id": 777}
    )
    problem = one(validate(write(tmp_path / "a", generation, dn, meta_overrides=other)), "image ids differ")
    assert "metadata 777" in problem and "54549" in problem
    # the sidecar's name says another scene than the image's
    image = write(tmp_path / "b", generation, dn)
    sidecar = image.with_suffix(SIDECAR[generation])
    sidecar.rename(sidecar.with_name(sidecar.name.replace("_54549_", "_888_")))
    problem = one(validate(tmp_path / "b"), "image ids differ")
    assert "888" in problem and "54549" in problem


@pytest.mark.parametrize("generation", GENERATIONS)
def test_mismatched_sizes(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    other = overrides(generation, {"NUMBER_OF_RANGE_SAMPLES": 301}, {"proj:shape": [200, 301]})
    validation = validate(write(tmp_path, generation, dn, meta_overrides=other))
    assert "image is 300 x 200 pixels (columns x rows), the metadata says 301 x 200" in one(
        validation, "metadata says"
    )


@pytest.mark.parametrize("generation", GENERATIONS)
def test_slc_where_grd_is_expected(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    path = write(tmp_path, generation, dn, level="SLC")
    assert "SLC where GRD is expected" in one(validate(path), "product level")
    assert validate(path, expect_level="SLC").ok


@pytest.mark.parametrize("generation", GENERATIONS)
def test_unknown_mode(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    validation = validate(write(tmp_path, generation, dn, mode="warp"))
    assert "unknown acquisition mode 'warp'" in one(validation, "mode 'warp'")
    assert "mode code WARP in the file name" in one(validation, "code WARP")


@pytest.mark.parametrize("generation", GENERATIONS)
def test_missing_calibration_factor(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    validation = validate(write(tmp_path, generation, dn, calibration_factor=None))
    assert validation.problems == [one(validation, "no calibration factor")]
    assert validation.product is not None and validation.product.metadata.calibration_factor is None


@pytest.mark.parametrize("generation", GENERATIONS)
def test_incidence_metadata_that_disagrees_with_its_polynomial(
    tmp_path: Path, dn: np.ndarray, generation: str
) -> None:
    other = overrides(generation, {"INCIDENCE_FAR": 32.5}, {"iceye:incidence_angle_far": 32.5})
    problem = one(
        validate(write(tmp_path / "far", generation, dn, meta_overrides=other)), "incidence polynomial"
    )
    # the far column is 299 at 0.5 * 11747 / 299 m: 5873.5 m of ground range, as on the real scene
    assert "gives 32.1729 deg at far range (5873.5 m), the metadata says 32.5000 deg" in problem
    near = overrides(generation, {"INCIDENCE_NEAR": 31.68}, {"iceye:incidence_angle_near": 31.68})
    assert "at near range" in one(
        validate(write(tmp_path / "near", generation, dn, meta_overrides=near)), "polynomial"
    )
    within = overrides(generation, {"INCIDENCE_FAR": 32.18}, {"iceye:incidence_angle_far": 32.18})
    assert validate(write(tmp_path / "within", generation, dn, meta_overrides=within)).ok  # 0.007 deg off


@pytest.mark.parametrize("generation", GENERATIONS)
def test_a_file_cut_in_half(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    # legacy GeoTIFFs end with their directory (GDAL writes it last); COGs start with it and lose blocks
    validation = validate(truncate(write(tmp_path, generation, dn)))
    problem = one(validation, "truncated")
    expected = (
        "not a readable GeoTIFF" if generation == "legacy" else "image blocks lie beyond the end of the file"
    )
    assert expected in problem


@pytest.mark.parametrize("generation", GENERATIONS)
def test_blocks_that_do_not_decode(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    image = write(tmp_path, generation, dn)
    with rasterio.open(image) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
    content = bytearray(image.read_bytes())
    content[offset : offset + 2000] = b"\xff" * 2000
    image.write_bytes(bytes(content))
    assert "do not decode" in one(validate(image), "the file is damaged")


@pytest.mark.parametrize("generation", GENERATIONS)
def test_several_problems_are_named_at_once(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    other = overrides(
        generation,
        {
            "NUMBER_OF_RANGE_SAMPLES": 301,
            "PRODUCT_NAME": "ICEYE_X6_SLC_XX_777_20210427T215124",
            "INCIDENCE_FAR": 33,
        },
        {"proj:shape": [200, 301], "iceye:image_id": 777, "iceye:incidence_angle_far": 33},
    )
    path = write(
        tmp_path, generation, dn, meta_overrides=other, level="SLC", mode="warp", calibration_factor=None
    )
    validation = validate(path)
    for text in (
        "SLC where GRD is expected",
        "unknown acquisition mode 'warp'",
        "no calibration factor",
        "image ids differ",
        "the metadata says 301 x 200",
        "incidence polynomial gives",
    ):
        one(validation, text)


def test_other_shapes_of_wrong(tmp_path: Path, dn: np.ndarray) -> None:
    assert validate(tmp_path / "missing").problems == [f"{tmp_path / 'missing'}: no such file or folder"]
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "not an ICEYE delivery" in one(validate(text), "notes.txt")
    two = tmp_path / "two"
    write(two, "legacy", dn)
    write(two, "legacy", dn, image_id="54550")
    assert "holds 2 images" in one(validate(two), "a delivery is one scene")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no ICEYE image" in one(validate(empty), "empty")


# --- what is wrong with the package ---------------------------------------------------------------------------


def zipped(tmp_path: Path, generation: str, dn: np.ndarray) -> Path:
    """A zip of image and sidecar: the legacy zip style, or a current COG + JSON zipped the same way."""
    if generation == "legacy":
        return write_legacy(tmp_path / "inbox", dn, style="zip", tile=128)
    image = write(tmp_path / "staging", generation, dn)
    return zip_folder(tmp_path / "staging", tmp_path / "inbox" / f"{image.stem}.zip")


@pytest.mark.parametrize("generation", GENERATIONS)
def test_zip_with_path_traversal(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    archive = zipped(tmp_path, generation, dn)
    for name in ("../escape.txt", "/etc/cron.d/evil", "C:/evil.txt", "a/../../evil.txt"):
        add_zip_member(archive, name)
    validation = validate(archive)
    traversal = [p for p in validation.problems if "path traversal" in p]
    assert len(traversal) == 4 and validation.product is None


@pytest.mark.parametrize("generation", GENERATIONS)
def test_links_in_zips_folders_and_single_files(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    archive = zipped(tmp_path, generation, dn)
    add_zip_member(archive, "notes.xml", b"/etc/passwd", symlink=True)
    assert "member 'notes.xml' is a symbolic link" in one(validate(archive), "symbolic link")
    image = write(tmp_path / "folder", generation, dn)
    (tmp_path / "folder" / "extra.json").symlink_to("/etc/passwd")
    assert "extra.json: a symbolic link (to /etc/passwd)" in one(
        validate(tmp_path / "folder"), "symbolic link"
    )
    (tmp_path / "link").symlink_to(tmp_path / "folder")
    assert "a symbolic link" in one(validate(tmp_path / "link"), "link")
    sidecar = image.with_suffix(SIDECAR[generation])
    moved = sidecar.rename(tmp_path / sidecar.name)
    sidecar.symlink_to(moved)  # the image's own sidecar is a link
    assert "a symbolic link" in one(validate(image), sidecar.name)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_too_many_files(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    archive = zipped(tmp_path, generation, dn)
    for i in range(5):
        add_zip_member(archive, f"extra/{i}.txt")
    assert "holds 7 files, more than the 6" in one(validate(archive, max_files=6), "files")
    folder = as_folder(write(tmp_path / "f", generation, dn), tmp_path / "folder")
    for i in range(5):
        (folder / f"{i}.txt").write_text("x")
    assert "more than the 6 files" in one(validate(folder, max_files=6), "files")
    assert validate(folder, max_files=7).ok


@pytest.mark.parametrize("generation", GENERATIONS)
def test_too_large(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    archive = zipped(tmp_path, generation, dn)
    limit = sum(i.file_size for i in zipfile.ZipFile(archive).infolist()) - 1
    assert "uncompressed, more than the limit" in one(validate(archive, max_bytes=limit), "bytes")
    folder = as_folder(write(tmp_path / "f", generation, dn), tmp_path / "folder")
    assert "over the limit" in one(validate(folder, max_bytes=limit), "bytes")
    single = write(tmp_path / "single", generation, dn)
    assert "over the limit" in one(validate(single, max_bytes=1000), "bytes")


@pytest.mark.parametrize("generation", GENERATIONS)
def test_zip_bombs_are_refused_from_the_directory(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    archive = zip_bomb(zipped(tmp_path, generation, dn), size=64 * 2**20)
    assert archive.stat().st_size < 2**20  # 64 MiB of zeros in well under 1 MiB
    validation = validate(archive, max_bytes=16 * 2**20)
    assert "declares" in one(validation, "uncompressed")
    assert not any("damaged" in p for p in validation.problems)  # refused before any member was read
    # a directory that claims 4 GB for the image is refused before anything is read
    lying = zipped(tmp_path / "lying", generation, dn)
    image = next(n for n in zipfile.ZipFile(lying).namelist() if n.endswith(".tif"))
    declare_size(lying, image, 0xF0000000)
    validation = validate(lying, max_bytes=2**30)
    assert "declares 4,0" in one(validation, "uncompressed") and validation.product is None


@pytest.mark.parametrize("generation", GENERATIONS)
def test_a_member_larger_than_its_directory_says(tmp_path: Path, dn: np.ndarray, generation: str) -> None:
    archive = zipped(tmp_path, generation, dn)
    sidecar = next(n for n in zipfile.ZipFile(archive).namelist() if n.endswith(SIDECAR[generation]))
    declare_size(archive, sidecar, 100)
    validation = validate(archive)
    assert "does not match its declared size of 100 bytes" in one(validation, sidecar)
    assert validation.product is None


def test_several_package_problems_are_named_at_once(tmp_path: Path, dn: np.ndarray) -> None:
    archive = zipped(tmp_path, "legacy", dn)
    add_zip_member(archive, "../escape.txt")
    add_zip_member(archive, "link", b"/etc/passwd", symlink=True)
    validation = validate(archive, max_files=3, max_bytes=1000)
    for text in ("path traversal", "is a symbolic link", "more than the 3", "more than the limit"):
        one(validation, text)


# --- quarantine ------------------------------------------------------------------------------------------------


def test_quarantine_moves_a_folder_and_says_why(tmp_path: Path, dn: np.ndarray) -> None:
    folder = as_folder(
        write(tmp_path / "w", "legacy", dn, calibration_factor=None), tmp_path / "inbox" / "scene"
    )
    files = sorted(p.name for p in folder.iterdir())
    validation = validate(folder)
    assert not validation.ok
    moved = quarantine(validation, tmp_path / "quarantine")
    assert not folder.exists() and moved.parent == tmp_path / "quarantine" and moved.name.startswith("scene.")
    assert sorted(p.name for p in moved.iterdir()) == files
    reason = json.loads((moved.parent / f"{moved.name}.reason.json").read_text())
    assert reason["problems"] == validation.problems and reason["delivery"] == str(folder)
    assert reason["quarantined"] == str(moved)
    assert abs((datetime.fromisoformat(reason["time"]) - datetime.now().astimezone()).total_seconds()) < 60
    sizes = {f["name"]: f["bytes"] for f in reason["files"]}
    assert sizes == {f"scene/{p.name}": p.stat().st_size for p in moved.iterdir()}
    assert reason["total_bytes"] == sum(sizes.values())
    # the same delivery again gets a name of its own
    again = as_folder(
        write(tmp_path / "w2", "legacy", dn, calibration_factor=None), tmp_path / "inbox" / "scene"
    )
    second = quarantine(validate(again), tmp_path / "quarantine")
    assert second != moved and second.exists() and moved.exists()
    assert sorted(
        p.name for p in (tmp_path / "quarantine").iterdir() if not p.name.startswith(".")
    ) == sorted([moved.name, f"{moved.name}.reason.json", second.name, f"{second.name}.reason.json"])


@pytest.mark.parametrize("generation", GENERATIONS)
def test_quarantine_takes_a_single_file_with_its_sidecar(
    tmp_path: Path, dn: np.ndarray, generation: str
) -> None:
    image = write(tmp_path / "inbox", generation, dn, mode="warp")
    other = tmp_path / "inbox" / "unrelated.txt"
    other.write_text("stays")
    validation = validate(image)
    moved = quarantine(validation, tmp_path / "q")
    assert moved.is_dir() and sorted(p.name for p in moved.iterdir()) == sorted(
        [image.name, image.with_suffix(SIDECAR[generation]).name]
    )
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == ["unrelated.txt"]
    assert (
        json.loads((tmp_path / "q" / f"{moved.name}.reason.json").read_text())["problems"]
        == validation.problems
    )


def test_quarantine_a_zip_and_a_moved_delivery(tmp_path: Path, dn: np.ndarray) -> None:
    archive = zipped(tmp_path, "legacy", dn)
    add_zip_member(archive, "../escape.txt")
    validation = validate(archive)
    moved = quarantine(validation, tmp_path / "q")
    assert not archive.exists() and moved.suffix == ".zip" and zipfile.is_zipfile(moved)
    assert "path traversal" in json.loads(Path(f"{moved}.reason.json").read_text())["problems"][0]
    with pytest.raises(InputError, match="has moved since it was validated"):
        quarantine(validation, tmp_path / "q")


def test_quarantine_across_file_systems(tmp_path: Path, dn: np.ndarray) -> None:
    """/dev/shm is another file system here: copy under a temporary name, rename, remove the original."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    folder = as_folder(write(tmp_path / "w", "current", dn, level="SLC"), tmp_path / "inbox" / "scene")
    (folder / "link").symlink_to("/etc/passwd")  # copied as a link, never followed
    files = sorted(p.name for p in folder.iterdir())
    target = shm / f"cubeport-quarantine-test-{os.getpid()}"
    try:
        moved = quarantine(validate(folder), target)
        assert not folder.exists() and sorted(p.name for p in moved.iterdir()) == files
        assert (moved / "link").is_symlink() and os.readlink(moved / "link") == "/etc/passwd"
        assert not [p for p in target.iterdir() if p.name.startswith(".")]  # no temporary left
        assert Path(f"{moved}.reason.json").exists()
    finally:
        import shutil

        shutil.rmtree(target, ignore_errors=True)
