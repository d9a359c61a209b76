"""The S3-compatible route `/s3` with real S3 clients: s3fs + xarray, GDAL's /vsis3/ (rasterio), and plain HTTP for
the protocol (ranges, HEAD, paging, prefix/delimiter, S3 XML errors), with the access rules of every route.

The server is a `cubeport serve` process: rasterio's GDAL holds the GIL while it reads over HTTP."""

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import aiobotocore.session
import httpx
import numpy as np
import pytest
import rasterio
import s3fs
import xarray as xr
from helpers import add_users, context_with
from rasterio.errors import RasterioIOError
from services import CubeportProcess

SECRET = "secret-cube"  # only for group syke (mia); leo is in fmi
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture(scope="module")
def served(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("s3route")
    context = context_with(root, data, {"sst": "sst", "olci": "olci", SECRET: "sst"})
    context.policy.set_access("cube", SECRET, public=False, groups=["syke"])
    add_users(context)
    keys = {name: context.auth.create_key(name)[1] for name in ("mia", "leo")}
    server = CubeportProcess(root)
    with httpx.Client(base_url=f"{server.url}/s3", timeout=30) as http:
        yield SimpleNamespace(
            s3=f"{server.url}/s3",
            host=server.url.removeprefix("http://"),
            context=context,
            keys=keys,
            http=http,
        )
    server.stop()
    context.close()


def keyed_session(key: str) -> aiobotocore.session.AioSession:
    """An aiobotocore session that sends a Cubeport API key on every request (as the route's docstring says)."""
    session = aiobotocore.session.AioSession()
    session.register("before-sign.s3", lambda request, **_: request.headers.__setitem__("X-API-Key", key))
    return session


def xml(response: httpx.Response) -> ET.Element:
    assert response.headers["content-type"].startswith("application/xml"), response.text
    return ET.fromstring(response.content)


def text(element: ET.Element, tag: str) -> str | None:
    found = element.find(NS + tag)
    if found is None:
        found = element.find(tag)  # <Error> has no namespace
    return None if found is None else found.text


def listing(
    http: httpx.Client, bucket: str, headers: dict[str, str] | None = None, **params: object
) -> tuple[list[str], list[str], ET.Element]:
    """Keys, common prefixes and the document of one listing page (parameters with `-` spelt `_`)."""
    response = http.get(
        f"/{bucket}", params={k.replace("_", "-"): v for k, v in params.items()}, headers=headers
    )
    assert response.status_code == 200, response.text
    root = xml(response)
    return (
        [text(c, "Key") for c in root.iter(NS + "Contents")],
        [text(p, "Prefix") for p in root.iter(NS + "CommonPrefixes")],
        root,
    )


def pages(http: httpx.Client, bucket: str, **params: object) -> list[list[str]]:
    """The keys and common prefixes of every page of a listing, following NextContinuationToken (ListObjectsV2)
    or NextMarker (ListObjects); at most 200 pages, so that a token that never moves on fails, not hangs."""
    found, after = [], {}
    for _ in range(200):
        keys, prefixes, root = listing(http, bucket, **params, **after)
        found.append(keys + prefixes)
        if text(root, "IsTruncated") == "false":
            return found
        after = (
            {"continuation_token": text(root, "NextContinuationToken")}
            if params.get("list_type") == 2
            else {"marker": text(root, "NextMarker")}
        )
    pytest.fail(f"listing {bucket} {params} did not end")


def s3_error(response: httpx.Response, status: int, code: str) -> ET.Element:
    assert response.status_code == status, (response.status_code, response.text)
    root = xml(response)
    assert root.tag == "Error" and text(root, "Code") == code, response.text
    return root


def test_s3fs_lists_and_xarray_opens_cubes_and_pyramid_levels(served):
    cubes = served.context.cubes
    fs = s3fs.S3FileSystem(anon=True, endpoint_url=served.s3, skip_instance_cache=True)
    assert fs.ls("datasets") == ["datasets/olci.zarr", "datasets/sst.zarr"]  # not the restricted cube
    local = cubes.open("sst")
    names = {path.rsplit("/", 1)[-1] for path in fs.ls("datasets/sst.zarr")}
    assert names == {".zattrs", ".zgroup", ".zmetadata", *map(str, local.variables)}
    levels = cubes.pointer("olci").levels
    assert levels > 2 and fs.ls("pyramids/olci.levels") == [
        f"pyramids/olci.levels/{n}.zarr" for n in range(levels)
    ]
    xr.testing.assert_identical(xr.open_zarr(fs.get_mapper("datasets/sst.zarr")).load(), local.load())
    remote = xr.open_zarr(
        "s3://pyramids/olci.levels/2.zarr", storage_options={"anon": True, "endpoint_url": served.s3}
    )
    level = cubes.open("olci", level=2)
    assert remote.sizes == level.sizes and list(remote.data_vars) == list(level.data_vars)
    xr.testing.assert_identical(
        remote["conc_chl"].isel(time=[0, 4]).load(), level["conc_chl"].isel(time=[0, 4]).load()
    )
    full = xr.open_zarr("s3://datasets/olci.zarr", storage_options={"anon": True, "endpoint_url": served.s3})
    np.testing.assert_array_equal(
        full["kd489"].isel(time=3, lat=slice(400, 520), lon=slice(900, 1010)).values,
        cubes.open("olci")["kd489"].isel(time=3, lat=slice(400, 520), lon=slice(900, 1010)),
    )


def test_gdal_reads_cubes_and_levels_through_vsis3(served):
    cubes = served.context.cubes
    env = {
        "AWS_S3_ENDPOINT": f"{served.host}/s3",
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        "AWS_NO_SIGN_REQUEST": "YES",
        "CPL_VSIL_CURL_NON_CACHED": f"/vsis3/datasets/{SECRET}.zarr",
    }
    sst = cubes.open("sst")["analysed_sst"].values
    with rasterio.Env(**env):
        with rasterio.open('ZARR:"/vsis3/datasets/sst.zarr":/analysed_sst') as src:
            assert (src.count, src.height, src.width) == sst.shape
            np.testing.assert_array_equal(src.read(), sst)  # NaN over land compares equal
        chl = cubes.open("olci", level=3)["conc_chl"]
        with rasterio.open('ZARR:"/vsis3/pyramids/olci.levels/3.zarr":/conc_chl') as src:
            assert (src.count, src.height, src.width) == chl.shape
            np.testing.assert_array_equal(src.read(5), chl.isel(time=4).values)
        with pytest.raises(RasterioIOError):  # anonymous: the restricted cube does not exist
            rasterio.open(f'ZARR:"/vsis3/datasets/{SECRET}.zarr":/analysed_sst')
    with (
        rasterio.Env(**env, GDAL_HTTP_HEADERS=f"X-API-Key: {served.keys['mia']}"),
        rasterio.open(f'ZARR:"/vsis3/datasets/{SECRET}.zarr":/analysed_sst') as src,
    ):
        np.testing.assert_array_equal(src.read(2), cubes.open(SECRET)["analysed_sst"].isel(time=1).values)


def test_range_get_and_head(served):
    http = served.http
    key = "/datasets/sst.zarr/analysed_sst/1.0.0"
    whole = http.get(key)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    size, etag = len(whole.content), whole.headers["etag"]
    assert size > 100 and int(whole.headers["content-length"]) == size
    head = http.head(key)
    assert head.status_code == 200 and head.content == b""
    assert (int(head.headers["content-length"]), head.headers["etag"]) == (size, etag)
    for spec, (start, end) in {
        "bytes=10-19": (10, 20),
        "bytes=-7": (size - 7, size),
        f"bytes={size - 3}-": (size - 3, size),
        f"bytes=5-{size * 2}": (5, size),
    }.items():
        part = http.get(key, headers={"Range": spec})
        assert part.status_code == 206, spec
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
        assert part.content == whole.content[start:end] and int(part.headers["content-length"]) == end - start
    for spec in (f"bytes={size}-", f"bytes={size + 100}-{size + 200}", "bytes=-0"):
        error = s3_error(http.get(key, headers={"Range": spec}), 416, "InvalidRange")
        assert text(error, "ActualObjectSize") == str(size)
    assert http.get(key, headers={"Range": "bytes=9-3"}).content == whole.content  # ignored, as S3 does
    assert http.get(key, headers={"If-None-Match": etag}).status_code == 304
    s3_error(http.get(key, headers={"If-Match": '"other"'}), 412, "PreconditionFailed")
    metadata = http.get("/pyramids/olci.levels/1.zarr/.zmetadata")
    assert metadata.json()["metadata"]["conc_chl/.zarray"]["shape"][0] == 5


def test_listings_page_roll_up_and_agree_with_head(served):
    http = served.http
    everything, prefixes, root = listing(http, "datasets", list_type=2)
    assert prefixes == [] and text(root, "IsTruncated") == "false" and everything == sorted(everything)
    assert int(text(root, "KeyCount")) == len(everything) > 100
    assert {k.split("/", 1)[0] for k in everything} == {"olci.zarr", "sst.zarr"}
    for contents in list(root.iter(NS + "Contents"))[::9]:  # listings and HEAD give the same size and ETag
        head = http.head(f"/datasets/{text(contents, 'Key')}")
        assert head.headers["etag"] == text(contents, "ETag")
        assert head.headers["content-length"] == text(contents, "Size")
    v2 = pages(http, "datasets", list_type=2, max_keys=7)
    assert [k for page in v2 for k in page] == everything and {len(p) for p in v2[:-1]} == {7}
    assert [k for page in pages(http, "datasets", max_keys=50) for k in page] == everything  # v1, markers
    sst = served.context.cubes.open("sst")
    keys, prefixes, _ = listing(http, "datasets", list_type=2, prefix="sst.zarr/", delimiter="/")
    assert keys == ["sst.zarr/.zattrs", "sst.zarr/.zgroup", "sst.zarr/.zmetadata"]
    assert prefixes == sorted(f"sst.zarr/{name}/" for name in sst.variables)
    keys, prefixes, _ = listing(http, "datasets", list_type=2, prefix="sst.zarr/analysed_sst/")
    assert prefixes == [] and keys == [k for k in everything if k.startswith("sst.zarr/analysed_sst/")]
    assert keys[2:] == [f"sst.zarr/analysed_sst/{t}.0.0" for t in range(sst.sizes["time"])]
    # a delimiter listing pages over common prefixes without repeating them
    paged = [
        k
        for page in pages(http, "datasets", list_type=2, prefix="olci.zarr/", delimiter="/", max_keys=2)
        for k in page
    ]
    keys, prefixes, _ = listing(http, "datasets", list_type=2, prefix="olci.zarr/", delimiter="/")
    assert sorted(paged) == sorted(keys + prefixes) and len(paged) == len(set(paged)) > 5
    _, prefixes, _ = listing(http, "pyramids", list_type=2, prefix="olci.levels/", delimiter="/")
    assert prefixes == [f"olci.levels/{n}.zarr/" for n in range(served.context.cubes.pointer("olci").levels)]
    assert listing(http, "timeseries", list_type=2)[:2] == ([], [])  # no cube here has a time-chunked twin


def test_errors_are_s3_xml_and_never_500(served):
    http = served.http
    for response in (http.get("/nope", params={"list-type": 2}), http.get("/nope/sst.zarr/.zgroup")):
        assert text(s3_error(response, 404, "NoSuchBucket"), "BucketName") == "nope"
    assert http.head("/nope").status_code == 404 and http.head("/datasets").status_code == 200
    for key in (
        "sst.zarr/nothing",
        "sst.zarr/analysed_sst/3.0.0",
        "sst.zarr/analysed_sst",
        "sst.zarr/",
        "nothere.zarr/.zgroup",
        "sst.levels/0.zarr/.zgroup",
    ):
        assert text(s3_error(http.get(f"/datasets/{key}"), 404, "NoSuchKey"), "Key") == key
        assert http.head(f"/datasets/{key}").status_code == 404
    s3_error(http.get("/pyramids/olci.levels/99.zarr/.zgroup"), 404, "NoSuchKey")
    s3_error(
        http.get("/datasets", params={"list-type": 2, "continuation-token": "%%%"}), 400, "InvalidArgument"
    )
    s3_error(http.get("/datasets", params={"list-type": 2, "max-keys": -1}), 400, "InvalidArgument")
    s3_error(http.get("/datasets", params={"list-type": 7}), 400, "InvalidArgument")
    for write in (
        http.put("/datasets/sst.zarr/.zgroup", content=b"{}"),
        http.delete("/datasets/sst.zarr/.zgroup"),
        http.post("/datasets", params={"delete": ""}),
        http.put("/newbucket"),
    ):
        if write.request.url.path.endswith("newbucket"):  # an unknown bucket is that first
            s3_error(write, 404, "NoSuchBucket")
            continue
        assert text(s3_error(write, 405, "MethodNotAllowed"), "Method") == write.request.method
        assert write.headers["allow"] == "GET, HEAD"
    assert http.get("/datasets/sst.zarr/.zgroup").status_code == 200  # nothing was written or deleted
    # odd keys and headers: 4xx answers that S3 clients can parse, not crashes of the file system or int()
    odd = [
        http.get("/datasets/sst.zarr/a%00/.zarray"),
        http.head("/datasets/sst.zarr/a%00/.zarray"),
        http.get("/datasets/sst.zarr/" + "é" * 200 + "/.zarray"),
        http.get("/datasets/sst.zarr/time/%C2%B2"),
        http.get("/datasets/%00.zarr/.zgroup"),
        http.get("/datasets/" + "x" * 2000),
        http.get("/datasets", params={"list-type": 2, "prefix": "\x00", "delimiter": "\x01"}),
        http.get("/datasets/sst.zarr/.zattrs", headers=[("Range", b"bytes=\xb2-")]),
    ]
    for response in odd:
        assert response.status_code < 500, (response.request.url, response.text)
        if response.content:
            ET.fromstring(response.content) if "xml" in response.headers["content-type"] else response.json()


def test_restricted_cubes_are_invisible_without_access_and_readable_with_a_key(served):
    http, keys, cubes = served.http, served.keys, served.context.cubes
    anonymous = s3fs.S3FileSystem(anon=True, endpoint_url=served.s3, skip_instance_cache=True)
    assert f"datasets/{SECRET}.zarr" not in anonymous.ls("datasets")
    assert not anonymous.exists(f"datasets/{SECRET}.zarr/.zmetadata")
    with pytest.raises(FileNotFoundError):
        anonymous.cat(f"pyramids/{SECRET}.levels/0.zarr/.zgroup")
    key = f"/datasets/{SECRET}.zarr/analysed_sst/0.0.0"
    for headers in (
        {},
        {"X-API-Key": keys["leo"]},
        {"Authorization": f"Bearer {keys['leo']}"},
    ):  # leo: not syke
        assert listing(http, "datasets", headers, list_type=2, delimiter="/")[1] == [
            "olci.zarr/",
            "sst.zarr/",
        ]
        assert http.head(key, headers=headers).status_code == 404
        assert SECRET in text(s3_error(http.get(key, headers=headers), 404, "NoSuchKey"), "Message")
    for headers in ({"X-API-Key": keys["mia"]}, {"Authorization": f"Bearer {keys['mia']}"}):
        _, prefixes, _ = listing(http, "datasets", headers, list_type=2, delimiter="/")
        assert prefixes == ["olci.zarr/", f"{SECRET}.zarr/", "sst.zarr/"]
        assert http.get(key, headers=headers).status_code == 200
    s3_error(http.get(key, headers={"X-API-Key": "cpk_not_a_key"}), 401, "AccessDenied")
    options = {"anon": True, "endpoint_url": served.s3, "session": keyed_session(keys["mia"])}
    remote = xr.open_zarr(f"s3://datasets/{SECRET}.zarr", storage_options=options)
    xr.testing.assert_identical(remote.load(), cubes.open(SECRET).load())
    # s3fs with AWS credentials signs its requests: refused with a hint, unless a key header comes along
    signing = {
        "key": "AKIAEXAMPLE",
        "secret": "not-checked",
        "endpoint_url": served.s3,
        "skip_instance_cache": True,
    }
    with pytest.raises(PermissionError, match="does not check AWS signatures"):
        s3fs.S3FileSystem(**signing).ls("datasets")
    fs = s3fs.S3FileSystem(**signing, session=keyed_session(keys["mia"]))
    assert fs.ls("") == ["datasets", "pyramids", "timeseries"]  # ListBuckets (anonymous s3fs never asks)
    assert f"datasets/{SECRET}.zarr" in fs.ls("datasets")
    assert fs.cat(f"datasets/{SECRET}.zarr/.zgroup") == cubes.published_object(SECRET, "0.zarr", ".zgroup")
