"""A new process package from a template (`cubeport processes new NAME`), ready to edit, test and install.

Insula lets a provider "create the structure from a template"; here the structure is a plain Python
package, because that is how processes reach a platform: `pip install` it where Cubeport runs and the
entry point `cubeport.processes` makes its processes appear. The package holds one example process (a
cube in, a typed parameter, a cube out), a test that runs it on a tiny synthetic cube without a server,
and a README with the commands to try it.

The process lives in `src/<package>/processes.py`, not in `__init__.py`, so that the same file also works
as a user process: the folder loader (`processing.user_processes`) imports every `*.py` of a folder except
those starting with `_`.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from cubeport import __version__
from cubeport.errors import ConflictError, InputError

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
MAX_NAME = 40  # the example's process id, NAME-scale, must stay within a process id's 63 characters


@dataclass(frozen=True)
class NewPackage:
    """What `create_package` wrote: the folder, the importable module, the example process's id."""

    folder: Path
    package: str
    module: str
    process_id: str
    files: tuple[Path, ...]


def check_name(name: str) -> str:
    """The import name of a package NAME (`sea-ice` -> `sea_ice`); InputError says what a name may be."""
    if not NAME.match(name) or len(name) > MAX_NAME:
        raise InputError(
            f"package name {name!r}: lower-case letters, digits and single '-' between them, starting "
            f"with a letter, at most {MAX_NAME} characters (e.g. sea-ice-tools)"
        )
    package = name.replace("-", "_")
    if _importable(package):
        raise InputError(
            f"package name {name!r}: a module {package!r} exists already here; choose a name that does "
            "not hide it"
        )
    return package


def _importable(module: str) -> bool:
    """True for an installed module or package (a folder that merely has the name does not count)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "namespace")


def create_package(name: str, parent: Path) -> NewPackage:
    """Write `parent/name/` from the template; refuses an existing folder rather than overwrite work."""
    package = check_name(name)
    folder = parent / name
    if folder.exists():
        raise ConflictError(f"{folder} exists already; remove it or choose another name or --dir")
    values = {
        "name": name,
        "package": package,
        "process_id": f"{name}-scale",
        "cubeport_version": __version__,
    }
    contents = {
        Path("pyproject.toml"): PYPROJECT,
        Path("README.md"): README,
        Path(".gitignore"): GITIGNORE,
        Path("src", package, "__init__.py"): INIT,
        Path("src", package, "processes.py"): PROCESSES,
        Path("tests", f"test_{package}.py"): TEST,
    }
    folder.mkdir(parents=True)
    written = []
    for relative, template in contents.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_render(template, values), encoding="utf-8")
        written.append(path)
    return NewPackage(folder, package, f"{package}.processes", values["process_id"], tuple(written))


def _render(template: str, values: dict[str, str]) -> str:
    """`{{key}}` replaced by its value (Python's own braces in the templates stay as they are)."""
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    if "{{" in template:
        raise AssertionError(f"template placeholder left: {template[template.index('{{') :][:40]}")
    return template


# ------------------------------------------------------------------------------------ the templates

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]  # 64: editable installs (pip install -e)
build-backend = "setuptools.build_meta"

[project]
name = "{{name}}"
version = "0.1.0"
description = "Processes for Cubeport"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["cubeport>={{cubeport_version}}", "xarray", "pydantic>=2"]

[project.optional-dependencies]
test = ["pytest"]

# Cubeport finds processes through this entry-point group: every @process of the module is offered.
[project.entry-points."cubeport.processes"]
{{package}} = "{{package}}.processes"

[tool.setuptools.packages.find]
where = ["src"]

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["src"]  # the tests run before the package is installed, too
"""

README = """\
# {{name}}

Processes for [Cubeport](https://github.com/cubeport/cubeport). The example process `{{process_id}}`
multiplies one variable of a cube by a factor and publishes the result as a new cube, private to the user
who ran it. Edit `src/{{package}}/processes.py` to make it yours: the type hints and descriptions of the
function's parameters become the process description that clients see (`cubeport processes info`).

## Try it

In the Python environment where Cubeport is installed, in this folder:

```sh
pip install -e ".[test]"     # install the package; its entry point makes the processes known
pytest                       # run the example on a tiny synthetic cube, no server needed
cubeport processes list      # {{process_id}} is listed beside the built-in processes
```

Then run it on a cube of your data root, in this process and waiting for the result:

```sh
cubeport jobs submit {{process_id}} --input cube=CUBE --input variable=VARIABLE --input factor=10 \\
    --as USER --wait
```

or submit it to a running server (`cubeport serve`) with the Python client:

```python
from cubeport.client import Processes
job = Processes("http://localhost:8080", api_key="cpk_...").submit(
    "{{process_id}}", cube="CUBE", variable="VARIABLE", factor=10
)
result = job.wait().open()  # an xarray.Dataset
```

## Without installing

While developing, point a server at the module's folder instead (no reinstall after each edit; restart
the server to reload):

```sh
CUBEPORT_PROCESSING__USER_PROCESSES=$PWD/src/{{package}} cubeport serve
```

