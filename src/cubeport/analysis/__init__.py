"""Analysis on cubes without HTTP: geometries from GeoJSON, regions of a grid, time series, statistics."""
