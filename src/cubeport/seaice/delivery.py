"""ICEYE deliveries: checked whole before anything is processed, and set aside with their reasons when bad.

A delivery is a folder, a zip, or a single file (an image or a sidecar, with the files of the same stem
beside it). `validate_delivery` names every problem at once, so a provider fixes a delivery in one round
trip, and writes nothing; `quarantine` moves a rejected delivery out of the inbox in one step (a rename, or
a copy under a temporary name then a rename) with a `.reason.json` beside it, so nothing is half-processed.

Zips are judged by their central directory before any member is read (traversal, links, counts, declared
sizes), then every member is streamed once with zipfile, which stops at the declared size and checks the
CRC: a directory that lies about sizes fails there instead of filling a disk or memory.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from cubeport.cubes.readers.base import Georeference, Product
from cubeport.cubes.readers.iceye import (
    IMAGE_SUFFIXES,
    KNOWN_MODES,
    MODE_CODES,
    SIDECAR_MAX_BYTES,
    SIDECAR_SUFFIXES,
    IceyeMetadata,
    NameInfo,
    Pair,
    has_iceye_tags,
    open_iceye,
    open_raster,
    pair_files,
    parse_name,
    read_member,
    vsizip,
    zip_problems,
)
from cubeport.errors import InputError
from cubeport.seaice.incidence import incidence_problems

_READ_CHUNK = 4 * 2**20


@dataclass
class Validation:
    """The verdict on one delivery: every problem found, and the product opened (lazily) when it could be.

    files: what the delivery is on disk (the folder or zip itself; a single file and its same-stem
    siblings), so that quarantine moves exactly those.
    """

    path: Path
    problems: list[str] = field(default_factory=list)
    product: Product | None = None
    files: tuple[Path, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Member:
    name: str  # relative to the delivery, posix separators
    size: int
    gdal_path: str  # what GDAL opens: a file path or a /vsizip/ path
    zip_path: Path | None = None  # the zip holding it, if any
    source: str = ""  # how messages and the product name it: its path, or the zip's


def validate_delivery(
    path: str | Path, *, max_files: int, max_bytes: int, expect_level: str = "GRD"
) -> Validation:
    """Check a delivery without writing anything; `Validation.problems` lists everything wrong with it."""
    root = Path(path)
    if not os.path.lexists(root):
        return Validation(root, [f"{root}: no such file or folder"])
    if root.is_symlink():
        return Validation(
            root, [f"{root}: a symbolic link; deliver the files themselves, not a link"], files=(root,)
        )
    problems: list[str] = []
    # GDAL keeps no .aux.xml of what it reads here: validation leaves the delivery as it found it
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        zipped = False
        if root.is_dir():
            members, readable = _folder_members(root, max_files, max_bytes, problems)
            files: tuple[Path, ...] = (root,)
        elif zipped := (root.suffix.lower() == ".zip" or zipfile.is_zipfile(root)):
            members, readable = _zip_members(root, max_files, max_bytes, problems)
            files = (root,)
        else:
            members, readable, files = _single_members(root, max_files, max_bytes, problems)
        by_name = {m.name: m for m in members}
        pairs = pair_files(by_name)
        images = [p for p in pairs if p.image is not None]
        for pair in pairs:
            if pair.image is None:
                problems.append(
                    f"{pair.sidecar}: metadata without image (no {Path(str(pair.sidecar)).stem}.tif in the delivery)"
                )
        if not images and not any(p.sidecar for p in pairs) and (root.is_dir() or zipped):
            problems.append(
                f"{root.name}: no ICEYE image (.tif) and no metadata (.xml/.json) in the delivery"
            )
        if len(images) > 1:
            problems.append(
                f"{root.name}: holds {len(images)} images ({', '.join(str(p.image) for p in images)}); "
                "a delivery is one scene"
            )
        product = None
        if readable:
            container = parse_name(root.name) if root.is_dir() or root.suffix.lower() == ".zip" else None
            for pair in images:
                found, opened = _check_pair(pair, by_name, container, root.name, expect_level)
                problems.extend(found)
                product = opened if len(images) == 1 else None
    return Validation(root, problems, product, files)


# --- what a delivery holds ---------------------------------------------------------------------------------


def _folder_members(
    root: Path, max_files: int, max_bytes: int, problems: list[str]
) -> tuple[list[_Member], bool]:
    """Plain files below `root` (links are reported, never followed); readable unless over the limits."""
    members: list[_Member] = []
    total = 0
    stack = [root]
    too_many = False
    while stack and not too_many:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                name = Path(entry.path).relative_to(root).as_posix()
                if entry.is_symlink():
                    problems.append(
                        f"{root.name}/{name}: a symbolic link (to {os.readlink(entry.path)}); a delivery holds "
                        "plain files only"
                    )
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    size = entry.stat(follow_symlinks=False).st_size
                    total += size
                    members.append(_Member(name, size, entry.path, source=entry.path))
                    if len(members) > max_files:
                        too_many = True
                        break
                else:
                    problems.append(f"{root.name}/{name}: not a plain file (a device, socket or pipe)")
    if too_many:
        problems.append(f"{root.name}: holds more than the {max_files} files a delivery may hold")
    if total > max_bytes:
        problems.append(f"{root.name}: {total:,} bytes or more, over the limit of {max_bytes:,} bytes")
    return members, not too_many and total <= max_bytes


def _zip_members(
    root: Path, max_files: int, max_bytes: int, problems: list[str]
) -> tuple[list[_Member], bool]:
    """The zip's files from its directory; readable only when the directory is safe and every member
    streams to exactly its declared size with a good CRC."""
    found = zip_problems(root, max_files, max_bytes)
    problems.extend(found)
    try:
        with zipfile.ZipFile(root) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            members = [
                _Member(i.filename, i.file_size, vsizip(root, i.filename), root, str(root)) for i in infos
            ]
            if found:
                return members, False
            damaged = [f"{root.name}: {m}" for m in (_stream_problem(archive, i) for i in infos) if m]
    except (zipfile.BadZipFile, OSError):
        return [], False  # zip_problems has said it
    problems.extend(damaged)
    return members, not damaged


def _stream_problem(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str | None:
    """Stream one member to its declared size (never more) and check its CRC; what is wrong, or None."""
    try:
        with archive.open(info) as stream:
            while stream.read(_READ_CHUNK):
                pass
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
        return (
            f"member {info.filename!r} is damaged or does not match its declared size of "
            f"{info.file_size:,} bytes ({exc})"
        )
    return None


def _single_members(
    root: Path, max_files: int, max_bytes: int, problems: list[str]
) -> tuple[list[_Member], bool, tuple[Path, ...]]:
    """A single image or sidecar and the files of its stem beside it (an image's sidecar, a sidecar's image)."""
    suffixes = (*IMAGE_SUFFIXES, *SIDECAR_SUFFIXES)
    if root.suffix.lower() not in suffixes:
        problems.append(
            f"{root.name}: not an ICEYE delivery; expected a folder, a .zip, or a .tif with its .xml/.json"
        )
        return [], False, (root,)
    files = [root]
    for sibling in sorted(root.parent.iterdir()):
        if (
            sibling != root
            and sibling.suffix.lower() in suffixes
            and sibling.stem.lower() == root.stem.lower()
        ):
            if sibling.is_symlink():
                problems.append(f"{sibling.name}: a symbolic link; a delivery holds plain files only")
                continue
            files.append(sibling)
    members = [_Member(f.name, f.stat().st_size, str(f), source=str(f)) for f in files if f.is_file()]
    total = sum(m.size for m in members)
    if len(members) > max_files:
        problems.append(f"{root.name}: {len(members)} files, more than the {max_files} a delivery may hold")
    if total > max_bytes:
        problems.append(f"{root.name}: {total:,} bytes, over the limit of {max_bytes:,} bytes")
    return members, total <= max_bytes and len(members) <= max_files, tuple(files)


# --- one image and its metadata ----------------------------------------------------------------------------


def _check_pair(
    pair: Pair, members: Mapping[str, _Member], container: NameInfo | None, shown_root: str, expect_level: str
) -> tuple[list[str], Product | None]:
    assert pair.image is not None
    image = members[pair.image]
    problems, header = _tiff_check(image.gdal_path, image.name, image.size)
    if not header:
        return problems, None
    sidecar: tuple[str, bytes] | None = None
    if pair.sidecar is not None:
        try:
            sidecar = (pair.sidecar, _read(members[pair.sidecar]))
        except (InputError, OSError, zipfile.BadZipFile) as exc:
            problems.append(f"{pair.sidecar}: cannot read the metadata ({exc})")
            return problems, None
    elif not problems and not _has_tags(image.gdal_path):
        problems.append(
            f"{image.name}: image without metadata (no .xml/.json sidecar of its stem and no ICEYE metadata "
            "tags); deliver it with its metadata file"
        )
        return problems, None
    try:
        product = open_iceye(image.gdal_path, sidecar, image.source)
    except InputError as exc:
        problems.append(str(exc))
        return problems, None
    names = {f"image name {image.name}": parse_name(image.name)}
    if pair.sidecar is not None:
        names[f"metadata name {pair.sidecar}"] = parse_name(pair.sidecar)
    if container is not None:
        names[f"delivery name {shown_root}"] = container
    amplitude = product.data["amplitude"]
    problems.extend(
        metadata_problems(
            product.metadata,
            shown=image.name,
            image_shape=(int(amplitude.shape[0]), int(amplitude.shape[1])),
            image_dtype=np.dtype(amplitude.dtype),
            names={k: v for k, v in names.items() if v is not None},
            georef=product.georef,
            expect_level=expect_level,
        )
    )
    return problems, product


def _read(member: _Member) -> bytes:
    if member.zip_path is None:
        with open(member.gdal_path, "rb") as stream:
            content = stream.read(SIDECAR_MAX_BYTES + 1)
        if len(content) > SIDECAR_MAX_BYTES:
            raise InputError(f"larger than {SIDECAR_MAX_BYTES:,} bytes")
        return content
    with zipfile.ZipFile(member.zip_path) as archive:
        return read_member(archive, archive.getinfo(member.name), SIDECAR_MAX_BYTES)


def _has_tags(gdal_path: str) -> bool:
    with open_raster(gdal_path) as ds:
        return has_iceye_tags(ds.tags())


def tiff_problems(gdal_path: str, shown: str, size: int) -> list[str]:
    """What makes a GeoTIFF unreadable: a header GDAL refuses, blocks that lie beyond the end of the file
    (a truncated transfer, found from the block offsets without reading pixels), or blocks that do not
    decode (read a few rows of blocks at a time, so memory stays a few rows of blocks)."""
    return _tiff_check(gdal_path, shown, size)[0]


def _tiff_check(gdal_path: str, shown: str, size: int) -> tuple[list[str], bool]:
    """The problems and whether the header (tags, GCPs, sizes) could be read."""
    try:
        with open_raster(gdal_path, NUM_THREADS="ALL_CPUS") as ds:  # decode blocks in parallel
            return _block_problems(ds, shown, size), True
    except RasterioError as exc:
        return [
            f"{shown}: not a readable GeoTIFF ({_first_line(exc)}); the file is damaged or truncated"
        ], False


def _block_problems(ds: Any, shown: str, size: int) -> list[str]:
    """Block offsets against the file size first (cheap: no pixels), then every block decoded."""
    if ds.driver != "GTiff":
        return [f"{shown}: a {ds.driver} file, not a GeoTIFF"]
    block_h, block_w = ds.block_shapes[0]
    rows, cols = math.ceil(ds.height / block_h), math.ceil(ds.width / block_w)
    outside = 0
    for band in ds.indexes:
        for i in range(rows):
            for j in range(cols):
                offset = ds.get_tag_item(f"BLOCK_OFFSET_{j}_{i}", "TIFF", bidx=band)
                length = ds.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=band)
                if offset is not None and length is not None and int(offset) + int(length) > size:
                    outside += 1
    if outside:
        return [
            f"{shown}: {outside} of {rows * cols * ds.count} image blocks lie beyond the end of the file "
            f"({size:,} bytes): the file is truncated"
        ]
    step = block_h * max(1, 4096 // block_h)
    for r0 in range(0, ds.height, step):
        height = min(step, ds.height - r0)
        try:
            ds.read(window=Window(0, r0, ds.width, height))
        except RasterioError as exc:
            return [
                f"{shown}: rows {r0}-{r0 + height - 1} do not decode ({_first_line(exc)}): the file is damaged"
            ]
    return []


def _first_line(exc: BaseException) -> str:
    """The first line of an error, or of its cause when rasterio only says "see previous exception"."""
    if exc.__cause__ is not None and "previous exception" in str(exc):
        exc = exc.__cause__
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


# --- the metadata --------------------------------------------------------------------------------------------


def metadata_problems(
    metadata: IceyeMetadata,
    *,
    shown: str,
    image_shape: tuple[int, int],
    image_dtype: np.dtype[Any],
    names: Mapping[str, NameInfo],
    georef: Georeference,
    expect_level: str = "GRD",
) -> list[str]:
    """Everything the chain cannot trust in one product's metadata, against its image and file names."""
    problems = []
    level = metadata.product_level or "(none)"
    if level != expect_level.upper():
        problems.append(
            f"{shown}: product level {level} where {expect_level.upper()} is expected; "
            f"deliver the {expect_level.upper()} product"
        )
    codes = sorted({info.mode_code for info in names.values() if info.mode_code not in ("", *MODE_CODES)})
    if codes:
        problems.append(f"{shown}: unknown acquisition mode code {', '.join(codes)} in the file name")
    for which, info in names.items():
        if metadata.product_level and info.product != metadata.product_level:
            problems.append(
                f"{shown}: the {which} says {info.product}, the metadata {metadata.product_level}"
            )
        if (
            metadata.start.year > 1970
            and abs((info.time - metadata.start.replace(microsecond=0)).total_seconds()) > 1
        ):
            problems.append(
                f"{shown}: the {which} says {info.time:%Y-%m-%dT%H:%M:%S}, the metadata starts "
                f"{metadata.start:%Y-%m-%dT%H:%M:%S}"
            )
    if metadata.mode not in KNOWN_MODES:
        problems.append(
            f"{shown}: unknown acquisition mode {metadata.mode or '(none)'!r} (known: {', '.join(sorted(KNOWN_MODES))})"
        )
    factor = metadata.calibration_factor
    if factor is None:
        problems.append(f"{shown}: no calibration factor in the metadata; backscatter cannot be calibrated")
    elif not math.isfinite(factor) or factor <= 0:
        problems.append(f"{shown}: calibration factor {factor} is not a positive number")
    ids = {which: info.image_id for which, info in names.items()}
    if metadata.image_id:
        ids["metadata"] = metadata.image_id
    if len(set(ids.values())) > 1:
        problems.append(
            f"{shown}: image ids differ: " + ", ".join(f"{which} {value}" for which, value in ids.items())
        )
    if (metadata.height, metadata.width) != image_shape:
        problems.append(
            f"{shown}: the image is {image_shape[1]} x {image_shape[0]} pixels (columns x rows), the metadata "
            f"says {metadata.width} x {metadata.height}"
        )
    if image_dtype != np.dtype("uint16"):
        problems.append(f"{shown}: {image_dtype} pixels, where an ICEYE GRD holds uint16 amplitude")
    problems.extend(f"{shown}: {p}" for p in incidence_problems(metadata))
    if not georef.gcps and georef.rpcs is None:
        problems.append(f"{shown}: no geolocation (neither GCPs, RPCs nor corner coordinates)")
    return problems


