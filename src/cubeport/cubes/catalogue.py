"""The catalogue of cubes in the database: titles, descriptions, variables with styles, themes.

The data lives in the cube store; the catalogue holds what users edit and search. `register` is called
after every ingestion: it fills in new cubes and new variables and updates extents, but keeps whatever a
user has edited (titles, descriptions, styles). Who may see a cube is not kept here but in the access
policy (`cubeport.auth.policy`), which covers every kind of resource.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from cubeport.cubes.store import CubeInfo, CubeStore
from cubeport.cubes.styles import Style, check_style, default_style
from cubeport.db import Database
from cubeport.db.models import CubeRecord, CubeVariableRecord
from cubeport.errors import InputError, NotFoundError


@dataclass(frozen=True)
class VariableEntry:
    name: str
    dtype: str
    units: str | None
    long_name: str | None
    style: Style


@dataclass(frozen=True)
class CubeEntry:
    """A cube as the catalogue describes it."""

    id: str
    title: str
    description: str
    crs: str
    bbox: tuple[float, float, float, float]
    time_start: datetime | None
    time_end: datetime | None
    time_steps: int
    variables: list[VariableEntry]
    tags: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)

    def variable(self, name: str) -> VariableEntry:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise NotFoundError(
            f"variable {name!r} not found in cube {self.id!r}; variables: {', '.join(v.name for v in self.variables)}"
        )


class Catalogue:
    def __init__(self, db: Database) -> None:
        self.db = db

    def register(self, info: CubeInfo, store: CubeStore) -> CubeEntry:
        """Create or refresh the entry of a cube after a write, keeping user edits."""
        with self.db.session() as session:
            record = session.get(CubeRecord, info.id)
            if record is None:
                record = CubeRecord(
                    id=info.id,
                    title=str(info.attrs.get("title") or info.id)[:256],
                    description=str(info.attrs.get("summary") or info.attrs.get("description") or ""),
                    tags=[],
                    themes=[],
                )
                session.add(record)
            record.crs = info.crs
            record.west, record.south, record.east, record.north = info.bbox
            record.time_start = _parse_time(info.time_start)
            record.time_end = _parse_time(info.time_end)
            record.time_steps = info.dims.get("time", 0)
            record.attrs = info.attrs
            known = {v.name: v for v in record.variables}
            sample = None
            for variable in info.variables:
                if variable.name in known:
                    known[variable.name].dtype = variable.dtype
                    continue
                if sample is None:
                    coarsest = store.open(info.id, level=info.levels - 1)
                    sample = coarsest.isel(time=-1)
                style = default_style(variable.name, sample[variable.name])
                record.variables.append(
                    CubeVariableRecord(
                        name=variable.name,
                        dtype=variable.dtype,
                        units=variable.units,
                        long_name=variable.long_name,
                        colormap=style.colormap,
                        vmin=style.vmin,
                        vmax=style.vmax,
                        norm=style.norm,
                    )
                )
            session.flush()
            return _entry(record)

    def list(self) -> list[CubeEntry]:
        with self.db.session() as session:
            return [_entry(r) for r in session.scalars(select(CubeRecord).order_by(CubeRecord.id))]

    def get(self, cube_id: str) -> CubeEntry:
        with self.db.session() as session:
            return _entry(self._record(session, cube_id))

    def _record(self, session: Session, cube_id: str) -> CubeRecord:
        record = session.get(CubeRecord, cube_id)
        if record is None:
            # worded as the HTTP guard words a cube the caller may not see: the two must not differ
            raise NotFoundError(f"cube {cube_id!r} not found")
        return record

    def update(
        self,
        cube_id: str,
        *,
        title: str | None = None,
        description: str | None = None,
        tags: builtins.list[str] | None = None,  # `list` is the method above in this class
        themes: builtins.list[str] | None = None,
    ) -> CubeEntry:
        """Edit what users read about a cube; the data is not touched."""
        with self.db.session() as session:
            record = self._record(session, cube_id)
            if title is not None:
                if not title.strip():
                    raise InputError("title must not be empty")
                record.title = title[:256]
            if description is not None:
                record.description = description
            if tags is not None:
                record.tags = sorted(set(tags))
            if themes is not None:
                record.themes = sorted(set(themes))
            session.flush()
            return _entry(record)

    def set_style(
        self,
        cube_id: str,
        variable: str,
        *,
        colormap: str | None = None,
        vmin: float | None = None,
        vmax: float | None = None,
        norm: str | None = None,
    ) -> CubeEntry:
        """Change a variable's colour map, value range or norm."""
        with self.db.session() as session:
            record = self._record(session, cube_id)
            target = next((v for v in record.variables if v.name == variable), None)
            if target is None:
                raise NotFoundError(f"variable {variable!r} not found in cube {cube_id!r}")
            new = (
                colormap or target.colormap,
                target.vmin if vmin is None else vmin,
                target.vmax if vmax is None else vmax,
                norm or target.norm,
            )
            check_style(*new)
            target.colormap, target.vmin, target.vmax, target.norm = new
            session.flush()
            return _entry(record)

    def remove(self, cube_id: str) -> None:
        with self.db.session() as session:
            record = session.get(CubeRecord, cube_id)
            if record is not None:
                session.delete(record)


def _parse_time(text: str) -> datetime | None:
    return pd.Timestamp(text).floor("us").to_pydatetime() if text else None


def _entry(record: CubeRecord) -> CubeEntry:
    return CubeEntry(
        id=record.id,
        title=record.title,
        description=record.description,
        crs=record.crs,
        bbox=(record.west, record.south, record.east, record.north),
        time_start=record.time_start,
        time_end=record.time_end,
        time_steps=record.time_steps,
        variables=[
            VariableEntry(v.name, v.dtype, v.units, v.long_name, Style(v.colormap, v.vmin, v.vmax, v.norm))
            for v in record.variables
        ],
        tags=list(record.tags or []),
        themes=list(record.themes or []),
        attrs=dict(record.attrs or {}),
    )
