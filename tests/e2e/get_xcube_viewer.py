"""Extract the built xcube viewer from an xcube-core wheel: `python get_xcube_viewer.py WHEEL DEST`.

Only the viewer's static files are taken (xcube/webapi/viewer/dist/); xcube itself is not installed."""

import shutil
import sys
import zipfile
from pathlib import Path

PREFIX = "xcube/webapi/viewer/dist/"

wheel, destination = Path(sys.argv[1]), Path(sys.argv[2])
partial = destination.with_name(destination.name + ".partial")
shutil.rmtree(partial, ignore_errors=True)
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(PREFIX) and not name.endswith("/"):
            target = partial / name[len(PREFIX) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
if not (partial / "index.html").exists():
    sys.exit(f"{wheel} holds no {PREFIX}index.html")
shutil.rmtree(destination, ignore_errors=True)
partial.rename(destination)
print(f"xcube viewer in {destination}")
