"""How deep JSON nests (cubeport.nesting), measured without recursion: brackets in strings do not count, and
a value far deeper than Python's recursion limit is measured (the walk stops past its limit)."""

import json

import pytest

from cubeport.nesting import DepthScan, text_depth, value_depth, value_extent


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ('"[[["', 0),
        ("[]", 1),
        ('{"a": [1, {"b": [[2]]}]}', 5),
        ('{"a": "]]]]", "b": [[[1]]]}', 4),  # closing brackets in a string do not lower the count
        ('{"a": "\\"[[[", "b": []}', 2),  # nor does an escaped quote end the string
        (b'{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}', 4),
        ("[" * 100_000 + "]" * 100_000, 100_000),
    ],
)
def test_text_depth_counts_brackets_outside_strings(text, depth):
    assert text_depth(text) == depth


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": [1, {"b": [[2]]}]}',
        b'{"a": "]]]]", "b": [[[1]]]}',
        b'{"a": "\\"[[[", "b": []}',  # an escaped quote
        b'{"a": "\\\\", "b": [[["x\\\\\\"]"]]]}',  # escaped backslashes before a quote
        b'[["\\u005b[", {"k": "\\n{"}], [[]]]',
        b'{"a": "[[[' + b"\\" * 7 + b'"]]]", "b": [[[[]]]]}',
    ],
)
def test_a_scan_in_pieces_measures_what_a_scan_of_the_whole_text_does(text):
    """Every split point, so a piece ends in a string, after a backslash, between the two bytes of an escape."""
    whole = text_depth(text)
    assert whole == value_depth(json.loads(text), 1000)
    for cut in range(len(text) + 1):
        scan = DepthScan()
        scan.feed(text[:cut])
        assert scan.feed(text[cut:]) == whole, (text, cut)
    scan = DepthScan()
    for i in range(len(text)):  # a byte at a time
        scan.feed(text[i : i + 1])
    assert scan.deepest == whole


def test_value_depth_walks_without_recursion_and_stops_past_its_limit():
    value: list = []
    for _ in range(100_000):  # json.dumps or a recursive walk would raise RecursionError
        value = [value]
    assert value_depth(value, 64) == 65
    assert value_depth(value, 200_000) == 100_001
    geojson = json.loads('{"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}')
    assert value_depth(geojson, 64) == 5
    assert value_depth("scalar", 64) == 0 and value_depth({}, 64) == 1


def test_value_extent_measures_compact_json_and_stops_past_either_limit():
    for value in ({"op": "=", "args": [{"property": "a"}, -12, 1.5, True, None, "x y"]}, [], {}, 10**40, "é"):
        compact = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        assert value_extent(value, 64)[1] == len(compact), value
    wide = {"op": "or", "args": [{"op": "=", "args": [{"property": "a"}, i]} for i in range(250_000)]}
    depth, chars = value_extent(wide, 32, 20_000)
    assert chars > 20_000 and depth <= 4
    wide["args"] = wide["args"][:1000]
    assert value_extent(wide, 32)[1] == len(json.dumps(wide, separators=(",", ":")))
    assert value_extent({str(i): i for i in range(100_000)}, 32, 1000)[1] > 1000
