"""The feature store's backends, and the one to use for a database."""

from __future__ import annotations

from cubeport.db import Database
from cubeport.features.backends.postgis import PostgisFeatureStore
from cubeport.features.backends.sqlite import SqliteFeatureStore
from cubeport.features.store import FeatureStore

__all__ = ["PostgisFeatureStore", "SqliteFeatureStore", "feature_store"]


def feature_store(db: Database) -> FeatureStore:
    """The store for the database's kind: SQLite or PostgreSQL with PostGIS."""
    return PostgisFeatureStore(db) if db.engine.dialect.name == "postgresql" else SqliteFeatureStore(db)
