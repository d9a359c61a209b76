"""The ICEYE reader: the real legacy samples give the values of ../shared/design/seaice-facts.md, and every
delivery style of both generations opens to the same metadata model, data and georeferencing."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from deliveries import (
    SAMPLE_CF,
    add_zip_member,
    scene_geometry,
    write_current,
    write_image_only,
    write_legacy,
    write_tif,
)
from pyproj import CRS

from cubeport.cubes.readers import open_fragment, reader_for
from cubeport.cubes.readers.iceye import (
    Corner,
    IceyeReader,
    incidence_at,
    parse_legacy_xml,
    parse_name,
    parse_numbers,
)
from cubeport.errors import InputError

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

SAMPLES = [f"sar/ICEYE_GRD_54549_20210427T215124_hollow_10x10pixels_fake_{i}.tif" for i in range(3)]
# the three fakes of the icecube stack differ in these (checked with rasterio against their tags)
STACK = [
    ("ASCENDING", datetime(2021, 4, 28, 21, 51, 30, 25535)),
    ("DESCENDING", datetime(2021, 4, 27, 21, 51, 30, 25535)),
    ("ASCENDING", datetime(2021, 5, 27, 21, 51, 30, 25535)),
]
COEFFICIENTS = (3.16617271e01, 8.74389044e-05, -7.00297508e-11, 1.37137269e-18, 9.45921276e-23)
SHAPE = (200, 300)  # rows, columns of the synthetic frames


@pytest.fixture(scope="module")
def dn() -> np.ndarray:
    return np.random.default_rng(7).integers(1, 6000, SHAPE).astype(np.uint16)


@pytest.mark.parametrize("index", range(3))
def test_real_samples_give_the_facts(data: Path, index: int) -> None:
    path = str(data / SAMPLES[index])
    orbit, end = STACK[index]
    assert isinstance(reader_for(path), IceyeReader)
    product = IceyeReader().open(path)
    m = product.metadata
    assert (m.generation, m.image_id, m.satellite, m.product_level) == ("legacy", "54549", "ICEYE-XY", "GRD")
    assert (m.mode, m.polarisation, m.orbit_direction, m.look_side) == (
        "spotlight",
        "VV",
        orbit,
        "RIGHT",
    )
    assert m.calibration_factor == 3.939204325311276e-08
    assert m.incidence_near == 31.661727086845776
    assert m.incidence_far == 32.172883995845055
    assert m.incidence_coefficients == COEFFICIENTS
    assert m.incidence_origin == 0.0
    assert m.ground_to_slant_coefficients[0] == 6.21685243e05
    assert m.slant_range_near == 621685.2427500114
    assert (m.range_spacing, m.azimuth_spacing, m.width, m.height) == (0.5, 0.5, 10, 10)
    assert m.start == datetime(2021, 4, 27, 21, 51, 24, 929476)
    assert m.end == end
    # COORD_* are 1-based "col row lat lon" of the real 11748 x 10779 scene
    assert m.corners == {
        "first_near": Corner(0.0, 0.0, 37.41700285, -6.2818332),
        "first_far": Corner(11747.0, 0.0, 37.4264571, -6.21675354),
        "last_near": Corner(0.0, 10778.0, 37.4646332, -6.29258576),
        "last_far": Corner(11747.0, 10778.0, 37.4741096, -6.22731201),
    }
    georef = product.georef
    assert len(georef.gcps) == 810 and georef.gcps_crs == CRS.from_epsg(4326)
    assert (georef.gcps[0].row, georef.gcps[0].col) == (0.5, 0.5)  # the first pixel's centre, as GDAL counts
    assert georef.gcps[0].y == pytest.approx(m.corners["first_near"].lat, abs=1e-5)  # within 0.3 m
    assert georef.rpcs is not None and georef.rpcs.lat_off == pytest.approx(37.447919172633)
    assert not georef.is_gridded and georef.transform is None
    amplitude = product.data["amplitude"]
    assert amplitude.dims == ("y", "x") and amplitude.dtype == np.uint16
    assert amplitude.chunks is not None  # lazy (dask)
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(amplitude.values, ds.read(1))


def test_incidence_polynomial_takes_ground_range_in_metres(data: Path) -> None:
    m = IceyeReader().open(str(data / SAMPLES[0])).metadata
    assert incidence_at(m, 0.0) == pytest.approx(31.6617271, abs=1e-9)
    assert incidence_at(m, 11747 * 0.5) == pytest.approx(32.1729, abs=1e-4)
    assert abs(incidence_at(m, 11747 * 0.5) - m.incidence_far) < 0.01
    assert incidence_at(m, 11747.0) == pytest.approx(32.68, abs=0.01)  # pixels instead of metres: wrong
    grid = incidence_at(m, np.array([[0.0, 5873.5]]))
    assert grid.shape == (1, 2) and grid[0, 1] == pytest.approx(32.1729, abs=1e-4)


def test_ingesting_the_sample_says_radar_geometry(data: Path) -> None:
    with pytest.raises(InputError, match=r"ICEYE.*radar geometry"):
        open_fragment(str(data / SAMPLES[0]))


def test_numpy_reprs_and_lists_parse() -> None:
    assert parse_numbers("[ 3.16617271e+01  8.74389044e-05\n -7.00297508e-11]") == (
        31.6617271,
        8.74389044e-05,
        -7.00297508e-11,
    )
    assert parse_numbers("[ 1.17480000e+04  1.00000000e+00  3.74264571e+01 -6.21675354e+00]")[0] == 11748.0
    assert parse_numbers("[1. 1. 37.41700285 -6.2818332 ]") == (1.0, 1.0, 37.41700285, -6.2818332)
    assert parse_numbers("[[-2259.75 0.]\n [-1743.72 0.]]") == (-2259.75, 0.0, -1743.72, 0.0)
    assert parse_numbers("1.5, 2.5") == (1.5, 2.5)
    assert parse_numbers([1, 2.5]) == (1.0, 2.5)
    with pytest.raises(ValueError, match="summarised"):
        parse_numbers("[1. 2. ... 9.]")
    with pytest.raises(ValueError, match="no numbers"):
        parse_numbers("[]")


def test_name_patterns_of_both_generations() -> None:
    legacy = parse_name("ICEYE_X6_GRD_SM_453426_20231026T060946.tif")
    assert legacy is not None and (legacy.generation, legacy.product, legacy.mode_code, legacy.image_id) == (
        "legacy",
        "GRD",
        "SM",
        "453426",
    )
    assert legacy.time == datetime(2023, 10, 26, 6, 9, 46) and legacy.satellite == "X6"
    current = parse_name("ICEYE_75CMBF_20240612T174339Z_4119892_X11_SLF_GRD.json")
    assert current is not None and (current.generation, current.mode_code, current.image_id) == (
        "current",
        "SLF",
        "4119892",
    )
    assert current.time == datetime(2024, 6, 12, 17, 43, 39)
    sample = parse_name(Path(SAMPLES[0]).name)
    assert sample is not None and (sample.product, sample.image_id, sample.mode_code) == ("GRD", "54549", "")
    assert parse_name("S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif") is None
    reader = IceyeReader()
    for name in ("a.tif", "a.TIFF", "a.xml", "a.json", "a.zip"):
        assert reader.can_open("ICEYE_X6_GRD_SM_453426_20231026T060946" + name[1:])
    assert not reader.can_open("ICEYE_X6_GRD_SM_453426_20231026T060946.nc")
    assert not reader.can_open("S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif")


STYLES = [("legacy", "tags"), ("legacy", "xml"), ("legacy", "zip"), ("current", "json"), ("current", "tag")]


def _write(folder: Path, dn: np.ndarray, generation: str, style: str, **kwargs: object) -> Path:
    writer = write_legacy if generation == "legacy" else write_current
    return writer(folder, dn, style=style, tile=128, **kwargs)  # type: ignore[operator]


def _model(metadata: object) -> dict[str, object]:
    """The model's fields that both generations must agree on."""
    fields = asdict(metadata)  # type: ignore[call-overload]
    for key in ("generation", "raw", "ground_to_slant_origin"):
        fields.pop(key)
    return fields


