"""`cubeport watch|suites|targets|ops`: near-real-time operations from the terminal.

Secrets are never arguments (they would stay in the shell's history and in `ps`): passwords come from an
environment variable (`--password-env`) or standard input (`--password-stdin`), keys from a file.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from cubeport.cli.base import DataRoot, app, context_for, out, split
from cubeport.errors import InputError
from cubeport.logs import configure_logging
from cubeport.ops.remotes import Credentials
from cubeport.ops.runs import ACTIONS, NodeView

watch_app = typer.Typer(
    help="Watchers: find new deliveries on FTP/FTPS/SFTP, S3 or a folder", no_args_is_help=True
)
suites_app = typer.Typer(
    help="Suites: tasks with triggers, limits and tries (ecFlow-like)", no_args_is_help=True
)
targets_app = typer.Typer(help="Delivery targets: downstream portals products go to", no_args_is_help=True)
ops_app = typer.Typer(help="Run operations and see their status", no_args_is_help=True)
app.add_typer(watch_app, name="watch")
app.add_typer(suites_app, name="suites")
app.add_typer(targets_app, name="targets")
app.add_typer(ops_app, name="ops")

Json = Annotated[bool, typer.Option("--json", help="Print JSON")]
User = Annotated[str | None, typer.Option("--user", help="User name (or the S3 access key id)")]
PasswordEnv = Annotated[
    str | None,
    typer.Option("--password-env", help="Environment variable holding the password (S3: secret key)"),
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input")
]
KeyFile = Annotated[Path | None, typer.Option("--key-file", help="SFTP private key file")]
HostKey = Annotated[
    str | None,
    typer.Option(
        "--host-key", help="The SFTP server's public key, OpenSSH text [default: ~/.ssh/known_hosts]"
    ),
]
COLOURS = {
    "unknown": "white",
    "queued": "blue",
    "submitted": "cyan",
    "active": "green",
    "complete": "yellow",
    "aborted": "red",
}  # ecFlow's colours


def seconds(text: str) -> float:
    """'900', '15m', '1h', '30s' as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match:
        raise InputError(f"{text!r} is not a duration: use seconds or e.g. 30s, 15m, 1h")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def credentials(
    url: str, user: str | None, password_env: str | None, password_stdin: bool, key_file: Path | None
) -> Credentials | None:
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise InputError(f"--password-env {password_env}: no such environment variable")
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    key = key_file.read_text() if key_file else None
    if not (user or password or key):
        return None
    if url.startswith("s3://"):
        return Credentials(access_key_id=user, password=password)
    return Credentials(username=user, password=password, private_key=key)


# -- watchers -----------------------------------------------------------------------------------------------
@watch_app.command("add")
def watch_add(
    name: Annotated[str, typer.Argument(help="Watcher name", show_default=False)],
    url: Annotated[
        str,
        typer.Argument(
            help="ftp://host[:port]/dir, ftps://..., sftp://..., s3://bucket/prefix or a folder",
            show_default=False,
        ),
    ],
    suite: Annotated[str, typer.Option("--suite", help="Suite each new file starts a run of")] = "seaice",
    include: Annotated[str, typer.Option(help="File-name pattern of deliveries, e.g. 'ICEYE_*.zip'")] = "*",
    every: Annotated[str, typer.Option("--every", help="Time between looks, e.g. 15m")] = "15m",
    marker: Annotated[
        str | None, typer.Option(help="Suffix of a marker file that says a delivery is complete, e.g. .done")
    ] = None,
    user: User = None,
    password_env: PasswordEnv = None,
    password_stdin: PasswordStdin = False,
    key_file: KeyFile = None,
    host_key: HostKey = None,
    data_root: DataRoot = None,
) -> None:
    """Watch a server or folder for new files; each one delivered starts a run of SUITE."""
    ops = context_for(data_root).ops
    watcher = ops.watchers.add(
        name,
        url,
        suite,
        include=include,
        interval_seconds=seconds(every),
        marker=marker,
        credentials=credentials(url, user, password_env, password_stdin, key_file),
    )
    out.print(
        f"watcher {watcher.name}: {watcher.url} every {watcher.interval_seconds:g} s -> suite {watcher.suite}"
    )


