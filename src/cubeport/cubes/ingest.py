"""Ingestion: product files in, a published cube out.

`plan_ingest` opens and checks every input before anything is written (so `--dry-run` can print the plan
and a bad file is reported by name with nothing published); `run_ingest` writes the plan's time slabs
through the cube store, which publishes atomically. This layer writes data only: the platform's ingest
(catalogue, STAC products) is `cubeport.ingestion.Ingestion`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from cubeport.cubes import cf
from cubeport.cubes.readers import Fragment, open_fragment
from cubeport.cubes.store import CubeInfo, CubeStore, check_cube_id, check_same_grid
from cubeport.errors import ConflictError, InputError

SLAB_BYTES = 256 * 2**20  # time steps are written in slabs of at most this size (at least one step)


@dataclass
class IngestPlan:
    """What an ingestion would write, found by opening (not reading) every input."""

    cube_id: str
    mode: str  # create, replace, append or update
    fragments: list[Fragment]
    variables: list[str]
    new_times: list[pd.Timestamp]
    skipped_times: list[pd.Timestamp] = field(default_factory=list)
    updated_times: list[pd.Timestamp] = field(default_factory=list)  # steps the cube has, replaced
    input_bytes: int = 0

    @property
    def grid(self) -> str:
        ds = self.fragments[0].dataset
        ydim, xdim = cf.spatial_dims(ds)
        return f"{ydim}={ds.sizes[ydim]} {xdim}={ds.sizes[xdim]} {cf.crs_name(cf.crs_of(ds))}"

    def summary(self) -> str:
        lines = [
            f"cube:       {self.cube_id} ({self.mode})",
            f"inputs:     {len(self.fragments)} ({self.input_bytes / 2**20:.1f} MiB)",
            f"variables:  {', '.join(self.variables)}",
            f"grid:       {self.grid}",
            f"new steps:  {len(self.new_times)}"
            + (
                f" ({self.new_times[0].isoformat()} .. {self.new_times[-1].isoformat()})"
                if self.new_times
                else ""
            ),
        ]
        if self.skipped_times:
            lines.append(f"skipped:    {len(self.skipped_times)} steps the cube already has")
        if self.updated_times:
            lines.append(f"updated:    {len(self.updated_times)} steps the cube has, replaced")
        return "\n".join(lines)

    @property
    def steps(self) -> int:
        """How many time steps running the plan writes."""
        return len(self.new_times) + len(self.updated_times)


def plan_ingest(
    store: CubeStore,
    sources: Sequence[str],
    cube_id: str,
    *,
    append: bool = False,
    replace: bool = False,
    update: bool = False,
    variables: Sequence[str] | None = None,
    time_pattern: str | None = None,
    time: datetime | None = None,
) -> IngestPlan:
    """Open and check every input; InputError names the first bad one. Nothing is written.

    `append` adds the inputs' new time steps and skips the ones the cube has; `update` adds the new ones and
    replaces the ones the cube has (reprocessed products, a daily mosaic that grows)."""
    check_cube_id(cube_id)
    if not sources:
        raise InputError("no input given")
    if time is not None and len(sources) > 1:
        raise InputError("--time sets one time for one input; for many inputs use --time-pattern")
    if sum((append, replace, update)) > 1:
        raise InputError("--append, --update and --replace exclude each other")
    exists = store.exists(cube_id)
    if (append or update) and not exists:
        flag = "--append" if append else "--update"
        raise InputError(
            f"cannot {flag[2:]}: cube {cube_id!r} does not exist (leave out {flag} to create it)"
        )
    if exists and not (append or replace or update):
        raise ConflictError(
            f"cube {cube_id!r} exists; use --append to add time steps, --update to also replace the ones it "
            "has, or --replace to rebuild it"
        )

    fragments = [open_fragment(str(s), time_pattern, time) for s in sources]
    chosen = _select_variables(fragments, variables)
    fragments = [Fragment(f.source, f.dataset[chosen + _static_vars(f.dataset, chosen)]) for f in fragments]
    fragments.sort(key=lambda f: f.times[0] if f.times.size else np.datetime64("NaT"))
    for fragment in fragments[1:]:
        check_same_grid(fragments[0].dataset, fragment.dataset, fragment.source)
    _check_times_across(fragments)

    new, skipped = [pd.Timestamp(t) for f in fragments for t in f.times], []
    if append or update:
        checker = store.append_checker(cube_id)
        fresh: set[np.datetime64] = set()
        for fragment in fragments:
            checker.check_compatible(fragment.dataset, fragment.source)
            fresh.update(checker.new_times(fragment.dataset))
        skipped = [t for t in new if t.to_datetime64() not in fresh]
        new = [t for t in new if t.to_datetime64() in fresh]
    return IngestPlan(
        cube_id=cube_id,
        mode="append" if append else "update" if update else ("replace" if exists else "create"),
        fragments=fragments,
        variables=chosen,
        new_times=new,
        skipped_times=[] if update else skipped,
        updated_times=skipped if update else [],
        input_bytes=sum(_size_of(f.source) for f in fragments),
    )


def run_ingest(store: CubeStore, plan: IngestPlan, progress: Callable[[int], None] | None = None) -> CubeInfo:
    """Write the plan; `progress(n)` is called after every slab with the number of steps it held."""
    updated = {t.to_datetime64() for t in plan.updated_times}
    for fragment in plan.fragments:  # each replaced step is published on its own, before the new ones
        for t in fragment.times:
            if t in updated:
                with store.update(plan.cube_id) as writer:
                    writer.write(fragment.dataset.sel(time=[t]), fragment.source)
                if progress:
                    progress(1)
    if not plan.new_times:
        return store.describe(plan.cube_id)
    context = (
        store.append(plan.cube_id)
        if plan.mode in ("append", "update")
        else store.create(plan.cube_id, replace=plan.mode == "replace")
    )
    with context as writer:
        for fragment in plan.fragments:
            for slab in _slabs(fragment.dataset):
                writer.write(slab, fragment.source)
                if progress:
                    progress(slab.sizes["time"])
    return store.describe(plan.cube_id)


def _select_variables(fragments: list[Fragment], wanted: Sequence[str] | None) -> list[str]:
    first = fragments[0].dataset
    ydim, xdim = cf.spatial_dims(first)
    available = [str(v) for v in first.data_vars if {"time", ydim, xdim} <= set(first[v].dims)]
    chosen = list(wanted) if wanted else available
    for fragment in fragments:
        have = {str(v) for v in fragment.dataset.data_vars}
        missing = [v for v in chosen if v not in have]
        if missing:
            raise InputError(
                f"{fragment.source}: unknown variable {missing[0]!r}; available: {', '.join(sorted(have))}"
            )
    return chosen


def _static_vars(ds: xr.Dataset, chosen: list[str]) -> list[str]:
    return [str(v) for v in ds.data_vars if v not in chosen and "time" not in ds[v].dims]


def _check_times_across(fragments: list[Fragment]) -> None:
    seen: dict[np.datetime64, str] = {}
    for fragment in fragments:
        for t in fragment.times:
            if t in seen:
                raise InputError(
                    f"{fragment.source}: time {pd.Timestamp(t).isoformat()} is also in {seen[t]}"
                )
            seen[t] = fragment.source
    all_times = np.concatenate([f.times for f in fragments])
    cf.check_time_axis(np.sort(all_times), "inputs")


def _slabs(ds: xr.Dataset) -> Iterator[xr.Dataset]:
    per_step = (
        sum(
            v.dtype.itemsize * int(np.prod([ds.sizes[d] for d in v.dims if d != "time"]))
            for v in ds.data_vars.values()
            if "time" in v.dims
        )
        or 1
    )
    steps = max(1, SLAB_BYTES // per_step)
    for start in range(0, ds.sizes["time"], steps):
        yield ds.isel(time=slice(start, start + steps))


def _size_of(path: str) -> int:
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else 0


__all__ = ["IngestPlan", "plan_ingest", "run_ingest"]
