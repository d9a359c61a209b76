"""A processed scene into the platform: its day in the daily Baltic ice cube, its files as a STAC item's
assets, its ice chart and drift vectors in the feature store.

The cube has one step a day (00:00 UTC), a mosaic of the day's scenes: where two overlap, the later
acquisition wins, whatever order they arrive in (each pixel records the hour it was seen). The step goes
through the normal ingest path (`Ingestion`: appended for a new day, updated for a day the cube has), so the
viewer, WMTS and QGIS show it as soon as it is published; each scene's files are kept beside its own STAC
item, so a client finds the full-resolution COG, the class raster and the chart from the cube's day.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.warp import Resampling, reproject

from cubeport.config import SeaIceSettings
from cubeport.cubes import cf
from cubeport.errors import NotFoundError
from cubeport.features.importer import property_name
from cubeport.features.schema import CollectionSpec, PropertyType
from cubeport.features.store import FeatureStore, Selection
from cubeport.ingestion import Ingestion
from cubeport.seaice.chain import Scene
from cubeport.seaice.classify import CLASS_NAMES, CLASS_NODATA
from cubeport.seaice.grid import Grid
from cubeport.seaice.pairs import Drift, read_on
from cubeport.stac.documents import rfc3339

BALTIC = (9.0, 53.0, 31.0, 66.5)  # west, south, east, north: the cube's extent (degrees)
DATABASE = "seaice"
CHARTS = "ice_charts"
DRIFT = "ice_drift"
MEDIA = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".gpkg": "application/geopackage+sqlite3",
    ".zip": "application/zip",
    ".json": "application/json",
    ".nc": "application/netcdf",
    ".parquet": "application/vnd.apache.parquet",
}


def cube_grid(settings: SeaIceSettings) -> Grid:
    """The Baltic ice cube's fixed grid: the Baltic box in the chart CRS at `cube_resolution`."""
    crs = CRS.from_user_input(settings.chart_crs)
    west, south, east, north = BALTIC
    x0, y0 = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(west, south)
    x1, y1 = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(east, north)
    res = settings.cube_resolution
    xmin, ymax = math.floor(x0 / res) * res, math.ceil(y1 / res) * res
    width, height = math.ceil((x1 - xmin) / res), math.ceil((ymax - y0) / res)
    return Grid(crs, Affine(res, 0, xmin, 0, -res, ymax), width, height)


def cube_slab(scene: Scene, grid: Grid) -> xr.Dataset:
    """The scene on the cube's grid as its day's step: sigma0 (dB), incidence angle, ice class and the hour
    (UTC) it was seen."""
    out: dict[str, xr.DataArray] = {}
    dims = ("time", "y", "x")
    for name in ("sigma0_db", "incidence"):
        values = read_on(
            scene.path("backscatter"), grid, name, Resampling.average, decibels=name == "sigma0_db"
        )
        out[name] = xr.DataArray(values[None], dims=dims)
    out["sigma0_db"].attrs.update(long_name="sigma0, incidence-corrected", units="dB")
    out["incidence"].attrs.update(long_name="incidence angle", units="degree")
    if "classes" in scene.files:
        classes = np.full(grid.shape, CLASS_NODATA, np.uint8)
        with rasterio.open(scene.path("classes")) as src:
            reproject(
                rasterio.band(src, 1),
                classes,
                dst_transform=grid.transform,
                dst_crs=grid.crs,
                src_nodata=CLASS_NODATA,
                dst_nodata=CLASS_NODATA,
                resampling=Resampling.mode,
            )
        out["ice_class"] = xr.DataArray(
            classes[None],
            dims=dims,
            attrs={
                "long_name": "sea-ice class",
                "flag_values": np.array(sorted(CLASS_NAMES), np.uint8),
                "flag_meanings": " ".join(CLASS_NAMES[k] for k in sorted(CLASS_NAMES)),
            },
        )
        out["ice_class"].encoding["_FillValue"] = np.uint8(CLASS_NODATA)
    when = pd.Timestamp(scene.time.replace(tzinfo=None))  # ICEYE times are UTC
    day = when.normalize()
    hour = np.float32((when - day) / pd.Timedelta(hours=1))
    seen = np.isfinite(out["sigma0_db"].values)
    out["observation_hour"] = xr.DataArray(
        np.where(seen, hour, np.float32(np.nan)),
        dims=dims,
        attrs={"long_name": "hour of the day (UTC) the pixel was observed", "units": "h"},
    )
    t = grid.transform
    coords = {
        "time": [day.to_datetime64()],
        "y": t.f + t.e * (np.arange(grid.height) + 0.5),
        "x": t.c + t.a * (np.arange(grid.width) + 0.5),
    }
    for variable in out.values():
        variable.attrs["grid_mapping"] = cf.GRID_MAPPING
    ds = xr.Dataset(out, coords=coords)
    return ds.assign_coords({cf.GRID_MAPPING: cf.grid_mapping_variable(grid.crs)})


