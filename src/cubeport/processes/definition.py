"""What a process is: a typed Python function with a title, version and keywords, found by its id.

A process is written as a plain function and declared with `@process`:

    @process("temporal-aggregate", title="Temporal aggregation", version="1.0.0", keywords=["time"])
    def temporal_aggregate(job: JobContext, cube: Cube, period: Period = "month") -> xr.Dataset:
        ...

The parameters are the inputs; their JSON Schema comes from the type hints (pydantic), descriptions from
`Annotated[..., Field(description=...)]`. A first parameter typed `JobContext` receives the running job
(log, progress, dismissal). Three input types are references the runner resolves before the call, with the
access of the job's owner: `Cube` (a cube id in, a lazy `xarray.Dataset` out), `Collection` (a feature
collection id in, a `GeoDataFrame` out) and `Files` (URLs or uploaded paths in, local files out).
The return type says what the output is: an `xarray.Dataset` is published as a cube, a `GeoDataFrame` as a
feature collection, a `Path` as a file, anything else is returned as JSON.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, Union, get_args, get_origin, get_type_hints

import geopandas as gpd
import pydantic
import xarray as xr

from cubeport.errors import InputError

PROCESS_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class Dismissed(Exception):
    """Raised inside a job when it was dismissed: the runner stops it and publishes nothing."""


class JobContext(Protocol):
    """What a running process may ask of its job."""

    job_id: str
    owner: str | None
    workdir: Path  # an empty folder of this job's own, removed when the job ends

    def log(self, message: str) -> None:
        """Add a line to the job's log."""

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress of the processing step (0..1); raises `Dismissed` if the job was dismissed."""


@dataclass
class LocalJob:
    """A JobContext for running a process function directly (notebooks, tests): logs kept in a list."""

    workdir: Path
    job_id: str = "local"
    owner: str | None = None
    lines: list[str] = field(default_factory=list)
    fractions: list[float] = field(default_factory=list)

    def log(self, message: str) -> None:
        self.lines.append(message)

    def progress(self, fraction: float, message: str | None = None) -> None:
        self.fractions.append(fraction)
        if message:
            self.lines.append(message)


# ------------------------------------------------------------------------------------ reference inputs


@dataclass(frozen=True)
class Reference:
    """Marks an input that names something the runner opens before the call."""

    kind: Literal["cube", "collection", "files"]
    schema: Mapping[str, Any] = field(compare=False)  # not hashed: `Cube | None` hashes its members


CUBE_ID_SCHEMA = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}
Cube = Annotated[
    xr.Dataset, Reference("cube", {**CUBE_ID_SCHEMA, "description": "id of a cube", "format": "cube-id"})
]
Collection = Annotated[
    gpd.GeoDataFrame,
    Reference(
        "collection",
        {
            "type": "string",
            "pattern": r"^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*$",
            "description": "id of a feature collection, database.name",
            "format": "collection-id",
        },
    ),
]
Files = Annotated[
    list[Path],
    Reference(
        "files",
        {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {"type": "string", "minLength": 1, "maxLength": 2048},
            "description": "http(s) URLs of files, or files uploaded to the server",
        },
    ),
]


def _reference_parts(annotation: Any) -> tuple[Reference | None, bool, list[Any]]:
    """The Reference of a `Cube`-like type (also in `Cube | None` and under `Annotated[..., Field()]`),
    whether it may be None, and the other metadata beside it."""
    optional, extras = False, []
    while True:
        if get_origin(annotation) is Annotated:
            args = get_args(annotation)
            extras += [a for a in args[1:] if not isinstance(a, Reference)]
            reference = next((a for a in args[1:] if isinstance(a, Reference)), None)
            if reference is not None:
                return reference, optional, extras
            annotation = args[0]
        elif get_origin(annotation) in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return None, False, []
            optional, annotation = True, members[0]
        else:
            return None, False, []


def _reference(annotation: Any) -> Reference | None:
    return _reference_parts(annotation)[0]


def _json_annotation(annotation: Any) -> Any:
    """The type pydantic validates for an input: a reference is validated as its id (or list of URLs),
    with the id's pattern enforced; a `Field(description=...)` beside it is kept."""
    reference, optional, extras = _reference_parts(annotation)
    if reference is None:
        return annotation
    schema = dict(reference.schema)
    if reference.kind == "files":
        base: Any = Annotated[list[str], pydantic.Field(min_length=1, max_length=schema["maxItems"])]
    else:
        base = Annotated[str, pydantic.StringConstraints(pattern=schema["pattern"])]
    if optional:
        base = base | None
        schema = {"anyOf": [schema, {"type": "null"}]}
    return Annotated[base, pydantic.WithJsonSchema(schema), *extras]


# ------------------------------------------------------------------------------------ outputs

OutputKind = Literal["cube", "ingest", "collection", "file", "value"]


@dataclass(frozen=True)
class CubeFromFiles:
    """An output of product files that the runner ingests into a new cube, as `cubeport ingest` would (the
    products become its STAC items)."""

    sources: list[Path]
    cube_id: str | None = None  # default: the job's output name
    time_pattern: str | None = None
    variables: list[str] | None = None


def output_kind(annotation: Any) -> OutputKind:
    if annotation is xr.Dataset:
        return "cube"
    if annotation is CubeFromFiles:
        return "ingest"
    if annotation is Path:
        return "file"
    if annotation is gpd.GeoDataFrame:
        return "collection"
    return "value"


