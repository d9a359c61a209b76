"""S3-compatible read access to the cube stores at `/s3` (path style, like xcube server's `/s3` route), so that
s3fs, xarray, zarr and GDAL/rasterio read cubes straight from Cubeport, with the access checks of every route.

Buckets (`cubes/objects.py`): `datasets` (`{cube}.zarr/...`, full resolution), `pyramids`
(`{cube}.levels/{n}.zarr/...`) and `timeseries` (`{cube}.zarr/...`, the time-chunked twin). Operations:
ListBuckets, ListObjectsV2 and ListObjects (prefix, delimiter, max-keys, continuation-token / marker,
encoding-type=url), HeadBucket, GetObject and HeadObject (one byte range, If-Match, If-None-Match). Errors
are S3 XML (`<Error><Code>NoSuchKey</Code>...`), never problem JSON, so S3 clients understand them. Only
published data is visible, exactly as on `/zarr`.

Credentials: connect anonymously and send the usual Cubeport credentials as a header (`X-API-Key`, or
`Authorization: Bearer ...`); without them a caller sees the public cubes, as on every route. A restricted
cube is invisible to callers without access (404 NoSuchKey, and absent from listings), and a bad key is a
401. Cubeport does not check AWS signatures (it holds no AWS secrets): a request signed with
`AWS4-HMAC-SHA256` (or presigned) and no API key is refused with 403 AccessDenied saying how to connect,
rather than treated as anonymous, which would silently hide the cubes the signer expected to see. With an
API key header the signature is ignored.

    import aiobotocore.session, xarray as xr
    options = {"anon": True, "endpoint_url": f"{server}/s3"}
    cube = xr.open_zarr("s3://datasets/my-cube.zarr", storage_options=options)  # public cubes
    session = aiobotocore.session.AioSession()  # restricted cubes: the key goes on every request
    session.register("before-sign.s3", lambda request, **_: request.headers.__setitem__("X-API-Key", key))
    cube = xr.open_zarr("s3://datasets/my-cube.zarr", storage_options={**options, "session": session})
    # with zarr 3, pass storage_options rather than s3fs.S3FileSystem(..., session=session).get_mapper(...):
    # zarr re-creates a mapper's file system from its JSON form, which cannot hold the session. Anonymous
    # s3fs never asks for the bucket list (`ls("")` is []); it does with key="any", secret="any" and the session.

    # GDAL / rasterio: AWS_S3_ENDPOINT=host:port/s3 AWS_HTTPS=NO AWS_VIRTUAL_HOSTING=FALSE
    #   AWS_NO_SIGN_REQUEST=YES [GDAL_HTTP_HEADERS="X-API-Key: cpk_..."]  (GDAL caches 404s in the process:
    #   CPL_VSIL_CURL_NON_CACHED=/vsis3/datasets/my-cube.zarr after reading without the key)
    rasterio.open('ZARR:"/vsis3/datasets/my-cube.zarr":/conc_chl')
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Annotated, Any, Union
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from cubeport.api.deps import get_context
from cubeport.api.problems import STATUS_OF
from cubeport.api.ranges import UnsatisfiableRange, byte_range, content_range
from cubeport.api.security import OPEN, cache_scope, listing, resource, visible_cubes
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.cubes import objects
from cubeport.errors import (
    AuthenticationError,
    CubeportError,
    InputError,
    LimitError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    ThrottledError,
    UnavailableError,
)

log = logging.getLogger("cubeport.api")
NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
REGION = "us-east-1"
MAX_KEYS = 1000
# S3 error codes of the domain errors; the status codes stay those of every other route (problems.py)
CODE_OF: dict[type[CubeportError], str] = {
    LimitError: "InvalidRequest",
    InputError: "InvalidArgument",
    AuthenticationError: "AccessDenied",
    PermissionDeniedError: "AccessDenied",
    NotFoundError: "NoSuchKey",
    ThrottledError: "SlowDown",
    StorageError: "ServiceUnavailable",
    UnavailableError: "ServiceUnavailable",
}
ContextDep = Annotated[Context, Depends(get_context)]


class S3Error(Exception):
    """An S3 error answer: status, code (NoSuchBucket, InvalidRange, ...), message and extra elements."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: str
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.headers = headers or {}


