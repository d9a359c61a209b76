"""The Cubeport server as the plugin sees it: settings, the datasets API and the errors users read.

Qt-free and standard library only (QGIS's Python has neither httpx nor requests for sure), so it is
unit-tested in the project's own environment. Every failure becomes a `PluginError` whose message says
what happened and what to do, never a traceback.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

AUTH_KINDS = ("none", "api-key", "bearer")


class PluginError(Exception):
    """An error to show to the user: `title` for the message bar, the message for the text."""

    title = "Cubeport"


class ServerDownError(PluginError):
    title = "Cubeport server does not answer"


class NotVisibleError(PluginError):
    """404 for a cube: missing, or restricted and hidden from this caller (the server answers both alike)."""

    title = "Cube not available"


class AccessError(PluginError):
    """401 (credentials refused) or 403 (known caller, not allowed)."""

    title = "Cubeport sign-in"


class TooLargeError(PluginError):
    title = "Download too large"


class RequestError(PluginError):
    """Another 4xx or 5xx answer, or an answer that is not what the datasets API returns."""


class Cancelled(PluginError):
    title = "Cancelled"


@dataclass(frozen=True)
class ServerSettings:
    """Where the server is and how the plugin signs in: an API key (`X-API-Key`) or a bearer token
    (`Authorization: Bearer`), sent by the plugin itself on every request."""

    url: str = "http://localhost:8080"
    auth: str = "none"
    secret: str = ""
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.auth not in AUTH_KINDS:
            raise ValueError(f"auth is one of {', '.join(AUTH_KINDS)}, not {self.auth!r}")

    @property
    def base(self) -> str:
        return self.url.strip().rstrip("/")

    def headers(self) -> dict[str, str]:
        if not self.secret or self.auth == "none":
            return {}
        if self.auth == "api-key":
            return {"X-API-Key": self.secret.strip()}
        return {"Authorization": f"Bearer {self.secret.strip()}"}

    def covers(self, url: str) -> bool:
        """Whether `url` is on this server (only those requests get the credentials)."""
        base = self.base
        return bool(base) and (url == base or url.startswith(base + "/") or url.startswith(base + "?"))


@dataclass(frozen=True)
class Style:
    colormap: str | None = None
    vmin: float | None = None
    vmax: float | None = None
    norm: str = "lin"


@dataclass(frozen=True)
class Variable:
    name: str
    title: str
    units: str
    dtype: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    style: Style = field(default_factory=Style)

    @property
    def label(self) -> str:
        return f"{self.title} [{self.units}]" if self.units else self.title


@dataclass(frozen=True)
class Cube:
    """A dataset as `/datasets/{id}` describes it: enough to plan a download without reading data."""

    id: str
    title: str
    bbox: tuple[float, float, float, float]
    crs: str
    variables: tuple[Variable, ...]
    coords: dict[str, tuple[Any, ...]] = field(default_factory=dict, compare=False)
    resolutions: tuple[float, ...] = ()  # pixel size of each pyramid level, level 0 first

    @property
    def times(self) -> tuple[str, ...]:
        return tuple(self.coords.get("time", ()))

    def variable(self, name: str) -> Variable:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise RequestError(
            f"cube {self.id!r} has no variable {name!r}; variables: "
            f"{', '.join(v.name for v in self.variables)}"
        )

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Cube:
        try:
            variables = tuple(
                Variable(
                    name=v["name"],
                    title=v.get("title") or v["name"],
                    units=v.get("units") or "",
                    dtype=v.get("dtype", "float32"),
                    dims=tuple(v.get("dims", ())),
                    shape=tuple(int(n) for n in v.get("shape", ())),
                    style=Style(
                        v.get("colorBarName"),
                        _number(v.get("colorBarMin")),
                        _number(v.get("colorBarMax")),
                        v.get("colorBarNorm") or "lin",
                    ),
                )
                for v in body.get("variables", [])
            )
            coords = {d["name"]: tuple(d.get("coordinates", ())) for d in body.get("dimensions", [])}
            west, south, east, north = (float(v) for v in body["bbox"])
            return cls(
                id=str(body["id"]),
                title=str(body.get("title") or body["id"]),
                bbox=(west, south, east, north),
                crs=str(body.get("spatialRef") or "EPSG:4326"),
                variables=variables,
                coords=coords,
                resolutions=tuple(float(r) for r in body.get("resolutions") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RequestError(f"the server's description of a dataset is not understood ({exc!r})") from None


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


class CubeportClient:
    """The few routes the plugin reads: `/datasets?details=1`, `/datasets/{id}`, `/colorbars`; and the URLs
    fetches chunks from (`/zarr/{id}/{level}.zarr`) and the one it hands to QGIS's WMTS provider."""

    def __init__(self, settings: ServerSettings) -> None:
        if urllib.parse.urlsplit(settings.base).scheme not in ("http", "https"):
            raise PluginError(f"the server URL must start with http:// or https://, not {settings.url!r}")
        self.settings = settings
        self._colorbars: dict[str, bytes] | None = None

    # --- URLs -------------------------------------------------------------------------------------------
    def url(self, path: str, **query: Any) -> str:
        quoted = "/".join(urllib.parse.quote(part, safe="") for part in path.strip("/").split("/"))
        text = f"{self.settings.base}/{quoted}"
        return f"{text}?{urllib.parse.urlencode(query)}" if query else text

    def store_object(self, cube_id: str, key: str, level: int = 0) -> bytes | None:
        """An object of the Zarr store of a level of the cube (`/zarr/{id}/{level}.zarr/{key}`, with the
        access checks of every route); None for a chunk that is not stored (Zarr reads it as the fill value)."""
        try:
            return self.get(f"zarr/{cube_id}/{level}.zarr/{key}", cube=cube_id)
        except NotVisibleError:
            if "/" in key and not key.rsplit("/", 1)[-1].startswith("."):
                return None  # a chunk: missing means empty
            raise

    def wmts_capabilities_url(self) -> str:
        return self.url("wmts/1.0.0/WMTSCapabilities.xml")

    # --- routes -----------------------------------------------------------------------------------------
    def cubes(self) -> list[Cube]:
        """Every cube the caller may see, with variables and dimensions."""
        body = self.get_json("datasets", details=1)
        return [Cube.from_json(d) for d in body.get("datasets", [])]

    def cube(self, cube_id: str) -> Cube:
        return Cube.from_json(self.get_json(f"datasets/{cube_id}", cube=cube_id))

    def colorbar_png(self, name: str | None) -> tuple[bytes, bool] | None:
        """The server's preview of a colour map (a PNG ramp, as xcube's `/colorbars` lists it) and whether
        it is to be reversed (`_r`); None for a name the server does not list."""
        if not name:
            return None
        if self._colorbars is None:
            import base64

            self._colorbars = {}
            for group in self.get_json("colorbars"):
                for entry in group[2]:
                    self._colorbars[str(entry[0])] = base64.b64decode(entry[1])
        base = name.removesuffix("_alpha")
        reverse = base.endswith("_r")
        base = base.removesuffix("_r")
        for candidate in (base, base.removeprefix("cmo.")):
            if candidate in self._colorbars:
                return self._colorbars[candidate], reverse
        return None

    def get_json(self, path: str, cube: str | None = None, **query: Any) -> Any:
        data = self.get(path, cube=cube, **query)
        try:
            return json.loads(data)
        except ValueError:
            raise RequestError(
                f"{self.settings.base} answered {path!r} with something other than JSON: is it "
                "a Cubeport server?"
            ) from None

    def get(self, path: str, cube: str | None = None, **query: Any) -> bytes:
        """GET a route; `cube` names the cube the route is about (for the 404 message)."""
        url = self.url(path, **query)
        request = urllib.request.Request(
            url, headers={"Accept": "application/json", **self.settings.headers()}
        )
        try:
            # http/https only, checked in __init__
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:  # noqa: S310
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read()
            raise error_for(
                exc.code, body, cube=cube, server=self.settings.base, signed_in=bool(self.settings.headers())
            ) from None
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            raise down_error(self.settings.base, exc) from None


