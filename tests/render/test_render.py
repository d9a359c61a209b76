"""Map tiles against a plain xarray computation on the real samples: level choice, reprojection,
nearest and bilinear resampling, colours and transparency in the PNG."""

import io
import math

import numpy as np
import pytest
import xarray as xr
from helpers import write_cube
from PIL import Image
from pyproj import Transformer

from cubeport.cubes import cf
from cubeport.cubes.store import CubeStore
from cubeport.errors import InputError, NotFoundError
from cubeport.render import png
from cubeport.render.colormaps import lookup_table
from cubeport.render.tiles import CubeLevels, colour_indices, palette, render_values
from cubeport.render.tms import tile_matrix_set


@pytest.fixture(scope="module")
def cubes(tmp_path_factory, data):
    from cubeport.storage import Storage

    store = CubeStore(Storage(str(tmp_path_factory.mktemp("render"))))
    write_cube(store, [str(data / "cubes/olci-north-sea-chl-5steps.zarr")], "olci")
    write_cube(store, [str(data / "cubes/s2-ndvi-slovenia-68steps.zarr")], "ndvi")
    return store


def expected_tile(store, cube_id, variable, time_index, tms, tile, method="nearest"):
    """The same tile computed the plain way: every pixel centre transformed on its own, the level chosen
    from the tile's pixel size, then xarray's own nearest selection or linear interpolation."""
    bounds = tms.xy_bounds(tile)
    xs = bounds.left + (np.arange(256) + 0.5) * (bounds.right - bounds.left) / 256
    ys = bounds.top - (np.arange(256) + 0.5) * (bounds.top - bounds.bottom) / 256
    base = store.open(cube_id)
    crs = cf.crs_of(base)
    gx, gy = np.meshgrid(xs, ys)
    cx, cy = Transformer.from_crs(tms.crs._pyproj_crs, crs, always_xy=True).transform(gx, gy)
    xdim, ydim = ("lon", "lat") if "lon" in base.dims else ("x", "y")
    step0 = abs(float(base[xdim][1] - base[xdim][0]))
    tile_step = abs(cx[128, -1] - cx[128, 0]) / 255
    levels = store.pointer(cube_id).levels
    level = 0 if tile_step <= step0 else min(int(math.floor(math.log2(tile_step / step0) + 1e-9)), levels - 1)
    ds = store.open(cube_id, level=level)[variable].isel(time=time_index)
    points = {xdim: xr.DataArray(cx, dims=("r", "c")), ydim: xr.DataArray(cy, dims=("r", "c"))}
    values = (
        ds.sel(points, method="nearest") if method == "nearest" else ds.interp(points, method="linear")
    ).values
    step_x, step_y = float(ds[xdim][1] - ds[xdim][0]), float(ds[ydim][1] - ds[ydim][0])
    x_lo, x_hi = sorted((float(ds[xdim][0]) - step_x / 2, float(ds[xdim][-1]) + step_x / 2))
    y_lo, y_hi = sorted((float(ds[ydim][0]) - step_y / 2, float(ds[ydim][-1]) + step_y / 2))
    inside = (cx >= x_lo) & (cx < x_hi) & (cy >= y_lo) & (cy < y_hi)
    return np.where(inside, values, np.nan), level


@pytest.mark.parametrize(
    "cube_id, variable, tms_name, lon, lat, z",
    [
        ("olci", "conc_chl", "WebMercatorQuad", 2.5, 51.2, 10),  # separable, level 0
        ("olci", "conc_chl", "WebMercatorQuad", 2.5, 51.2, 7),  # separable, a coarser level
        ("olci", "conc_chl", "WorldCRS84Quad", 1.2, 51.7, 7),  # lon/lat tiles
        ("olci", "c2rcc_flags", "WebMercatorQuad", 3.9, 51.6, 9),  # integer flags
        ("ndvi", "ndvi", "WebMercatorQuad", 14.558, 45.870, 16),  # UTM cube: point-by-point transform
    ],
)
def test_tiles_equal_a_plain_xarray_computation(cubes, cube_id, variable, tms_name, lon, lat, z):
    tms = tile_matrix_set(tms_name)
    tile = tms.tile(lon, lat, z)
    cube = CubeLevels(cubes, cube_id)
    got = render_values(cube, variable, 0, tms, tile.z, tile.x, tile.y)
    want, level = expected_tile(cubes, cube_id, variable, 0, tms, tile)
    assert got is not None and np.isfinite(want).mean() > 0.05
    assert level == {("WebMercatorQuad", 10): 0, ("WebMercatorQuad", 7): 2}.get((tms_name, z), level)
    # pixel centres that fall within 1e-9 of a cell boundary may round either way: allow 0.5 % of pixels
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert same.mean() > 0.995, f"{(~same).sum()} pixels differ"


