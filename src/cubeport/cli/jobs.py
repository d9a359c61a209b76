"""`cubeport jobs`: submit processes as jobs, follow them, read their logs and results, dismiss them.

Jobs live in the data root's database, so these commands see the jobs of every server on it. A submitted
job waits for a server (`cubeport serve`) to run it, or runs here with `--wait`.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column, Table

from cubeport.cli.base import AsJson, DataRoot, app, context_for, err, out, progress_bar, split
from cubeport.errors import ConflictError, CubeportError, InputError

if TYPE_CHECKING:
    from cubeport.context import Context
    from cubeport.processes.jobs import Job

jobs_app = typer.Typer(
    help="Processing jobs: submit a process with inputs, follow it, get its results.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")

USER_ENV = "CUBEPORT_USER"
JobId = Annotated[str, typer.Argument(metavar="JOB", help="the job's id (`cubeport jobs list`)")]
POLL_SECONDS = 0.3


class JobNotSuccessful(CubeportError):
    """A job this command waited for failed or was dismissed (exit code 1)."""


def parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` pairs: a VALUE that parses as JSON is taken as JSON (numbers, lists, true, null),
    anything else as a string, so `cube=sst` and `bbox=[10,54,12,56]` both need no quoting."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        name = name.strip()
        if not equals or not name:
            raise InputError(f"--input {pair!r}: give NAME=VALUE, e.g. --input period=month")
        if name in inputs:
            raise InputError(f"--input {name!r} is given twice")
        try:
            inputs[name] = json.loads(text)
        except ValueError:
            inputs[name] = text
    return inputs


@jobs_app.command("submit")
def jobs_submit(
    process_id: Annotated[
        str, typer.Argument(metavar="PROCESS", help="the process id (`cubeport processes list`)")
    ],
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            metavar="NAME=VALUE",
            help="An input; repeat for each. VALUE is JSON when it parses as JSON (2, [10,54,12,56], true), "
            "else a string (sst, month); quote a string that looks like JSON: name='\"2\"'",
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--as",
            envvar=USER_ENV,
            show_envvar=True,
            metavar="USER",
            help="The local user the job runs for (required): it may use what this user may read, and "
            "its outputs are private to this user",
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Run the job here, with a progress bar, and print its results; without it the job waits "
            "for a server (`cubeport serve`) on this data root",
        ),
    ] = False,
    data_root: DataRoot = None,
    as_json: AsJson = False,
) -> None:
    """Submit a process as a job; the inputs are checked first (no job is made for bad input).

    Examples:

        cubeport jobs submit temporal-aggregate -i cube=sst -i period=month -i method=mean --as mia --wait

        cubeport jobs submit subset -i cube=olci -i 'bbox=[2,51,3,52]' --as mia

    Without --wait the job id is printed and the job runs when a server on this data root takes it;
    follow it with `cubeport jobs status JOB` or `cubeport jobs logs JOB --follow`.
    """
    if not user:
        raise InputError(
            f"say which local user the job runs for: --as USER, or set {USER_ENV} (`cubeport users list`)"
        )
    context = context_for(data_root)
    # The operator at the data root speaks for the user, as a server does for one signed in with a password.
    principal = context.auth.directory.principal(user, "password")
    job = context.processing.submit(principal, process_id, parse_inputs(inputs or []))
    if not wait:
        if as_json:
            out.print_json(json.dumps(status_document(job)))
        else:
            out.print(job.id)
        err.print(
            f"job {job.id} accepted: it runs when a server on this data root (`cubeport serve`) takes it; "
            f"follow it with `cubeport jobs status {job.id}`, or submit with --wait to run it here",
            highlight=False,
            soft_wrap=True,
        )
        return
    err.print(f"job {job.id}: {job.process_id} for {job.owner}", highlight=False)
    ended = run_here(context, job)
    if as_json:
        out.print_json(json.dumps({**status_document(ended), "results": ended.results}))
    if ended.status != "successful":
        raise JobNotSuccessful(
            f"job {ended.id} {ended.status}: {ended.message} (see `cubeport jobs logs {ended.id}`)"
        )
    if not as_json:
        err.print(
            f"job {ended.id} successful in {ended.meters.get('wall_seconds', 0):.1f} s", highlight=False
        )
        print_results(context, ended)


def run_here(context: Context, job: Job) -> Job:
    """Run one job in this process's own dispatcher until it ends, with a progress bar on stderr.

    Ctrl-C dismisses the job: the dispatcher stops it and removes what it published, and a job still
    unfinished when the dispatcher closes is ended here, so no server picks it up later."""
    dispatcher = context.start_dispatcher(only=[job.id])
    jobs = context.jobs
    try:
        with progress_bar() as bar:
            task = bar.add_task(f"{job.process_id}: waiting", total=100)
            while not (job := jobs.get(job.id)).done:
                bar.update(task, completed=job.progress, description=f"{job.process_id}: {job.message}")
                time.sleep(POLL_SECONDS)
            bar.update(task, completed=job.progress, description=f"{job.process_id}: {job.status}")
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave the job half-ended
        err.print(f"interrupted: dismissing job {job.id} (a few seconds)", highlight=False)
        jobs.dismiss(job.id)
        deadline = time.monotonic() + 10
        while not jobs.get(job.id).done and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        dispatcher.close()  # stops its worker, if it still runs
        job = jobs.get(job.id)
        if not job.done:
            from cubeport.processes.runner import unpublish

            unpublish(context, job)
            jobs.finish(job.id, "dismissed", "dismissed: the command running it was interrupted")
        raise JobNotSuccessful(f"interrupted: job {job.id} was dismissed; it published nothing") from None
    finally:
        dispatcher.close()
    return job


@jobs_app.command("list")
def jobs_list(
    data_root: DataRoot = None,
    owner: Annotated[str | None, typer.Option(help="Only this user's jobs")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only these statuses, comma-separated: accepted,running,failed,...")
    ] = None,
    process_id: Annotated[str | None, typer.Option("--process", help="Only jobs of this process")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many, newest first")] = 50,
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first (everyone's: this is the operator's view).

    Example: cubeport jobs list --owner mia --status running,accepted
    """
    from cubeport.processes.jobs import STATUSES

    statuses = split(status) or []
    for s in statuses:
        if s not in STATUSES:
            raise InputError(f"--status {s!r}: one of {', '.join(STATUSES)}")
    found, matched = context_for(data_root).jobs.list(
        owner=owner, status=statuses, process_id=[process_id] if process_id else [], limit=limit
    )
    if as_json:
        out.print_json(json.dumps([status_document(j) for j in found]))
        return
    table = Table(Column("id", no_wrap=True), "process", "owner", "status", "progress", "created", "message")
    for j in found:
        table.add_row(
            j.id,
            j.process_id,
            j.owner,
            j.status,
            f"{j.progress} %",
            f"{j.created:%Y-%m-%d %H:%M:%S}",
            j.message,
        )
    out.print(table if found else "no jobs")
    if matched > len(found):
        err.print(f"{len(found)} of {matched} jobs shown; see --limit")


