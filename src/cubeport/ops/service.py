"""Operations as one object: suites and runs, watchers, delivery targets, the runner, and their status.

The Context builds it; the CLI (`cubeport watch|suites|targets|ops`), the API (`/ops/...`) and the runner use
it. Built-in suites (the sea-ice chain) are installed on first use and may be replaced by an operator's own
definition of the same name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cubeport.db import Database
from cubeport.errors import NotFoundError
from cubeport.ops.delivery import Deliveries
from cubeport.ops.lease import Lease
from cubeport.ops.runner import LEASE, Runner
from cubeport.ops.runs import Runs, now
from cubeport.ops.sealed import Sealer
from cubeport.ops.watchers import Watchers


@dataclass
class Operations:
    runs: Runs
    watchers: Watchers
    deliveries: Deliveries
    folder: Path
    poll_seconds: float = 1.0
    builtin: Mapping[str, str] = field(default_factory=dict)  # suite name: YAML
    environment: Mapping[str, str] | None = None  # of tasks [default: the runner's own]

    @classmethod
    def create(
        cls,
        db: Database,
        secret: bytes,
        folder: Path,
        *,
        poll_seconds: float = 1.0,
        timeout: float = 30.0,
        max_file_bytes: int = 8 * 2**30,
        min_free_bytes: int = 2**30,
        s3_endpoint: str | None = None,
        ca_file: str | None = None,
        builtin: Mapping[str, str] = {},
        environment: Mapping[str, str] | None = None,
    ) -> Operations:
        runs, sealer = Runs(db), Sealer(secret)
        watchers = Watchers(
            db,
            runs,
            sealer,
            staging=folder / "staging",
            max_file_bytes=max_file_bytes,
            min_free_bytes=min_free_bytes,
            timeout=timeout,
            s3_endpoint=s3_endpoint,
            ca_file=ca_file,
        )
        deliveries = Deliveries(db, sealer, timeout=timeout, s3_endpoint=s3_endpoint, ca_file=ca_file)
        operations = cls(runs, watchers, deliveries, folder, poll_seconds, dict(builtin), environment)
        operations.install_builtin()
        return operations

    def install_builtin(self) -> None:
        """Add the built-in suites that are not there yet (an operator's own definition stays)."""
        known = set(self.runs.suite_names())
        for name, definition in self.builtin.items():
            if name not in known:
                self.runs.save_suite(definition)

    def runner(self) -> Runner:
        return Runner(
            self.runs,
            self.folder / "runs",
            environment=self.environment,
            poll_seconds=self.poll_seconds,
            watchers=self.watchers,
            deliveries=self.deliveries,
            variables={"OPS": str(self.folder)},
        )

    def output(self, run_id: str, path: str, try_no: int | None = None) -> str:
        """A task's output (its last try unless `try_no` says which)."""
        run = self.runs.run(run_id)
        task = next((t for t in self.runs.tasks(run_id) if t.path == path), None)
        if task is None:
            raise NotFoundError(f"task {path!r} not found in run {run_id}")
        file = self.runner().output(run, path, try_no or task.try_no)
        return file.read_text(errors="replace") if file.exists() else ""

    def status(self, runs_per_suite: int = 5, deliveries: int = 50) -> dict[str, Any]:
        """What `/ops/status` and `cubeport ops status` show."""
        holder = Lease(self.runs.db, LEASE, "status").holder()
        suites = []
        for name in self.runs.suite_names():
            suite = self.runs.suite(name)
            recent = self.runs.runs(name, limit=runs_per_suite)
            suites.append(
                {
                    "name": name,
                    "title": suite.spec.title,
                    "schedule": {"every": suite.spec.every, "cron": suite.spec.cron},
                    "runs": [
                        {
                            "id": run.id,
                            "cause": run.cause,
                            "variables": run.variables,
                            "created": run.created.isoformat(),
                            "finished": run.finished.isoformat() if run.finished else None,
                            "tree": self.runs.tree(run.id).to_dict(),
                        }
                        for run in recent
                    ],
                }
            )
        return {
            "time": now().isoformat(),
            "runner": {"active": holder is not None, "holder": holder},
            "watchers": [w.to_dict() for w in self.watchers.list()],
            "suites": suites,
            "timeline": self.runs.timeline(now() - dt.timedelta(hours=24)),
            "targets": [t.to_dict() for t in self.deliveries.targets()],
            "deliveries": [d.to_dict() for d in self.deliveries.recent(deliveries)],
        }
