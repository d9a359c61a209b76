"""A real ecFlow server (Debian's ecflow-server) for the tests: its own ECF_HOME in a temporary folder, a free
loopback port, and `ecflow_client` calls against it.

The server is started with a bare environment (no virtualenv on PATH, no Cubeport settings), so a suite's
jobs see only what their ECF_JOB_CMD gives them, as on an operational ecFlow host.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SERVER = shutil.which("ecflow_server") or "/usr/sbin/ecflow_server"  # Debian installs it in /usr/sbin
CLIENT = shutil.which("ecflow_client") or "/usr/bin/ecflow_client"


def ecflow_installed() -> bool:
    return Path(SERVER).exists() and Path(CLIENT).exists()


def ecflow_port() -> int:
    """A free port in ecFlow's allowed range (1024-49151), below Linux's ephemeral ports."""
    for _ in range(100):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for ecflow_server")


@dataclass
class EcflowServer:
    """ecflow_server on loopback; `client(...)` runs ecflow_client against it."""

    port: int = 0
    folder: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    interval: int = 1  # seconds between the server's dependency checks (60 in operations)

    def start(self) -> EcflowServer:
        self.folder = Path(tempfile.mkdtemp(prefix="cubeport-ecflow-"))
        self.port = ecflow_port()
        env = {
            "PATH": "/usr/sbin:/usr/bin:/bin",
            "HOME": str(self.folder),
            "LANG": "C.UTF-8",  # the server refuses to start with an invalid locale
            "ECF_HOME": str(self.folder),
            "ECF_PORT": str(self.port),
        }
        log = self.folder / "server.out"
        self.process = subprocess.Popen(
            [SERVER, f"--port={self.port}", f"--ecfinterval={self.interval}"],
            cwd=self.folder,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while self.client("--ping", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ecflow_server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        self.client("--restart")  # a new server starts HALTED: it would take suites but never run a job
        return self

    def client(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`ecflow_client ARGS --host ... --port ...`, output captured; CalledProcessError if it fails."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        done = subprocess.run(
            [CLIENT, "--host=127.0.0.1", f"--port={self.port}", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        if check and done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
        return done

    def state(self, path: str) -> str:
        """A node's state (unknown, queued, submitted, active, complete, aborted)."""
        return str(self.client("--query", "state", path).stdout).strip()

    def wait_for(self, path: str, states: set[str], timeout: float = 60) -> str:
        """Poll a node until its state is one of `states`; its state, or TimeoutError with the tree's."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(path)
            if state in states:
                return state
            if time.monotonic() > deadline:
                tree = self.client("--get_state", path, check=False).stdout
                raise TimeoutError(f"{path} is {state}, not {sorted(states)} after {timeout} s:\n{tree}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server, then its jobs still running (a job whose server is gone retries for
        ECF_TIMEOUT, 24 h by default): they are in the server's process group."""
        if self.process is not None:
            if self.process.poll() is None:
                self.client("--terminate=yes", check=False)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            self.process.wait(10)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
