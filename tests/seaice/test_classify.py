"""Ice classification against the truth of synthetic scenes (tests/seaice/scenes.py): the per-scene Gaussian
mixture and a saved scikit-learn model each get >= 90 % of the pixels right, fast ice included; land and
no-data are 255; texture features equal a brute-force computation; dask and numpy inputs agree."""

from __future__ import annotations

import pickle

import dask.array as da
import joblib
import numpy as np
import pytest
from scenes import DEFORMED, FAST, LEVEL, NEW, OW, scene_blocks, to_dn, truth_scene
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

from cubeport.errors import InputError
from cubeport.seaice.classify import (
    CLASS_NAMES,
    CLASS_NODATA,
    IceClass,
    classify,
    load_model,
    sample_features,
)
from cubeport.seaice.texture import features, halo, local_stats

SHAPE = (1500, 1500)
SLOPE = -0.2  # the scenes' true slope (dB per degree) and the chain's default
REFERENCE = 25.0


def corrected(scene):
    """sigma0 corrected to the reference angle with one slope, the way the chain corrects (written out here
    so the test does not lean on the incidence module)."""
    return scene.sigma0_db - SLOPE * (scene.incidence_grid() - REFERENCE)


def accuracy(result, scene):
    truth = scene.classes != CLASS_NODATA
    return float((result[truth] == scene.classes[truth]).mean())


def recall(result, scene, code):
    inside = scene.classes == code
    return float((result[inside] == code).mean())


@pytest.fixture(scope="module")
def scene():
    return truth_scene(SHAPE, seed=11)


@pytest.fixture(scope="module")
def gmm_result(scene):
    return classify(corrected(scene), scene.valid, scene.land, seed=0)


def test_classes_and_names():
    assert [int(c) for c in IceClass] == [0, 1, 2, 3, 4]
    assert CLASS_NAMES == {0: "open_water", 1: "new_ice", 2: "level_ice", 3: "deformed_ice", 4: "fast_ice"}
    assert IceClass.FAST_ICE.label == "fast_ice" and CLASS_NODATA == 255
    assert (OW, NEW, LEVEL, DEFORMED, FAST) == (0, 1, 2, 3, 4)


def test_the_truth_scene_has_every_class_and_the_known_incidence_ramp(scene):
    present = np.bincount(scene.classes[scene.classes != CLASS_NODATA], minlength=5) / scene.classes.size
    assert (present > 0.04).all(), present  # each class covers a real share of the scene
    assert np.isnan(scene.sigma0_db[~scene.valid]).all() and (~scene.valid).any()
    assert (scene.classes[scene.land | ~scene.valid] == CLASS_NODATA).all()
    # Level ice away from the edges: the mean dB per column follows the slope, and the correction removes it.
    level = np.where(scene.classes == LEVEL, scene.sigma0_db, np.nan)
    columns = np.arange(SHAPE[1])
    good = np.isfinite(level).sum(axis=0) > 100
    mean = np.nanmean(level[:, good], axis=0)
    slope = np.polyfit(scene.incidence[good], mean, 1)[0]
    assert slope == pytest.approx(SLOPE, abs=0.03)
    flat = np.nanmean(np.where(scene.classes == LEVEL, corrected(scene), np.nan)[:, good], axis=0)
    assert abs(np.polyfit(scene.incidence[good], flat, 1)[0]) < 0.03
    assert scene.incidence[0] == pytest.approx(21.0) and scene.incidence[-1] == pytest.approx(29.0)
    assert columns.size == scene.incidence.size


def test_the_mixture_gets_90_percent_right_fast_ice_included(scene, gmm_result):
    assert gmm_result.dtype == np.uint8 and gmm_result.shape == SHAPE
    assert accuracy(gmm_result, scene) >= 0.90
    for code in IceClass:
        assert recall(gmm_result, scene, code) >= 0.85, (code.label, recall(gmm_result, scene, code))
    # Fast ice is only where the truth has fast ice or land-attached level ice: almost never in the pack.
    pack = (scene.classes != FAST) & (scene.classes != CLASS_NODATA)
    assert (gmm_result[pack] == FAST).mean() < 0.01


def test_land_and_no_data_are_255_and_everything_else_is_classified(scene, gmm_result):
    outside = scene.land | ~scene.valid
    assert (gmm_result[outside] == CLASS_NODATA).all()
    assert (gmm_result[~outside] != CLASS_NODATA).all()


