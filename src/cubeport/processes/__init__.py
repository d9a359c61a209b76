"""Processing: processes (typed functions), the registry that finds them, jobs that run them.

No HTTP here: `api/routers/processes.py` and `cli/processes.py` call into this package.
"""

from cubeport.processes.definition import (
    Collection,
    Cube,
    Dismissed,
    Files,
    JobContext,
    LocalJob,
    Process,
    process,
)

__all__ = [
    "Collection",
    "Cube",
    "CubeFromFiles",
    "Dismissed",
    "Files",
    "JobContext",
    "LocalJob",
    "Process",
    "process",
]
