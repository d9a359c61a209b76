"""Operations over HTTP (admins and the `operators` group): status, watchers, suites and their runs, operator
actions, delivery targets, Prometheus metrics. Credentials go in and never come back out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from cubeport.api.deps import RawBody, get_context
from cubeport.api.security import OPERATOR
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.errors import InputError
from cubeport.ops.remotes import Credentials
from cubeport.ops.runner import operate
from cubeport.ops.runs import ACTIONS
from cubeport.ops.suites import load_suite

router = APIRouter(prefix="/ops", tags=["operations"])
ContextDep = Annotated[Context, Depends(get_context)]
Operator = Annotated[Principal, Depends(OPERATOR)]
Name = Annotated[str, Path(max_length=64)]
RunId = Annotated[str, Path(max_length=36)]
YAML_BODY: dict[str, Any] = {
    "requestBody": {"content": {"application/yaml": {"schema": {"type": "string"}}}, "required": True}
}


class Secrets(BaseModel):
    username: str | None = Field(None, max_length=256)
    password: str | None = Field(None, max_length=4096, description="password, S3 secret key or hook token")
    private_key: str | None = Field(None, max_length=65536, description="SFTP private key (PEM/OpenSSH)")
    access_key_id: str | None = Field(None, max_length=256, description="S3 access key id")

    def credentials(self) -> Credentials:
        return Credentials(**self.model_dump())


class NewWatcher(BaseModel):
    name: str = Field(max_length=64)
    url: str = Field(max_length=2048, description="ftp://, ftps://, sftp://, s3:// or a folder")
    suite: str = Field("seaice", max_length=64)
    include: str = Field("*", max_length=256)
    interval_seconds: float = Field(900.0, ge=1)
    marker: str | None = Field(None, max_length=64)
    credentials: Secrets | None = None
    host_key: str | None = Field(None, max_length=16384, description="an SFTP server's public key (OpenSSH)")


class NewTarget(BaseModel):
    name: str = Field(max_length=64)
    url: str = Field(
        max_length=2048, description="sftp://, ftp://, ftps://, s3://, a folder, or an http(s) hook"
    )
    products: list[Annotated[str, Field(max_length=256)]] = Field(min_length=1, max_length=64)
    credentials: Secrets | None = None
    host_key: str | None = Field(None, max_length=16384, description="an SFTP server's public key (OpenSSH)")


class NewRun(BaseModel):
    variables: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, max_length=64
    )


class ActionRequest(BaseModel):
    path: str = Field(max_length=512, description="node path, e.g. /seaice/scene/process")
    action: Literal["requeue", "rerun", "run", "suspend", "resume", "kill", "complete"]


@router.get("/status", summary="Watchers, suites with their latest runs, deliveries")
def status(context: ContextDep, _: Operator, runs: Annotated[int, Query(ge=1, le=50)] = 5) -> dict[str, Any]:
    return context.ops.status(runs_per_suite=runs)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics of operations")
def metrics(context: ContextDep, _: Operator) -> Response:
    from cubeport.ops.metrics import exposition

    body, content_type = exposition(context.db)
    return Response(body, media_type=content_type)


@router.get("/watchers", summary="Watchers (credentials: only which fields are set)")
def watchers(context: ContextDep, _: Operator) -> dict[str, Any]:
    return {"watchers": [w.to_dict() for w in context.ops.watchers.list()]}


@router.post("/watchers", status_code=201, summary="Add a watcher")
def add_watcher(body: NewWatcher, context: ContextDep, _: Operator) -> dict[str, Any]:
    watcher = context.ops.watchers.add(
        body.name,
        body.url,
        body.suite,
        include=body.include,
        interval_seconds=body.interval_seconds,
        marker=body.marker,
        credentials=body.credentials.credentials() if body.credentials else None,
        host_key=body.host_key,
    )
    return watcher.to_dict()


@router.delete("/watchers/{name}", status_code=204, summary="Remove a watcher")
def remove_watcher(name: Name, context: ContextDep, _: Operator) -> Response:
    context.ops.watchers.remove(name)
    return Response(status_code=204)


@router.post("/watchers/{name}/resume", summary="Let a paused watcher look again")
def resume_watcher(name: Name, context: ContextDep, _: Operator) -> dict[str, Any]:
    context.ops.watchers.resume(name)
    return context.ops.watchers.get(name).to_dict()


@router.get("/suites", summary="Suites and their latest run's state")
def suites(context: ContextDep, _: Operator) -> dict[str, Any]:
    ops = context.ops
    found = []
    for name in ops.runs.suite_names():
        latest = ops.runs.runs(name, limit=1)
        found.append({"name": name, "state": latest[0].state.value if latest else None})
    return {"suites": found}


@router.put("/suites/{name}", summary="Add or replace a suite (YAML body)", openapi_extra=YAML_BODY)
def put_suite(name: Name, context: ContextDep, _: Operator, raw: RawBody) -> dict[str, Any]:
    definition = raw.decode("utf-8", errors="replace")
    if load_suite(definition).name != name:
        raise InputError(f"the definition's `suite:` must be {name!r}, the name in the URL")
    suite = context.ops.runs.save_suite(definition)
    return {"name": suite.name, "tasks": [t.path for t in suite.tasks()]}


@router.get("/suites/{name}/runs", summary="A suite's runs, newest first")
def suite_runs(
    name: Name, context: ContextDep, _: Operator, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> dict[str, Any]:
    ops = context.ops
    ops.runs.suite(name)
    return {
        "runs": [
            {
                "id": r.id,
                "state": r.state.value,
                "cause": r.cause,
                "variables": r.variables,
                "created": r.created.isoformat(),
                "finished": r.finished.isoformat() if r.finished else None,
            }
            for r in ops.runs.runs(name, limit=limit)
        ]
    }


@router.post("/suites/{name}/runs", status_code=201, summary="Start a run now")
def start_run(name: Name, context: ContextDep, _: Operator, body: NewRun | None = None) -> dict[str, Any]:
    run = context.ops.runs.start(name, body.variables if body else {}, cause="operator")
    return {"id": run.id, "suite": run.suite, "state": run.state.value}


@router.get("/runs/{run_id}", summary="A run's tree: every node's state, try, times and reason")
def run_tree(run_id: RunId, context: ContextDep, _: Operator) -> dict[str, Any]:
    run = context.ops.runs.run(run_id)
    return {
        "id": run.id,
        "suite": run.suite,
        "cause": run.cause,
        "tree": context.ops.runs.tree(run_id).to_dict(),
    }


@router.post("/runs/{run_id}/actions", summary=f"An operator's action on a node: {', '.join(ACTIONS)}")
def act(run_id: RunId, body: ActionRequest, context: ContextDep, _: Operator) -> dict[str, Any]:
    operate(context.ops.runs, run_id, body.path, body.action)
    return context.ops.runs.tree(run_id).to_dict()


@router.get("/runs/{run_id}/output", response_class=PlainTextResponse, summary="A task's output")
def output(
    run_id: RunId,
    context: ContextDep,
    _: Operator,
    path: Annotated[str, Query(max_length=512)],
    try_no: Annotated[int | None, Query(alias="try", ge=1)] = None,
) -> str:
    return context.ops.output(run_id, path, try_no)


@router.get("/targets", summary="Delivery targets (credentials: only which fields are set)")
def targets(context: ContextDep, _: Operator) -> dict[str, Any]:
    return {"targets": [t.to_dict() for t in context.ops.deliveries.targets()]}


@router.post("/targets", status_code=201, summary="Add a delivery target")
def add_target(body: NewTarget, context: ContextDep, _: Operator) -> dict[str, Any]:
    target = context.ops.deliveries.add_target(
        body.name,
        body.url,
        body.products,
        body.credentials.credentials() if body.credentials else None,
        host_key=body.host_key,
    )
    return target.to_dict()


@router.delete("/targets/{name}", status_code=204, summary="Remove a delivery target")
def remove_target(name: Name, context: ContextDep, _: Operator) -> Response:
    context.ops.deliveries.remove_target(name)
    return Response(status_code=204)