def test_without_incidence_correction_the_far_range_drifts(scene, gmm_result):
    """The correction matters: uncorrected, the far range is darker by up to 0.8 dB and more pixels go wrong
    there than after the correction (a check that the ramp is in the data the classifier sees)."""
    raw = classify(scene.sigma0_db, scene.valid, scene.land, seed=0)
    far = np.zeros(SHAPE, bool)
    far[:, -300:] = True
    truth = (scene.classes != CLASS_NODATA) & far
    wrong_raw = (raw[truth] != scene.classes[truth]).mean()
    wrong_corrected = (gmm_result[truth] != scene.classes[truth]).mean()
    assert wrong_raw > wrong_corrected


def test_the_mixture_is_reproducible_and_dask_gives_the_same_classes(scene, gmm_result):
    again = classify(corrected(scene), scene.valid, scene.land, seed=0)
    assert np.array_equal(again, gmm_result)
    lazy = classify(
        da.from_array(corrected(scene), chunks=400),
        da.from_array(scene.valid, chunks=400),
        da.from_array(scene.land, chunks=400),
        seed=0,
    )
    assert isinstance(lazy, np.ndarray)
    assert (lazy == gmm_result).mean() > 0.999


def test_a_landfast_mask_replaces_connectivity(scene):
    x = corrected(scene)
    landfast = np.zeros(SHAPE, bool)
    landfast[:, :600] = True  # fast ice as an ice service would give it: all ice west of column 600
    result = classify(x, scene.valid, scene.land, seed=0, landfast=landfast)
    ice = np.isin(scene.classes, [NEW, LEVEL, DEFORMED, FAST])
    assert (result[~landfast] != FAST).all()
    assert (result[landfast & ice] == FAST).mean() > 0.95
    assert (result[landfast & (scene.classes == OW)] == OW).mean() > 0.9


def test_no_land_means_no_fast_ice():
    scene = truth_scene((600, 600), seed=3, coast=False)
    result = classify(corrected(scene), seed=0)  # no-data known from NaN alone
    assert not scene.land.any() and (result != FAST).all()
    assert (result[~scene.valid] == CLASS_NODATA).all() and (result[scene.valid] != CLASS_NODATA).all()
    assert accuracy(result, scene) >= 0.9


def test_a_saved_model_classifies_another_scene(tmp_path, scene):
    training = truth_scene(SHAPE, seed=21)
    X, y = sample_features(
        corrected(training), training.valid, training.land, training.classes, n=100_000, seed=1
    )
    assert X.shape == (len(y), 3) and set(np.unique(y)) == {OW, NEW, LEVEL, DEFORMED}  # fast taught as level
    path = tmp_path / "ice.joblib"
    joblib.dump(QuadraticDiscriminantAnalysis().fit(X, y), path)
    result = classify(corrected(scene), scene.valid, scene.land, model=path)
    assert accuracy(result, scene) >= 0.90
    assert recall(result, scene, FAST) >= 0.85
    assert (result[scene.land | ~scene.valid] == CLASS_NODATA).all()


def test_bad_model_files_are_refused(tmp_path, scene):
    x = corrected(scene)[:200, :200]
    with pytest.raises(InputError, match="not found"):
        classify(x, model=tmp_path / "missing.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a joblib model file"):
        load_model(tmp_path / "junk.joblib")
    (tmp_path / "dict.joblib").write_bytes(pickle.dumps({"predict": 1}))
    with pytest.raises(InputError, match="not a model with predict"):
        load_model(tmp_path / "dict.joblib")
    rng = np.random.default_rng(0)
    joblib.dump(
        QuadraticDiscriminantAnalysis().fit(rng.normal(size=(200, 2)), rng.integers(0, 2, 200)),
        tmp_path / "two.joblib",
    )
    with pytest.raises(InputError, match="takes 2 features"):
        load_model(tmp_path / "two.joblib")
    joblib.dump(
        QuadraticDiscriminantAnalysis().fit(rng.normal(size=(200, 3)), rng.integers(7, 9, 200)),
        tmp_path / "codes.joblib",
    )
    with pytest.raises(InputError, match="not an IceClass code"):
        classify(x, model=tmp_path / "codes.joblib")
    with pytest.raises(InputError, match="needs a model"):
        classify(x, method="model")
    with pytest.raises(InputError, match="does not match"):
        classify(x, land=np.zeros((10, 10), bool))