@jobs_app.command("status")
def jobs_status(job_id: JobId, data_root: DataRoot = None, as_json: AsJson = False) -> None:
    """Show a job's status, progress, steps (scheduling, fetching, processing, ingesting) and meters.

    Example: cubeport jobs status 5c0f3e...
    """
    job = context_for(data_root).jobs.get(job_id)
    if as_json:
        out.print_json(json.dumps(status_document(job)))
        return
    out.print(
        f"job {job.id}: {job.process_id} {job.process_version} for {job.owner}\n"
        f"status: {job.status} ({job.progress} %) {job.message}\n"
        f"created {_time(job.created)}, started {_time(job.started)}, finished {_time(job.finished)}"
        + (f", try {job.attempt}" if job.attempt > 1 else ""),
        highlight=False,
        markup=False,
    )
    steps = Table("step", "status", "progress", "started", "finished", "message")
    for s in job.steps:
        steps.add_row(s.name, s.status, f"{s.progress} %", _time(s.started), _time(s.finished), s.message)
    out.print(steps)
    if any(job.meters.values()):
        m = job.meters
        out.print(
            f"meters: cpu {m.get('cpu_seconds', 0):.1f} s, wall {m.get('wall_seconds', 0):.1f} s, "
            f"peak memory {_size(m.get('peak_memory_bytes', 0))}, read {_size(m.get('bytes_read', 0))}, "
            f"written {_size(m.get('bytes_written', 0))}",
            highlight=False,
        )