def day_mosaic(day: xr.Dataset, scene: xr.Dataset) -> xr.Dataset:
    """The day's step (as published) with a scene's step in it: the scene's pixels wherever it saw the sea
    and no later scene of the day did."""
    hour, seen = day["observation_hour"].values, scene["observation_hour"].values
    take = np.isfinite(seen) & ~(hour > seen)  # NaN (not seen yet) compares False
    mosaic = scene.copy()
    for name, variable in scene.data_vars.items():
        if "time" in variable.dims:
            old = day[name].values
            if name == "ice_class":  # read back with its fill value decoded as NaN
                old = np.where(np.isfinite(old), old, CLASS_NODATA).astype(np.uint8)
            mosaic[name] = variable.copy(data=np.where(take, variable.values, old))
    return mosaic


@dataclass(frozen=True)
class Published:
    """Where a scene went: the cube and its STAC item, and the features added to each collection."""

    cube: str
    item: str
    features: dict[str, int]


@dataclass(frozen=True)
class Publisher:
    """Adds processed scenes and drift to the platform (the Context builds one)."""

    ingestion: Ingestion
    features: FeatureStore
    settings: SeaIceSettings

    def scene(self, scene: Scene, title: str = "Baltic sea ice (ICEYE)") -> Published:
        """The scene into its day of the ice cube (created on first use), its files as assets of its STAC
        item, and its chart polygons in the `seaice.ice_charts` collection. One writer at a time: two scenes
        of a day published at once would each mosaic the day without the other."""
        cube, cubes = self.settings.cube, self.ingestion.cubes
        step = cube_slab(scene, cube_grid(self.settings))
        exists = cubes.exists(cube)
        if exists:
            day = step["time"].values[0]
            published = cubes.open(cube, dask=False)
            if day in published["time"].values:
                step = day_mosaic(published.sel(time=[day]), step)
        with tempfile.TemporaryDirectory(prefix="cubeport-seaice-") as tmp:
            slab = Path(tmp) / f"{scene.scene_id}.nc"
            step.to_netcdf(slab, engine="h5netcdf")
            plan = self.ingestion.plan([str(slab)], cube, update=exists)
            done = self.ingestion.run(plan, title=title if not exists else None)
        item = done.products[0] if done.products else scene.scene_id
        m = scene.metadata
        self._attach(
            cube,
            item,
            _scene_files(scene),
            {
                "platform": m.satellite,
                "constellation": "ICEYE",
                "sar:instrument_mode": m.mode,
                "sar:polarizations": [m.polarisation],
                "sar:product_type": m.product_level,
                "sat:orbit_state": m.orbit_direction.lower(),
                "sar:observation_direction": m.look_side.lower(),
                "start_datetime": rfc3339(m.start),
                "end_datetime": rfc3339(m.end),
                "cubeport:ice_class_fractions": scene.class_fractions,
            },
        )
        added = {}
        if "chart_gpkg" in scene.files:
            chart = gpd.read_file(scene.path("chart_gpkg"))
            added[CHARTS] = self._add_features(CHARTS, chart, scene)
        return Published(cube, item, added)

    def drift(self, drift: Drift) -> int:
        """Drift vectors into the `seaice.ice_drift` collection, and the drift files as assets of the later
        scene's cube step (when that scene was published)."""
        first, second = drift.first, drift.second
        table = drift.field.vectors.assign(
            first_scene=first.scene_id,
            second_scene=second.scene_id,
            start=pd.Timestamp(first.start),
            end=pd.Timestamp(second.start),
        )
        same = {"first_scene": first.scene_id, "second_scene": second.scene_id}
        added = self._insert(DRIFT, table, "Sea-ice drift (ICEYE pairs)", "start", replacing=same)
        files = ((f"drift_{kind}", path) for kind, path in drift.files.items())
        self._attach(self.settings.cube, second.scene_id, files, {"cubeport:drift_from": first.scene_id})
        return added

    def _attach(
        self, cube: str, item: str, files: Iterable[tuple[str, Path]], properties: dict[str, Any]
    ) -> None:
        """Files kept beside a cube step's product, as assets of its item (by role), and more properties."""
        products = self.ingestion.products
        try:
            record = products.item(cube, item)
        except NotFoundError:
            return
        assets = dict(record["assets"])
        for role, path in files:
            products.storage.put_file_atomic(str(path), "products", cube, item, path.name)
            assets[role] = {
                "href": path.name,
                "type": MEDIA.get(path.suffix, "application/octet-stream"),
                "title": path.name,
                "roles": ["data"],
                "file:size": path.stat().st_size,
            }
        products.save({**record, "assets": assets, "properties": {**record["properties"], **properties}})

    def _add_features(self, name: str, table: gpd.GeoDataFrame, scene: Scene) -> int:
        table = table.assign(scene=scene.scene_id, time=pd.Timestamp(scene.time))
        return self._insert(
            name, table, "Sea-ice charts (ICEYE, SIGRID-3)", "time", replacing={"scene": scene.scene_id}
        )

    def _insert(
        self, name: str, table: gpd.GeoDataFrame, title: str, time_property: str, replacing: dict[str, str]
    ) -> int:
        """Features in WGS84 (the feature store keeps EPSG CRSs; the chart Mercator has none), property names
        as the store spells them (SIGRID-3's CT becomes ct). Features with the `replacing` values go first:
        publishing a scene again (a rerun) replaces its features instead of doubling them."""
        table = table.to_crs(4326)
        table = table.rename(columns={c: property_name(c) for c in table.columns if c != "geometry"})
        properties = {c: _kind(table[c]) for c in table.columns if c != "geometry"}
        try:
            self.features.get(DATABASE, name)
        except NotFoundError:
            spec = CollectionSpec(
                DATABASE, name, properties, 4326, "Geometry", title=title, time_property=time_property
            )
            self.features.create(spec)
        else:
            same = [{"op": "=", "args": [{"property": k}, v]} for k, v in replacing.items()]
            which = same[0] if len(same) == 1 else {"op": "and", "args": same}
            self.features.delete(DATABASE, name, Selection(filter=which))
        return self.features.insert(DATABASE, name, _features(table))


