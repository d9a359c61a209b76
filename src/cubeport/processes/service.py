"""Processing as the routes, the CLI and the client see it: which processes a caller may run, submitting
jobs with their inputs checked first (no job is made for bad input), and the caller's jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cubeport.auth.policy import Policy
from cubeport.auth.principal import Principal
from cubeport.cubes.catalogue import Catalogue
from cubeport.cubes.store import CubeStore
from cubeport.errors import AuthenticationError, InputError, NotFoundError
from cubeport.features.store import FeatureStore
from cubeport.processes.definition import Process
from cubeport.processes.jobs import Job, JobStore
from cubeport.processes.registry import ProcessRegistry


class Processing:
    def __init__(
        self,
        registry: ProcessRegistry,
        jobs: JobStore,
        policy: Policy,
        catalogue: Catalogue,
        cubes: CubeStore,
        features: FeatureStore,
    ) -> None:
        self.registry, self.jobs, self.policy = registry, jobs, policy
        self.catalogue, self.cubes, self.features = catalogue, cubes, features

    def processes(self, principal: Principal) -> list[Process]:
        return [p for p in self.registry.all() if self.policy.allows(principal, "read", "process", p.id)]

    def process(self, principal: Principal, process_id: str) -> Process:
        """The process, or the same NotFoundError for a hidden one as for a missing one."""
        process = self.registry.get(process_id)
        if not self.policy.allows(principal, "read", "process", process_id):
            raise NotFoundError(f"process {process_id!r} not found")
        return process

    def submit(self, principal: Principal, process_id: str, inputs: Mapping[str, Any]) -> Job:
        """Check everything that can be checked before a job exists, then queue it, private to the caller."""
        process = self.process(principal, process_id)  # first: a hidden process answers as a missing one
        if principal.anonymous or principal.name is None:
            raise AuthenticationError("running a process needs a signed-in user: send an API key or a token")
        values = process.validate(inputs)
        for name, reference in process.references.items():
            value = values.get(name)
            if value is None:
                continue
            if reference.kind == "cube":
                self._check_cube(principal, str(value))
            elif reference.kind == "collection":
                self._check_collection(principal, str(value))
            else:
                for url in value:
                    if not str(url).startswith(("http://", "https://")):
                        raise InputError(f"input {name!r}: {url!r} is not an http(s) URL")
        if process.check is not None:
            process.check(values, lambda cube_id: self.cubes.open(cube_id, dask=True))
        owner = principal.name

        def private(connection: Any, job_id: str) -> None:
            self.policy.restrict_new(connection, "job", job_id, owner_user=owner)

        job = self.jobs.create(
            process.id, process.version, owner, dict(inputs), retry_safe=process.retry_safe, on_create=private
        )
        self.policy.changed("job", job.id)
        self.jobs.log(job.id, f"submitted by {owner}: {process.id} {process.version}")
        return job

    def jobs_of(
        self, principal: Principal, *, status: list[str], process_id: list[str], limit: int, offset: int
    ) -> tuple[list[Job], int]:
        """The caller's jobs (an admin's: everyone's), newest first, and how many match."""
        owner = None if principal.is_admin else principal.name
        if owner is None and not principal.is_admin:
            return [], 0
        return self.jobs.list(owner=owner, status=status, process_id=process_id, limit=limit, offset=offset)

    def _check_cube(self, principal: Principal, cube_id: str) -> None:
        self.catalogue.get(cube_id)  # NotFoundError if missing
        if not self.policy.allows(principal, "read", "cube", cube_id):
            raise NotFoundError(f"cube {cube_id!r} not found")

    def _check_collection(self, principal: Principal, collection_id: str) -> None:
        database, _, name = collection_id.partition(".")
        self.features.get(database, name)
        if not self.policy.allows(principal, "read", "collection", collection_id):
            raise NotFoundError(f"collection {collection_id!r} not found")
