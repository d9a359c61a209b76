"""Finding processes: the `cubeport.processes` entry points (built-ins and installed provider packages)
and a folder of user processes (`processing.user_processes`, one module per file)."""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from cubeport.errors import NotFoundError
from cubeport.processes.definition import Process

ENTRY_POINT_GROUP = "cubeport.processes"
log = logging.getLogger(__name__)


def processes_in(obj: object) -> list[Process]:
    """The processes an entry point or module offers: a Process, or every Process a module defines."""
    if isinstance(obj, Process):
        return [obj]
    if isinstance(obj, ModuleType):
        return [v for v in vars(obj).values() if isinstance(v, Process)]
    return []


def load_folder(folder: Path) -> list[Process]:
    """Import every `*.py` of a folder (not starting with `_`) and collect its processes."""
    found: list[Process] = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        name = f"cubeport_user_processes.{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # pickling a process function by reference needs its module
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # a broken user module must not take the server down
            log.error("user processes %s not loaded: %s", path, e)
            continue
        found.extend(processes_in(module))
    return found


class ProcessRegistry:
    """Every process the platform offers, by id (the first found wins; later duplicates are logged)."""

    def __init__(self, processes: Iterable[Process]) -> None:
        self._by_id: dict[str, Process] = {}
        for process in processes:
            if process.id in self._by_id and self._by_id[process.id] is not process:
                log.warning("process %r is declared twice; the first one is kept", process.id)
                continue
            self._by_id[process.id] = process

    @classmethod
    def discover(cls, user_folder: str | None = None) -> ProcessRegistry:
        found: list[Process] = []
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            try:
                found.extend(processes_in(entry.load()))
            except Exception as e:  # one broken package must not hide the others
                log.error("processes of entry point %s not loaded: %s", entry.name, e)
        if user_folder and Path(user_folder).is_dir():
            found.extend(load_folder(Path(user_folder)))
        return cls(found)

    def ids(self) -> list[str]:
        return sorted(self._by_id)

    def all(self) -> list[Process]:
        return [self._by_id[i] for i in self.ids()]

    def get(self, process_id: str) -> Process:
        try:
            return self._by_id[process_id]
        except KeyError:
            # worded as the HTTP guard words a process the caller may not see
            raise NotFoundError(f"process {process_id!r} not found") from None