def test_too_little_sea_gives_no_classes():
    x = np.full((300, 300), -15.0, np.float32)
    land = np.ones(x.shape, bool)
    land[:20, :20] = False  # 400 sea pixels: too few to train a mixture on
    result = classify(x, land=land)
    assert (result == CLASS_NODATA).all()


def test_texture_equals_brute_force_and_blocks_equal_the_whole():
    rng = np.random.default_rng(5)
    x = rng.normal(-15, 3, (40, 50)).astype(np.float32)
    x[10:14, 20:30] = np.nan
    mean, std = local_stats(x, 5)
    padded = np.pad(x, 2, mode="symmetric")  # scipy/OpenCV "reflect": the edge pixel repeats
    for r, c in [(0, 0), (12, 25), (11, 18), (39, 49), (20, 7)]:
        window = padded[r : r + 5, c : c + 5]
        assert mean[r, c] == pytest.approx(np.nanmean(window), abs=1e-4)
        assert std[r, c] == pytest.approx(np.nanstd(window), abs=1e-3)
    whole = features(x)
    assert np.isnan(whole).sum() == 0  # windows mostly no-data would be NaN; none here
    cut, pad = 25, halo()
    top = features(x[: cut + pad])[:, :cut]
    bottom = features(x[cut - pad :])[:, pad:]
    assert np.allclose(np.concatenate([top, bottom], axis=1), whole, atol=1e-4)


def test_scenes_are_the_same_window_by_window_and_as_dn():
    shape = (700, 900)
    whole = truth_scene(shape, seed=4)
    part = truth_scene(shape, seed=4, window=(100, 550, 300, 350))
    assert np.array_equal(part.classes, whole.classes[100:400, 550:900])
    assert np.allclose(part.sigma0_db, whole.sigma0_db[100:400, 550:900], equal_nan=True, atol=1e-5)
    lazy = scene_blocks(shape, 4, "sigma0_db", chunks=256)
    assert np.allclose(lazy.compute(), whole.sigma0_db, equal_nan=True, atol=1e-5)
    assert np.array_equal(scene_blocks(shape, 4, "classes", chunks=300).compute(), whole.classes)
    cf = 3.939204325311276e-08  # the calibration factor of the real ICEYE sample
    dn = to_dn(whole, cf)
    assert dn.dtype == np.uint16 and (dn[~whole.valid] == 0).all() and (dn[whole.valid] >= 1).all()
    back = 10 * np.log10(cf * dn[whole.valid].astype(np.float64) ** 2)  # sigma0 = CF x DN^2
    assert np.abs(back - whole.sigma0_db[whole.valid]).max() < 0.2  # DN rounding, at the darkest speckle
    assert np.array_equal(scene_blocks(shape, 4, "dn", chunks=256, calibration_factor=cf).compute(), dn)
    land = np.zeros(shape, bool)
    land[300:420, 400:520] = True  # an island: the given mask, fast ice around it
    island = truth_scene(shape, seed=4, land=land)
    assert np.array_equal(island.land, land)
    fast = island.classes == FAST
    assert fast[230:490, 330:590].sum() == fast.sum() > 1000  # a ring around the island, nowhere else
    assert not (whole.classes == FAST)[250:470, 350:570].any()  # without the island, pack ice there


def test_a_real_sentinel1_scene_classifies_and_charts(data):
    """Robustness on real imagery (a terrain-flattened S1 IW VV scene in dB, no-data -99): every valid pixel
    gets a class, no-data stays 255, and the chart of it is valid polygons on the scene's UTM grid."""
    import rasterio

    from cubeport.seaice.charts import chart_polygons
    from cubeport.seaice.grid import Grid

    with rasterio.open(data / "sar/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif") as src:
        db = src.read(1).astype(np.float32)
        grid = Grid(src.crs, src.transform, src.width, src.height)
    nodata = db == -99
    nodata[:, :20] = True  # the sample has no no-data pixels: give it a border as rectified scenes have
    db[nodata] = np.nan
    result = classify(db, seed=0)
    assert nodata.any() and (result[nodata] == CLASS_NODATA).all()
    assert (result[~nodata] != CLASS_NODATA).all()
    assert len(np.unique(result[~nodata])) == 4  # a mixture of four components, each named once
    chart = chart_polygons(result, grid, min_area_km2=0.01)
    assert len(chart) > 0 and chart.geometry.is_valid.all()
    assert chart.AREA.sum() == pytest.approx((~nodata).sum() * 20 * 20 / 1e6, rel=0.02)
