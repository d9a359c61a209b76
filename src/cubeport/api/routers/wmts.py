"""WMTS 1.0.0: capabilities, RESTful and KVP GetTile, one layer per cube variable with a time dimension,
in the Web Mercator, CRS84 and TM35FIN tile matrix sets (what QGIS, OpenLayers and ArcGIS read)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from cubeport.api.deps import get_context
from cubeport.api.routers.datasets import iso_times
from cubeport.api.routers.tiles import png_response
from cubeport.api.security import authorize, client_address, listing, resource, visible_cubes
from cubeport.api.urls import base_url
from cubeport.auth.principal import Principal
from cubeport.context import Context
from cubeport.errors import InputError, NotFoundError
from cubeport.render.tms import TILE_MATRIX_SETS, tile_matrix_set

router = APIRouter(prefix="/wmts", tags=["wmts"])
ContextDep = Annotated[Context, Depends(get_context)]
NS = {
    "": "http://www.opengis.net/wmts/1.0",
    "ows": "http://www.opengis.net/ows/1.1",
    "xlink": "http://www.w3.org/1999/xlink",
}
SUPPORTED_CRS = {
    "WebMercatorQuad": "urn:ogc:def:crs:EPSG::3857",
    "WorldCRS84Quad": "urn:ogc:def:crs:OGC:1.3:CRS84",
    "TM35FIN": "urn:ogc:def:crs:EPSG::3067",
}
XML = "application/xml"


def _el(parent: ET.Element, tag: str, text: Any = None, **attrs: str) -> ET.Element:
    prefix, _, name = tag.rpartition(":")
    element = ET.SubElement(parent, f"{{{NS[prefix]}}}{name}", {_attr(k): v for k, v in attrs.items()})
    if text is not None:
        element.text = str(text)
    return element


def _attr(name: str) -> str:
    return f"{{{NS['xlink']}}}href" if name == "xlink_href" else name


def capabilities_response(request: Request, context: Context, principal: Principal) -> Response:
    # the layers listed depend on the caller: clients (QGIS's network cache) must not answer one caller from
    # another's copy
    return Response(
        capabilities(context, principal, base_url(request)),
        media_type=XML,
        headers={"Cache-Control": "private, no-cache", "Vary": "Authorization, X-API-Key, Cookie"},
    )


def capabilities(context: Context, principal: Principal, base: str) -> bytes:
    """The capabilities document with every variable of every cube the caller may see."""
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    root = ET.Element(f"{{{NS['']}}}Capabilities", {"version": "1.0.0"})
    identification = _el(root, "ows:ServiceIdentification")
    _el(identification, "ows:Title", "Cubeport WMTS")
    _el(identification, "ows:ServiceType", "OGC WMTS")
    _el(identification, "ows:ServiceTypeVersion", "1.0.0")
    metadata = _el(root, "ows:OperationsMetadata")
    for operation in ("GetCapabilities", "GetTile"):
        get = _el(
            _el(_el(_el(metadata, "ows:Operation", name=operation), "ows:DCP"), "ows:HTTP"),
            "ows:Get",
            xlink_href=f"{base}/wmts/kvp?",
        )
        _el(_el(_el(get, "ows:Constraint", name="GetEncoding"), "ows:AllowedValues"), "ows:Value", "KVP")
    contents = _el(root, "Contents")
    for entry in visible_cubes(context, principal):
        cube_id, cube = entry.id, context.tiles.levels(entry.id)
        times = iso_times(cube.times)
        for variable in entry.variables:
            layer = _el(contents, "Layer")
            _el(layer, "ows:Title", f"{entry.title}: {variable.long_name or variable.name}")
            west, south, east, north = entry.bbox
            box = _el(layer, "ows:WGS84BoundingBox")
            _el(box, "ows:LowerCorner", f"{west} {south}")
            _el(box, "ows:UpperCorner", f"{east} {north}")
            _el(layer, "ows:Identifier", f"{cube_id}.{variable.name}")
            style = _el(layer, "Style", isDefault="true")
            _el(style, "ows:Identifier", "default")
            _el(layer, "Format", "image/png")
            dimension = _el(layer, "Dimension")
            _el(dimension, "ows:Identifier", "Time")
            _el(dimension, "UOM", "ISO8601")
            _el(dimension, "Default", times[-1] if times else "current")
            for time in times:
                _el(dimension, "Value", time)
            for name in TILE_MATRIX_SETS:
                _el(_el(layer, "TileMatrixSetLink"), "TileMatrixSet", name)
            _el(
                layer,
                "ResourceURL",
                format="image/png",
                resourceType="tile",
                template=f"{base}/wmts/1.0.0/tile/{cube_id}.{variable.name}/default/{{Time}}/{{TileMatrixSet}}/"
                "{TileMatrix}/{TileRow}/{TileCol}.png",
            )
    for name in TILE_MATRIX_SETS:
        tms = tile_matrix_set(name)
        matrix_set = _el(contents, "TileMatrixSet")
        _el(matrix_set, "ows:Identifier", name)
        _el(matrix_set, "ows:SupportedCRS", SUPPORTED_CRS[name])
        for zoom in range(tms.minzoom, min(tms.maxzoom, 20) + 1):
            matrix = tms.matrix(zoom)
            element = _el(matrix_set, "TileMatrix")
            _el(element, "ows:Identifier", zoom)
            _el(element, "ScaleDenominator", repr(matrix.scaleDenominator))
            _el(element, "TopLeftCorner", " ".join(repr(float(v)) for v in matrix.pointOfOrigin))
            for tag, value in (
                ("TileWidth", matrix.tileWidth),
                ("TileHeight", matrix.tileHeight),
                ("MatrixWidth", matrix.matrixWidth),
                ("MatrixHeight", matrix.matrixHeight),
            ):
                _el(element, tag, value)
    document: bytes = ET.tostring(root, xml_declaration=True, encoding="UTF-8")
    return document


def cube_of(layer: str) -> str:
    return layer.partition(".")[0]


def _layer(context: Context, layer: str) -> tuple[str, str]:
    """(cube, variable) of a layer `cube.variable`. The cube is looked up first: a layer of a missing cube is
    not found as the cube, as the guard answers for a cube the caller may not see, whatever follows the dot."""
    cube_id, dot, variable = layer.partition(".")
    context.tiles.entry(cube_id)
    if not dot or not variable:
        raise NotFoundError(f"layer {layer!r} unknown; layers are named CUBE.VARIABLE (see the capabilities)")
    return cube_id, variable


def _tile(
    request: Request,
    context: Context,
    layer: str,
    tms_name: str,
    zoom: int,
    row: int,
    col: int,
    time: str | None,
) -> Response:
    """A tile of a layer whose cube the route's guard has let the caller read."""
    cube_id, variable = _layer(context, layer)
    tile = context.tiles.tile(cube_id, variable, tms_name=tms_name, z=zoom, x=col, y=row, time=time)
    return png_response(request, context, cube_id, tile)