OUTPUT_SCHEMAS: dict[OutputKind, dict[str, Any]] = {
    "cube": {"type": "string", "format": "uri", "contentMediaType": "application/vnd+zarr"},
    "ingest": {"type": "string", "format": "uri", "contentMediaType": "application/vnd+zarr"},
    "collection": {"type": "string", "format": "uri", "contentMediaType": "application/geo+json"},
    "file": {"type": "string", "format": "uri", "contentMediaType": "application/octet-stream"},
}


# ------------------------------------------------------------------------------------ the process


@dataclass(frozen=True)
class Process:
    """A declared process: its function, description and the model that validates its inputs."""

    id: str
    function: Callable[..., Any]
    title: str
    description: str
    version: str
    keywords: tuple[str, ...]
    inputs: type[pydantic.BaseModel]
    references: Mapping[str, Reference]
    output: OutputKind
    output_schema: Mapping[str, Any]
    wants_job: bool
    retry_safe: bool = True
    check: Callable[[Mapping[str, Any], Callable[[str], xr.Dataset]], None] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def validate(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Inputs checked against their types; InputError names the first wrong one. References stay ids."""
        try:
            model = self.inputs.model_validate(dict(raw))
        except pydantic.ValidationError as e:
            error = e.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "inputs"
            if error["type"] == "extra_forbidden":
                raise InputError(f"process {self.id!r} has no input {where!r}") from None
            raise InputError(f"input {where!r}: {error['msg']}") from None
        return {name: getattr(model, name) for name in type(model).model_fields}

    def description_document(self) -> dict[str, Any]:
        """The OGC API - Processes description (without links)."""
        schema = self.inputs.model_json_schema(ref_template="#/$defs/{model}")
        defs = schema.get("$defs", {})
        required = set(schema.get("required", []))
        inputs = {}
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            title = prop.pop("title", name.replace("_", " ").capitalize())
            description = prop.pop("description", "")
            if defs:
                prop = _inline(prop, defs)
            inputs[name] = {
                "title": title,
                "description": description,
                "schema": prop,
                "minOccurs": 1 if name in required else 0,
                "maxOccurs": 1,
            }
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "version": self.version,
            "keywords": list(self.keywords),
            "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
            "outputTransmission": ["value", "reference"],
            "inputs": inputs,
            "outputs": {
                "result": {
                    "title": "Result",
                    "description": {
                        "cube": "a cube published in the catalogue, private to the job's owner",
                        "ingest": "a cube built from the files, private to the job's owner, its products in STAC",
                        "collection": "a feature collection, private to the job's owner",
                        "file": "a file kept with the job",
                        "value": "a JSON value",
                    }[self.output],
                    "schema": dict(self.output_schema),
                }
            },
        }


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    """Replace local `$ref`s by their definitions, so each input's schema stands alone."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def process(
    process_id: str,
    *,
    title: str,
    version: str = "1.0.0",
    keywords: tuple[str, ...] | list[str] = (),
    description: str | None = None,
    retry_safe: bool = True,
    check: Callable[[Mapping[str, Any], Callable[[str], xr.Dataset]], None] | None = None,
) -> Callable[[Callable[..., Any]], Process]:
    """Declare a function as a process. `check(inputs, open_cube)` may refuse inputs at submission (e.g.
    an expression naming a variable the cube lacks); `retry_safe` says a job killed mid-way may run again."""
    if not PROCESS_ID.match(process_id):
        raise ValueError(
            f"process id {process_id!r}: lower-case letters, digits and '-', starting with a letter"
        )

    def declare(function: Callable[..., Any]) -> Process:
        hints = get_type_hints(function, include_extras=True)
        parameters = list(inspect.signature(function).parameters.values())
        wants_job = bool(parameters) and _is_job_context(hints.get(parameters[0].name))
        fields: dict[str, Any] = {}
        references: dict[str, Reference] = {}
        for parameter in parameters[1:] if wants_job else parameters:
            annotation = hints.get(parameter.name, Any)
            reference = _reference(annotation)
            if reference is not None:
                references[parameter.name] = reference
            default = ... if parameter.default is inspect.Parameter.empty else parameter.default
            fields[parameter.name] = (_json_annotation(annotation), default)
        model = pydantic.create_model(
            f"{_camel(process_id)}Inputs", __config__=pydantic.ConfigDict(extra="forbid"), **fields
        )
        returned = hints.get("return", Any)
        kind = output_kind(returned)
        schema = OUTPUT_SCHEMAS.get(kind) or pydantic.TypeAdapter(returned).json_schema()
        doc = inspect.getdoc(function) or ""
        return Process(
            id=process_id,
            function=function,
            title=title,
            description=description if description is not None else doc,
            version=version,
            keywords=tuple(keywords),
            inputs=model,
            references=references,
            output=kind,
            output_schema=schema,
            wants_job=wants_job,
            retry_safe=retry_safe,
            check=check,
        )

    return declare


def _is_job_context(annotation: Any) -> bool:
    return annotation is JobContext or getattr(annotation, "__name__", None) == "JobContext"


def _camel(process_id: str) -> str:
    return "".join(part.capitalize() for part in process_id.split("-"))


__all__ = [
    "Collection",
    "Cube",
    "CubeFromFiles",
    "Dismissed",
    "Files",
    "JobContext",
    "LocalJob",
    "Process",
    "process",
]
