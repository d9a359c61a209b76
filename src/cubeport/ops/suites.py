"""Suites: small trees of tasks with triggers, limits, tries and a schedule, as ecFlow has them.

A suite is written in YAML (or built in, like the sea-ice suite)::

    suite: seaice
    every: 900                       # a new run every 15 min (or `cron: "*/15 * * * *"`); leave out for
    variables: {CUBEPORT: cubeport}  #   runs started by a watcher only
    limits: {scenes: 2}
    nodes:
      - task: validate
        command: "%CUBEPORT% seaice validate %DELIVERY%"
      - family: process
        trigger: validate == complete
        inlimit: scenes
        nodes:
          - task: chain
            command: "%CUBEPORT% seaice process %DELIVERY%"
            tries: 3
            timeout: 1800

Names and trigger expressions follow ecFlow: a trigger names sibling nodes (or `../x`, `/suite/x`) and
compares their state with `==`/`eq` or `!=`/`ne`, combined with `and`, `or`, `not` and parentheses, so the
same text works in an exported ecFlow suite. Variables are inherited down the tree and substituted as
`%NAME%` into commands (a run adds its own, such as `DELIVERY`).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

import yaml
from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cubeport.errors import InputError

NAME = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
_NAME = re.compile(f"^{NAME}$")
_VARIABLE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")
MAX_NODES = 500  # a suite is a small tree; checked before anything is built


class NodeState(StrEnum):
    """ecFlow's node states (suspended is a separate flag, as there)."""

    unknown = "unknown"
    queued = "queued"
    submitted = "submitted"
    active = "active"
    complete = "complete"
    aborted = "aborted"


# ecFlow's NodeState.hpp: a family shows the most significant state of its children
_SIGNIFICANCE = {
    NodeState.unknown: 0,
    NodeState.complete: 1,
    NodeState.queued: 2,
    NodeState.submitted: 3,
    NodeState.active: 4,
    NodeState.aborted: 5,
}


def most_significant(states: list[NodeState]) -> NodeState:
    """A family's state from its children's: aborted > active > submitted > queued > complete > unknown."""
    return max(states, key=_SIGNIFICANCE.__getitem__, default=NodeState.unknown)


# -- definitions, as written -----------------------------------------------------------------------------
class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger: str | None = Field(None, description="ecFlow-style expression, e.g. 'fetch == complete'")
    inlimit: str | None = Field(None, description="a limit of the suite this node takes a token of")
    variables: dict[str, str] = Field(default_factory=dict)

    @field_validator("trigger")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_trigger(value)
        return value

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"variable name {name!r}: use letters, digits and '_'")
        return value


class TaskSpec(_Node):
    """A task runs one command (no shell: its words after `%VAR%` substitution), or a process as a job for a
    user (`cubeport jobs submit PROCESS --input ... --as USER --wait`: inputs checked, outputs published as
    the process says, the job in the user's list)."""

    task: str = Field(pattern=f"^{NAME}$")
    command: str | None = Field(None, min_length=1, max_length=4096)
    process: str | None = Field(None, max_length=64, description="a process id (`cubeport processes list`)")
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="the process's inputs (%VAR% in strings)"
    )
    user: str | None = Field(None, max_length=128, description="the user a process's job runs for")
    tries: int = Field(1, ge=1, le=20, description="runs on abort before it stays aborted (ECF_TRIES)")
    timeout: float | None = Field(None, gt=0, description="seconds before a run is killed and aborted")

    @model_validator(mode="after")
    def _one_kind(self) -> TaskSpec:
        if (self.command is None) == (self.process is None):
            raise ValueError("a task has either `command` or `process`")
        if self.process is not None and not self.user:
            raise ValueError("a process task needs `user`, whom its job runs for")
        return self

    @property
    def name(self) -> str:
        return self.task

    def words(self) -> list[str]:
        """The command's words before `%VAR%` substitution."""
        if self.command is not None:
            return shlex.split(self.command)
        assert self.process is not None and self.user is not None
        words = ["%CUBEPORT%", "jobs", "submit", self.process]
        for name, value in self.inputs.items():
            words += ["--input", f"{name}={value if isinstance(value, str) else json.dumps(value)}"]
        return [*words, "--as", self.user, "--wait"]