class S3Route(APIRoute):
    """Answers every error of the route, its guard included, as S3 XML, and refuses AWS signatures."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def s3_handler(request: Request) -> Response:
            try:
                _check_request(request)
                return await handler(request)
            except Exception as exc:  # every answer of an S3 route is S3, failures included
                return _error_response(request, exc)

        return s3_handler


router = APIRouter(prefix="/s3", tags=["s3"], route_class=S3Route)


def _check_request(request: Request) -> None:
    bucket = request.path_params.get("bucket")
    if bucket is not None and bucket not in objects.BUCKETS:  # the buckets are no secret: check before guards
        raise S3Error(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist; buckets: " + ", ".join(objects.BUCKETS),
            BucketName=bucket,
        )
    signed = request.headers.get("authorization", "").startswith(("AWS4-", "AWS "))
    presigned = "X-Amz-Signature" in request.query_params or "Signature" in request.query_params
    if (signed or presigned) and not request.headers.get("x-api-key"):
        raise S3Error(
            403,
            "AccessDenied",
            "Cubeport does not check AWS signatures: connect anonymously (s3fs anon=True, GDAL "
            "AWS_NO_SIGN_REQUEST=YES) and send an API key in the X-API-Key header for restricted cubes",
        )


def _error_response(request: Request, exc: Exception) -> Response:
    if isinstance(exc, S3Error):
        error = exc
    elif isinstance(exc, CubeportError):
        status = next((s for cls, s in STATUS_OF.items() if isinstance(exc, cls)), 500)
        code = next((c for cls, c in CODE_OF.items() if isinstance(exc, cls)), "InternalError")
        error = S3Error(status, code, str(exc))
        if isinstance(exc, NotFoundError) and "key" in request.path_params:
            error.extra["Key"] = request.path_params["key"]
        if status >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
    elif isinstance(exc, RequestValidationError):
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "header"))
        error = S3Error(400, "InvalidArgument", f"{where}: {first.get('msg', 'invalid request')}")
    elif isinstance(exc, StarletteHTTPException):
        error = S3Error(exc.status_code, "InvalidRequest", str(exc.detail))
    else:
        log.exception("%s %s failed", request.method, request.url.path)
        error = S3Error(500, "InternalError", "internal error; the server log has the details")
    headers = {**error.headers, "x-amz-request-id": uuid.uuid4().hex[:16].upper()}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer realm="cubeport"'
    if isinstance(exc, ThrottledError):
        headers["Retry-After"] = str(exc.retry_after)
    if request.method == "HEAD":  # a HEAD answer has no body; S3 clients read the status
        return Response(status_code=error.status, headers=headers)
    fields: Fields = [
        ("Code", error.code),
        ("Message", error.message),
        *error.extra.items(),
        ("Resource", request.url.path),
        ("RequestId", headers["x-amz-request-id"]),
    ]
    return _xml("Error", fields, status=error.status, headers=headers, namespace=False)


# -- XML -------------------------------------------------------------------------------------------------
Fields = list[tuple[str, Union[str, int, bool, datetime, None, "Fields"]]]
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(
    root: str,
    fields: Fields,
    status: int = 200,
    headers: dict[str, str] | None = None,
    namespace: bool = True,
) -> Response:
    element = ET.Element(root, {"xmlns": NAMESPACE} if namespace else {})
    _add(element, fields)
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element)
    return Response(body, status_code=status, media_type="application/xml", headers=headers)


def _add(parent: ET.Element, fields: Fields) -> None:
    for tag, value in fields:
        child = ET.SubElement(parent, tag)
        if isinstance(value, list):
            _add(child, value)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif isinstance(value, datetime):
            child.text = (
                value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
            )
        elif value is not None:
            # echoed keys and prefixes may hold characters XML 1.0 cannot carry ("%00" in a path): replace
            # them, or the whole answer would be unreadable (encoding-type=url lists such keys exactly)
            child.text = _NOT_XML.sub("\ufffd", str(value))


# -- routes ----------------------------------------------------------------------------------------------
@router.get(
    "",
    summary="S3 ListBuckets: the buckets of the cube stores",
    dependencies=[Depends(OPEN)],
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
@router.get("/", include_in_schema=False, dependencies=[Depends(OPEN)], response_class=Response)
def list_buckets() -> Response:
    """OPEN: the bucket names are constants of the layout and say nothing about cubes."""
    created = datetime(2024, 1, 1, tzinfo=UTC)
    buckets: Fields = [("Bucket", [("Name", name), ("CreationDate", created)]) for name in objects.BUCKETS]
    return _xml(
        "ListAllMyBucketsResult",
        [("Owner", [("ID", "cubeport"), ("DisplayName", "cubeport")]), ("Buckets", buckets)],
    )


@router.head("/{bucket}", summary="S3 HeadBucket", dependencies=[Depends(OPEN)], response_class=Response)
def head_bucket(bucket: Annotated[str, Path(max_length=64)]) -> Response:
    """OPEN: it only says whether a bucket name is one of the constant three (checked by `S3Route`)."""
    return Response(headers={"x-amz-bucket-region": REGION})


@router.get(
    "/{bucket}",
    summary="S3 ListObjectsV2 (list-type=2) or ListObjects: the cubes the caller may read",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
)
@router.get("/{bucket}/", include_in_schema=False, response_class=Response)
def list_objects(
    request: Request,
    bucket: Annotated[str, Path(max_length=64)],
    context: ContextDep,
    principal: Annotated[Principal, Depends(listing("cube"))],
    list_type: Annotated[str | None, Query(alias="list-type", max_length=8)] = None,
    prefix: Annotated[str, Query(max_length=1024)] = "",
    delimiter: Annotated[str, Query(max_length=16)] = "",
    max_keys: Annotated[int, Query(alias="max-keys", ge=0)] = MAX_KEYS,
    continuation_token: Annotated[str | None, Query(alias="continuation-token", max_length=2048)] = None,
    start_after: Annotated[str, Query(alias="start-after", max_length=1024)] = "",
    marker: Annotated[str, Query(max_length=1024)] = "",
    encoding_type: Annotated[str | None, Query(alias="encoding-type", max_length=8)] = None,
) -> Response:
    if "location" in request.query_params:  # GetBucketLocation, asked by some clients first
        return _xml("LocationConstraint", [])
    if list_type not in (None, "1", "2"):
        raise S3Error(400, "InvalidArgument", f"unknown list-type {list_type!r}; use 2 (or 1)")
    if encoding_type not in (None, "url"):
        raise S3Error(400, "InvalidArgument", "Invalid Encoding Method specified in Request; use url")
    v2 = list_type == "2"
    after = (_token(continuation_token) if continuation_token else start_after) if v2 else marker
    pointers = {}
    for entry in visible_cubes(context, principal):
        with contextlib.suppress(NotFoundError):  # deleted since
            pointers[entry.id] = context.open_cubes.pointer(entry.id)
    page = objects.list_bucket(
        context.cubes, bucket, pointers, prefix, delimiter, after, min(max_keys, MAX_KEYS)
    )

    def text(key: str) -> str:
        return quote(key, safe="/") if encoding_type == "url" else key

    fields: Fields = [("Name", bucket), ("Prefix", text(prefix))]
    if delimiter:
        fields.append(("Delimiter", text(delimiter)))
    fields.append(("MaxKeys", min(max_keys, MAX_KEYS)))
    if encoding_type:
        fields.append(("EncodingType", encoding_type))
    if v2:
        fields.append(("KeyCount", len(page.objects) + len(page.prefixes)))
        if continuation_token:
            fields.append(("ContinuationToken", continuation_token))
        elif start_after:
            fields.append(("StartAfter", text(start_after)))
    else:
        fields.append(("Marker", text(marker)))
    fields.append(("IsTruncated", page.truncated))
    if page.truncated and page.last is not None:
        fields.append(
            ("NextContinuationToken", _token_of(page.last)) if v2 else ("NextMarker", text(page.last))
        )
    fields += [
        (
            "Contents",
            [
                ("Key", text(o.key)),
                ("LastModified", o.modified),
                ("ETag", o.etag),
                ("Size", o.size),
                ("StorageClass", "STANDARD"),
            ],
        )
        for o in page.objects
    ]
    fields += [("CommonPrefixes", [("Prefix", text(p))]) for p in page.prefixes]
    return _xml("ListBucketResult", fields, headers={"Cache-Control": "private, max-age=2"})


OBJECT_ROUTE = "/{bucket}/{key:path}"
OBJECT_GUARD = [Depends(resource("cube", "key", id_of=objects.cube_of_key))]


@router.get(
    OBJECT_ROUTE,
    summary="S3 GetObject (HEAD: HeadObject)",
    response_class=Response,
    dependencies=OBJECT_GUARD,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {"description": "a range"}},
)
def get_object(
    request: Request,
    bucket: Annotated[str, Path(max_length=64)],
    key: Annotated[str, Path(max_length=1024)],
    context: ContextDep,
    range_: Annotated[str | None, Header(alias="range", max_length=256)] = None,
    if_match: Annotated[str | None, Header(alias="if-match", max_length=1024)] = None,
    if_none_match: Annotated[str | None, Header(alias="if-none-match", max_length=1024)] = None,
) -> Response:
    cube_id = objects.cube_of_key(key)  # the cube the guard checked
    pointer = objects.pointer_of(context.cubes, cube_id)
    store, inner = objects.locate(bucket, key, pointer)
    found = objects.stat(context.cubes, cube_id, pointer, store, inner)
    metadata = inner.rsplit("/", 1)[-1] in objects.METADATA
    scope = cache_scope(context, "cube", cube_id)
    headers = {
        "ETag": found.etag,
        "Last-Modified": format_datetime(found.modified, usegmt=True),
        "Accept-Ranges": "bytes",
        # metadata may change with an append; chunks of a published step never do
        "Cache-Control": f"{scope}, max-age={5 if metadata else 3600}",
    }
    if if_match and not _matches(if_match, found.etag):
        raise S3Error(
            412,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            Condition="If-Match",
        )
    if if_none_match and _matches(if_none_match, found.etag):
        return Response(status_code=304, headers=headers)
    span = _byte_range(range_, found.size)
    start, end = span or (0, found.size)
    if span:
        headers["Content-Range"] = content_range(start, end, found.size)
    headers["Content-Length"] = str(end - start)
    kind = "application/json" if metadata else "application/octet-stream"
    status = 206 if span else 200
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=kind)
    data = objects.read(context.cubes, cube_id, pointer, store, inner, start, end)
    headers["Content-Length"] = str(len(data))
    return Response(data, status_code=status, headers=headers, media_type=kind)


# HEAD shares the GET route's code; one OpenAPI operation documents both (no duplicate operation id)
router.add_api_route(
    OBJECT_ROUTE,
    get_object,
    methods=["HEAD"],
    include_in_schema=False,
    response_class=Response,
    dependencies=OBJECT_GUARD,
)


def read_only(request: Request) -> Response:
    """PutObject, DeleteObject, CreateBucket and the like: S3's own MethodNotAllowed, not a problem JSON.
    Open: it answers every caller the same 405 and reads nothing."""
    raise S3Error(
        405,
        "MethodNotAllowed",
        "The S3 interface of Cubeport is read-only: cubes are written by `cubeport ingest`",
        headers={"Allow": "GET, HEAD"},
        Method=request.method,
        ResourceType="OBJECT" if "key" in request.path_params else "BUCKET",
    )


for _path in ("/{bucket}", "/{bucket}/", OBJECT_ROUTE):
    router.add_api_route(
        _path,
        read_only,
        methods=["PUT", "POST", "DELETE", "PATCH"],
        include_in_schema=False,
        response_class=Response,
        dependencies=[Depends(OPEN)],
    )


def _token_of(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _token(token: str) -> str:
    try:  # strict: a token that is not one of ours is an error, not silently the start of the bucket
        key = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode()
        if not key or _token_of(key) != token:
            raise ValueError(token)
        return key
    except (binascii.Error, UnicodeError, ValueError):
        raise S3Error(400, "InvalidArgument", "The continuation token provided is incorrect") from None


def _matches(header: str, etag: str) -> bool:
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags or etag.strip('"') in tags


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The shared parser, with S3's InvalidRange (416) for a range past the end."""
    try:
        return byte_range(header, size)
    except UnsatisfiableRange as exc:
        raise S3Error(
            416,
            "InvalidRange",
            "The requested range is not satisfiable",
            {"Content-Range": f"bytes */{size}"},
            RangeRequested=exc.header,
            ActualObjectSize=str(size),
        ) from None
