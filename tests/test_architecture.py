"""The import contracts cover the whole package: a new top-level module is either named in the core list of
`.importlinter` (and so kept away from the edge) or is one of the edge modules, and the client's list forbids
every server module. `lint-imports` checks the contracts; this checks that they still name everything."""

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "cubeport"
EDGE = {"cubeport.api", "cubeport.cli", "cubeport.context", "cubeport.demo"}


def _top_level_modules() -> set[str]:
    names = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    names |= {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    return {f"cubeport.{name}" for name in names}


def _contract(name: str, field: str) -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    return set(parser[f"importlinter:contract:{name}"][field].split())


def test_every_module_is_core_or_edge():
    modules = _top_level_modules()
    core = _contract("core-has-no-edge", "source_modules")
    assert core.isdisjoint(EDGE)
    assert modules - EDGE == core, "name each new top-level module in .importlinter's core list"


def test_the_client_may_import_no_server_module():
    forbidden = _contract("client-stands-alone", "forbidden_modules")
    assert _top_level_modules() - {"cubeport.client"} == forbidden