class FamilySpec(_Node):
    family: str = Field(pattern=f"^{NAME}$")
    nodes: list[Annotated[Union[TaskSpec, FamilySpec], Field(union_mode="left_to_right")]] = Field(  # noqa: UP007
        min_length=1
    )

    @property
    def name(self) -> str:
        return self.family


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: str = Field(pattern=f"^{NAME}$")
    title: str = ""
    variables: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, int] = Field(default_factory=dict, description="token counts by limit name")
    every: float | None = Field(None, ge=60, description="seconds between scheduled runs")
    cron: str | None = Field(None, description="a cron schedule for runs, e.g. '*/15 * * * *'")
    nodes: list[Annotated[Union[TaskSpec, FamilySpec], Field(union_mode="left_to_right")]] = Field(  # noqa: UP007
        min_length=1
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not croniter.is_valid(value):
            raise ValueError(f"not a cron schedule: {value!r} (five fields, e.g. '*/15 * * * *')")
        return value

    @field_validator("limits")
    @classmethod
    def _limits(cls, value: dict[str, int]) -> dict[str, int]:
        for name, tokens in value.items():
            if not _NAME.match(name) or tokens < 1:
                raise ValueError(f"limit {name!r}: a name of letters, digits and '_' and at least 1 token")
        return value

    @model_validator(mode="after")
    def _schedule(self) -> SuiteSpec:
        if self.every is not None and self.cron is not None:
            raise ValueError("give `every` or `cron`, not both")
        return self


Spec = TaskSpec | FamilySpec


# -- the checked tree ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """A node of a checked suite, with its absolute path (/suite/family/task)."""

    path: str
    spec: Spec
    parent: str  # the parent's path ("" for the suite's top nodes' parent, which is the suite)
    children: tuple[str, ...] = ()

    @property
    def is_task(self) -> bool:
        return isinstance(self.spec, TaskSpec)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Suite:
    """A checked suite: every path known, every trigger and limit resolved."""

    spec: SuiteSpec
    nodes: dict[str, Node] = field(default_factory=dict)  # by path, parents before children

    @property
    def name(self) -> str:
        return self.spec.suite

    @property
    def path(self) -> str:
        return f"/{self.spec.suite}"

    def tasks(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.is_task]

    def ancestors(self, path: str) -> list[Node]:
        """The families above `path`, nearest first."""
        found = []
        node = self.nodes[path]
        while node.parent != self.path:
            node = self.nodes[node.parent]
            found.append(node)
        return found

    def variables(self, path: str, extra: Mapping[str, str] = {}) -> dict[str, str]:
        """Variables seen at `path`: the suite's, then each family's down to it, then the run's (`extra`)."""
        merged = {"SUITE": self.name, "CUBEPORT": "cubeport", **self.spec.variables}
        for node in reversed([self.nodes[path], *self.ancestors(path)]):
            merged.update(node.spec.variables)
        merged.update(extra)
        merged["TASK"] = self.nodes[path].name
        return merged

    def command(self, path: str, extra: Mapping[str, str] = {}) -> list[str]:
        """The task's command as words, `%VAR%` substituted; InputError names an unknown variable."""
        spec = self.nodes[path].spec
        assert isinstance(spec, TaskSpec)
        known = self.variables(path, extra)

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in known:
                raise InputError(f"{path}: variable %{name}% is not set (set it in the suite or the run)")
            return known[name]

        # split first: a value with spaces or quotes stays one word, and nothing is ever a shell
        return [_VARIABLE.sub(value, word) for word in spec.words()]

    def trigger_paths(self, path: str) -> list[str]:
        """The absolute paths a node's trigger names."""
        text = self.nodes[path].spec.trigger
        return [] if text is None else [self.resolve(ref, path) for ref in parse_trigger(text).references()]

    def resolve(self, reference: str, path: str) -> str:
        """The absolute path of a trigger's node `reference`, relative to the parent of `path`."""
        parent = self.nodes[path].parent
        if reference.startswith("/"):
            target = reference
        else:
            parts = parent.split("/")
            for part in reference.split("/"):
                if part == "..":
                    parts = parts[:-1]
                elif part not in ("", "."):
                    parts.append(part)
            target = "/".join(parts)
        if target not in self.nodes and target != self.path:
            raise InputError(f"{path}: the trigger names {reference!r}, which is not a node of the suite")
        return target


def load_suite(source: str | Mapping[str, Any]) -> Suite:
    """A checked suite from YAML text or a parsed mapping; InputError says what is wrong and where."""
    if isinstance(source, str):
        if len(source) > 256 * 1024:
            raise InputError("a suite definition is at most 256 KiB")
        try:
            source = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            raise InputError(f"suite definition is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(source, Mapping):
        raise InputError("a suite definition is a mapping with `suite:` and `nodes:`")
    if _count_nodes(source.get("nodes")) > MAX_NODES:
        raise InputError(f"a suite has at most {MAX_NODES} nodes")
    try:
        spec = SuiteSpec.model_validate(source)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"suite definition: {where}: {first['msg']}") from None
    suite = Suite(spec)
    _add(suite, spec.nodes, suite.path)
    for node in suite.nodes.values():
        if node.spec.inlimit is not None and node.spec.inlimit not in spec.limits:
            raise InputError(f"{node.path}: inlimit {node.spec.inlimit!r} is not a limit of the suite")
        if node.path in suite.trigger_paths(node.path):
            raise InputError(f"{node.path}: a trigger cannot wait for its own node")
    return suite


def _count_nodes(nodes: Any, depth: int = 0) -> int:
    if depth > 16:
        raise InputError("a suite nests families at most 16 deep")
    if not isinstance(nodes, list):
        return 0
    return sum(1 + _count_nodes(n.get("nodes"), depth + 1) for n in nodes if isinstance(n, Mapping))


def _add(suite: Suite, specs: list[Spec], parent: str) -> tuple[str, ...]:
    paths = []
    for spec in specs:
        path = f"{parent}/{spec.name}"
        if path in suite.nodes:
            raise InputError(f"{path}: two nodes of one family have the same name")
        suite.nodes[path] = Node(path, spec, parent)
        children = _add(suite, spec.nodes, path) if isinstance(spec, FamilySpec) else ()
        suite.nodes[path] = Node(path, spec, parent, children)
        paths.append(path)
    return tuple(paths)


def walk(suite: Suite) -> Iterator[tuple[int, Node]]:
    """Nodes depth first with their depth (1 for the suite's top nodes), for trees and exports."""
    for path, node in suite.nodes.items():
        yield path.count("/") - 1, node


# -- trigger expressions -------------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(\(|\)|==|!=|!|[A-Za-z0-9_./]+)")
_STATES = {s.value for s in NodeState}


@dataclass(frozen=True)
class Trigger:
    """A parsed trigger: `evaluate(state_of)` with `state_of(reference) -> NodeState`."""

    kind: Literal["and", "or", "not", "compare"]
    parts: tuple[Trigger, ...] = ()
    reference: str = ""
    state: NodeState = NodeState.complete
    equal: bool = True

    def evaluate(self, state_of: Callable[[str], NodeState]) -> bool:
        if self.kind == "compare":
            return (state_of(self.reference) == self.state) == self.equal
        if self.kind == "not":
            return not self.parts[0].evaluate(state_of)
        results = (p.evaluate(state_of) for p in self.parts)
        return all(results) if self.kind == "and" else any(results)

    def references(self) -> list[str]:
        if self.kind == "compare":
            return [self.reference]
        return [r for p in self.parts for r in p.references()]


def parse_trigger(text: str) -> Trigger:
    """A trigger expression parsed; InputError points at what could not be read."""
    if len(text) > 1024:
        raise InputError("a trigger is at most 1024 characters")
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match:
            raise InputError(f"trigger {text!r}: cannot read {text[position:].strip()[:20]!r}")
        tokens.append(match.group(1))
        position = match.end()
    parser = _Parser(tokens, text)
    trigger = parser.expression()
    if parser.position != len(tokens):
        raise InputError(f"trigger {text!r}: unexpected {tokens[parser.position]!r}")
    return trigger


class _Parser:
    """expression := conjunction ('or' conjunction)*; conjunction := unary ('and' unary)*;
    unary := ('not' | '!') unary | '(' expression ')' | NODE ('=='|'eq'|'!='|'ne') STATE"""

    def __init__(self, tokens: list[str], text: str) -> None:
        self.tokens, self.text, self.position = tokens, text, 0

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _next(self, what: str) -> str:
        token = self._peek()
        if token is None:
            raise InputError(f"trigger {self.text!r}: ends where {what} should follow")
        self.position += 1
        return token

    def expression(self) -> Trigger:
        parts = [self.conjunction()]
        while self._peek() == "or":
            self.position += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Trigger("or", tuple(parts))

    def conjunction(self) -> Trigger:
        parts = [self.unary()]
        while self._peek() == "and":
            self.position += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else Trigger("and", tuple(parts))

    def unary(self) -> Trigger:
        token = self._next("a node")
        if token in ("not", "!"):
            return Trigger("not", (self.unary(),))
        if token == "(":
            inner = self.expression()
            if self._next("')'") != ")":
                raise InputError(f"trigger {self.text!r}: ')' missing")
            return inner
        operator = self._next("'==' or '!='")
        if operator not in ("==", "eq", "!=", "ne"):
            raise InputError(
                f"trigger {self.text!r}: expected '==' or '!=' after {token!r}, not {operator!r}"
            )
        state = self._next("a state")
        if state not in _STATES:
            raise InputError(
                f"trigger {self.text!r}: {state!r} is not a state ({', '.join(sorted(_STATES))})"
            )
        return Trigger("compare", reference=token, state=NodeState(state), equal=operator in ("==", "eq"))
