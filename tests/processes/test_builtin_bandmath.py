"""`band-math` against numpy on a window of the real OLCI cube and on the projected NDVI cube; the
submission check refuses names the cube lacks; the result publishes through ingestion."""

import numpy as np
import pytest
from pyproj import CRS

from cubeport.cubes import cf
from cubeport.errors import InputError
from cubeport.processes.builtin import band_math


@pytest.fixture(scope="module")
def window(olci):
    """Two steps of a 200 x 150 px window on the Belgian coast (valid water pixels and land NaN)."""
    return olci.isel(time=slice(0, 2), lat=slice(500, 700), lon=slice(400, 550))


def test_a_normalised_difference_equals_numpy(window, job):
    result = band_math(job, window, "(conc_chl - kd489) / (conc_chl + kd489)", "ndci")
    assert list(result.data_vars) == ["ndci"]
    assert result["ndci"].dims == ("time", "lat", "lon")
    assert result["ndci"].chunks is not None  # lazy: computed when the runner writes it
    chl, kd = window["conc_chl"].values, window["kd489"].values
    with np.errstate(all="ignore"):
        expected = (chl - kd) / (chl + kd)
    assert np.isfinite(expected).sum() > 1000
    np.testing.assert_allclose(result["ndci"].values, expected, equal_nan=True)
    assert result["ndci"].attrs["expression"] == "(conc_chl - kd489) / (conc_chl + kd489)"


def test_where_and_comparisons(window, job):
    chl = window["conc_chl"].values
    masked = band_math(job, window, "where(conc_chl > 5, conc_chl, 0)", "high_chl")
    np.testing.assert_array_equal(masked["high_chl"].values, np.where(chl > 5, chl, 0.0))
    flags = band_math(job, window, "2 < conc_chl <= 10 and not kd489 > 1", "moderate")
    assert flags["moderate"].dtype == np.uint8  # booleans are published as 0/1
    kd = window["kd489"].values
    np.testing.assert_array_equal(
        flags["moderate"].values, ((chl > 2) & (chl <= 10) & ~(kd > 1)).astype(np.uint8)
    )


def test_coordinates_may_be_used(window, job):
    result = band_math(job, window, "where(lat > 51.2, conc_chl, nan)", "north")
    lat = window["lat"].values[None, :, None]
    np.testing.assert_array_equal(
        result["north"].values, np.where(lat > 51.2, window["conc_chl"].values, np.nan)
    )


def test_keeping_the_inputs(window, job):
    result = band_math(job, window, "conc_chl * 2", "double_chl", keep_inputs=True)
    assert set(result.data_vars) == {
        "c2rcc_flags",
        "conc_chl",
        "conc_tsm",
        "kd489",
        "quality_flags",
        "double_chl",
    }
    np.testing.assert_array_equal(result["double_chl"].values, window["conc_chl"].values * 2)
    with pytest.raises(InputError, match="the cube has a variable 'kd489'"):
        band_math(job, window, "conc_chl * 2", "kd489", keep_inputs=True)
    replaced = band_math(job, window, "kd489 * 2", "kd489")  # not kept: the name may be reused
    np.testing.assert_array_equal(replaced["kd489"].values, window["kd489"].values * 2)


def test_on_a_projected_cube_the_grid_mapping_stays_and_it_publishes(ndvi, job, publish):
    cube = ndvi.isel(time=slice(0, 6))
    result = band_math(job, cube, "where(cloud_mask == 0, ndvi, nan)", "clear_ndvi")
    assert cf.crs_of(result) == CRS.from_epsg(32633)
    expected = np.where(cube["cloud_mask"].values == 0, cube["ndvi"].values, np.nan)
    np.testing.assert_allclose(result["clear_ndvi"].values, expected, equal_nan=True)
    published = publish(result, "clear-ndvi")
    assert cf.crs_of(published) == CRS.from_epsg(32633)
    np.testing.assert_array_equal(published["time"].values, cube["time"].values)
    np.testing.assert_allclose(published["clear_ndvi"].values, expected, equal_nan=True)


def test_submission_check_names_the_unknown_variable_and_lists_the_cube_s(window):
    inputs = band_math.validate({"cube": "olci", "expression": "where(chl > 5, chl, 0)", "name": "high"})
    with pytest.raises(
        InputError, match=r"names 'chl', which is not a variable of the cube; variables: .*conc_chl"
    ):
        band_math.check(inputs, lambda cube_id: window)
    band_math.check({**inputs, "expression": "where(conc_chl > 5, conc_chl, 0)"}, lambda cube_id: window)
    with pytest.raises(InputError, match="attribute"):
        band_math.check({**inputs, "expression": "conc_chl.values"}, lambda cube_id: window)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"cube": "olci", "expression": "chl", "name": "1st"}, r"input 'name'"),
        ({"cube": "olci", "expression": "chl", "name": "a b"}, r"input 'name'"),
        ({"cube": "olci", "expression": "x" * 1001, "name": "n"}, r"input 'expression'.*at most 1000"),
        ({"cube": "olci", "expression": "", "name": "n"}, r"input 'expression'"),
        ({"cube": "olci", "expression": "chl", "name": "n", "keep": True}, "has no input 'keep'"),
        ({"cube": "olci", "expression": ["chl"], "name": "n"}, r"input 'expression'"),
    ],
)
def test_band_math_inputs_are_validated_at_submission(inputs, message):
    with pytest.raises(InputError, match=message):
        band_math.validate(inputs)


def test_an_expression_without_time_is_refused(window, job):
    with pytest.raises(InputError, match="must use a time-dependent variable"):
        band_math(job, window, "lat * 2", "twice_lat")
