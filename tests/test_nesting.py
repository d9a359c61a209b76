"""How deep JSON nests (cubeport.nesting), measured without recursion: brackets in strings do not count, and
a value far deeper than Python's recursion limit is measured (the walk stops past its limit)."""

import json

import pytest

from cubeport.nesting import text_depth, value_depth


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


def test_value_depth_walks_without_recursion_and_stops_past_its_limit():
    value: list = []
    for _ in range(100_000):  # json.dumps or a recursive walk would raise RecursionError
        value = [value]
    assert value_depth(value, 64) == 65
    assert value_depth(value, 200_000) == 100_001
    geojson = json.loads('{"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]]]}')
    assert value_depth(geojson, 64) == 5
    assert value_depth("scalar", 64) == 0 and value_depth({}, 64) == 1
