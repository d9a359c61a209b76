"""Safe band maths: allowed expressions equal numpy on the real SST cube and stay lazy; everything else is
refused with an InputError that says what is allowed, before anything is evaluated."""

import json
import time

import numpy as np
import pytest
import xarray as xr

from cubeport.errors import InputError
from cubeport.processes import expressions
from cubeport.processes.expressions import ALLOWED, capabilities, check_names, parse


@pytest.fixture(scope="module")
def cube(sst) -> xr.Dataset:
    return sst


@pytest.fixture(scope="module")
def plain(sst) -> dict[str, np.ndarray]:
    return {name: sst[name].values for name in ("analysed_sst", "sst_anomaly")}


@pytest.mark.parametrize(
    ("expression", "numpy"),
    [
        ("analysed_sst - 273.15", lambda v: v["analysed_sst"] - 273.15),
        ("-sst_anomaly + +analysed_sst * 2", lambda v: -v["sst_anomaly"] + v["analysed_sst"] * 2),
        (
            "(analysed_sst - sst_anomaly) / (analysed_sst + sst_anomaly)",
            lambda v: (v["analysed_sst"] - v["sst_anomaly"]) / (v["analysed_sst"] + v["sst_anomaly"]),
        ),  # fmt: skip
        ("analysed_sst ** 2 % 7 // 2", lambda v: v["analysed_sst"] ** 2 % 7 // 2),
        (
            "where(sst_anomaly > 0.5, analysed_sst, nan)",
            lambda v: np.where(v["sst_anomaly"] > 0.5, v["analysed_sst"], np.nan),
        ),  # fmt: skip
        (
            "where(analysed_sst >= 285, 1, 0) * pi",
            lambda v: np.where(v["analysed_sst"] >= 285, 1.0, 0.0) * np.pi,
        ),
    ],
)
def test_arithmetic_equals_numpy_and_stays_lazy(cube, plain, expression, numpy):
    result = parse(expression).evaluate(cube)
    assert result.chunks is not None  # dask-backed: nothing computed yet
    np.testing.assert_allclose(result.values, numpy(plain), equal_nan=True)


def test_comparisons_chain_and_booleans_are_elementwise(cube, plain):
    sst, anomaly = plain["analysed_sst"], plain["sst_anomaly"]
    chained = parse("280 < analysed_sst <= 290").evaluate(cube)
    assert chained.dtype == bool
    np.testing.assert_array_equal(chained.values, (sst > 280) & (sst <= 290))
    combined = parse("analysed_sst > 285 and sst_anomaly > 0 or not sst_anomaly < 1").evaluate(cube)
    np.testing.assert_array_equal(combined.values, ((sst > 285) & (anomaly > 0)) | ~(anomaly < 1))
    # a number's truth is non-zero, as in Python (NaN is true)
    np.testing.assert_array_equal(parse("not sst_anomaly").evaluate(cube).values, ~(anomaly != 0))


def test_names_are_the_variables_used():
    parsed = parse("where(chl > 5, chl, nan) + tsm * pi")
    assert parsed.names == {"chl", "tsm"}
    assert parsed.text == "where(chl > 5, chl, nan) + tsm * pi"


def test_where_works_on_named_variables():
    chl = xr.DataArray(np.array([[1.0, 7.0], [np.nan, 5.5]]), dims=("y", "x"))
    np.testing.assert_array_equal(
        parse("where(chl > 5, chl, 0)").evaluate({"chl": chl}).values, [[0.0, 7.0], [0.0, 5.5]]
    )


def test_huge_powers_are_floats_not_big_integers(cube):
    started = time.monotonic()
    result = parse("analysed_sst * 0 + 9 ** 9 ** 9").evaluate(cube)
    assert np.isinf(result.values[np.isfinite(cube["analysed_sst"].values)]).all()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("expression", "refused"),
    [
        ("__import__('os')", "'__import__'"),
        ("__import__", "'__import__'"),
        ("analysed_sst.__class__", "attribute"),
        ("a.b", "attribute"),
        ("x[0]", "subscript"),
        ("x[1:2]", "subscript"),
        ("open('f')", "'open'"),
        ("abs(x)", "'abs'"),
        ("lambda: 1", "lambda"),
        ("'text'", "string"),
        ("b'x' + x", "string"),
        ("f'{x}'", "string"),
        ("[v for v in x]", "comprehension"),
        ("{v: 1 for v in x}", "comprehension"),
        ("(v for v in x)", "comprehension"),
        ("x if y else z", "where(c, a, b)"),
        ("[x, y]", "list"),
        ("(x, y)", "tuple"),
        ("{x: y}", "dict"),
        ("(x := 1)", "assignment"),
        ("x & y", "'&'"),
        ("x | y", "'|'"),
        ("~x", "'~'"),
        ("x << 2", "'<<'"),
        ("x @ y", "'@'"),
        ("x is y", "'is'"),
        ("x in y", "'in'"),
        ("x not in y", "'not in'"),
        ("True", "True"),
        ("x + None", "None"),
        ("x * 1j", "1j"),
        ("x + ...", "Ellipsis"),
        ("where", "without a call"),
        ("x.where(x > 0, 1, 2)", "calling an attribute"),
        ("where(x > 0, 1, 2)(3)", "calling"),
        ("where(x > 0, 1, z=2)", "keyword"),
        ("where(*x)", "starred"),
        ("_private + 1", "'_private'"),
    ],
)
def test_everything_else_is_refused_saying_what_is_allowed(expression, refused):
    with pytest.raises(InputError) as error:
        parse(expression)
    message = str(error.value)
    assert refused in message
    assert ALLOWED in message


