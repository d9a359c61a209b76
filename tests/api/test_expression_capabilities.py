"""xcube's /expressions/capabilities answers what the band-math parser accepts, and nothing else."""

import pytest
from fastapi.testclient import TestClient
from helpers import context_with

from cubeport.api.app import create_app
from cubeport.errors import InputError
from cubeport.processes.expressions import parse


def test_capabilities_list_what_the_parser_accepts(tmp_path, data):
    with TestClient(create_app(context_with(tmp_path, data, {}))) as client:
        namespace = client.get("/expressions/capabilities").json()["namespace"]
    assert "where" in namespace["arrayFunctions"]
    for operator in namespace["arrayOperators"]:
        text = "not a" if operator == "not" else f"a {operator} b"
        assert parse(text).names <= {"a", "b"}, operator
    with pytest.raises(InputError):
        parse("a @ b")  # not listed, so refused
