"""What identity and access cost per request: GET /cubes/{id} through a real uvicorn server, anonymous
on a public cube against an API key, an OIDC bearer JWT and a session cookie on a restricted one.

The route reads one catalogue entry, so the auth share is large here; on tile and time-series routes
(heavier work) the same absolute overhead is a smaller share.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA, REPO, environment, percentile, run_and_report, table  # noqa: E402

sys.path.insert(0, str(REPO / "tests"))
from services import OidcProvider  # noqa: E402  (the test OIDC provider, npm oauth2-mock-server)

from cubeport.api.app import create_app  # noqa: E402
from cubeport.config import load_settings  # noqa: E402
from cubeport.context import Context  # noqa: E402

PASSWORD = "benchmark password"


def _serve(app: Any) -> tuple[Any, str]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(dir=args.tmp))
    provider = OidcProvider().start()
    try:
        context = Context(
            load_settings(
                data_root=str(work / "root"),
                auth={
                    "cookie_secure": False,
                    "oidc": [{"name": "idp", "issuer": provider.issuer, "audience": ["cubeport"]}],
                },
            )
        )
        for cube in ("open", "secret"):
            context.ingestion([str(DATA / "cubes/ostia-sst-baltic-3steps.zarr")], cube)
        context.policy.set_access("cube", "secret", public=False, groups=["syke"])
        context.auth.directory.create_user("mia", password=PASSWORD)
        context.auth.directory.create_group("syke")
        context.auth.directory.add_member("syke", "mia")
        key = context.auth.create_key("mia")[1]
        token = provider.token(aud="cubeport", sub="u1", preferred_username="mia", groups=["syke"])
        server, base = _serve(create_app(context))
        clients = {
            name: httpx.Client(base_url=base, headers=headers)
            for name, headers in (
                ("anonymous", {}),
                ("api-key", {"X-API-Key": key}),
                ("oidc-jwt", {"Authorization": f"Bearer {token}"}),
                ("session", {}),
            )
        }
        clients["session"].post("/auth/login", data={"username": "mia", "password": PASSWORD})
        paths = {
            "anonymous": "/cubes/open",
            "api-key": "/cubes/secret",
            "oidc-jwt": "/cubes/secret",
            "session": "/cubes/secret",
        }
        times: dict[str, list[float]] = {name: [] for name in clients}
        for name, client in clients.items():  # warm-up, and proof that each caller really gets the cube
            for _ in range(args.warmup):
                response = client.get(paths[name])
                assert response.status_code == 200, (name, response.text)
        for _ in range(args.rounds):  # interleaved, so that drift hits every case alike
            for name, client in clients.items():
                for _ in range(args.requests):
                    started = time.perf_counter()
                    client.get(paths[name])
                    times[name].append((time.perf_counter() - started) * 1000)
        server.should_exit = True
        for client in clients.values():
            client.close()
        context.close()
    finally:
        provider.stop()
        shutil.rmtree(work, ignore_errors=True)
    base_p50 = percentile(times["anonymous"], 50)
    results = [
        {
            "caller": name,
            "requests": len(t),
            "p50_ms": percentile(t, 50),
            "p95_ms": percentile(t, 95),
            "req_per_s": 1000 * len(t) / sum(t),
            "overhead_p50_ms": percentile(t, 50) - base_p50,
        }
        for name, t in times.items()
    ]
    return {
        "environment": environment(),
        "settings": vars(args) | {"tmp": None, "out": None},
        "results": results,
    }


def report(payload: dict[str, Any]) -> str:
    rows = [
        [r["caller"], r["requests"], r["p50_ms"], r["p95_ms"], r["req_per_s"], r["overhead_p50_ms"]]
        for r in payload["results"]
    ]
    return table(["caller", "requests", "p50 ms", "p95 ms", "req/s (1 client)", "+p50 ms vs anonymous"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per caller and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--tmp", default=None, help="folder for temporary files (default: system temp)")
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for the JSON (default benchmarks/results)"
    )
    run_and_report("auth_overhead", run, report, parser.parse_args(argv))


if __name__ == "__main__":
    main()
