"""Incidence angle from the real ICEYE samples' polynomial (ground range in metres, checked against their
near and far angles within 0.01 deg) and the correction to a reference angle, against hand-computed values."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio

from cubeport.cubes.readers import open_product
from cubeport.cubes.readers.iceye import Corner, IceyeMetadata
from cubeport.errors import InputError
from cubeport.seaice.incidence import correct, incidence_grid, incidence_problems

SAMPLES = [f"sar/ICEYE_GRD_54549_20210427T215124_hollow_10x10pixels_fake_{i}.tif" for i in range(3)]
NEAR, FAR = 31.661727086845776, 32.172883995845055  # INCIDENCE_NEAR, INCIDENCE_FAR of the samples


def numbers(tag: str) -> tuple[float, ...]:
    return tuple(float(v) for v in tag.strip("[]").split())


def metadata_from_tags(path: Path) -> IceyeMetadata:
    """The model built here from the sample's GDAL tags (not by the reader): the fields incidence needs."""
    with rasterio.open(path) as ds:
        t = ds.tags()
    corners = {}
    for name in ("first_near", "first_far", "last_near", "last_far"):
        col, row, lat, lon = numbers(t[f"COORD_{name.upper()}"])
        corners[name] = Corner(col - 1, row - 1, lat, lon)  # 1-based in the tags
    return IceyeMetadata(
        generation="legacy", image_id="54549", satellite="ICEYE-XY", product_level=t["PRODUCT_LEVEL"],
        mode=t["ACQUISITION_MODE"], polarisation=t["POLARIZATION"], orbit_direction=t["ORBIT_DIRECTION"],
        look_side=t["LOOK_SIDE"].upper(), start=np.datetime64(t["ACQUISITION_START_UTC"]).astype(object),
        end=np.datetime64(t["ACQUISITION_END_UTC"]).astype(object), width=int(t["NUMBER_OF_RANGE_SAMPLES"]),
        height=int(t["NUMBER_OF_AZIMUTH_SAMPLES"]), range_spacing=float(t["RANGE_SPACING"]),
        azimuth_spacing=float(t["AZIMUTH_SPACING"]), calibration_factor=float(t["CALIBRATION_FACTOR"]),
        incidence_near=float(t["INCIDENCE_NEAR"]), incidence_far=float(t["INCIDENCE_FAR"]),
        incidence_coefficients=numbers(t["INCIDENCE_ANGLE_COEFFICIENTS"]),
        incidence_origin=float(t["INCIDENCE_ANGLE_GROUND_RANGE_ORIGIN"]), corners=corners,
    )  # fmt: skip


@pytest.fixture
def sample(data: Path) -> IceyeMetadata:
    return metadata_from_tags(data / SAMPLES[0])


def test_the_samples_are_what_the_hand_values_assume(sample: IceyeMetadata) -> None:
    assert (sample.incidence_near, sample.incidence_far) == (NEAR, FAR)
    assert sample.range_spacing == 0.5 and sample.incidence_origin == 0.0
    assert sample.width == 10 and sample.corners["first_far"].col == 11747  # hollow: 10 of 11748 columns


def test_grid_over_the_whole_scene_meets_near_and_far(sample: IceyeMetadata) -> None:
    theta = incidence_grid(sample, cols=11748)
    assert theta.dtype == np.float32 and theta.shape == (11748,)
    assert abs(theta[0] - NEAR) < 0.01 and abs(theta[-1] - FAR) < 0.01
    # by hand: c0 + c1 x + ... at x = 11747 * 0.5 m = 5873.5 m gives 32.172884
    assert theta[-1] == pytest.approx(32.172884, abs=1e-5)
    assert theta[0] == pytest.approx(31.6617271, abs=1e-5)
    assert (np.diff(theta) > 0).all()  # rises steadily across the swath


def test_grid_defaults_to_the_image_width(sample: IceyeMetadata) -> None:
    theta = incidence_grid(sample)
    assert theta.shape == (10,)
    # column 9 is 4.5 m from the first: 31.6617271 + 8.74389044e-05 * 4.5 - 7.0e-11 * 4.5**2 = 31.6621206
    assert theta[9] == pytest.approx(31.6621206, abs=1e-6)


@pytest.mark.parametrize("name", SAMPLES)
def test_real_samples_pass_the_check(data: Path, name: str) -> None:
    assert incidence_problems(metadata_from_tags(data / name)) == []


def test_pixels_instead_of_metres_is_detected(sample: IceyeMetadata) -> None:
    """Reading the polynomial's argument as pixels (as if the spacing were 1 m) lands at 32.68 deg."""
    c = sample.incidence_coefficients
    x = 11747.0
    assert sum(ci * x**i for i, ci in enumerate(c)) == pytest.approx(32.6792, abs=1e-4)
    problems = incidence_problems(replace(sample, range_spacing=1.0))
    assert problems == [
        "the incidence polynomial gives 32.6792 deg at far range (11747.0 m), the metadata says "
        "32.1729 deg (tolerance 0.01 deg)"
    ]


def test_metadata_whose_angles_do_not_match_is_refused(sample: IceyeMetadata) -> None:
    (far,) = incidence_problems(replace(sample, incidence_far=32.19))
    assert "at far range" in far and "says 32.1900 deg" in far
    (near,) = incidence_problems(replace(sample, incidence_near=31.70))
    assert "gives 31.6617 deg at near range" in near
    assert incidence_problems(replace(sample, incidence_far=FAR + 0.009)) == []  # within 0.01 deg
    assert incidence_problems(replace(sample, incidence_coefficients=())) != []
    # without corners the width says where the far edge is
    assert incidence_problems(replace(sample, corners={})) != []  # 10 columns: far is not reached
    assert incidence_problems(replace(sample, corners={}, width=11748)) == []


