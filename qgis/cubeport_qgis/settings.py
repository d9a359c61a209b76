"""The plugin's settings in the QGIS profile (QgsSettings): server, sign-in, download limit and folder.

The API key or token sits in the profile like other QGIS connection settings; Debian's QGIS 3.22 has no
OAuth2 auth method, and the auth database would ask for a master password on every start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from qgis.core import QgsSettings

from .client import ServerSettings
from .subset import DEFAULT_MAX_MB

KEY = "cubeport/"


@dataclass(frozen=True)
class PluginSettings:
    server: ServerSettings = field(default_factory=ServerSettings)
    max_mb: float = DEFAULT_MAX_MB
    folder: str = os.path.join(os.path.expanduser("~"), "cubeport-downloads")


def load() -> PluginSettings:
    stored, default = QgsSettings(), PluginSettings()
    auth = str(stored.value(KEY + "auth", default.server.auth))
    server = ServerSettings(
        url=str(stored.value(KEY + "url", default.server.url)),
        auth=auth if auth in ("none", "api-key", "bearer") else "none",
        secret=str(stored.value(KEY + "secret", "")),
    )
    return PluginSettings(
        server,
        float(stored.value(KEY + "max_mb", default.max_mb)),
        str(stored.value(KEY + "folder", default.folder)),
    )


def save(settings: PluginSettings) -> None:
    stored = QgsSettings()
    for name, value in (
        ("url", settings.server.url),
        ("auth", settings.server.auth),
        ("secret", settings.server.secret),
        ("max_mb", settings.max_mb),
        ("folder", settings.folder),
    ):
        stored.setValue(KEY + name, value)
