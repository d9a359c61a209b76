"""OGC API - Processes Part 1 (Core, OGC Process Description, JSON, Job list, Dismiss): `/processes` and
`/jobs`. Thin: the core (`cubeport.processes`) checks inputs, queues jobs and runs them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from cubeport.api.deps import JSON_OBJECT_BODY, RawBody, get_context
from cubeport.api.problems import problem
from cubeport.api.security import SIGNED_IN, listing, resource
from cubeport.api.urls import base_url
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.errors import InputError, NotFoundError, PermissionDeniedError
from cubeport.processes.definition import Process
from cubeport.processes.jobs import STATUSES, Job

router = APIRouter(tags=["processes"])
ContextDep = Annotated[Context, Depends(get_context)]
ProcessId = Annotated[str, Path(max_length=64, description="process id")]
JobId = Annotated[str, Path(max_length=36, description="job id")]
REL = "http://www.opengis.net/def/rel/ogc/1.0/"
NOT_READY = "http://www.opengis.net/def/exceptions/ogcapi-processes-1/1.0/result-not-ready"


def _summary(process: Process, base: str) -> dict[str, Any]:
    document = process.description_document()
    summary = {k: v for k, v in document.items() if k not in ("inputs", "outputs")}
    summary["links"] = [
        {"rel": "self", "href": f"{base}/processes/{process.id}", "type": "application/json"},
        {
            "rel": f"{REL}execute",
            "href": f"{base}/processes/{process.id}/execution",
            "type": "application/json",
        },
    ]
    return summary


def _time(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def status_info(job: Job, base: str) -> dict[str, Any]:
    """A job as OGC's statusInfo, with Cubeport's steps, meters and tries beside it."""
    href = f"{base}/jobs/{job.id}"
    links = [{"rel": "self", "href": href, "type": "application/json", "title": "this job"}]
    if job.status == "successful":
        links.append({"rel": f"{REL}results", "href": f"{href}/results", "type": "application/json"})
        links.append(
            {"rel": "item", "href": f"{href}/item", "type": "application/geo+json", "title": "STAC item"}
        )
    links.append({"rel": "logs", "href": f"{href}/logs", "type": "text/plain", "title": "the job's log"})
    links.append({"rel": "process", "href": f"{base}/processes/{job.process_id}", "type": "application/json"})
    return {
        "jobID": job.id,
        "processID": job.process_id,
        "type": "process",
        "status": job.status,
        "message": job.message,
        "created": _time(job.created),
        "started": _time(job.started),
        "finished": _time(job.finished),
        "updated": _time(job.updated),
        "progress": job.progress,
        "owner": job.owner,
        "attempt": job.attempt,
        "steps": [
            {
                "name": s.name,
                "status": s.status,
                "progress": s.progress,
                "started": _time(s.started),
                "finished": _time(s.finished),
                "message": s.message,
            }
            for s in job.steps
        ],
        "meters": job.meters,
        "links": links,
    }


def results_document(job: Job, base: str) -> dict[str, Any]:
    """Each output by reference (cubes, collections, files) or by value."""
    document: dict[str, Any] = {}
    for name, output in job.results.items():
        kind = output.get("kind")
        if kind == "cube":
            cube = output["id"]
            document[name] = {
                "href": f"{base}/datasets/{cube}",
                "type": "application/json",
                "title": f"cube {cube}",
                "cube": cube,
                "zarr": f"{base}/zarr/{cube}/0.zarr",
                "stac": f"{base}/stac/collections/{cube}",
            }
        elif kind == "collection":
            collection = output["id"]
            document[name] = {
                "href": f"{base}/features/collections/{collection}/items",
                "type": "application/geo+json",
                "title": f"collection {collection}",
                "collection": collection,
            }
        elif kind == "file":
            document[name] = {
                "href": f"{base}/jobs/{job.id}/results/{name}",
                "type": "application/octet-stream",
                "title": output.get("name", name),
            }
        else:
            document[name] = output.get("value")
    return document


# ------------------------------------------------------------------------------------ processes


@router.get("/processes", summary="Processes the caller may run (OGC API - Processes)")
def list_processes(
    request: Request, context: ContextDep, principal: Annotated[Principal, Depends(listing("process"))]
) -> dict[str, Any]:
    base = base_url(request)
    return {
        "processes": [_summary(p, base) for p in context.processing.processes(principal)],
        "links": [{"rel": "self", "href": f"{base}/processes", "type": "application/json"}],
    }


@router.get(
    "/processes/{process_id}", summary="A process's description: inputs and outputs with JSON Schemas"
)
def describe_process(
    process_id: ProcessId,
    request: Request,
    context: ContextDep,
    principal: Annotated[Principal, Depends(resource("process", "process_id"))],
) -> dict[str, Any]:
    process = context.processing.process(principal, process_id)
    return {**process.description_document(), "links": _summary(process, base_url(request))["links"]}


@router.post(
    "/processes/{process_id}/execution",
    summary="Run a process: synchronously, or as a job with `Prefer: respond-async`",
    status_code=200,
    openapi_extra=JSON_OBJECT_BODY,
    responses={201: {"description": "the job was created; its status is at `Location`"}},
)
async def execute(
    process_id: ProcessId,
    request: Request,
    raw: RawBody,
    context: ContextDep,
    principal: Annotated[Principal, Depends(resource("process", "process_id"))],
    prefer: Annotated[str | None, Header(description="respond-async for a job")] = None,
) -> Response:
    body = await run_in_threadpool(_execute_body, raw)
    job = await run_in_threadpool(context.processing.submit, principal, process_id, body.get("inputs") or {})
    context.wake_dispatchers()
    base = base_url(request)
    if prefer is None or "respond-async" not in prefer.lower():
        deadline = time.monotonic() + context.settings.processing.sync_seconds
        while time.monotonic() < deadline:
            job = await run_in_threadpool(context.jobs.get, job.id)
            if job.done:
                return _sync_answer(job, base)
            await asyncio.sleep(0.2)
    return JSONResponse(
        status_info(job, base),
        status_code=201,
        headers={"Location": f"{base}/jobs/{job.id}", "Preference-Applied": "respond-async"},
    )


def _execute_body(raw: bytes) -> dict[str, Any]:
    from cubeport.api.deps import json_object

    body = json_object(raw, 'an execute request: {"inputs": {...}}')
    if not isinstance(body.get("inputs", {}), dict):
        raise InputError("inputs must be a JSON object of input name to value")
    return body


def _sync_answer(job: Job, base: str) -> Response:
    if job.status == "successful":
        return JSONResponse(results_document(job, base))
    return problem(
        422, f"job {job.id} {job.status}: {job.message}", job=f"{base}/jobs/{job.id}", jobID=job.id
    )


# ------------------------------------------------------------------------------------ jobs


@router.get("/jobs", summary="Your jobs, newest first (admins: everyone's)")
def list_jobs(
    request: Request,
    context: ContextDep,
    principal: Annotated[Principal, Depends(SIGNED_IN)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    status: Annotated[list[str] | None, Query(max_length=5)] = None,
    process_id: Annotated[list[str] | None, Query(alias="processID", max_length=50)] = None,
) -> dict[str, Any]:
    for value in status or []:
        if value not in STATUSES:
            raise InputError(f"status {value!r} is not one of {', '.join(STATUSES)}")
    jobs, matched = context.processing.jobs_of(
        principal, status=status or [], process_id=process_id or [], limit=limit, offset=offset
    )
    base = base_url(request)
    links = [{"rel": "self", "href": str(request.url), "type": "application/json"}]
    if offset + len(jobs) < matched:
        links.append(
            {
                "rel": "next",
                "href": str(request.url.include_query_params(offset=offset + limit)),
                "type": "application/json",
            }
        )
    return {"jobs": [status_info(j, base) for j in jobs], "numberMatched": matched, "links": links}


JobGuard = Annotated[Principal, Depends(resource("job", "job_id"))]


@router.get("/jobs/{job_id}", summary="A job's status, steps, progress and meters")
def job_status(job_id: JobId, request: Request, context: ContextDep, principal: JobGuard) -> dict[str, Any]:
    return status_info(context.jobs.get(job_id), base_url(request))


@router.delete("/jobs/{job_id}", summary="Dismiss a job: a waiting one at once, a running one within seconds")
def dismiss_job(job_id: JobId, request: Request, context: ContextDep, principal: JobGuard) -> dict[str, Any]:
    job = context.jobs.get(job_id)
    if job.owner != principal.name and not principal.is_admin:
        raise PermissionDeniedError("only the job's owner or an admin may dismiss it")
    job = context.jobs.dismiss(job_id)
    context.wake_dispatchers()
    return status_info(job, base_url(request))


@router.get("/jobs/{job_id}/results", summary="A successful job's outputs, by reference or value")
def job_results(job_id: JobId, request: Request, context: ContextDep, principal: JobGuard) -> Response:
    job = context.jobs.get(job_id)
    if job.status != "successful":
        return problem(
            404, f"job {job_id} has no results: it is {job.status} ({job.message})", type=NOT_READY
        )
    return JSONResponse(results_document(job, base_url(request)))


@router.get(
    "/jobs/{job_id}/results/{name}",
    summary="A file output's bytes",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def job_file(
    job_id: JobId,
    name: Annotated[str, Path(max_length=64)],
    context: ContextDep,
    principal: JobGuard,
) -> Response:
    from cubeport.processes.runner import JOB_OUTPUTS

    job = context.jobs.get(job_id)
    output = job.results.get(name) if job.status == "successful" else None
    if output is None or output.get("kind") != "file":
        raise NotFoundError(f"job {job_id} has no file output {name!r}")
    filename = output["name"]
    data = context.storage.read_bytes(JOB_OUTPUTS, job.id, filename)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private"},
    )


@router.get("/jobs/{job_id}/item", summary="A successful job's outputs as a STAC item")
def job_item(job_id: JobId, request: Request, context: ContextDep, principal: JobGuard) -> dict[str, Any]:
    job = context.jobs.get(job_id)
    if job.status != "successful":
        raise NotFoundError(f"job {job_id} has no outputs yet: it is {job.status}")
    base = base_url(request)
    return job_stac_item(context, job, base)


def job_stac_item(context: Context, job: Job, base: str) -> dict[str, Any]:
    """The outputs of a job as a STAC item: footprint of a cube output (else none), one asset per output."""
    geometry, bbox = None, None
    assets: dict[str, Any] = {}
    for name, ref in results_document(job, base).items():
        output = job.results[name]
        if output.get("kind") == "cube":
            bbox = list(context.catalogue.get(output["id"]).bbox)
            west, south, east, north = bbox
            geometry = {
                "type": "Polygon",
                "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
            }
            assets[name] = {
                "href": ref["zarr"],
                "type": "application/vnd+zarr",
                "roles": ["data"],
                "title": ref["title"],
            }
        elif isinstance(ref, dict) and "href" in ref:
            assets[name] = {
                "href": ref["href"],
                "type": ref["type"],
                "roles": ["data"],
                "title": ref["title"],
            }
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": job.id,
        "geometry": geometry,
        "properties": {
            "datetime": _time(job.finished),
            "created": _time(job.created),
            "processing:software": {"cubeport": job.process_version},
            "cubeport:process": job.process_id,
        },
        "links": [
            {"rel": "self", "href": f"{base}/jobs/{job.id}/item", "type": "application/geo+json"},
            {"rel": "via", "href": f"{base}/jobs/{job.id}", "type": "application/json", "title": "the job"},
        ],
        "assets": assets,
    }
    if bbox is not None:
        item["bbox"] = bbox
    return item


@router.get(
    "/jobs/{job_id}/logs",
    summary="A job's log as text; `follow=true` streams it until the job ends",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def job_logs(
    job_id: JobId,
    context: ContextDep,
    principal: JobGuard,
    follow: Annotated[bool, Query(description="keep streaming while the job runs")] = False,
) -> Response:
    job = await run_in_threadpool(context.jobs.get, job_id)
    if not follow:
        lines = await run_in_threadpool(context.jobs.logs, job.id)
        text = "".join(_line(t, s) for _, t, s in lines)
        return Response(text, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-store"})

    async def stream() -> AsyncIterator[bytes]:
        after, done = 0, False
        while True:
            lines = await run_in_threadpool(context.jobs.logs, job.id, after)
            for line_id, t, s in lines:
                after = line_id
                yield _line(t, s).encode()
            if done:
                return
            done = (await run_in_threadpool(context.jobs.get, job.id)).done  # one more read after the end
            await asyncio.sleep(0.5)

    return StreamingResponse(
        stream(), media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-store"}
    )


def _line(time_: Any, text: str) -> str:
    return f"{_time(time_)} {text}\n"
