"""The energy and carbon estimate of a user's or project's usage: the arithmetic only.

An estimate, not a measurement: CPU-seconds times a power per core, storage held over time times a power per
terabyte, both times the data centre's PUE, and the energy times the grid's carbon intensity. Every factor is
a setting (`energy.*`), and `Estimate.method` states the formula with the factors used, so that the figure is
never shown without what it rests on. Accounting counts the usage; this module only turns it into kWh and g.
Pure functions, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cubeport.config import EnergySettings
from cubeport.errors import InputError

SECONDS_PER_HOUR = 3600.0
BYTES_PER_TB = 10**12  # decimal terabyte, as drives and storage bills count it
WH_PER_KWH = 1000.0

# Defaults, to be replaced by a deployment's own figures (`energy.*` settings); config.EnergySettings repeats
# them (config cannot import this module) and tests/platform/test_energy.py checks that the two agree.
#
# 12 W per core: the Green Algorithms calculator's value for an unknown CPU ("Any", TDP per core), from
# Lannelongue, Grealey & Inouye, "Green Algorithms: Quantifying the Carbon Footprint of Computation", Adv.
# Sci. 2021 (data/TDP_cpu.csv of github.com/GreenAlgorithms/green-algorithms-tool; server Xeons there range
# from about 6 to 15 W per core). TDP is an upper bound of the power a busy core draws.
DEFAULT_WATTS_PER_CORE = 12.0
# 1.2 W per TB: Cloud Carbon Footprint's SSD coefficient (1.2 Wh per TB-hour; HDD 0.65), per copy of the
# data (cloudcarbonfootprint.org/docs/methodology, "Storage"). Measured drives agree: a 6 TB hard disk draws
# 7.2-8.8 W, 1.2-1.5 W per TB (Backblaze's drive figures of 2016, quoted at
# sustainability.stackexchange.com/q/6995). Assumed here: one copy. CCF multiplies by the replication factor
# of the storage service, so a deployment keeping three copies sets 3.6.
DEFAULT_WATTS_PER_TB = 1.2
# 250 gCO2e/kWh: assumed, a round figure for the EU-27 average greenhouse-gas intensity of electricity
# generation published by the EEA (indicator "Greenhouse gas emission intensity of electricity generation":
# 281 g CO2e/kWh in 2018, falling since; 2023 was 19 % below 2022). Set the figure of the grid (or the
# supplier contract) the servers actually run on.
DEFAULT_GRID_GCO2E_PER_KWH = 250.0
# PUE 1.0: assumed, counts the IT equipment alone (no cooling or power distribution); a data centre's own
# PUE (1.2-1.6 is often quoted for efficient ones) adds its overhead.
DEFAULT_PUE = 1.0


def _check(name: str, value: float, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, not {value!r}")
    if value < minimum:
        raise InputError(f"{name} must be at least {minimum:g}, not {value:g}")


@dataclass(frozen=True)
class EnergyFactors:
    """The factors of the estimate; defaults as above, refused when negative (PUE below 1 is impossible)."""

    watts_per_core: float = DEFAULT_WATTS_PER_CORE
    watts_per_tb: float = DEFAULT_WATTS_PER_TB
    grid_gco2e_per_kwh: float = DEFAULT_GRID_GCO2E_PER_KWH
    pue: float = DEFAULT_PUE

    def __post_init__(self) -> None:
        _check("watts_per_core", self.watts_per_core, 0.0)
        _check("watts_per_tb", self.watts_per_tb, 0.0)
        _check("grid_gco2e_per_kwh", self.grid_gco2e_per_kwh, 0.0)
        _check("pue", self.pue, 1.0)

    @classmethod
    def from_settings(cls, settings: EnergySettings) -> EnergyFactors:
        """The factors a deployment configured (`energy.*`)."""
        return cls(
            watts_per_core=settings.watts_per_core,
            watts_per_tb=settings.watts_per_tb,
            grid_gco2e_per_kwh=settings.grid_gco2e_per_kwh,
            pue=settings.pue,
        )


@dataclass(frozen=True)
class Usage:
    """What was consumed: CPU time of jobs, and storage held over time (bytes x seconds held)."""

    cpu_seconds: float
    storage_byte_seconds: float

    def __post_init__(self) -> None:
        _check("cpu_seconds", self.cpu_seconds, 0.0)
        _check("storage_byte_seconds", self.storage_byte_seconds, 0.0)


@dataclass(frozen=True)
class Estimate:
    """Energy (kWh) and emissions (g CO2e) of compute and storage, their totals, and how they were made."""

    compute_kwh: float
    storage_kwh: float
    total_kwh: float
    compute_g: float
    storage_g: float
    total_g: float
    factors: EnergyFactors
    method: str


def describe(factors: EnergyFactors) -> str:
    """The method in one paragraph, with the factors used: shown beside every figure."""
    return (
        "Estimate, not a measurement. Compute energy (kWh) = CPU-hours x "
        f"{factors.watts_per_core:g} W per core x PUE {factors.pue:g} / 1000. Storage energy (kWh) = "
        f"terabyte-hours held (1 TB = 10^12 bytes) x {factors.watts_per_tb:g} W per TB x PUE "
        f"{factors.pue:g} / 1000. Emissions (g CO2e) = energy x grid intensity "
        f"{factors.grid_gco2e_per_kwh:g} gCO2e/kWh. Not counted: memory, network, idle servers, and "
        "the manufacture of the hardware."
    )


def estimate(usage: Usage, factors: EnergyFactors) -> Estimate:
    """kWh and g CO2e of `usage` under `factors`."""
    cpu_hours = usage.cpu_seconds / SECONDS_PER_HOUR
    tb_hours = usage.storage_byte_seconds / BYTES_PER_TB / SECONDS_PER_HOUR
    compute_kwh = cpu_hours * factors.watts_per_core * factors.pue / WH_PER_KWH
    storage_kwh = tb_hours * factors.watts_per_tb * factors.pue / WH_PER_KWH
    compute_g = compute_kwh * factors.grid_gco2e_per_kwh
    storage_g = storage_kwh * factors.grid_gco2e_per_kwh
    return Estimate(
        compute_kwh=compute_kwh,
        storage_kwh=storage_kwh,
        total_kwh=compute_kwh + storage_kwh,
        compute_g=compute_g,
        storage_g=storage_g,
        total_g=compute_g + storage_g,
        factors=factors,
        method=describe(factors),
    )