def test_bad_grid_requests_are_input_errors(sample: IceyeMetadata) -> None:
    with pytest.raises(InputError, match="no columns"):
        incidence_grid(sample, cols=0)
    with pytest.raises(InputError, match="no incidence-angle polynomial"):
        incidence_grid(replace(sample, incidence_coefficients=()))


def test_through_the_reader(data: Path) -> None:
    product = open_product(str(data / SAMPLES[1]))
    assert incidence_problems(product.metadata) == []
    theta = incidence_grid(product.metadata, cols=11748)
    assert abs(theta[0] - NEAR) < 0.01 and abs(theta[-1] - FAR) < 0.01


def test_correction_by_hand() -> None:
    """sigma0_ref = sigma0 - slope * (theta - ref): -15 dB at 30 deg with -0.2 dB/deg is -14 dB at 25 deg."""
    sigma = np.array([[-15.0, -15.0, -20.0, np.nan]], np.float32)
    theta = np.array([30.0, 20.0, 25.0, 28.0], np.float32)
    out = correct(sigma, theta)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, :3], [-14.0, -16.0, -20.0], atol=1e-6)
    assert np.isnan(out[0, 3])
    # another reference and slope: -15 - (-0.25) * (30 - 35) = -16.25
    assert correct(sigma, theta, reference=35.0, slope=-0.25)[0, 0] == pytest.approx(-16.25)


def test_per_class_slopes() -> None:
    sigma = np.full((2, 3), -18.0, np.float32)
    theta = np.array([[30.0, 30.0, 30.0], [20.0, 20.0, 20.0]], np.float32)  # per pixel
    classes = np.array([[0, 2, 255], [0, 2, 4]], np.uint8)
    out = correct(sigma, theta, classes=classes, class_slopes={0: -0.4, 4: 0.0})
    # water: -18 + 0.4*5 = -16 and -18 - 0.4*5 = -20; level ice (default -0.2): -17 and -19;
    # no-data class takes the default slope; fast ice (0 dB/deg) stays -18
    np.testing.assert_allclose(out, [[-16.0, -17.0, -17.0], [-20.0, -19.0, -18.0]], atol=1e-6)
    # classes without slopes: one slope for all
    np.testing.assert_allclose(correct(sigma, theta, classes=classes), [[-17.0] * 3, [-19.0] * 3], atol=1e-6)
    with pytest.raises(InputError, match="not a class"):
        correct(sigma, theta, classes=classes, class_slopes={255: -0.1})


def test_correction_of_dask_arrays_is_lazy_and_equal() -> None:
    rng = np.random.default_rng(0)
    sigma = rng.normal(-15, 3, (300, 400)).astype(np.float32)
    theta = np.linspace(21, 29, 400, dtype=np.float32)
    classes = rng.integers(0, 5, (300, 400)).astype(np.uint8)
    slopes = {0: -0.35, 3: -0.15}
    lazy = correct(
        da.from_array(sigma, chunks=(128, 150)),
        theta,
        classes=da.from_array(classes, chunks=100),
        class_slopes=slopes,
    )
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(
        lazy.compute(), correct(sigma, theta, classes=classes, class_slopes=slopes), atol=1e-5
    )
    plain = correct(da.from_array(sigma, chunks=100), theta, reference=27.0)
    np.testing.assert_allclose(plain.compute(), sigma + 0.2 * (theta[None, :] - 27.0), atol=1e-5)


def test_large_numpy_images_go_by_strips_with_the_same_values() -> None:
    """1100 rows are three strips of 512 on two threads: each pixel still sigma0 - slope * (theta - 25)."""
    rng = np.random.default_rng(4)
    sigma = rng.normal(-15, 3, (1100, 6)).astype(np.float32)
    theta = rng.uniform(20, 30, (1100, 6)).astype(np.float32)
    classes = rng.integers(0, 5, (1100, 6)).astype(np.uint8)
    out = correct(sigma, theta, classes=classes, class_slopes={1: -0.5})
    slopes = np.where(classes == 1, -0.5, -0.2)
    np.testing.assert_allclose(out, sigma - slopes * (theta - 25.0), atol=1e-5)


def test_correction_shape_errors() -> None:
    sigma = np.zeros((3, 4), np.float32)
    with pytest.raises(InputError, match="3 incidence angles for an image of 4 columns"):
        correct(sigma, np.zeros(3, np.float32))
    with pytest.raises(InputError, match="shape"):
        correct(sigma, np.zeros((4, 3), np.float32))


def test_the_linear_factor_corrects_as_the_db_formula() -> None:
    from cubeport.seaice.incidence import linear_correction

    theta = np.array([21.0, 25.0, 29.0], np.float32)
    power = np.array([[0.01, 0.02, 0.05]], np.float32)
    in_db = correct(10 * np.log10(power), theta, reference=25.0, slope=-0.2)
    assert np.allclose(10 * np.log10(power * linear_correction(theta, 25.0, -0.2)), in_db, atol=1e-5)
    assert np.allclose(in_db, [[-20.0 - 0.8, 10 * np.log10(0.02), 10 * np.log10(0.05) + 0.8]], atol=1e-5)
