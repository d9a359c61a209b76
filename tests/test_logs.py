"""Log lines: JSON objects with the Destination Earth platform's monitoring fields (`@timestamp`, `service_name`,
`event_timestamp`, `event_type` in snake_case, `user_ID`), or plain text exactly as uvicorn prints it; the user
of a request is named in the lines logged while answering it, through the app and through `cubeport serve`."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from services import CubeportProcess, free_port
from uvicorn.logging import AccessFormatter, DefaultFormatter

from cubeport.api.app import create_app
from cubeport.config import Settings, load_settings
from cubeport.context import Context
from cubeport.logs import UVICORN_LOGGERS, configure_logging, logged_as, user_context
from cubeport.stac.federation import Source

RFC3339_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIELDS = {
    "@timestamp",
    "service_name",
    "event_timestamp",
    "event_type",
    "user_ID",
    "level",
    "logger",
    "message",
}
SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")
Configure = Callable[..., StringIO]


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Configure]:
    """`configure(format, **settings)` routes every log line to a StringIO and returns it; afterwards the
    logging set-up of the test process is as it was (configure_logging changes process-wide state)."""
    loggers = [logging.getLogger(), logging.getLogger("cubeport")] + [
        logging.getLogger(n) for n in UVICORN_LOGGERS
    ]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]

    def configure(log_format: str, **settings: Any) -> StringIO:
        stream = StringIO()
        configure_logging(
            Settings(data_root=str(tmp_path / "root"), log_format=log_format, **settings), stream
        )
        return stream

    yield configure
    for lg, handlers, level, propagate in saved:
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate
    logging.captureWarnings(False)


def lines(stream: StringIO) -> list[dict[str, Any]]:
    """Every line written, each parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def access_record(status: int = 200) -> logging.LogRecord:
    """An access record as uvicorn makes it (h11_impl/httptools_impl: the format and its five arguments)."""
    return logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:50000", "GET", "/cubes?limit=2", "1.1", status),
        None,
    )


def test_a_json_line_has_every_field_in_the_platform_s_form(logged: Configure) -> None:
    stream = logged("json", service_name="cubeport-test")
    logging.getLogger("cubeport.ops.runner").info("delivery %s to %s: %s", "p1", "portal", "sent")
    logging.getLogger("uvicorn.access").handle(access_record())
    runner, access = lines(stream)
    for line in (runner, access):
        assert set(line) >= FIELDS, line
        assert line["service_name"] == "cubeport-test"
        assert RFC3339_MS_UTC.match(line["@timestamp"]) and RFC3339_MS_UTC.match(line["event_timestamp"])
        assert SNAKE.match(line["event_type"])
        assert line["user_ID"] is None  # nobody: no request, no extra
    now = datetime.now(UTC)
    assert abs(datetime.fromisoformat(runner["@timestamp"]) - now) < timedelta(seconds=5)
    assert runner["event_timestamp"] == runner["@timestamp"]  # the event is the record itself
    assert runner["event_type"] == "ops_runner" and runner["message"] == "delivery p1 to portal: sent"
    assert (
        runner["level"] == "info" and runner["logger"] == "cubeport.ops.runner" and "exception" not in runner
    )
    assert access["event_type"] == "http_request"
    assert access["message"] == '127.0.0.1:50000 - "GET /cubes?limit=2 HTTP/1.1" 200'
    assert (access["method"], access["path"], access["status_code"]) == ("GET", "/cubes?limit=2", 200)


def test_an_event_names_its_type_time_and_user_and_odd_extras_never_break_a_line(logged: Configure) -> None:
    stream = logged("json")
    log = logging.getLogger("cubeport.seaice")
    happened = datetime(2026, 3, 1, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    log.warning(
        "scene late",
        extra={
            "event_type": "requestSubmitted",
            "event_timestamp": happened,
            "user_ID": "mia",
            "scene": Path("/data/a.h5"),
            "bands": {"hh", "hv"},
            "opaque": object(),
        },
    )
    log.info(
        "given as text",
        extra={"event_timestamp": "2026-03-01T11:00:00+00:00", "event_type": "Scene Published"},
    )
    with logged_as("olli"):
        log.info("on olli's behalf")
        log.info("anonymous by choice", extra={"user_ID": None})
    log.info("after the block")
    late, text, olli, anonymous, after = lines(stream)
    assert late["event_type"] == "request_submitted" and late["user_ID"] == "mia"
    assert late["event_timestamp"] == "2026-03-01T11:00:00.123Z"  # the event's time, in UTC
    assert late["@timestamp"] != late["event_timestamp"]  # the line's own time
    assert late["scene"] == "/data/a.h5" and late["bands"] in ("{'hh', 'hv'}", "{'hv', 'hh'}")
    assert late["opaque"].startswith("<object object at")
    assert text["event_timestamp"] == "2026-03-01T11:00:00.000Z" and text["event_type"] == "scene_published"
    assert olli["user_ID"] == "olli" and anonymous["user_ID"] is None and after["user_ID"] is None
    assert user_context.get() is None


def test_an_exception_is_in_the_line(logged: Configure) -> None:
    stream = logged("json")
    try:
        _ = 1 / 0
    except ZeroDivisionError:
        logging.getLogger("cubeport.api").exception("GET /cubes failed")
    (line,) = lines(stream)
    assert line["level"] == "error" and line["message"] == "GET /cubes failed" and line["event_type"] == "api"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].rstrip().endswith("ZeroDivisionError: division by zero")


