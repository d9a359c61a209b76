"""OGC API request parameters (cubeport.ogc.params): what each accepts, and that a wrong one is an InputError
saying what is wrong."""

import json
from datetime import UTC, datetime

import pytest

from cubeport.errors import InputError
from cubeport.ogc.params import (
    CRS84,
    MAX_FILTER_DEPTH,
    epsg_uri,
    interval_ends,
    parse_bbox,
    parse_cql2,
    parse_crs,
    parse_datetime,
    parse_filter,
    parse_instant,
)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_bbox_takes_4_or_6_numbers_as_text_or_list():
    assert parse_bbox("10,53,31,66") == (10.0, 53.0, 31.0, 66.0)
    assert parse_bbox([10, 53, 31, 66]) == (10.0, 53.0, 31.0, 66.0)
    assert parse_bbox("10,53,-5,31,66,100") == (10.0, 53.0, 31.0, 66.0)  # heights dropped
    assert parse_bbox("170,-10,-170,10") == (170.0, -10.0, -170.0, 10.0)  # across the antimeridian


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("10,60,5", "give 4 (or 6)"),
        ("a,b,c,d", "give 4 (or 6) numbers west,south,east,north"),
        ("", "give 4 (or 6)"),
        ("1,2,3,4,5", "give 4 (or 6)"),
        ("10,60,20,50", "south <= north"),
        ("0,0,nan,1", "finite"),
        ("-inf,0,1,1", "finite"),
        ([1, None, 3, 4], "give 4 (or 6)"),
    ],
)
def test_bad_bbox_says_what_to_give(value, says):
    with pytest.raises(InputError, match=r"^bbox .*" + says.replace("(", r"\(").replace(")", r"\)")):
        parse_bbox(value)


def test_instants_are_utc_and_dates_are_midnight():
    assert parse_instant("2024-06-01T12:00:00Z") == utc(2024, 6, 1, 12)
    assert parse_instant("2024-06-01T14:00:00+02:00") == utc(2024, 6, 1, 12)
    assert parse_instant("2024-06-01T12:00:00") == utc(2024, 6, 1, 12)  # no zone: UTC
    assert parse_instant("2024-06-01") == utc(2024, 6, 1)
    with pytest.raises(InputError, match="'June' is not an RFC 3339 timestamp or date"):
        parse_instant("June")


def test_intervals_and_open_ends():
    assert parse_datetime("2024-06-01T00:00:00Z") == (utc(2024, 6, 1), utc(2024, 6, 1))
    assert parse_datetime("2024-06-01/2024-07-01") == (utc(2024, 6, 1), utc(2024, 7, 1))
    assert parse_datetime("2024-06-01/..") == (utc(2024, 6, 1), None)
    assert parse_datetime("/2024-06-01") == (None, utc(2024, 6, 1))
    assert parse_datetime("../..") == (None, None)  # OGC API Features: any end may be open
    assert interval_ends("2024-06-01/..") == ("2024-06-01", None)
    assert interval_ends("2024-06-01") == ("2024-06-01", "2024-06-01")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "give an RFC 3339 instant or an interval"),
        ("2024-01-01/2024-02-01/2024-03-01", "give an RFC 3339 instant or an interval"),
        ("2024-07-01/2024-06-01", "the interval ends before it starts"),
        ("yesterday/..", "'yesterday' is not an RFC 3339 timestamp or date"),
    ],
)
def test_bad_interval_says_what_is_wrong(text, says):
    with pytest.raises(InputError, match=says):
        parse_datetime(text)


def test_strict_intervals_take_only_rfc3339_date_times_and_one_open_end():
    assert parse_datetime("2024-06-01t00:00:00z/..", strict=True) == (utc(2024, 6, 1), None)
    assert parse_datetime("../2024-06-01T00:00:00+02:00", strict=True) == (None, utc(2024, 5, 31, 22))
    for text in ("2024-06-01", "../..", "..", "2024-06-01T00:00:00", "2024-06-01T00:00:00Z/x"):
        with pytest.raises(InputError, match="give an RFC 3339 date-time such as"):
            parse_datetime(text, strict=True)
    with pytest.raises(InputError, match="ends before it starts"):
        parse_datetime("2024-07-01T00:00:00Z/2024-06-01T00:00:00Z", strict=True)


def test_crs_uris():
    assert parse_crs(None) == 4326
    assert parse_crs(CRS84) == 4326
    assert parse_crs(epsg_uri(3067)) == 3067
    assert epsg_uri(3067) == "http://www.opengis.net/def/crs/EPSG/0/3067"
    for uri in (
        "EPSG:3067",
        "http://www.opengis.net/def/crs/EPSG/0/",
        "http://www.opengis.net/def/crs/EPSG/0/x1",
    ):
        with pytest.raises(
            InputError, match=r"bbox-crs .*: give http://www.opengis.net/def/crs/OGC/1.3/CRS84 or"
        ):
            parse_crs(uri)
    with pytest.raises(InputError, match="^filter-crs 'EPSG:4326'"):
        parse_crs("EPSG:4326", "filter-crs")


