"""Ice-chart polygons with SIGRID-3 attributes from a class raster, and their GeoPackage or Shapefile.

SIGRID-3 (WMO/TD-No. 1214, JCOMM Technical Report 23, version 3.0, 2014) is the ice services' vector
exchange format: a Shapefile of polygons whose attributes are the egg code as two-character codes. A SAR
class raster knows one ice type per polygon, so each polygon is that ice at its pixels' concentration: the
total concentration CT, the thickest (here: the only) ice's concentration CA, stage of development SA and
form FA; the second and third ice (CB/SB/FB, CC/SC/FC) and the CN/CD/CF fields are present, as the format
asks, and null. Land and no-data make no polygons. AREA (km^2, on an equal-area projection centred on the
grid, so the Mercator's growth with latitude does not inflate it) and PERIMETER (km) are measured per
polygon; `ice_class` and `class_id` name the classifier's class for people and styles.

Code tables (two-character strings, "-9" = null as in SIGRID-3), checked against the SIGRID-3 v3.0 tables
and the executable lookups of pysiral (src/pysiral/auxdata/icechart.py: SIC_LOOKUP, SOD_LOOKUP,
FLOE_LOOKUP) and AI4ArcticSeaIceChallenge (utils.py, same tables):
- concentration: 01 = less than 1/10 (open water), 92 = 10/10; (00 ice free, 10..90 tenths, 91 = 9+/10)
- stage of development: 81 new ice, 82 nilas, 83 young, 84 grey, 85 grey-white, 86 first-year,
  87 thin first-year, 91 medium first-year, 93 thick first-year, 95..97 old, second-, multi-year
- form of ice: 01 shuga / small cake / brash, 02 cake, 03..07 floes small to giant, 08 fast ice,
  09 growlers, 10 icebergs, 21 level ice, 22 pancake, 99 undetermined (the egg code's X)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cubeport.errors import InputError
from cubeport.seaice.classify import CLASS_NAMES, CLASS_NODATA, IceClass
from cubeport.seaice.grid import Grid

NULL = "-9"  # SIGRID-3's null value for a code that does not apply
MIN_AREA_KM2 = 0.1  # default smallest polygon: regions below it are merged into their largest neighbour
SHAPEFILE_FIELD = 10  # longest field name a Shapefile (dBase) holds


@dataclass(frozen=True)
class Sigrid3:
    """The egg code of one class: polygon type, total concentration, and the thickest ice's codes."""

    poly_type: str  # I ice, W water (L land and N no data make no polygons here)
    ct: str
    ca: str
    sa: str
    fa: str


SIGRID3: dict[IceClass, Sigrid3] = {
    # Water polygon; CT 01 "less than 1/10", not 00 "ice free": at 50 m pixels brash and small floes in a
    # lead are below the radar's resolution, so the honest code is "open water", not "no ice".
    IceClass.OPEN_WATER: Sigrid3("W", "01", NULL, NULL, NULL),
    # New ice (SA 81, under 10 cm: frazil, grease, dark nilas) is what stays dark and smooth in SAR; it has
    # no floe form yet, so FA 99 (the egg code's X, undetermined). CT 92: the polygon is all this ice.
    IceClass.NEW_ICE: Sigrid3("I", "92", "92", "81", "99"),
    # Level ice: undeformed ice of the Baltic winter. Backscatter does not measure thickness, so the stage
    # is the general first-year code 86 (30 cm and more), which the FMI analyst refines with other data;
    # FA 21 level ice (SIGRID-3 form code for undeformed sheet ice).
    IceClass.LEVEL_ICE: Sigrid3("I", "92", "92", "86", "21"),
    # Deformed (rafted, ridged) ice: first-year ice (86) whose form SIGRID-3 has no code for (ridging is a
    # separate egg-code field), and a SAR pixel shows no floe size: FA 99 undetermined; `ice_class` says
    # deformed_ice.
    IceClass.DEFORMED_ICE: Sigrid3("I", "92", "92", "86", "99"),
    # Fast ice: level first-year ice attached to the coast, FA 08 fast ice; CT 92 (fast ice is compact,
    # both lookups read 92 as 10/10 fast ice).
    IceClass.FAST_ICE: Sigrid3("I", "92", "92", "86", "08"),
}
# The egg-code fields SIGRID-3 lists that a one-type polygon leaves null (second and third ice, and the
# CN/CD/CF stage and predominant-form fields).
NULL_FIELDS = ("CB", "SB", "FB", "CC", "SC", "FC", "CN", "CD", "CF")
COLUMNS = ("POLY_TYPE", "CT", "CA", "SA", "FA", *NULL_FIELDS, "AREA", "PERIMETER", "ice_class", "class_id")


