"""Calibration of the real ICEYE samples' DNs with their calibration factor, against values computed by hand
from the formulas (GRD: sigma0 = CF * DN^2, no sin term; beta0 = sigma0 / sin; gamma0 = sigma0 / cos)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio

from cubeport.cubes.readers import open_product
from cubeport.cubes.readers.iceye import IceyeMetadata
from cubeport.errors import InputError
from cubeport.seaice.calibration import calibrate

SAMPLE = "sar/ICEYE_GRD_54549_20210427T215124_hollow_10x10pixels_fake_0.tif"
CF = 3.939204325311276e-08  # CALIBRATION_FACTOR of the samples
NEAR = 31.661727086845776  # INCIDENCE_NEAR

# By hand (30-digit decimal arithmetic, then log10): DN 113, the first pixel of fake_0, 113^2 = 12769
SIGMA0_113 = 5.0299700029899683e-04  # CF * 12769
SIGMA0_113_DB = -32.98434604919177  # 10 log10(5.02997e-4)
SIGMA0_411 = 6.6541433383590605e-03  # CF * 411^2, the second pixel
SIGMA0_411_DB = -21.76907848133878
# at the near edge, sin(31.6617 deg) = 0.5249032, cos = 0.8511619
BETA0_113 = 9.582662068165331e-04
GAMMA0_113 = 5.909533585157021e-04
BETA0_113_DB = -30.185138269429356
GAMMA0_113_DB = -32.284467948185814


def metadata(level: str = "GRD", factor: float | None = CF) -> IceyeMetadata:
    """By hand, with the samples' values (the hollow image's 10 columns are the scene's first 10)."""
    return IceyeMetadata(
        generation="legacy", image_id="54549", satellite="ICEYE-XY", product_level=level, mode="spotlight",
        polarisation="VV", orbit_direction="ASCENDING", look_side="RIGHT", start=datetime(2021, 4, 27, 21, 51, 24),
        end=datetime(2021, 4, 27, 21, 51, 30), width=10, height=10, range_spacing=0.5, azimuth_spacing=0.5,
        calibration_factor=factor, incidence_near=NEAR, incidence_far=32.172883995845055,
        incidence_coefficients=(3.16617271e01, 8.74389044e-05, -7.00297508e-11, 1.37137269e-18, 9.45921276e-23),
        incidence_origin=0.0,
    )  # fmt: skip


@pytest.fixture
def dn(data: Path) -> np.ndarray:
    with rasterio.open(data / SAMPLE) as ds:
        assert float(ds.tags()["CALIBRATION_FACTOR"]) == CF
        values = ds.read(1)
    assert values[0, 0] == 113 and values[0, 1] == 411  # the DNs the hand values use
    return values


def test_sigma0_linear_and_db(dn: np.ndarray) -> None:
    sigma0 = calibrate(dn, metadata())
    assert sigma0.dtype == np.float32 and sigma0.shape == (10, 10)
    assert sigma0[0, 0] == pytest.approx(SIGMA0_113, rel=1e-6)
    assert sigma0[0, 1] == pytest.approx(SIGMA0_411, rel=1e-6)
    db = calibrate(dn, metadata(), db=True)
    assert db[0, 0] == pytest.approx(SIGMA0_113_DB, abs=1e-5)
    assert db[0, 1] == pytest.approx(SIGMA0_411_DB, abs=1e-5)
    # every pixel: CF * DN^2, in float64 here
    np.testing.assert_allclose(sigma0, CF * dn.astype(np.float64) ** 2, rtol=1e-6)


def test_no_sin_term_for_grd(dn: np.ndarray) -> None:
    """SNAP before 2025 multiplied GRD by sin(theta) again: that would be 2.80 dB lower at the near edge."""
    db = calibrate(dn, metadata(), db=True)
    snap = 10 * math.log10(SIGMA0_113 * math.sin(math.radians(NEAR)))
    assert db[0, 0] - snap == pytest.approx(2.7993, abs=1e-3)


