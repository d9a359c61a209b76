"""Build the installable plugin zip (Plugins > Manage and Install Plugins > Install from ZIP): the
`cubeport_qgis/` folder with its metadata, without caches. Usage: python3 package.py [OUTPUT.zip]"""

from __future__ import annotations

import configparser
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "cubeport_qgis"


def version() -> str:
    metadata = configparser.ConfigParser()
    metadata.read(PLUGIN / "metadata.txt")
    return metadata["general"]["version"]


def build(output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    part = output.with_suffix(".zip.part")
    with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PLUGIN.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, path.relative_to(HERE).as_posix())
    part.replace(output)
    return output


if __name__ == "__main__":
    target = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent / "dist" / f"cubeport_qgis-{version()}.zip"
    )
    print(build(target))
