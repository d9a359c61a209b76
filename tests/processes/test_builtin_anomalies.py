"""`anomalies` against numpy on the real NDVI series (clouds masked): a monthly climatology of the cube
itself, of a reference period, or from a climatology cube; the refusals name what is missing."""

import warnings

import numpy as np
import pandas as pd
import pytest

from cubeport.errors import InputError
from cubeport.processes.builtin import anomalies, temporal_aggregate


@pytest.fixture(scope="module")
def cube(ndvi):
    return ndvi[["ndvi"]].assign(ndvi=ndvi["ndvi"].where(ndvi["cloud_mask"] == 0))


@pytest.fixture(scope="module")
def values(cube):
    return cube["ndvi"].values.astype("float64")


def monthly_anomalies(values, times, reference_values, reference_times):
    """Each step minus the NaN-skipping mean of the reference steps of its calendar month."""
    months, reference_months = pd.DatetimeIndex(times).month, pd.DatetimeIndex(reference_times).month
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pixel never clear in a month: NaN
        normals = {m: np.nanmean(reference_values[reference_months == m], axis=0) for m in set(months)}
    return np.stack([values[i] - normals[m] for i, m in enumerate(months)])


def test_anomalies_from_the_cube_s_own_monthly_climatology(cube, values, job):
    result = anomalies(job, cube)
    assert result["ndvi"].chunks is not None  # lazy
    times = cube["time"].values
    expected = monthly_anomalies(values, times, values, times)
    np.testing.assert_array_equal(result["time"].values, times)
    np.testing.assert_allclose(result["ndvi"].values, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert np.isfinite(expected).mean() > 0.3
    assert result["ndvi"].attrs["long_name"] == "anomaly of ndvi from the month climatology"


def test_anomalies_from_a_reference_period(cube, values, job):
    result = anomalies(job, cube, reference_start="2016-06-01", reference_end="2017-11-30T23:59:59Z")
    times = cube["time"].values
    inside = (times >= np.datetime64("2016-06-01")) & (times <= np.datetime64("2017-11-30T23:59:59"))
    expected = monthly_anomalies(values, times, values[inside], times[inside])
    np.testing.assert_allclose(result["ndvi"].values, expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_anomalies_from_a_climatology_cube(cube, values, job):
    normals = temporal_aggregate(job, cube, "month", "mean").compute()  # monthly means of each year
    result = anomalies(job, cube, climatology=normals)
    expected = monthly_anomalies(values, cube["time"].values, normals["ndvi"].values, normals["time"].values)
    np.testing.assert_allclose(result["ndvi"].values, expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_anomalies_by_day_of_year_publish(sst, job, publish):
    first_two = sst.isel(time=slice(0, 2))  # 5 and 6 June 2017: days 156 and 157
    with pytest.raises(InputError, match="no values for the days of the year 158 of the cube's steps"):
        anomalies(job, sst, climatology=first_two, by="dayofyear")
    warmer = first_two + 1.5
    result = anomalies(job, first_two, climatology=warmer, by="dayofyear")
    values = result["analysed_sst"].values
    land = np.isnan(first_two["analysed_sst"].values)
    np.testing.assert_allclose(values[~land], -1.5, rtol=1e-12)
    assert np.isnan(values[land]).all()
    published = publish(result, "sst-anomalies")
    np.testing.assert_array_equal(published["time"].values, first_two["time"].values)
    np.testing.assert_allclose(published["sst_anomaly"].values, result["sst_anomaly"].values, equal_nan=True)


def test_refusals_name_what_is_missing(cube, ndvi, sst, job):
    with pytest.raises(InputError, match="no values for the months 11 of the cube's steps"):
        anomalies(job, cube, reference_start="2016-01-01", reference_end="2016-12-31")  # no November step
    with pytest.raises(InputError, match="no step of the cube in the reference period"):
        anomalies(job, cube, reference_start="2020-01-01")
    with pytest.raises(InputError, match="the climatology cube: dims"):
        anomalies(job, cube, climatology=sst)
    with pytest.raises(InputError, match="the climatology cube has no variable 'cloud_mask'"):
        anomalies(job, ndvi, climatology=cube)
    with pytest.raises(InputError, match="not both"):
        anomalies(job, cube, climatology=cube, reference_start="2016-01-01")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"by": "week"}, r"input 'by'"),
        ({"climatology": 3}, r"input 'climatology'"),
        ({"reference_start": "last year"}, r"input 'reference_start'"),
        ({"reference": "2016"}, "has no input 'reference'"),
    ],
)
def test_anomalies_inputs_are_validated_at_submission(inputs, message):
    with pytest.raises(InputError, match=message):
        anomalies.validate({"cube": "ndvi", **inputs})
    assert (
        anomalies.validate({"cube": "ndvi", "climatology": "ndvi-normals"})["climatology"] == "ndvi-normals"
    )
    assert anomalies.references["climatology"].kind == "cube"
