"""The energy and carbon estimate against figures worked out by hand, its refusals, and its factors from the
settings (keywords and CUBEPORT_ENERGY__* variables)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest

from cubeport.config import EnergySettings, load_settings
from cubeport.errors import ConfigError, InputError
from cubeport.platform.energy import EnergyFactors, Usage, describe, estimate

TB = 10**12
DAY = 86400


@pytest.fixture
def no_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Settings from defaults and this test's variables only."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUBEPORT_CONFIG", raising=False)
    for key in ("WATTS_PER_CORE", "WATTS_PER_TB", "GRID_GCO2E_PER_KWH", "PUE"):
        monkeypatch.delenv(f"CUBEPORT_ENERGY__{key}", raising=False)


def test_one_cpu_hour_at_ten_watts_is_ten_watt_hours() -> None:
    result = estimate(Usage(cpu_seconds=3600, storage_byte_seconds=0), EnergyFactors(watts_per_core=10))
    assert result.compute_kwh == pytest.approx(0.01)
    assert result.storage_kwh == 0
    assert result.total_kwh == pytest.approx(0.01)
    assert result.compute_g == pytest.approx(0.01 * 250)  # 2.5 g at the default 250 g/kWh
    assert result.total_g == pytest.approx(2.5)


def test_one_terabyte_for_thirty_days_at_five_watts() -> None:
    # 5 W x 720 h = 3600 Wh = 3.6 kWh; x 250 g/kWh = 900 g
    factors = EnergyFactors(watts_per_tb=5, grid_gco2e_per_kwh=250)
    result = estimate(Usage(cpu_seconds=0, storage_byte_seconds=TB * 30 * DAY), factors)
    assert result.storage_kwh == pytest.approx(3.6)
    assert result.storage_g == pytest.approx(900)
    assert result.compute_kwh == 0 and result.compute_g == 0
    assert result.total_kwh == pytest.approx(3.6)
    assert result.total_g == pytest.approx(900)


def test_a_terabyte_is_decimal() -> None:
    """10^12 bytes, not 2^40: a TiB held for an hour at 1 W/TB is 1.0995... Wh."""
    factors = EnergyFactors(watts_per_tb=1)
    result = estimate(Usage(cpu_seconds=0, storage_byte_seconds=2**40 * 3600), factors)
    assert result.storage_kwh == pytest.approx(2**40 / TB / 1000)


def test_compute_and_storage_together_and_pue() -> None:
    # 2 CPU-hours at 12 W = 24 Wh; 2 TB for 10 h at 1.5 W/TB = 30 Wh; PUE 1.5: 36 + 45 = 81 Wh;
    # x 200 g/kWh: 7.2 + 9.0 = 16.2 g
    factors = EnergyFactors(watts_per_core=12, watts_per_tb=1.5, grid_gco2e_per_kwh=200, pue=1.5)
    result = estimate(Usage(cpu_seconds=7200, storage_byte_seconds=2 * TB * 36000), factors)
    assert result.compute_kwh == pytest.approx(0.036)
    assert result.storage_kwh == pytest.approx(0.045)
    assert result.total_kwh == pytest.approx(0.081)
    assert result.compute_g == pytest.approx(7.2)
    assert result.storage_g == pytest.approx(9.0)
    assert result.total_g == pytest.approx(16.2)
    without = estimate(Usage(7200, 2 * TB * 36000), dataclasses.replace(factors, pue=1.0))
    assert result.total_kwh == pytest.approx(without.total_kwh * 1.5)
    assert result.total_g == pytest.approx(without.total_g * 1.5)


def test_grid_intensity_scales_grams_not_energy() -> None:
    usage = Usage(cpu_seconds=36000, storage_byte_seconds=TB * DAY)
    dirty = estimate(usage, EnergyFactors(grid_gco2e_per_kwh=500))
    clean = estimate(usage, EnergyFactors(grid_gco2e_per_kwh=50))
    assert dirty.total_kwh == clean.total_kwh
    assert dirty.total_g == pytest.approx(clean.total_g * 10)


def test_zero_usage_is_zero() -> None:
    result = estimate(Usage(0, 0), EnergyFactors())
    assert (result.compute_kwh, result.storage_kwh, result.total_kwh) == (0, 0, 0)
    assert (result.compute_g, result.storage_g, result.total_g) == (0, 0, 0)
    assert result.method == describe(EnergyFactors())


@pytest.mark.parametrize(
    ("cpu_seconds", "storage_byte_seconds", "named"),
    [
        (-1, 0, "cpu_seconds"),
        (0, -1e12, "storage_byte_seconds"),
        (math.nan, 0, "cpu_seconds"),
        (0, math.inf, "storage_byte_seconds"),
        ("3600", 0, "cpu_seconds"),
        (True, 0, "cpu_seconds"),
    ],
)
def test_bad_usage_is_refused(cpu_seconds: Any, storage_byte_seconds: Any, named: str) -> None:
    with pytest.raises(InputError, match=named):
        Usage(cpu_seconds=cpu_seconds, storage_byte_seconds=storage_byte_seconds)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("watts_per_core", -1),
        ("watts_per_tb", -0.5),
        ("grid_gco2e_per_kwh", -250),
        ("pue", 0.9),
        ("pue", math.nan),
        ("watts_per_core", math.inf),
    ],
)
def test_bad_factors_are_refused(field: str, value: float) -> None:
    with pytest.raises(InputError, match=field):
        EnergyFactors(**{field: value})


def test_method_names_every_factor_used() -> None:
    factors = EnergyFactors(watts_per_core=13.5, watts_per_tb=2.75, grid_gco2e_per_kwh=321, pue=1.4)
    method = estimate(Usage(1, 1), factors).method
    for text in ("13.5 W per core", "2.75 W per TB", "321 gCO2e/kWh", "PUE 1.4", "10^12 bytes"):
        assert text in method, text
    assert "estimate" in method.lower()
    assert "\n" not in method  # one paragraph
    assert describe(EnergyFactors()) != method


def test_defaults_of_settings_and_factors_agree(no_config_file: None) -> None:
    """config.py repeats the defaults of energy.py (it cannot import it): they must not drift apart."""
    assert EnergyFactors.from_settings(load_settings().energy) == EnergyFactors()
    assert EnergyFactors.from_settings(EnergySettings()) == EnergyFactors()


def test_factors_from_environment(monkeypatch: pytest.MonkeyPatch, no_config_file: None) -> None:
    monkeypatch.setenv("CUBEPORT_ENERGY__GRID_GCO2E_PER_KWH", "50")
    monkeypatch.setenv("CUBEPORT_ENERGY__PUE", "1.2")
    factors = EnergyFactors.from_settings(load_settings().energy)
    assert factors.grid_gco2e_per_kwh == 50
    assert factors.pue == 1.2
    assert factors.watts_per_core == EnergyFactors().watts_per_core
    result = estimate(Usage(cpu_seconds=3600, storage_byte_seconds=0), factors)
    assert result.compute_kwh == pytest.approx(factors.watts_per_core * 1.2 / 1000)
    assert result.total_g == pytest.approx(result.total_kwh * 50)
    assert "50 gCO2e/kWh" in result.method


def test_factors_from_keywords(no_config_file: None) -> None:
    settings = load_settings(energy={"watts_per_core": 10, "watts_per_tb": 5})
    factors = EnergyFactors.from_settings(settings.energy)
    assert (factors.watts_per_core, factors.watts_per_tb) == (10, 5)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CUBEPORT_ENERGY__PUE", "0.8"), ("CUBEPORT_ENERGY__WATTS_PER_TB", "-1"), ("CUBEPORT_ENERGY__PUE", "x")],
)
def test_bad_settings_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, no_config_file: None, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match="energy"):
        load_settings()
