"""Cubeport: an Earth-observation data platform (cube store, cube server, feature store, processing)."""

__version__ = "0.1.0"
