"""Processing from Python: run a server's processes as jobs, follow them, and open their results.

    >>> from cubeport.client import Processes
    >>> processes = Processes("https://cubes.example.org", api_key="cpk_...")
    >>> processes.describe("temporal-aggregate")["inputs"].keys()
    >>> job = processes.submit("temporal-aggregate", cube="sst", period="month")
    >>> monthly = job.wait().open()        # a progress bar while it runs, then a lazy xarray.Dataset

A cube output opens as an `xarray.Dataset` (read lazily over HTTP, like `open_cube`), a feature collection
as a `GeoDataFrame`, a file is downloaded, a value is returned as it is. Outputs are private to the user
whose key submitted the job. Talks OGC API - Processes; imports nothing of the server.
"""

from __future__ import annotations

import builtins
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

FINAL = ("successful", "failed", "dismissed")


class ProcessClientError(Exception):
    """The server refused a request; the message is the server's explanation, `status` its HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class JobFailed(ProcessClientError):
    """A job ended without results (failed or dismissed); the message is the job's, `job` its status."""

    def __init__(self, message: str, job: dict[str, Any]) -> None:
        super().__init__(message)
        self.job = job


class Processes:
    """The processes of one Cubeport server, as the holder of an API key (or bearer token) may run them."""

    def __init__(
        self, server: str, *, api_key: str | None = None, token: str | None = None, timeout: float = 60.0
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.server = server.rstrip("/")
        self.api_key, self.token = api_key, token
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # -- processes -----------------------------------------------------------------------------------------
    def list(self) -> builtins.list[dict[str, Any]]:
        """The processes you may run: id, title, description, version, keywords."""
        processes: builtins.list[dict[str, Any]] = self._json("GET", "/processes")["processes"]
        return processes

    def describe(self, process_id: str) -> dict[str, Any]:
        """A process's OGC description: `inputs` (each with a JSON Schema) and `outputs`."""
        return self._json("GET", f"/processes/{_segment(process_id)}")

    def submit(self, process_id: str, /, **inputs: Any) -> JobHandle:
        """Start a job; the server checks the inputs first (ProcessClientError, 400 or 404, makes no job)."""
        response = self._request(
            "POST",
            f"/processes/{_segment(process_id)}/execution",
            json={"inputs": inputs},
            headers={"Prefer": "respond-async"},
        )
        status: dict[str, Any] = response.json()
        return JobHandle(self, status["jobID"], status)

    # -- jobs ----------------------------------------------------------------------------------------------
    def jobs(
        self, *, status: str | None = None, process_id: str | None = None, limit: int = 100
    ) -> builtins.list[JobHandle]:
        """Your jobs, newest first (at most `limit`), optionally only those of a status or process."""
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if process_id:
            params["processID"] = process_id
        found = self._json("GET", "/jobs", params=params)["jobs"]
        return [JobHandle(self, j["jobID"], j) for j in found]

    def job(self, job_id: str) -> JobHandle:
        """A handle on a job submitted earlier (e.g. from another session)."""
        return JobHandle(self, job_id, self._json("GET", f"/jobs/{_segment(job_id)}"))

    # -- HTTP ----------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        response = self.http.request(method, path, **options)
        if response.is_error:
            raise ProcessClientError(f"{response.status_code}: {_detail(response)}", response.status_code)
        return response

    def _json(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self._request(method, path, **options).json()
        return answer


class JobHandle:
    """A job on the server. `status()` reads it anew; `info` is the status last read."""

    def __init__(self, client: Processes, job_id: str, info: dict[str, Any] | None = None) -> None:
        self.client, self.id = client, job_id
        self.info: dict[str, Any] = info or {}
        self.path = f"/jobs/{_segment(job_id)}"

    def __repr__(self) -> str:
        return f"<JobHandle {self.id} {self.info.get('processID', '')}: {self.info.get('status', '?')}>"

    def status(self) -> dict[str, Any]:
        """status (accepted, running, successful, failed, dismissed), message, progress (0-100), steps,
        meters (CPU seconds, wall time, peak memory, bytes read and written) and times."""
        self.info = self.client._json("GET", self.path)
        return self.info

    def wait(self, progress: bool = True, *, timeout: float | None = None, poll: float = 1.0) -> JobHandle:
        """Block until the job ends, with a progress bar (tqdm, else rich, else none) unless `progress` is
        False. Returns the handle when successful; raises JobFailed when it failed or was dismissed, and
        TimeoutError (the job goes on) after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _progress_bar(f"{self.info.get('processID', 'job')} {self.id[:8]}") if progress else None
        delay = min(0.2, poll)
        try:
            while True:
                info = self.status()
                if bar is not None:
                    bar.update(int(info.get("progress", 0)), str(info.get("message", "")))
                if info["status"] in FINAL:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"job {self.id} is still {info['status']} after {timeout} s")
                time.sleep(delay)
                delay = min(poll, delay * 1.5)  # quick at first, then every `poll` seconds
        finally:
            if bar is not None:
                bar.close()
        if info["status"] != "successful":
            raise JobFailed(f"job {self.id} {info['status']}: {info.get('message', '')}", info)
        return self

    def logs(self) -> str:
        """The job's log: one line per entry, `2026-12-07T18:40:33Z text`."""
        return self.client._request("GET", f"{self.path}/logs").text

    def results(self) -> dict[str, Any]:
        """Each output by reference (`href`; `cube`, `collection` ids) or, for a value, the value itself.
        ProcessClientError (404) while the job has not succeeded."""
        return self.client._json("GET", f"{self.path}/results")

    def dismiss(self) -> dict[str, Any]:
        """Stop the job (a waiting one at once, a running one within seconds); nothing it made stays."""
        self.info = self.client._json("DELETE", self.path)
        return self.info

    def open(self, output: str = "result") -> Any:
        """An output as Python: a cube as a lazy `xarray.Dataset`, a feature collection as a `GeoDataFrame`,
        a file downloaded into a temporary folder (its `Path`), a value as it is."""
        results = self.results()
        if output not in results:
            raise KeyError(f"job {self.id} has no output {output!r}; outputs: {', '.join(results)}")
        ref = results[output]
        if not isinstance(ref, dict) or "href" not in ref:
            return ref  # a value
        client = self.client
        if "cube" in ref:
            from cubeport.client import open_cube

            return open_cube(client.server, ref["cube"], api_key=client.api_key, token=client.token)
        if "collection" in ref:
            from cubeport.client.features import FeatureClient

            database, _, name = str(ref["collection"]).partition(".")
            features = FeatureClient(client.server, api_key=client.api_key, token=client.token)
            try:
                return features.get_collection(name, database)
            finally:
                features.http.close()
        return self.download(Path(tempfile.mkdtemp(prefix=f"cubeport-{self.id[:8]}-")), output)

    def download(self, path: str | Path, output: str = "result") -> Path:
        """A file output saved to `path` (a folder: under the file's own name). Streamed; written whole."""
        ref = self.results().get(output)
        if not isinstance(ref, dict) or "href" not in ref or "cube" in ref or "collection" in ref:
            raise ProcessClientError(f"job {self.id}'s output {output!r} is not a file")
        target = Path(path)
        with self.client.http.stream("GET", f"{self.path}/results/{_segment(output)}") as response:
            if response.is_error:
                response.read()
                raise ProcessClientError(f"{response.status_code}: {_detail(response)}", response.status_code)
            if target.is_dir():
                target = target / _filename(response, ref.get("title") or output)
            partial = target.with_name(target.name + ".part")
            with partial.open("wb") as file:
                for block in response.iter_bytes():
                    file.write(block)
            partial.replace(target)
        return target


# ------------------------------------------------------------------------------------ helpers


def _segment(value: str) -> str:
    """A path segment as sent: ids cannot climb out of their route."""
    return quote(value, safe="")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    return (
        str(body.get("detail") or body.get("title") or response.text)
        if isinstance(body, dict)
        else response.text
    )


def _filename(response: httpx.Response, fallback: str) -> str:
    match = re.search(r'filename="([^"/\\]+)"', response.headers.get("content-disposition", ""))
    name = match.group(1) if match else Path(fallback).name
    return name if name not in ("", ".", "..") else "result"


class _Bar(Protocol):
    def update(self, percent: int, message: str) -> None: ...
    def close(self) -> None: ...


def _progress_bar(title: str) -> _Bar | None:
    """tqdm (its notebook widget where there is one), else rich, else None: both are optional."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        pass
    else:
        return _TqdmBar(tqdm(total=100, desc=title, unit="%", bar_format="{l_bar}{bar}| {n_fmt}% {postfix}"))
    try:
        from rich.progress import Progress
    except ImportError:
        return None
    return _RichBar(Progress(), title)


class _TqdmBar:
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, percent: int, message: str) -> None:
        self.bar.n = percent
        self.bar.set_postfix_str(message, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class _RichBar:
    def __init__(self, progress: Any, title: str) -> None:
        self.progress = progress
        self.progress.start()
        self.task = progress.add_task(title, total=100)
        self.title = title

    def update(self, percent: int, message: str) -> None:
        self.progress.update(self.task, completed=percent, description=f"{self.title}: {message}")

    def close(self) -> None:
        self.progress.stop()


__all__ = ["JobFailed", "JobHandle", "ProcessClientError", "Processes"]
