"""Outputs other than cubes: `points` returns a GeoDataFrame (published as a feature collection) and
`report` returns a Path (kept as the job's file)."""

from pathlib import Path

import geopandas as gpd
from shapely.geometry import Point

from cubeport.processes import JobContext, process


@process("points", title="Points", keywords=["test"])
def points(count: int = 3) -> gpd.GeoDataFrame:
    """`count` points along the equator, with their number."""
    return gpd.GeoDataFrame(
        {"number": list(range(count))}, geometry=[Point(i, 0) for i in range(count)], crs="EPSG:4326"
    )


@process("report", title="Report", keywords=["test"])
def report(job: JobContext, text: str = "hello") -> Path:
    """A text file in the job's folder."""
    path = job.workdir / "report.txt"
    path.write_text(text)
    return path