@watch_app.command("list")
def watch_list(as_json: Json = False, data_root: DataRoot = None) -> None:
    """Watchers with their last look, last file and last error."""
    watchers = context_for(data_root).ops.watchers.list()
    if as_json:
        out.print_json(json.dumps([w.to_dict() for w in watchers]))
        return
    table = Table("name", "url", "include", "every", "last look", "last file", "state")
    for w in watchers:
        state = (
            f"[red]paused: {w.paused_reason}[/red]"
            if w.paused_reason
            else (f"[red]{w.last_error}[/red]" if w.last_error else "ok")
        )
        last = w.last_look.strftime("%Y-%m-%d %H:%M:%S") if w.last_look else "never"
        table.add_row(w.name, w.url, w.include, f"{w.interval_seconds:g} s", last, w.last_file, state)
    out.print(table)


@watch_app.command("remove")
def watch_remove(name: str, data_root: DataRoot = None) -> None:
    """Stop watching (the files it recorded are forgotten with it)."""
    context_for(data_root).ops.watchers.remove(name)
    out.print(f"watcher {name} removed")


@watch_app.command("resume")
def watch_resume(name: str, data_root: DataRoot = None) -> None:
    """Let a paused watcher (e.g. after a full staging area) look again."""
    context_for(data_root).ops.watchers.resume(name)
    out.print(f"watcher {name} resumed")


@watch_app.command("run")
def watch_run(
    name: Annotated[str | None, typer.Argument(help="One watcher [default: every watcher]")] = None,
    data_root: DataRoot = None,
) -> None:
    """Look now (once); prints the files delivered since the last look, each of which starts a run. The
    runner (`cubeport ops run`) looks by itself at each watcher's interval."""
    ops = context_for(data_root).ops
    names = [name] if name else [w.name for w in ops.watchers.list()]
    failed = []
    for watcher_name in names:
        handed = ops.watchers.look(watcher_name)
        for file in handed:
            out.print(f"{watcher_name}: delivered {file}", markup=False)
        watcher = ops.watchers.get(watcher_name)
        if watcher.last_error:
            failed.append(f"{watcher_name}: {watcher.last_error}")
        elif not handed:
            out.print(f"{watcher_name}: nothing new", markup=False)
    if failed:
        raise InputError("; ".join(failed))


@watch_app.command("fetch")
def watch_fetch(
    name: str,
    file: str,
    size: Annotated[int, typer.Option(help="The size the watcher recorded (bytes)", min=0)],
    to: Annotated[Path, typer.Option("--to", help="Folder the file is linked into")],
    data_root: DataRoot = None,
) -> None:
    """Download a delivered file (resuming a broken transfer), check it and put it into a folder: the first
    task of a watcher's run."""
    path = context_for(data_root).ops.watchers.fetch(name, file, size, to)
    out.print(f"fetched: {path}", markup=False, highlight=False)


# -- suites ------------------------------------------------------------------------------------------------
@suites_app.command("add")
def suites_add(
    definition: Annotated[Path, typer.Argument(help="Suite definition (YAML)")], data_root: DataRoot = None
) -> None:
    """Add or replace a suite."""
    suite = context_for(data_root).ops.runs.save_suite(definition.read_text())
    out.print(f"suite {suite.name}: {len(suite.tasks())} tasks")


@suites_app.command("list")
def suites_list(data_root: DataRoot = None) -> None:
    """Suites and the state of their latest run."""
    ops = context_for(data_root).ops
    table = Table("suite", "tasks", "schedule", "latest run", "state")
    for name in ops.runs.suite_names():
        suite = ops.runs.suite(name)
        runs = ops.runs.runs(name, limit=1)
        schedule = f"every {suite.spec.every:g} s" if suite.spec.every else (suite.spec.cron or "on delivery")
        state = runs[0].state.value if runs else "-"
        table.add_row(
            name,
            str(len(suite.tasks())),
            schedule,
            runs[0].created.strftime("%Y-%m-%d %H:%M:%S") if runs else "never",
            f"[{COLOURS.get(state, 'white')}]{state}[/]",
        )
    out.print(table)


@suites_app.command("show")
def suites_show(
    suite: str,
    run: Annotated[str | None, typer.Option(help="Run id [default: the latest]")] = None,
    as_json: Json = False,
    data_root: DataRoot = None,
) -> None:
    """A run's tree with each node's state, try and time."""
    ops = context_for(data_root).ops
    ops.runs.suite(suite)
    runs = [ops.runs.run(run)] if run else ops.runs.runs(suite, limit=1)
    if not runs:
        out.print(f"suite {suite} has not run yet")
        return
    tree = ops.runs.tree(runs[0].id)
    if as_json:
        out.print_json(json.dumps({"run": runs[0].id, "tree": tree.to_dict()}))
        return
    out.print(f"run {runs[0].id} ({runs[0].cause})", markup=False)
    out.print(_rich_tree(tree))