def chart_polygons(
    classes: NDArray[np.integer[Any]],
    grid: Grid,
    min_area_km2: float = MIN_AREA_KM2,
) -> Any:
    """The chart of a class raster on `grid` as a GeoDataFrame in the grid's CRS, one row a polygon.

    Regions smaller than `min_area_km2` are first merged into their largest neighbour (rasterio's sieve,
    4-connected, land and no-data untouched), so speckle does not become thousands of slivers; a small
    region that only touches land or no-data cannot merge and is dropped."""
    import geopandas as gpd
    import shapely
    from rasterio.features import shapes, sieve

    classes = np.asarray(classes)
    if classes.shape != grid.shape:
        raise InputError(f"class raster of shape {classes.shape} is not on the grid {grid.shape}")
    raster = classes.astype(np.uint8)
    unknown = set(np.unique(raster).tolist()) - {int(c) for c in IceClass} - {CLASS_NODATA}
    if unknown:
        raise InputError(f"class raster holds codes {sorted(unknown)}, not IceClass codes or {CLASS_NODATA}")
    to_area = _equal_area(grid)
    pixel_km2 = float(shapely.area(to_area(shapely.box(*_centre_pixel(grid))))) / 1e6
    min_pixels = max(1, int(np.ceil(min_area_km2 / pixel_km2))) if min_area_km2 > 0 else 1
    data = raster != CLASS_NODATA
    if min_pixels > 1 and data.any():
        raster = sieve(raster, size=min_pixels, connectivity=4, mask=data)
    geometries, codes = [], []
    for geometry, value in shapes(raster, mask=data, connectivity=4, transform=grid.transform):
        geometries.append(shapely.geometry.shape(geometry))
        codes.append(int(value))
    polygons = np.array(geometries, dtype=object)
    code = np.array(codes, dtype=np.uint8)
    projected = to_area(polygons) if len(polygons) else polygons
    area = shapely.area(projected) / 1e6 if len(polygons) else np.empty(0)
    # Regions still under the sieve's size only touch land or no-data: drop them (by pixel count, so the
    # Mercator's varying pixel area does not drop regions the sieve kept).
    pixels = shapely.area(polygons) / abs(grid.transform.a * grid.transform.e) if len(code) else np.empty(0)
    keep = pixels >= min_pixels - 0.5
    polygons, code, projected, area = polygons[keep], code[keep], projected[keep], area[keep]
    table: dict[str, Any] = {
        "POLY_TYPE": [SIGRID3[IceClass(c)].poly_type for c in code],
        "CT": [SIGRID3[IceClass(c)].ct for c in code],
        "CA": [SIGRID3[IceClass(c)].ca for c in code],
        "SA": [SIGRID3[IceClass(c)].sa for c in code],
        "FA": [SIGRID3[IceClass(c)].fa for c in code],
    }
    table.update({name: [NULL] * len(code) for name in NULL_FIELDS})
    table["AREA"] = np.asarray(area, np.float64)
    table["PERIMETER"] = np.asarray(shapely.length(projected) / 1e3 if len(code) else np.empty(0), np.float64)
    table["ice_class"] = [CLASS_NAMES[int(c)] for c in code]
    table["class_id"] = code.astype(np.int32)
    return gpd.GeoDataFrame(table, geometry=list(polygons), crs=grid.crs)


def write_chart(gdf: Any, path: str | Path, *, crs: Any = None) -> Path:
    """Write a chart as GeoPackage (.gpkg) or ESRI Shapefile (.shp) by the suffix, optionally reprojected
    to `crs` first (the feature store takes EPSG CRSs only; the chart Mercator is not one).

    Atomic: the file is written in a temporary folder beside the target and renamed over it; for a
    Shapefile every sidecar is renamed and the .shp last, so a reader that finds the .shp finds its set
    (sidecars of an older version that the new one lacks are removed)."""
    import pyogrio

    path = Path(path)
    drivers = {".gpkg": "GPKG", ".shp": "ESRI Shapefile"}
    driver = drivers.get(path.suffix.lower())
    if driver is None:
        raise InputError(f"{path}: write charts as .gpkg (GeoPackage) or .shp (ESRI Shapefile)")
    if crs is not None:
        gdf = gdf.to_crs(crs)
    if driver == "ESRI Shapefile":
        long = [str(c) for c in gdf.columns if c != gdf.geometry.name and len(str(c)) > SHAPEFILE_FIELD]
        if long:
            raise InputError(f"{path}: field names {long} are longer than a Shapefile's 10 characters")
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.stem}.", dir=path.parent))
    try:
        target = folder / path.name
        options: dict[str, Any] = {"layer": path.stem, "driver": driver}
        if len(gdf) == 0:
            options["geometry_type"] = "Polygon"
        if driver == "ESRI Shapefile":
            options["encoding"] = "UTF-8"
        pyogrio.write_dataframe(gdf, target, **options)
        if driver == "GPKG":
            os.replace(target, path)
            return path
        written = {f.suffix.lower(): f for f in folder.iterdir()}
        for suffix, file in sorted(written.items(), key=lambda item: item[0] == ".shp"):
            os.replace(file, path.with_suffix(suffix))
        for stale in path.parent.glob(f"{path.stem}.*"):
            if stale.suffix.lower() not in written and stale.suffix.lower() in _SIDECARS:
                stale.unlink()
        return path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_SIDECARS = {".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qpj", ".shp.xml"}


def _equal_area(grid: Grid) -> Any:
    """A function projecting shapely geometries in the grid's CRS to a Lambert azimuthal equal-area
    projection centred on the grid: areas exact, lengths within a fraction of a percent over a scene."""
    import shapely
    from pyproj import CRS, Transformer

    xmin, ymin, xmax, ymax = grid.bounds
    to_lonlat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform((xmin + xmax) / 2, (ymin + ymax) / 2)
    laea = CRS.from_proj4(f"+proj=laea +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m +no_defs")
    transformer = Transformer.from_crs(grid.crs, laea, always_xy=True)

    def project(geometry: Any) -> Any:
        return shapely.transform(
            geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
        )

    return project


def _centre_pixel(grid: Grid) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of the pixel at the middle of the grid."""
    col, row = grid.width // 2, grid.height // 2
    x0, y0 = grid.transform @ (col, row)
    x1, y1 = grid.transform @ (col + 1, row + 1)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
