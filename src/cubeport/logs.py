"""Where log lines go and what they look like: plain text, or one JSON object per line.

The Destination Earth platform monitors the services it integrates from their logs and asks each one for JSON
entries with `@timestamp`, `service_name`, `event_timestamp`, `event_type` (snake_case) and `user_ID`
(`Settings.log_format = "json"`). Plain text keeps uvicorn's look (`INFO:     message`) for a terminal.

Modules keep logging with `logging.getLogger(__name__)`; an event may name itself and its user with
`extra={"event_type": "request_submitted", "user_ID": "mia"}`. Without them the event type comes from the
logger's name and the user from `user_context`, which the HTTP layer sets once it knows the caller, so
uvicorn's access lines and everything logged while answering a request carry the user.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, TextIO

from cubeport.config import Settings, load_settings

user_context: ContextVar[str | None] = ContextVar("cubeport_user", default=None)
"""The user on whose behalf the current request or task runs (None: anonymous or nobody)."""

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
ACCESS_LOGGER = "uvicorn.access"
# event types of loggers whose names say little; other loggers' names become snake_case (cubeport. dropped)
EVENT_TYPES = {
    ACCESS_LOGGER: "http_request",
    "uvicorn": "http_server",
    "uvicorn.error": "http_server",
    "root": "log",
}
# what every LogRecord has; anything else on a record came from `extra` and goes into the JSON line
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# set in the line's own fields; uvicorn's color_message repeats the message with terminal colour codes
_OWN_FIELDS = frozenset({"event_type", "event_timestamp", "user_ID", "color_message"})


def set_user(user_id: str | None) -> Token[str | None]:
    """Name the user of the current request or task in the log lines that follow (in this context only)."""
    return user_context.set(user_id)


@contextmanager
def logged_as(user_id: str | None) -> Iterator[None]:
    """Log the lines of a block as `user_id`'s (a job or command run for someone), then restore the user."""
    token = user_context.set(user_id)
    try:
        yield
    finally:
        user_context.reset(token)


def snake_case(text: str) -> str:
    """`ops.runner` -> `ops_runner`, `requestSubmitted` -> `request_submitted`: the form DestinE asks for."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "log"


def event_type_of(record: logging.LogRecord) -> str:
    """The record's own `event_type` (from `extra`), else one derived from its logger's name."""
    given = getattr(record, "event_type", None)
    if given:
        return snake_case(str(given))
    name = record.name
    return EVENT_TYPES.get(name) or snake_case(name.removeprefix("cubeport."))


def rfc3339(moment: datetime | float) -> str:
    """UTC with milliseconds and a Z, e.g. 2026-03-01T12:00:00.123Z (a naive datetime is taken as UTC)."""
    if isinstance(moment, datetime):
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    else:
        utc = datetime.fromtimestamp(moment, UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event_timestamp(record: logging.LogRecord) -> str:
    given = getattr(record, "event_timestamp", None)
    if isinstance(given, datetime | int | float) and not isinstance(given, bool):
        return rfc3339(given)
    if isinstance(given, str):
        try:
            return rfc3339(datetime.fromisoformat(given))
        except ValueError:
            return given  # the caller's own spelling beats losing it
    return rfc3339(record.created)


def _access(record: logging.LogRecord) -> dict[str, Any] | None:
    """The parts of a uvicorn access line: (client, method, path, HTTP version, status), as uvicorn logs it."""
    if record.name == ACCESS_LOGGER and isinstance(record.args, tuple) and len(record.args) == 5:
        client, method, path, version, status = record.args
        return {
            "client_addr": client,
            "method": method,
            "path": path,
            "http_version": version,
            "status_code": status,
        }
    return None


def _phrase(status: object) -> str:
    """200 -> "200 OK", as uvicorn prints it."""
    try:
        return f"{status} {HTTPStatus(status).phrase}" if isinstance(status, int) else str(status)
    except ValueError:  # a code HTTPStatus does not know
        return str(status)


class JsonFormatter(logging.Formatter):
    """One JSON object per line with DestinE's monitoring fields first, then level, logger, message, the
    exception if any, and whatever else the call passed in `extra` (str() of what JSON cannot hold)."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        user = record.__dict__["user_ID"] if "user_ID" in record.__dict__ else user_context.get()
        line: dict[str, Any] = {
            "@timestamp": rfc3339(record.created),
            "service_name": self.service_name,
            "event_timestamp": _event_timestamp(record),
            "event_type": event_type_of(record),
            "user_ID": user,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        line.update(_access(record) or {})
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in _OWN_FIELDS and key not in line:
                line[key] = value
        return json.dumps(line, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """uvicorn's default look without colours: `INFO:     127.0.0.1:5000 - "GET / HTTP/1.1" 200 OK`."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        prefix = f"{record.levelname}:".ljust(9)
        access = _access(record)
        if access is None:
            return f"{prefix} {record.message}"
        request = f"{access['method']} {access['path']} HTTP/{access['http_version']}"
        return f'{prefix} {access["client_addr"]} - "{request}" {_phrase(access["status_code"])}'


class _Handler(logging.StreamHandler[TextIO]):
    """Ours, so that configuring again replaces it instead of writing every line twice. Without a stream of
    its own it writes to the standard error of the moment (a test runner or `CliRunner` swaps it)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.own_stream = stream
        super().__init__(stream)

    @property
    def stream(self) -> TextIO:
        return self.own_stream if self.own_stream is not None else sys.stderr

    @stream.setter
    def stream(self, stream: TextIO | None) -> None:
        self.own_stream = stream


def configure_logging(settings: Settings | None = None, stream: TextIO | None = None) -> logging.Handler:
    """Send every log line, Cubeport's, its libraries' and uvicorn's, through one handler to `stream`
    (standard error) in `settings.log_format`. Cubeport's and uvicorn's loggers log from `settings.log_level`;
    other libraries from warning on, as before anything was configured. `settings` default to the
    environment's (and the YAML file's). Returns the handler (a test removes it again)."""
    if settings is None:
        settings = load_settings()
    handler = _Handler(stream)
    handler.setFormatter(
        JsonFormatter(settings.service_name) if settings.log_format == "json" else PlainFormatter()
    )
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
    logging.captureWarnings(True)  # Python's warnings as log lines too (JSON ones in json format)
    logging.getLogger("cubeport").setLevel(level)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [handler]  # uvicorn's own, if its default config ran, would write a second line
        logger.propagate = False
        logger.setLevel(level)
    return handler
