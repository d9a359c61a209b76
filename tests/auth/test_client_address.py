"""The client address behind trusted proxies: only the entries the proxies wrote are believed."""

from cubeport.auth.client_address import client_address


def test_the_proxies_entries_name_the_client_and_the_rest_is_ignored():
    assert client_address("10.0.0.5", []) == "10.0.0.5"  # no trusted header
    assert client_address("10.0.0.5", ["198.51.100.7, 203.0.113.1"]) == "203.0.113.1"
    assert client_address("10.0.0.5", ["198.51.100.7", "203.0.113.1"]) == "203.0.113.1"  # repeated header
    assert client_address("10.0.0.5", ["198.51.100.7, 203.0.113.1, 10.0.0.4"], hops=2) == "203.0.113.1"
    assert client_address("10.0.0.5", ["203.0.113.1"], hops=2) == "10.0.0.5"  # fewer hops than trusted
    assert client_address("10.0.0.5", [" 2001:DB8::1 "]) == "2001:db8::1"
    for garbage in ("", "unknown", "203.0.113.1:443", "x" * 500):
        assert client_address("10.0.0.5", [garbage]) == "10.0.0.5", garbage
