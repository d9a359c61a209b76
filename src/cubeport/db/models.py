"""Tables of the platform. Later capabilities add their own models here and a migration beside them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class CubeRecord(Base):
    """A cube in the catalogue: what users see of it, editable without rewriting its data."""

    __tablename__ = "cubes"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    crs: Mapped[str] = mapped_column(Text)
    west: Mapped[float] = mapped_column(Float)
    south: Mapped[float] = mapped_column(Float)
    east: Mapped[float] = mapped_column(Float)
    north: Mapped[float] = mapped_column(Float)
    time_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    time_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    time_steps: Mapped[int] = mapped_column(default=0)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    access: Mapped[str] = mapped_column(String(16), default="public")  # public | restricted
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)

    variables: Mapped[list["CubeVariableRecord"]] = relationship(
        back_populates="cube", cascade="all, delete-orphan", order_by="CubeVariableRecord.name"
    )
    groups: Mapped[list["CubeGroupRecord"]] = relationship(cascade="all, delete-orphan")


class CubeVariableRecord(Base):
    """A variable of a cube with its style (colour map and value range)."""

    __tablename__ = "cube_variables"

    cube_id: Mapped[str] = mapped_column(ForeignKey("cubes.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    dtype: Mapped[str] = mapped_column(String(32))
    units: Mapped[str | None] = mapped_column(String(64))
    long_name: Mapped[str | None] = mapped_column(String(256))
    colormap: Mapped[str] = mapped_column(String(64), default="viridis")
    vmin: Mapped[float] = mapped_column(Float, default=0.0)
    vmax: Mapped[float] = mapped_column(Float, default=1.0)
    norm: Mapped[str] = mapped_column(String(8), default="lin")  # lin | log | cat

    cube: Mapped[CubeRecord] = relationship(back_populates="variables")


class CubeGroupRecord(Base):
    """A group allowed to see a restricted cube (enforced by the identity layer)."""

    __tablename__ = "cube_groups"

    cube_id: Mapped[str] = mapped_column(ForeignKey("cubes.id", ondelete="CASCADE"), primary_key=True)
    group: Mapped[str] = mapped_column(String(128), primary_key=True)