@jobs_app.command("logs")
def jobs_logs(
    job_id: JobId,
    data_root: DataRoot = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends")
    ] = False,
) -> None:
    """Print a job's log (with --follow: until the job ends; Ctrl-C stops following, not the job).

    Example: cubeport jobs logs 5c0f3e... --follow
    """
    jobs = context_for(data_root).jobs
    job = jobs.get(job_id)  # NotFoundError for an unknown job
    last = 0
    while True:
        done = job.done  # read before the lines, so no line written before the end is missed
        for line_id, stamp, text in jobs.logs(job.id, after=last):
            print(f"{stamp:%Y-%m-%dT%H:%M:%SZ} {text}", flush=True)
            last = line_id
        if not follow or done:
            return
        time.sleep(POLL_SECONDS * 2)
        job = jobs.get(job.id)


@jobs_app.command("results")
def jobs_results(
    job_id: JobId,
    data_root: DataRoot = None,
    save: Annotated[
        Path | None, typer.Option("--save", metavar="FILE", help="Copy a file output to FILE")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Show what a successful job published: a cube, a feature collection, a file or a value.

    Examples: cubeport jobs results 5c0f3e...    cubeport jobs results 5c0f3e... --save export.nc
    """
    context = context_for(data_root)
    job = context.jobs.get(job_id)
    if job.status != "successful":
        raise ConflictError(f"job {job.id} is {job.status}, so it has no results: {job.message}")
    if save is not None:
        output = job.results.get("result", {})
        if output.get("kind") != "file":
            raise InputError(f"--save: job {job.id}'s result is a {output.get('kind')}, not a file")
        from cubeport.processes.runner import JOB_OUTPUTS

        save.write_bytes(context.storage.read_bytes(JOB_OUTPUTS, job.id, output["name"]))
        err.print(f"saved {output['name']} to {save}", highlight=False)
        return
    if as_json:
        out.print_json(json.dumps(job.results))
        return
    print_results(context, job)


def print_results(context: Context, job: Job) -> None:
    """Each output with where to find it."""
    for name, output in job.results.items():
        kind = output.get("kind")
        if kind == "cube":
            info = context.cubes.describe(output["id"])
            out.print(
                f"{name}: cube {output['id']} (private to {job.owner})\n"
                f"  variables: {', '.join(v.name for v in info.variables)}\n"
                f"  dims: {', '.join(f'{k} {v}' for k, v in info.dims.items())}\n"
                f"  time: {info.time_start[:19]} .. {info.time_end[:19]}",
                highlight=False,
                markup=False,
            )
        elif kind == "collection":
            out.print(
                f"{name}: feature collection {output['id']} (private to {job.owner}); "
                f"export it with `cubeport features export {output['id']} FILE`",
                highlight=False,
                markup=False,
            )
        elif kind == "file":
            out.print(
                f"{name}: file {output['name']} ({_size(output.get('size', 0))}); "
                f"copy it with `cubeport jobs results {job.id} --save FILE`",
                highlight=False,
                markup=False,
            )
        else:
            out.print(f"{name}: {json.dumps(output.get('value'))}", highlight=False, markup=False)


@jobs_app.command("dismiss")
def jobs_dismiss(job_id: JobId, data_root: DataRoot = None) -> None:
    """Dismiss a job: a waiting one at once; a running one is stopped by its server within seconds, and
    nothing it published stays.

    Example: cubeport jobs dismiss 5c0f3e...
    """
    jobs = context_for(data_root).jobs
    job = jobs.get(job_id)
    if job.done and job.status != "dismissed":
        raise ConflictError(f"job {job.id} has ended ({job.status}); there is nothing to dismiss")
    job = jobs.dismiss(job.id)
    out.print(f"job {job.id}: {job.status} ({job.message})", highlight=False, markup=False)


def status_document(job: Job) -> dict[str, Any]:
    """A job as JSON, in the shape of the OGC status info the server answers (without links)."""
    return {
        "jobID": job.id,
        "processID": job.process_id,
        "owner": job.owner,
        "status": job.status,
        "message": job.message,
        "progress": job.progress,
        "created": _iso(job.created),
        "started": _iso(job.started),
        "finished": _iso(job.finished),
        "updated": _iso(job.updated),
        "attempt": job.attempt,
        "steps": [
            {
                "name": s.name,
                "status": s.status,
                "progress": s.progress,
                "started": _iso(s.started),
                "finished": _iso(s.finished),
                "message": s.message,
            }
            for s in job.steps
        ],
        "meters": job.meters,
    }


def _iso(stamp: Any) -> str | None:
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp is not None else None


def _time(stamp: Any) -> str:
    return f"{stamp:%Y-%m-%d %H:%M:%S}" if stamp is not None else "-"


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


__all__ = ["parse_inputs", "status_document"]