def test_plain_text_looks_as_uvicorn_prints_it(logged: Configure) -> None:
    stream = logged("plain")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    logging.getLogger("uvicorn.access").handle(access_record(404))
    logging.getLogger("cubeport.render").warning("warm-up skipped: %s", "no cubes")
    logging.getLogger("cubeport.render").debug("not at log level info")
    startup, access, warning = stream.getvalue().splitlines()
    # uvicorn's own formatters, as its default LOGGING_CONFIG sets them up, without colours
    record = logging.getLogger("uvicorn.error").makeRecord(
        "uvicorn.error", logging.INFO, __file__, 1, "Application startup complete.", (), None
    )
    assert startup == DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False).format(record)
    uvicorn_access = AccessFormatter(
        '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False
    )
    assert access == uvicorn_access.format(access_record(404))
    assert access == 'INFO:     127.0.0.1:50000 - "GET /cubes?limit=2 HTTP/1.1" 404 Not Found'
    assert warning == "WARNING:  warm-up skipped: no cubes"


def test_configuring_again_replaces_the_handler_and_libraries_stay_at_warning(logged: Configure) -> None:
    logged("plain")
    stream = logged("json")
    logging.getLogger("cubeport.api").info("once")
    logging.getLogger("uvicorn.access").handle(access_record())
    logging.getLogger("some.library").info("library chatter")
    logging.getLogger("some.library").warning("library warning")
    assert [line["message"] for line in lines(stream)] == [
        "once",
        '127.0.0.1:50000 - "GET /cubes?limit=2 HTTP/1.1" 200',
        "library warning",
    ]


def test_lines_logged_while_answering_a_request_name_its_user(logged: Configure, tmp_path: Path) -> None:
    """A federated search over a source whose server is gone logs a warning while answering mia's request."""
    context = Context(load_settings(data_root=str(tmp_path / "root")))
    context.stac_sources.add(Source("gone", f"http://127.0.0.1:{free_port()}/stac"))
    context.auth.directory.create_user("mia")
    mia = {"X-API-Key": context.auth.create_key("mia")[1]}
    stream = logged("json")
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        for headers in (mia, {}):
            answer = client.post("/stac/search", json={"sources": ["gone"], "limit": 1}, headers=headers)
            assert answer.status_code == 200, answer.text
    context.close()
    left_out = [line for line in lines(stream) if line["message"].startswith("STAC source gone left out")]
    assert [line["user_ID"] for line in left_out] == ["mia", None]
    assert {line["event_type"] for line in left_out} == {"stac"}
    assert user_context.get() is None  # the request's user stays in the request


def test_cubeport_serve_writes_json_access_lines_with_the_user(tmp_path: Path) -> None:
    root = tmp_path / "root"
    context = Context(load_settings(data_root=str(root)))
    context.auth.directory.create_user("mia")
    mia = {"X-API-Key": context.auth.create_key("mia")[1]}
    context.close()
    server = CubeportProcess(
        root, env={"CUBEPORT_LOG_FORMAT": "json", "CUBEPORT_SERVICE_NAME": "cubeport-nrt"}
    )
    try:
        assert httpx.get(f"{server.url}/cubes", headers=mia, timeout=10).status_code == 200
        deadline, access = time.monotonic() + 10, []
        while time.monotonic() < deadline:
            written = server.log.read_text().splitlines()
            access = [json.loads(x) for x in written if '"http_request"' in x and "/cubes" in x]
            if access:
                break
            time.sleep(0.1)
    finally:
        server.stop()
    logged = [json.loads(line) for line in written]  # every line of the server's output is JSON
    (line,) = access
    assert set(line) >= FIELDS and line["service_name"] == "cubeport-nrt" and line["user_ID"] == "mia"
    assert (line["method"], line["path"], line["status_code"]) == ("GET", "/cubes", 200)
    health = [x for x in logged if x["event_type"] == "http_request" and x["path"] == "/health"]
    assert health and {x["user_ID"] for x in health} == {None}  # the start-up checks came without a key
    assert not [x for x in logged if "color_message" in x]  # uvicorn's ANSI-coloured copy is left out
    assert any(x["event_type"] == "service_started" for x in logged)
