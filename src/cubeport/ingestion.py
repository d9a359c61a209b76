"""The ingest use case: product files in, a published, catalogued cube with its products in STAC out.

The CLI, processing jobs and (later) the watchers of delivery folders all call `Ingestion`, so an ingested
cube is always in the catalogue and its input products are always STAC items. The cube layer alone
(`cubes.ingest.plan_ingest` / `run_ingest`) writes data only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from cubeport.cubes.catalogue import Catalogue
from cubeport.cubes.ingest import IngestPlan, plan_ingest, run_ingest
from cubeport.cubes.store import CubeInfo, CubeStore
from cubeport.stac.products import ProductArchive


@dataclass(frozen=True)
class Ingested:
    """A published cube and the ids of the STAC items of its kept products."""

    info: CubeInfo
    products: list[str]

    def summary(self) -> str:
        info = self.info
        return (
            f"published {info.id}: {info.dims.get('time', 0)} time steps, {len(info.variables)} variables, "
            f"{info.levels} levels{', time-series twin' if info.timeseries else ''}"
            f"{f', {len(self.products)} products in STAC' if self.products else ''}"
        )


@dataclass(frozen=True)
class Ingestion:
    """Plan, write, register in the catalogue and keep the products, in that order."""

    cubes: CubeStore
    catalogue: Catalogue
    products: ProductArchive

    def plan(
        self,
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
        """Open and check every input; nothing is written (see `plan_ingest`)."""
        return plan_ingest(
            self.cubes,
            sources,
            cube_id,
            append=append,
            replace=replace,
            update=update,
            variables=variables,
            time_pattern=time_pattern,
            time=time,
        )

    def run(
        self, plan: IngestPlan, *, title: str | None = None, progress: Callable[[int], None] | None = None
    ) -> Ingested:
        """Write the plan (published atomically), then catalogue the cube and keep the products of its new
        steps (and of the steps it updated). A plan with no steps to write writes nothing."""
        if not plan.steps:
            return Ingested(self.cubes.describe(plan.cube_id), [])
        info = run_ingest(self.cubes, plan, progress=progress)
        self.catalogue.register(info, self.cubes)
        if title:
            self.catalogue.update(plan.cube_id, title=title)
        new = set(plan.new_times) | set(plan.updated_times)
        fresh = [f for f in plan.fragments if any(pd.Timestamp(t) in new for t in f.times)]
        kept = self.products.keep(plan.cube_id, fresh, replace=plan.mode == "replace")
        return Ingested(info, kept)

    def __call__(
        self,
        sources: Sequence[str],
        cube_id: str,
        *,
        title: str | None = None,
        progress: Callable[[int], None] | None = None,
        append: bool = False,
        replace: bool = False,
        update: bool = False,
        variables: Sequence[str] | None = None,
        time_pattern: str | None = None,
        time: datetime | None = None,
    ) -> Ingested:
        """Plan and run in one call: the Python API of `cubeport ingest`."""
        plan = self.plan(
            sources,
            cube_id,
            append=append,
            replace=replace,
            update=update,
            variables=variables,
            time_pattern=time_pattern,
            time=time,
        )
        return self.run(plan, title=title, progress=progress)