def _points(gcps: tuple[Any, ...]) -> list[tuple[float, float, float, float]]:
    return [(g.row, g.col, g.x, g.y) for g in gcps]


@pytest.mark.parametrize("generation, style", STYLES)
def test_every_style_opens_to_the_same_model(
    tmp_path: Path, dn: np.ndarray, generation: str, style: str
) -> None:
    reference = IceyeReader().open(str(write_legacy(tmp_path / "reference", dn, tile=128)))
    path = _write(tmp_path / "d", dn, generation, style)
    product = IceyeReader().open(str(path))
    m = product.metadata
    assert m.generation == generation
    corners, expected = _model(m).pop("corners"), _model(reference.metadata)
    assert _model(m) | {"corners": None} == expected | {"corners": None}
    for name, corner in expected["corners"].items():  # type: ignore[attr-defined]
        assert corners[name] == pytest.approx(corner, abs=1e-9)  # type: ignore[index]
    assert (m.width, m.height, m.mode, m.product_level, m.calibration_factor) == (
        300,
        200,
        "scan",
        "GRD",
        SAMPLE_CF,
    )
    assert m.image_id == "54549" and m.satellite == "ICEYE-X6"
    # the sample's footprint on a 300 x 200 frame: corners 0-based on the frame's corner pixels
    assert (m.corners["last_far"].col, m.corners["last_far"].row) == (299.0, 199.0)
    assert m.corners["last_far"].lat == pytest.approx(37.4741096)
    assert abs(incidence_at(m, m.corners["first_far"].col * m.range_spacing) - m.incidence_far) < 1e-6
    np.testing.assert_array_equal(product.data["amplitude"].values, dn)
    assert len(product.georef.gcps) == 810 and product.georef.rpcs is not None
    assert _points(product.georef.gcps) == _points(reference.georef.gcps)