@suites_app.command("start")
def suites_start(
    suite: str,
    var: Annotated[
        list[str] | None, typer.Option("--var", help="A run variable, NAME=VALUE (repeatable)")
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Start a run now (the runner carries it out)."""
    variables = {}
    for item in var or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--var {item!r}: write NAME=VALUE")
        variables[key] = value
    started = context_for(data_root).ops.runs.start(suite, variables, cause="operator")
    out.print(f"run {started.id} of {suite} queued")


@suites_app.command("act")
def suites_act(
    run: str,
    node: Annotated[str, typer.Argument(help="Node path, e.g. /seaice/scene/process")],
    action: Annotated[str, typer.Argument(help=f"One of: {', '.join(ACTIONS)}")],
    data_root: DataRoot = None,
) -> None:
    """An operator's action on a node: requeue, rerun, run (now), suspend, resume, kill, complete."""
    from cubeport.ops.runner import operate

    ops = context_for(data_root).ops
    if action not in ACTIONS:
        raise InputError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
    operate(ops.runs, run, node, action)
    out.print(f"{action}: {node}", markup=False)


@suites_app.command("log")
def suites_log(
    run: str,
    node: Annotated[str, typer.Argument(help="Task path")],
    try_no: Annotated[int | None, typer.Option("--try", help="Which try [default: the last]")] = None,
    data_root: DataRoot = None,
) -> None:
    """A task's output."""
    sys.stdout.write(context_for(data_root).ops.output(run, node, try_no))


@suites_app.command("export-ecflow")
def suites_export_ecflow(
    suite: str,
    folder: Annotated[Path, typer.Argument(help="Folder the .def and .ecf scripts are written to")],
    cubeport: Annotated[str, typer.Option(help="The cubeport command the tasks call")] = "cubeport",
    var: Annotated[
        list[str] | None, typer.Option("--var", help="A suite variable, NAME=VALUE (repeatable)")
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Write the suite for ecFlow: a .def and .ecf scripts whose tasks call the Cubeport CLI. What the built-in
    runner gives each run (WORK, OPS, RUN) is set for the ecFlow suite; a run's own variables (a watcher's
    WATCHER, FILE, SIZE) are given with --var and changed per delivery with `ecflow_client --alter`."""
    from cubeport.ops.ecflow import export_ecflow

    ops = context_for(data_root).ops
    given = dict(item.partition("=")[::2] for item in var or [])
    variables = {"WORK": str(folder.absolute() / "work"), "OPS": str(ops.folder), "RUN": "ecflow", **given}
    definition = export_ecflow(ops.runs.suite(suite), folder, cubeport=cubeport, variables=variables)
    out.print(f"written: {definition}", markup=False, highlight=False)
    out.print(f"load it: ecflow_client --load={definition} && ecflow_client --begin={suite}", markup=False)


# -- targets -----------------------------------------------------------------------------------------------
@targets_app.command("add")
def targets_add(
    name: str,
    url: Annotated[
        str, typer.Argument(help="sftp://, ftp://, ftps://, s3://, a folder, or an http(s):// hook")
    ],
    products: Annotated[
        str, typer.Option(help="Comma-separated file-name patterns, e.g. '*_chart.gpkg,*.tif'")
    ],
    user: User = None,
    password_env: PasswordEnv = None,
    password_stdin: PasswordStdin = False,
    key_file: KeyFile = None,
    host_key: HostKey = None,
    data_root: DataRoot = None,
) -> None:
    """Deliver products matching the patterns to a downstream portal (an HTTP hook gets the password as a
    bearer token)."""
    target = context_for(data_root).ops.deliveries.add_target(
        name,
        url,
        split(products) or [],
        credentials(url, user, password_env, password_stdin, key_file),
        host_key=host_key,
    )
    out.print(f"target {target.name}: {target.url} <- {', '.join(target.products)}", markup=False)


@targets_app.command("list")
def targets_list(as_json: Json = False, data_root: DataRoot = None) -> None:
    targets = context_for(data_root).ops.deliveries.targets()
    if as_json:
        out.print_json(json.dumps([t.to_dict() for t in targets]))
        return
    table = Table("name", "url", "products", "credentials")
    for t in targets:
        table.add_row(t.name, t.url, ", ".join(t.products), ", ".join(t.credentials) or "-")
    out.print(table)


@targets_app.command("remove")
def targets_remove(name: str, data_root: DataRoot = None) -> None:
    context_for(data_root).ops.deliveries.remove_target(name)
    out.print(f"target {name} removed")


# -- the runner and status -------------------------------------------------------------------------------------
@ops_app.command("run")
def ops_run(
    once: Annotated[bool, typer.Option("--once", help="One round, then stop")] = False,
    data_root: DataRoot = None,
) -> None:
    """The runner: watchers, schedules, tasks and deliveries, until Ctrl-C (one acts at a time per database)."""
    configure_logging()
    runner = context_for(data_root).ops.runner()
    if once:
        try:
            if not runner.tick():
                raise InputError(f"another runner holds the lease ({runner.lease.holder()}); nothing done")
        finally:
            runner.lease.release()
        return
    stop = threading.Event()
    out.print(f"ops runner {runner.lease.owner}: Ctrl-C stops it", markup=False)
    try:
        runner.run(stop)
    except KeyboardInterrupt:
        stop.set()


@ops_app.command("deliver")
def ops_deliver(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (every file below) to deliver")],
    data_root: DataRoot = None,
) -> None:
    """Offer products to the targets that take them and push them now; failures are retried by the runner."""
    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    ops = context_for(data_root).ops
    new = ops.deliveries.offer(files)
    for delivery_id in new:
        done = ops.deliveries.push(delivery_id)
        line = f"{done.product} -> {done.target}: {done.state}" + (f" ({done.error})" if done.error else "")
        out.print(line, markup=False, highlight=False)
    if not new:
        out.print("nothing new to deliver")


@ops_app.command("status")
def ops_status(as_json: Json = False, data_root: DataRoot = None) -> None:
    """Watchers, the latest runs of every suite, and deliveries."""
    status = context_for(data_root).ops.status(runs_per_suite=1, deliveries=20)
    if as_json:
        out.print_json(json.dumps(status))
        return
    runner = status["runner"]
    out.print(
        f"runner: {'[green]' + runner['holder'] + '[/green]' if runner['active'] else '[red]not running[/red]'}"
    )
    for w in status["watchers"]:
        problem = w["paused"] or w["last_error"]
        out.print(
            f"watcher {w['name']}: last look {w['last_look'] or 'never'}, last file {w['last_file'] or '-'}"
            + (f" [red]{problem}[/red]" if problem else ""),
            highlight=False,
        )
    for suite in status["suites"]:
        for run in suite["runs"]:
            out.print(
                _rich_tree(_view(run["tree"]), title=f"{suite['name']} run {run['id'][:8]} ({run['cause']})")
            )
    for d in status["deliveries"]:
        out.print(
            f"delivery {d['product']} -> {d['target']}: {d['state']}"
            + (f" ({d['error']})" if d["error"] else ""),
            markup=False,
        )


def _rich_tree(view: NodeView, title: str | None = None) -> Tree:
    def label(v: NodeView) -> str:
        state = v.state.value
        extra = [f"try {v.try_no}/{v.tries}"] if v.kind == "task" and v.try_no else []
        if v.seconds is not None:
            extra.append(f"{v.seconds:.1f} s")
        if v.suspended:
            extra.append("suspended")
        if v.reason:
            extra.append(v.reason)
        name = v.path.rsplit("/", 1)[-1] or v.path
        return f"{name} [{COLOURS[state]}]{state}[/]" + (f" ({'; '.join(extra)})" if extra else "")

    top = Tree(title) if title else Tree(label(view))
    suite = top.add(label(view)) if title else top

    def add(parent: Tree, v: NodeView) -> None:
        for child in v.children:
            add(parent.add(label(child)), child)

    add(suite, view)
    return top


def _view(data: dict[str, Any]) -> NodeView:
    from datetime import datetime

    from cubeport.ops.suites import NodeState

    return NodeView(
        path=data["path"],
        kind=data["kind"],
        state=NodeState(data["state"]),
        suspended=data["suspended"],
        try_no=data["try"],
        tries=data["tries"],
        started=datetime.fromisoformat(data["started"]) if data["started"] else None,
        ended=datetime.fromisoformat(data["ended"]) if data["ended"] else None,
        reason=data["reason"],
        children=[_view(c) for c in data["children"]],
    )
