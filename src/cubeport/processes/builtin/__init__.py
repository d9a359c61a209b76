"""The processes Cubeport ships, found through the entry point `cubeport.processes: builtin`: every
`Process` object of this package's modules is exposed here.

subset.py (subset, resample), bandmath.py (band-math), aggregate.py (temporal-aggregate),
anomalies.py (anomalies), zonal.py (zonal-statistics), export.py (export-cube, export-collection),
ingest.py (ingest).
"""

from cubeport.processes.builtin.aggregate import temporal_aggregate
from cubeport.processes.builtin.anomalies import anomalies
from cubeport.processes.builtin.bandmath import band_math
from cubeport.processes.builtin.export import export_collection, export_cube
from cubeport.processes.builtin.ingest import ingest
from cubeport.processes.builtin.subset import resample, subset
from cubeport.processes.builtin.zonal import zonal_statistics

__all__ = [
    "anomalies",
    "band_math",
    "export_collection",
    "export_cube",
    "ingest",
    "resample",
    "subset",
    "temporal_aggregate",
    "zonal_statistics",
]
