"""Cubeport for QGIS: add the cubes of a Cubeport server and load their variables as time-aware layers."""


def classFactory(iface):  # type: ignore[no-untyped-def]  # noqa: N802 (the name QGIS's plugin loader calls)
    from .plugin import CubeportPlugin

    return CubeportPlugin(iface)
