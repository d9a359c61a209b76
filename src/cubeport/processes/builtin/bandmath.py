"""Band maths: a new variable computed from a cube's variables by a safe expression (`expressions.py`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any

import xarray as xr
from pydantic import Field

from cubeport.cubes import cf
from cubeport.errors import InputError
from cubeport.processes import expressions
from cubeport.processes.builtin.cubes import as_cube, publishable, time_variables
from cubeport.processes.definition import Cube, JobContext, process
from cubeport.processes.types import NewVariableName

ExpressionText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=expressions.MAX_LENGTH,
        description=f"the formula, e.g. (B08 - B04) / (B08 + B04) or where(chl > 5, chl, nan). {expressions.ALLOWED}",
    ),
]


def namespace(ds: xr.Dataset) -> dict[str, xr.DataArray]:
    """The names an expression may use: the cube's time-dependent variables and its spatial coordinates."""
    names: dict[str, xr.DataArray] = {name: ds[name] for name in time_variables(ds)}
    for dim in cf.spatial_dims(ds):
        names.setdefault(dim, ds[dim])
    return names


def check_band_math(inputs: Mapping[str, Any], open_cube: Callable[[str], xr.Dataset]) -> None:
    """At submission: the expression is allowed and names only variables of the cube (listed if not)."""
    parsed = expressions.parse(inputs["expression"])
    expressions.check_names(parsed, namespace(as_cube(open_cube(inputs["cube"]))))


@process(
    "band-math",
    title="Band maths",
    version="1.0.0",
    keywords=["cube", "expression", "band maths", "index"],
    check=check_band_math,
)
def band_math(
    job: JobContext,
    cube: Annotated[Cube, Field(description="the cube whose variables the expression uses")],
    expression: ExpressionText,
    name: NewVariableName,
    keep_inputs: Annotated[
        bool, Field(description="keep the cube's variables beside the new one (otherwise only the new one)")
    ] = False,
) -> xr.Dataset:
    """A new variable computed pixel by pixel from the cube's variables with an expression such as
    `(B08 - B04) / (B08 + B04)`. Numbers are 64-bit floats; a comparison or and/or/not gives 1 and 0.
    The expression may use the cube's time-dependent variables and its spatial coordinates (lat, lon or
    y, x). Lazy: values are computed when the result is written."""
    parsed = expressions.parse(expression)
    ds = as_cube(cube)
    names = namespace(ds)
    expressions.check_names(parsed, names)
    result = parsed.evaluate(names)
    ydim, xdim = cf.spatial_dims(ds)
    if not {"time", ydim, xdim} <= set(result.dims):
        raise InputError(
            f"the expression gives dims {list(result.dims)}; it must use a time-dependent variable"
        )
    result = result.transpose("time", ydim, xdim).rename(name)
    result.attrs = {"long_name": name, "expression": parsed.text}
    if keep_inputs:
        if name in ds.data_vars:
            raise InputError(
                f"the cube has a variable {name!r}; choose another name or do not keep the inputs"
            )
        out = ds[time_variables(ds)].assign({name: result})
    else:
        out = result.to_dataset()
    job.progress(1.0, f"{name} = {parsed.text}")
    return publishable(out.assign_attrs(ds.attrs), like=ds)


__all__ = ["band_math", "check_band_math", "namespace"]
