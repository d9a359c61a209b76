"""The platform's parts wired from one Settings object: storage, cube store, database, catalogue, auth.

The CLI, the API and notebooks all start from a Context, so they see the same data the same way.
"""

from __future__ import annotations

import os
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING

from cubeport.auth.admin import Administration
from cubeport.auth.authenticator import Authenticator
from cubeport.auth.policy import Policy
from cubeport.basemap import Basemaps
from cubeport.config import Settings, load_settings
from cubeport.cubes.catalogue import Catalogue
from cubeport.cubes.opened import OpenCubes
from cubeport.cubes.store import CubeStore
from cubeport.db import Database
from cubeport.places import Places
from cubeport.storage import Storage

if TYPE_CHECKING:
    from cubeport.features.sharing import FeatureSharing
    from cubeport.features.store import FeatureStore
    from cubeport.ingestion import Ingestion
    from cubeport.ops.service import Operations
    from cubeport.platform.rolling_cache import RollingCache
    from cubeport.processes.executors import Dispatcher
    from cubeport.processes.jobs import JobStore
    from cubeport.processes.registry import ProcessRegistry
    from cubeport.processes.service import Processing
    from cubeport.render.service import TileService
    from cubeport.seaice.publish import Publisher
    from cubeport.stac.federation import SourceRegistry
    from cubeport.stac.products import ProductArchive


