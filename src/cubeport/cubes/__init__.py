"""Zarr data cubes: conventions, storage with atomic versions, pyramids, catalogue and ingestion."""