def _scene_files(scene: Scene) -> Iterable[tuple[str, Path]]:
    """The scene's files to keep by role: rasters, the chart (a Shapefile zipped with its sidecars), the
    record."""
    import zipfile

    for role, name in scene.files.items():
        path = scene.folder / name
        if role == "chart_shp":
            bundle = path.with_suffix(".shp.zip")
            with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
                for part in sorted(path.parent.glob(f"{path.stem}.*")):
                    if part.suffix != ".zip":
                        archive.write(part, part.name)
            yield role, bundle
        else:
            yield role, path


def _kind(column: Any) -> PropertyType:
    """The feature store's type of a table column (pandas dtypes, extension ones included)."""
    types = pd.api.types
    if types.is_datetime64_any_dtype(column):
        return "datetime"
    if types.is_bool_dtype(column):
        return "boolean"
    if types.is_integer_dtype(column):
        return "integer"
    return "number" if types.is_float_dtype(column) else "string"


def _features(table: gpd.GeoDataFrame) -> Iterable[dict[str, Any]]:
    columns = [c for c in table.columns if c != "geometry"]
    for geometry, *values in zip(table.geometry, *(table[c] for c in columns), strict=True):
        yield {
            "geometry": geometry,
            "properties": {
                c: (v.item() if isinstance(v, np.generic) else v)
                for c, v in zip(columns, values, strict=True)
            },
        }


def _plain(value: Any) -> Any:
    """A table value as the feature store takes it: Python numbers and datetimes."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if isinstance(value, np.generic) else value
