"""`temporal-aggregate` against pandas per period on the real NDVI time series (68 steps over 2.5 years),
with clouds masked so that missing values are skipped; percentile validation; a result publishes."""

import numpy as np
import pandas as pd
import pytest
from pyproj import CRS

from cubeport.cubes import cf
from cubeport.errors import InputError
from cubeport.processes.builtin import temporal_aggregate


@pytest.fixture(scope="module")
def cube(ndvi):
    """NDVI with cloudy pixels as NaN, and the cloud mask itself (an integer variable)."""
    return ndvi.assign(ndvi=ndvi["ndvi"].where(ndvi["cloud_mask"] == 0))


SEASON_START = {12: 12, 1: 12, 2: 12, 3: 3, 4: 3, 5: 3, 6: 6, 7: 6, 8: 6, 9: 9, 10: 9, 11: 9}


def period_start(time: pd.Timestamp, period: str) -> pd.Timestamp:
    """The start of a time's month, meteorological season (DJF, MAM, JJA, SON) or year, from the calendar."""
    if period == "month":
        return pd.Timestamp(time.year, time.month, 1)
    if period == "year":
        return pd.Timestamp(time.year, 1, 1)
    return pd.Timestamp(time.year - 1 if time.month < 3 else time.year, SEASON_START[time.month], 1)


def pandas_aggregate(values, times, period, method, percentile=None):
    """(period starts, aggregates) by pandas: one column per pixel, grouped by the period of each step."""
    starts = [period_start(t, period) for t in pd.DatetimeIndex(times)]
    steps, *shape = values.shape
    grouped = pd.DataFrame(values.reshape(steps, -1).astype("float64")).groupby(starts)
    frame = grouped.quantile(percentile / 100) if method == "percentile" else getattr(grouped, method)()
    labels = frame.index.values.astype("datetime64[ns]")
    return labels, frame.to_numpy().reshape(len(labels), *shape)


@pytest.mark.parametrize(
    ("period", "method", "percentile"),
    [
        ("season", "mean", None),
        ("season", "min", None),
        ("season", "max", None),
        ("season", "median", None),
        ("season", "count", None),
        ("season", "percentile", 90.0),
        ("month", "mean", None),
        ("month", "percentile", 25.0),
        ("year", "mean", None),
        ("year", "percentile", 0.0),
    ],
)
def test_aggregates_equal_pandas_per_period(cube, job, period, method, percentile):
    result = temporal_aggregate(job, cube, period, method, percentile, variables=["ndvi"])
    assert result["ndvi"].chunks is not None  # lazy
    labels, expected = pandas_aggregate(cube["ndvi"].values, cube["time"].values, period, method, percentile)
    np.testing.assert_array_equal(result["time"].values, labels)  # periods with steps only, by their start
    np.testing.assert_allclose(result["ndvi"].values, expected, rtol=1e-6, equal_nan=True)
    assert job.fractions[-1] == 1.0


def test_the_input_has_missing_values_to_skip(cube):
    assert 0.05 < np.isnan(cube["ndvi"].values).mean() < 0.95


def test_seasons_start_in_december_march_june_september(cube, job):
    result = temporal_aggregate(job, cube, "season", "count", variables=["ndvi"])
    starts = pd.DatetimeIndex(result["time"].values)
    assert set(starts.month) == {12, 3, 6, 9}
    assert starts[0] == pd.Timestamp("2015-06-01")  # the first step is 2015-07-11: summer
    assert pd.Timestamp("2015-12-01") in starts  # December 2015 to February 2016
    assert result["ndvi"].dtype.kind in "iu"
    assert result["ndvi"].attrs["cell_methods"] == "time: count (season)"


def test_integer_variables_keep_their_type_for_min_and_max(cube, job):
    result = temporal_aggregate(job, cube, "year", "max", variables=["cloud_mask"])
    assert result["cloud_mask"].dtype == np.uint8
    labels, expected = pandas_aggregate(cube["cloud_mask"].values, cube["time"].values, "year", "max")
    np.testing.assert_array_equal(result["cloud_mask"].values, expected)


def test_a_seasonal_median_publishes_with_its_grid_mapping(cube, job, publish):
    result = temporal_aggregate(job, cube, "season", "median")
    published = publish(result, "ndvi-seasons")
    assert cf.crs_of(published) == CRS.from_epsg(32633)
    np.testing.assert_array_equal(published["time"].values, result["time"].values)
    assert (pd.DatetimeIndex(published["time"].values).day == 1).all()
    np.testing.assert_allclose(published["ndvi"].values, result["ndvi"].values, equal_nan=True)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"method": "percentile", "percentile": 101}, r"input 'percentile'.*less than or equal to 100"),
        ({"method": "percentile", "percentile": -1}, r"input 'percentile'.*greater than or equal to 0"),
        ({"method": "percentile", "percentile": "high"}, r"input 'percentile'"),
        ({"method": "mode"}, r"input 'method'"),
        ({"period": "week"}, r"input 'period'"),
        ({"periods": "month"}, "has no input 'periods'"),
    ],
)
def test_aggregate_inputs_are_validated_at_submission(inputs, message):
    with pytest.raises(InputError, match=message):
        temporal_aggregate.validate({"cube": "ndvi", **inputs})


def test_percentile_goes_with_its_method(cube, job):
    with pytest.raises(InputError, match="give a percentile"):
        temporal_aggregate(job, cube, "year", "percentile")
    with pytest.raises(InputError, match="percentile is for method percentile, not mean"):
        temporal_aggregate(job, cube, "year", "mean", 50)
    with pytest.raises(InputError, match="within 0..100"):
        temporal_aggregate(job, cube, "year", "percentile", 150)