class Context:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()

    @cached_property
    def storage(self) -> Storage:
        return Storage.from_settings(self.settings)

    @cached_property
    def cubes(self) -> CubeStore:
        return CubeStore(self.storage, self.settings.layout)

    @cached_property
    def db(self) -> Database:
        db = Database(self.settings.effective_database_url)
        db.upgrade()
        return db

    @cached_property
    def catalogue(self) -> Catalogue:
        return Catalogue(self.db)

    @cached_property
    def open_cubes(self) -> OpenCubes:
        """Cubes kept open between requests (servers); `cubes` opens them afresh (CLI, notebooks)."""
        return OpenCubes(self.cubes)

    @cached_property
    def places(self) -> Places:
        return Places(self.storage)

    @cached_property
    def features(self) -> FeatureStore:
        from cubeport.features.backends import feature_store

        return feature_store(self.db)

    @cached_property
    def sharing(self) -> FeatureSharing:
        from cubeport.features.sharing import FeatureSharing

        return FeatureSharing(self.features, self.policy)

    @cached_property
    def basemaps(self) -> Basemaps:
        return Basemaps(self.storage)

    @cached_property
    def tiles(self) -> TileService:
        # matplotlib and friends load only for servers that draw
        from cubeport.render.service import TileService

        return TileService(self.open_cubes, self.catalogue)

    @cached_property
    def cache(self) -> RollingCache:
        """The rolling cache of remote data (`cache/` under the data root unless `cache.root` says otherwise)."""
        from cubeport.platform.rolling_cache import RollingCache

        return RollingCache.from_settings(self.settings, self.storage, self.db)

    @cached_property
    def secret_key(self) -> bytes:
        """The server's secret (the setting, or the one kept under the data root), read once per process."""
        from cubeport.platform.secret_key import server_secret

        return server_secret(self.settings.secret_key, self.storage)

    @cached_property
    def products(self) -> ProductArchive:
        """The input files of ingestions, kept with their STAC items."""
        from cubeport.stac.products import ProductArchive

        return ProductArchive(self.storage, self.db)

    @cached_property
    def ingestion(self) -> Ingestion:
        """The ingest use case: cube, catalogue entry and STAC products together."""
        from cubeport.ingestion import Ingestion

        return Ingestion(self.cubes, self.catalogue, self.products)

    @cached_property
    def seaice(self) -> Publisher:
        """Processed sea-ice scenes and drift into the ice cube, STAC and the feature store."""
        from cubeport.seaice.publish import Publisher

        return Publisher(self.ingestion, self.features, self.settings.seaice)

    @cached_property
    def ops(self) -> Operations:
        """Suites, watchers, delivery targets and the runner (`ops.folder`, or ops/ under a local data root)."""
        from cubeport.errors import ConfigError
        from cubeport.ops.service import Operations
        from cubeport.seaice.suite import SUITE

        folder = self.settings.ops.folder
        if folder is None:
            if self.storage.is_s3:
                raise ConfigError(
                    "an S3 data root needs a local folder for operations: set CUBEPORT_OPS__FOLDER"
                )
            folder = str(Path(self.storage.root) / "ops")
        ops = self.settings.ops
        return Operations.create(
            self.db,
            self.secret_key,
            Path(folder),
            poll_seconds=ops.poll_seconds,
            timeout=ops.timeout_seconds,
            max_file_bytes=ops.max_file_bytes,
            min_free_bytes=ops.min_free_bytes,
            s3_endpoint=self.settings.s3.endpoint_url,
            ca_file=ops.ca_file,
            builtin={"seaice": SUITE},
            # tasks call the CLI: they see this platform whatever way its settings were given
            environment={
                **os.environ,
                "CUBEPORT_DATA_ROOT": self.settings.data_root,
                "CUBEPORT_DATABASE_URL": self.settings.effective_database_url,
                "CUBEPORT_OPS__FOLDER": folder,
            },
        )

    @cached_property
    def stac_sources(self) -> SourceRegistry:
        from cubeport.stac.federation import SourceRegistry

        return SourceRegistry(self.db)

    @cached_property
    def processes(self) -> ProcessRegistry:
        """Every process offered: entry points `cubeport.processes` and the folder of user processes."""
        from cubeport.processes.registry import ProcessRegistry

        return ProcessRegistry.discover(self.settings.processing.user_processes)

    @cached_property
    def jobs(self) -> JobStore:
        from cubeport.processes.jobs import JobStore

        return JobStore(self.db)

    @cached_property
    def processing(self) -> Processing:
        from cubeport.processes.service import Processing

        return Processing(self.processes, self.jobs, self.policy, self.catalogue, self.cubes, self.features)

    def start_dispatcher(self, only: list[str] | None = None) -> Dispatcher:
        """Run jobs from the queue (all, or `only` these) on the configured executor until `close()`;
        its workers open a Context of their own from these settings."""
        from cubeport.processes.executors import Dispatcher, executor_for

        dispatcher = Dispatcher(self, executor_for(partial(Context, self.settings), self), only=only)
        dispatcher.start()
        self._dispatchers.append(dispatcher)
        return dispatcher

    def stop_dispatcher(self, dispatcher: Dispatcher) -> None:
        dispatcher.close()
        self._dispatchers.remove(dispatcher)

    def wake_dispatchers(self) -> None:
        """Let this process's dispatchers look at the queue now (a job was submitted or dismissed)."""
        for dispatcher in self.__dict__.get("_dispatchers", []):
            dispatcher.wake()

    @cached_property
    def _dispatchers(self) -> list[Dispatcher]:
        return []

    @cached_property
    def auth(self) -> Authenticator:
        return Authenticator(self.db, self.settings.auth)

    @cached_property
    def policy(self) -> Policy:
        return Policy(self.db, default_public=self.settings.auth.default_access == "public")

    @cached_property
    def admin(self) -> Administration:
        return Administration(self.auth, self.policy)

    def refresh(self) -> None:
        """Forget cached access rules, identities and cube pointers, e.g. after another process changed them."""
        if "policy" in self.__dict__:
            self.policy.refresh()
        if "auth" in self.__dict__:
            self.auth.forget_credentials()
        if "open_cubes" in self.__dict__:
            self.open_cubes.refresh()

    def close(self) -> None:
        for dispatcher in list(self.__dict__.get("_dispatchers", [])):
            self.stop_dispatcher(dispatcher)
        if "cache" in self.__dict__:
            self.cache.close()
        if "db" in self.__dict__:
            self.db.dispose()