@pytest.mark.parametrize("generation, style", [("legacy", "xml"), ("current", "json")])
def test_opening_the_sidecar_opens_the_pair(
    tmp_path: Path, dn: np.ndarray, generation: str, style: str
) -> None:
    image = _write(tmp_path, dn, generation, style)
    sidecar = image.with_suffix(".xml" if style == "xml" else ".json")
    by_image, by_sidecar = IceyeReader().open(str(image)), IceyeReader().open(str(sidecar))
    assert by_sidecar.metadata == by_image.metadata
    np.testing.assert_array_equal(by_sidecar.data["amplitude"].values, dn)


def test_xml_sidecar_has_lower_case_elements_and_coefficient_blocks(tmp_path: Path, dn: np.ndarray) -> None:
    image = write_legacy(tmp_path, dn, style="xml", tile=128)
    text = image.with_suffix(".xml").read_text()
    assert "<calibration_factor>3.939204325311276e-08</calibration_factor>" in text
    assert "<Incidence_Angle_Coefficients>" in text and "<coefficient>" in text
    with rasterio.open(image) as ds:
        assert "CALIBRATION_FACTOR" not in ds.tags()  # the metadata really comes from the XML
    tags = parse_legacy_xml(image.with_suffix(".xml").read_bytes(), "x.xml")
    assert parse_numbers(tags["INCIDENCE_ANGLE_COEFFICIENTS"])[:2] == COEFFICIENTS[:2]


def test_current_json_sidecar_is_a_stac_item(tmp_path: Path, dn: np.ndarray) -> None:
    image = write_current(tmp_path, dn, tile=128)
    item = json.loads(image.with_suffix(".json").read_text())
    assert item["type"] == "Feature" and item["id"] == image.stem
    assert item["properties"]["iceye:calibration_factor"] == SAMPLE_CF
    assert item["properties"]["proj:shape"] == [200, 300]
    assert image.name.startswith("ICEYE_") and image.stem.endswith("_54549_X6_SC_GRD")
    with rasterio.open(image) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"


def test_corners_become_gcps_when_the_tiff_has_none(tmp_path: Path, dn: np.ndarray) -> None:
    product = IceyeReader().open(str(write_legacy(tmp_path, dn, gcps=[], tile=128)))
    gcps = {g.id: g for g in product.georef.gcps}
    assert set(gcps) == {"first_near", "first_far", "last_near", "last_far"}
    assert (gcps["last_far"].row, gcps["last_far"].col) == (199.5, 299.5)  # pixel centres as GDAL counts them
    assert gcps["last_far"].y == pytest.approx(37.4741096) and gcps["last_far"].x == pytest.approx(
        -6.22731201
    )
    assert product.georef.gcps_crs == CRS.from_epsg(4326)


def test_current_cog_with_a_rotated_geotransform_stays_in_radar_geometry(
    tmp_path: Path, dn: np.ndarray
) -> None:
    """Current COGs may carry a rotated lon/lat geotransform instead of GCPs: corners and GCPs come from it."""
    image = write_current(tmp_path, dn, style="tag", gcps=[], tile=128, cog=False)
    transform = Affine(1e-5, 2e-6, 23.0, 1e-6, -1e-5, 64.5)
    with rasterio.open(image, "r+") as ds:
        ds.crs, ds.transform = "EPSG:4326", transform
        props = json.loads(ds.tags()["ICEYE_PROPERTIES"])
        props.pop("proj:transform")
        ds.update_tags(ICEYE_PROPERTIES=json.dumps(props))
    product = IceyeReader().open(str(image))
    assert not product.georef.is_gridded and len(product.georef.gcps) == 100
    last = product.metadata.corners["last_far"]
    lon, lat = transform @ (299.5, 199.5)
    assert (last.col, last.row) == (299.0, 199.0)
    assert (last.lon, last.lat) == (pytest.approx(lon), pytest.approx(lat))