def test_bilinear_equals_xarray_linear_interpolation(cubes):
    tms = tile_matrix_set("WebMercatorQuad")
    tile = tms.tile(2.0, 51.8, 11)  # zoomed in past level 0: interpolation between source pixels
    got = render_values(CubeLevels(cubes, "olci"), "kd489", 0, tms, tile.z, tile.x, tile.y, "bilinear")
    want, level = expected_tile(cubes, "olci", "kd489", 0, tms, tile, method="linear")
    both = np.isfinite(want)
    assert level == 0 and both.mean() > 0.5
    np.testing.assert_allclose(got[both], want[both], rtol=1e-5)
    nearest = render_values(CubeLevels(cubes, "olci"), "kd489", 0, tms, tile.z, tile.x, tile.y)
    assert not np.allclose(nearest[both], want[both])  # the two resamplings really differ


def test_outside_the_cube_and_bad_requests(cubes):
    tms = tile_matrix_set("WebMercatorQuad")
    cube = CubeLevels(cubes, "olci")
    far = tms.tile(100.0, -30.0, 8)
    assert render_values(cube, "conc_chl", 0, tms, far.z, far.x, far.y) is None
    assert render_values(cube, "conc_chl", 0, tile_matrix_set("TM35FIN"), 0, 0, 0) is None  # Finland's grid
    with pytest.raises(NotFoundError, match="variables: .*conc_chl"):
        render_values(cube, "chl", 0, tms, 8, 129, 85)
    with pytest.raises(NotFoundError, match="time index 9"):
        render_values(cube, "conc_chl", 9, tms, 8, 129, 85)
    with pytest.raises(InputError, match="outside"):
        render_values(cube, "conc_chl", 0, tms, 3, 8, 0)
    with pytest.raises(InputError, match="zoom 31"):
        render_values(cube, "conc_chl", 0, tms, 31, 0, 0)


def test_png_colours_and_transparency(cubes):
    tms = tile_matrix_set("WebMercatorQuad")
    values = render_values(CubeLevels(cubes, "olci"), "conc_chl", 0, tms, 8, 129, 85)
    indices = colour_indices(values, 0.0, 20.0)
    image = Image.open(io.BytesIO(png.encode(indices, palette("viridis", "lin")))).convert("RGBA")
    rgba = np.asarray(image)
    table = lookup_table("viridis")
    assert (rgba[np.isnan(values)][:, 3] == 0).all()  # land and gaps are transparent
    valid = np.isfinite(values)
    expected = np.clip(values[valid] / 20.0 * 255, 0, 254).astype(int)
    np.testing.assert_array_equal(rgba[valid], table[expected])
    high = colour_indices(np.array([25.0, -1.0, np.nan]), 0.0, 20.0)
    assert high.tolist() == [254, 0, 255]  # clipped to the range; no data is the transparent entry
    log = colour_indices(np.array([0.1, 1.0, 10.0]), 0.1, 10.0, "log")
    assert log.tolist() == [0, 127, 254]
    with pytest.raises(InputError):
        lookup_table("no-such-map")
    assert (
        lookup_table("thermal")[0, 3] == 255 and lookup_table("viridis_r")[0].tolist() == table[254].tolist()
    )
    assert lookup_table("viridis_alpha")[0, 3] == 0
    assert Image.open(io.BytesIO(png.empty())).convert("RGBA").getextrema()[3] == (0, 0)