def test_cql2_text_and_json_give_the_same_filter():
    text = parse_filter("name = 'x' AND pop > 5")
    assert text == parse_filter(text) == parse_filter(str(text).replace("'", '"'))
    assert text == parse_filter(
        '{"op": "and", "args": [{"op": "=", "args": [{"property": "name"}, "x"]},'
        ' {"op": ">", "args": [{"property": "pop"}, 5]}]}',
        "cql2-json",
    )
    assert parse_cql2("pop > 5").matches({"properties": {"pop": 6}})
    assert not parse_cql2({"op": ">", "args": [{"property": "pop"}, 5]}).matches({"properties": {"pop": 4}})


@pytest.mark.parametrize(
    ("text", "lang", "says"),
    [
        ("name = ", None, "filter is not valid cql2-text: "),
        ("name = 'x'; DROP TABLE users", None, "filter is not valid cql2-text"),
        ("name = 'x'", "cql2-json", "filter is not valid cql2-json"),
        ('{"op": "=", "args": [', None, "filter is not valid cql2-json"),
        ({}, None, "filter is not valid cql2-json: data did not match"),  # cql2 raises a bare Exception
        ({"op": "=", "args": [1]}, "cql2-text", "filter is not valid cql2-json"),  # an object is JSON
        ("name = 'x'", "sql", "filter-lang 'sql': use one of cql2-text, cql2-json"),
    ],
)
def test_bad_cql2_says_what_is_wrong(text, lang, says):
    with pytest.raises(InputError, match=says.replace("(", r"\(")) as raised:
        parse_cql2(text, lang)
    assert len(str(raised.value)) < 400  # the library's message is cut to its first line


def test_long_cql2_messages_are_cut():
    with pytest.raises(InputError) as raised:
        parse_cql2({"op": "like", "args": ["x" * 1000]})  # the library's message repeats the filter
    assert len(str(raised.value)) <= len("filter is not valid cql2-text: ") + 300


def nested_not(levels: int) -> dict:
    node: dict = {"op": "=", "args": [{"property": "a"}, 1]}
    for _ in range(levels):
        node = {"op": "not", "args": [node]}
    return node  # 2 * levels + 3 deep


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("NOT (" * 1100 + "a = 1" + ")" * 1100, None),  # overflowed the cql2 parser's stack: the process died
        ("NOT " * 4000 + "a = 1", None),  # prefix operators nest without parentheses
        ("a = " + "-" * 4000 + "1", None),
        ("a = " + "CASEI(" * 2000 + "b" + ")" * 2000, None),
        ("a = " + "1 + " * 4000 + "1", None),  # a flat chain the parser folds into a deep tree
        (")" * 2000 + "NOT (" * 1100 + "a = 1", None),  # closing parentheses first do not hide the depth
        (json.dumps(nested_not(15)), None),  # JSON text: 33 levels
        (json.dumps(nested_not(400)), "cql2-json"),  # 8 KB that took the validator 53 s and 16 GB
        (nested_not(15), None),  # an object from a POST body
        (nested_not(5000), None),
    ],
)
def test_a_filter_nested_too_deep_is_refused_before_cql2_sees_it(text, lang):
    with pytest.raises(InputError, match=f"^filter nests deeper than {MAX_FILTER_DEPTH} levels"):
        parse_cql2(text, lang)


def test_a_filter_longer_than_the_limit_is_refused():
    with pytest.raises(InputError, match="^filter is longer than 20,000 characters"):
        parse_cql2("a = 1" + " OR a = 1" * 3000)
    with pytest.raises(InputError, match="^filter is longer than 20,000 characters"):
        parse_cql2(json.dumps({"op": "in", "args": [{"property": "a"}, list(range(5000))]}))


def test_filters_of_real_depth_pass_and_strings_do_not_count():
    assert parse_cql2(nested_not(14))  # 31 levels
    assert parse_cql2("NOT (" * 14 + "a = 1" + ")" * 14)
    assert parse_cql2(
        "a = 1 OR NOT (b = 2 AND (c = 3 OR S_INTERSECTS(geometry, POLYGON((-1 -1, 1 -1, 1 1, -1 -1)))))"
    )
    assert parse_cql2("a = '" + "(" * 5000 + "'")  # in a string, parentheses are text
    assert parse_cql2('"' + "(" * 100 + '" = 1')  # so in a quoted property name
    assert parse_cql2(json.dumps({"op": "=", "args": [{"property": "a"}, "[" * 5000]}))
