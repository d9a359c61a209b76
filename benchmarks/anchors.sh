#!/usr/bin/env bash
# Install the anchors the cube-server benchmarks compare against, each in its own venv under benchmarks/:
#   .venv-xcube    xcube server (xcube-core), on GDAL bindings built against Debian's libgdal 3.6.2
#   .venv-titiler  TiTiler with its xarray extension (titiler.xarray) and uvicorn
# Idempotent: an existing venv that imports its package is kept.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )

if ! dpkg -s libgdal-dev >/dev/null 2>&1; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libgdal-dev >/dev/null
fi

if ! .venv-xcube/bin/python -c "import xcube.webapi" 2>/dev/null; then
  rm -rf .venv-xcube && $PYTHON -m venv .venv-xcube
  .venv-xcube/bin/pip install -q --upgrade pip
  .venv-xcube/bin/pip install -q numpy setuptools wheel
  .venv-xcube/bin/pip install -q --no-build-isolation "gdal==$(gdal-config --version)"
  .venv-xcube/bin/pip install -q xcube-core "gdal==$(gdal-config --version)"
fi

if ! .venv-titiler/bin/python -c "import titiler.xarray" 2>/dev/null; then
  rm -rf .venv-titiler && $PYTHON -m venv .venv-titiler
  .venv-titiler/bin/pip install -q --upgrade pip
  .venv-titiler/bin/pip install -q "titiler.xarray" uvicorn zarr
fi
echo "anchors ready: $(.venv-xcube/bin/python -c 'import importlib.metadata as m; print("xcube-core", m.version("xcube-core"))'), " \
     "$(.venv-titiler/bin/python -c 'import importlib.metadata as m; print("titiler.xarray", m.version("titiler.xarray"))')"
