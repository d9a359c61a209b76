# Cubeport: `make demo` takes a fresh machine to a running platform; `make test` to a green test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_ROOT ?= ./cubeport-data
APT_TEST_PACKAGES := postgresql postgresql-15-postgis-3 chromium python3-qgis qgis-providers libqca-qt5-2-plugins ecflow-server ecflow-client python3-ecflow
OIDC_PROVIDER := tests/oidc/node_modules/.installed
XCUBE_VERSION := 1.14.1
XCUBE_VIEWER := tests/e2e/xcube-viewer/index.html

VIEWER := src/cubeport/web/static/viewer.js
WEB_SOURCES := $(wildcard web/src/*) web/index.html web/build.mjs web/package-lock.json

.PHONY: demo test lint install install-test system-deps node web serve bench clean qgis-plugin

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

install: $(PY)
	$(PIP) install -q -e .

install-test: $(PY)
	$(PIP) install -q -e ".[test]"

# Node.js and npm build the viewer and run the test OIDC provider; installed from Debian when missing.
node:
	@command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }

# Debian packages the tests start themselves (PostgreSQL + PostGIS, Chromium, QGIS for the plugin's tests);
# installed only when missing.
system-deps: node
	@missing=""; for p in $(APT_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The browser viewer (web/, TypeScript), bundled into the package with its npm dependencies (pinned by
# web/package-lock.json): nothing comes from a CDN at run time.
web: $(VIEWER)

$(VIEWER): $(WEB_SOURCES) | node
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	npm run --prefix web --silent build

# The OIDC provider the tests start (npm oauth2-mock-server, pinned by tests/oidc/package-lock.json).
$(OIDC_PROVIDER): tests/oidc/package.json tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
	touch $@

SAMPLE_DATA ?= ../shared/data
LAND := $(SAMPLE_DATA)/land/naturalearth_lowres/naturalearth_lowres.shp \
        $(SAMPLE_DATA)/land/gshhg_full_baltic_9-31E_53-66.5N.gpkg

demo: install $(VIEWER)
	$(VENV)/bin/cubeport demo --data-root $(DATA_ROOT)
	@if [ -f "$(word 2,$(LAND))" ]; then $(VENV)/bin/cubeport basemap $(LAND) --data-root $(DATA_ROOT); \
	else echo "no land data under $(SAMPLE_DATA): the viewer's offline base map stays empty"; fi
	$(VENV)/bin/cubeport serve --data-root $(DATA_ROOT) --host 127.0.0.1 --port 8080

serve: install $(VIEWER)
	$(VENV)/bin/cubeport serve --data-root $(DATA_ROOT)

# The real xcube viewer for the end-to-end test: its built files, taken from the xcube-core wheel.
$(XCUBE_VIEWER): tests/e2e/get_xcube_viewer.py | $(PY)
	rm -rf build/xcube-wheel
	$(PIP) download --no-deps -q -d build/xcube-wheel "xcube-core==$(XCUBE_VERSION)"
	$(PY) tests/e2e/get_xcube_viewer.py build/xcube-wheel/xcube_core-$(XCUBE_VERSION)-py3-none-any.whl tests/e2e/xcube-viewer

# The house rules, each failing the build when broken: import contracts (.importlinter, the layers of
# docs/architecture.md), mypy (pyproject.toml: strict for the settled core), ruff lint and format, and
# the viewer's TypeScript (esbuild strips types without checking them).
lint: install-test | node
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy
	$(VENV)/bin/ruff check src tests benchmarks qgis
	$(VENV)/bin/ruff format --check src tests benchmarks qgis
	@test -x web/node_modules/.bin/tsc || npm ci --prefix web --no-audit --no-fund --loglevel=error
	cd web && node_modules/.bin/tsc --noEmit

test: system-deps install-test lint $(VIEWER) $(OIDC_PROVIDER) $(XCUBE_VIEWER)
	$(PY) -m pytest

# The QGIS plugin as an installable zip (Plugins > Manage and Install Plugins > Install from ZIP), in dist/.
qgis-plugin:
	$(PYTHON) qgis/package.py

BENCH_DATA ?= ../bench-data

bench: install-test
	$(PY) benchmarks/ingest_throughput.py
	$(PY) benchmarks/chunk_reads.py
	$(PY) benchmarks/auth_overhead.py
	$(PY) benchmarks/seaice.py
	$(PY) benchmarks/nrt.py
	benchmarks/anchors.sh
	test -f $(BENCH_DATA)/cubes/baltic-large/cube.json || $(VENV)/bin/cubeport demo --large --data-root $(BENCH_DATA)
	$(PY) benchmarks/cube_server.py --data-root $(BENCH_DATA)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache src/cubeport/web/static web/node_modules