@router.get(
    "/1.0.0/WMTSCapabilities.xml",
    summary="WMTS capabilities (RESTful)",
    response_class=Response,
    responses={200: {"content": {XML: {}}}},
)
def rest_capabilities(
    request: Request, context: ContextDep, principal: Annotated[Principal, Depends(listing("cube"))]
) -> Response:
    return capabilities_response(request, context, principal)


@router.get(
    "/1.0.0/tile/{layer}/{style}/{time}/{tms}/{zoom}/{row}/{col}.png",
    summary="A WMTS tile (RESTful)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    dependencies=[Depends(resource("cube", "layer", id_of=cube_of))],
)
def rest_tile(
    request: Request,
    context: ContextDep,
    layer: Annotated[str, Path(max_length=260)],
    style: Annotated[str, Path(max_length=32)],
    time: Annotated[str, Path(max_length=64)],
    tms: Annotated[str, Path(max_length=32)],
    zoom: Annotated[int, Path(ge=0, le=30)],
    row: Annotated[int, Path(ge=0)],
    col: Annotated[int, Path(ge=0)],
) -> Response:
    return _tile(request, context, layer, tms, zoom, row, col, time)


@router.get("/kvp", summary="WMTS in key-value pairs: GetCapabilities and GetTile", response_class=Response)
def kvp(
    request: Request, context: ContextDep, principal: Annotated[Principal, Depends(listing("cube"))]
) -> Response:
    """Both operations on one route: capabilities list what the caller may see (the listing guard), and a
    tile is authorised here, with the same policy function the resource guard calls."""
    params = {k.lower(): v for k, v in request.query_params.items()}
    operation = params.get("request", "")
    if params.get("service", "WMTS").upper() != "WMTS":
        raise InputError("SERVICE must be WMTS")
    if operation == "GetCapabilities":
        return capabilities_response(request, context, principal)
    if operation != "GetTile":
        raise InputError(f"REQUEST {operation!r} unknown; use GetCapabilities or GetTile")
    try:
        zoom, row, col = int(params["tilematrix"]), int(params["tilerow"]), int(params["tilecol"])
        layer, tms_name = params["layer"], params["tilematrixset"]
    except KeyError as exc:
        raise InputError(f"GetTile needs {exc.args[0].upper()}") from None
    except ValueError:
        raise InputError("TILEMATRIX, TILEROW and TILECOL must be integers") from None
    if params.get("format", "image/png") != "image/png":
        raise InputError("FORMAT must be image/png")
    authorize(context, principal, "cube", cube_of(layer), "read", client_address(request))
    return _tile(request, context, layer, tms_name, zoom, row, col, params.get("time"))