def test_beta0_and_gamma0_at_the_near_edge(dn: np.ndarray) -> None:
    near = np.full(10, NEAR)
    assert calibrate(dn, metadata(), near, "beta0")[0, 0] == pytest.approx(BETA0_113, rel=1e-6)
    assert calibrate(dn, metadata(), near, "gamma0")[0, 0] == pytest.approx(GAMMA0_113, rel=1e-6)
    assert calibrate(dn, metadata(), near, "beta0", db=True)[0, 0] == pytest.approx(BETA0_113_DB, abs=1e-5)
    assert calibrate(dn, metadata(), near, "gamma0", db=True)[0, 0] == pytest.approx(GAMMA0_113_DB, abs=1e-5)
    # without angles given, the metadata's polynomial: column 0 is at 31.6617271 deg, the same to 1e-7
    assert calibrate(dn, metadata(), quantity="beta0")[0, 0] == pytest.approx(BETA0_113, rel=1e-6)


def test_per_pixel_angles(dn: np.ndarray) -> None:
    theta = np.full((10, 10), 30.0)
    beta0 = calibrate(dn, metadata(), theta, "beta0")
    np.testing.assert_allclose(beta0, CF * dn.astype(np.float64) ** 2 / 0.5, rtol=1e-6)  # sin 30 = 1/2


def test_dn_zero_is_nodata() -> None:
    dn = np.array([[0, 113], [113, 0]], np.uint16)
    m = replace(metadata(), width=2)
    for quantity in ("sigma0", "beta0", "gamma0"):
        for db in (False, True):
            out = calibrate(dn, m, quantity=quantity, db=db)
            assert np.isnan(out[0, 0]) and np.isnan(out[1, 1]) and np.isfinite(out[0, 1])


def test_dask_in_dask_out(dn: np.ndarray) -> None:
    big = np.tile(dn, (30, 40))  # 300 x 400
    theta = np.linspace(31.6, 32.2, 400)
    for quantity in ("sigma0", "beta0", "gamma0"):
        lazy = calibrate(da.from_array(big, chunks=(128, 96)), metadata(), theta, quantity, db=True)
        assert isinstance(lazy, da.Array) and lazy.dtype == np.float32
        np.testing.assert_allclose(
            lazy.compute(), calibrate(big, metadata(), theta, quantity, db=True), atol=1e-5
        )


def test_large_numpy_images_go_by_strips_with_the_same_values() -> None:
    """1300 rows are three strips of 512 on two threads: each row still CF * DN^2 / sin(theta)."""
    rng = np.random.default_rng(3)
    dn = rng.integers(0, 4000, (1300, 7)).astype(np.uint16)
    theta = np.linspace(21.0, 29.0, 7)
    beta0 = calibrate(dn, replace(metadata(), width=7), theta, "beta0")
    expected = CF * dn.astype(np.float64) ** 2 / np.sin(np.radians(theta))[None, :]
    expected[dn == 0] = np.nan
    np.testing.assert_allclose(beta0, expected, rtol=1e-6)
    assert np.isnan(beta0[dn == 0]).all() and (dn == 0).any()


def test_slc_is_refused(dn: np.ndarray) -> None:
    with pytest.raises(InputError, match="is SLC, not GRD"):
        calibrate(dn, metadata(level="SLC"))


def test_missing_calibration_factor_is_named(dn: np.ndarray) -> None:
    with pytest.raises(InputError, match="no usable calibration factor"):
        calibrate(dn, metadata(factor=None))
    with pytest.raises(InputError, match="no usable calibration factor"):
        calibrate(dn, metadata(factor=0.0))


def test_bad_requests(dn: np.ndarray) -> None:
    with pytest.raises(InputError, match="unknown backscatter quantity"):
        calibrate(dn, metadata(), quantity="sigma1")
    with pytest.raises(InputError, match="9 incidence angles for 10 columns"):
        calibrate(dn, metadata(), np.zeros(9), "beta0")
    with pytest.raises(InputError, match="2-D"):
        calibrate(dn[0], metadata())


def test_through_the_reader(data: Path) -> None:
    """The reader's lazy amplitude and metadata go straight in."""
    product = open_product(str(data / SAMPLE))
    sigma0 = calibrate(product.data["amplitude"].data, product.metadata, db=True)
    assert isinstance(sigma0, da.Array)
    assert sigma0.compute()[0, 0] == pytest.approx(SIGMA0_113_DB, abs=1e-5)