def test_scene_geometry_writes_a_consistent_baltic_frame(tmp_path: Path) -> None:
    geometry = scene_geometry(400, 300, range_spacing=6.0, azimuth_spacing=6.0, incidence=(21.0, 29.0))
    frame = np.ones((300, 400), np.uint16)
    m = IceyeReader().open(str(write_legacy(tmp_path, frame, geometry=geometry, tile=128))).metadata
    assert incidence_at(m, 0.0) == pytest.approx(21.0) and incidence_at(m, 399 * 6.0) == pytest.approx(29.0)
    assert m.range_spacing == 6.0 and m.orbit_direction == "ASCENDING" and m.look_side == "RIGHT"
    lon, lat = geometry.lonlat(299, 399)
    assert (m.corners["last_far"].lon, m.corners["last_far"].lat) == (
        pytest.approx(float(lon), abs=1e-7),
        pytest.approx(float(lat), abs=1e-7),
    )
    # 6 m pixels: the far corner of the first line is 399 * 6 m east-ish of the first pixel
    from pyproj import Geod

    first = m.corners["first_near"]
    far = m.corners["first_far"]
    assert Geod(ellps="WGS84").inv(first.lon, first.lat, far.lon, far.lat)[2] == pytest.approx(
        399 * 6.0, rel=1e-6
    )


def test_reader_errors_name_the_file_and_the_problem(tmp_path: Path, dn: np.ndarray) -> None:
    reader = IceyeReader()
    bare = write_image_only(tmp_path / "bare", dn, "ICEYE_X6_GRD_SC_54549_20210427T215124.tif")
    with pytest.raises(
        InputError, match=r"ICEYE_X6_GRD_SC_54549_20210427T215124\.tif: image without metadata"
    ):
        reader.open(str(bare))
    image = write_legacy(tmp_path / "lonely", dn, style="xml", tile=128)
    image.unlink()
    with pytest.raises(InputError, match=r"\.xml: metadata without image"):
        reader.open(str(image.with_suffix(".xml")))
    # every missing field is named at once
    partial = write_legacy(
        tmp_path / "partial", dn, {"INCIDENCE_NEAR": None, "RANGE_SPACING": None}, tile=128
    )
    with pytest.raises(InputError, match=r"ICEYE legacy metadata lacks") as caught:
        reader.open(str(partial))
    assert str(partial) in str(caught.value)
    assert "INCIDENCE_NEAR" in str(caught.value) and "RANGE_SPACING" in str(caught.value)
    archive = write_legacy(tmp_path / "zip", dn, style="zip", tile=128)
    add_zip_member(archive, "../escape.txt")
    with pytest.raises(InputError, match=r"path traversal"):
        reader.open(str(archive))


def test_xml_with_entities_is_refused(tmp_path: Path, dn: np.ndarray) -> None:
    image = write_legacy(tmp_path, dn, style="xml", tile=128)
    sidecar = image.with_suffix(".xml")
    bomb = b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">]><Metadata><x>&a;</x></Metadata>'
    sidecar.write_bytes(bomb)
    with pytest.raises(InputError, match="DOCTYPE"):
        IceyeReader().open(str(image))


def test_write_tif_takes_a_callable_block_by_block(tmp_path: Path) -> None:
    """The writer other tests use for 16k frames: rows come from a callable, one row of tiles at a time."""
    calls: list[tuple[int, int]] = []

    def rows(r0: int, r1: int) -> np.ndarray:
        calls.append((r0, r1))
        return np.add.outer(np.arange(r0, r1), np.arange(300)).astype(np.uint16)

    path = write_tif(tmp_path / "f.tif", rows, shape=(300, 300), tile=128)
    assert calls == [(0, 128), (128, 256), (256, 300)]
    with rasterio.open(path) as ds:
        assert ds.block_shapes == [(128, 128)] and ds.compression.value == "DEFLATE"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
        np.testing.assert_array_equal(ds.read(1), np.add.outer(np.arange(300), np.arange(300)))