def down_error(base: str, exc: BaseException) -> ServerDownError:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        why = "it did not answer in time"
    elif isinstance(reason, ConnectionRefusedError):
        why = "the connection was refused"
    elif isinstance(reason, socket.gaierror):
        why = "its host name is unknown"
    else:
        why = str(reason) or type(reason).__name__
    return ServerDownError(
        f"The Cubeport server at {base} cannot be reached: {why}. Check that it is running "
        "and the URL in Plugins > Cubeport > Settings."
    )


def problem_detail(body: bytes) -> tuple[str, dict[str, Any]]:
    """The user-safe text of an RFC 9457 problem body (detail, or xcube's error.message) and the body."""
    try:
        problem = json.loads(body)
    except ValueError:
        return "", {}
    if not isinstance(problem, dict):
        return "", {}
    error = problem.get("error")
    detail = problem.get("detail") or (error.get("message") if isinstance(error, dict) else "") or ""
    return str(detail), problem


def error_for(
    status: int, body: bytes, cube: str | None = None, server: str = "", signed_in: bool = False
) -> PluginError:
    """The message for an error answer of the server."""
    detail, problem = problem_detail(body)
    said = f" The server says: {detail}" if detail else ""
    if status == 422 and problem.get("limit"):
        limit, maximum = problem.get("limit"), problem.get("maximum")
        return TooLargeError(
            f"The request is too large for the server (its limit on {limit} is {maximum}). "
            f"Choose a smaller area or fewer time steps.{said}"
        )
    if status == 404 and cube:
        hint = (
            " The API key or token in the settings does not give access to it."
            if signed_in
            else " If it is restricted, set an API key or token in Plugins > Cubeport > Settings."
        )
        return NotVisibleError(
            f"Cube {cube!r} is not on {server or 'the server'}, or you may not see it.{hint}"
        )
    if status == 401:
        return AccessError(
            f"The server refused the credentials: check the API key or token in Plugins > "
            f"Cubeport > Settings.{said}"
        )
    if status == 403:
        return AccessError(f"You are signed in but may not do this.{said}")
    if status == 429:
        return RequestError(f"Too many failed attempts: wait a minute and try again.{said}")
    if status >= 500:
        return RequestError(f"The server failed ({status}); try again later or ask its administrator.{said}")
    return RequestError(f"The server refused the request ({status}).{said}")