def balanced(leaves: int) -> str:
    """x + x + ... with `leaves` names, as a balanced tree of parenthesised sums."""
    if leaves == 1:
        return "x"
    half = leaves // 2
    return f"({balanced(half)}+{balanced(leaves - half)})"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x +", "not valid syntax"),
        ("import os", "not valid syntax"),
        ("x = 1", "not valid syntax"),
        ("x; y", "not valid syntax"),
        ("where(x, y)", "takes 3 arguments, 2 given"),
        ("1 + 2", "names no variable"),
        ("x" + " + x" * 300, "characters"),  # 1201 characters
        (balanced(210), "elements"),  # 419 nodes, 9 levels, 837 characters
        ("+".join(["x"] * 100), "nested"),  # a chain of 99 additions is 100 levels deep
        ("-" * 200 + "x", "nested"),
        ("(" * 250 + "x" + ")" * 250, "nested"),  # beyond the parser's own limit, reported as such
        ("x\x00", "NUL"),
    ],
)
def test_malformed_long_or_deep_input_is_refused(expression, message):
    with pytest.raises(InputError, match=message):
        parse(expression)


def test_very_long_input_is_refused_before_parsing(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(expressions.ast, "parse", fail)
    with pytest.raises(InputError, match="at most 1,000"):
        parse("x" * 1_000_001)


def test_unknown_names_are_named_with_the_variables(cube):
    with pytest.raises(InputError, match=r"'chl'.*variables: analysed_sst, sst_anomaly"):
        check_names("where(chl > 5, chl, 0)", ["sst_anomaly", "analysed_sst"])
    with pytest.raises(InputError, match="'chl'"):
        parse("chl * 2").evaluate(cube)
    check_names("analysed_sst - nan", ["analysed_sst"])  # constants are not variables


def test_capabilities_are_json_and_list_what_is_allowed():
    caps = capabilities()
    json.dumps(caps)
    namespace = caps["namespace"]
    assert namespace["arrayFunctions"] == ["where"]
    assert set(namespace["constants"]) == {"nan", "inf", "pi"}
    assert {"+", "-", "*", "/", "**", "%", "//", "==", "!=", "<", "<=", ">", ">=", "and", "or", "not"} == set(
        namespace["arrayOperators"]
    )
    assert caps["limits"]["maxLength"] == expressions.MAX_LENGTH