## Writing processes

- A process is a function declared with `@process("id", title=..., version=...)`; its docstring is the
  description. Ids are lower-case letters, digits and `-`.
- Parameters are the inputs. `Cube` receives a cube id and gives the function a lazy `xarray.Dataset`;
  `Collection` a feature collection as a `GeoDataFrame`; `Files` a list of downloaded files. Other
  types (numbers, strings, `Literal[...]`, lists, pydantic models) are checked before a job is created;
  describe them with `Annotated[type, Field(description=...)]`.
- The return type says what is published: `xarray.Dataset` a cube, `GeoDataFrame` a feature
  collection, `pathlib.Path` a file, anything else a JSON value.
- A first parameter `job: JobContext` gives `job.log(text)` and `job.progress(fraction)`. Raise
  `cubeport.errors.InputError` for a problem with the inputs: its message is what the user sees.
- Keep results lazy (dask): Cubeport computes and writes them chunk by chunk.
"""

GITIGNORE = """\
__pycache__/
*.egg-info/
.pytest_cache/
build/
dist/
"""

INIT = '''\
"""{{name}}: processes for Cubeport (found through the entry point `cubeport.processes`)."""

from {{package}}.processes import scale

__all__ = ["scale"]
'''

PROCESSES = '''\
"""The processes of {{name}}. Cubeport offers every `@process` of this module (see pyproject.toml)."""

from __future__ import annotations

from typing import Annotated

import xarray as xr
from cubeport.errors import InputError
from cubeport.processes import Cube, JobContext, process
from pydantic import Field


@process("{{process_id}}", title="Scale a variable", version="0.1.0", keywords=["example", "cube"])
def scale(
    job: JobContext,
    cube: Annotated[Cube, Field(description="the cube to read")],
    variable: Annotated[
        str, Field(min_length=1, max_length=128, description="the variable to scale, e.g. analysed_sst")
    ],
    factor: Annotated[
        float, Field(gt=0, le=1e9, description="the factor every value is multiplied by")
    ] = 2.0,
) -> xr.Dataset:
    """A copy of one variable of a cube, multiplied by a factor, as a new cube (variable NAME_scaled)."""
    if variable not in cube.data_vars:
        known = ", ".join(str(name) for name in cube.data_vars)
        raise InputError(f"variable {variable!r} is not in the cube; variables: {known}")
    job.log(f"scaling {variable} by {factor}")
    scaled = cube[variable] * factor  # lazy: Cubeport computes it chunk by chunk when it writes the result
    scaled.attrs = {**cube[variable].attrs, "long_name": f"{variable} x {factor:g}"}
    return scaled.to_dataset(name=f"{variable}_scaled")
'''

TEST = '''\
"""The example process run directly, as a notebook would: a tiny synthetic cube, no server, no data root."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from cubeport.errors import InputError
from cubeport.processes import LocalJob

from {{package}}.processes import scale


@pytest.fixture
def cube() -> xr.Dataset:
    """Three days of a 4 x 5 grid in longitude and latitude, values 0..59."""
    values = np.arange(60, dtype="float32").reshape(3, 4, 5)
    return xr.Dataset(
        {"sst": (("time", "lat", "lon"), values, {"units": "degC"})},
        coords={
            "time": pd.date_range("2024-06-01", periods=3),
            "lat": [54.0, 54.5, 55.0, 55.5],
            "lon": [10.0, 10.5, 11.0, 11.5, 12.0],
        },
    ).chunk({"time": 1})  # lazy, as Cubeport hands cubes to processes


def test_the_variable_is_scaled(tmp_path: Path, cube: xr.Dataset) -> None:
    job = LocalJob(tmp_path)
    result = scale(job, cube=cube, variable="sst", factor=3.0)
    np.testing.assert_array_equal(result["sst_scaled"].values, cube["sst"].values * 3)
    assert result["sst_scaled"].attrs["units"] == "degC"
    assert job.lines == ["scaling sst by 3.0"]


def test_an_unknown_variable_is_named(tmp_path: Path, cube: xr.Dataset) -> None:
    with pytest.raises(InputError, match="'chl' is not in the cube; variables: sst"):
        scale(LocalJob(tmp_path), cube=cube, variable="chl")


def test_inputs_are_checked_before_a_job_is_made() -> None:
    assert scale.validate({"cube": "sst", "variable": "sst"})["factor"] == 2.0
    with pytest.raises(InputError, match="factor"):
        scale.validate({"cube": "sst", "variable": "sst", "factor": -1})
    with pytest.raises(InputError, match="no input 'scale'"):
        scale.validate({"cube": "sst", "variable": "sst", "scale": 2})


def test_the_description_lists_inputs_and_a_cube_output() -> None:
    document = scale.description_document()
    assert document["id"] == "{{process_id}}"
    assert set(document["inputs"]) == {"cube", "variable", "factor"}
    assert document["inputs"]["factor"]["minOccurs"] == 0
    assert document["outputs"]["result"]["schema"]["contentMediaType"] == "application/vnd+zarr"
'''


__all__ = ["NewPackage", "check_name", "create_package"]