# --- quarantine ------------------------------------------------------------------------------------------------


def quarantine(validation: Validation, folder: str | Path) -> Path:
    """Move the delivery into `folder` under a unique name, with `<name>.reason.json` beside it; its path.

    One rename within a file system; across file systems a copy under a temporary name, a rename, then the
    original is removed, so the quarantine never shows half a delivery.
    """
    target_dir = Path(folder)
    target_dir.mkdir(parents=True, exist_ok=True)
    source = validation.path
    files = validation.files or (source,)
    missing = [f for f in files if not os.path.lexists(f)]
    if missing:
        raise InputError(
            f"{missing[0]}: no such file or folder; the delivery has moved since it was validated"
        )
    sizes = _sizes(files)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    unique = f"{stamp}-{uuid.uuid4().hex[:8]}"
    if len(files) == 1:
        only = files[0]
        name = f"{only.name}.{unique}" if only.is_dir() else f"{only.stem}.{unique}{only.suffix}"
        target = target_dir / name
        _move(only, target)
    else:
        target = target_dir / f"{source.stem}.{unique}"
        partial = target_dir / f".{target.name}.partial"
        partial.mkdir()
        for file in files:
            _move(file, partial / file.name)
        os.rename(partial, target)
    reason = {
        "delivery": str(source),
        "quarantined": str(target),
        "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "problems": list(validation.problems),
        "files": sizes,
        "total_bytes": sum(s["bytes"] for s in sizes),
    }
    reason_path = target_dir / f"{target.name}.reason.json"
    temporary = target_dir / f".{reason_path.name}.partial"
    temporary.write_text(json.dumps(reason, indent=2))
    os.replace(temporary, reason_path)
    return target


def _sizes(files: tuple[Path, ...]) -> list[dict[str, Any]]:
    """Name and size of every file of the delivery (folders walked without following links)."""
    sizes: list[dict[str, Any]] = []
    for file in files:
        if file.is_dir() and not file.is_symlink():
            for folder, _, names in os.walk(file):
                for name in names:
                    path = Path(folder) / name
                    sizes.append(
                        {"name": path.relative_to(file.parent).as_posix(), "bytes": path.lstat().st_size}
                    )
        else:
            sizes.append({"name": file.name, "bytes": file.lstat().st_size})
    return sizes


def _move(source: Path, target: Path) -> None:
    """Rename; across file systems copy to a temporary name beside `target`, rename, remove the source."""
    try:
        os.rename(source, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    temporary = target.with_name(f".{target.name}.partial")
    if source.is_dir() and not source.is_symlink():
        shutil.copytree(source, temporary, symlinks=True)
    elif stat.S_ISLNK(source.lstat().st_mode):
        os.symlink(os.readlink(source), temporary)
    else:
        shutil.copy2(source, temporary)
    os.rename(temporary, target)
    if source.is_dir() and not source.is_symlink():
        shutil.rmtree(source)
    else:
        source.unlink()
